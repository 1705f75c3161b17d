//! Rows of text → the rows form of a [`SourceTable`], shared by the row formats (CSV, XLSX).
//!
//! Owns: interning each column's values into one dictionary (each distinct raw value decoded to
//! UTF-8 once) and assembling named columns into a table.
//! Must not: split records or read cells (each format does), or parse numbers.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{Field, Schema};
use encoding_rs::{Encoding, UTF_8};

use super::table::{SourceMeta, SourceTable, text_type};

/// A column has more than 2 GiB of distinct text (or more than `i32::MAX` distinct values),
/// more than one Arrow array holds.
#[derive(Debug)]
pub(super) struct TooLarge {
    /// The column's name.
    pub column: String,
}

/// The table of `columns`, named by `names` (same length, distinct), with `numbers` as each
/// row's source row number (one per row pushed into every column).
pub(super) fn finish(
    names: Vec<String>,
    columns: Vec<Column>,
    numbers: Vec<u64>,
) -> Result<SourceTable, TooLarge> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, column) in names.into_iter().zip(columns) {
        let Some(array) = column.finish() else {
            return Err(TooLarge { column: name });
        };
        fields.push(Field::new(name, text_type(), false));
        arrays.push(Arc::new(array));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new_with_options(
        schema,
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(numbers.len())),
    )
    .expect("every column has one key per row and the schema was built from the columns");
    Ok(
        SourceTable::from_rows(batch, numbers, SourceMeta::default())
            .expect("one row number per row and only Dictionary(Int32, Utf8) columns"),
    )
}

/// `raw` as UTF-8 text, or `None` if it is not valid in `encoding`. Never replaces a byte with
/// U+FFFD: two different raw values must stay two different dictionary values.
pub(super) fn decode_text<'a>(raw: &'a [u8], encoding: &'static Encoding) -> Option<Cow<'a, str>> {
    if encoding == UTF_8 {
        std::str::from_utf8(raw).ok().map(Cow::Borrowed)
    } else {
        encoding.decode_without_bom_handling_and_without_replacement(raw)
    }
}

/// One text column being built: dictionary keys per row and the distinct values, decoded once.
///
/// The interner is a small open-addressing table of keys over an arena of raw values rather
/// than a `HashMap<Box<[u8]>, i32>`: no allocation per value, and short fields are compared
/// inline instead of through `memcmp`.
pub(super) struct Column {
    keys: Vec<i32>,
    /// The distinct values' raw bytes, back to back in key order; value `k` ends at `raw_ends[k]`.
    raw: Vec<u8>,
    raw_ends: Vec<usize>,
    /// The distinct values as UTF-8, in key order (Arrow offsets, starting with 0).
    values: Vec<u8>,
    offsets: Vec<i64>,
    /// Open addressing with linear probing, a power of two long, at most half full:
    /// (high half of the hash, key) with key -1 for an empty slot.
    slots: Vec<(u32, i32)>,
    /// The previous row's key (-1 before the first row) and its raw bytes' range in `raw`:
    /// sorted exports repeat codes row after row, and one comparison is cheaper than a lookup.
    last: i32,
    last_raw: (usize, usize),
}

impl Default for Column {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            raw: Vec::new(),
            raw_ends: Vec::new(),
            values: Vec::new(),
            offsets: vec![0],
            slots: vec![(0, -1); 64],
            last: -1,
            last_raw: (0, 0),
        }
    }
}

impl Column {
    fn raw_range(&self, key: i32) -> (usize, usize) {
        let key = key as usize;
        let start = if key == 0 { 0 } else { self.raw_ends[key - 1] };
        (start, self.raw_ends[key])
    }

