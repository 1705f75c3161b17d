//! The catalogues beside the observations: indicators and areas (from `schemas/`), coverage
//! (from what the warehouse holds), and the tables and code labels network sources described.
//!
//! Owns: the Arrow shape of `catalog/*.parquet`, and
//! counting coverage (pipeline × indicator × area level) from observation batches.
//! Must not: read `schemas/` (schemas does), write files (warehouse does) or remember coverage between runs (the ledger does).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, DictionaryArray, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use serde::{Deserialize, Serialize};

use crate::model::{Status, col};
use crate::schemas::{Indicator, Schemas};
use crate::sources::About;

/// `catalog/indicators.parquet`: one row per catalogued indicator. Nullability is fixed (not
/// inferred from the rows), so that the file's schema does not change with its content.
pub fn indicators_batch(schemas: &Schemas) -> RecordBatch {
    let indicators = &schemas.indicators;
    let text = |f: fn(&Indicator) -> Option<&str>| -> ArrayRef {
        Arc::new(indicators.values().map(f).collect::<StringArray>())
    };
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        (
            "indicator_id",
            Arc::new(StringArray::from_iter_values(indicators.keys())),
            false,
        ),
        ("title_sv", text(|i| Some(&i.title_sv)), false),
        ("title_en", text(|i| i.title_en.as_deref()), true),
        ("description", text(|i| i.description.as_deref()), true),
        ("unit", text(|i| Some(&i.unit)), false),
        ("theme", text(|i| i.theme.as_deref()), true),
        ("polarity", text(|i| Some(&i.polarity)), false),
        ("source", text(|i| i.source.as_deref()), true),
        ("source_table", text(|i| i.source_table.as_deref()), true),
        ("license", text(|i| i.license.as_deref()), true),
        ("scope", text(|i| i.scope.as_deref()), true),
        ("successor", text(|i| i.successor.as_deref()), true),
        (
            "retired",
            Arc::new(
                indicators
                    .values()
                    .map(|i| Some(i.retired))
                    .collect::<BooleanArray>(),
            ),
            false,
        ),
    ];
    RecordBatch::try_from_iter_with_nullable(columns).expect("columns of one length")
}

/// `catalog/tables.parquet`: one row per pipeline whose source described its table (both ids,
/// label, language, licence, notes), so that a figure can be traced to the producer's table.
pub fn tables_batch(abouts: &[(String, About)]) -> RecordBatch {
    let text = |f: &dyn Fn(&(String, About)) -> Option<&str>| -> ArrayRef {
        Arc::new(abouts.iter().map(f).collect::<StringArray>())
    };
    let notes: Vec<String> = abouts.iter().map(|(_, a)| a.notes.join("\n\n")).collect();
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        ("pipeline", text(&|(p, _)| Some(p)), false),
        (col::SOURCE_TABLE, text(&|(_, a)| Some(&a.table)), false),
        ("table_id", text(&|(_, a)| a.table_id.as_deref()), true),
        ("path", text(&|(_, a)| a.path.as_deref()), true),
        ("label", text(&|(_, a)| Some(&a.label)), false),
        (col::SOURCE_URL, text(&|(_, a)| Some(&a.url)), false),
        ("updated", text(&|(_, a)| a.updated.as_deref()), true),
        ("language", text(&|(_, a)| Some(&a.language)), false),
        ("license", text(&|(_, a)| a.license.as_deref()), true),
        (
            "notes",
            Arc::new(StringArray::from_iter_values(&notes)),
            false,
        ),
    ];
    RecordBatch::try_from_iter_with_nullable(columns).expect("columns of one length")
}

/// `catalog/codes.parquet`: the label of every code each pipeline fetched, per source column
/// (`Region` `0180` → `Stockholm`), in the language it was fetched in.
pub fn codes_batch(abouts: &[(String, About)]) -> RecordBatch {
    let (mut pipelines, mut columns, mut codes, mut labels, mut languages) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (pipeline, about) in abouts {
        for code in &about.codes {
            pipelines.push(pipeline.as_str());
            columns.push(code.column.as_str());
            codes.push(code.code.as_str());
            labels.push(code.label.as_str());
            languages.push(about.language.as_str());
        }
    }
    let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    RecordBatch::try_from_iter([
        ("pipeline", text(pipelines)),
        ("source_column", text(columns)),
        ("code", text(codes)),
        ("label", text(labels)),
        ("language", text(languages)),
    ])
    .expect("columns of one length")
}

