//! PxWeb metadata as both APIs give it, read into one shape: a table's variables with their
//! codes and labels, whether each may be eliminated, which is time and which is content, and
//! what the table says about itself (`updated`, notes, discontinued).
//!
//! Owns: parsing v1 table metadata (`GET <table-url>`), v1 node lists (`GET <level-url>`,
//! where a table's `updated` lives), v2 `/tables/{id}`, `/tables/{id}/metadata` (json-stat2
//! without values), `/codelists/{id}` and `/tables` pages.
//! Must not: send requests, or decide what to select (`select.rs`).

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