    /// Appends the key of `raw`, decoding it from `encoding` if it is new.
    #[inline]
    pub(super) fn push(
        &mut self,
        raw: &[u8],
        encoding: &'static Encoding,
    ) -> Result<(), NotDecodable> {
        let (start, end) = self.last_raw;
        if self.last >= 0 && same(raw, &self.raw[start..end]) {
            self.keys.push(self.last);
            return Ok(());
        }
        let hash = hash_of(raw);
        let tag = (hash >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        let key = loop {
            let (stored, key) = self.slots[slot];
            if key < 0 {
                break self.insert(raw, tag, slot, encoding)?;
            }
            if stored == tag {
                let (start, end) = self.raw_range(key);
                if same(raw, &self.raw[start..end]) {
                    break key;
                }
            }
            slot = (slot + 1) & mask;
        };
        self.keys.push(key);
        self.last = key;
        self.last_raw = self.raw_range(key);
        Ok(())
    }

    /// Stores `raw` as a new value in the empty `slot`, and returns its key.
    #[cold]
    fn insert(
        &mut self,
        raw: &[u8],
        tag: u32,
        slot: usize,
        encoding: &'static Encoding,
    ) -> Result<i32, NotDecodable> {
        let text = decode_text(raw, encoding).ok_or(NotDecodable)?;
        // Past i32::MAX keys `finish` refuses the column; saturate until then.
        let key = i32::try_from(self.raw_ends.len()).unwrap_or(i32::MAX);
        self.values.extend_from_slice(text.as_bytes());
        self.offsets.push(self.values.len() as i64);
        self.raw.extend_from_slice(raw);
        self.raw_ends.push(self.raw.len());
        self.slots[slot] = (tag, key);
        if self.raw_ends.len() * 2 > self.slots.len() {
            let mut slots = vec![(0, -1); self.slots.len() * 2];
            let mask = slots.len() - 1;
            for key in 0..self.raw_ends.len() as i32 {
                let (start, end) = self.raw_range(key);
                let hash = hash_of(&self.raw[start..end]);
                let mut slot = hash as usize & mask;
                while slots[slot].1 >= 0 {
                    slot = (slot + 1) & mask;
                }
                slots[slot] = ((hash >> 32) as u32, key);
            }
            self.slots = slots;
        }
        Ok(key)
    }

    /// Makes room for `rows` more rows.
    pub(super) fn reserve(&mut self, rows: usize) {
        self.keys.reserve(rows);
    }

    /// The column as a dictionary array; `None` if its distinct values do not fit in one
    /// `Utf8` array (2 GiB) or its keys in `Int32`.
    fn finish(self) -> Option<DictionaryArray<Int32Type>> {
        if self.raw_ends.len() > i32::MAX as usize {
            return None;
        }
        let offsets: Vec<i32> = self
            .offsets
            .into_iter()
            .map(i32::try_from)
            .collect::<Result<_, _>>()
            .ok()?;
        let values = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(self.values),
            None,
        )
        .expect("values were decoded to UTF-8 and offsets only grow");
        let keys = Int32Array::from(self.keys);
        Some(
            DictionaryArray::try_new(keys, Arc::new(values))
                .expect("every key was handed out for a stored value"),
        )
    }
}

/// A value is not valid in the file's encoding.
#[derive(Debug)]
pub(super) struct NotDecodable;

/// `a == b`, without a `memcmp` call for the short fields that make up most of a CSV file.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0 => true,
        1..=3 => {
            a[0] == b[0] && a[a.len() - 1] == b[b.len() - 1] && a[a.len() / 2] == b[b.len() / 2]
        }
        4..=7 => word4(a, 0) == word4(b, 0) && word4(a, a.len() - 4) == word4(b, b.len() - 4),
        8..=16 => word8(a, 0) == word8(b, 0) && word8(a, a.len() - 8) == word8(b, b.len() - 8),
        _ => a == b,
    }
}

#[inline(always)]
fn word4(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

#[inline(always)]
fn word8(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// A hash of `bytes` (wyhash-style folded multiplies). The keys are our own file's values, so
/// we need no protection against chosen collisions, and SipHash would cost more than the rest of
/// the per-cell work. Fields of up to 16 bytes are read as two overlapping words, without a loop.
#[inline(always)]
fn hash_of(bytes: &[u8]) -> u64 {
    const P0: u64 = 0xa076_1d64_78bd_642f;
    const P1: u64 = 0xe703_7ed1_a0b4_28db;
    let fold = |a: u64, b: u64| {
        let product = u128::from(a) * u128::from(b);
        (product as u64) ^ ((product >> 64) as u64)
    };
    let n = bytes.len();
    let (mut seed, a, b) = (P0 ^ n as u64, 0u64, 0u64);
    let (a, b) = match n {
        0 => (a, b),
        1..=3 => (
            u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16,
            b,
        ),
        4..=8 => (u64::from(word4(bytes, 0)), u64::from(word4(bytes, n - 4))),
        9..=16 => (word8(bytes, 0), word8(bytes, n - 8)),
        _ => {
            let mut at = 0;
            while at + 16 < n {
                seed = fold(word8(bytes, at) ^ P1, word8(bytes, at + 8) ^ seed);
                at += 16;
            }
            (word8(bytes, n - 16), word8(bytes, n - 8))
        }
    };
    fold(a ^ P1, b ^ seed)
}

/// What the CSV and XLSX decoders' tests read a decoded table back with.
#[cfg(test)]
pub(super) mod testing {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;

    use crate::formats::SourceTable;

    pub(in crate::formats) fn names(table: &SourceTable) -> Vec<String> {
        table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// Every row as strings, and each row's source row number (CSV line, sheet row).
    pub(in crate::formats) fn rows(table: &SourceTable) -> (Vec<Vec<String>>, Vec<u64>) {
        let chunk = table.all();
        let mut rows = vec![Vec::new(); chunk.batch.num_rows()];
        for column in chunk.batch.columns() {
            let column = column.as_dictionary::<Int32Type>();
            assert_eq!(column.null_count(), 0);
            let values = column.values().as_string::<i32>();
            for (row, key) in rows.iter_mut().zip(column.keys().values()) {
                row.push(values.value(*key as usize).to_owned());
            }
        }
        (rows, chunk.rows)
    }
}
