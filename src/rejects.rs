//! Rows that broke a rule: kept with their reasons, counted in a report, never dropped silently.
//!
//! Owns: the `Reason` a row was refused for, the per-run `Report` (counts per rule and column,
//! first examples) and the Arrow shape of `rejects/pipeline=<id>/run=<run_id>.parquet`.
//! Must not: decide what is wrong (validate and harmonise do) or write files (warehouse does).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

/// How many examples the report keeps per rule and column.
pub const EXAMPLES_PER_RULE: usize = 5;

/// Why one row was refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reason {
    /// The payload the row came from (`data.csv`, `TAB638-0002.json`); empty until the run
    /// locates the row (stages know only the table's row ids), and in reports written before
    /// payloads were named.
    #[serde(default)]
    pub payload: String,
    /// Source row number (CSV line, JSON-stat cell index) in its payload; while a stage holds it,
    /// the table's row id.
    pub row: u64,
    /// The rule that broke: `required`, `enum`, `pattern`, `type`, `duplicate_key`, `period`, …
    pub rule: String,
    /// The column the rule is about (source column, or model column for key rules).
    pub column: String,
    pub message: String,
}

/// Counts per rule and column with the first examples: what `run` prints and the ledger stores.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub rows_checked: u64,
    pub rows_rejected: u64,
    /// (rule, column) → count and first examples.
    pub rules: BTreeMap<String, RuleCount>,
}

/// One line of the report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RuleCount {
    pub rule: String,
    pub column: String,
    pub count: u64,
    pub examples: Vec<Reason>,
}

impl Report {
    /// Counts one reason; keeps it as an example if it is among the [`EXAMPLES_PER_RULE`] lowest
    /// rows of its rule.
    pub fn count(&mut self, reason: &Reason) {
        let entry = self
            .rules
            .entry(format!("{}:{}", reason.rule, reason.column))
            .or_insert_with(|| RuleCount {
                rule: reason.rule.clone(),
                column: reason.column.clone(),
                ..RuleCount::default()
            });
        entry.count += 1;
        if entry.examples.len() < EXAMPLES_PER_RULE
            || entry
                .examples
                .last()
                .is_some_and(|last| example_order(reason, last).is_lt())
        {
            entry.examples.push(reason.clone());
            entry.examples.sort_by(example_order);
            entry.examples.truncate(EXAMPLES_PER_RULE);
        }
    }

    /// Adds another report's counts. Examples are those of the lowest row numbers, so a report
    /// merged from partitions handled in any order reads the same.
    pub fn merge(&mut self, other: Report) {
        self.rows_checked += other.rows_checked;
        self.rows_rejected += other.rows_rejected;
        for (key, theirs) in other.rules {
            let ours = self.rules.entry(key).or_insert_with(|| RuleCount {
                rule: theirs.rule.clone(),
                column: theirs.column.clone(),
                ..RuleCount::default()
            });
            ours.count += theirs.count;
            ours.examples.extend(theirs.examples);
            ours.examples.sort_by(example_order);
            ours.examples.truncate(EXAMPLES_PER_RULE);
        }
    }

    /// Share of checked rows that were rejected (0 when nothing was checked).
    pub fn reject_ratio(&self) -> f64 {
        if self.rows_checked == 0 {
            0.0
        } else {
            self.rows_rejected as f64 / self.rows_checked as f64
        }
    }
}

