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

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{ArrowError, DataType, Schema};
use chrono::NaiveDate;
use regex::Regex;
use serde_json::Value as Json;

use crate::formats::Chunk;
use crate::formats::table::text_type;
use crate::problem::Problem;
use crate::rejects::{Reason, Report};

/// The field types this crate checks (a subset of Frictionless).
pub const SUPPORTED_TYPES: [&str; 5] = ["string", "integer", "number", "date", "year"];

/// `missingValues` when a schema does not say: the empty string is null.
pub const DEFAULT_MISSING_VALUES: [&str; 1] = [""];

/// How many enum values a message lists before it says how many there are in all.
const ENUM_VALUES_SHOWN: usize = 10;

/// A Frictionless Table Schema (the subset of DESIGN §5), checked when loaded: patterns are
/// compiled, bounds and enum values parsed with the field's type, and `primary_key` names fields.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// The fields in schema order; names are distinct.
    pub fields: Vec<Field>,
    /// Cell texts that mean "no value" in every text column (default `[""]`).
    pub missing_values: Vec<String>,
    /// Names of the fields whose combination identifies a row; empty = no primary key.
    pub primary_key: Vec<String>,
    path: PathBuf,
}

/// One checked field of a schema.
#[derive(Debug, Clone)]
pub struct Field {
    /// The column the field describes.
    pub name: String,
    /// A human title, when the schema gives one (not checked against anything).
    pub title: Option<String>,
    /// What the column means, when the schema says.
    pub description: Option<String>,
    /// `type` (default `string`), with its `format` and separators.
    pub kind: FieldType,
    pub constraints: Constraints,
}

/// A field's type, with the options that change how its text parses.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// Any text (format `default` only).
    String,
    /// Optional sign and digits (`groupChar` removed first, when given).
    Integer { group: Option<char> },
    /// A decimal number written with `decimal` (`decimalChar`, default `.`); `NaN`, `INF`, `-INF`.
    Number { decimal: char, group: Option<char> },
    /// A calendar date.
    Date(DateFormat),
    /// Four digits.
    Year,
}

/// How a date field is written.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// `YYYY-MM-DD` (format `default`).
    Iso,
    /// A strftime pattern such as `%d/%m/%Y` (format `%d/%m/%Y` or the older `fmt:%d/%m/%Y`).
    Pattern(String),
}

/// A field's constraints; absent ones are `None` or `false`.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// A null (absent or a missing-value marker) breaks the rule.
    pub required: bool,
    /// Two rows of a chunk with the same non-null value both break the rule.
    pub unique: bool,
    /// `enum`: the allowed values.
    pub allowed: Option<Allowed>,
    /// A regex the whole text must match.
    pub pattern: Option<Pattern>,
    /// The smallest allowed parsed value (integer, number, date and year fields).
    pub minimum: Option<Bound>,
    /// The largest allowed parsed value (integer, number, date and year fields).
    pub maximum: Option<Bound>,
    /// `minLength`, in characters.
    pub min_length: Option<usize>,
    /// `maxLength`, in characters.
    pub max_length: Option<usize>,
}

/// The values an `enum` constraint allows, parsed with the field's type.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Parsed, in schema order.
    pub values: Vec<Value>,
    /// The values as the schema writes them, for messages.
    pub texts: Vec<String>,
}

/// A `pattern` constraint: the schema's regex, compiled anchored at both ends.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written in the schema.
    pub source: String,
    anchored: Regex,
}

impl Pattern {
    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

/// A `minimum` or `maximum`: the parsed value and the schema's text of it.
#[derive(Debug, Clone)]
pub struct Bound {
    /// Parsed with the field's type.
    pub value: Value,
    /// As the schema writes it, for messages.
    pub text: String,
}

/// A parsed (logical) cell value; values of one field always have the field's variant.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    /// A string field's text, as is.
    Text(String),
    Integer(i64),
    Number(f64),
    Date(NaiveDate),
    Year(i32),
}

impl Value {
    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

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
    /// Reads and checks a schema file. Every problem found (unreadable file, bad JSON, unknown
    /// keys, unknown types, bad regexes, minimum above maximum, a primary key naming an unknown
    /// field …) comes back at once, each with its dotted key path.
    pub fn load(path: &Path) -> Result<TableSchema, Vec<Problem>> {
        let json = std::fs::read_to_string(path).map_err(|err| {
            vec![Problem::error(
                path,
                "",
                format!("cannot read the file: {err}"),
            )]
        })?;
        Self::from_json(&json, path)
    }

    /// Checks the schema in `json`; `path` is the file it came from, for problems and errors.
    pub fn from_json(json: &str, path: &Path) -> Result<TableSchema, Vec<Problem>> {
        let value: Json = serde_json::from_str(json)
            .map_err(|err| vec![Problem::error(path, "", format!("not valid JSON: {err}"))])?;
        let mut loader = Loader {
            path,
            problems: Vec::new(),
        };
        let schema = loader.schema(&value);
        match schema {
            Some(schema) if loader.problems.is_empty() => Ok(schema),
            _ => Err(loader.problems),
        }
    }

    /// The file the schema was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

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

/// A column ready for checking: text as dictionary keys + values, anything numeric as Float64.
enum Column {
    Text {
        keys: Int32Array,
        values: StringArray,
    },
    Number(Float64Array),
}

impl Column {
    fn of(
        batch: &RecordBatch,
        field: &Field,
        schema: &TableSchema,
    ) -> Result<Column, ValidateError> {
        let array = batch.column_by_name(&field.name);
        let data_type = array.map(|a| a.data_type());
        if let Some(mismatch) = mismatch(field, data_type, &batch.schema()) {
            return Err(ValidateError::Column {
                schema: schema.path.clone(),
                field: field.name.clone(),
                mismatch,
            });
        }
        let array = array.expect("mismatch() refuses absent columns");
        let cast = |to: &DataType| {
            arrow_cast::cast(array, to).map_err(|source| ValidateError::Arrow {
                schema: schema.path.clone(),
                field: field.name.clone(),
                source,
            })
        };
        if is_text(array.data_type()) {
            let text = if *array.data_type() == text_type() {
                array.clone()
            } else {
                cast(&text_type())?
            };
            let dictionary = text.as_dictionary::<Int32Type>();
            let values =
                cast_values(dictionary.values()).map_err(|source| ValidateError::Arrow {
                    schema: schema.path.clone(),
                    field: field.name.clone(),
                    source,
                })?;
            Ok(Column::Text {
                keys: dictionary.keys().clone(),
                values,
            })
        } else {
            Ok(Column::Number(
                cast(&DataType::Float64)?.as_primitive().clone(),
            ))
        }
    }
}

fn cast_values(values: &dyn Array) -> Result<StringArray, ArrowError> {
    match values.as_string_opt::<i32>() {
        Some(strings) => Ok(strings.clone()),
        None => Ok(arrow_cast::cast(values, &DataType::Utf8)?
            .as_string()
            .clone()),
    }
}

/// What [`validate`] has found so far: the rows refused and why.
struct Found<'a> {
    chunk: &'a Chunk,
    bad: BooleanBuffer,
    /// (position in the chunk, reason); sorted by position at the end.
    reasons: Vec<(usize, Reason)>,
}

impl<'a> Found<'a> {
    fn new(chunk: &'a Chunk) -> Self {
        Self {
            chunk,
            bad: BooleanBuffer::new_unset(chunk.batch.num_rows()),
            reasons: Vec::new(),
        }
    }

