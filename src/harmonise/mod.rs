//! Harmonisation: a SourceTable chunk → rows of the common model (DESIGN §3).
//!
//! Owns: turning source columns into model columns by the pipeline's [`Mapping`], once per
//! distinct category (codes, areas, periods, markers and numbers alike), and refusing the rows
//! whose category cannot be mapped, with a reason.
//! Must not: read files, know the warehouse layout, or keep state between chunks; "now" and the
//! run id are arguments.
//!
//! The per-category rules live beside this file: `periods.rs`, `codes.rs`, `areas.rs`; the key
//! order and duplicate check in `keys.rs`.

pub mod areas;
pub mod codes;
pub mod cube;
pub mod keys;
pub mod mapping;
pub mod periods;
mod rules;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, Date32Array, DictionaryArray, Float64Array, Int32Array, Int64Array,
    RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_buffer::{Buffer, NullBuffer, ScalarBuffer};
use arrow_schema::DataType;

use crate::formats::Chunk;
use crate::formats::merge::Provenance;
use crate::model::{self, AreaLevel};
use crate::rejects::Reason;
pub use mapping::{AreaNaming, Field, Mapping, Marker};
use rules::{Feed, KeyField, Lookup, Rules};

/// What a run knows that the rows do not: written into every row.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub run_id: &'a str,
    /// Microseconds since the epoch, UTC.
    pub ingested_at: i64,
    pub source: &'a str,
    pub source_table: &'a str,
    pub source_url: &'a str,
    /// The source's own last update, microseconds since the epoch, UTC.
    pub source_updated: Option<i64>,
    /// Indicator ids of `schemas/indicators.toml`; others pass through as uncatalogued.
    pub catalogued: &'a BTreeSet<String>,
    /// The area catalogue, needed when areas are named rather than coded.
    pub areas: Option<&'a areas::Areas>,
    /// Which payload and row each row id came from, for messages that name other rows.
    pub provenance: &'a Provenance,
}

/// A harmonised chunk: model rows, the source row each came from, and the refused rows.
#[derive(Debug)]
pub struct Harmonised {
    /// In the [`model::batch_schema`], sorted by the key, every key once.
    pub observations: RecordBatch,
    /// One reason per broken rule of each refused row (a repeated key refuses all its rows).
    pub reasons: Vec<Reason>,
    /// Indicator ids written that the catalogue does not list.
    pub uncatalogued: BTreeSet<String>,
}

/// A chunk cannot be harmonised at all: the mapping does not fit the table.
#[derive(Debug, thiserror::Error)]
pub enum HarmoniseError {
    #[error(
        "[map] {key} names column `{column}`, which the table does not have; it has: {available}"
    )]
    MissingColumn {
        key: &'static str,
        column: String,
        available: String,
    },
    #[error("[map] {key} names column `{column}`, which holds {found} where text was expected")]
    NotText {
        key: &'static str,
        column: String,
        found: DataType,
    },
    #[error(
        "[map] area names are looked up in schemas/areas.csv, which was not found; \
         add it or map codes instead of names"
    )]
    NoAreaCatalogue,
}

impl HarmoniseError {
    /// `[map] <key>` names `column`, which a table with `schema` lacks: the error lists the
    /// columns it has, which is usually all an operator needs to fix the pipeline.
    pub fn missing_column(key: &'static str, column: &str, schema: &arrow_schema::Schema) -> Self {
        let available: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("`{}`", f.name()))
            .collect();
        Self::MissingColumn {
            key,
            column: column.to_string(),
            available: available.join(", "),
        }
    }
}

/// A key column of a chunk: its categories mapped once, then spread to rows through the keys.
struct Mapped {
    lookup: Lookup,
    /// Per row: index into `lookup.values`, or -1 when the row's category cannot be mapped.
    keys: Vec<i32>,
    /// Per row: the source category (for the message of an unmappable row); `None` when the
    /// column is not one source column.
    source_keys: Option<Int32Array>,
}

impl Mapped {
    /// `field` fed as the pipeline says, over every row of `chunk`.
    fn new(chunk: &Chunk, rules: &mut Rules<'_>, field: KeyField) -> Result<Self, HarmoniseError> {
        let rows = chunk.batch.num_rows();
        Ok(match rules.feed(field) {
            Feed::Fixed(value) => Self {
                lookup: Lookup::fixed(value),
                keys: vec![0; rows],
                source_keys: None,
            },
            Feed::Column(column) => {
                let (source_keys, categories) = text_column(chunk, field.key(), column)?;
                let lookup = rules.map(field, column, &categories);
                let of = &lookup.of_category;
                let keys = match source_keys.nulls() {
                    None => source_keys
                        .values()
                        .iter()
                        .map(|&k| of[k as usize])
                        .collect(),
                    Some(_) => source_keys
                        .iter()
                        .map(|k| k.map_or(-1, |k| of[k as usize]))
                        .collect(),
                };
                Self {
                    lookup,
                    keys,
                    source_keys: Some(source_keys),
                }
            }
            Feed::Columns(columns) => combined_breakdown(chunk, columns)?,
        })
    }

