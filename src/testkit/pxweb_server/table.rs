//! The tables the test server serves: variables, values, code lists, and cell values that are
//! a pure function of the cell's position, so that a test can compute what any answer holds.
//!
//! Owns: `PxTable` and its parts, `PxTable::generated` and the `--table` spec the example
//! binary reads, and the cell function (`cell`, `PxTable::value_at`).
//! Must not: know HTTP or either API's JSON (`v1.rs`, `v2.rs`, `jsonstat.rs`), or read fixture
//! bytes (`load.rs`).

/// A variable's part in its table, for [`PxTable::generated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Must be selected (v1 answers all its values when it is left out; v2 refuses).
    Plain,
    /// May be left out; its first value is the elimination value (the total).
    Eliminable,
    /// The time variable: codes are consecutive years ending in 2024.
    Time,
    /// The content variable (`role.metric`), with a unit per value.
    Content,
}

/// The unit of a content value, as json-stat2 `category.unit` gives it at SCB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxUnit {
    pub base: String,
    pub decimals: u32,
}

/// One value of a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxValue {
    pub code: String,
    pub label: String,
    /// Content values only.
    pub unit: Option<PxUnit>,
}

/// What a v2 code list is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodelistKind {
    /// A subset of the variable's own codes (`vs_CKM02Län`).
    Valueset,
    /// New codes, each the sum of some of the variable's values (`agg_Ålder10årJ`).
    Aggregation,
}

impl CodelistKind {
    /// As v2 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valueset => "Valueset",
            Self::Aggregation => "Aggregation",
        }
    }
}

/// One value of a code list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodelistValue {
    pub code: String,
    pub label: String,
    /// The variable's codes this value stands for: itself in a value set, its parts in an
    /// aggregation (unsorted, as SCB's are).
    pub value_map: Vec<String>,
}

/// A v2 code list a variable offers (v1 reaches it as `vs:<id>`/`agg:<id>`, without the
/// `vs_`/`agg_` prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxCodelist {
    /// Case-sensitive, as at SCB.
    pub id: String,
    pub label: String,
    pub kind: CodelistKind,
    /// Empty for code lists loaded from metadata fixtures, which name code lists but do not
    /// list their values.
    pub values: Vec<CodelistValue>,
}

/// A variable (dimension), in table order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxVariable {
    pub code: String,
    pub label: String,
    /// Codes unique.
    pub values: Vec<PxValue>,
    pub elimination: bool,
    /// The value an eliminated variable is reduced to. Without one the server answers as if
    /// the first value were the total (SCB lists its totals first: `00` Riket, `TOT`), so that
    /// an eliminated answer's cells are still cells of [`PxTable::value_at`].
    pub elimination_value: Option<String>,
    pub time: bool,
    pub content: bool,
    pub codelists: Vec<PxCodelist>,
}

impl PxVariable {
    /// The index of `code`, compared case-insensitively as both APIs do.
    pub fn position(&self, code: &str) -> Option<usize> {
        let code = code.to_lowercase();
        self.values
            .iter()
            .position(|v| v.code.to_lowercase() == code)
    }

    /// The index of the value an eliminated variable is reduced to.
    pub fn elimination_index(&self) -> usize {
        self.elimination_value
            .as_deref()
            .and_then(|code| self.position(code))
            .unwrap_or(0)
    }
}

/// A table as both APIs serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxTable {
    /// v2 id (`TAB638`); also `extension.px.tableid` in v1 answers.
    pub id: String,
    /// v1 path below the language: database, levels, table (`ssd/BE/BE0101/BE0101A/BefolkningNy`).
    pub v1_path: String,
    pub label: String,
    /// RFC 3339 (`2026-06-08T06:00:00Z`); v1 node lists show it without the zone.
    pub updated: String,
    pub discontinued: Option<bool>,
    /// When `None`, the first and last time codes are served.
    pub first_period: Option<String>,
    pub last_period: Option<String>,
    pub time_unit: Option<String>,
    pub source: String,
    pub notes: Vec<String>,
    pub variables: Vec<PxVariable>,
}

