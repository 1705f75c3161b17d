//! The key of DESIGN §3: rows sorted by it, and rows whose key repeats refused.
//!
//! Owns: the sort order of observations and the duplicate-key rule.
//! Must not: write files or decide which of two rows with one key is right (neither is kept).

use std::cmp::Ordering;

use arrow_array::{RecordBatch, UInt32Array};
use arrow_ord::ord::{DynComparator, make_comparator};
use arrow_ord::sort::{SortColumn, SortOptions, lexsort_to_indices};

use crate::model::{self, KEY};
use crate::rejects::Reason;

/// Observations sorted by the key with every duplicate removed, and why the removed rows went.
#[derive(Debug)]
pub struct Keyed {
    pub observations: RecordBatch,
    /// Source row number of each kept observation.
    pub rows: Vec<u64>,
    pub reasons: Vec<Reason>,
}

/// Sorts `observations` (model schema; `rows` = their source rows) by the key and refuses every
/// row of a key that occurs more than once: a source that repeats a key contradicts itself, and
/// keeping either row would hide that.
pub fn sort_by_key(observations: &RecordBatch, rows: &[u64]) -> Keyed {
    let columns: Vec<SortColumn> = KEY
        .iter()
        .map(|name| SortColumn {
            values: observations
                .column_by_name(name)
                .expect("key columns are in the model")
                .clone(),
            options: Some(SortOptions::default()),
        })
        .collect();
    let indices = lexsort_to_indices(&columns, None).expect("key columns sort");
    let sorted = arrow_select::take::take_record_batch(observations, &indices)
        .expect("indices are in bounds");
    let sorted_rows: Vec<u64> = indices.values().iter().map(|&i| rows[i as usize]).collect();

    let comparators: Vec<DynComparator> = KEY
        .iter()
        .map(|name| {
            let column = sorted.column_by_name(name).expect("key column");
            make_comparator(column, column, SortOptions::default()).expect("key columns compare")
        })
        .collect();
    let same_key = |a: usize, b: usize| comparators.iter().all(|c| c(a, b) == Ordering::Equal);
    let n = sorted.num_rows();
    let mut keep = Vec::with_capacity(n);
    let mut reasons = Vec::new();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && same_key(start, end) {
            end += 1;
        }
        if end - start == 1 {
            keep.push(start as u32);
        } else {
            let mut group = sorted_rows[start..end].to_vec();
            group.sort_unstable();
            let others: Vec<String> = group.iter().map(u64::to_string).collect();
            for &row in &group {
                reasons.push(Reason {
                    row,
                    rule: "duplicate_key".into(),
                    column: model::col::INDICATOR_ID.into(),
                    message: format!(
                        "rows {} have the same key ({}); keep one per key, e.g. map the \
                         dimension that tells them apart to a breakdown",
                        others.join(", "),
                        describe_key(&sorted, start)
                    ),
                });
            }
        }
        start = end;
    }
    if keep.len() == n {
        return Keyed {
            observations: sorted,
            rows: sorted_rows,
            reasons,
        };
    }
    let rows = keep.iter().map(|&i| sorted_rows[i as usize]).collect();
    let keep = UInt32Array::from(keep);
    Keyed {
        observations: arrow_select::take::take_record_batch(&sorted, &keep)
            .expect("indices are in bounds"),
        rows,
        reasons,
    }
}

/// `indicator_id=…, area_code=…, …` of one row, for messages.
fn describe_key(batch: &RecordBatch, row: usize) -> String {
    KEY.iter()
        .map(|name| {
            let column = batch.column_by_name(name).expect("key column");
            let text =
                arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &Default::default())
                    .expect("key columns display")
                    .value(row)
                    .to_string();
            format!("{name}={text}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
