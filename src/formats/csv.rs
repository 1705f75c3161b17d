//! CSV: delimited text exports (survey answer files, Excel "CSV", PxWeb CSV) → [`SourceTable`].
//!
//! Owns: splitting records (csv-core's DFA over the raw bytes), the file's text encoding, header
//! names, and the line number where each record starts.
//! Must not: read files, parse numbers or decide what an empty field means — every column is text
//! and "" stays "" (the harmoniser decides, and may use [`parse_number`] with [`CsvOptions::decimal`]).
//!
//! Speed: delimiter, quote and line ends are ASCII and every encoding we accept is ASCII-compatible,
//! so records are split on the raw bytes. Each field's raw bytes are interned per column and only
//! distinct values are decoded to UTF-8: a 2-million-row survey export has a few thousand distinct
//! values, so decoding costs nothing and each cell costs a comparison or a hash lookup.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{Field, Schema};
use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use encoding_rs::{DecoderResult, Encoding, UTF_8};

use super::table::{SourceMeta, SourceTable, text_type};

/// CSV options of a pipeline's `[source]` (all have defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// The field separator (`,` by default; Swedish exports mostly use `;`). Must be ASCII.
    pub delimiter: u8,
    /// The quote character (`"`); a quote inside a quoted field is written twice. Must be ASCII.
    pub quote: u8,
    /// Whether the first record names the columns. Without one they are `column1`, `column2`, ….
    pub header: bool,
    /// The text encoding of the bytes; see [`encoding_for`]. A UTF-8 byte order mark overrides it.
    pub encoding: &'static Encoding,
    /// The decimal separator of numbers in the file (`.` or `,`). Not used by [`decode`]: later
    /// stages pass it to [`parse_number`].
    pub decimal: char,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            quote: b'"',
            header: true,
            encoding: UTF_8,
            decimal: '.',
        }
    }
}

/// Why a CSV file could not be decoded. Every variant names the file (`origin`) and, where there
/// is one, the line.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error(
        "{origin}: line {line} is not valid {encoding}; if the export came from Excel set \
         `encoding = \"windows-1252\"` in [source]"
    )]
    Encoding {
        origin: String,
        line: u64,
        encoding: &'static str,
    },
    #[error(
        "{origin}: the file is UTF-16 (it starts with a UTF-16 byte order mark); export it as \
         CSV in UTF-8 or windows-1252 instead"
    )]
    Utf16 { origin: String },
    #[error("{origin}: the file has no records; expected a header row and data rows")]
    Empty { origin: String },
    #[error(
        "{origin}: line {line} has {found} fields but {} has {expected}; check `delimiter` in \
         [source] and that fields containing it are quoted",
        if *.header { "the header" } else { "the first record" }
    )]
    Ragged {
        origin: String,
        line: u64,
        found: usize,
        expected: usize,
        header: bool,
    },
    #[error(
        "{origin}: the header names column `{name}` twice (columns {first} and {second}); \
         rename one in the file, or set `header = false` in [source]"
    )]
    DuplicateName {
        origin: String,
        name: String,
        first: usize,
        second: usize,
    },
    #[error(
        "{origin}: column {column} of the header has no name; name it in the file, or set \
         `header = false` in [source]"
    )]
    EmptyName { origin: String, column: usize },
    #[error(
        "{origin}: column `{column}` has more than 2 GiB of distinct text, more than one Arrow \
         array holds; split the file"
    )]
    TooLarge { origin: String, column: String },
}

/// The encoding named by a pipeline's `encoding` key (`utf-8`, `windows-1252`, `cp1252`,
/// `iso-8859-1`, `latin1`, … — the WHATWG labels of `encoding_rs`), or `None` when the label is
/// unknown or names an encoding [`decode`] cannot split safely.
///
/// Accepted: UTF-8 and the single-byte encodings (all ASCII-compatible). Refused: UTF-16 and the
/// multi-byte legacy encodings (Shift_JIS, GBK, Big5 …), whose second bytes can equal an ASCII
/// delimiter. `iso-8859-1` and `latin1` give windows-1252, a superset of ISO-8859-1.
pub fn encoding_for(label: &str) -> Option<&'static Encoding> {
    Encoding::for_label(label.trim().as_bytes())
        .filter(|encoding| *encoding == UTF_8 || encoding.is_single_byte())
}

