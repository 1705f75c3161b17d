//! Helpers the validation tests share: schemas, chunks and the reasons a check gives.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};

use super::{TableSchema, Validated, validate};
use crate::formats::{CellStatus, Chunk, Cube, Dimension, SourceMeta, SourceTable};

pub(super) const PATH: &str = "schemas/test.table.json";

pub(super) fn schema(json: &str) -> TableSchema {
    TableSchema::from_json(json, Path::new(PATH)).unwrap_or_else(|problems| panic!("{problems:#?}"))
}

/// A schema with one field of `type` and `extra` JSON in the field object.
pub(super) fn one_field(name: &str, field: &str) -> TableSchema {
    schema(&format!(r#"{{"fields": [{{"name": "{name}", {field}}}]}}"#))
}

/// A CSV-like chunk: text columns, rows numbered from line 2 (line 1 is the header).
pub(super) fn csv(columns: &[(&str, &[Option<&str>])]) -> Chunk {
    let batch = RecordBatch::try_from_iter(columns.iter().map(|(name, values)| {
        (
            *name,
            Arc::new(StringArray::from(values.to_vec())) as ArrayRef,
        )
    }))
    .unwrap();
    let rows = (2..2 + batch.num_rows() as u64).collect();
    SourceTable::from_rows(batch, rows, SourceMeta::default())
        .unwrap()
        .all()
}

pub(super) fn column(name: &str, values: &[&str]) -> Chunk {
    let values: Vec<Option<&str>> = values.iter().map(|v| Some(*v)).collect();
    csv(&[(name, &values)])
}

/// Every reason as `row rule column: message`, one a line.
pub(super) fn reasons(validated: &Validated) -> String {
    validated
        .reasons
        .iter()
        .map(|r| format!("{} {} {}: {}", r.row, r.rule, r.column, r.message))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn check(chunk: &Chunk, schema: &TableSchema) -> String {
    reasons(&validate(chunk, schema).unwrap())
}

pub(super) fn cube() -> SourceTable {
    let cube = Cube {
        dimensions: vec![
            Dimension::coded("Region", ["00", "0180", "Okänd"]),
            Dimension::coded("Tid", ["2022", "2023"]),
        ],
        values: Float64Array::from(vec![
            Some(1.0),
            Some(-0.0),
            None,
            Some(f64::NAN),
            Some(-2.0),
            Some(250.5),
        ]),
        status: CellStatus::Sparse {
            markers: vec!["..".into()],
            cells: vec![(2, 0)],
        },
    };
    SourceTable::from_cube(cube, SourceMeta::default()).unwrap()
}
