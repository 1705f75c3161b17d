//! Table Schema checks: a chunk of a SourceTable against a Frictionless Table Schema, rule by rule.
//!
//! Owns: reading and checking schema files (the subset of DESIGN §5: `fields` with type, format,
//! `decimalChar`, `groupChar` and `constraints`; `missingValues`; `primaryKey`) and [`validate`],
//! which splits a chunk into accepted and refused rows with one [`Reason`] per broken rule.
//! Must not: map codes, periods or areas (harmonise does), write rejects (warehouse does) or decide
//! whether a run with rejects fails (the pipeline does).
//!
//! Text columns are dictionary-encoded, so every rule on a text column is evaluated once per
//! distinct dictionary value and broadcast to the rows through the keys: a 10-million-cell cube
//! with a few hundred categories per column costs a few hundred parses, plus a pass over the keys
//! for each rule that some value breaks. Messages are built only for broken rows, once per broken
//! value. Uniqueness and the primary key count dictionary keys (combined by mixed radix, hashed
//! only when the combinations outnumber the rows), never strings.
//!
//! Semantics follow <https://specs.frictionlessdata.io/table-schema/>: a value equal to one of
//! `missingValues` is null; `required` fails on null; every other rule skips nulls; `type` needs a
//! non-null value to parse; `enum` compares the text for string fields and the parsed value
//! otherwise; `pattern` must match the whole text; `minimum`/`maximum` compare parsed values;
//! `unique` and `primaryKey` hold within the chunk given (a caller that splits a table into chunks
//! checks those across chunks itself), and every row of a duplicate is refused.
//!
//! Files: `schema.rs` the checked schema types and how each type parses text, `load.rs` the
//! Frictionless JSON loader (every problem at once), `rules.rs` the evaluation of each rule over
//! a chunk's columns; this file splits a chunk by them.

mod load;
mod rules;
mod schema;
#[cfg(test)]
mod testing;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use arrow_schema::{ArrowError, DataType, Schema};

use crate::formats::Chunk;
use crate::problem::Problem;
use crate::rejects::{Reason, Report};

use rules::{
    Column, Found, KeyPart, TextColumn, check_numbers, check_numbers_required, check_primary_key,
};
pub use schema::{
    Allowed, Bound, Constraints, DEFAULT_MISSING_VALUES, DateFormat, Field, FieldType, Pattern,
    SUPPORTED_TYPES, TableSchema, Value,
};

/// A chunk split by [`validate`].
#[derive(Debug, Clone)]
pub struct Validated {
    /// Rows that broke no rule, in chunk order.
    pub accepted: Chunk,
    /// Rows that broke at least one rule, in chunk order.
    pub rejected: Chunk,
    /// One reason per broken rule per refused row, ordered by row (then field and rule order).
    pub reasons: Vec<Reason>,
    pub report: Report,
}

/// Why a table cannot be checked against a schema at all.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{}: field `{field}` {mismatch}", .schema.display())]
    Column {
        schema: PathBuf,
        field: String,
        mismatch: Mismatch,
    },
    #[error("{}: cannot read column `{field}` as text or numbers", .schema.display())]
    Arrow {
        schema: PathBuf,
        field: String,
        #[source]
        source: ArrowError,
    },
}

/// How a declared field and a table's column fail to fit together.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// The table has no such column.
    Absent { columns: Vec<String> },
    /// The column's Arrow type is neither text nor numeric.
    Unsupported { data_type: DataType },
    /// A numeric column declared with a type that only text can hold.
    NumbersAsText { declared: &'static str },
    /// A text-only constraint on a numeric column.
    TextRuleOnNumbers { rule: &'static str },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Absent { columns } => write!(
                f,
                "is not a column of the table (it has {}); fix the field name or the source",
                columns.join(", ")
            ),
            Mismatch::Unsupported { data_type } => write!(
                f,
                "is a column of type {data_type}, which can only be checked as text or numbers"
            ),
            Mismatch::NumbersAsText { declared } => write!(
                f,
                "holds numbers but is declared `{declared}`; declare it `number` or `integer`"
            ),
            Mismatch::TextRuleOnNumbers { rule } => write!(
                f,
                "holds numbers, so `{rule}` (a rule on text) cannot apply; remove it"
            ),
        }
    }
}