    /// Refuses the rows set in `mask` for `rule` on `column`; `message` is asked only for them.
    fn flag(
        &mut self,
        rule: &str,
        column: &str,
        mask: BooleanBuffer,
        mut message: impl FnMut(usize) -> String,
    ) {
        if !mask.has_true() {
            return;
        }
        for i in mask.set_indices() {
            self.reasons.push((
                i,
                Reason {
                    payload: String::new(),
                    row: self.chunk.rows[i],
                    rule: rule.to_string(),
                    column: column.to_string(),
                    message: message(i),
                },
            ));
        }
        self.bad = &self.bad | &mask;
    }

    fn finish(mut self) -> Validated {
        let n = self.chunk.batch.num_rows();
        let mut report = Report {
            rows_checked: n as u64,
            rows_rejected: self.bad.count_set_bits() as u64,
            ..Report::default()
        };
        self.reasons.sort_by_key(|(i, _)| *i);
        let reasons: Vec<Reason> = self.reasons.into_iter().map(|(_, r)| r).collect();
        for reason in &reasons {
            report.count(reason);
        }
        let pick = |mask: &BooleanBuffer| Chunk {
            batch: arrow_select::filter::filter_record_batch(
                &self.chunk.batch,
                &BooleanArray::new(mask.clone(), None),
            )
            .expect("a mask as long as the batch filters it"),
            rows: mask.set_indices().map(|i| self.chunk.rows[i]).collect(),
        };
        let (accepted, rejected) = if self.bad.has_true() {
            (pick(&!&self.bad), pick(&self.bad))
        } else {
            (self.chunk.clone(), pick(&BooleanBuffer::new_unset(n)))
        };
        Validated {
            accepted,
            rejected,
            reasons,
            report,
        }
    }
}

/// A text column with what every dictionary value means under its field.
struct TextColumn<'a> {
    field: &'a Field,
    keys: &'a Int32Array,
    values: &'a StringArray,
    /// Per dictionary value: it is null (a missing-value marker).
    null: Vec<bool>,
    /// Per dictionary value: its parsed value (`None` when null or not of the field's type).
    parsed: Vec<Option<Value>>,
}

impl<'a> TextColumn<'a> {
    fn new(
        field: &'a Field,
        keys: &'a Int32Array,
        values: &'a StringArray,
        missing: &HashSet<&str>,
    ) -> Self {
        let null: Vec<bool> = values
            .iter()
            .map(|v| v.is_none_or(|v| missing.contains(v)))
            .collect();
        let parsed = values
            .iter()
            .zip(&null)
            .map(|(v, &null)| match (v, null) {
                (Some(v), false) => field.kind.parse(v),
                _ => None,
            })
            .collect();
        Self {
            field,
            keys,
            values,
            null,
            parsed,
        }
    }

    fn text(&self, k: usize) -> &str {
        self.values.value(k)
    }

    /// The rows whose value `k` has `broke[k]`.
    fn rows_where(&self, broke: &[bool]) -> BooleanBuffer {
        let keys = self.keys;
        if !broke.contains(&true) {
            return BooleanBuffer::new_unset(keys.len());
        }
        BooleanBuffer::collect_bool(keys.len(), |i| {
            keys.is_valid(i) && broke[keys.value(i) as usize]
        })
    }

    /// Flags the rows whose value breaks `rule`, with one message per distinct broken value.
    fn flag_values(
        &self,
        found: &mut Found<'_>,
        rule: &str,
        broke: Vec<bool>,
        message: impl Fn(&str) -> String,
    ) {
        let mask = self.rows_where(&broke);
        let mut cache: Vec<Option<String>> = vec![None; broke.len()];
        found.flag(rule, &self.field.name, mask, |i| {
            let k = self.keys.value(i) as usize;
            cache[k]
                .get_or_insert_with(|| message(self.text(k)))
                .clone()
        });
    }

    /// Every rule on single values: required, type, enum, pattern, bounds and lengths.
    fn check(&self, found: &mut Found<'_>) {
        let field = self.field;
        let name = &field.name;
        let c = &field.constraints;
        if c.required {
            self.check_required(found, " but is required");
        }
        let present = |k: usize| !self.null[k];
        let n = self.null.len();
        let each = |f: &dyn Fn(usize) -> bool| (0..n).map(f).collect::<Vec<bool>>();

        let broke = each(&|k| present(k) && self.parsed[k].is_none());
        self.flag_values(found, "type", broke, |v| {
            format!(
                "value `{v}` in column `{name}` is not {}",
                field.kind.expectation()
            )
        });
        if let Some(allowed) = &c.allowed {
            let broke = match field.kind {
                FieldType::String => {
                    let texts: HashSet<&str> = allowed.texts.iter().map(String::as_str).collect();
                    each(&|k| present(k) && !texts.contains(self.text(k)))
                }
                _ => each(&|k| {
                    self.parsed[k]
                        .as_ref()
                        .is_some_and(|v| !allowed.values.contains(v))
                }),
            };
            self.flag_values(found, "enum", broke, |v| {
                format!(
                    "value `{v}` in column `{name}` is not one of {}",
                    list(&allowed.texts)
                )
            });
        }
        if let Some(pattern) = &c.pattern {
            let broke = each(&|k| present(k) && !pattern.matches(self.text(k)));
            self.flag_values(found, "pattern", broke, |v| {
                format!(
                    "value `{v}` in column `{name}` does not match the pattern `{}`",
                    pattern.source
                )
            });
        }
        if let Some(min) = &c.minimum {
            let broke = each(&|k| self.parsed[k].as_ref().is_some_and(|v| *v < min.value));
            self.flag_values(found, "minimum", broke, |v| {
                format!(
                    "value `{v}` in column `{name}` is below the minimum {}",
                    min.text
                )
            });
        }
        if let Some(max) = &c.maximum {
            let broke = each(&|k| self.parsed[k].as_ref().is_some_and(|v| *v > max.value));
            self.flag_values(found, "maximum", broke, |v| {
                format!(
                    "value `{v}` in column `{name}` is above the maximum {}",
                    max.text
                )
            });
        }
        if let Some(min) = c.min_length {
            let broke = each(&|k| present(k) && self.text(k).chars().count() < min);
            self.flag_values(found, "minLength", broke, |v| {
                format!("value `{v}` in column `{name}` is shorter than {min} characters")
            });
        }
        if let Some(max) = c.max_length {
            let broke = each(&|k| present(k) && self.text(k).chars().count() > max);
            self.flag_values(found, "maxLength", broke, |v| {
                format!("value `{v}` in column `{name}` is longer than {max} characters")
            });
        }
    }

    /// Flags null rows (no key, or a missing-value marker) as `required`; `why` ends the message.
    fn check_required(&self, found: &mut Found<'_>, why: &str) {
        let keys = self.keys;
        let null = &self.null;
        if keys.null_count() == 0 && !null.contains(&true) {
            return;
        }
        let mask = BooleanBuffer::collect_bool(keys.len(), |i| {
            keys.is_null(i) || null[keys.value(i) as usize]
        });
        let name = &self.field.name;
        found.flag("required", name, mask, |i| {
            let marker = keys.is_valid(i).then(|| self.text(keys.value(i) as usize));
            match marker {
                Some(marker) if !marker.is_empty() => {
                    format!("column `{name}` holds the missing-value marker `{marker}`{why}")
                }
                _ => format!("column `{name}` is empty{why}"),
            }
        });
    }

    /// Per dictionary value, an id shared by equal texts (dictionaries should be distinct, but a
    /// concatenated one need not be); `None` for null values.
    fn canonical(&self) -> (Vec<Option<u32>>, u32) {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let canon = (0..self.null.len())
            .map(|k| {
                (!self.null[k]).then(|| {
                    let next = ids.len() as u32;
                    *ids.entry(self.text(k)).or_insert(next)
                })
            })
            .collect();
        (canon, ids.len() as u32)
    }