    /// Whether some row may have no model value: a category that does not map, or an empty cell.
    fn can_fail(&self) -> bool {
        self.lookup.errors.iter().any(Option::is_some)
            || self
                .source_keys
                .as_ref()
                .is_some_and(|k| k.null_count() > 0)
    }

    /// Why row `i` has no model value (only called for rows whose key is -1).
    fn error(&self, i: usize) -> &str {
        match &self.source_keys {
            Some(keys) if keys.is_valid(i) => self.lookup.errors[keys.value(i) as usize]
                .as_deref()
                .unwrap_or("the value cannot be mapped"),
            _ => "the cell is empty",
        }
    }
}

/// A dictionary column of `values` (the model's text type).
fn dictionary(keys: impl Into<ScalarBuffer<i32>>, values: &[impl AsRef<str>]) -> ArrayRef {
    let values = Arc::new(StringArray::from_iter_values(values));
    Arc::new(model::dictionary_array(keys.into(), values))
}

/// The keys and dictionary of a text column.
fn text_column(
    chunk: &Chunk,
    key: &'static str,
    column: &str,
) -> Result<(Int32Array, StringArray), HarmoniseError> {
    let array = chunk
        .batch
        .column_by_name(column)
        .ok_or_else(|| HarmoniseError::missing_column(key, column, &chunk.batch.schema()))?;
    let not_text = || HarmoniseError::NotText {
        key,
        column: column.to_string(),
        found: array.data_type().clone(),
    };
    let dictionary = array
        .as_any()
        .downcast_ref::<DictionaryArray<Int32Type>>()
        .ok_or_else(not_text)?;
    let values = dictionary
        .values()
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(not_text)?;
    Ok((dictionary.keys().clone(), values.clone()))
}