/// `catalog/areas.parquet` (empty when there is no area catalogue).
pub fn areas_batch(schemas: &Schemas) -> RecordBatch {
    let entries = schemas.areas.as_ref().map(|a| a.entries()).unwrap_or(&[]);
    let date = |d: Option<chrono::NaiveDate>| d.map(days);
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        (
            "area_code",
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| &e.code),
            )),
            false,
        ),
        (
            "name",
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| &e.name),
            )),
            false,
        ),
        (
            "level",
            Arc::new(StringArray::from_iter_values(
                entries.iter().map(|e| e.level.as_str()),
            )),
            false,
        ),
        (
            "county_code",
            Arc::new(
                entries
                    .iter()
                    .map(|e| e.county_code.as_deref())
                    .collect::<StringArray>(),
            ),
            true,
        ),
        (
            "valid_from",
            Arc::new(
                entries
                    .iter()
                    .map(|e| date(e.valid_from))
                    .collect::<Date32Array>(),
            ),
            true,
        ),
        (
            "valid_to",
            Arc::new(
                entries
                    .iter()
                    .map(|e| date(e.valid_to))
                    .collect::<Date32Array>(),
            ),
            true,
        ),
    ];
    RecordBatch::try_from_iter_with_nullable(columns).expect("columns of one length")
}

fn days(date: chrono::NaiveDate) -> i32 {
    (date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as i32
}

/// One row of `catalog/coverage.parquet`: what one pipeline holds of one indicator at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageRow {
    pub pipeline: String,
    pub indicator_id: String,
    pub area_level: String,
    pub source: String,
    pub areas: u64,
    pub first_period: String,
    pub last_period: String,
    pub rows: u64,
    /// Rows per status label.
    pub rows_by_status: BTreeMap<String, u64>,
    pub last_run: String,
    /// Microseconds since the epoch, UTC.
    pub source_updated: Option<i64>,
}

/// Counts coverage over the observation batches of one run.
#[derive(Debug, Default)]
pub struct CoverageCounter {
    groups: HashMap<(String, String), Group>,
}

#[derive(Debug, Default)]
struct Group {
    source: String,
    areas: BTreeSet<String>,
    /// (period_start, label) of the first and last period.
    first: Option<(i32, String)>,
    last: Option<(i32, String)>,
    rows: u64,
    by_status: BTreeMap<String, u64>,
    source_updated: Option<i64>,
}

/// A dictionary column of observations: per-row keys and the values they index.
struct Keyed<'a> {
    keys: &'a [i32],
    values: &'a StringArray,
}

impl<'a> Keyed<'a> {
    fn of(batch: &'a RecordBatch, name: &str) -> Self {
        let column = batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<DictionaryArray<Int32Type>>())
            .expect("observations hold text as dictionaries");
        Self {
            keys: column.keys().values(),
            values: column
                .values()
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("dictionaries of text"),
        }
    }

    fn text(&self, key: i32) -> String {
        self.values.value(key as usize).to_string()
    }
}

/// One group's counts in one batch, on dictionary keys.
struct BatchGroup {
    source: i32,
    /// Per area key: seen in this group.
    areas: Vec<bool>,
    first: Option<(i32, i32)>,
    last: Option<(i32, i32)>,
    rows: u64,
    /// Per status key: rows.
    by_status: Vec<u64>,
    source_updated: Option<i64>,
}