    /// Flags every row whose non-null value occurs more than once in the chunk.
    fn check_unique(&self, found: &mut Found<'_>) {
        let (canon, distinct) = self.canonical();
        let keys = self.keys;
        let id = |i: usize| -> Option<u32> {
            if keys.is_null(i) {
                None
            } else {
                canon[keys.value(i) as usize]
            }
        };
        let mut counts = vec![0u32; distinct as usize];
        for i in 0..keys.len() {
            if let Some(id) = id(i) {
                counts[id as usize] += 1;
            }
        }
        let mask = BooleanBuffer::collect_bool(keys.len(), |i| {
            id(i).is_some_and(|id| counts[id as usize] > 1)
        });
        let name = &self.field.name;
        found.flag("unique", name, mask, |i| {
            let count = counts[id(i).expect("flagged rows are not null") as usize];
            let v = self.text(keys.value(i) as usize);
            format!("value `{v}` in column `{name}` appears {count} times but must be unique")
        });
    }
}

/// The rules on a numeric column (the `value` of a cube, or numbers a decoder already parsed).
fn check_numbers(field: &Field, values: &Float64Array, found: &mut Found<'_>) {
    let name = &field.name;
    let c = &field.constraints;
    if c.required {
        check_numbers_required(field, values, found, " but is required");
    }
    let present = |i: usize| values.is_valid(i);
    if let FieldType::Integer { .. } = field.kind {
        let mask = BooleanBuffer::collect_bool(values.len(), |i| {
            present(i) && {
                let v = values.value(i);
                !v.is_finite() || v.fract() != 0.0
            }
        });
        found.flag("type", name, mask, |i| {
            format!(
                "value `{}` in column `{name}` is not an integer",
                values.value(i)
            )
        });
    }
    if let Some(allowed) = &c.allowed {
        let numbers: Vec<f64> = allowed.values.iter().filter_map(Value::as_f64).collect();
        let mask = BooleanBuffer::collect_bool(values.len(), |i| {
            present(i) && !numbers.contains(&values.value(i))
        });
        let listed = list(&allowed.texts);
        found.flag("enum", name, mask, |i| {
            format!(
                "value `{}` in column `{name}` is not one of {listed}",
                values.value(i)
            )
        });
    }
    // arrow_ord compares floats by total order, where -0.0 < 0.0 and NaN is above everything;
    // the kernel finds the candidates and IEEE comparison confirms them (only broken rows loop).
    if let Some(min) = &c.minimum {
        let bound = min
            .value
            .as_f64()
            .expect("numeric fields have numeric bounds");
        let mask = compare(values, bound, arrow_ord::cmp::lt, |v| v < bound);
        found.flag("minimum", name, mask, |i| {
            format!(
                "value `{}` in column `{name}` is below the minimum {}",
                values.value(i),
                min.text
            )
        });
    }
    if let Some(max) = &c.maximum {
        let bound = max
            .value
            .as_f64()
            .expect("numeric fields have numeric bounds");
        let mask = compare(values, bound, arrow_ord::cmp::gt, |v| v > bound);
        found.flag("maximum", name, mask, |i| {
            format!(
                "value `{}` in column `{name}` is above the maximum {}",
                values.value(i),
                max.text
            )
        });
    }
    if c.unique {
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for v in values.iter().flatten() {
            *counts.entry(float_key(v)).or_default() += 1;
        }
        let count = |i: usize| counts[&float_key(values.value(i))];
        let mask = BooleanBuffer::collect_bool(values.len(), |i| present(i) && count(i) > 1);
        found.flag("unique", name, mask, |i| {
            format!(
                "value `{}` in column `{name}` appears {} times but must be unique",
                values.value(i),
                count(i)
            )
        });
    }
}

fn check_numbers_required(field: &Field, values: &Float64Array, found: &mut Found<'_>, why: &str) {
    let mask = match values.logical_nulls() {
        Some(nulls) => !nulls.inner(),
        None => return,
    };
    let name = &field.name;
    found.flag("required", name, mask, |_| {
        format!("column `{name}` is empty{why}")
    });
}

/// Rows where the kernel `op(values, bound)` holds and `confirm(value)` agrees; nulls never.
fn compare(
    values: &Float64Array,
    bound: f64,
    op: fn(&dyn arrow_array::Datum, &dyn arrow_array::Datum) -> Result<BooleanArray, ArrowError>,
    confirm: impl Fn(f64) -> bool,
) -> BooleanBuffer {
    let result = op(values, &Float64Array::new_scalar(bound)).expect("Float64 against Float64");
    let candidates = match result.nulls() {
        Some(nulls) => result.values() & nulls.inner(),
        None => result.values().clone(),
    };
    if candidates.set_indices().all(|i| confirm(values.value(i))) {
        return candidates;
    }
    let keep: HashSet<usize> = candidates
        .set_indices()
        .filter(|&i| confirm(values.value(i)))
        .collect();
    BooleanBuffer::collect_bool(values.len(), |i| keep.contains(&i))
}

/// Bits of a float for hashing, with -0.0 and 0.0 as one value.
fn float_key(v: f64) -> u64 {
    if v == 0.0 { 0 } else { v.to_bits() }
}

/// One primary-key column as a dense id per row.
struct KeyPart {
    ids: KeyIds,
    /// Ids are below `size`.
    size: u64,
    /// Per id: the text shown in messages.
    labels: Vec<String>,
}

enum KeyIds {
    /// Text: the row's dictionary key, then the id shared by equal texts (`None` = null). No
    /// per-row vector, which for a 10-million-row cube would cost 80 MB per key column.
    Text {
        keys: Int32Array,
        canon: Vec<Option<u32>>,
    },
    /// Numbers: renumbered once, per row.
    Rows(Vec<Option<u32>>),
}

impl KeyPart {
    fn text(column: &TextColumn<'_>) -> KeyPart {
        let (canon, size) = column.canonical();
        let mut labels = vec![String::new(); size as usize];
        for (k, id) in canon.iter().enumerate() {
            if let Some(id) = id {
                labels[*id as usize] = column.text(k).to_string();
            }
        }
        KeyPart {
            ids: KeyIds::Text {
                keys: column.keys.clone(),
                canon,
            },
            size: size as u64,
            labels,
        }
    }

    fn numbers(values: &Float64Array) -> KeyPart {
        let mut dense: HashMap<u64, u32> = HashMap::new();
        let mut labels = Vec::new();
        let ids = values
            .iter()
            .map(|v| {
                v.map(|v| {
                    *dense.entry(float_key(v)).or_insert_with(|| {
                        labels.push(v.to_string());
                        labels.len() as u32 - 1
                    })
                })
            })
            .collect();
        KeyPart {
            ids: KeyIds::Rows(ids),
            size: labels.len() as u64,
            labels,
        }
    }

    /// Calls `f(row, id)` for every row in order, with id 0 for null rows (which [`Self::valid`]
    /// excludes). One tight loop per part instead of a match per row.
    fn each_id(&self, mut f: impl FnMut(usize, u64)) {
        match &self.ids {
            KeyIds::Text { keys, canon } => {
                // Keys under a null slot may hold anything, even an index out of range.
                for (i, &k) in keys.values().iter().enumerate() {
                    f(
                        i,
                        canon.get(k as usize).copied().flatten().unwrap_or(0) as u64,
                    );
                }
            }
            KeyIds::Rows(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    f(i, id.unwrap_or(0) as u64);
                }
            }
        }
    }

    /// The rows where this part is not null; `None` when that is every row.
    fn valid(&self) -> Option<BooleanBuffer> {
        let has_null = match &self.ids {
            KeyIds::Text { keys, canon } => keys.null_count() > 0 || canon.contains(&None),
            KeyIds::Rows(ids) => ids.contains(&None),
        };
        let len = match &self.ids {
            KeyIds::Text { keys, .. } => keys.len(),
            KeyIds::Rows(ids) => ids.len(),
        };
        has_null.then(|| BooleanBuffer::collect_bool(len, |i| self.id(i).is_some()))
    }

    /// The id of row `i`, `None` when null.
    fn id(&self, i: usize) -> Option<u32> {
        match &self.ids {
            KeyIds::Text { keys, canon } => {
                if keys.is_null(i) {
                    None
                } else {
                    canon[keys.value(i) as usize]
                }
            }
            KeyIds::Rows(ids) => ids[i],
        }
    }
}

