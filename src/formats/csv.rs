//! CSV: delimited text exports (survey answer files, Excel "CSV", PxWeb CSV) → [`SourceTable`].
//!
//! Owns: splitting records (csv-core's DFA over the raw bytes), the file's text encoding, header
//! names, and the line number where each record starts.
//! Must not: read files, parse numbers or decide what an empty field means — every column is text
//! and "" stays "" (the harmoniser decides, and reads numbers with [`crate::numbers`] and
//! [`CsvOptions::decimal`]).
//!
//! Speed: delimiter, quote and line ends are ASCII and every encoding we accept is ASCII-compatible,
//! so records are split on the raw bytes. Each field's raw bytes are interned per column (by
//! `rows.rs`) and only distinct values are decoded to UTF-8: a 2-million-row survey export has a
//! few thousand distinct values, so decoding costs nothing and each cell costs a comparison or a
//! hash lookup.

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use encoding_rs::{DecoderResult, Encoding, UTF_8};

use super::DecodeLimits;
use super::rows::{self, Column, NotDecodable, decode_text};
use super::table::SourceTable;

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
    /// stages read numbers with [`NumberFormat::export`](crate::numbers::NumberFormat::export).
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
    #[error(
        "{origin}: the table has more cells than max_table_cells = {limit} allows ({columns} \
         columns, and line {line} starts data row {row}); if the table really is that big, raise \
         `max_table_cells` in [source]"
    )]
    TooManyCells {
        origin: String,
        line: u64,
        row: u64,
        columns: usize,
        limit: u64,
    },
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
/// names, a UTF-16 file, a file without records, more data rows × columns than
/// `limits.max_table_cells` (counted as records arrive, so the file is not scanned first).
pub fn decode(
    bytes: &[u8],
    origin: &str,
    options: &CsvOptions,
    limits: &DecodeLimits,
) -> Result<SourceTable, CsvError> {
    let (bytes, encoding) = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        (rest, UTF_8)
    } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(CsvError::Utf16 {
            origin: origin.to_owned(),
        });
    } else {
        (bytes, options.encoding)
    };
    let quoted = memchr::memchr(options.quote, bytes).is_some();
    decode_split(bytes, origin, options, limits, encoding, quoted)
}

/// [`decode`] after the byte order mark, splitting with csv-core if `quoted`, else with the
/// quote-free scan (tests force csv-core on quote-free input to compare the two).
fn decode_split(
    bytes: &[u8],
    origin: &str,
    options: &CsvOptions,
    limits: &DecodeLimits,
    encoding: &'static Encoding,
    quoted: bool,
) -> Result<SourceTable, CsvError> {
    let mut records = Records::new(bytes, options, quoted);
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
    // A record has at least one field; one division here saves a multiplication per record.
    let max_rows = limits.max_table_cells / first.len.max(1) as u64;
    let too_many = |record: &Record| CsvError::TooManyCells {
        origin: origin.to_owned(),
        line: record.line,
        row: max_rows + 1,
        columns: first.len,
        limit: limits.max_table_cells,
    };
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
        if max_rows == 0 {
            return Err(too_many(&first));
        }
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
        if numbers.len() as u64 == max_rows {
            return Err(too_many(&record));
        }
        add_record(&mut columns, &records, &record, &cx)?;
        numbers.push(record.line);
        if numbers.len() == RESERVE_AFTER {
            // Growing by doubling would leave up to twice the keys' memory allocated; the first
            // records predict the rest well enough for survey exports.
            let per_record = record.end.div_ceil(numbers.len()).max(1);
            let more = (bytes.len() - record.end) / per_record + RESERVE_AFTER;
            numbers.reserve(more);
            columns.iter_mut().for_each(|c| c.reserve(more));
        }
    }

    rows::finish(names, columns, numbers).map_err(|rows::TooLarge { column }| CsvError::TooLarge {
        origin: origin.to_owned(),
        column,
    })
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

/// Where one record is: its line, its byte span in the input and its number of fields (which
/// [`Records::fields`] hands out until the next record is read).
#[derive(Debug, Clone, Copy)]
struct Record {
    line: u64,
    start: usize,
    end: usize,
    len: usize,
}

