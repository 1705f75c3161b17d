//! PxWeb metadata as both APIs give it, read into one shape: a table's variables with their
//! codes and labels, whether each may be eliminated, which is time and which is content, and
//! what the table says about itself (`updated`, notes, discontinued).
//!
//! Owns: parsing v1 table metadata (`GET <table-url>`), v1 node lists (`GET <level-url>`,
//! where a table's `updated` lives), v2 `/tables/{id}`, `/tables/{id}/metadata` (json-stat2
//! without values), `/codelists/{id}` and `/tables` pages (`v1.rs`, `v2.rs`, `v2_metadata.rs`);
//! the bounds every response is held to (here); whether a table has stopped being updated
//! (`stale.rs`).
//! Must not: send requests, or decide what to select (`select.rs`).
//!
//! Responses are untrusted: the HTTP layer's body limit bounds what serde reads into memory
//! (a few times the body's bytes), and what that declares is checked against
//! [`MAX_VARIABLES`] and [`MAX_VALUES`] before our own types, and the query plans made from
//! them, are built. Unknown keys are ignored (servers add extensions), missing required ones
//! are [`MetaError::NotJson`].

mod stale;
mod v1;
mod v2;
mod v2_metadata;

use std::collections::HashSet;

pub use stale::Staleness;
pub use v1::{v1_nodes, v1_table};
pub use v2::{v2_codelist, v2_table_info, v2_tables_page};
pub use v2_metadata::v2_table;

/// Most variables a table's metadata may list. Real tables have a handful (TAB6471 five, the
/// widest SCB v1 table in our fixtures six); a hundred is room to spare, and more is not a
/// table anyone could query.
pub const MAX_VARIABLES: usize = 100;

/// Most values a table's metadata (or a code list) may list, all variables together. SCB's
/// `maxValues` is 110 000 per query; a million leaves room for every municipality × age ×
/// year table while refusing a response that would make us allocate without bound.
pub const MAX_VALUES: usize = 1_000_000;

/// One value of a variable: its code and its label, as the metadata gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub code: String,
    pub label: String,
}

/// A code list a v2 variable offers besides its own values (`vs_RegionKommun07`,
/// `agg_Ålder10årJ`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodelistRef {
    pub id: String,
    pub label: String,
    /// `Valueset` or `Aggregation`, as the metadata says.
    pub kind: String,
}

/// A variable (dimension) of a table, in the order the metadata lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// As the server spells it (`Region`, `Tid`, FoHM's `Ålder` and `Hur ofta`).
    pub code: String,
    pub label: String,
    /// In the server's order; codes unique.
    pub values: Vec<Value>,
    /// The variable may be left out of a query (the server then totals or picks its
    /// elimination value). v1 omits the key when false.
    pub elimination: bool,
    /// The time variable (v1 `time: true`, v2 `role.time`).
    pub time: bool,
    /// The content variable (v2 `role.metric`; v1 has no role: `ContentsCode` by SCB's
    /// convention).
    pub content: bool,
    /// v2 only; empty for v1.
    pub codelists: Vec<CodelistRef>,
}

/// A table's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// v2 `TABnnnn`; v1 the table's id (its URL's last segment, `BefolkningNy`).
    pub id: String,
    /// v2 `label`, v1 `title`.
    pub label: String,
    pub variables: Vec<Variable>,
    /// Root notes (v2 `note[]`); empty for v1 metadata, which has none.
    pub notes: Vec<String>,
}

/// What a table says about itself, from a v1 node list or v2 `/tables/{id}` (and each hit of a
/// v2 `/tables` page).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableInfo {
    pub id: String,
    pub label: String,
    /// As written: RFC 3339 in v2, zone-less (`2022-11-21T08:00:00`) in v1 node lists.
    pub updated: Option<String>,
    pub first_period: Option<String>,
    pub last_period: Option<String>,
    /// v2 `timeUnit` (`Annual`, `Quarterly`, `Monthly`, …).
    pub time_unit: Option<String>,
    /// v2 `discontinued`; `None` when the server does not say (SCB sends `null`).
    pub discontinued: Option<bool>,
    /// v2 `source` (`SCB`).
    pub source: Option<String>,
}

/// One entry of a v1 node list: a level to descend into, a table, or a heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The next URL segment (a database's `dbid` on the language level).
    pub id: String,
    pub kind: NodeKind,
    /// As written; may hold HTML and periods that are out of date (take coverage from the
    /// table's metadata instead).
    pub text: String,
    /// Tables only, zone-less as v1 writes it (`2022-11-21T08:00:00`).
    pub updated: Option<String>,
}

/// What a v1 node is (`type` `l`, `t`, `h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A folder (`l`), or a database on the language level.
    Level,
    /// A table (`t`): its URL is the level's URL plus its id.
    Table,
    /// A heading (`h`): display only, nothing to fetch.
    Heading,
}