/// The value of the cell at `flat`, the row-major index over all of a table's variables in
/// table order (last variable fastest); `None` is a cell served as `null` with status `..`.
/// A prime stride keeps neighbouring cells different, so a shifted index is caught.
pub fn cell(flat: u64) -> Option<f64> {
    (flat % 101 != 7).then(|| ((flat * 7919) % 100_003) as f64)
}

impl PxTable {
    /// A table of any size with codes made up from `variables` (`code`, number of values,
    /// role), updated `2024-01-01T08:00:00Z`, under `ssd/TEST/TEST01/<id>` in v1. Costs only
    /// its values: cells are computed when an answer needs them.
    pub fn generated(id: &str, variables: &[(&str, usize, Role)]) -> PxTable {
        let variables = variables
            .iter()
            .map(|&(code, n, role)| generated_variable(code, n, role))
            .collect();
        PxTable {
            id: id.to_owned(),
            v1_path: format!("ssd/TEST/TEST01/{id}"),
            label: format!("Testtabell {id}"),
            updated: "2024-01-01T08:00:00Z".to_owned(),
            discontinued: Some(false),
            first_period: None,
            last_period: None,
            time_unit: Some("Annual".to_owned()),
            source: "SCB".to_owned(),
            notes: Vec::new(),
            variables,
        }
    }

    /// Population by region (`regions`, e.g. every code of `schemas/areas.csv`), age 0–19, sex
    /// (`1`, `2`, `1+2`), one content (`BE0101N1`) and 107 years: with the 313 areas of the
    /// repository about two million cells, the size of a real municipal history table. Real
    /// region codes let the daemon's harmonisation accept every row; the end-to-end tests and
    /// the example binary's `--population` (the PxWeb bench) share it.
    pub fn population(id: &str, regions: &[String]) -> PxTable {
        let mut table = Self::generated(
            id,
            &[
                ("Region", regions.len(), Role::Eliminable),
                ("Alder", 20, Role::Plain),
                ("Kon", 3, Role::Eliminable),
                ("ContentsCode", 1, Role::Content),
                ("Tid", 107, Role::Time),
            ],
        );
        let ages: Vec<String> = (0..20).map(|age| age.to_string()).collect();
        let sexes = ["1", "2", "1+2"].map(String::from);
        let codes: [&[String]; 4] = [regions, &ages, &sexes, &["BE0101N1".to_owned()]];
        for (variable, codes) in table.variables.iter_mut().zip(codes) {
            for (value, code) in variable.values.iter_mut().zip(codes) {
                value.code = code.clone();
                value.label = format!("label {code}");
            }
        }
        table
    }

    /// A generated table from the example binary's `--table` syntax:
    /// `TAB9000:Region=300,Kon=3:elim,ContentsCode=1:content,Tid=40:time`.
    pub fn from_spec(spec: &str) -> Result<PxTable, SpecError> {
        let bad = |why: &'static str| SpecError {
            spec: spec.to_owned(),
            why,
        };
        let (id, list) = spec
            .split_once(':')
            .ok_or(bad("no `:` after the table id"))?;
        let mut variables = Vec::new();
        for part in list.split(',') {
            let (code, rest) = part.split_once('=').ok_or(bad("a variable has no `=`"))?;
            let (n, role) = rest.split_once(':').unwrap_or((rest, ""));
            let n = n
                .parse()
                .map_err(|_| bad("a value count is not a number"))?;
            let role = match role {
                "" => Role::Plain,
                "elim" => Role::Eliminable,
                "time" => Role::Time,
                "content" => Role::Content,
                _ => return Err(bad("roles are `elim`, `time` and `content`")),
            };
            if n == 0 {
                return Err(bad("a variable needs at least one value"));
            }
            variables.push((code, n, role));
        }
        Ok(Self::generated(id, &variables))
    }

    /// Cells in the whole table.
    pub fn cells(&self) -> u64 {
        self.variables
            .iter()
            .map(|v| v.values.len() as u64)
            .product()
    }

    /// The variable called `code`, compared case-insensitively.
    pub fn variable(&self, code: &str) -> Option<(usize, &PxVariable)> {
        let code = code.to_lowercase();
        self.variables
            .iter()
            .enumerate()
            .find(|(_, v)| v.code.to_lowercase() == code)
    }

    /// What the server answers for the cell at `codes` (one value code per variable, in
    /// variable order). Panics on a wrong number of codes or an unknown code: a bug in the test.
    pub fn value_at(&self, codes: &[&str]) -> Option<f64> {
        assert_eq!(
            codes.len(),
            self.variables.len(),
            "value_at wants one code per variable of {}",
            self.id
        );
        let positions: Vec<usize> = self
            .variables
            .iter()
            .zip(codes)
            .map(|(variable, code)| {
                variable.position(code).unwrap_or_else(|| {
                    panic!("{} has no value `{code}` in {}", self.id, variable.code)
                })
            })
            .collect();
        cell(self.flat(&positions))
    }

    /// The row-major index of the cell at `positions` (one per variable).
    pub(super) fn flat(&self, positions: &[usize]) -> u64 {
        self.variables
            .iter()
            .zip(positions)
            .fold(0, |flat, (variable, &p)| {
                flat * variable.values.len() as u64 + p as u64
            })
    }

    /// The first and last time codes, as `firstPeriod`/`lastPeriod` when not set.
    pub(super) fn periods(&self) -> (Option<String>, Option<String>) {
        let time = self.variables.iter().find(|v| v.time);
        let first = time.and_then(|v| v.values.first()).map(|v| v.code.clone());
        let last = time.and_then(|v| v.values.last()).map(|v| v.code.clone());
        (
            self.first_period.clone().or(first),
            self.last_period.clone().or(last),
        )
    }
}