/// Decodes CSV bytes into a table of text columns named by the header row. `origin` names the
/// file in errors.
///
/// Every column is `Dictionary(Int32, Utf8)` with distinct values and no nulls: an empty field
/// is "", and text is kept as written (`0114` stays `0114`, no trimming; header names are trimmed
/// of surrounding whitespace). Each row's number is the line where its record starts (header =
/// line 1 when it is the first line). Quoted fields may hold delimiters, doubled quotes and line
/// breaks; lines end in LF, CRLF or CR; empty lines are skipped wherever they are. A leading
/// UTF-8 byte order mark is dropped and makes the file UTF-8 whatever `options.encoding` says.
///
/// Errors: bytes that are not valid in the encoding (with the line of the first bad byte), a
/// record with another number of fields than the header (ragged), duplicate or empty header
/// names, a UTF-16 file, a file without records.
pub fn decode(bytes: &[u8], origin: &str, options: &CsvOptions) -> Result<SourceTable, CsvError> {
    let (bytes, encoding) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        (rest, UTF_8)
    } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(CsvError::Utf16 {
            origin: origin.to_owned(),
        });
    } else {
        (bytes, options.encoding)
    };
    let mut records = Records::new(bytes, options);
    let empty = || CsvError::Empty {
        origin: origin.to_owned(),
    };
    let first = records.next().ok_or_else(empty)?;
    let cx = Context {
        bytes,
        encoding,
        origin,
    };
    let mut names = Vec::with_capacity(first.len);
    let mut columns: Vec<Column> = Vec::with_capacity(first.len);
    let mut numbers = Vec::new();
    if options.header {
        for (i, field) in records.fields().enumerate() {
            let name = decode_text(field, encoding)
                .ok_or_else(|| cx.encoding_error(&first))?
                .trim()
                .to_owned();
            if name.is_empty() {
                return Err(CsvError::EmptyName {
                    origin: origin.to_owned(),
                    column: i + 1,
                });
            }
            if let Some(earlier) = names.iter().position(|n| *n == name) {
                return Err(CsvError::DuplicateName {
                    origin: origin.to_owned(),
                    name,
                    first: earlier + 1,
                    second: i + 1,
                });
            }
            names.push(name);
            columns.push(Column::default());
        }
    } else {
        names.extend((1..=first.len).map(|i| format!("column{i}")));
        columns.resize_with(first.len, Column::default);
        add_record(&mut columns, &records, &first, &cx)?;
        numbers.push(first.line);
    }
    let expected = first.len;
    while let Some(record) = records.next() {
        if record.len != expected {
            return Err(CsvError::Ragged {
                origin: origin.to_owned(),
                line: record.line,
                found: record.len,
                expected,
                header: options.header,
            });
        }
        add_record(&mut columns, &records, &record, &cx)?;
        numbers.push(record.line);
        if numbers.len() == RESERVE_AFTER {
            // Growing by doubling would leave up to twice the keys' memory allocated; the first
            // records predict the rest well enough for survey exports.
            let per_record = record.end.div_ceil(numbers.len()).max(1);
            let more = (bytes.len() - record.end) / per_record + RESERVE_AFTER;
            numbers.reserve(more);
            columns.iter_mut().for_each(|c| c.keys.reserve(more));
        }
    }

    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, column) in names.into_iter().zip(columns) {
        let array = column.finish().ok_or_else(|| CsvError::TooLarge {
            origin: origin.to_owned(),
            column: name.clone(),
        })?;
        fields.push(Field::new(name, text_type(), false));
        arrays.push(Arc::new(array));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new_with_options(
        schema,
        arrays,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(numbers.len())),
    )
    .expect("every column has one key per record and the schema was built from the columns");
    Ok(
        SourceTable::from_rows(batch, numbers, SourceMeta::default())
            .expect("one row number per record and only Dictionary(Int32, Utf8) columns"),
    )
}

/// The number of records after which the key vectors are sized for the whole file.
const RESERVE_AFTER: usize = 1024;

/// What error messages need to know about the input.
struct Context<'a> {
    bytes: &'a [u8],
    encoding: &'static Encoding,
    origin: &'a str,
}

