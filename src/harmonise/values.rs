//! Values and their status, and the other numeric model columns (sample size, numerator,
//! denominator, confidence limits), from numeric or text source columns.
//!
//! Owns: the explicit mapping of cell markers to status (PxWeb `..` `.` `-` built in, more per
//! pipeline) and parsing numbers written as text, once per distinct text.
//! Must not: map codes, areas or periods (mod.rs and its siblings do).

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, StringArray};

use super::{HarmoniseError, Mapping, Marker, text_column};
use crate::formats::Chunk;
use crate::formats::table::STATUS;
use crate::model::{self, Status};
use crate::numbers::NumberFormat;
use crate::rejects::Reason;

/// The value column and each row's status.
pub(super) enum Measure {
    /// A numeric value column (JSON-stat, PX), with the raw markers of the status column if any.
    Numeric {
        values: Float64Array,
        markers: Option<(Int32Array, Vec<Result<Marker, String>>)>,
    },
    /// A value column written as text (CSV, XLSX): each distinct text is a number or a marker.
    Text {
        column: String,
        keys: Int32Array,
        per_category: Vec<Result<(Option<f64>, Status), String>>,
    },
}

fn unknown_marker(marker: &str) -> String {
    format!(
        "marker `{marker}` has no status; give it one under [map], \
         e.g. missing = {{ \"{marker}\" = \"suppressed\" }}"
    )
}

/// Whether a status means there is no value to show.
fn hides_value(status: Status) -> bool {
    matches!(
        status,
        Status::Missing | Status::NotApplicable | Status::Suppressed
    )
}

pub(super) fn measure(chunk: &Chunk, mapping: &Mapping) -> Result<Measure, HarmoniseError> {
    let column = chunk.batch.column_by_name(&mapping.value);
    if let Some(values) = column.and_then(|c| c.as_any().downcast_ref::<Float64Array>()) {
        let markers = match chunk.batch.column_by_name(STATUS) {
            Some(_) => {
                let (keys, categories) = text_column(chunk, "value", STATUS)?;
                let per_category = categories
                    .iter()
                    .map(|m| {
                        let m = m.unwrap_or("");
                        mapping
                            .markers
                            .get(m)
                            .copied()
                            .ok_or_else(|| unknown_marker(m))
                    })
                    .collect();
                Some((keys, per_category))
            }
            None => None,
        };
        return Ok(Measure::Numeric {
            values: values.clone(),
            markers,
        });
    }
    let (keys, categories) = text_column(chunk, "value", &mapping.value)?;
    let per_category = categories
        .iter()
        .map(|text| {
            let text = text.unwrap_or("");
            if let Some(marker) = mapping.markers.get(text) {
                Ok((marker.value, marker.status))
            } else if text.trim().is_empty() {
                Ok((None, Status::Missing))
            } else {
                NumberFormat::export(mapping.decimal)
                    .parse(text)
                    .map(|v| (Some(v), Status::Ok))
                    .ok_or_else(|| {
                        format!(
                            "value `{text}` is not a number (decimal separator `{}`) nor a known marker",
                            mapping.decimal
                        )
                    })
            }
        })
        .collect();
    Ok(Measure::Text {
        column: mapping.value.clone(),
        keys,
        per_category,
    })
}

/// The value and status of a numeric cell with its marker, if it has one.
pub(super) fn cell(value: Option<f64>, marker: Option<&Marker>) -> (Option<f64>, Status) {
    match marker {
        Some(marker) if marker.value.is_some() => (marker.value, marker.status),
        Some(marker) if hides_value(marker.status) => (None, marker.status),
        Some(marker) => (value, marker.status),
        None if value.is_none() => (None, Status::Missing),
        None => (value, Status::Ok),
    }
}

impl Measure {
    /// Row `i`'s value and status, or why it has none.
    fn at(&self, i: usize) -> Result<(Option<f64>, Status), &str> {
        match self {
            Measure::Numeric { values, markers } => {
                let value = values.is_valid(i).then(|| values.value(i));
                let marker = match markers {
                    Some((keys, per_category)) if keys.is_valid(i) => Some(
                        per_category[keys.value(i) as usize]
                            .as_ref()
                            .map_err(|m| m.as_str())?,
                    ),
                    _ => None,
                };
                Ok(cell(value, marker))
            }
            Measure::Text {
                keys, per_category, ..
            } => {
                if keys.is_null(i) {
                    return Ok((None, Status::Missing));
                }
                per_category[keys.value(i) as usize]
                    .as_ref()
                    .map(|v| *v)
                    .map_err(|m| m.as_str())
            }
        }
    }