impl TableSchema {
    /// Problems of this schema against a table's columns: a declared field missing from the table,
    /// a column that is neither text nor numbers, or a numeric column declared as text. A table
    /// column the schema does not declare is fine. `path` names the schema file in the problems.
    pub fn check_columns(&self, schema: &Schema, path: &Path) -> Vec<Problem> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, field)| {
                let data_type = schema
                    .field_with_name(&field.name)
                    .ok()
                    .map(|f| f.data_type());
                let mismatch = mismatch(field, data_type, schema)?;
                let key = match mismatch {
                    Mismatch::Absent { .. } => format!("fields[{i}].name"),
                    Mismatch::Unsupported { .. } | Mismatch::NumbersAsText { .. } => {
                        format!("fields[{i}].type")
                    }
                    Mismatch::TextRuleOnNumbers { rule } => {
                        format!("fields[{i}].constraints.{rule}")
                    }
                };
                Some(Problem::error(
                    path,
                    key,
                    format!("field `{}` {mismatch}", field.name),
                ))
            })
            .collect()
    }
}

/// Checks `chunk` against `schema`, rule by rule; a row breaking any rule is refused with one
/// [`Reason`] per broken rule (the row is data, not an error). `Err` only when the table cannot be
/// checked at all: a declared column is absent or of a type the field cannot have.
pub fn validate(chunk: &Chunk, schema: &TableSchema) -> Result<Validated, ValidateError> {
    let batch = &chunk.batch;
    let columns = schema
        .fields
        .iter()
        .map(|field| Column::of(batch, field, schema))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = Found::new(chunk);
    let missing: HashSet<&str> = schema.missing_values.iter().map(String::as_str).collect();
    let mut key_parts = Vec::new();
    for (field, column) in schema.fields.iter().zip(&columns) {
        let in_key = schema.primary_key.contains(&field.name);
        match column {
            Column::Text { keys, values } => {
                let text = TextColumn::new(field, keys, values, &missing);
                text.check(&mut found);
                if field.constraints.unique {
                    text.check_unique(&mut found);
                }
                if in_key {
                    if !field.constraints.required {
                        text.check_required(&mut found, " but is part of the primary key");
                    }
                    key_parts.push((field.name.as_str(), KeyPart::text(&text)));
                }
            }
            Column::Number(values) => {
                check_numbers(field, values, &mut found);
                if in_key {
                    if !field.constraints.required {
                        check_numbers_required(
                            field,
                            values,
                            &mut found,
                            " but is part of the primary key",
                        );
                    }
                    key_parts.push((field.name.as_str(), KeyPart::numbers(values)));
                }
            }
        }
    }
    if !key_parts.is_empty() {
        // Order the parts as the schema's `primaryKey` does, for messages.
        key_parts.sort_by_key(|(name, _)| schema.primary_key.iter().position(|k| k == name));
        check_primary_key(&key_parts, &mut found);
    }
    Ok(found.finish())
}

/// Why `field` cannot be checked against the column of type `data_type` (`None` = absent).
fn mismatch(field: &Field, data_type: Option<&DataType>, schema: &Schema) -> Option<Mismatch> {
    let Some(data_type) = data_type else {
        return Some(Mismatch::Absent {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        });
    };
    if is_text(data_type) {
        return None;
    }
    if !data_type.is_numeric() {
        return Some(Mismatch::Unsupported {
            data_type: data_type.clone(),
        });
    }
    match field.kind {
        FieldType::Integer { .. } | FieldType::Number { .. } => {}
        FieldType::String => return Some(Mismatch::NumbersAsText { declared: "string" }),
        FieldType::Date(_) => return Some(Mismatch::NumbersAsText { declared: "date" }),
        FieldType::Year => return Some(Mismatch::NumbersAsText { declared: "year" }),
    }
    let c = &field.constraints;
    let rule = if c.pattern.is_some() {
        "pattern"
    } else if c.min_length.is_some() {
        "minLength"
    } else if c.max_length.is_some() {
        "maxLength"
    } else {
        return None;
    };
    Some(Mismatch::TextRuleOnNumbers { rule })
}

