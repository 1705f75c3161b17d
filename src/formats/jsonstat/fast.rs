//! The fast path for the common big file, a top-level object whose `value` is an array: that
//! array is parsed here, byte by byte, at several times serde_json's speed; every other member
//! goes through the serde seeds of `seeds.rs`. Anything unusual (invalid JSON, a shape the seeds
//! refuse) gives `None`, and the caller reads the document again through serde alone, which
//! then reports the problem with its line and column.
//!
//! Owns: the walk over a top-level object and the byte-level `value` array and number parsers.
//! Must not: report errors (serde does, on the second pass) or check the cube (`cube.rs` does).

use std::borrow::Cow;

use arrow_buffer::NullBuffer;
use serde::de::{DeserializeSeed, IgnoredAny};

use super::max_values;
use super::raw::{Interner, RawDataset, RawValues};
use super::seeds::{Member, expected_cells, number_in};

pub(super) fn read(bytes: &[u8]) -> Option<RawDataset> {
    let max_values = max_values(bytes);
    let mut raw = RawDataset::default();
    let mut pos = skip_space(bytes, 0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos = skip_space(bytes, pos + 1);
    if bytes.get(pos) == Some(&b'}') {
        pos += 1;
    } else {
        loop {
            let (key, next) = string(bytes, pos)?;
            pos = skip_space(bytes, next);
            if bytes.get(pos) != Some(&b':') {
                return None;
            }
            pos = skip_space(bytes, pos + 1);
            if key == "value" && bytes.get(pos) == Some(&b'[') {
                let hint = expected_cells(&raw).min(max_values);
                let (values, end) = value_array(bytes, pos, hint, &mut raw.markers)?;
                raw.value = Some(values);
                pos = end;
            } else {
                // Find where the member ends, then read just that slice with the seeds.
                let mut stream =
                    serde_json::Deserializer::from_slice(&bytes[pos..]).into_iter::<IgnoredAny>();
                stream.next()?.ok()?;
                let end = pos + stream.byte_offset();
                let mut de = serde_json::Deserializer::from_slice(&bytes[pos..end]);
                let member = Member {
                    raw: &mut raw,
                    key: &key,
                    top: true,
                    max_values,
                };
                member.deserialize(&mut de).ok()?;
                pos = end;
            }
            pos = skip_space(bytes, pos);
            match bytes.get(pos)? {
                b',' => pos = skip_space(bytes, pos + 1),
                b'}' => {
                    pos += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_space(bytes, pos) == bytes.len()).then_some(raw)
}

fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// The JSON string starting at `bytes[pos]` (a `"`), unescaped, and the position after it.
fn string(bytes: &[u8], pos: usize) -> Option<(Cow<'_, str>, usize)> {
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let mut end = pos + 1;
    let mut escaped = false;
    loop {
        // A payload cut inside a string (even right after a `\\`) is no string: `None`, and
        // serde then says where the file ends.
        end += memchr::memchr2(b'"', b'\\', bytes.get(end..)?)?;
        if bytes[end] == b'"' {
            break;
        }
        escaped = true;
        end += 2;
    }
    let text = &bytes[pos + 1..end];
    let text = if escaped {
        Cow::Owned(serde_json::from_slice::<String>(&bytes[pos..=end]).ok()?)
    } else if text.iter().any(|&b| b < 0x20) {
        // JSON forbids raw control characters in strings; let serde say so.
        return None;
    } else {
        Cow::Borrowed(std::str::from_utf8(text).ok()?)
    };
    Some((text, end + 1))
}

/// A dense `value` array starting at `bytes[pos]` (a `[`), and the position after its `]`.
fn value_array(
    bytes: &[u8],
    mut pos: usize,
    hint: usize,
    markers: &mut Interner,
) -> Option<(RawValues, usize)> {
    let mut values = Vec::with_capacity(hint);
    let mut valid = Validity::with_capacity(hint);
    let mut marked = Vec::new();
    pos = skip_space(bytes, pos + 1);
    if bytes.get(pos) != Some(&b']') {
        loop {
            match *bytes.get(pos)? {
                b'n' => {
                    if bytes.get(pos..pos + 4)? != b"null" {
                        return None;
                    }
                    pos += 4;
                    values.push(0.0);
                    valid.push(false);
                }
                b'"' => {
                    let (text, end) = string(bytes, pos)?;
                    pos = end;
                    match number_in(&text) {
                        Some(number) => {
                            values.push(number);
                            valid.push(true);
                        }
                        None => {
                            if !text.is_empty() {
                                marked.push((values.len() as u64, markers.intern(&text)));
                            }
                            values.push(0.0);
                            valid.push(false);
                        }
                    }
                }
                _ => {
                    let (number, end) = number(bytes, pos)?;
                    pos = end;
                    values.push(number);
                    valid.push(true);
                }
            }
            pos = skip_space(bytes, pos);
            match *bytes.get(pos)? {
                b',' => pos = skip_space(bytes, pos + 1),
                b']' => break,
                _ => return None,
            }
        }
    }
    let values = RawValues::Dense {
        values,
        nulls: valid.finish(),
        markers: marked,
    };
    Some((values, pos + 1))
}

/// A validity bitmap built a 64-bit word at a time: a shift per value instead of
/// `NullBufferBuilder`'s bounds-checked append per bit.
struct Validity {
    words: Vec<u64>,
    word: u64,
    len: usize,
    nulls: usize,
}

impl Validity {
    fn with_capacity(bits: usize) -> Self {
        let words = Vec::with_capacity(bits.div_ceil(64));
        Self {
            words,
            word: 0,
            len: 0,
            nulls: 0,
        }
    }

    #[inline]
    fn push(&mut self, valid: bool) {
        self.word |= u64::from(valid) << (self.len % 64);
        self.nulls += usize::from(!valid);
        self.len += 1;
        if self.len.is_multiple_of(64) {
            // Arrow bitmaps are little-endian bit order, byte by byte.
            self.words.push(self.word.to_le());
            self.word = 0;
        }
    }

    fn finish(mut self) -> Option<NullBuffer> {
        if self.nulls == 0 {
            return None;
        }
        if !self.len.is_multiple_of(64) {
            self.words.push(self.word.to_le());
        }
        let bits = arrow_buffer::BooleanBuffer::new(
            arrow_buffer::Buffer::from_vec(self.words),
            0,
            self.len,
        );
        Some(NullBuffer::new(bits))
    }
}

/// Exact powers of ten as f64 (10^22 is the last one a double holds exactly).
const POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The JSON number starting at `bytes[start]`, and the position after it.
fn number(bytes: &[u8], start: usize) -> Option<(f64, usize)> {
    let digits_from = |mut pos: usize, mantissa: &mut u64| {
        while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
            *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            pos += 1;
        }
        pos
    };
    let negative = bytes.get(start) == Some(&b'-');
    let int_start = start + usize::from(negative);
    let mut mantissa = 0u64;
    let mut pos = digits_from(int_start, &mut mantissa);
    let int_digits = pos - int_start;
    if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
        return None;
    }
    let mut fraction_digits = 0;
    if bytes.get(pos) == Some(&b'.') {
        let fraction_start = pos + 1;
        pos = digits_from(fraction_start, &mut mantissa);
        fraction_digits = pos - fraction_start;
        if fraction_digits == 0 {
            return None;
        }
    }
    let mut exponent = false;
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        let exponent_start = pos;
        pos = digits_from(exponent_start, &mut 0);
        if pos == exponent_start {
            return None;
        }
        exponent = true;
    }
    // Clinger's fast path: a mantissa a double holds exactly, divided by an exact power of
    // ten, is correctly rounded. Longer numbers and exponents go to the standard parser.
    if !exponent
        && int_digits + fraction_digits <= 19
        && mantissa <= 1 << 53
        && fraction_digits < POWERS_OF_TEN.len()
    {
        // Integers skip the division: it costs more than the rest of the parse.
        let value = match fraction_digits {
            // Through i64: one instruction on x86-64, where u64 → f64 takes a branch.
            0 => mantissa as i64 as f64,
            n => mantissa as i64 as f64 / POWERS_OF_TEN[n],
        };
        return Some((if negative { -value } else { value }, pos));
    }
    let text = std::str::from_utf8(&bytes[start..pos]).ok()?;
    // `1e999` parses as infinity: no figure, so serde's path refuses it with its place.
    let value: f64 = text.parse().ok()?;
    Some((value.is_finite().then_some(value)?, pos))
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;

    use crate::formats::jsonstat::cube::build;
    use crate::formats::jsonstat::testing::*;
    use crate::formats::jsonstat::{fast, pick, read};
    use crate::formats::{DecodeLimits, SourceTable};

    /// The cube and meta a document gives through the fast path and through serde alone.
    fn both_paths(json: &str) -> (Option<SourceTable>, SourceTable) {
        let fast = fast::read(json.as_bytes()).map(|raw| {
            build(pick(raw, "fast").unwrap(), "fast", &DecodeLimits::default()).unwrap()
        });
        let slow = build(
            pick(read(json.as_bytes()).unwrap(), "slow").unwrap(),
            "slow",
            &DecodeLimits::default(),
        )
        .unwrap();
        (fast, slow)
    }

    #[test]
    fn a_payload_cut_right_after_a_backslash_is_refused_not_a_panic() {
        assert!(fast::read(b"{\"\\").is_none());
        insta::assert_snapshot!(error("{\"\\"), @"test.json: the JSON ends early at line 1, column 3; the download was cut off: fetch it again: EOF while parsing a string at line 1 column 3");
    }

    #[test]
    fn a_value_beyond_a_double_is_refused_not_infinity() {
        let json = r#"{"version":"2.0","class":"dataset","id":["a"],"size":[2],
            "dimension":{"a":{"category":{"index":["x","y"]}}},"value":[1,1e999]}"#;
        assert!(fast::read(json.as_bytes()).is_none());
        insta::assert_snapshot!(error(json), @"test.json: not valid JSON at line 2, column 79; the file is truncated or not JSON-stat: re-download it and check what the source returned: number out of range at line 2 column 79");
    }

    #[test]
    fn fast_path_reads_what_serde_reads() {
        let documents = [
            two_by_three("[1, 2.5, null, -4, 5e2, 6]", r#", "status": {"2": ".."}"#),
            two_by_three(
                r#"[ "1.5" , "\u002e\u002e", "a\"b", "", -0.125, 1E-3 ]"#,
                r#", "label": "x""#,
            ),
            // Not 123456789012345678901234: serde_json without `float_roundtrip` rounds it one
            // unit in the last place off; the fast path rounds correctly (see the property below).
            two_by_three(
                "[0, 12345678901234567, 0.1, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993]",
                "",
            ),
            two_by_three(r#"{"1": 2}"#, ""),
            two_by_three(
                "[1,2,3,4,5,6]",
                r#", "status": ["a"], "extra": {"x": [1, {"y": 2}]}"#,
            ),
        ];
        for json in &documents {
            let (fast, slow) = both_paths(json);
            let fast = fast.expect("the fast path takes a well-formed document");
            assert_eq!(cube(&fast).dimensions, cube(&slow).dimensions, "{json}");
            assert_eq!(values(&fast), values(&slow), "{json}");
            assert_eq!(cube(&fast).status, cube(&slow).status, "{json}");
            assert_eq!(fast.meta, slow.meta, "{json}");
        }
    }

    #[test]
    fn fast_path_reads_escaped_markers() {
        let table = decoded(&two_by_three(r#"["\u002e\u002e", "a\"b", 3, 4, 5, 6]"#, ""));
        assert_eq!(
            markers(&table)[..2],
            [Some("..".to_string()), Some("a\"b".to_string())]
        );
    }

    #[test]
    fn fast_path_leaves_invalid_json_to_serde() {
        for bad in [
            "[01]",
            "[1.]",
            "[.5]",
            "[-]",
            "[1 2]",
            "[nul]",
            "[1,]",
            "[\"a\u{1}\"]",
            "[1e]",
        ] {
            let json = two_by_three(bad, "");
            assert!(fast::read(json.as_bytes()).is_none(), "{bad}");
            assert!(read(json.as_bytes()).is_err(), "{bad}");
        }
        assert!(fast::read(br#"{"value": [1]} x"#).is_none());
    }

    proptest::proptest! {
        #[test]
        fn fast_number_parser_agrees_with_the_standard_parser(
            negative in proptest::bool::ANY,
            int in "0|[1-9][0-9]{0,22}",
            fraction in proptest::option::of("[0-9]{1,22}"),
            exponent in proptest::option::of(-320i32..320),
        ) {
            let mut text = format!("{}{int}", if negative { "-" } else { "" });
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            if let Some(exponent) = exponent {
                text.push_str(&format!("e{exponent}"));
            }
            let standard = text.parse::<f64>().unwrap();
            match fast::number(text.as_bytes(), 0) {
                Some((value, end)) => {
                    proptest::prop_assert_eq!(end, text.len());
                    proptest::prop_assert_eq!(value.to_bits(), standard.to_bits());
                }
                // Beyond a double: no figure, refused (the standard parser says infinity).
                None => proptest::prop_assert!(standard.is_infinite(), "{text}"),
            }
        }
    }

    #[test]
    fn fast_path_validity_spans_many_words() {
        let cells: Vec<Option<i32>> = (0..200)
            .map(|i| (i % 7 != 3 && i != 64).then_some(i))
            .collect();
        let json = written(&[2, 100], &cells, &vec![None; 200], false);
        assert!(fast::read(json.as_bytes()).is_some());
        let expected: Vec<Option<f64>> = cells
            .iter()
            .map(|v| v.map(|v| f64::from(v) / 4.0))
            .collect();
        assert_eq!(values(&decoded(&json)), expected);
        let all_valid = written(&[1, 130], &vec![Some(1); 130], &vec![None; 130], false);
        assert_eq!(cube(&decoded(&all_valid)).values.null_count(), 0);
    }
}