impl Context<'_> {
    /// The error for `record`, which has a byte that is not valid in the encoding, naming the
    /// line of the first such byte (a quoted field may span lines).
    fn encoding_error(&self, record: &Record) -> CsvError {
        let span = &self.bytes[record.start..record.end];
        let mut decoder = self.encoding.new_decoder_without_bom_handling();
        let mut text = String::with_capacity(
            decoder
                .max_utf8_buffer_length_without_replacement(span.len())
                .unwrap_or(span.len() * 3),
        );
        let bad = match decoder.decode_to_string_without_replacement(span, &mut text, true) {
            (DecoderResult::Malformed(length, after), read) => {
                read - after as usize - length as usize
            }
            // Not reached: the caller found a field of this record that does not decode.
            _ => 0,
        };
        CsvError::Encoding {
            origin: self.origin.to_owned(),
            line: record.line + memchr::memchr_iter(b'\n', &span[..bad]).count() as u64,
            encoding: self.encoding.name(),
        }
    }
}

/// Interns each field of `record` (the one `records` read last) in its column.
fn add_record(
    columns: &mut [Column],
    records: &Records<'_>,
    record: &Record,
    cx: &Context<'_>,
) -> Result<(), CsvError> {
    for (column, field) in columns.iter_mut().zip(records.fields()) {
        column
            .push(field, cx.encoding)
            .map_err(|NotDecodable| cx.encoding_error(record))?;
    }
    Ok(())
}

/// `raw` as UTF-8 text, or `None` if it is not valid in `encoding`. Never replaces a byte with
/// U+FFFD: two different raw values must stay two different dictionary values.
fn decode_text<'a>(raw: &'a [u8], encoding: &'static Encoding) -> Option<Cow<'a, str>> {
    if encoding == UTF_8 {
        std::str::from_utf8(raw).ok().map(Cow::Borrowed)
    } else {
        encoding.decode_without_bom_handling_and_without_replacement(raw)
    }
}

/// Where one record is: its line, its byte span in the input and its number of fields (which
/// [`Records::fields`] hands out until the next record is read).
#[derive(Debug, Clone, Copy)]
struct Record {
    line: u64,
    start: usize,
    end: usize,
    len: usize,
}

/// The records of the input, one at a time, with their fields unquoted into a reused buffer.
struct Records<'a> {
    input: &'a [u8],
    pos: usize,
    reader: Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
    /// The bytes and field ends of the record read last.
    used: (usize, usize),
}

impl<'a> Records<'a> {
    fn new(input: &'a [u8], options: &CsvOptions) -> Self {
        let reader = ReaderBuilder::new()
            .delimiter(options.delimiter)
            .quote(options.quote)
            .build();
        Self {
            input,
            pos: 0,
            reader,
            output: vec![0; 64 * 1024],
            ends: vec![0; 64],
            used: (0, 0),
        }
    }

    /// Reads the next record; `None` at the end of the input.
    fn next(&mut self) -> Option<Record> {
        let (begin, line_before) = (self.pos, self.reader.line());
        let (mut nout, mut nends) = (0, 0);
        loop {
            let (result, nin, out, end) = self.reader.read_record(
                &self.input[self.pos..],
                &mut self.output[nout..],
                &mut self.ends[nends..],
            );
            self.pos += nin;
            nout += out;
            nends += end;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => {
                    let len = self.output.len();
                    self.output.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.ends.len();
                    self.ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return None,
            }
        }
        self.used = (nout, nends);
        // csv-core skips the line ends (and empty lines) before a record as part of reading it.
        let skipped = self.input[begin..self.pos]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let newlines = self.input[begin..begin + skipped]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Some(Record {
            line: line_before + newlines as u64,
            start: begin + skipped,
            end: self.pos,
            len: nends,
        })
    }

    /// The unquoted fields of the record read last.
    fn fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let (nout, nends) = self.used;
        let output = &self.output[..nout];
        let mut start = 0;
        self.ends[..nends].iter().map(move |&end| {
            let field = &output[start..end];
            start = end;
            field
        })
    }
}

