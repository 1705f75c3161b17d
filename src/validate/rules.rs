//! Rule evaluation: each rule of a field over a chunk's column, once per dictionary value.
//!
//! Owns: reading a column as text or numbers, checking `type`, `required`, `enum`, `pattern`,
//! bounds, lengths, `unique` and `primaryKey`, and the messages of broken rules.
//! Must not: load schemas (`load.rs` does) or split the chunk (`mod.rs` does).

use std::collections::{HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, BooleanArray, Float64Array, Int32Array, RecordBatch, StringArray};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{ArrowError, DataType};

use crate::formats::Chunk;
use crate::formats::table::text_type;
use crate::rejects::{Reason, Report};

use super::schema::{Field, FieldType, TableSchema, Value};
use super::{ValidateError, Validated, is_text, mismatch};

/// How many enum values a message lists before it says how many there are in all.
const ENUM_VALUES_SHOWN: usize = 10;

/// A column ready for checking: text as dictionary keys + values, anything numeric as Float64.
pub(super) enum Column {
    Text {
        keys: Int32Array,
        values: StringArray,
    },
    Number(Float64Array),
}

impl Column {
    pub(super) fn of(
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
pub(super) struct Found<'a> {
    chunk: &'a Chunk,
    bad: BooleanBuffer,
    /// (position in the chunk, reason); sorted by position at the end.
    reasons: Vec<(usize, Reason)>,
}

impl<'a> Found<'a> {
    pub(super) fn new(chunk: &'a Chunk) -> Self {
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

    pub(super) fn finish(mut self) -> Validated {
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
pub(super) struct TextColumn<'a> {
    field: &'a Field,
    keys: &'a Int32Array,
    values: &'a StringArray,
    /// Per dictionary value: it is null (a missing-value marker).
    null: Vec<bool>,
    /// Per dictionary value: its parsed value (`None` when null or not of the field's type).
    parsed: Vec<Option<Value>>,
}

impl<'a> TextColumn<'a> {
    pub(super) fn new(
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

    pub(super) fn text(&self, k: usize) -> &str {
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
    pub(super) fn check(&self, found: &mut Found<'_>) {
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
    pub(super) fn check_required(&self, found: &mut Found<'_>, why: &str) {
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
    pub(super) fn check_unique(&self, found: &mut Found<'_>) {
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
pub(super) fn check_numbers(field: &Field, values: &Float64Array, found: &mut Found<'_>) {
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

pub(super) fn check_numbers_required(
    field: &Field,
    values: &Float64Array,
    found: &mut Found<'_>,
    why: &str,
) {
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
pub(super) struct KeyPart {
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
    pub(super) fn text(column: &TextColumn<'_>) -> KeyPart {
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

    pub(super) fn numbers(values: &Float64Array) -> KeyPart {
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
pub(super) fn check_primary_key(parts: &[(&str, KeyPart)], found: &mut Found<'_>) {
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

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use arrow_array::ArrayRef;

    use super::*;
    use crate::validate::testing::*;
    use crate::validate::validate;

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
}
