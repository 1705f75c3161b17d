//! The key of DESIGN §3: rows put in key order, and rows whose key repeats found.
//!
//! Owns: the sort order of observations and finding repeated keys.
//! Must not: build columns or messages (harmonise does) or decide which of two rows with one
//! key is right (neither is kept).
//!
//! Rows are compared by the ranks of their key values packed into one integer and radix-sorted,
//! so a 64k-row partition sorts as integers, never comparing strings row against row.

use std::cmp::Ordering;

/// One key column as harmonise holds it: each row's index into the column's distinct values,
/// and each distinct value's rank in sorted order.
#[derive(Debug)]
pub struct KeyColumn<'a> {
    pub row_values: &'a [i32],
    pub rank_of_value: Vec<u32>,
}

impl<'a> KeyColumn<'a> {
    /// A key column over `values` (distinct), with `row_values` indexing them.
    pub fn new(row_values: &'a [i32], values: &[String]) -> Self {
        let mut sorted: Vec<usize> = (0..values.len()).collect();
        sorted.sort_unstable_by(|&a, &b| values[a].cmp(&values[b]));
        let mut rank_of_value = vec![0; values.len()];
        for (rank, &value) in sorted.iter().enumerate() {
            rank_of_value[value] = rank as u32;
        }
        Self {
            row_values,
            rank_of_value,
        }
    }

    fn rank(&self, row: usize) -> u32 {
        self.rank_of_value[self.row_values[row] as usize]
    }

    fn bits(&self) -> u32 {
        bits_for(self.rank_of_value.len() as u32)
    }
}

/// Rows in key order with every repeated key taken out, and the groups that repeated.
#[derive(Debug, PartialEq)]
pub struct Ordered {
    pub order: Vec<usize>,
    /// Each group of rows sharing one key, in row order.
    pub duplicates: Vec<Vec<usize>>,
}

/// Orders `rows` by `columns` (most significant first) and sets apart the rows of repeated keys:
/// a source that repeats a key contradicts itself, and keeping either row would hide that.
pub fn order_by_key(columns: &[KeyColumn<'_>], rows: &[usize]) -> Ordered {
    // A column with one value orders nothing (fixed sex, empty grade or breakdown).
    let columns: Vec<&KeyColumn> = columns.iter().filter(|c| c.bits() > 0).collect();
    let bits: u32 = columns.iter().map(|c| c.bits()).sum();
    if bits <= 64 {
        let mut packed: Vec<(u64, u32)> = rows
            .iter()
            .map(|&row| {
                let key = columns.iter().fold(0u64, |key, column| {
                    (key << column.bits()) | u64::from(column.rank(row))
                });
                (key, row as u32)
            })
            .collect();
        radix_sort(&mut packed, bits);
        split_runs(&packed, |a, b| a.0 == b.0)
    } else if bits <= 128 {
        let mut packed: Vec<(u128, u32)> = rows
            .iter()
            .map(|&row| {
                let key = columns.iter().fold(0u128, |key, column| {
                    (key << column.bits()) | u128::from(column.rank(row))
                });
                (key, row as u32)
            })
            .collect();
        packed.sort_unstable();
        split_runs(&packed, |a, b| a.0 == b.0)
    } else {
        let compare = |a: usize, b: usize| {
            columns
                .iter()
                .map(|column| column.rank(a).cmp(&column.rank(b)))
                .find(|order| order.is_ne())
                .unwrap_or(Ordering::Equal)
        };
        let mut sorted: Vec<((), u32)> = rows.iter().map(|&row| ((), row as u32)).collect();
        sorted.sort_unstable_by(|a, b| compare(a.1 as usize, b.1 as usize).then(a.1.cmp(&b.1)));
        split_runs(&sorted, |a, b| compare(a.1 as usize, b.1 as usize).is_eq())
    }
}

/// Walks sorted `(key, row)` entries: rows alone on their key go to `order`, runs of one key to
/// `duplicates`.
fn split_runs<K>(sorted: &[(K, u32)], same: impl Fn(&(K, u32), &(K, u32)) -> bool) -> Ordered {
    let mut ordered = Ordered {
        order: Vec::with_capacity(sorted.len()),
        duplicates: Vec::new(),
    };
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start + 1;
        while end < sorted.len() && same(&sorted[start], &sorted[end]) {
            end += 1;
        }
        if end - start == 1 {
            ordered.order.push(sorted[start].1 as usize);
        } else {
            let mut group: Vec<usize> = sorted[start..end].iter().map(|e| e.1 as usize).collect();
            group.sort_unstable();
            ordered.duplicates.push(group);
        }
        start = end;
    }
    ordered
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

/// Bits needed to hold ranks `0..distinct`.
fn bits_for(distinct: u32) -> u32 {
    u32::BITS - distinct.saturating_sub(1).leading_zeros()
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

        #[test]
        fn key_order_is_the_order_of_the_values(
            rows in proptest::collection::vec((0i32..4, 0i32..3), 0..60)
        ) {
            let first = ["b", "a", "d", "c"].map(String::from);
            let second = ["y", "x", "z"].map(String::from);
            let (a, b): (Vec<i32>, Vec<i32>) = rows.iter().copied().unzip();
            let columns = [KeyColumn::new(&a, &first), KeyColumn::new(&b, &second)];
            let all: Vec<usize> = (0..rows.len()).collect();
            let ordered = order_by_key(&columns, &all);
            let text = |row: usize| (first[a[row] as usize].clone(), second[b[row] as usize].clone());
            for pair in ordered.order.windows(2) {
                prop_assert!(text(pair[0]) < text(pair[1]));
            }
            let kept = ordered.order.len() + ordered.duplicates.iter().map(Vec::len).sum::<usize>();
            prop_assert_eq!(kept, rows.len());
            for group in &ordered.duplicates {
                prop_assert!(group.len() > 1 && group.iter().all(|&row| text(row) == text(group[0])));
            }
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
