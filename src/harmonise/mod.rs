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
pub mod keys;
pub mod mapping;
pub mod periods;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, Date32Array, DictionaryArray, Int32Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow_schema::DataType;
use chrono::NaiveDate;

use crate::formats::Chunk;
use crate::model;
use crate::rejects::Reason;
pub use mapping::{AreaNaming, Field, Mapping, Marker};

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
}

/// A harmonised chunk: model rows, the source row each came from, and the refused rows.
#[derive(Debug)]
pub struct Harmonised {
    /// In the [`model::batch_schema`], sorted by the key, every key once.
    pub observations: RecordBatch,
    /// Source row number of each observation.
    pub rows: Vec<u64>,
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

/// A model column mapped once per source category, then spread to rows through the keys.
struct Mapped {
    /// Source column (for reasons).
    column: String,
    /// Rule name (for reasons).
    rule: &'static str,
    /// Per row: index into `values`, or -1 when the row's category cannot be mapped.
    keys: Vec<i32>,
    /// Per row: the source category (for the message of an unmappable row); `None` for fixed values.
    source_keys: Option<Int32Array>,
    /// Per source category: why it cannot be mapped, when it cannot.
    errors: Vec<Option<String>>,
    /// Distinct model values.
    values: Vec<String>,
}

impl Mapped {
    /// A fixed value for every one of `rows` rows.
    fn fixed(value: String, rows: usize) -> Self {
        Self {
            column: String::new(),
            rule: "",
            keys: vec![0; rows],
            source_keys: None,
            errors: Vec::new(),
            values: vec![value],
        }
    }

    /// Why row `i` has no model value (only called for rows whose key is -1).
    fn error(&self, i: usize) -> &str {
        match &self.source_keys {
            Some(keys) if keys.is_valid(i) => self.errors[keys.value(i) as usize]
                .as_deref()
                .unwrap_or("the value cannot be mapped"),
            _ => "the cell is empty",
        }
    }

    /// The column over the kept rows, as a dictionary of the model values.
    fn dictionary(&self, keep: &[usize]) -> ArrayRef {
        let keys: Int32Array = keep
            .iter()
            .map(|&i| self.keys[i])
            .collect::<Vec<_>>()
            .into();
        let values = Arc::new(StringArray::from_iter_values(&self.values));
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("keys index values"))
    }
}