impl CoverageCounter {
    /// Adds observation rows (model batch schema): counted on dictionary keys, turned into text
    /// once per group.
    pub fn add(&mut self, batch: &RecordBatch) {
        let indicator = Keyed::of(batch, col::INDICATOR_ID);
        let level = Keyed::of(batch, col::AREA_LEVEL);
        let status = Keyed::of(batch, col::STATUS);
        let source = Keyed::of(batch, col::SOURCE);
        let area = Keyed::of(batch, col::AREA_CODE);
        let period = Keyed::of(batch, col::PERIOD);
        let starts = batch
            .column_by_name(col::PERIOD_START)
            .and_then(|c| c.as_any().downcast_ref::<Date32Array>())
            .expect("period_start is Date32");
        let updated = batch
            .column_by_name(col::SOURCE_UPDATED)
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
            .expect("source_updated is a timestamp");
        // Groups by (indicator key, level key), found by index rather than hashed per row.
        let levels = level.values.len();
        let mut groups: Vec<Option<BatchGroup>> = Vec::new();
        groups.resize_with(indicator.values.len() * levels, || None);
        for i in 0..batch.num_rows() {
            let slot = indicator.keys[i] as usize * levels + level.keys[i] as usize;
            let group = groups[slot].get_or_insert_with(|| BatchGroup {
                source: 0,
                areas: vec![false; area.values.len()],
                first: None,
                last: None,
                rows: 0,
                by_status: vec![0; status.values.len()],
                source_updated: None,
            });
            group.source = source.keys[i];
            group.areas[area.keys[i] as usize] = true;
            let start = (starts.value(i), period.keys[i]);
            if group.first.is_none_or(|(s, _)| start.0 < s) {
                group.first = Some(start);
            }
            if group.last.is_none_or(|(s, _)| start.0 > s) {
                group.last = Some(start);
            }
            group.rows += 1;
            group.by_status[status.keys[i] as usize] += 1;
            if updated.is_valid(i) {
                group.source_updated = group.source_updated.max(Some(updated.value(i)));
            }
        }
        let mut counted = CoverageCounter::default();
        for (slot, g) in groups.into_iter().enumerate() {
            let Some(g) = g else { continue };
            let (indicator_key, level_key) = ((slot / levels) as i32, (slot % levels) as i32);
            counted.groups.insert(
                (indicator.text(indicator_key), level.text(level_key)),
                Group {
                    source: source.text(g.source),
                    areas: (0..g.areas.len())
                        .filter(|&k| g.areas[k])
                        .map(|k| area.text(k as i32))
                        .collect(),
                    first: g.first.map(|(s, p)| (s, period.text(p))),
                    last: g.last.map(|(s, p)| (s, period.text(p))),
                    rows: g.rows,
                    by_status: (0..g.by_status.len())
                        .filter(|&k| g.by_status[k] > 0)
                        .map(|k| (status.text(k as i32), g.by_status[k]))
                        .collect(),
                    source_updated: g.source_updated,
                },
            );
        }
        self.merge(counted);
    }

    /// Adds another counter's groups (partitions counted on other threads).
    pub fn merge(&mut self, other: CoverageCounter) {
        for (key, theirs) in other.groups {
            let ours = self.groups.entry(key).or_default();
            ours.source = theirs.source;
            ours.areas.extend(theirs.areas);
            if let Some(first) = theirs.first
                && ours.first.as_ref().is_none_or(|(s, _)| first.0 < *s)
            {
                ours.first = Some(first);
            }
            if let Some(last) = theirs.last
                && ours.last.as_ref().is_none_or(|(s, _)| last.0 > *s)
            {
                ours.last = Some(last);
            }
            ours.rows += theirs.rows;
            for (status, count) in theirs.by_status {
                *ours.by_status.entry(status).or_default() += count;
            }
            ours.source_updated = ours.source_updated.max(theirs.source_updated);
        }
    }

    /// The rows of one pipeline's coverage, sorted by indicator and level.
    pub fn finish(self, pipeline: &str, run_id: &str) -> Vec<CoverageRow> {
        let mut rows: Vec<CoverageRow> = self
            .groups
            .into_iter()
            .map(|((indicator_id, area_level), g)| CoverageRow {
                pipeline: pipeline.to_string(),
                indicator_id,
                area_level,
                source: g.source,
                areas: g.areas.len() as u64,
                first_period: g.first.map(|(_, p)| p).unwrap_or_default(),
                last_period: g.last.map(|(_, p)| p).unwrap_or_default(),
                rows: g.rows,
                rows_by_status: g.by_status,
                last_run: run_id.to_string(),
                source_updated: g.source_updated,
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.indicator_id, &a.area_level).cmp(&(&b.indicator_id, &b.area_level))
        });
        rows
    }
}

