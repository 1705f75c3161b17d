//! The key of DESIGN §3: rows sorted by it, and rows whose key repeats refused.
//!
//! Owns: the sort order of observations and the duplicate-key rule.
//! Must not: write files or decide which of two rows with one key is right (neither is kept).

use std::cmp::Ordering;

use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt32Array};
use arrow_ord::ord::make_comparator;
use arrow_ord::sort::SortOptions;

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

/// Sorts `observations` (model batch schema; `rows` = their source rows) by the key and refuses
/// every row of a key that occurs more than once: a source that repeats a key contradicts
/// itself, and keeping either row would hide that.
///
/// Rows are compared by the ranks of their key values packed into one integer, so a 64k-row
/// partition sorts as integers, never comparing strings row against row.
pub fn sort_by_key(observations: &RecordBatch, rows: &[u64]) -> Keyed {
    let n = observations.num_rows();
    let ranked: Vec<(Vec<u32>, u32)> = KEY
        .iter()
        .map(|name| {
            ranks(
                observations
                    .column_by_name(name)
                    .expect("key columns are in the model"),
            )
        })
        .collect();
    let bits: u32 = ranked.iter().map(|(_, distinct)| bits_for(*distinct)).sum();
    let order: Vec<u32> = if bits <= 64 {
        let mut packed: Vec<(u64, u32)> = (0..n)
            .map(|i| {
                let key = ranked.iter().fold(0u64, |key, (ranks, distinct)| {
                    (key << bits_for(*distinct)) | u64::from(ranks[i])
                });
                (key, i as u32)
            })
            .collect();
        radix_sort(&mut packed, bits);
        mark_duplicates(&mut packed)
    } else if bits <= 128 {
        let mut packed: Vec<(u128, u32)> = (0..n)
            .map(|i| {
                let key = ranked.iter().fold(0u128, |key, (ranks, distinct)| {
                    (key << bits_for(*distinct)) | u128::from(ranks[i])
                });
                (key, i as u32)
            })
            .collect();
        packed.sort_unstable();
        mark_duplicates(&mut packed)
    } else {
        let mut order: Vec<u32> = (0..n as u32).collect();
        let compare = |a: u32, b: u32| {
            ranked
                .iter()
                .map(|(ranks, _)| ranks[a as usize].cmp(&ranks[b as usize]))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        order.sort_unstable_by(|&a, &b| compare(a, b).then(a.cmp(&b)));
        let mut start = 0;
        while start < n {
            let mut end = start + 1;
            while end < n && compare(order[start], order[end]).is_eq() {
                end += 1;
            }
            if end - start > 1 {
                for entry in &mut order[start..end] {
                    *entry |= DUPLICATE;
                }
            }
            start = end;
        }
        order
    };
    split_duplicates(observations, rows, &order)
}

/// Marks an index in a sorted order as one of a repeated key.
const DUPLICATE: u32 = 1 << 31;

/// The indices of sorted `(key, index)` pairs, those of a repeated key marked [`DUPLICATE`].
fn mark_duplicates<K: Copy + Eq>(packed: &mut [(K, u32)]) -> Vec<u32> {
    let n = packed.len();
    let mut start = 0;
    while start < n {
        let mut end = start + 1;
        while end < n && packed[end].0 == packed[start].0 {
            end += 1;
        }
        if end - start > 1 {
            for entry in &mut packed[start..end] {
                entry.1 |= DUPLICATE;
            }
        }
        start = end;
    }
    packed.iter().map(|(_, i)| *i).collect()
}

/// Sorts `(key, index)` pairs by the low `bits` bits of the key, stably: a least-significant-
/// digit radix sort, a few linear passes where a comparison sort would compare 16 times per row.
fn radix_sort(entries: &mut Vec<(u64, u32)>, bits: u32) {
    const DIGIT_BITS: u32 = 11;
    if entries.is_sorted_by_key(|(key, _)| *key) {
        return;
    }
    let mask = (1u64 << DIGIT_BITS) - 1;
    let mut buffer = vec![(0u64, 0u32); entries.len()];
    let mut shift = 0;
    while shift < bits {
        let mut starts = vec![0usize; (1 << DIGIT_BITS) + 1];
        for (key, _) in entries.iter() {
            starts[((key >> shift) & mask) as usize + 1] += 1;
        }
        for digit in 1..starts.len() {
            starts[digit] += starts[digit - 1];
        }
        for &entry in entries.iter() {
            let digit = ((entry.0 >> shift) & mask) as usize;
            buffer[starts[digit]] = entry;
            starts[digit] += 1;
        }
        std::mem::swap(entries, &mut buffer);
        shift += DIGIT_BITS;
    }
}

/// Takes the unique rows in sorted order and makes a reason for each duplicated one.
fn split_duplicates(observations: &RecordBatch, rows: &[u64], order: &[u32]) -> Keyed {
    let keep: Vec<u32> = order
        .iter()
        .copied()
        .filter(|i| i & DUPLICATE == 0)
        .collect();
    let mut reasons = Vec::new();
    let mut index = 0;
    while index < order.len() {
        if order[index] & DUPLICATE == 0 {
            index += 1;
            continue;
        }
        // A run of duplicates with one key: they are adjacent in the sorted order, and the next
        // run (if any) has another key.
        let first = (order[index] & !DUPLICATE) as usize;
        let mut end = index + 1;
        while end < order.len()
            && order[end] & DUPLICATE != 0
            && same_key(observations, first, (order[end] & !DUPLICATE) as usize)
        {
            end += 1;
        }
        let mut group: Vec<u64> = order[index..end]
            .iter()
            .map(|i| rows[(i & !DUPLICATE) as usize])
            .collect();
        group.sort_unstable();
        let listed: Vec<String> = group.iter().map(u64::to_string).collect();
        let key = describe_key(observations, first);
        for &row in &group {
            reasons.push(Reason {
                row,
                rule: "duplicate_key".into(),
                column: model::col::INDICATOR_ID.into(),
                message: format!(
                    "rows {} have the same key ({key}); keep one per key, e.g. map the \
                     dimension that tells them apart to a breakdown",
                    listed.join(", ")
                ),
            });
        }
        index = end;
    }
    let kept_rows = keep.iter().map(|&i| rows[i as usize]).collect();
    let keep = UInt32Array::from(keep);
    Keyed {
        observations: arrow_select::take::take_record_batch(observations, &keep)
            .expect("indices are in bounds"),
        rows: kept_rows,
        reasons,
    }
}

/// Whether rows `a` and `b` have the same key (only for message grouping; rare).
fn same_key(batch: &RecordBatch, a: usize, b: usize) -> bool {
    KEY.iter().all(|name| {
        let column = batch.column_by_name(name).expect("key column");
        make_comparator(column, column, SortOptions::default()).expect("key columns compare")(a, b)
            .is_eq()
    })
}

/// Bits needed to hold ranks `0..distinct`.
fn bits_for(distinct: u32) -> u32 {
    u32::BITS - distinct.saturating_sub(1).leading_zeros()
}

/// Each row's rank among the column's distinct values (equal values share a rank) and the
/// number of ranks. Dictionary columns are ranked through their dictionary, once per value.
fn ranks(column: &ArrayRef) -> (Vec<u32>, u32) {
    if let Some(dictionary) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>()
        && let Some(values) = dictionary.values().as_any().downcast_ref::<StringArray>()
        && dictionary.null_count() == 0
    {
        let mut sorted: Vec<u32> = (0..values.len() as u32).collect();
        sorted.sort_unstable_by_key(|&k| values.value(k as usize));
        let mut rank_of = vec![0u32; values.len()];
        let mut rank = 0;
        for (position, &k) in sorted.iter().enumerate() {
            if position > 0
                && values.value(sorted[position - 1] as usize) != values.value(k as usize)
            {
                rank += 1;
            }
            rank_of[k as usize] = rank;
        }
        let ranks = dictionary
            .keys()
            .values()
            .iter()
            .map(|&k| rank_of[k as usize])
            .collect();
        return (ranks, rank + 1);
    }
    let ranks = arrow_ord::rank::rank(column, None).expect("key columns rank");
    let distinct = ranks.iter().copied().max().unwrap_or(0) + 1;
    (ranks, distinct)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn radix_sort_orders_like_a_stable_sort(keys in proptest::collection::vec(0u64..(1 << 30), 0..300)) {
            let mut entries: Vec<(u64, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            let mut expected = entries.clone();
            expected.sort_by_key(|(key, _)| *key);
            radix_sort(&mut entries, 30);
            prop_assert_eq!(entries, expected);
        }
    }

    #[test]
    fn bits_cover_every_rank() {
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(312), 9);
        assert_eq!(bits_for(1024), 10);
    }
}