/// A v2 code list (`/codelists/{id}`): the values a variable takes when it is queried with
/// this list instead of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codelist {
    pub id: String,
    pub label: String,
    /// `Aggregation` or `Valueset`, as written.
    pub kind: String,
    /// In the server's order; codes unique. An aggregation's `valueMap` is not kept.
    pub values: Vec<Value>,
    pub elimination: bool,
    pub elimination_value_code: Option<String>,
}

/// One page of v2 `/tables` (a listing or a `query=` search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablesPage {
    pub tables: Vec<TableInfo>,
    /// 1-based.
    pub page_number: u64,
    pub total_pages: u64,
    /// The `page.links` `rel=next` href, as the server wrote it; `None` on the last page.
    pub next: Option<String>,
}

/// Why a metadata response cannot be used. Every message names the URL it came from.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// The body is not JSON, or not the shape asked for (a required key missing or mistyped).
    #[error(
        "{origin}: not the JSON of {expected}; check `url`/`table` in [source]; the server may \
         have sent an error page"
    )]
    NotJson {
        origin: String,
        /// What was asked for (`PxWeb v1 table metadata`).
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// The body has the right shape but says something inconsistent or unusable.
    #[error(
        "{origin}: {what}; check `url`/`table` in [source]; the server may have sent an error \
         page or changed its format"
    )]
    Shape {
        origin: String,
        /// What is missing or wrong (`variable `Region`: 312 values but 311 valueTexts`).
        what: String,
    },
    /// More than [`MAX_VARIABLES`] variables or [`MAX_VALUES`] values.
    #[error(
        "{origin}: the metadata lists {count} {what}, more than the {limit} indikator accepts; \
         check `url`/`table` in [source]: no PxWeb table is that large"
    )]
    TooLarge {
        origin: String,
        /// `variables` or `values`.
        what: &'static str,
        count: usize,
        limit: usize,
    },
    /// A code listed twice, ignoring case: a query naming it would be ambiguous.
    #[error(
        "{origin}: {holder} lists `{code}` twice (PxWeb compares codes ignoring case), so a \
         query for it is ambiguous; report the table to its producer and leave it out meanwhile"
    )]
    DuplicateCode {
        origin: String,
        /// `variable `Region``, `code list `agg_Ålder10årJ``, `the table's variables`.
        holder: String,
        code: String,
    },
}

impl TableMeta {
    /// The variable whose code is `code`, ignoring case as PxWeb does (`region` finds
    /// `Region`, `ålder` finds `Ålder`). Linear in the number of variables.
    pub fn variable(&self, code: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| same_code(&v.code, code))
    }

    /// Refuses what no query could use: no variables, a variable without values, a code that
    /// appears twice.
    fn checked(self, origin: &str) -> Result<Self, MetaError> {
        unique(
            origin,
            "the table's variables",
            self.variables.iter().map(|v| &v.code),
        )?;
        for variable in &self.variables {
            checked_values(
                origin,
                &format!("variable `{}`", variable.code),
                &variable.values,
            )?;
        }
        Ok(self)
    }
}

impl Variable {
    /// The value whose code is `code`, ignoring case as PxWeb does. Linear in the number of
    /// values: build a map for many look-ups in a large variable.
    pub fn value(&self, code: &str) -> Option<&Value> {
        self.values.iter().find(|v| same_code(&v.code, code))
    }
}

/// Checks what a response declares before anything is built from it: `sizes` are the
/// values per variable, in order.
fn bounded(origin: &str, sizes: impl ExactSizeIterator<Item = usize>) -> Result<(), MetaError> {
    let variables = sizes.len();
    if variables == 0 {
        return Err(shape(origin, "the metadata lists no variables"));
    }
    if variables > MAX_VARIABLES {
        return Err(too_large(origin, "variables", variables, MAX_VARIABLES));
    }
    let values = sizes.fold(0usize, usize::saturating_add);
    if values > MAX_VALUES {
        return Err(too_large(origin, "values", values, MAX_VALUES));
    }
    Ok(())
}

/// A variable's or code list's values: at least one, codes unique.
fn checked_values(origin: &str, holder: &str, values: &[Value]) -> Result<(), MetaError> {
    if values.is_empty() {
        return Err(shape(origin, format!("{holder} has no values")));
    }
    unique(origin, holder, values.iter().map(|v| &v.code))
}

fn unique<'a>(
    origin: &str,
    holder: &str,
    codes: impl Iterator<Item = &'a String>,
) -> Result<(), MetaError> {
    let mut seen = HashSet::new();
    for code in codes {
        if !seen.insert(folded(code)) {
            return Err(MetaError::DuplicateCode {
                origin: origin.to_string(),
                holder: holder.to_string(),
                code: code.clone(),
            });
        }
    }
    Ok(())
}