    /// Every row's value and status, in one pass.
    pub(super) fn resolve(&self, rows: usize) -> Measured {
        // Text values come per category: spread them through the keys when no cell is empty.
        if let Measure::Text {
            keys, per_category, ..
        } = self
            && keys.null_count() == 0
        {
            let resolved: Vec<Resolved> = per_category
                .iter()
                .map(|r| Resolved::of(r.as_ref().ok().copied()))
                .collect();
            return keys
                .values()
                .iter()
                .map(|&k| resolved[k as usize])
                .collect();
        }
        (0..rows).map(|i| Resolved::of(self.at(i).ok())).collect()
    }

    /// Why row `i` is refused, if it is (row number filled in by the caller).
    pub(super) fn problem(&self, i: usize) -> Option<Reason> {
        let message = self.at(i).err()?;
        let column = match self {
            Measure::Numeric { .. } => STATUS.to_string(),
            Measure::Text { column, .. } => column.clone(),
        };
        Some(Reason {
            payload: String::new(),
            row: 0,
            rule: "value".into(),
            message: format!("{column}: {message}"),
            column,
        })
    }
}

/// One row's value and status.
#[derive(Debug, Clone, Copy)]
struct Resolved {
    value: f64,
    valid: bool,
    /// Index into [`Status::ALL`] (declaration order), or [`REFUSED`].
    status: u8,
}

/// The status of a row whose value cannot be read.
const REFUSED: u8 = u8::MAX;

impl Resolved {
    fn of(measure: Option<(Option<f64>, Status)>) -> Self {
        match measure {
            Some((value, status)) => Self {
                value: value.unwrap_or_default(),
                valid: value.is_some(),
                status: status as u8,
            },
            None => Self {
                value: 0.0,
                valid: false,
                status: REFUSED,
            },
        }
    }
}

/// Values and statuses of every row of a chunk (see [`Measure::resolve`]).
pub(super) struct Measured {
    rows: Vec<Resolved>,
}

impl FromIterator<Resolved> for Measured {
    fn from_iter<I: IntoIterator<Item = Resolved>>(rows: I) -> Self {
        Self {
            rows: rows.into_iter().collect(),
        }
    }
}

impl Measured {
    pub(super) fn is_refused(&self, i: usize) -> bool {
        self.rows[i].status == REFUSED
    }

    pub(super) fn any_refused(&self) -> bool {
        self.rows.iter().any(|r| r.status == REFUSED)
    }

    pub(super) fn values(&self, keep: &[usize]) -> Float64Array {
        let values: Vec<f64> = keep.iter().map(|&i| self.rows[i].value).collect();
        let valid: Vec<bool> = keep.iter().map(|&i| self.rows[i].valid).collect();
        Float64Array::new(values.into(), Some(arrow_buffer::NullBuffer::from(valid)))
    }

    /// The status column: a dictionary over every status label.
    pub(super) fn statuses(&self, keep: &[usize]) -> ArrayRef {
        statuses(keep.iter().map(|&i| self.rows[i].status).collect())
    }
}

/// A status column from each row's index into [`Status::ALL`]: a dictionary over every label.
pub(super) fn statuses(status: Vec<u8>) -> ArrayRef {
    let keys: Vec<i32> = status.into_iter().map(i32::from).collect();
    let labels = StringArray::from_iter_values(Status::ALL.iter().map(|s| s.as_str()));
    Arc::new(model::dictionary_array(keys.into(), Arc::new(labels)))
}

/// The optional numeric columns of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    SampleSize,
    Numerator,
    Denominator,
    CiLower,
    CiUpper,
    Members,
}

impl Extra {
    /// The extras that are floating-point numbers, in model column order.
    pub(super) const NUMBERS: [Extra; 4] = [
        Extra::Numerator,
        Extra::Denominator,
        Extra::CiLower,
        Extra::CiUpper,
    ];

    pub(super) const ALL: [Extra; 6] = [
        Extra::SampleSize,
        Extra::Numerator,
        Extra::Denominator,
        Extra::CiLower,
        Extra::CiUpper,
        Extra::Members,
    ];

    /// Whether the column counts things, so a fraction is an error.
    fn is_whole(self) -> bool {
        matches!(self, Extra::SampleSize | Extra::Members)
    }

    fn key(self) -> &'static str {
        match self {
            Extra::SampleSize => "sample_size",
            Extra::Numerator => "numerator",
            Extra::Denominator => "denominator",
            Extra::CiLower => "ci_lower",
            Extra::CiUpper => "ci_upper",
            Extra::Members => "members",
        }
    }

    pub(super) fn column(self, mapping: &Mapping) -> Option<&String> {
        match self {
            Extra::SampleSize => mapping.sample_size.as_ref(),
            Extra::Numerator => mapping.numerator.as_ref(),
            Extra::Denominator => mapping.denominator.as_ref(),
            Extra::CiLower => mapping.ci_lower.as_ref(),
            Extra::CiUpper => mapping.ci_upper.as_ref(),
            Extra::Members => mapping.members.as_ref(),
        }
    }
}

