//! A pipeline file exactly as written (DESIGN §5): serde types, nothing resolved or checked.
//!
//! Owns: the keys operators write and their defaults.
//! Must not: resolve paths, load code lists or schemas (check.rs does), or run anything.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::harmonise::periods::PeriodKind;

/// Default for [`PipelineFile::max_reject_ratio`]: any refused row fails the run.
pub const DEFAULT_MAX_REJECT_RATIO: f64 = 0.0;

/// A pipeline file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    /// `[a-z0-9-]+`, unique; names the warehouse partition.
    pub id: String,
    /// Crontab (5 fields, or 6 with seconds), evaluated in `timezone`; used by the daemon.
    pub schedule: Option<String>,
    pub timezone: Option<String>,
    /// How often the daemon runs a transiently failed run again (default 3).
    pub retries: Option<u32>,
    /// Longest a run may take before it is cancelled (default: no limit).
    pub timeout_secs: Option<u64>,
    /// Up to this many seconds' random delay after each fire time (default 0).
    pub jitter_secs: Option<u64>,
    pub description: Option<String>,
    /// Largest share of source rows that may be refused before the run fails (0.0–1.0).
    #[serde(default)]
    pub max_reject_ratio: Option<f64>,
    pub source: SourceSpec,
    pub validate: Option<ValidateSpec>,
    /// Required but for Kolada, which has a default.
    pub map: Option<MapSpec>,
}

/// `[source]`: where the data comes from. One variant per source kind.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SourceSpec {
    File(FileSpec),
    /// A file served at a URL (or several: the pieces of one table), in any file format.
    Url(FileSpec),
    /// PxWeb API v1 (SCB's `api.scb.se`, Folkhälsodata, Skolverket, municipal hosts).
    Pxweb(PxwebSpec),
    /// PxWebApi 2.0 (SCB's `statistikdatabasen.scb.se/api/v2`).
    Pxweb2(PxwebSpec),
    /// Kolada API v3 (RKA's municipal key figures).
    Kolada(KoladaSpec),
}

/// `kind = "kolada"`: KPIs of Kolada by municipality and year.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KoladaSpec {
    /// The API root; default `https://api.kolada.se/v3`.
    pub url: Option<String>,
    /// KPI ids (`N15428`).
    pub kpi: Vec<String>,
    /// `"*"` (every municipality and region, not groups) or a list of Kolada ids.
    pub municipality: Option<toml::Value>,
    /// `"*"` or a list of years.
    pub year: Option<toml::Value>,
    /// Keep Kolada's municipality groups (unweighted means of their members).
    pub groups: Option<bool>,
    /// Ids per path segment of a data request (default 20, at most 25).
    pub batch_ids: Option<usize>,
    /// The most cells one page may decode to (default `DEFAULT_MAX_TABLE_CELLS`).
    pub max_table_cells: Option<u64>,
}

/// `kind = "pxweb"` and `kind = "pxweb2"`: one table of a PxWeb host. One struct for both APIs
/// (check refuses the keys of the other API), since `deny_unknown_fields` rules out a
/// flattened shared part.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PxwebSpec {
    /// v1: the table URL (`https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BE0101A/BefolkningNy`);
    /// v2: the API root (`https://statistikdatabasen.scb.se/api/v2`).
    pub url: String,
    /// v2: the table id, `TABnnnn`.
    pub table: Option<String>,
    /// v2: the language of labels and answers; default `sv` (v1: the URL's language segment).
    pub lang: Option<String>,
    /// v1: where the host's limits are read; default the language level of `url` + `?config`.
    pub config_url: Option<String>,
    /// Per variable; a variable left out is eliminated (the table must allow it).
    #[serde(default)]
    pub select: BTreeMap<String, SelectSpec>,
    /// The model's `source` column; default from the host (`scb`, `fohm`, `skolverket`).
    pub producer: Option<String>,
    /// Overrides of the host's limits, for a host whose config says nothing or too much.
    pub server_max_cells: Option<u64>,
    pub server_max_calls: Option<u32>,
    pub server_window_secs: Option<u64>,
    /// The most cells the whole table may have (default `DEFAULT_MAX_TABLE_CELLS`).
    pub max_table_cells: Option<u64>,
}