/// Maps every category of text column `column` with `map` (deduplicating model values).
fn map_column(
    chunk: &Chunk,
    key: &'static str,
    column: &str,
    rule: &'static str,
    mut map: impl FnMut(&str) -> Result<String, String>,
) -> Result<Mapped, HarmoniseError> {
    let (source_keys, categories) = text_column(chunk, key, column)?;
    let mut index: HashMap<String, i32> = HashMap::new();
    let mut values = Vec::new();
    let mut errors = Vec::with_capacity(categories.len());
    let lookup: Vec<i32> = categories
        .iter()
        .map(|category| match map(category.unwrap_or("")) {
            Ok(value) => {
                errors.push(None);
                *index.entry(value.clone()).or_insert_with(|| {
                    values.push(value);
                    values.len() as i32 - 1
                })
            }
            Err(message) => {
                errors.push(Some(message));
                -1
            }
        })
        .collect();
    let keys = source_keys
        .iter()
        .map(|k| k.map_or(-1, |k| lookup[k as usize]))
        .collect();
    Ok(Mapped {
        column: column.to_string(),
        rule,
        keys,
        source_keys: Some(source_keys),
        errors,
        values,
    })
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

fn field(
    chunk: &Chunk,
    key: &'static str,
    field: &Field,
    canonical: impl Fn(&str) -> Result<String, String>,
) -> Result<Mapped, HarmoniseError> {
    match field {
        Field::Fixed(value) => Ok(Mapped::fixed(value.clone(), chunk.batch.num_rows())),
        Field::Column { column, codes } => map_column(chunk, key, column, key, |code| {
            canonical(codes.as_ref().map_or(code, |c| c.map(code)))
        }),
    }
}

/// Harmonises one chunk: see the module docs. Rows whose categories cannot be mapped come back
/// in `reasons`; `Err` only when the mapping does not fit the table (a column is missing).
pub fn harmonise(
    chunk: &Chunk,
    mapping: &Mapping,
    cx: &Context<'_>,
) -> Result<Harmonised, HarmoniseError> {
    let n = chunk.batch.num_rows();
    let indicator = field(chunk, "indicator", &mapping.indicator, |id| {
        if id.trim().is_empty() {
            Err("the indicator id is empty".to_string())
        } else {
            Ok(id.to_string())
        }
    })?;
    let areas = match mapping.area_naming {
        AreaNaming::Name => Some(cx.areas.ok_or(HarmoniseError::NoAreaCatalogue)?),
        AreaNaming::Code => None,
    };
    let mut levels: HashMap<String, model::AreaLevel> = HashMap::new();
    let area = map_column(chunk, "area", &mapping.area_column, "area", |text| {
        let text = mapping.area_codes.as_ref().map_or(text, |c| c.map(text));
        let code = match areas {
            Some(areas) => areas
                .code_for_name(text)
                .ok_or_else(|| format!("no area is named `{text}` in schemas/areas.csv"))?
                .to_string(),
            None => text.trim().to_string(),
        };
        let level = areas::area_level(&code).map_err(|e| e.to_string())?;
        levels.insert(code.clone(), level);
        Ok(code)
    })?;
    let mut spans: HashMap<String, (NaiveDate, NaiveDate)> = HashMap::new();
    let period = map_column(chunk, "period", &mapping.period_column, "period", |text| {
        let period = periods::parse_period(text, mapping.period_kind).map_err(|e| e.to_string())?;
        spans.insert(period.label.clone(), (period.start, period.end));
        Ok(period.label)
    })?;
    let sex = field(chunk, "sex", &mapping.sex, |code| {
        codes::canonical_sex(code)
            .map(|s| s.as_str().to_string())
            .map_err(|e| e.to_string())
    })?;
    let age = field(chunk, "age", &mapping.age, |code| {
        codes::canonical_age(code).map_err(|e| e.to_string())
    })?;
    let grade = field(chunk, "grade", &mapping.grade, |code| {
        codes::canonical_grade(code).map_err(|e| e.to_string())
    })?;
    let breakdown = breakdown(chunk, &mapping.breakdown)?;
    let measure = values::measure(chunk, mapping)?;
    let measured = measure.resolve(n);
    let extras = values::extras(chunk, mapping)?;

    // A row is kept when every model column maps; otherwise one reason per failing column.
    let mapped: [&Mapped; 7] = [&indicator, &area, &period, &sex, &age, &grade, &breakdown];
    let mut keep = Vec::with_capacity(n);
    let mut reasons = Vec::new();
    for i in 0..n {
        let before = reasons.len();
        for m in mapped {
            if m.keys[i] < 0 {
                reasons.push(Reason {
                    row: chunk.rows[i],
                    rule: m.rule.to_string(),
                    column: m.column.clone(),
                    message: format!("{}: {}", m.column, m.error(i)),
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

    // Put the kept rows in key order (`reference` is empty on every source row) and refuse
    // every row of a repeated key, before any output column is built.
    let key_columns: Vec<keys::KeyColumn> = mapped
        .iter()
        .map(|m| keys::KeyColumn::new(&m.keys, &m.values))
        .collect();
    let ordered = keys::order_by_key(&key_columns, &keep);
    for group in &ordered.duplicates {
        let listed: Vec<String> = group.iter().map(|&i| chunk.rows[i].to_string()).collect();
        let key: Vec<String> = model::KEY
            .iter()
            .zip(
                mapped
                    .iter()
                    .map(|m| m.values[m.keys[group[0]] as usize].as_str())
                    .chain([""]),
            )
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        for &i in group {
            reasons.push(Reason {
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

    let uncatalogued = indicator
        .values
        .iter()
        .filter(|id| !cx.catalogued.contains(*id))
        .cloned()
        .collect();
    let level_values: Vec<String> = area
        .values
        .iter()
        .map(|code| levels[code].as_str().to_string())
        .collect();
    let area_level = Mapped {
        column: area.column.clone(),
        rule: area.rule,
        keys: area.keys.clone(),
        source_keys: None,
        errors: Vec::new(),
        values: level_values,
    };
    // Days of each distinct period once, then per row by its key.
    let spans_by_value: Vec<(i32, i32)> = period
        .values
        .iter()
        .map(|label| {
            let (start, end) = spans[label];
            (days(start), days(end))
        })
        .collect();
    let (starts, ends): (Vec<i32>, Vec<i32>) = keep
        .iter()
        .map(|&i| spans_by_value[period.keys[i] as usize])
        .unzip();
    let constant = |value: &str| -> ArrayRef {
        let keys = Int32Array::from(vec![0; keep.len()]);
        let values = Arc::new(StringArray::from(vec![value]));
        Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).expect("key 0 of one value"))
    };
    let rows = keep.len();
    let columns: Vec<ArrayRef> = vec![
        indicator.dictionary(&keep),
        area.dictionary(&keep),
        area_level.dictionary(&keep),
        period.dictionary(&keep),
        Arc::new(Date32Array::from(starts)),
        Arc::new(Date32Array::from(ends)),
        sex.dictionary(&keep),
        age.dictionary(&keep),
        grade.dictionary(&keep),
        breakdown.dictionary(&keep),
        Arc::new(measured.values(&keep)),
        constant(&mapping.unit),
        measured.statuses(&keep),
        Arc::new(extras.sample_size(&keep)),
        Arc::new(extras.number(values::Extra::Numerator, &keep)),
        Arc::new(extras.number(values::Extra::Denominator, &keep)),
        Arc::new(extras.number(values::Extra::CiLower, &keep)),
        Arc::new(extras.number(values::Extra::CiUpper, &keep)),
        constant(""),
        constant(cx.source),
        constant(cx.source_table),
        constant(cx.source_url),
        Arc::new(
            TimestampMicrosecondArray::from(vec![cx.source_updated; rows]).with_timezone("UTC"),
        ),
        constant(cx.run_id),
        Arc::new(TimestampMicrosecondArray::from(vec![cx.ingested_at; rows]).with_timezone("UTC")),
    ];
    let observations = RecordBatch::try_new(model::batch_schema(), columns)
        .expect("columns follow model::batch_schema()");
    Ok(Harmonised {
        observations,
        rows: keep.iter().map(|&i| chunk.rows[i]).collect(),
        reasons,
        uncatalogued,
    })
}

/// Days since the Unix epoch, as Date32 counts them.
fn days(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as i32
}

/// `key=value;key=value` sorted by key, from one source column per key ("" when there are none).
fn breakdown(chunk: &Chunk, columns: &[(String, String)]) -> Result<Mapped, HarmoniseError> {
    match columns {
        [] => Ok(Mapped::fixed(String::new(), chunk.batch.num_rows())),
        [(key, column)] => map_column(chunk, "breakdown", column, "breakdown", |value| {
            Ok(format!("{key}={value}"))
        }),
        _ => {
            // Several columns: intern each row's combination of categories once.
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
                column: columns[0].1.clone(),
                rule: "breakdown",
                keys: row_keys,
                source_keys: None,
                errors: Vec::new(),
                values,
            })
        }
    }
}

mod values;

#[cfg(test)]
mod tests;
