//! Which text encoding a PX file is in.
//!
//! Owns: the choice, in this order: strict UTF-8 (PxWebApi writes UTF-8 bytes under
//! `CODEPAGE="iso-8859-1"`, and Statistics Finland under `iso-8859-15`), then the declared
//! `CODEPAGE`, then Windows-1252 for `CHARSET="ANSI"` without `CODEPAGE` (SCB's test files
//! hold a 0x85 "…", which ISO-8859-1 lacks); and the name of what was used, for
//! [`SourceMeta::encoding`](crate::formats::SourceMeta::encoding).
//! Must not: parse keywords beyond `CODEPAGE` and `CHARSET` (`grammar.rs` does).

use std::borrow::Cow;

use encoding_rs::{UTF_8, WINDOWS_1252};

use super::PxError;
use crate::formats::csv::encoding_for;

/// The decoded text and the name of the encoding used (`utf-8`, `iso-8859-1 (declared)`,
/// `windows-1252 (CHARSET=ANSI)`).
pub(super) struct Decoded<'a> {
    pub text: Cow<'a, str>,
    pub encoding: String,
}

/// Decodes `bytes` (a leading UTF-8 byte order mark is dropped and makes the file UTF-8).
pub(super) fn decode<'a>(bytes: &'a [u8], origin: &str) -> Result<Decoded<'a>, PxError> {
    let invalid = |at: usize, encoding: &str| PxError::Encoding {
        origin: origin.to_string(),
        line: line_at(bytes, at),
        encoding: encoding.to_string(),
    };
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok(decoded(Cow::Borrowed(text), "utf-8 (byte order mark)")),
            Err(e) => Err(invalid(e.valid_up_to() + 3, "utf-8 (byte order mark)")),
        };
    }
    let declared = declared(bytes);
    let utf8_error = match std::str::from_utf8(bytes) {
        Ok(text) => {
            let name = match &declared.codepage {
                Some((label, _)) if encoding_for(label) != Some(UTF_8) => {
                    format!("utf-8 (not the declared {label})")
                }
                _ => "utf-8".to_string(),
            };
            return Ok(decoded(Cow::Borrowed(text), &name));
        }
        Err(e) => e,
    };
    let (encoding, name) = match declared.codepage {
        Some((label, line)) => match encoding_for(&label) {
            Some(encoding) => (encoding, format!("{label} (declared)")),
            None => {
                return Err(PxError::Codepage {
                    origin: origin.to_string(),
                    line,
                    label,
                });
            }
        },
        None if declared.ansi => (WINDOWS_1252, "windows-1252 (CHARSET=ANSI)".to_string()),
        None => {
            return Err(invalid(
                utf8_error.valid_up_to(),
                "utf-8 (no CODEPAGE or CHARSET)",
            ));
        }
    };
    if encoding == UTF_8 {
        return Err(invalid(utf8_error.valid_up_to(), &name));
    }
    match encoding.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(decoded(text, &name)),
        // A single-byte encoding with unmapped bytes (windows-1253 has some): the first one.
        None => {
            let at = bytes.iter().position(|&b| {
                encoding
                    .decode_without_bom_handling_and_without_replacement(&[b])
                    .is_none()
            });
            Err(invalid(at.unwrap_or(0), &name))
        }
    }
}

fn decoded<'a>(text: Cow<'a, str>, encoding: &str) -> Decoded<'a> {
    Decoded {
        text,
        encoding: encoding.to_string(),
    }
}

/// The 1-based line of byte `at`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    memchr::memchr_iter(b'\n', &bytes[..at.min(bytes.len())]).count() + 1
}

/// What the header says about its encoding.
struct Declared {
    /// `CODEPAGE="…"` as written, lowercased, with its line.
    codepage: Option<(String, usize)>,
    /// `CHARSET="ANSI"`.
    ansi: bool,
}

/// Scans the lines before `DATA=` for `CODEPAGE` and `CHARSET`. Both are ASCII, so the bytes
/// can be searched before they are decoded.
fn declared(bytes: &[u8]) -> Declared {
    let mut declared = Declared {
        codepage: None,
        ansi: false,
    };
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii_start();
        if line.starts_with(b"DATA=") {
            break;
        }
        let value = |keyword: &[u8]| {
            let rest = line.strip_prefix(keyword)?;
            let text = String::from_utf8_lossy(rest);
            Some(
                text.trim()
                    .trim_end_matches(';')
                    .trim_matches('"')
                    .trim()
                    .to_lowercase(),
            )
        };
        if let Some(label) = value(b"CODEPAGE=") {
            declared.codepage = Some((label, index + 1));
        } else if let Some(charset) = value(b"CHARSET=") {
            declared.ansi = charset == "ansi";
        }
    }
    declared
}

#[cfg(test)]
mod tests {
    use super::*;

    fn used(bytes: &[u8]) -> String {
        let decoded = decode(bytes, "t.px").unwrap();
        format!(
            "{} | {}",
            decoded.encoding,
            decoded.text.lines().last().unwrap()
        )
    }

    #[test]
    fn utf8_wins_even_over_a_wrong_declared_codepage() {
        assert_eq!(
            used("CODEPAGE=\"iso-8859-1\";\nA=\"växt\";".as_bytes()),
            "utf-8 (not the declared iso-8859-1) | A=\"växt\";"
        );
        assert_eq!(used("A=\"växt\";".as_bytes()), "utf-8 | A=\"växt\";");
    }

    #[test]
    fn a_byte_order_mark_makes_the_file_utf8() {
        assert_eq!(
            used("\u{feff}CODEPAGE=\"windows-1252\";\nA=\"växt\";".as_bytes()),
            "utf-8 (byte order mark) | A=\"växt\";"
        );
        let err = decode(b"\xEF\xBB\xBFA=1;\nB=\"v\xe4xt\";", "t.px")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("t.px: line 2 is not valid utf-8 (byte order mark)"),
            "{err}"
        );
    }

    #[test]
    fn the_declared_codepage_decodes_what_is_not_utf8() {
        assert_eq!(
            used(b"CODEPAGE=\"iso-8859-15\";\nA=\"\xa4\";"),
            "iso-8859-15 (declared) | A=\"€\";"
        );
        assert_eq!(
            used(b"CHARSET=\"ANSI\";\nCODEPAGE=\"iso-8859-1\";\nA=\"v\xe4xt\";"),
            "iso-8859-1 (declared) | A=\"växt\";"
        );
    }

    #[test]
    fn ansi_without_codepage_is_windows_1252() {
        assert_eq!(
            used(b"CHARSET=\"ANSI\";\nA=\"v\xe4xt\x85\";"),
            "windows-1252 (CHARSET=ANSI) | A=\"växt…\";"
        );
    }

    #[test]
    fn undeclared_non_utf8_and_unknown_codepages_are_refused() {
        let err = decode(b"A=1;\nB=\"v\xe4xt\";", "t.px").err().unwrap();
        insta::assert_snapshot!(err, @r#"t.px: line 2 is not valid utf-8 (no CODEPAGE or CHARSET); declare the file's encoding in its header (`CODEPAGE="windows-1252";` or the right one) or save it as UTF-8"#);
        let err = decode(b"CODEPAGE=\"ebcdic\";\nB=\"v\xe4xt\";", "t.px")
            .err()
            .unwrap();
        insta::assert_snapshot!(err, @r#"t.px: line 1, `CODEPAGE`: `ebcdic` is not an encoding this decoder reads; use utf-8, windows-1252, iso-8859-1 or iso-8859-15, or save the file as UTF-8"#);
    }
}