fn generated_variable(code: &str, n: usize, role: Role) -> PxVariable {
    let width = n.to_string().len();
    let values = (0..n)
        .map(|i| match role {
            Role::Time => {
                let year = (2025 - n as i64 + i as i64).to_string();
                PxValue {
                    label: year.clone(),
                    code: year,
                    unit: None,
                }
            }
            Role::Content => PxValue {
                code: format!("{code}{i:0width$}"),
                label: format!("innehåll {i}"),
                unit: Some(PxUnit {
                    base: "antal".to_owned(),
                    decimals: 0,
                }),
            },
            Role::Plain | Role::Eliminable => PxValue {
                code: format!("{i:0width$}"),
                label: format!("{code} {i}"),
                unit: None,
            },
        })
        .collect();
    PxVariable {
        code: code.to_owned(),
        label: code.to_lowercase(),
        values,
        elimination: role == Role::Eliminable,
        elimination_value: None,
        time: role == Role::Time,
        content: role == Role::Content,
        codelists: Vec::new(),
    }
}

/// A `--table` spec that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("table spec `{spec}`: {why} (write `TAB9000:Region=300,Kon=3:elim,Tid=40:time`)")]
pub struct SpecError {
    pub spec: String,
    pub why: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_makes_the_variables_it_names() {
        let table = PxTable::from_spec("TAB9000:Region=300,Kon=3:elim,Tid=40:time").unwrap();
        assert_eq!(table.id, "TAB9000");
        assert_eq!(table.cells(), 300 * 3 * 40);
        assert!(table.variables[1].elimination && table.variables[2].time);
        assert_eq!(table.variables[0].values[7].code, "007");
        assert_eq!(table.variables[2].values[39].code, "2024");
    }

    #[test]
    fn spec_without_counts_says_how_to_write_one() {
        let err = PxTable::from_spec("TAB9000:Region").unwrap_err();
        assert_eq!(
            err.to_string(),
            "table spec `TAB9000:Region`: a variable has no `=` \
             (write `TAB9000:Region=300,Kon=3:elim,Tid=40:time`)"
        );
    }

    #[test]
    fn value_at_is_the_cell_of_the_row_major_index() {
        let table = PxTable::generated("TAB1", &[("A", 3, Role::Plain), ("Tid", 4, Role::Time)]);
        assert_eq!(table.value_at(&["1", "2023"]), cell(4 + 2));
        assert_eq!(
            table.value_at(&["1", "2024"]),
            None,
            "flat 7 is a `..` cell"
        );
    }

    #[test]
    fn two_million_cells_cost_only_their_values() {
        let table = PxTable::generated(
            "TAB2",
            &[("Region", 2_000, Role::Plain), ("Tid", 1_000, Role::Time)],
        );
        assert_eq!(table.cells(), 2_000_000);
        assert_eq!(table.value_at(&["1999", "2024"]), cell(1_999_999));
    }
}
