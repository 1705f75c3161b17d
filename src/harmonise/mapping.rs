//! The checked `[map]` of a pipeline: what harmonise needs, with code lists loaded and markers
//! resolved, so that harmonising never sees an unchecked string.
//!
//! Owns: the `Mapping` type and the built-in PxWeb and PX cell markers.
//! Must not: read pipeline files (pipeline/check.rs builds a Mapping) or touch Arrow.

use std::collections::HashMap;

use crate::harmonise::codes::CodeList;
use crate::harmonise::periods::PeriodKind;
use crate::model::Status;

/// How to fill one model column.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// The same model value on every row.
    Fixed(String),
    /// A source column, its codes mapped through `codes` when given.
    Column {
        column: String,
        codes: Option<CodeList>,
    },
}

/// How area codes are written in the source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AreaNaming {
    /// SCB region codes.
    Code,
    /// Area names, looked up in the area catalogue.
    Name,
}

/// What a cell marker means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Marker {
    pub status: Status,
    /// `Some(0.0)` for markers that stand for a true zero (PxWeb `-`).
    pub value: Option<f64>,
}

/// The checked `[map]` of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub indicator: Field,
    pub area_column: String,
    pub area_naming: AreaNaming,
    pub area_codes: Option<CodeList>,
    /// Area codes that are network ids rather than SCB codes are network rows (else refused).
    pub area_networks: bool,
    pub period_column: String,
    pub period_kind: PeriodKind,
    pub sex: Field,
    pub age: Field,
    pub grade: Field,
    /// (model key, source column), sorted by key.
    pub breakdown: Vec<(String, String)>,
    pub unit: String,
    pub value: String,
    pub sample_size: Option<String>,
    pub numerator: Option<String>,
    pub denominator: Option<String>,
    pub ci_lower: Option<String>,
    pub ci_upper: Option<String>,
    /// On network rows: how many member areas the value rests on.
    pub members: Option<String>,
    /// Cell markers (raw text of a status column or of a text value column) → meaning.
    pub markers: HashMap<String, Marker>,
    /// Decimal separator of numbers written as text.
    pub decimal: char,
}

impl Mapping {
    /// Every source column the mapping reads, in `[map]` order, each once.
    pub fn source_columns(&self) -> Vec<&str> {
        fn column(field: &Field) -> Option<&str> {
            match field {
                Field::Column { column, .. } => Some(column.as_str()),
                Field::Fixed(_) => None,
            }
        }
        let mut columns: Vec<&str> = Vec::new();
        let named = [column(&self.indicator), Some(self.area_column.as_str())]
            .into_iter()
            .chain([Some(self.period_column.as_str())])
            .chain([column(&self.sex), column(&self.age), column(&self.grade)])
            .chain(
                self.breakdown
                    .iter()
                    .map(|(_, source)| Some(source.as_str())),
            )
            .chain([Some(self.value.as_str())])
            .chain(
                [
                    &self.sample_size,
                    &self.numerator,
                    &self.denominator,
                    &self.ci_lower,
                    &self.ci_upper,
                    &self.members,
                ]
                .into_iter()
                .map(Option::as_deref),
            );
        for name in named.flatten() {
            if !columns.contains(&name) {
                columns.push(name);
            }
        }
        columns
    }
}

/// The PxWeb markers every pipeline knows (SOURCES a): `..` not available, `.` not applicable,
/// `-` magnitude zero; and the PX decoder's names for a file's own symbols (`px_markers`).
pub fn builtin_markers() -> HashMap<String, Marker> {
    // PxWeb writes `-` for "magnitude zero", not for missing: keep 0.0 with status `ok`, or a
    // county total looks incomplete because municipalities that truly had none count as missing.
    let mut markers = HashMap::from([
        (
            "..".to_string(),
            Marker {
                status: Status::Missing,
                value: None,
            },
        ),
        (
            ".".to_string(),
            Marker {
                status: Status::NotApplicable,
                value: None,
            },
        ),
        (
            "-".to_string(),
            Marker {
                status: Status::Ok,
                value: Some(0.0),
            },
        ),
    ]);
    markers.extend(px_markers());
    markers
}

/// The names `formats::px` gives a PX file's own symbols: `DATASYMBOL1`..`6` and `DATASYMBOLSUM`
/// missing (the file's texts for them are free, "n.a.", "hidden", "sum": none gives a value),
/// `DATASYMBOLNIL` a true zero like PxWeb's `-`, `PRELIMINARY` provisional with its value kept.
fn px_markers() -> impl Iterator<Item = (String, Marker)> {
    let marker = |status, value| Marker { status, value };
    let dots = (1..=6).map(move |n| (format!("DATASYMBOL{n}"), marker(Status::Missing, None)));
    dots.chain([
        ("DATASYMBOLSUM".to_string(), marker(Status::Missing, None)),
        ("DATASYMBOLNIL".to_string(), marker(Status::Ok, Some(0.0))),
        ("PRELIMINARY".to_string(), marker(Status::Provisional, None)),
    ])
}

/// The default model value of an unmapped dimension.
pub mod defaults {
    pub const SEX: &str = "T";
    pub const AGE: &str = "total";
    pub const GRADE: &str = "";
    pub const VALUE_COLUMN: &str = "value";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_nil_is_a_true_zero_and_a_preliminary_value_is_kept() {
        let markers = builtin_markers();
        assert_eq!(markers["DATASYMBOLNIL"], markers["-"]);
        assert_eq!(markers["DATASYMBOL3"].status, Status::Missing);
        assert_eq!(markers["DATASYMBOLSUM"].value, None);
        let preliminary = markers["PRELIMINARY"];
        assert_eq!(
            (preliminary.status, preliminary.value),
            (Status::Provisional, None)
        );
    }
}