/// The records of the input, one at a time.
///
/// Two ways to split, with the same result: csv-core's DFA, which unquotes fields into a buffer,
/// and — when the input has no quote character at all, as most survey exports — a word-at-a-time
/// scan for delimiters and line ends that hands out slices of the input itself, about twice as fast.
struct Records<'a> {
    input: &'a [u8],
    pos: usize,
    split: Split<'a>,
    /// Field ends of the record read last: in `output` (quoted) or in `input` (plain).
    ends: Vec<usize>,
    /// Start of the record read last (plain).
    start: usize,
}

enum Split<'a> {
    Quoted {
        reader: Box<Reader>,
        output: Vec<u8>,
    },
    Plain {
        splits: Boundaries<'a>,
        delimiter: u8,
        line: u64,
    },
}

impl<'a> Records<'a> {
    fn new(input: &'a [u8], options: &CsvOptions, quoted: bool) -> Self {
        let split = if quoted {
            let reader = ReaderBuilder::new()
                .delimiter(options.delimiter)
                .quote(options.quote)
                .build();
            let reader = Box::new(reader);
            Split::Quoted {
                reader,
                output: vec![0; 64 * 1024],
            }
        } else {
            Split::Plain {
                splits: Boundaries::new(input, options.delimiter),
                delimiter: options.delimiter,
                line: 1,
            }
        };
        Self {
            input,
            pos: 0,
            split,
            ends: vec![0; 64],
            start: 0,
        }
    }

    /// Reads the next record; `None` at the end of the input.
    fn next(&mut self) -> Option<Record> {
        match &mut self.split {
            Split::Quoted { reader, output } => {
                let (begin, line_before) = (self.pos, reader.line());
                let (mut nout, mut nends) = (0, 0);
                self.ends.resize(self.ends.capacity().max(64), 0);
                loop {
                    let (result, nin, out, end) = reader.read_record(
                        &self.input[self.pos..],
                        &mut output[nout..],
                        &mut self.ends[nends..],
                    );
                    self.pos += nin;
                    nout += out;
                    nends += end;
                    match result {
                        ReadRecordResult::InputEmpty => {}
                        ReadRecordResult::OutputFull => output.resize(output.len() * 2, 0),
                        ReadRecordResult::OutputEndsFull => {
                            self.ends.resize(self.ends.len() * 2, 0)
                        }
                        ReadRecordResult::Record => break,
                        ReadRecordResult::End => return None,
                    }
                }
                self.ends.truncate(nends);
                // csv-core skips the line ends (and empty lines) before a record as part of it.
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
            Split::Plain {
                splits,
                delimiter,
                line,
            } => {
                let mut start = self.pos;
                self.ends.clear();
                loop {
                    let Some(at) = splits.next() else {
                        if start == self.input.len() {
                            return None;
                        }
                        // The last record has no line end.
                        self.ends.push(self.input.len());
                        self.pos = self.input.len();
                        self.start = start;
                        return Some(Record {
                            line: *line,
                            start,
                            end: self.pos,
                            len: self.ends.len(),
                        });
                    };
                    let byte = self.input[at];
                    if byte == *delimiter {
                        self.ends.push(at);
                        continue;
                    }
                    if self.ends.is_empty() && at == start {
                        // An empty line, or the LF of a CRLF: csv-core skips these too.
                        *line += (byte == b'\n') as u64;
                        start = at + 1;
                        continue;
                    }
                    self.ends.push(at);
                    let record = Record {
                        line: *line,
                        start,
                        end: at,
                        len: self.ends.len(),
                    };
                    *line += (byte == b'\n') as u64;
                    self.pos = at + 1;
                    self.start = start;
                    return Some(record);
                }
            }
        }
    }

    /// The unquoted fields of the record read last.
    fn fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        // Quoted: fields are back to back in `output`. Plain: one delimiter between them.
        let (bytes, mut start, gap) = match &self.split {
            Split::Quoted { output, .. } => (output.as_slice(), 0, 0),
            Split::Plain { .. } => (self.input, self.start, 1),
        };
        self.ends.iter().map(move |&end| {
            let field = &bytes[start..end];
            start = end + gap;
            field
        })
    }
}

/// The positions of the delimiter, CR and LF bytes of a quote-free input, in order: a SWAR scan
/// of eight bytes at a time, so each position costs a few instructions rather than a search.
struct Boundaries<'a> {
    input: &'a [u8],
    /// Offset of the word `mask` describes, and of the next word to load.
    base: usize,
    next: usize,
    /// 0x80 in each byte of the current word that is a boundary not yet handed out.
    mask: u64,
    delimiter: u64,
}