fn is_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(key, value) => key.is_integer() && is_text(value),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::testing::*;

    #[test]
    fn a_row_breaking_several_rules_gets_a_reason_for_each() {
        let schema = one_field(
            "kommun_kod",
            r#""constraints": {"pattern": "\\d{4}", "enum": ["0180", "1480"], "maxLength": 4}"#,
        );
        let validated = validate(&column("kommun_kod", &["Stockholm"]), &schema).unwrap();
        assert_eq!(validated.reasons.len(), 3);
        assert_eq!(validated.report.rows_rejected, 1);
        assert_eq!(validated.rejected.rows, vec![2]);
    }

    #[test]
    fn a_declared_column_the_table_lacks_cannot_be_checked() {
        let schema = one_field("kon", r#""type": "string""#);
        let err = validate(&column("Kön", &["1"]), &schema).unwrap_err();
        insta::assert_snapshot!(err, @"schemas/test.table.json: field `kon` is not a column of the table (it has Kön); fix the field name or the source");
    }

    #[test]
    fn check_columns_names_the_field_and_key() {
        let schema = schema(
            r#"{"fields": [
                {"name": "Region"},
                {"name": "value", "type": "year"},
                {"name": "saknas"}
            ]}"#,
        );
        let found: Vec<String> = schema
            .check_columns(cube().schema(), Path::new(PATH))
            .iter()
            .map(ToString::to_string)
            .collect();
        insta::assert_snapshot!(found.join("\n"), @r"
        error: schemas/test.table.json: fields[1].type: field `value` holds numbers but is declared `year`; declare it `number` or `integer`
        error: schemas/test.table.json: fields[2].name: field `saknas` is not a column of the table (it has Region, Tid, value, status); fix the field name or the source
        ");
    }

    #[test]
    fn the_lupp_sample_schema_checks_a_survey_export() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/samples/lupp.table.json");
        let schema = TableSchema::load(&path).unwrap_or_else(|p| panic!("{p:#?}"));
        let row = |kod, andel, antal| {
            [
                kod,
                "Stockholm",
                "2023",
                "åk 8",
                "Flicka",
                "F12",
                "Ja",
                andel,
                antal,
            ]
        };
        let rows = [
            row("0180", "12,5", "40"),
            row("0180", "för få svar", "för få svar"),
            row("180", "101", "-1"),
        ];
        let names = [
            "kommun_kod",
            "kommun",
            "ar",
            "arskurs",
            "kon",
            "fraga_id",
            "svarsalternativ",
            "andel",
            "antal_svar",
        ];
        let columns: Vec<Vec<Option<&str>>> = (0..names.len())
            .map(|c| rows.iter().map(|r| Some(r[c])).collect())
            .collect();
        let pairs: Vec<(&str, &[Option<&str>])> = names
            .iter()
            .zip(&columns)
            .map(|(n, c)| (*n, c.as_slice()))
            .collect();
        let chunk = csv(&pairs);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        2 primaryKey kommun_kod,ar,arskurs,kon,fraga_id,svarsalternativ: key (kommun_kod, ar, arskurs, kon, fraga_id, svarsalternativ) = (0180, 2023, åk 8, Flicka, F12, Ja) appears 2 times but the primary key must be unique
        3 primaryKey kommun_kod,ar,arskurs,kon,fraga_id,svarsalternativ: key (kommun_kod, ar, arskurs, kon, fraga_id, svarsalternativ) = (0180, 2023, åk 8, Flicka, F12, Ja) appears 2 times but the primary key must be unique
        4 pattern kommun_kod: value `180` in column `kommun_kod` does not match the pattern `\d{4}`
        4 maximum andel: value `101` in column `andel` is above the maximum 100
        4 minimum antal_svar: value `-1` in column `antal_svar` is below the minimum 0
        ");
    }
}