/// Examples are kept lowest row first (then by payload), so that a report merged from
/// partitions handled in any order reads the same.
fn example_order(a: &Reason, b: &Reason) -> std::cmp::Ordering {
    (a.row, &a.payload).cmp(&(b.row, &b.payload))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} rows checked, {} rejected",
            self.rows_checked, self.rows_rejected
        )?;
        for rule in self.rules.values() {
            writeln!(
                f,
                "  {} on `{}`: {} rows",
                rule.rule, rule.column, rule.count
            )?;
            for example in &rule.examples {
                match example.payload.as_str() {
                    "" => writeln!(f, "    row {}: {}", example.row, example.message)?,
                    payload => {
                        writeln!(f, "    {payload} row {}: {}", example.row, example.message)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Refused rows of one pipeline run: the source rows as text plus their reasons, one row per reason.
#[derive(Debug, Default)]
pub struct Rejects {
    batches: Vec<RecordBatch>,
}

impl Rejects {
    /// Keeps `reasons` with the rows of `source` they are about. `source_rows` gives the row id
    /// of each row of `source`, which is how a reason (whose `row` is still that id) finds its
    /// row; `locate` turns a row id into the payload and its own row number, as the file says.
    pub fn add(
        &mut self,
        source: &RecordBatch,
        source_rows: &[u64],
        reasons: &[Reason],
        locate: impl Fn(u64) -> (String, u64),
    ) {
        if reasons.is_empty() {
            return;
        }
        let index: std::collections::HashMap<u64, usize> = source_rows
            .iter()
            .enumerate()
            .map(|(i, &row)| (row, i))
            .collect();
        let take: UInt64Array = reasons
            .iter()
            .map(|r| index.get(&r.row).map(|&i| i as u64))
            .collect();
        let (payloads, rows): (Vec<String>, Vec<u64>) =
            reasons.iter().map(|r| locate(r.row)).unzip();
        let mut fields = vec![
            Field::new("payload", DataType::Utf8, false),
            Field::new("row", DataType::UInt64, false),
            Field::new("rule", DataType::Utf8, false),
            Field::new("column", DataType::Utf8, false),
            Field::new("message", DataType::Utf8, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(payloads)),
            Arc::new(UInt64Array::from(rows)),
            Arc::new(StringArray::from_iter_values(
                reasons.iter().map(|r| &r.rule),
            )),
            Arc::new(StringArray::from_iter_values(
                reasons.iter().map(|r| &r.column),
            )),
            Arc::new(StringArray::from_iter_values(
                reasons.iter().map(|r| &r.message),
            )),
        ];
        for (field, column) in source.schema().fields().iter().zip(source.columns()) {
            let picked = arrow_select::take::take(column, &take, None).expect("rows in bounds");
            let text = arrow_cast::cast(&picked, &DataType::Utf8)
                .expect("every source column type casts to text");
            fields.push(Field::new(
                format!("source_{}", field.name()),
                DataType::Utf8,
                true,
            ));
            columns.push(text);
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .expect("columns built for these fields");
        self.batches.push(batch);
    }

    /// Whether no row was kept.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// How many refusals (one per reason) are kept.
    pub fn len(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    /// Moves another collection's rows into this one.
    pub fn append(&mut self, other: Rejects) {
        self.batches.extend(other.batches);
    }

    /// All kept rows as one batch, or `None` when there are none. Columns are matched by name
    /// (payloads of one run may have different source columns), empty where a row has none.
    pub fn finish(self) -> Option<RecordBatch> {
        let first = self.batches.first()?;
        let mut fields: Vec<Field> = first
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for batch in &self.batches[1..] {
            for field in batch.schema().fields() {
                if !fields.iter().any(|f| f.name() == field.name()) {
                    fields.push(Field::new(field.name(), DataType::Utf8, true));
                }
            }
        }
        let schema = Arc::new(Schema::new(fields));
        let aligned: Vec<RecordBatch> = self
            .batches
            .iter()
            .map(|batch| {
                let columns = schema
                    .fields()
                    .iter()
                    .map(|field| match batch.column_by_name(field.name()) {
                        Some(column) => column.clone(),
                        None => arrow_array::new_null_array(field.data_type(), batch.num_rows()),
                    })
                    .collect();
                RecordBatch::try_new(schema.clone(), columns)
                    .expect("every rejects column is text but the leading ones, which all have")
            })
            .collect();
        Some(arrow_select::concat::concat_batches(&schema, &aligned).expect("aligned batches"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(row: u64, rule: &str) -> Reason {
        Reason {
            payload: String::new(),
            row,
            rule: rule.into(),
            column: "andel".into(),
            message: format!("row {row} broke {rule}"),
        }
    }

    #[test]
    fn report_keeps_only_the_first_examples() {
        let mut report = Report::default();
        for row in 0..8 {
            report.count(&reason(row, "minimum"));
        }
        let line = &report.rules["minimum:andel"];
        assert_eq!(line.count, 8);
        assert_eq!(line.examples.len(), EXAMPLES_PER_RULE);
        assert_eq!(line.examples[0].row, 0);
    }

    #[test]
    fn merged_reports_add_up() {
        let (mut a, mut b) = (Report::default(), Report::default());
        a.rows_checked = 10;
        a.count(&reason(1, "enum"));
        b.rows_checked = 5;
        b.rows_rejected = 1;
        b.count(&reason(12, "enum"));
        a.merge(b);
        assert_eq!(a.rows_checked, 15);
        assert_eq!(a.rules["enum:andel"].count, 2);
    }

    #[test]
    fn rejects_carry_the_source_row_as_text() {
        let source = RecordBatch::try_from_iter([(
            "andel",
            Arc::new(StringArray::from(vec!["12,5", "abc"])) as ArrayRef,
        )])
        .unwrap();
        let mut rejects = Rejects::default();
        rejects.add(&source, &[2, 3], &[reason(3, "type")], |row| {
            ("a.csv".into(), row)
        });
        let batch = rejects.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let text = batch.column_by_name("source_andel").unwrap();
        let text = text.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(text.value(0), "abc");
        let payload = batch.column_by_name("payload").unwrap();
        let payload = payload.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(payload.value(0), "a.csv");
    }

    #[test]
    fn rejects_of_payloads_with_different_columns_are_one_batch() {
        let batch = |name: &str, value: &str| {
            RecordBatch::try_from_iter([(
                name,
                Arc::new(StringArray::from(vec![value])) as ArrayRef,
            )])
            .unwrap()
        };
        let mut rejects = Rejects::default();
        rejects.add(&batch("andel", "x"), &[7], &[reason(7, "type")], |row| {
            ("a.csv".into(), row)
        });
        rejects.add(&batch("kommun", "y"), &[9], &[reason(9, "area")], |row| {
            ("b.csv".into(), row - 7)
        });
        let batch = rejects.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let column = |name: &str| {
            let c = batch.column_by_name(name).unwrap();
            c.as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect::<Vec<_>>()
        };
        assert_eq!(column("source_andel"), [Some("x".into()), None]);
        assert_eq!(column("source_kommun"), [None, Some("y".into())]);
        assert_eq!(
            column("payload"),
            [Some("a.csv".into()), Some("b.csv".into())]
        );
    }
}