/// One text column being built: dictionary keys per row and the distinct values, decoded once.
#[derive(Default)]
struct Column {
    /// Raw bytes of each distinct value → its key.
    index: HashMap<Box<[u8]>, i32, BuildHasherDefault<FxHasher>>,
    keys: Vec<i32>,
    /// The distinct values as UTF-8, in key order.
    values: Vec<u8>,
    offsets: Vec<i64>,
    /// The raw bytes and key of the previous row's value: sorted exports repeat codes row after
    /// row, and a comparison is cheaper than a hash lookup.
    last: Vec<u8>,
    last_key: i32,
}

impl Column {
    /// Appends the key of `raw`, decoding it from `encoding` if it is new.
    #[inline]
    fn push(&mut self, raw: &[u8], encoding: &'static Encoding) -> Result<(), NotDecodable> {
        if !self.keys.is_empty() && raw == self.last.as_slice() {
            self.keys.push(self.last_key);
            return Ok(());
        }
        let key = match self.index.get(raw) {
            Some(&key) => key,
            None => {
                if self.offsets.is_empty() {
                    self.offsets.push(0);
                }
                let key = (self.offsets.len() - 1) as i32;
                self.values
                    .extend_from_slice(decode_text(raw, encoding).ok_or(NotDecodable)?.as_bytes());
                self.offsets.push(self.values.len() as i64);
                self.index.insert(raw.into(), key);
                key
            }
        };
        self.keys.push(key);
        self.last.clear();
        self.last.extend_from_slice(raw);
        self.last_key = key;
        Ok(())
    }

    /// The column as a dictionary array; `None` if its distinct values do not fit in one
    /// `Utf8` array (2 GiB) or its keys in `Int32`.
    fn finish(self) -> Option<DictionaryArray<Int32Type>> {
        let mut offsets = self.offsets;
        if offsets.is_empty() {
            offsets.push(0);
        }
        let offsets: Vec<i32> = offsets
            .into_iter()
            .map(i32::try_from)
            .collect::<Result<_, _>>()
            .ok()?;
        if offsets.len() > i32::MAX as usize {
            return None;
        }
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
struct NotDecodable;

/// FxHash (rustc's hasher): a multiply and a rotate per word. The keys are our own file's field
/// values, so we do not need protection against chosen collisions, and SipHash would cost more
/// than the rest of the per-cell work.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Parses a number as Swedish exports write it: `decimal` is its decimal separator (`,` or `.`),
/// surrounding whitespace is ignored, a leading `+`, `-` or `−` (U+2212) gives the sign, and
/// digits may be grouped by three with a space, no-break space (U+00A0) or narrow no-break space
/// (U+202F): `"1 234,5"`, `" -0,25 "`, `"+3"`, `"1.5e3"` (with `.`). `None` for anything else —
/// empty text, markers like `..` or `-`, the other separator (`1.5` when `decimal` is `,`, since
/// a Swedish `1.234` may be a thousands separator), badly grouped digits, `inf`/`NaN`.
pub fn parse_number(text: &str, decimal: char) -> Option<f64> {
    let mut chars = text.trim().chars().peekable();
    let mut out = String::with_capacity(text.len());
    match chars.peek() {
        Some('+') => {
            chars.next();
        }
        Some('-' | '\u{2212}') => {
            chars.next();
            out.push('-');
        }
        _ => {}
    }
    // Integer digits, with group separators only between groups of three.
    let (mut digits, mut group, mut grouped) = (0usize, 0usize, false);
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            out.push(c);
            digits += 1;
            group += 1;
        } else if matches!(c, ' ' | '\u{a0}' | '\u{202f}') {
            if group == 0 || group > 3 || (grouped && group != 3) {
                return None;
            }
            grouped = true;
            group = 0;
        } else {
            break;
        }
        chars.next();
    }
    if grouped && group != 3 {
        return None;
    }
    if chars.peek() == Some(&decimal) {
        chars.next();
        out.push('.');
        while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
            out.push(c);
            digits += 1;
            chars.next();
        }
    }
    if digits == 0 {
        return None;
    }
    if let Some(&e @ ('e' | 'E')) = chars.peek() {
        chars.next();
        out.push(e);
        if let Some(&sign @ ('+' | '-')) = chars.peek() {
            chars.next();
            out.push(sign);
        }
        let before = out.len();
        while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
            out.push(c);
            chars.next();
        }
        if out.len() == before {
            return None;
        }
    }
    if chars.next().is_some() {
        return None;
    }
    out.parse().ok()
}