impl<'a> Boundaries<'a> {
    fn new(input: &'a [u8], delimiter: u8) -> Self {
        Self {
            input,
            base: 0,
            next: 0,
            mask: 0,
            delimiter: broadcast(delimiter),
        }
    }
}

impl Iterator for Boundaries<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            let rest = self
                .input
                .get(self.next..)
                .filter(|rest| !rest.is_empty())?;
            let (word, valid) = if let Some(word) = rest.first_chunk::<8>() {
                (u64::from_le_bytes(*word), u64::MAX)
            } else {
                let mut word = [0u8; 8];
                word[..rest.len()].copy_from_slice(rest);
                (u64::from_le_bytes(word), (1u64 << (8 * rest.len())) - 1)
            };
            self.mask = (zero_bytes(word ^ self.delimiter)
                | zero_bytes(word ^ broadcast(b'\r'))
                | zero_bytes(word ^ broadcast(b'\n')))
                & valid;
            self.base = self.next;
            self.next += 8;
        }
        let at = self.base + self.mask.trailing_zeros() as usize / 8;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

fn broadcast(byte: u8) -> u64 {
    u64::from(byte) * 0x0101_0101_0101_0101
}

/// 0x80 in each byte of `word` that is zero, and 0 elsewhere (exact: no carries between bytes).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((word & LOW7) + LOW7) | word | LOW7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::rows::testing::{names, rows};
    use crate::formats::table::text_type;
    use arrow_array::Array;
    use proptest::prelude::*;

    fn semicolons() -> CsvOptions {
        CsvOptions {
            delimiter: b';',
            ..CsvOptions::default()
        }
    }

    fn cp1252() -> CsvOptions {
        CsvOptions {
            encoding: encoding_rs::WINDOWS_1252,
            ..semicolons()
        }
    }

    fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|row| row.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn decode_ok(bytes: &[u8], options: &CsvOptions) -> SourceTable {
        decode(bytes, "test.csv", options, &DecodeLimits::default()).unwrap()
    }

    fn err(bytes: &[u8], options: &CsvOptions) -> String {
        decode(bytes, "enkat.csv", options, &DecodeLimits::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn fields_stay_text_with_leading_zeros_and_empty_fields_as_empty_strings() {
        let table = decode_ok(
            b"kommun_kod;andel;antal\n0114;12,5;\n0180;;7\n",
            &semicolons(),
        );
        assert_eq!(names(&table), ["kommun_kod", "andel", "antal"]);
        let (rows, lines) = rows(&table);
        assert_eq!(rows, strings(&[&["0114", "12,5", ""], &["0180", "", "7"]]));
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn dictionary_values_are_distinct_and_shared_by_repeated_fields() {
        let table = decode_ok(b"ar;kon\n2023;K\n2023;M\n2024;K\n2023;K\n", &semicolons());
        let ar = table.categories("ar").unwrap();
        assert_eq!(ar.iter().flatten().collect::<Vec<_>>(), ["2023", "2024"]);
        let kon = table.categories("kon").unwrap();
        assert_eq!(kon.iter().flatten().collect::<Vec<_>>(), ["K", "M"]);
        let column = table.all().batch.column(0).clone();
        assert_eq!(column.data_type(), &text_type());
    }

    #[test]
    fn utf8_byte_order_mark_is_dropped_from_the_first_name() {
        let table = decode_ok(b"\xEF\xBB\xBFkommun;ar\n0114;2023\n", &semicolons());
        assert_eq!(names(&table), ["kommun", "ar"]);
    }

    #[test]
    fn utf8_byte_order_mark_wins_over_a_configured_windows_1252() {
        let table = decode_ok("kommun\nGöteborg\n".as_bytes(), &cp1252());
        assert_eq!(rows(&table).0, strings(&[&["GÃ¶teborg"]]));
        let table = decode_ok("\u{feff}kommun\nGöteborg\n".as_bytes(), &cp1252());
        assert_eq!(rows(&table).0, strings(&[&["Göteborg"]]));
    }

    #[test]
    fn windows_1252_decodes_swedish_letters_and_the_c1_range() {
        // 0x96 is an en dash in windows-1252 (a C1 control in ISO-8859-1 proper); 0x80 = euro.
        let bytes = b"kommun;svar\r\n1480;G\xF6teborg \x96 \xE5\xE4\xF6 \xC5\xC4\xD6\r\n0180;\x80 \x93citat\x94\r\n";
        let (rows, lines) = rows(&decode_ok(bytes, &cp1252()));
        assert_eq!(
            rows,
            strings(&[
                &["1480", "Göteborg – åäö ÅÄÖ"],
                &["0180", "€ \u{201c}citat\u{201d}"]
            ])
        );
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn iso_8859_1_and_cp1252_labels_name_windows_1252() {
        for label in [
            "iso-8859-1",
            "latin1",
            "cp1252",
            "windows-1252",
            " Windows-1252 ",
        ] {
            assert_eq!(
                encoding_for(label),
                Some(encoding_rs::WINDOWS_1252),
                "{label}"
            );
        }
        assert_eq!(encoding_for("utf-8"), Some(UTF_8));
        assert_eq!(encoding_for("utf8"), Some(UTF_8));
        let options = CsvOptions {
            encoding: encoding_for("iso-8859-1").unwrap(),
            ..semicolons()
        };
        let (rows, _) = rows(&decode_ok(b"namn\nV\xE4ster\xE5s\n", &options));
        assert_eq!(rows, strings(&[&["Västerås"]]));
    }

    #[test]
    fn encodings_that_cannot_be_split_on_ascii_bytes_are_refused() {
        for label in [
            "utf-16le",
            "utf-16",
            "shift_jis",
            "gbk",
            "big5",
            "no-such-encoding",
        ] {
            assert_eq!(encoding_for(label), None, "{label}");
        }
    }

    #[test]
    fn quoted_fields_keep_delimiters_doubled_quotes_and_line_breaks() {
        let bytes = b"fraga;svar;n\n\"F1\";\"Ja; ofta\";3\n\"F2\";\"Hon sa \"\"nej\"\"\";4\nF3;\"rad ett\r\nrad tv\xC3\xA5\";5\nF4;\"\";6\n";
        let (rows, lines) = rows(&decode_ok(bytes, &semicolons()));
        assert_eq!(
            rows,
            strings(&[
                &["F1", "Ja; ofta", "3"],
                &["F2", "Hon sa \"nej\"", "4"],
                &["F3", "rad ett\r\nrad två", "5"],
                &["F4", "", "6"],
            ])
        );
        // F4 starts on line 6: the quoted line break in F3 counts.
        assert_eq!(lines, [2, 3, 4, 6]);
    }

    #[test]
    fn another_quote_character_can_be_chosen() {
        let options = CsvOptions {
            quote: b'\'',
            ..semicolons()
        };
        let (rows, _) = rows(&decode_ok(b"a;b\n'x;y';\"z\"\n", &options));
        assert_eq!(rows, strings(&[&["x;y", "\"z\""]]));
    }

    #[test]
    fn without_a_header_columns_are_numbered_and_line_1_is_data() {
        let options = CsvOptions {
            header: false,
            ..semicolons()
        };
        let table = decode_ok(b"0114;2023\n0115;2024\n", &options);
        assert_eq!(names(&table), ["column1", "column2"]);
        let (rows, lines) = rows(&table);
        assert_eq!(rows, strings(&[&["0114", "2023"], &["0115", "2024"]]));
        assert_eq!(lines, [1, 2]);
    }

    #[test]
    fn crlf_lf_cr_and_a_missing_final_line_end_give_the_same_rows() {
        let expected = strings(&[&["1", "2"], &["3", ""]]);
        for bytes in [
            &b"a,b\n1,2\n3,\n"[..],
            b"a,b\r\n1,2\r\n3,\r\n",
            b"a,b\r1,2\r3,",
            b"a,b\n1,2\n3,",
            b"a,b\r\n1,2\r\n3,\r\n\r\n\n\r\n",
            b"a,\"b\"\r\n1,2\r\n3,\r\n\r\n",
        ] {
            let table = decode_ok(bytes, &CsvOptions::default());
            assert_eq!(names(&table), ["a", "b"]);
            let (rows, lines) = rows(&table);
            assert_eq!(rows, expected, "{:?}", String::from_utf8_lossy(bytes));
            // Lines are counted by LF, as csv-core does: a CR-only file is all "line 1".
            let lf = bytes.contains(&b'\n');
            assert_eq!(lines, if lf { [2, 3] } else { [1, 1] });
        }
    }

    #[test]
    fn empty_lines_inside_the_file_are_skipped_but_counted() {
        let (rows, lines) = rows(&decode_ok(b"a;b\n\n1;2\r\n\r\n\r\n3;4\n", &semicolons()));
        assert_eq!(rows, strings(&[&["1", "2"], &["3", "4"]]));
        assert_eq!(lines, [3, 6]);
    }

    #[test]
    fn header_names_are_trimmed() {
        let table = decode_ok(b"\"Observed_events\n\", ar \n1,2\n", &CsvOptions::default());
        assert_eq!(names(&table), ["Observed_events", "ar"]);
    }

    #[test]
    fn a_header_only_file_is_a_table_without_rows() {
        let table = decode_ok(b"kommun;ar\r\n", &semicolons());
        assert_eq!(names(&table), ["kommun", "ar"]);
        assert_eq!(table.num_rows(), 0);
    }

    #[test]
    fn ragged_row_names_its_line_and_both_counts() {
        let bytes = b"kommun;ar;andel\n0114;2023;12,5\n0115;2023\n";
        insta::assert_snapshot!(err(bytes, &semicolons()), @"enkat.csv: line 3 has 2 fields but the header has 3; check `delimiter` in [source] and that fields containing it are quoted");
        let quoted = b"kommun;ar\n\"0114\";\"a\nb\"\n0115;2023;9\n";
        insta::assert_snapshot!(err(quoted, &semicolons()), @"enkat.csv: line 4 has 3 fields but the header has 2; check `delimiter` in [source] and that fields containing it are quoted");
        let options = CsvOptions {
            header: false,
            ..semicolons()
        };
        insta::assert_snapshot!(err(b"1;2\n3\n", &options), @"enkat.csv: line 2 has 1 fields but the first record has 2; check `delimiter` in [source] and that fields containing it are quoted");
    }

    #[test]
    fn invalid_utf8_names_the_line_of_the_first_bad_byte_and_suggests_windows_1252() {
        let bytes = b"kommun;svar\n0114;Ja\n0180;\"rad ett\nG\xF6teborg\"\n0181;\xE5\n";
        insta::assert_snapshot!(err(bytes, &semicolons()), @r#"enkat.csv: line 4 is not valid UTF-8; if the export came from Excel set `encoding = "windows-1252"` in [source]"#);
        insta::assert_snapshot!(err(b"a;b\n1;2\n\n3;\xF6\n", &semicolons()), @r#"enkat.csv: line 4 is not valid UTF-8; if the export came from Excel set `encoding = "windows-1252"` in [source]"#);
        insta::assert_snapshot!(err(b"k\xF6n;b\n1;2\n", &semicolons()), @r#"enkat.csv: line 1 is not valid UTF-8; if the export came from Excel set `encoding = "windows-1252"` in [source]"#);
    }

    #[test]
    fn bytes_a_single_byte_encoding_leaves_undefined_are_an_error() {
        // 0xA5 has no character in ISO-8859-3: replacing it with U+FFFD would merge values.
        let options = CsvOptions {
            encoding: encoding_for("iso-8859-3").unwrap(),
            ..semicolons()
        };
        insta::assert_snapshot!(err(b"a\nx\n\xA5\n", &options), @r#"enkat.csv: line 3 is not valid ISO-8859-3; if the export came from Excel set `encoding = "windows-1252"` in [source]"#);
    }

    #[test]
    fn duplicate_or_empty_header_names_are_named() {
        insta::assert_snapshot!(err(b"kommun;ar;Kommun;ar\n1;2;3;4\n", &semicolons()), @"enkat.csv: the header names column `ar` twice (columns 2 and 4); rename one in the file, or set `header = false` in [source]");
        insta::assert_snapshot!(err(b"kommun; ;ar\n1;2;3\n", &semicolons()), @"enkat.csv: column 2 of the header has no name; name it in the file, or set `header = false` in [source]");
    }

    #[test]
    fn empty_and_utf16_files_are_refused() {
        insta::assert_snapshot!(err(b"", &semicolons()), @"enkat.csv: the file has no records; expected a header row and data rows");
        insta::assert_snapshot!(err(b"\r\n\n", &semicolons()), @"enkat.csv: the file has no records; expected a header row and data rows");
        insta::assert_snapshot!(err(b"\xFF\xFEk\0o\0m\0", &semicolons()), @"enkat.csv: the file is UTF-16 (it starts with a UTF-16 byte order mark); export it as CSV in UTF-8 or windows-1252 instead");
    }

    #[test]
    fn long_fields_and_many_columns_grow_the_buffers() {
        let long = "å".repeat(100_000);
        let header: Vec<String> = (0..300).map(|i| format!("c{i}")).collect();
        let row: Vec<String> = (0..300).map(|i| format!("\"{long}{i}\"")).collect();
        let text = format!("{}\n{}\n", header.join(","), row.join(","));
        let (rows, _) = rows(&decode_ok(text.as_bytes(), &CsvOptions::default()));
        assert_eq!(rows[0].len(), 300);
        assert_eq!(rows[0][299], format!("{long}299"));
    }

    fn limited(
        bytes: &[u8],
        options: &CsvOptions,
        max_table_cells: u64,
    ) -> Result<SourceTable, CsvError> {
        decode(
            bytes,
            "enkat.csv",
            options,
            &DecodeLimits { max_table_cells },
        )
    }

    #[test]
    fn more_cells_than_the_limit_are_refused_at_the_row_that_passes_it() {
        // 3 columns: 3 rows fit 10 cells, the fourth (line 5) does not.
        let text = b"a;b;c\n1;2;3\n4;5;6\n7;8;9\n10;11;12\n";
        insta::assert_snapshot!(limited(text, &semicolons(), 10).unwrap_err(), @"enkat.csv: the table has more cells than max_table_cells = 10 allows (3 columns, and line 5 starts data row 4); if the table really is that big, raise `max_table_cells` in [source]");
        let headless = CsvOptions {
            header: false,
            ..semicolons()
        };
        insta::assert_snapshot!(limited(b"1;2;3\n", &headless, 2).unwrap_err(), @"enkat.csv: the table has more cells than max_table_cells = 2 allows (3 columns, and line 1 starts data row 1); if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn exactly_as_many_cells_as_the_limit_decode() {
        let text = b"a;b\n1;2\n3;4\n5;6\n7;8\n9;10\n";
        assert_eq!(limited(text, &semicolons(), 10).unwrap().num_rows(), 5);
    }

    #[test]
    fn many_distinct_values_each_keep_their_own_key() {
        let mut text = String::from("id;grupp\n");
        for i in 0..20_000 {
            text.push_str(&format!("{i:05};{}\n", i % 3));
        }
        let table = decode_ok(text.as_bytes(), &semicolons());
        assert_eq!(table.categories("id").unwrap().len(), 20_000);
        assert_eq!(table.categories("grupp").unwrap().len(), 3);
        let (rows, lines) = rows(&table);
        assert_eq!(rows[12_345], ["12345", "0"]);
        assert_eq!(lines[12_345], 12_347);
    }

    use crate::fixtures::real as fixture;

    #[test]
    fn real_phe_funnel_inputs_with_byte_order_mark_decode() {
        let Some(bytes) = fixture("PHEindicatormethods/testdata_funnel_prop_inputs.csv") else {
            return;
        };
        let table = decode_ok(&bytes, &CsvOptions::default());
        assert_eq!(
            names(&table),
            ["Area", "numerator", "denominator", "significance"]
        );
        let (rows, lines) = rows(&table);
        assert_eq!(rows.len(), 303);
        assert_eq!(
            rows[0],
            ["New Forest PCT", "35078.4880000", "41980", "High (0.001)"]
        );
        assert_eq!(lines[0], 2);
        assert_eq!(*lines.last().unwrap(), 304);
        assert_eq!(
            crate::numbers::NumberFormat::export('.').parse(&rows[0][1]),
            Some(35078.488)
        );
    }

    #[test]
    fn real_phe_funnel_outputs_with_a_line_break_in_the_header_decode() {
        let Some(bytes) = fixture("PHEindicatormethods/testdata_funnel_ratio_outputs.csv") else {
            return;
        };
        let table = decode_ok(&bytes, &CsvOptions::default());
        let names = names(&table);
        assert_eq!(names.len(), 13);
        assert_eq!(names[0], "Observed_events");
        assert_eq!(names[12], "upper_3s_isr");
        let (rows, lines) = rows(&table);
        assert_eq!(rows.len(), 100);
        assert_eq!(rows[0][0], "1");
        assert_eq!(rows[0][1], "5.571644585");
        // The header spans lines 1 and 2, so the first record is on line 3.
        assert_eq!((lines[0], lines[99]), (3, 102));
    }

    #[test]
    fn real_pxweb_csv_with_one_name_per_line_is_ragged() {
        // PxWeb's CsvSerializer writes each quoted column name on its own line after a comma, so
        // line 2 (`,"Tid"`) has two fields against the one-field "header" on line 1. Reading it
        // needs `header = false` and a pipeline that names the columns; here it must fail clearly.
        let Some(bytes) = fixture("PCAxis.Serializers/TestCsv.csv") else {
            return;
        };
        insta::assert_snapshot!(decode(&bytes, "TestCsv.csv", &CsvOptions::default(), &DecodeLimits::default()).unwrap_err(), @"TestCsv.csv: line 2 has 2 fields but the header has 1; check `delimiter` in [source] and that fields containing it are quoted");
    }

    /// Writes `rows` as CSV, quoting the fields that need it (and, in a one-column file, an
    /// empty field, which would otherwise be an empty line).
    fn write_csv(rows: &[Vec<String>], delimiter: char, crlf: bool, final_end: bool) -> String {
        let mut text = String::new();
        for (i, row) in rows.iter().enumerate() {
            let fields: Vec<String> = row
                .iter()
                .map(|f| {
                    let special = f.contains([delimiter, '"', '\r', '\n']);
                    if special || (f.is_empty() && row.len() == 1) {
                        format!("\"{}\"", f.replace('"', "\"\""))
                    } else {
                        f.clone()
                    }
                })
                .collect();
            text.push_str(&fields.join(&delimiter.to_string()));
            if i + 1 < rows.len() || final_end {
                text.push_str(if crlf { "\r\n" } else { "\n" });
            }
        }
        text
    }

    fn field() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-c0 ;,\"\r\nåä–]{0,6}").unwrap()
    }

    proptest! {
        #[test]
        fn written_fields_decode_to_themselves(
            (columns, data) in (1usize..5).prop_flat_map(|n| {
                (Just(n), prop::collection::vec(prop::collection::vec(field(), n), 0..8))
            }),
            semicolon in any::<bool>(),
            crlf in any::<bool>(),
            final_end in any::<bool>(),
            windows in any::<bool>(),
        ) {
            let header: Vec<String> = (0..columns).map(|i| format!("h{i}")).collect();
            let mut all = vec![header.clone()];
            all.extend(data.iter().cloned());
            let delimiter = if semicolon { ';' } else { ',' };
            let text = write_csv(&all, delimiter, crlf, final_end);
            let (encoding, bytes) = if windows {
                let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
                prop_assert!(!unmappable);
                (encoding_rs::WINDOWS_1252, bytes.into_owned())
            } else {
                (UTF_8, text.clone().into_bytes())
            };
            let options = CsvOptions { delimiter: delimiter as u8, encoding, ..CsvOptions::default() };
            let table = decode(&bytes, "prop.csv", &options, &DecodeLimits::default()).unwrap();
            prop_assert_eq!(names(&table), header);
            let (rows, lines) = rows(&table);
            prop_assert_eq!(&rows, &data);
            // Each record starts one line after the previous one's line breaks.
            let mut line = 2;
            for (row, &number) in data.iter().zip(&lines) {
                prop_assert_eq!(number, line);
                line += 1 + row.iter().map(|f| f.matches('\n').count()).sum::<usize>() as u64;
            }
        }

        #[test]
        fn quote_free_scan_agrees_with_csv_core(
            text in proptest::string::string_regex("[ab0;\r\nö]{0,60}").unwrap(),
            header in any::<bool>(),
        ) {
            let options = CsvOptions { header, ..semicolons() };
            let plain = decode_split(text.as_bytes(), "p.csv", &options, &DecodeLimits::default(), UTF_8, false);
            let core = decode_split(text.as_bytes(), "p.csv", &options, &DecodeLimits::default(), UTF_8, true);
            match (plain, core) {
                (Ok(plain), Ok(core)) => {
                    prop_assert_eq!(names(&plain), names(&core));
                    prop_assert_eq!(rows(&plain), rows(&core));
                }
                (Err(plain), Err(core)) => prop_assert_eq!(plain.to_string(), core.to_string()),
                (plain, core) => prop_assert!(false, "{:?} vs {:?}", plain.map(|t| rows(&t)), core.map(|t| rows(&t))),
            }
        }
    }
}
