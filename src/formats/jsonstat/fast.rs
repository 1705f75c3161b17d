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
use crate::formats::decimal;

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
                    let (number, end) = decimal::number(bytes, pos)?;
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