/// `catalog/coverage.parquet` from every pipeline's coverage rows; one `rows_<status>` column
/// per status of the model.
pub fn coverage_batch(rows: &[CoverageRow]) -> RecordBatch {
    let text = |f: fn(&CoverageRow) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    let count = |f: &dyn Fn(&CoverageRow) -> u64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| f(r) as i64),
        ))
    };
    let mut fields = vec![
        Field::new("pipeline", DataType::Utf8, false),
        Field::new(col::INDICATOR_ID, DataType::Utf8, false),
        Field::new(col::AREA_LEVEL, DataType::Utf8, false),
        Field::new(col::SOURCE, DataType::Utf8, false),
        Field::new("areas", DataType::Int64, false),
        Field::new("first_period", DataType::Utf8, false),
        Field::new("last_period", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        text(|r| &r.pipeline),
        text(|r| &r.indicator_id),
        text(|r| &r.area_level),
        text(|r| &r.source),
        count(&|r| r.areas),
        text(|r| &r.first_period),
        text(|r| &r.last_period),
        count(&|r| r.rows),
    ];
    for status in Status::ALL {
        fields.push(Field::new(format!("rows_{status}"), DataType::Int64, false));
        let label = status.as_str();
        columns.push(count(&|r| {
            r.rows_by_status.get(label).copied().unwrap_or(0)
        }));
    }
    fields.push(Field::new("last_run", DataType::Utf8, false));
    columns.push(text(|r| &r.last_run));
    fields.push(Field::new(
        col::SOURCE_UPDATED,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    ));
    columns.push(Arc::new(
        rows.iter()
            .map(|r| r.source_updated)
            .collect::<TimestampMicrosecondArray>()
            .with_timezone("UTC"),
    ));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("fields match columns")
}

#[cfg(test)]
mod tests {
    use arrow_array::BooleanArray;

    use super::*;

    fn indicator(title: &str) -> Indicator {
        Indicator {
            title_sv: title.into(),
            title_en: None,
            description: None,
            unit: "percent".into(),
            theme: None,
            polarity: "neutral".into(),
            source: Some("kolada".into()),
            source_table: None,
            license: None,
            scope: None,
            successor: None,
            retired: false,
        }
    }

    #[test]
    fn indicators_have_scope_successor_and_retired_columns() {
        let mut schemas = Schemas::default();
        let old = Indicator {
            retired: true,
            successor: Some("N66077".into()),
            ..indicator("Old")
        };
        let school = Indicator {
            scope: Some("hemkommun".into()),
            ..indicator("School")
        };
        schemas.indicators.insert("N02904".into(), old);
        schemas.indicators.insert("N15428".into(), school);
        schemas.indicators.insert("N66077".into(), indicator("New"));
        let batch = indicators_batch(&schemas);

        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "indicator_id",
                "title_sv",
                "title_en",
                "description",
                "unit",
                "theme",
                "polarity",
                "source",
                "source_table",
                "license",
                "scope",
                "successor",
                "retired",
            ]
        );
        let field = |name: &str| schema.field_with_name(name).unwrap().clone();
        assert_eq!(field("scope").data_type(), &DataType::Utf8);
        assert!(field("scope").is_nullable() && field("successor").is_nullable());
        assert_eq!(field("retired").data_type(), &DataType::Boolean);
        assert!(!field("retired").is_nullable() && !field("indicator_id").is_nullable());
        // Nullability does not follow the rows: no row has a title_en, yet it stays nullable.
        assert!(field("title_en").is_nullable());

        let text = |name: &str| -> Vec<Option<String>> {
            let column = batch.column_by_name(name).unwrap();
            let column = column.as_any().downcast_ref::<StringArray>().unwrap();
            column.iter().map(|v| v.map(str::to_owned)).collect()
        };
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            text("indicator_id"),
            [some("N02904"), some("N15428"), some("N66077")]
        );
        assert_eq!(text("scope"), [None, some("hemkommun"), None]);
        assert_eq!(text("successor"), [some("N66077"), None, None]);
        let retired = batch.column_by_name("retired").unwrap();
        let retired = retired.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(
            retired.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), Some(false)]
        );
    }

    #[test]
    fn an_empty_catalogue_keeps_its_columns() {
        let batch = indicators_batch(&Schemas::default());
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.num_columns(), 13);
        assert!(batch.schema().field_with_name("retired").is_ok());
    }
}