/// Harmonises one chunk: see the module docs. Rows whose categories cannot be mapped come back
/// in `reasons`; `Err` only when the mapping does not fit the table (a column is missing).
pub fn harmonise(
    chunk: &Chunk,
    mapping: &Mapping,
    cx: &Context<'_>,
) -> Result<Harmonised, HarmoniseError> {
    let n = chunk.batch.num_rows();
    let mut rules = Rules::new(mapping, cx)?;
    let mapped = KeyField::ALL
        .iter()
        .map(|&field| Mapped::new(chunk, &mut rules, field))
        .collect::<Result<Vec<_>, _>>()?;
    let measure = values::measure(chunk, mapping)?;
    let measured = measure.resolve(n);
    let extras = values::extras(chunk, mapping)?;

    // A row is kept when every model column maps; otherwise one reason per failing column.
    // When every category maps, every row does: no need to look at rows one by one.
    let mut keep = Vec::with_capacity(n);
    let mut reasons = Vec::new();
    let can_fail =
        mapped.iter().any(Mapped::can_fail) || measured.any_refused() || extras.can_fail();
    if can_fail {
        for i in 0..n {
            let before = reasons.len();
            for m in &mapped {
                if m.keys[i] < 0 {
                    reasons.push(Reason {
                        payload: String::new(),
                        row: chunk.rows[i],
                        rule: m.lookup.rule.to_string(),
                        column: m.lookup.column.clone(),
                        message: format!("{}: {}", m.lookup.column, m.error(i)),
                    });
                }
            }
            let measure_problem = if measured.is_refused(i) {
                measure.problem(i)
            } else {
                None
            };
            for problem in measure_problem.into_iter().chain(extras.problem(i)) {
                reasons.push(Reason {
                    row: chunk.rows[i],
                    ..problem
                });
            }
            if reasons.len() == before {
                keep.push(i);
            }
        }
    } else {
        keep.extend(0..n);
    }

    // Put the kept rows in key order and refuse every row of a repeated key, before any output
    // column is built.
    let key_columns: Vec<keys::KeyColumn> = mapped
        .iter()
        .map(|m| keys::KeyColumn::new(&m.keys, &m.lookup.values))
        .collect();
    let ordered = keys::order_by_key(&key_columns, &keep);
    let [indicator, area, period, ..] = &mapped[..] else {
        unreachable!("one Mapped per key field")
    };
    for group in &ordered.duplicates {
        let listed: Vec<String> = group
            .iter()
            .map(|&i| cx.provenance.describe(chunk.rows[i]))
            .collect();
        let key: Vec<String> = model::KEY
            .iter()
            .zip(
                mapped
                    .iter()
                    .map(|m| m.lookup.values[m.keys[group[0]] as usize].as_str())
                    .chain([{
                        let code = &area.lookup.values[area.keys[group[0]] as usize];
                        reference_label(rules.level(code), code)
                    }
                    .as_str()]),
            )
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        for &i in group {
            reasons.push(Reason {
                payload: String::new(),
                row: chunk.rows[i],
                rule: "duplicate_key".into(),
                column: model::col::INDICATOR_ID.into(),
                message: format!(
                    "rows {} have the same key ({}); keep one per key, e.g. map the dimension \
                     that tells them apart to a breakdown",
                    listed.join(", "),
                    key.join(", ")
                ),
            });
        }
    }
    let keep = ordered.order;

    let levels: Vec<AreaLevel> = (area.lookup.values.iter())
        .map(|code| rules.level(code))
        .collect();
    // Days of each distinct period once, then per row by its key.
    let spans: Vec<(i32, i32)> = period
        .lookup
        .values
        .iter()
        .map(|label| rules.span(label))
        .collect();
    // Each key column's keys over the kept rows, gathered once and shared by the columns that
    // derive from them.
    let keys: Vec<ScalarBuffer<i32>> = mapped
        .iter()
        .map(|m| keep.iter().map(|&i| m.keys[i]).collect::<Vec<_>>().into())
        .collect();
    let period_keys = &keys[KeyField::Period.index()];
    let (start, end) = period_keys.iter().map(|&k| spans[k as usize]).unzip();
    let area_keys = &keys[KeyField::Area.index()];
    let on_network: Vec<bool> = (area_keys.iter())
        .map(|&k| levels[k as usize] == AreaLevel::Network)
        .collect();
    let built = Built {
        key: std::array::from_fn(|k| dictionary(keys[k].clone(), &mapped[k].lookup.values)),
        areas: AreaColumns::new(area_keys.clone(), &levels, &area.lookup.values),
        start,
        end,
        value: measured.values(&keep),
        status: measured.statuses(&keep),
        sample_size: extras.sample_size(&keep),
        numbers: values::Extra::NUMBERS.map(|extra| extras.number(extra, &keep)),
        members: extras.members(&keep, &on_network),
    };
    Ok(Harmonised {
        observations: assemble(built, mapping, cx),
        reasons,
        uncatalogued: uncatalogued(&indicator.lookup.values, cx),
    })
}

/// The indicator ids among `ids` that the catalogue does not list.
fn uncatalogued(ids: &[String], cx: &Context<'_>) -> BTreeSet<String> {
    ids.iter()
        .filter(|id| !cx.catalogued.contains(*id))
        .cloned()
        .collect()
}

/// The `reference` of a source row in area `code` of `level`.
fn reference_label(level: AreaLevel, code: &str) -> String {
    match level {
        AreaLevel::Network => format!("network:{code}"),
        _ => String::new(),
    }
}

/// The columns that follow from each row's area: its level, and its reference (DESIGN §3):
/// `network:<id>` on a network row, empty on the rows of Swedish areas.
struct AreaColumns {
    level: ArrayRef,
    reference: ArrayRef,
}

impl AreaColumns {
    /// From the rows' keys into the distinct area `codes` and the level of each.
    fn new(keys: ScalarBuffer<i32>, levels: &[AreaLevel], codes: &[String]) -> Self {
        let labels: Vec<&str> = levels.iter().map(|level| level.as_str()).collect();
        let references: Vec<String> = (levels.iter().zip(codes))
            .map(|(&level, code)| reference_label(level, code))
            .collect();
        Self {
            level: dictionary(keys.clone(), &labels),
            reference: dictionary(keys, &references),
        }
    }
}

/// The columns of harmonised rows that depend on the rows, in key order; [`assemble`] adds the
/// columns that are the same on every row of a run.
struct Built {
    /// Indicator, area, period, sex, age, grade and breakdown: the key without `reference`.
    key: [ArrayRef; 7],
    areas: AreaColumns,
    /// First and last day of each row's period (Date32).
    start: Vec<i32>,
    end: Vec<i32>,
    value: Float64Array,
    status: ArrayRef,
    /// `None`: not mapped, null on every row.
    sample_size: Option<Int64Array>,
    /// Numerator, denominator and the confidence limits (`None`: not mapped).
    numbers: [Option<Float64Array>; 4],
    /// `None`: not mapped, null on every row.
    members: Option<Int32Array>,
}