/// One optional numeric column, read per row.
enum Numbers {
    Numeric(Float64Array),
    Text {
        column: String,
        keys: Int32Array,
        per_category: Vec<Result<Option<f64>, String>>,
    },
}

impl Numbers {
    fn at(&self, i: usize) -> Result<Option<f64>, &str> {
        match self {
            Numbers::Numeric(values) => Ok(values.is_valid(i).then(|| values.value(i))),
            Numbers::Text {
                keys, per_category, ..
            } => {
                if keys.is_null(i) {
                    return Ok(None);
                }
                per_category[keys.value(i) as usize]
                    .as_ref()
                    .map(|v| *v)
                    .map_err(|m| m.as_str())
            }
        }
    }
}

/// Sample size, numerator, denominator and confidence limits.
pub(super) struct Extras {
    columns: Vec<(Extra, Numbers)>,
}

pub(super) fn extras(chunk: &Chunk, mapping: &Mapping) -> Result<Extras, HarmoniseError> {
    let mut columns = Vec::new();
    for extra in Extra::ALL {
        let numbers = match extra.column(mapping) {
            None => continue,
            Some(column) => {
                let array = chunk.batch.column_by_name(column);
                match array.and_then(|a| a.as_any().downcast_ref::<Float64Array>()) {
                    Some(values) => Numbers::Numeric(values.clone()),
                    None => {
                        let (keys, categories) = text_column(chunk, extra.key(), column)?;
                        let per_category = categories
                            .iter()
                            .map(|text| parse_extra(text.unwrap_or(""), extra.is_whole(), mapping))
                            .collect();
                        Numbers::Text {
                            column: column.clone(),
                            keys,
                            per_category,
                        }
                    }
                }
            }
        };
        columns.push((extra, numbers));
    }
    Ok(Extras { columns })
}

fn parse_extra(text: &str, integer: bool, mapping: &Mapping) -> Result<Option<f64>, String> {
    if text.trim().is_empty() || mapping.markers.contains_key(text) {
        return Ok(None);
    }
    match NumberFormat::export(mapping.decimal).parse(text) {
        Some(v) if integer && v.fract() != 0.0 => Err(format!("`{text}` is not a whole number")),
        Some(v) => Ok(Some(v)),
        None => Err(format!(
            "`{text}` is not a number (decimal separator `{}`)",
            mapping.decimal
        )),
    }
}

impl Extras {
    /// Whether some row may have a number that does not parse (checked per category).
    pub(super) fn can_fail(&self) -> bool {
        self.columns.iter().any(|(_, numbers)| match numbers {
            Numbers::Numeric(_) => false,
            Numbers::Text { per_category, .. } => per_category.iter().any(Result::is_err),
        })
    }

    pub(super) fn problem(&self, i: usize) -> Option<Reason> {
        self.columns.iter().find_map(|(extra, numbers)| {
            let message = numbers.at(i).err()?;
            let column = match numbers {
                Numbers::Text { column, .. } => column.clone(),
                Numbers::Numeric(_) => extra.key().to_string(),
            };
            Some(Reason {
                payload: String::new(),
                row: 0,
                rule: extra.key().to_string(),
                message: format!("{column}: {message}"),
                column,
            })
        })
    }

    /// The mapped column of `extra`, if the pipeline maps one.
    fn numbers(&self, extra: Extra) -> Option<&Numbers> {
        self.columns
            .iter()
            .find(|(e, _)| *e == extra)
            .map(|(_, numbers)| numbers)
    }

    /// The sample sizes of the kept rows; `None` when the pipeline maps none.
    pub(super) fn sample_size(&self, keep: &[usize]) -> Option<Int64Array> {
        let numbers = self.numbers(Extra::SampleSize)?;
        Some(
            keep.iter()
                .map(|&i| numbers.at(i).expect("kept rows parse").map(|v| v as i64))
                .collect(),
        )
    }

    /// The member counts of the kept rows, on network rows only (`on_network`, per kept row):
    /// elsewhere a count of areas says nothing (Kolada writes 1 on every municipality's row).
    /// `None` when the pipeline maps none.
    pub(super) fn members(&self, keep: &[usize], on_network: &[bool]) -> Option<Int32Array> {
        let numbers = self.numbers(Extra::Members)?;
        Some(
            keep.iter()
                .zip(on_network)
                .map(|(&i, &network)| {
                    let count = numbers.at(i).expect("kept rows parse")?;
                    network.then_some(count as i32)
                })
                .collect(),
        )
    }

    /// The `extra` numbers of the kept rows; `None` when the pipeline maps none.
    pub(super) fn number(&self, extra: Extra, keep: &[usize]) -> Option<Float64Array> {
        let numbers = self.numbers(extra)?;
        Some(
            keep.iter()
                .map(|&i| numbers.at(i).expect("kept rows parse"))
                .collect(),
        )
    }
}
