//! The PX keyword grammar: `KEYWORD[lang]("sub","sub2")=value,value;` up to `DATA=`.
//!
//! Owns: splitting the text before `DATA=` into entries with their 1-based line, quoted strings
//! (adjacent ones concatenated: a long text continues on the next line as a further quoted
//! string; a string may also run over lines), comma lists across lines and an empty last value
//! (`"1","2",;`), bare values (`YES`, `0`, `VALUES`), `TLIST(...)` and HIERARCHIES'
//! `"parent":"child"` pairs (kept as one text).
//! Must not: know what a keyword means (`layout.rs` does) or read the DATA block (`data.rs`).

use super::PxError;

/// One `KEYWORD[lang](subkeys)=values;` entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub keyword: String,
    /// The `[lang]` suffix; `None` for the main language (or a keyword no language applies to).
    pub lang: Option<String>,
    pub subkeys: Vec<String>,
    pub values: Vec<Value>,
    /// The line the keyword starts on.
    pub line: usize,
}

/// One comma-separated value of an entry.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// A quoted string, continuation lines joined.
    Text(String),
    /// An unquoted value: `YES`, `0`, `VALUES`.
    Bare(String),
    /// `TLIST(A1)` or `TLIST(A1, "1990"-"2014")`: the time unit and the range (`1990-2014`), if
    /// given.
    Tlist { unit: String, range: Option<String> },
}

impl Entry {
    /// The keyword with its language, as written: `VALUES[sv]`.
    pub fn name(&self) -> String {
        match &self.lang {
            Some(lang) => format!("{}[{lang}]", self.keyword),
            None => self.keyword.clone(),
        }
    }
}

impl Value {
    /// The text of a quoted or bare value (`None` for a TLIST).
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(text) | Value::Bare(text) => Some(text),
            Value::Tlist { .. } => None,
        }
    }
}

/// The entries before `DATA=`, and where the DATA block starts.
#[derive(Debug)]
pub(super) struct Header {
    pub entries: Vec<Entry>,
    /// Byte offset of the first byte after `DATA=`.
    pub data: usize,
    /// The line the DATA block starts on (that of `DATA=`).
    pub data_line: usize,
}