/// Flags every row whose primary-key combination occurs more than once (rows with a null key
/// part are left to `required`).
fn check_primary_key(parts: &[(&str, KeyPart)], found: &mut Found<'_>) {
    let n = found.chunk.batch.num_rows();
    let mut complete = BooleanBuffer::new_set(n);
    for (_, part) in parts {
        if let Some(valid) = part.valid() {
            complete = &complete & &valid;
        }
    }
    // Combine the parts into one group id per row: mixed radix while the id space stays within
    // one count per row (cubes: a few hundred categories per column), else renumber the pairs
    // densely through a hash map.
    let limit = (n as u64).max(1024);
    let mut group = vec![0u64; n];
    let mut space = 1u64;
    for (_, part) in parts {
        let radix = part.size.max(1);
        match space.checked_mul(radix).filter(|&s| s <= limit) {
            Some(next) => {
                part.each_id(|i, id| group[i] = group[i] * radix + id);
                space = next;
            }
            None => {
                let mut dense: HashMap<(u64, u64), u64> = HashMap::new();
                part.each_id(|i, id| {
                    let next = dense.len() as u64;
                    group[i] = *dense.entry((group[i], id)).or_insert(next);
                });
                space = dense.len() as u64;
            }
        }
    }
    let mut counts = vec![0u32; space as usize];
    for i in complete.set_indices() {
        counts[group[i] as usize] += 1;
    }
    let mask =
        BooleanBuffer::collect_bool(n, |i| complete.value(i) && counts[group[i] as usize] > 1);
    let names: Vec<&str> = parts.iter().map(|(name, _)| *name).collect();
    let column = names.join(",");
    found.flag("primaryKey", &column, mask, |i| {
        let values: Vec<&str> = parts
            .iter()
            .map(|(_, p)| p.labels[p.id(i).expect("complete row") as usize].as_str())
            .collect();
        format!(
            "key ({}) = ({}) appears {} times but the primary key must be unique",
            names.join(", "),
            values.join(", "),
            counts[group[i] as usize]
        )
    });
}

/// `a, b, c`, or the first few and how many there are in all.
fn list(texts: &[String]) -> String {
    if texts.len() <= ENUM_VALUES_SHOWN {
        texts.join(", ")
    } else {
        format!(
            "{} … ({} values in all)",
            texts[..ENUM_VALUES_SHOWN].join(", "),
            texts.len()
        )
    }
}

impl FieldType {
    /// The parsed value of `text`, or `None` when it is not of this type.
    pub fn parse(&self, text: &str) -> Option<Value> {
        match self {
            FieldType::String => Some(Value::Text(text.to_string())),
            FieldType::Integer { group } => parse_integer(text, *group).map(Value::Integer),
            FieldType::Number { decimal, group } => {
                parse_number(text, *decimal, *group).map(Value::Number)
            }
            FieldType::Date(format) => parse_date(text, format).map(Value::Date),
            FieldType::Year => (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| Value::Year(text.parse().expect("four digits"))),
        }
    }

    /// The type's name in a schema.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer { .. } => "integer",
            FieldType::Number { .. } => "number",
            FieldType::Date(_) => "date",
            FieldType::Year => "year",
        }
    }

    /// What a value of this type looks like, for messages: `a number (decimal separator `,`)`.
    pub fn expectation(&self) -> String {
        let group = |g: &Option<char>| match g {
            Some(g) => format!(", thousands separator `{g}`"),
            None => String::new(),
        };
        match self {
            FieldType::String => "text".to_string(),
            FieldType::Integer { group: None } => "an integer".to_string(),
            FieldType::Integer { group: Some(g) } => {
                format!("an integer (thousands separator `{g}`)")
            }
            FieldType::Number { decimal, group: g } => {
                format!("a number (decimal separator `{decimal}`{})", group(g))
            }
            FieldType::Date(DateFormat::Iso) => "a date (YYYY-MM-DD)".to_string(),
            FieldType::Date(DateFormat::Pattern(p)) => format!("a date (format `{p}`)"),
            FieldType::Year => "a year (four digits)".to_string(),
        }
    }
}

fn strip_group(text: &str, group: Option<char>) -> std::borrow::Cow<'_, str> {
    match group {
        Some(g) if text.contains(g) => text.replace(g, "").into(),
        _ => text.into(),
    }
}

fn parse_integer(text: &str, group: Option<char>) -> Option<i64> {
    let text = strip_group(text, group);
    let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_number(text: &str, decimal: char, group: Option<char>) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "INF" | "+INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == decimal {
            plain.push('.');
        } else if Some(c) == group {
        } else if c == '.' {
            // A `.` that is neither the decimal nor the group separator: "12.5" in a
            // comma-decimal file is a mistake, not twelve and a half.
            return None;
        } else {
            plain.push(c);
        }
    }
    // `[+-]?(digits[.digits?] | .digits)([eE][+-]?digits)?`; Rust's parser alone would also
    // take `inf`, `infinity` and `nan` in any case.
    let body = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || !exponent_ok
    {
        return None;
    }
    plain.parse().ok()
}

fn parse_date(text: &str, format: &DateFormat) -> Option<NaiveDate> {
    match format {
        DateFormat::Iso => {
            let b = text.as_bytes();
            let shape = b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && b.iter()
                    .enumerate()
                    .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
            if !shape {
                return None;
            }
            let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().expect("digits");
            NaiveDate::from_ymd_opt(n(0..4) as i32, n(5..7), n(8..10))
        }
        DateFormat::Pattern(pattern) => NaiveDate::parse_from_str(text, pattern).ok(),
    }
}

/// Walks a schema's JSON, collecting every problem with its key path. A hand walk rather than
/// serde with `deny_unknown_fields`, because serde stops at the first problem and `check` must
/// report them all.
struct Loader<'a> {
    path: &'a Path,
    problems: Vec<Problem>,
}

const SCHEMA_KEYS: [&str; 7] = [
    "fields",
    "missingValues",
    "primaryKey",
    "$schema",
    "name",
    "title",
    "description",
];
const FIELD_KEYS: [&str; 9] = [
    "name",
    "type",
    "format",
    "title",
    "description",
    "example",
    "constraints",
    "decimalChar",
    "groupChar",
];
const CONSTRAINT_KEYS: [&str; 8] = [
    "required",
    "unique",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
];