/// One variable's `select`: `"*"`, a wildcard pattern (`"01*"`), `"top:5"` (the latest five),
/// a list of codes, or a table naming a v1 value set or aggregation
/// (`{ filter = "vs:RegionKommun07", values = [...] }`) or a v2 code list
/// (`{ codelist = "vs_RegionKommun07", values = "*" }`).
#[derive(Debug, Clone, PartialEq)]
pub enum SelectSpec {
    Values(SelectValues),
    Table(SelectTable),
}

/// The table form of a variable's `select`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectTable {
    /// v1 only: `vs:<value set>` or `agg:<aggregation>`.
    pub filter: Option<String>,
    /// v2 only: a code list id (`vs_…`, `agg_…`), case-sensitive.
    pub codelist: Option<String>,
    pub values: SelectValues,
}

/// `"*"`, a pattern, `"top:N"`, or a list of codes.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectValues {
    Text(String),
    Codes(Vec<String>),
}

impl<'de> Deserialize<'de> for SelectSpec {
    // By hand rather than `untagged`, for messages that say what was expected.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SelectSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "\"*\", a pattern, \"top:N\", a list of codes, or a table with `values`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SelectSpec, E> {
                Ok(SelectSpec::Values(SelectValues::Text(text.to_string())))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<SelectSpec, A::Error> {
                codes(seq).map(|codes| SelectSpec::Values(SelectValues::Codes(codes)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SelectSpec, A::Error> {
                SelectTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SelectSpec::Table)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl<'de> Deserialize<'de> for SelectValues {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SelectValues;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"*\", a pattern, \"top:N\" or a list of codes")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SelectValues, E> {
                Ok(SelectValues::Text(text.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<SelectValues, A::Error> {
                codes(seq).map(SelectValues::Codes)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A list of codes; a number in it (`Alder = [0, 1]`) is taken as the code it spells.
fn codes<'de, A: serde::de::SeqAccess<'de>>(mut seq: A) -> Result<Vec<String>, A::Error> {
    let mut codes = Vec::new();
    while let Some(code) = seq.next_element::<Code>()? {
        codes.push(code.0);
    }
    Ok(codes)
}

/// A code written as a string or an integer.
struct Code(String);

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Code;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a code (a string)")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Code, E> {
                Ok(Code(text.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Code, E> {
                Ok(Code(n.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Code, E> {
                Ok(Code(n.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `kind = "file"`: a local file, or several files that are pieces of one table; and
/// `kind = "url"`: a file served at an http(s) URL, or several URLs, decoded as the same file
/// read locally would be. One struct for both, so that every format a file may have is read at
/// a URL with the same keys and check (`deny_unknown_fields` rules out flattening shared keys
/// into two structs); check refuses the other kind's `path` or `url`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// `kind = "file"`, relative to the pipeline file: one path, or the pieces of one table.
    pub path: Option<Paths>,
    /// `kind = "url"`: one http(s) URL, or the pieces of one table.
    pub url: Option<Urls>,
    pub format: FormatSpec,
    /// The producer written to the model's `source` column (`scb`, `lupp`); default `file`
    /// (for a URL, a known host's: `scb`, `fohm`, `skolverket`).
    pub producer: Option<String>,
    /// The table id written to `source_table`; default the (first) file name, or the first
    /// URL's last path segment.
    pub table: Option<String>,
    /// CSV: one character, default `,`.
    pub delimiter: Option<String>,
    /// CSV: `utf-8` (default), `windows-1252`, `iso-8859-1`.
    pub encoding: Option<String>,
    /// CSV: `.` (default) or `,`.
    pub decimal: Option<String>,
    /// CSV: whether the first row names the columns (default true).
    pub header: Option<bool>,
    /// PX: the language to read (default [`DEFAULT_LANG`](crate::formats::px::DEFAULT_LANG) if
    /// the file has it, else its main language).
    pub lang: Option<String>,
    /// XLSX: the sheet, by name (`"Data"`) or 1-based position (`2`); default the first.
    pub sheet: Option<SheetSpec>,
    /// XLSX: the 1-based row that names the columns; default the first row with text in every
    /// column.
    pub header_row: Option<i64>,
    /// The most cells a decoded table may have (default `DEFAULT_MAX_TABLE_CELLS`).
    pub max_table_cells: Option<u64>,
}

impl FileSpec {
    /// The format keys as written, for the check every source kind shares.
    pub fn format_keys(&self) -> FormatKeys<'_> {
        FormatKeys {
            format: self.format,
            delimiter: self.delimiter.as_deref(),
            encoding: self.encoding.as_deref(),
            decimal: self.decimal.as_deref(),
            header: self.header,
            lang: self.lang.as_deref(),
            sheet: self.sheet.as_ref(),
            header_row: self.header_row,
            max_table_cells: self.max_table_cells,
        }
    }
}

/// The format keys of a `[source]`, borrowed from whichever kind's spec wrote them: every kind
/// keeps them flat in `[source]` (`deny_unknown_fields` rules out a flattened shared struct),
/// and one check turns them into a `Format`.
#[derive(Debug, Clone, Copy)]
pub struct FormatKeys<'a> {
    pub format: FormatSpec,
    pub delimiter: Option<&'a str>,
    pub encoding: Option<&'a str>,
    pub decimal: Option<&'a str>,
    pub header: Option<bool>,
    pub lang: Option<&'a str>,
    pub sheet: Option<&'a SheetSpec>,
    pub header_row: Option<i64>,
    pub max_table_cells: Option<u64>,
}

/// `sheet = "Data"` (a name) or `sheet = 2` (a 1-based position, checked by check.rs).
#[derive(Debug, Clone, PartialEq)]
pub enum SheetSpec {
    Name(String),
    Index(i64),
}

impl<'de> Deserialize<'de> for SheetSpec {
    // By hand rather than `untagged`, for a message that says what was expected.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SheetSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sheet name (a string) or a 1-based sheet number")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<SheetSpec, E> {
                Ok(SheetSpec::Name(name.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<SheetSpec, E> {
                Ok(SheetSpec::Index(n))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// `path = "a.csv"` or `path = ["a.csv", "b.csv"]`.
pub type Paths = OneOrMany<PathBuf>;

/// `url = "https://…/a.csv"` or a list of URLs.
pub type Urls = OneOrMany<String>;

/// A key written as one value or a list of them (the pieces of one table).
#[derive(Debug, Clone, PartialEq)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

/// What a [`OneOrMany`] holds, as its error message names it.
pub trait Piece: for<'de> Deserialize<'de> + for<'a> From<&'a str> + Clone {
    /// What was expected, for serde's "invalid type: …, expected …".
    const EXPECTED: &'static str;
}

impl Piece for PathBuf {
    const EXPECTED: &'static str = "a file path or a list of file paths";
}

// A string piece is a URL: `url` is the only list of strings written this way.
impl Piece for String {
    const EXPECTED: &'static str = "a URL or a list of URLs";
}

impl<'de, T: Piece> Deserialize<'de> for OneOrMany<T> {
    // By hand rather than `untagged`, whose error ("did not match any variant") names neither
    // what was expected nor what was found.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Piece> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, one: &str) -> Result<Self::Value, E> {
                Ok(OneOrMany::One(T::from(one)))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut many = Vec::new();
                while let Some(piece) = seq.next_element::<T>()? {
                    many.push(piece);
                }
                Ok(OneOrMany::Many(many))
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

impl<T: Clone> OneOrMany<T> {
    /// The pieces as written, in order.
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            Self::One(one) => vec![one.clone()],
            Self::Many(many) => many.clone(),
        }
    }
}

/// Decoders a file source can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FormatSpec {
    Jsonstat,
    Csv,
    /// PC-Axis.
    Px,
    Xlsx,
}

impl FormatSpec {
    /// The value of `format` that names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonstat => "jsonstat",
            Self::Csv => "csv",
            Self::Px => "px",
            Self::Xlsx => "xlsx",
        }
    }
}

/// `[validate]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSpec {
    /// A Frictionless Table Schema, relative to the project root (the settings directory).
    pub schema: PathBuf,
}

/// `[map]`: SourceTable columns → model columns.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    pub indicator: IndicatorSpec,
    pub area: AreaSpec,
    pub period: PeriodSpec,
    pub sex: Option<DimensionSpec>,
    pub age: Option<DimensionSpec>,
    pub grade: Option<DimensionSpec>,
    /// Model key → source column, for every other dimension kept.
    #[serde(default)]
    pub breakdown: BTreeMap<String, String>,
    pub unit: String,
    /// The value column; default `value` (the numeric column of JSON-stat and PX tables).
    pub value: Option<String>,
    pub sample_size: Option<String>,
    pub numerator: Option<String>,
    pub denominator: Option<String>,
    pub ci_lower: Option<String>,
    pub ci_upper: Option<String>,
    /// On network rows: how many member areas the value rests on (Kolada's `count`).
    pub members: Option<String>,
    /// Cell markers → status, added to the built-in PxWeb markers (`..`, `.`, `-`).
    #[serde(default)]
    pub missing: BTreeMap<String, String>,
}

/// `indicator = "id"` (a fixed id) or `{ column, codes }`.
pub type IndicatorSpec = OrTable<ColumnSpec>;

/// `area = "Region"` (a column) or `{ column, by = "code" | "name", codes }`.
pub type AreaSpec = OrTable<AreaColumnSpec>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaColumnSpec {
    pub column: String,
    #[serde(default)]
    pub by: AreaBy,
    pub codes: Option<CodesSpec>,
    /// Codes that are no SCB region code but a network's id (Kolada's `G…` groups) are kept as
    /// network rows rather than refused.
    #[serde(default)]
    pub networks: bool,
}

/// How an area column names areas.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AreaBy {
    /// SCB region codes (`00`, `01`, `0180`).
    #[default]
    Code,
    /// Names (`Stockholm`, `Stockholms län`), looked up in `schemas/areas.csv`.
    Name,
}

/// `period = "Tid"` (a column, kind auto) or `{ column, kind }`.
pub type PeriodSpec = OrTable<PeriodColumnSpec>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodColumnSpec {
    pub column: String,
    #[serde(default = "auto")]
    pub kind: PeriodKind,
}

fn auto() -> PeriodKind {
    PeriodKind::Auto
}

/// `sex = "Kon"` (a column), `{ column, codes }` or `{ value = "T" }` for a table without one.
pub type DimensionSpec = OrTable<DimensionColumnSpec>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionColumnSpec {
    pub column: Option<String>,
    pub codes: Option<CodesSpec>,
    /// A fixed model value for every row.
    pub value: Option<String>,
}

/// `{ column, codes }` where the column is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub column: String,
    pub codes: Option<CodesSpec>,
}

/// Inline codes `{ "1" = "M" }` or the name of `schemas/codelists/<name>.toml`.
pub type CodesSpec = OrTable<BTreeMap<String, String>>;

/// A key written either as a string or as a table. Unlike `#[serde(untagged)]`, a mistake inside
/// the table (an unknown key, a missing `column`) keeps serde's precise message.
#[derive(Debug, Clone, PartialEq)]
pub enum OrTable<T> {
    Text(String),
    Table(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrTable<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OrTable<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a table")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(OrTable::Text(text.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OrTable::Table)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}