/// Parses `text` up to `DATA=`. Errors name the keyword being read and the line.
pub(super) fn parse(text: &str, origin: &str) -> Result<Header, PxError> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        at: 0,
        line: 1,
        origin,
        keyword: String::new(),
    };
    let mut entries = Vec::new();
    loop {
        reader.skip_space();
        if reader.at == reader.bytes.len() {
            return Err(PxError::NoData {
                origin: origin.to_string(),
                line: text.trim_end().matches('\n').count() + 1,
            });
        }
        let line = reader.line;
        reader.keyword = reader.keyword()?;
        if reader.keyword == "DATA" {
            reader.expect(b'=', "`=` after DATA")?;
            return Ok(Header {
                entries,
                data: reader.at,
                data_line: reader.line,
            });
        }
        reader.skip_space();
        let lang = match reader.peek() {
            Some(b'[') => Some(reader.bracketed()?),
            _ => None,
        };
        reader.skip_space();
        let subkeys = match reader.peek() {
            Some(b'(') => reader.subkeys()?,
            _ => Vec::new(),
        };
        reader.expect(b'=', "`=` after the keyword")?;
        let values = reader.values()?;
        entries.push(Entry {
            keyword: std::mem::take(&mut reader.keyword),
            lang,
            subkeys,
            values,
            line,
        });
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    line: usize,
    origin: &'a str,
    /// The keyword being read, for errors.
    keyword: String,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn error(&self, expected: &'static str) -> PxError {
        let found = match self.text[self.at..].chars().next() {
            None => "the end of the file".to_string(),
            Some('\n' | '\r') => "the end of the line".to_string(),
            Some(c) => format!("`{c}`"),
        };
        PxError::Syntax {
            origin: self.origin.to_string(),
            keyword: self.keyword.clone(),
            line: self.line,
            expected,
            found,
        }
    }

    fn skip_space(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return,
            }
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), PxError> {
        self.skip_space();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn keyword(&mut self) -> Result<String, PxError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("a keyword"));
        }
        Ok(self.text[start..self.at].to_string())
    }

    fn bracketed(&mut self) -> Result<String, PxError> {
        self.at += 1;
        let start = self.at;
        // Any text: Statistics Finland's test files have languages like `[åå]`.
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b']' | b'"' | b'\n' | b'(' | b'='))
        {
            self.at += 1;
        }
        let lang = self.text[start..self.at].to_string();
        if lang.is_empty() || self.peek() != Some(b']') {
            return Err(self.error("a language code and `]`, as in `[sv]`"));
        }
        self.at += 1;
        Ok(lang)
    }

    fn subkeys(&mut self) -> Result<Vec<String>, PxError> {
        self.at += 1;
        let mut subkeys = Vec::new();
        loop {
            self.skip_space();
            subkeys.push(self.quoted()?);
            self.skip_space();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b')') => {
                    self.at += 1;
                    return Ok(subkeys);
                }
                _ => return Err(self.error("`,` or `)` after a sub-key")),
            }
        }
    }

    /// A quoted string. It may run over lines (Statistics Norway's notes do); the line count
    /// follows it.
    fn quoted(&mut self) -> Result<String, PxError> {
        if self.peek() != Some(b'"') {
            return Err(self.error("a quoted string"));
        }
        let start = self.at + 1;
        let Some(end) = memchr::memchr(b'"', &self.bytes[start..]).map(|i| start + i) else {
            // Reported where the string starts, not at the end of the file.
            return Err(self.error("a closing `\"` for the quote here"));
        };
        self.line += memchr::memchr_iter(b'\n', &self.bytes[start..end]).count();
        self.at = end + 1;
        Ok(self.text[start..end].to_string())
    }

    /// Comma-separated values up to and including `;`.
    fn values(&mut self) -> Result<Vec<Value>, PxError> {
        let mut values = Vec::new();
        loop {
            self.skip_space();
            let value = match self.peek() {
                Some(b'"') => {
                    let mut text = self.quoted()?;
                    self.skip_space();
                    loop {
                        match self.peek() {
                            Some(b'"') => text.push_str(&self.quoted()?),
                            // HIERARCHIES pairs a parent and a child: `"Sverige":"Norrland"`.
                            Some(b':') => {
                                self.at += 1;
                                self.skip_space();
                                text.push(':');
                                text.push_str(&self.quoted()?);
                            }
                            _ => break,
                        }
                        self.skip_space();
                    }
                    Value::Text(text)
                }
                _ if self.text[self.at..].starts_with("TLIST(") => self.tlist()?,
                _ => self.bare()?,
            };
            values.push(value);
            self.skip_space();
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    self.skip_space();
                    // `"1","2",;` (PxWeb's own BE101ACE.px): the last value is empty.
                    if self.peek() == Some(b';') {
                        values.push(Value::Text(String::new()));
                        self.at += 1;
                        return Ok(values);
                    }
                }
                Some(b';') => {
                    self.at += 1;
                    return Ok(values);
                }
                // After a quoted value this is a stray `"` inside it (`"00 S"weden"`).
                _ => {
                    return Err(self.error(
                        "`,` or `;` after a value (a value cannot hold a `\"` of its own)",
                    ));
                }
            }
        }
    }

    fn bare(&mut self) -> Result<Value, PxError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| !matches!(b, b',' | b';' | b'"' | b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error("a value"));
        }
        Ok(Value::Bare(self.text[start..self.at].to_string()))
    }

    /// `TLIST(A1)`, or with a range: `TLIST(A1, "1994"-"1996")` (the PX 2013 form) or
    /// `TLIST(A1, "1994-1996")`.
    fn tlist(&mut self) -> Result<Value, PxError> {
        self.at += "TLIST(".len();
        self.skip_space();
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.at += 1;
        }
        let unit = self.text[start..self.at].to_string();
        if unit.is_empty() {
            return Err(self.error("a time unit in `TLIST(`, as in `TLIST(A1)`"));
        }
        self.skip_space();
        let range = match self.peek() {
            Some(b',') => {
                self.at += 1;
                self.skip_space();
                let mut range = self.quoted()?;
                self.skip_space();
                if self.peek() == Some(b'-') {
                    self.at += 1;
                    self.skip_space();
                    range.push('-');
                    range.push_str(&self.quoted()?);
                }
                Some(range)
            }
            _ => None,
        };
        self.expect(b')', "`)` closing `TLIST(`")?;
        Ok(Value::Tlist { unit, range })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> Header {
        parse(text, "t.px").unwrap()
    }

    #[test]
    fn keyword_language_subkeys_and_continued_strings_are_read() {
        let text =
            "CHARSET=\"ANSI\";\nVALUES[sv](\"ålder\", \"x\")=\"a\",\n\"b\"\n\"c\";\nDATA=\n1;";
        let h = header(text);
        assert_eq!(h.entries.len(), 2);
        let values = &h.entries[1];
        assert_eq!(values.keyword, "VALUES");
        assert_eq!(values.lang.as_deref(), Some("sv"));
        assert_eq!(values.subkeys, ["ålder", "x"]);
        assert_eq!(
            values.values,
            [Value::Text("a".into()), Value::Text("bc".into())]
        );
        assert_eq!(values.line, 2);
        assert_eq!(h.data_line, 5);
        assert_eq!(&text[h.data..], "\n1;");
    }

    #[test]
    fn tlists_bare_values_and_hierarchy_pairs_are_read() {
        let h = header(
            "TIMEVAL(\"t\")=TLIST(A1),\"2017\";\nTIMEVAL(\"u\")=TLIST(A1, \"1990-2014\");\nELIMINATION(\"s\")=YES;\n\
             TIMEVAL(\"v\")=TLIST(A1, \"1990\"-\"2014\");\nHIERARCHIES(\"r\")=\"SE\",\"SE\":\"01\";\nDATA=;",
        );
        assert_eq!(
            h.entries[0].values,
            [
                Value::Tlist {
                    unit: "A1".into(),
                    range: None
                },
                Value::Text("2017".into())
            ]
        );
        assert_eq!(
            h.entries[1].values,
            [Value::Tlist {
                unit: "A1".into(),
                range: Some("1990-2014".into())
            }]
        );
        assert_eq!(h.entries[2].values, [Value::Bare("YES".into())]);
        assert_eq!(h.entries[3].values, h.entries[1].values);
        assert_eq!(
            h.entries[4].values,
            [Value::Text("SE".into()), Value::Text("SE:01".into())]
        );
    }

    #[test]
    fn spaces_around_language_subkeys_and_equals_are_allowed() {
        let h = header("VALUES [sv] (\"x\") = \"a\" ;\nA[åå]=1;\nDATA =\n1;");
        assert_eq!(h.entries[1].lang.as_deref(), Some("åå"));
        assert_eq!(h.entries[0].lang.as_deref(), Some("sv"));
        assert_eq!(h.entries[0].values, [Value::Text("a".into())]);
        assert_eq!(h.data_line, 3);
    }

    #[test]
    fn a_string_may_run_over_lines_and_a_list_end_in_an_empty_value() {
        let h = header("NOTE=\"a\"\n\" b\nc\";\nCODES(\"sex\")=\"1\",\"2\",;\nDATA=\n1;");
        assert_eq!(h.entries[0].values, [Value::Text("a b\nc".into())]);
        assert_eq!((h.entries[1].line, h.data_line), (4, 5));
        let codes: Vec<_> = h.entries[1]
            .values
            .iter()
            .map(|v| v.text().unwrap())
            .collect();
        assert_eq!(codes, ["1", "2", ""]);
    }

    #[test]
    fn a_stray_quote_names_the_keyword_and_line() {
        let err = parse(
            "A=1;\nVALUES(\"region\")=\"00 S\"weden\",\"01\";\nDATA=1;",
            "t.px",
        )
        .unwrap_err();
        insta::assert_snapshot!(err, @"t.px: line 2, `VALUES`: expected `,` or `;` after a value (a value cannot hold a `\"` of its own), found `w`; the file is damaged or not PC-Axis: fix that line or export the table again");
    }

    #[test]
    fn a_file_without_data_says_so() {
        let err = parse("A=1;\nB=\"x\";\n", "t.px").unwrap_err();
        insta::assert_snapshot!(err, @"t.px: the file ends at line 2 without `DATA=`; the file is truncated or not a PX file: export the table again");
    }
}