impl Loader<'_> {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::error(self.path, key, message));
    }

    /// Reports keys of `object` not in `known`, at `prefix.key`.
    fn unknown_keys(
        &mut self,
        object: &serde_json::Map<String, Json>,
        known: &[&str],
        prefix: &str,
        what: &str,
    ) {
        for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
            let at = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            self.problem(
                at,
                format!("unknown key `{key}`; {what} may have {}", known.join(", ")),
            );
        }
    }

    fn schema(&mut self, value: &Json) -> Option<TableSchema> {
        let Some(object) = value.as_object() else {
            self.problem("", "a Table Schema is a JSON object with `fields`");
            return None;
        };
        self.unknown_keys(object, &SCHEMA_KEYS, "", "a Table Schema");
        let raw = match object.get("fields") {
            None => {
                self.problem("fields", "missing; list the table's columns under `fields`");
                &[][..]
            }
            Some(Json::Array(fields)) if !fields.is_empty() => fields.as_slice(),
            Some(_) => {
                self.problem("fields", "must be a non-empty array of field objects");
                &[][..]
            }
        };
        let fields: Vec<Option<Field>> = raw
            .iter()
            .enumerate()
            .map(|(i, f)| self.field(i, f))
            .collect();
        // Names as written, so that a field with a problem of its own still counts as declared.
        let mut names: Vec<&str> = Vec::new();
        for (i, field) in raw.iter().enumerate() {
            let Some(name) = field.get("name").and_then(Json::as_str) else {
                continue;
            };
            if names.contains(&name) {
                self.problem(
                    format!("fields[{i}].name"),
                    format!("field `{name}` is declared twice"),
                );
            } else {
                names.push(name);
            }
        }
        let missing_values = match object.get("missingValues") {
            None => DEFAULT_MISSING_VALUES.map(String::from).to_vec(),
            Some(value) => self
                .strings(value, "missingValues", true)
                .unwrap_or_default(),
        };
        let primary_key = match object.get("primaryKey") {
            None => Vec::new(),
            Some(Json::String(name)) => vec![name.clone()],
            Some(value) => self.strings(value, "primaryKey", false).unwrap_or_default(),
        };
        let mut in_key = HashSet::new();
        for (j, name) in primary_key.iter().enumerate() {
            let at = if matches!(object.get("primaryKey"), Some(Json::String(_))) {
                "primaryKey".to_string()
            } else {
                format!("primaryKey[{j}]")
            };
            if !in_key.insert(name.as_str()) {
                self.problem(at, format!("`{name}` appears twice in the primary key"));
            } else if !names.contains(&name.as_str()) && !raw.is_empty() {
                self.problem(
                    at,
                    format!(
                        "`{name}` is not a field; the fields are {}",
                        names.join(", ")
                    ),
                );
            }
        }
        let fields: Option<Vec<Field>> = fields.into_iter().collect();
        Some(TableSchema {
            fields: fields?,
            missing_values,
            primary_key,
            path: self.path.to_path_buf(),
        })
    }

    /// An array of strings at `key` (empty allowed only if `may_be_empty`).
    fn strings(&mut self, value: &Json, key: &str, may_be_empty: bool) -> Option<Vec<String>> {
        let Some(items) = value.as_array().filter(|a| may_be_empty || !a.is_empty()) else {
            let what = if may_be_empty {
                "an array"
            } else {
                "a non-empty array"
            };
            self.problem(key, format!("must be {what} of strings"));
            return None;
        };
        let mut strings = Vec::new();
        for (j, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => strings.push(s.to_string()),
                None => self.problem(
                    format!("{key}[{j}]"),
                    format!("must be a string, not {item}"),
                ),
            }
        }
        (strings.len() == items.len()).then_some(strings)
    }

    fn optional_string(
        &mut self,
        object: &serde_json::Map<String, Json>,
        key: &str,
        at: &str,
    ) -> Option<String> {
        match object.get(key)? {
            Json::String(s) => Some(s.clone()),
            other => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("must be a string, not {other}"),
                );
                None
            }
        }
    }

    /// One character from `decimalChar`/`groupChar`, reported unless `applies`.
    fn separator(
        &mut self,
        object: &serde_json::Map<String, Json>,
        key: &str,
        at: &str,
        applies: bool,
        types: &str,
    ) -> Option<char> {
        let s = self.optional_string(object, key, at)?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if applies => Some(c),
            (Some(_), None) => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("applies only to {types} fields"),
                );
                None
            }
            _ => {
                self.problem(
                    format!("{at}.{key}"),
                    format!("must be one character, not `{s}`"),
                );
                None
            }
        }
    }

    fn field(&mut self, i: usize, value: &Json) -> Option<Field> {
        let at = format!("fields[{i}]");
        let Some(object) = value.as_object() else {
            self.problem(at, "a field must be an object with at least `name`");
            return None;
        };
        self.unknown_keys(object, &FIELD_KEYS, &at, "a field");
        let name = match object.get("name") {
            Some(Json::String(name)) if !name.is_empty() => Some(name.clone()),
            Some(other) => {
                self.problem(
                    format!("{at}.name"),
                    format!("must be a non-empty string, not {other}"),
                );
                None
            }
            None => {
                self.problem(
                    format!("{at}.name"),
                    "missing; name the column this field describes",
                );
                None
            }
        };
        let title = self.optional_string(object, "title", &at);
        let description = self.optional_string(object, "description", &at);
        let type_name = match object.get("type") {
            None => Some("string".to_string()),
            Some(Json::String(t)) => Some(t.clone()),
            Some(other) => {
                self.problem(
                    format!("{at}.type"),
                    format!("must be a string, not {other}"),
                );
                None
            }
        };
        let type_name = type_name.filter(|t| {
            let known = SUPPORTED_TYPES.contains(&t.as_str());
            if !known {
                let what = if FRICTIONLESS_ONLY.contains(&t.as_str()) {
                    "is not supported here"
                } else {
                    "is unknown"
                };
                self.problem(
                    format!("{at}.type"),
                    format!(
                        "type `{t}` {what}; use one of {}",
                        SUPPORTED_TYPES.join(", ")
                    ),
                );
            }
            known
        });
        let t = type_name.as_deref();
        let decimal = self.separator(
            object,
            "decimalChar",
            &at,
            t.is_none_or(|t| t == "number"),
            "number",
        );
        let group = self.separator(
            object,
            "groupChar",
            &at,
            t.is_none_or(|t| t == "number" || t == "integer"),
            "number and integer",
        );
        if let (Some(d), Some(g)) = (decimal, group)
            && d == g
        {
            self.problem(
                format!("{at}.groupChar"),
                format!("is the same as decimalChar (`{d}`)"),
            );
        }
        let format = self.optional_string(object, "format", &at);
        let kind = match t {
            None => None,
            Some("string") => Some(FieldType::String),
            Some("integer") => Some(FieldType::Integer { group }),
            Some("number") => Some(FieldType::Number {
                decimal: decimal.unwrap_or('.'),
                group,
            }),
            Some("year") => Some(FieldType::Year),
            // The last of SUPPORTED_TYPES.
            Some(_) => Some(FieldType::Date(DateFormat::Iso)),
        };
        let kind = match (kind, format.as_deref()) {
            (kind, None | Some("default")) => kind,
            (Some(FieldType::Date(_)), Some(f)) => {
                let pattern = f.strip_prefix("fmt:").unwrap_or(f);
                let valid = pattern.contains('%')
                    && chrono::format::StrftimeItems::new(pattern)
                        .all(|item| !matches!(item, chrono::format::Item::Error));
                if valid {
                    Some(FieldType::Date(DateFormat::Pattern(pattern.to_string())))
                } else {
                    self.problem(
                        format!("{at}.format"),
                        format!(
                            "date format `{f}` is not supported; use `default` (YYYY-MM-DD) or a \
                             strftime pattern such as `%d/%m/%Y`"
                        ),
                    );
                    None
                }
            }
            (kind, Some(f)) => {
                if let Some(kind) = &kind {
                    self.problem(
                        format!("{at}.format"),
                        format!(
                            "format `{f}` is not supported for {} fields; use `default`",
                            kind.name()
                        ),
                    );
                }
                None
            }
        };
        let constraints = match object.get("constraints") {
            None => Some(Constraints::default()),
            Some(Json::Object(c)) => {
                self.constraints(c, &format!("{at}.constraints"), kind.as_ref())
            }
            Some(other) => {
                self.problem(
                    format!("{at}.constraints"),
                    format!("must be an object, not {other}"),
                );
                None
            }
        };
        Some(Field {
            name: name?,
            title,
            description,
            kind: kind?,
            constraints: constraints?,
        })
    }

    /// The constraints at `at`; those that depend on the type are checked only when `kind` is known.
    fn constraints(
        &mut self,
        object: &serde_json::Map<String, Json>,
        at: &str,
        kind: Option<&FieldType>,
    ) -> Option<Constraints> {
        let before = self.problems.len();
        self.unknown_keys(object, &CONSTRAINT_KEYS, at, "constraints");
        let mut c = Constraints::default();
        for (key, flag) in [("required", &mut c.required), ("unique", &mut c.unique)] {
            match object.get(key) {
                None => {}
                Some(Json::Bool(b)) => *flag = *b,
                Some(other) => self.problems.push(Problem::error(
                    self.path,
                    format!("{at}.{key}"),
                    format!("must be true or false, not {other}"),
                )),
            }
        }
        match object.get("pattern") {
            None => {}
            Some(Json::String(p)) => match Regex::new(&format!("^(?:{p})$")) {
                Ok(anchored) => {
                    c.pattern = Some(Pattern {
                        source: p.clone(),
                        anchored,
                    })
                }
                Err(err) => self.problem(
                    format!("{at}.pattern"),
                    format!("`{p}` is not a valid regular expression: {err}"),
                ),
            },
            Some(other) => self.problem(
                format!("{at}.pattern"),
                format!("must be a string, not {other}"),
            ),
        }
        for (key, slot) in [
            ("minLength", &mut c.min_length),
            ("maxLength", &mut c.max_length),
        ] {
            let Some(value) = object.get(key) else {
                continue;
            };
            match value.as_u64() {
                Some(_) if kind.is_some_and(|k| *k != FieldType::String) => self.problem(
                    format!("{at}.{key}"),
                    format!(
                        "applies only to string fields, not {}",
                        kind.expect("checked").name()
                    ),
                ),
                Some(n) => *slot = Some(n as usize),
                None => self.problem(
                    format!("{at}.{key}"),
                    format!("must be a whole number of characters, not {value}"),
                ),
            }
        }
        if let (Some(min), Some(max)) = (c.min_length, c.max_length)
            && min > max
        {
            self.problem(
                format!("{at}.minLength"),
                format!("minLength {min} is above maxLength {max}"),
            );
        }
        if let Some(kind) = kind {
            if let Some(value) = object.get("enum") {
                c.allowed = self.allowed(value, &format!("{at}.enum"), kind);
            }
            for (key, slot) in [("minimum", &mut c.minimum), ("maximum", &mut c.maximum)] {
                let Some(value) = object.get(key) else {
                    continue;
                };
                if *kind == FieldType::String {
                    self.problem(
                        format!("{at}.{key}"),
                        format!(
                            "applies to integer, number, date and year fields; for text use {}",
                            if key == "minimum" {
                                "minLength"
                            } else {
                                "maxLength"
                            }
                        ),
                    );
                    continue;
                }
                *slot = self.bound(value, &format!("{at}.{key}"), kind);
            }
            if let (Some(min), Some(max)) = (&c.minimum, &c.maximum)
                && min.value > max.value
            {
                self.problem(
                    format!("{at}.minimum"),
                    format!("minimum {} is above maximum {}", min.text, max.text),
                );
            }
        }
        (self.problems.len() == before).then_some(c)
    }

    /// A constraint value parsed with the field's type: a JSON string as the source writes it, or
    /// a JSON number for numeric types.
    fn bound(&mut self, value: &Json, at: &str, kind: &FieldType) -> Option<Bound> {
        let parsed = match (value, kind) {
            (Json::String(s), _) => kind.parse(s).map(|v| (v, s.clone())),
            (Json::Number(n), FieldType::Integer { .. }) => {
                n.as_i64().map(|i| (Value::Integer(i), n.to_string()))
            }
            (Json::Number(n), FieldType::Number { .. }) => {
                n.as_f64().map(|f| (Value::Number(f), n.to_string()))
            }
            (Json::Number(n), FieldType::Year) => n
                .as_i64()
                .and_then(|y| i32::try_from(y).ok())
                .map(|y| (Value::Year(y), n.to_string())),
            _ => None,
        };
        match parsed {
            Some((value, text)) => Some(Bound { value, text }),
            None if *kind == FieldType::String => {
                self.problem(at, format!("{value} is not a string; write it in quotes"));
                None
            }
            None => {
                self.problem(at, format!("{value} is not {}", kind.expectation()));
                None
            }
        }
    }

    fn allowed(&mut self, value: &Json, at: &str, kind: &FieldType) -> Option<Allowed> {
        let Some(items) = value.as_array().filter(|a| !a.is_empty()) else {
            self.problem(at, "must be a non-empty array of the allowed values");
            return None;
        };
        let bounds: Vec<Option<Bound>> = items
            .iter()
            .enumerate()
            .map(|(j, item)| self.bound(item, &format!("{at}[{j}]"), kind))
            .collect();
        let bounds: Vec<Bound> = bounds.into_iter().collect::<Option<_>>()?;
        Some(Allowed {
            texts: bounds.iter().map(|b| b.text.clone()).collect(),
            values: bounds.into_iter().map(|b| b.value).collect(),
        })
    }
}