/// PxWeb matches variable and value codes ignoring case; Unicode case, since FoHM's codes are
/// Swedish words (`Ålder`).
/// Whether two codes are one, as PxWeb compares them: case-insensitively, in any script
/// (`Ålder` = `ålder`).
pub fn same_code(a: &str, b: &str) -> bool {
    folded_chars(a).eq(folded_chars(b))
}

/// `code` as [`same_code`] compares it, for keys of a map: two codes are one iff their folded
/// forms are equal.
pub fn folded(code: &str) -> String {
    folded_chars(code).collect()
}

fn folded_chars(code: &str) -> impl Iterator<Item = char> + '_ {
    code.chars().flat_map(char::to_lowercase)
}

/// `bytes` read as `T`; `expected` names the document in the error.
fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    origin: &str,
    expected: &'static str,
) -> Result<T, MetaError> {
    serde_json::from_slice(bytes).map_err(|source| MetaError::NotJson {
        origin: origin.to_string(),
        expected,
        source,
    })
}

fn shape(origin: &str, what: impl Into<String>) -> MetaError {
    MetaError::Shape {
        origin: origin.to_string(),
        what: what.into(),
    }
}

fn too_large(origin: &str, what: &'static str, count: usize, limit: usize) -> MetaError {
    MetaError::TooLarge {
        origin: origin.to_string(),
        what,
        count,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each variable of `meta` as (code, values, elimination, time, content), for tests to
    /// compare with what a fixture holds.
    pub(super) fn summary(meta: &TableMeta) -> Vec<(&str, usize, bool, bool, bool)> {
        meta.variables
            .iter()
            .map(|v| {
                (
                    v.code.as_str(),
                    v.values.len(),
                    v.elimination,
                    v.time,
                    v.content,
                )
            })
            .collect()
    }

    const ORIGIN: &str = "https://example.org/api/v1/sv/db/T1";

    /// v1 metadata with one variable per entry of `sizes`, coded `V0`, `V1`, …
    fn v1_with(sizes: &[usize]) -> Vec<u8> {
        let variables: Vec<_> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let codes: Vec<_> = (0..n).map(|c| format!("\"{c}\"")).collect();
                let codes = codes.join(",");
                format!(r#"{{"code":"V{i}","text":"v","values":[{codes}],"valueTexts":[{codes}]}}"#)
            })
            .collect();
        format!(r#"{{"title":"t","variables":[{}]}}"#, variables.join(",")).into_bytes()
    }

    #[test]
    fn more_variables_than_the_bound_are_refused() {
        let error = v1_table(&v1_with(&[1; MAX_VARIABLES + 1]), "T1", ORIGIN).unwrap_err();
        insta::assert_snapshot!(error, @"https://example.org/api/v1/sv/db/T1: the metadata lists 101 variables, more than the 100 indikator accepts; check `url`/`table` in [source]: no PxWeb table is that large");
        assert!(v1_table(&v1_with(&[1; MAX_VARIABLES]), "T1", ORIGIN).is_ok());
    }

    #[test]
    fn more_values_than_the_bound_are_refused() {
        let half = MAX_VALUES / 2;
        let error = v1_table(&v1_with(&[half, half + 1]), "T1", ORIGIN).unwrap_err();
        insta::assert_snapshot!(error, @"https://example.org/api/v1/sv/db/T1: the metadata lists 1000001 values, more than the 1000000 indikator accepts; check `url`/`table` in [source]: no PxWeb table is that large");
    }

    #[test]
    fn a_variable_without_values_or_listed_twice_is_refused() {
        insta::assert_snapshot!(v1_table(&v1_with(&[1, 0]), "T1", ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: variable `V1` has no values; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
        let twice = r#"{"title":"t","variables":[
            {"code":"Ålder","text":"a","values":["1"],"valueTexts":["1"]},
            {"code":"ÅLDER","text":"a","values":["1"],"valueTexts":["1"]}]}"#;
        insta::assert_snapshot!(v1_table(twice.as_bytes(), "T1", ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: the table's variables lists `ÅLDER` twice (PxWeb compares codes ignoring case), so a query for it is ambiguous; report the table to its producer and leave it out meanwhile");
    }

    #[test]
    fn look_ups_ignore_unicode_case_and_find_nothing_else() {
        let variable = Variable {
            code: "Ålder".into(),
            label: "ålder".into(),
            values: vec![Value {
                code: "Tot".into(),
                label: "totalt".into(),
            }],
            elimination: true,
            time: false,
            content: false,
            codelists: Vec::new(),
        };
        let meta = TableMeta {
            id: "T".into(),
            label: "t".into(),
            variables: vec![variable],
            notes: Vec::new(),
        };
        let found = meta.variable("ÅLDER").unwrap();
        assert_eq!(found.value("TOT").unwrap().label, "totalt");
        assert!(meta.variable("Alder").is_none());
        assert!(found.value("To").is_none());
    }
}