/// A batch in [`model::batch_schema`] from `built` and the run's constants.
fn assemble(built: Built, mapping: &Mapping, cx: &Context<'_>) -> RecordBatch {
    let rows = built.start.len();
    // The columns that are one value on every row share one buffer of zeros: as keys of a
    // one-value dictionary, and under an all-null bitmap as the unmapped numbers.
    let zeros = Buffer::from_vec(vec![0u64; rows]);
    let keys = ScalarBuffer::<i32>::new(zeros.clone(), 0, rows);
    let constant = |value: &str| -> ArrayRef {
        let values = Arc::new(StringArray::from_iter_values([value]));
        Arc::new(model::dictionary_array(keys.clone(), values))
    };
    let null = NullBuffer::new_null(rows);
    let number = |column: Option<Float64Array>| -> ArrayRef {
        Arc::new(column.unwrap_or_else(|| {
            Float64Array::new(
                ScalarBuffer::new(zeros.clone(), 0, rows),
                Some(null.clone()),
            )
        }))
    };
    let sample_size = built.sample_size.unwrap_or_else(|| {
        Int64Array::new(
            ScalarBuffer::new(zeros.clone(), 0, rows),
            Some(null.clone()),
        )
    });
    let members = built.members.unwrap_or_else(|| {
        Int32Array::new(
            ScalarBuffer::new(zeros.clone(), 0, rows),
            Some(null.clone()),
        )
    });
    let [indicator, area, period, sex, age, grade, breakdown] = built.key;
    let [numerator, denominator, ci_lower, ci_upper] = built.numbers;
    let columns: Vec<ArrayRef> = vec![
        indicator,
        area,
        built.areas.level,
        period,
        Arc::new(Date32Array::from(built.start)),
        Arc::new(Date32Array::from(built.end)),
        sex,
        age,
        grade,
        breakdown,
        Arc::new(built.value),
        constant(&mapping.unit),
        built.status,
        Arc::new(sample_size),
        number(numerator),
        number(denominator),
        number(ci_lower),
        number(ci_upper),
        built.areas.reference,
        Arc::new(members),
        constant(cx.source),
        constant(cx.source_table),
        constant(cx.source_url),
        Arc::new(
            TimestampMicrosecondArray::from(vec![cx.source_updated; rows]).with_timezone("UTC"),
        ),
        constant(cx.run_id),
        Arc::new(TimestampMicrosecondArray::from(vec![cx.ingested_at; rows]).with_timezone("UTC")),
    ];
    RecordBatch::try_new(model::batch_schema(), columns)
        .expect("columns follow model::batch_schema()")
}

/// A breakdown of several source columns, `key=value;key=value` sorted by key: each row's
/// combination of categories is interned once.
fn combined_breakdown(
    chunk: &Chunk,
    columns: &[(String, String)],
) -> Result<Mapped, HarmoniseError> {
    let parts = columns
        .iter()
        .map(|(key, column)| {
            let (keys, values) = text_column(chunk, "breakdown", column)?;
            Ok((key, keys, values))
        })
        .collect::<Result<Vec<_>, HarmoniseError>>()?;
    let mut index: HashMap<Vec<i32>, u32> = HashMap::new();
    let mut values = Vec::new();
    let mut row_keys = Vec::with_capacity(chunk.batch.num_rows());
    for i in 0..chunk.batch.num_rows() {
        let combination: Vec<i32> = parts
            .iter()
            .map(|(_, keys, _)| if keys.is_null(i) { -1 } else { keys.value(i) })
            .collect();
        let next = values.len() as u32;
        let k = *index.entry(combination.clone()).or_insert_with(|| {
            let text = parts
                .iter()
                .zip(&combination)
                .map(|((key, _, v), &c)| {
                    format!("{key}={}", if c < 0 { "" } else { v.value(c as usize) })
                })
                .collect::<Vec<_>>()
                .join(";");
            values.push(text);
            next
        });
        row_keys.push(k as i32);
    }
    Ok(Mapped {
        lookup: Lookup {
            column: columns[0].1.clone(),
            rule: "breakdown",
            of_category: Vec::new(),
            errors: Vec::new(),
            values,
        },
        keys: row_keys,
        source_keys: None,
    })
}

mod values;

#[cfg(test)]
mod tests;