/// Frictionless types this crate does not check (yet), told apart from typos in messages.
const FRICTIONLESS_ONLY: [&str; 11] = [
    "boolean",
    "datetime",
    "time",
    "yearmonth",
    "duration",
    "geopoint",
    "geojson",
    "object",
    "array",
    "list",
    "any",
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, StringArray};

    use super::*;
    use crate::formats::{CellStatus, Cube, Dimension, SourceMeta, SourceTable};

    const PATH: &str = "schemas/test.table.json";

    fn schema(json: &str) -> TableSchema {
        TableSchema::from_json(json, Path::new(PATH))
            .unwrap_or_else(|problems| panic!("{problems:#?}"))
    }

    /// A schema with one field of `type` and `extra` JSON in the field object.
    fn one_field(name: &str, field: &str) -> TableSchema {
        schema(&format!(r#"{{"fields": [{{"name": "{name}", {field}}}]}}"#))
    }

    /// A CSV-like chunk: text columns, rows numbered from line 2 (line 1 is the header).
    fn csv(columns: &[(&str, &[Option<&str>])]) -> Chunk {
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

    fn column(name: &str, values: &[&str]) -> Chunk {
        let values: Vec<Option<&str>> = values.iter().map(|v| Some(*v)).collect();
        csv(&[(name, &values)])
    }

    /// Every reason as `row rule column: message`, one a line.
    fn reasons(validated: &Validated) -> String {
        validated
            .reasons
            .iter()
            .map(|r| format!("{} {} {}: {}", r.row, r.rule, r.column, r.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(chunk: &Chunk, schema: &TableSchema) -> String {
        reasons(&validate(chunk, schema).unwrap())
    }

    fn problems(json: &str) -> String {
        TableSchema::from_json(json, Path::new(PATH))
            .unwrap_err()
            .iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn required_refuses_empty_cells_and_missing_value_markers() {
        let schema = schema(
            r#"{"fields": [{"name": "kommun_kod", "constraints": {"required": true}}],
                "missingValues": ["", ".."]}"#,
        );
        let chunk = csv(&[("kommun_kod", &[Some("0180"), Some(""), Some(".."), None])]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        3 required kommun_kod: column `kommun_kod` is empty but is required
        4 required kommun_kod: column `kommun_kod` holds the missing-value marker `..` but is required
        5 required kommun_kod: column `kommun_kod` is empty but is required
        ");
        let all_there = column("kommun_kod", &["0180", "1480"]);
        assert_eq!(check(&all_there, &schema), "");
    }

    #[test]
    fn number_with_decimal_comma_parses_and_refuses_a_decimal_point() {
        let schema = one_field("andel", r#""type": "number", "decimalChar": ",""#);
        let chunk = column("andel", &["12,5", "-3", "1e2", "12.5", "abc", ""]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        5 type andel: value `12.5` in column `andel` is not a number (decimal separator `,`)
        6 type andel: value `abc` in column `andel` is not a number (decimal separator `,`)
        ");
    }

    #[test]
    fn number_parsing_follows_the_separators() {
        let comma = FieldType::Number {
            decimal: ',',
            group: Some(' '),
        };
        let point = FieldType::Number {
            decimal: '.',
            group: None,
        };
        let number = |kind: &FieldType, text: &str| match kind.parse(text) {
            Some(Value::Number(n)) => Some(n),
            _ => None,
        };
        assert_eq!(number(&comma, "1 234,5"), Some(1234.5));
        assert_eq!(number(&comma, ",5"), Some(0.5));
        assert_eq!(number(&point, "+5."), Some(5.0));
        assert_eq!(number(&point, "2.5E-1"), Some(0.25));
        assert_eq!(number(&point, "-INF"), Some(f64::NEG_INFINITY));
        assert!(number(&point, "NaN").unwrap().is_nan());
        for bad in [
            "", "-", ".", "1e", "inf", "nan", "1,5", " 1", "0x10", "1.2.3",
        ] {
            assert_eq!(number(&point, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integer_year_and_date_types_refuse_what_does_not_parse() {
        let schema = schema(
            r#"{"fields": [
                {"name": "antal", "type": "integer"},
                {"name": "ar", "type": "year"},
                {"name": "datum", "type": "date"},
                {"name": "dag", "type": "date", "format": "%d/%m/%Y"}
            ]}"#,
        );
        let good = csv(&[
            ("antal", &[Some("-12")]),
            ("ar", &[Some("2023")]),
            ("datum", &[Some("2024-02-29")]),
            ("dag", &[Some("29/02/2024")]),
        ]);
        assert_eq!(check(&good, &schema), "");
        let bad = csv(&[
            ("antal", &[Some("1,5")]),
            ("ar", &[Some("23")]),
            ("datum", &[Some("2023-02-29")]),
            ("dag", &[Some("2024-02-29")]),
        ]);
        insta::assert_snapshot!(check(&bad, &schema), @r"
        2 type antal: value `1,5` in column `antal` is not an integer
        2 type ar: value `23` in column `ar` is not a year (four digits)
        2 type datum: value `2023-02-29` in column `datum` is not a date (YYYY-MM-DD)
        2 type dag: value `2024-02-29` in column `dag` is not a date (format `%d/%m/%Y`)
        ");
    }

    #[test]
    fn enum_lists_what_is_allowed() {
        let schema = one_field(
            "kon",
            r#""constraints": {"enum": ["Flicka", "Pojke", "Totalt"]}"#,
        );
        let chunk = column("kon", &["Flicka", "07", "Totalt", "07", "flicka"]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        3 enum kon: value `07` in column `kon` is not one of Flicka, Pojke, Totalt
        5 enum kon: value `07` in column `kon` is not one of Flicka, Pojke, Totalt
        6 enum kon: value `flicka` in column `kon` is not one of Flicka, Pojke, Totalt
        ");
    }

    #[test]
    fn enum_on_a_number_compares_parsed_values() {
        let schema = one_field(
            "andel",
            r#""type": "number", "decimalChar": ",", "constraints": {"enum": [0, 50, "100,0"]}"#,
        );
        let chunk = column("andel", &["50,0", "0", "100", "25"]);
        insta::assert_snapshot!(check(&chunk, &schema), @"5 enum andel: value `25` in column `andel` is not one of 0, 50, 100,0");
    }

    #[test]
    fn pattern_must_match_the_whole_value() {
        let schema = one_field("kommun_kod", r#""constraints": {"pattern": "\\d{4}"}"#);
        let chunk = column("kommun_kod", &["0180", "01801", "180", ""]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        3 pattern kommun_kod: value `01801` in column `kommun_kod` does not match the pattern `\d{4}`
        4 pattern kommun_kod: value `180` in column `kommun_kod` does not match the pattern `\d{4}`
        ");
    }

    #[test]
    fn minimum_and_maximum_compare_parsed_values() {
        let schema = one_field(
            "andel",
            r#""type": "number", "decimalChar": ",", "constraints": {"minimum": 0, "maximum": 100}"#,
        );
        let chunk = column("andel", &["0", "100,0", "-3", "100,5", "abc"]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        4 minimum andel: value `-3` in column `andel` is below the minimum 0
        5 maximum andel: value `100,5` in column `andel` is above the maximum 100
        6 type andel: value `abc` in column `andel` is not a number (decimal separator `,`)
        ");
        let dates = one_field(
            "datum",
            r#""type": "date", "constraints": {"minimum": "2020-01-01"}"#,
        );
        assert_eq!(
            check(&column("datum", &["2020-01-01", "2019-12-31"]), &dates),
            "3 minimum datum: value `2019-12-31` in column `datum` is below the minimum 2020-01-01"
        );
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let schema = one_field("namn", r#""constraints": {"minLength": 2, "maxLength": 3}"#);
        let chunk = column("namn", &["åäö", "Å", "Åsar", ""]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        3 minLength namn: value `Å` in column `namn` is shorter than 2 characters
        4 maxLength namn: value `Åsar` in column `namn` is longer than 3 characters
        ");
    }

    #[test]
    fn unique_refuses_every_copy_and_ignores_nulls() {
        let schema = one_field("id", r#""constraints": {"unique": true}"#);
        let chunk = column("id", &["a", "b", "a", "", ""]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        2 unique id: value `a` in column `id` appears 2 times but must be unique
        4 unique id: value `a` in column `id` appears 2 times but must be unique
        ");
        assert_eq!(check(&column("id", &["a", "b"]), &schema), "");
    }

    #[test]
    fn missing_values_are_null_for_every_rule_but_required() {
        let schema = schema(
            r#"{"fields": [
                  {"name": "andel", "type": "number", "decimalChar": ",",
                   "constraints": {"minimum": 0, "pattern": "\\d+(,\\d)?"}},
                  {"name": "antal_svar", "type": "integer", "constraints": {"required": true}}
                ],
                "missingValues": ["", "för få svar"]}"#,
        );
        let chunk = csv(&[
            ("andel", &[Some("för få svar"), Some(""), Some("12,5")]),
            ("antal_svar", &[Some("för få svar"), Some("3"), Some("40")]),
        ]);
        insta::assert_snapshot!(check(&chunk, &schema), @"2 required antal_svar: column `antal_svar` holds the missing-value marker `för få svar` but is required");
        let no_markers = TableSchema {
            missing_values: Vec::new(),
            ..schema
        };
        let validated = validate(&chunk, &no_markers).unwrap();
        assert_eq!(validated.report.rules["type:andel"].count, 2);
    }

    #[test]
    fn primary_key_duplicates_refuse_both_rows() {
        let schema = schema(
            r#"{"fields": [{"name": "kommun_kod"}, {"name": "ar", "type": "year"}, {"name": "andel"}],
                "primaryKey": ["kommun_kod", "ar"]}"#,
        );
        let chunk = csv(&[
            (
                "kommun_kod",
                &[Some("0180"), Some("0180"), Some("1480"), Some("0180")],
            ),
            (
                "ar",
                &[Some("2023"), Some("2024"), Some("2023"), Some("2023")],
            ),
            ("andel", &[Some("1"), Some("2"), Some("3"), Some("4")]),
        ]);
        let validated = validate(&chunk, &schema).unwrap();
        insta::assert_snapshot!(reasons(&validated), @r"
        2 primaryKey kommun_kod,ar: key (kommun_kod, ar) = (0180, 2023) appears 2 times but the primary key must be unique
        5 primaryKey kommun_kod,ar: key (kommun_kod, ar) = (0180, 2023) appears 2 times but the primary key must be unique
        ");
        assert_eq!(validated.rejected.rows, vec![2, 5]);
        assert_eq!(validated.accepted.rows, vec![3, 4]);
        assert_eq!(validated.accepted.batch.num_rows(), 2);
        assert_eq!(
            (
                validated.report.rows_checked,
                validated.report.rows_rejected
            ),
            (4, 2)
        );
    }

    #[test]
    fn primary_key_parts_must_not_be_null() {
        let schema = schema(
            r#"{"fields": [{"name": "kommun_kod"}, {"name": "ar"}], "primaryKey": "kommun_kod"}"#,
        );
        let chunk = csv(&[
            ("kommun_kod", &[Some(""), Some(""), Some("0180")]),
            ("ar", &[Some("2023"), Some("2024"), Some("2023")]),
        ]);
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        2 required kommun_kod: column `kommun_kod` is empty but is part of the primary key
        3 required kommun_kod: column `kommun_kod` is empty but is part of the primary key
        ");
    }

    #[test]
    fn primary_key_over_many_categories_renumbers_densely() {
        // 300 × 300 combinations exceed the mixed-radix space (1024 ids for 600 rows), so the
        // second part goes through the hash map; duplicates are still found.
        let a: Vec<String> = (0..600).map(|i| format!("a{}", i % 300)).collect();
        let b: Vec<String> = (0..600).map(|i| format!("b{}", i % 300)).collect();
        let c: Vec<String> = (0..600).map(|i| format!("c{}", i / 599)).collect();
        fn text(v: &[String]) -> Vec<Option<&str>> {
            v.iter().map(|s| Some(s.as_str())).collect()
        }
        let chunk = csv(&[("a", &text(&a)), ("b", &text(&b)), ("c", &text(&c))]);
        let schema = schema(
            r#"{"fields": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "primaryKey": ["a", "b", "c"]}"#,
        );
        let validated = validate(&chunk, &schema).unwrap();
        // Rows i and i + 300 agree on a and b; c differs only for the last row.
        assert_eq!(validated.report.rows_rejected, 598);
        assert!(!validated.rejected.rows.contains(&(2 + 299)));
        assert!(!validated.rejected.rows.contains(&(2 + 599)));
    }

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

    fn cube() -> SourceTable {
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

    #[test]
    fn cube_rules_run_per_category_and_on_float_values() {
        let schema = schema(
            r#"{"fields": [
                {"name": "Region", "constraints": {"pattern": "\\d{2}|\\d{4}"}},
                {"name": "Tid", "type": "year"},
                {"name": "value", "type": "number",
                 "constraints": {"required": true, "minimum": 0, "maximum": 100}},
                {"name": "status", "constraints": {"enum": [".."]}}
            ]}"#,
        );
        let table = cube();
        assert!(
            schema
                .check_columns(table.schema(), Path::new(PATH))
                .is_empty()
        );
        insta::assert_snapshot!(check(&table.all(), &schema), @r"
        2 required value: column `value` is empty but is required
        4 pattern Region: value `Okänd` in column `Region` does not match the pattern `\d{2}|\d{4}`
        4 minimum value: value `-2` in column `value` is below the minimum 0
        5 pattern Region: value `Okänd` in column `Region` does not match the pattern `\d{2}|\d{4}`
        5 maximum value: value `250.5` in column `value` is above the maximum 100
        ");
        // The dictionary still holds `Okänd`, but no selected row does.
        let chunk = table.select("Region", &[true, true, false]);
        let validated = validate(&chunk, &schema).unwrap();
        assert_eq!(validated.rejected.rows, vec![2]);
        assert_eq!(validated.accepted.rows, vec![0, 1, 3]);
    }

    #[test]
    fn integer_on_float_values_refuses_fractions() {
        let schema = one_field(
            "value",
            r#""type": "integer", "constraints": {"enum": [1, 2], "unique": true}"#,
        );
        let batch = RecordBatch::try_from_iter([(
            "value",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(1.5),
                None,
                Some(1.0),
            ])) as ArrayRef,
        )])
        .unwrap();
        let chunk = Chunk {
            batch,
            rows: vec![10, 11, 12, 13],
        };
        insta::assert_snapshot!(check(&chunk, &schema), @r"
        10 unique value: value `1` in column `value` appears 2 times but must be unique
        11 type value: value `1.5` in column `value` is not an integer
        11 enum value: value `1.5` in column `value` is not one of 1, 2
        13 unique value: value `1` in column `value` appears 2 times but must be unique
        ");
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
    fn schema_problems_come_back_all_at_once() {
        let found = problems(
            r#"{"fields": [
                {"name": "kommun_kod", "constraints": {"pattern": "\\d{4"}},
                {"name": "ar", "type": "yaer"},
                {"name": "andel", "type": "number", "constraints": {"minimum": 100, "maximum": 0}}
            ]}"#,
        );
        insta::assert_snapshot!(found, @r"
        fields[0].constraints.pattern: `\d{4` is not a valid regular expression: regex parse error:
            ^(?:\d{4)$
                  ^^
        error: unclosed counted repetition
        fields[1].type: type `yaer` is unknown; use one of string, integer, number, date, year
        fields[2].constraints.minimum: minimum 100 is above maximum 0
        ");
    }

    #[test]
    fn schema_keys_are_checked_at_every_level() {
        let found = problems(
            r#"{"fields": [
                {"name": "a", "typ": "string", "constraints": {"requird": true}},
                {"name": "a", "type": "boolean"},
                {"name": "b", "type": "integer", "decimalChar": ",", "constraints": {"maxLength": 2}},
                {"name": "c", "type": "date", "format": "any", "constraints": {"minimum": 2020}},
                {"name": "d", "constraints": {"enum": [1], "minimum": "a"}}
            ],
            "primaryKey": ["a", "x"],
            "missingValues": [".."],
            "foreignKeys": []}"#,
        );
        insta::assert_snapshot!(found, @r"
        foreignKeys: unknown key `foreignKeys`; a Table Schema may have fields, missingValues, primaryKey, $schema, name, title, description
        fields[0].typ: unknown key `typ`; a field may have name, type, format, title, description, example, constraints, decimalChar, groupChar
        fields[0].constraints.requird: unknown key `requird`; constraints may have required, unique, enum, pattern, minimum, maximum, minLength, maxLength
        fields[1].type: type `boolean` is not supported here; use one of string, integer, number, date, year
        fields[2].decimalChar: applies only to number fields
        fields[2].constraints.maxLength: applies only to string fields, not integer
        fields[3].format: date format `any` is not supported; use `default` (YYYY-MM-DD) or a strftime pattern such as `%d/%m/%Y`
        fields[4].constraints.enum[0]: 1 is not a string; write it in quotes
        fields[4].constraints.minimum: applies to integer, number, date and year fields; for text use minLength
        fields[1].name: field `a` is declared twice
        primaryKey[1]: `x` is not a field; the fields are a, b, c, d
        ");
    }

    #[test]
    fn load_reads_the_file_and_names_it_when_it_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.table.json");
        std::fs::write(&path, r#"{"fields": [{"name": "a"}]}"#).unwrap();
        let schema = TableSchema::load(&path).unwrap();
        assert_eq!(schema.path(), path);
        assert_eq!(schema.missing_values, vec![String::new()]);
        let absent = TableSchema::load(&dir.path().join("absent.json")).unwrap_err();
        assert_eq!(absent.len(), 1);
        assert!(absent[0].message.starts_with("cannot read the file"));
        std::fs::write(&path, "{\"fields\": [").unwrap();
        let broken = TableSchema::load(&path).unwrap_err();
        assert!(
            broken[0].message.starts_with("not valid JSON"),
            "{broken:?}"
        );
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
