//! The checked Table Schema: fields, types, constraints and values, and how each type parses text.
//!
//! Owns: the types a loaded schema is made of and the grammar of each field type.
//! Must not: read schema files (`load.rs` does) or evaluate rules over columns (`rules.rs` does).

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use regex::Regex;

use crate::numbers::NumberFormat;

/// The field types this crate checks (a subset of Frictionless).
pub const SUPPORTED_TYPES: [&str; 5] = ["string", "integer", "number", "date", "year"];

/// `missingValues` when a schema does not say: the empty string is null.
pub const DEFAULT_MISSING_VALUES: [&str; 1] = [""];

/// A Frictionless Table Schema (the subset of DESIGN §5), checked when loaded: patterns are
/// compiled, bounds and enum values parsed with the field's type, and `primary_key` names fields.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// The fields in schema order; names are distinct.
    pub fields: Vec<Field>,
    /// Cell texts that mean "no value" in every text column (default `[""]`).
    pub missing_values: Vec<String>,
    /// Names of the fields whose combination identifies a row; empty = no primary key.
    pub primary_key: Vec<String>,
    pub(super) path: PathBuf,
}

/// One checked field of a schema.
#[derive(Debug, Clone)]
pub struct Field {
    /// The column the field describes.
    pub name: String,
    /// A human title, when the schema gives one (not checked against anything).
    pub title: Option<String>,
    /// What the column means, when the schema says.
    pub description: Option<String>,
    /// `type` (default `string`), with its `format` and separators.
    pub kind: FieldType,
    pub constraints: Constraints,
}

/// A field's type, with the options that change how its text parses.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    /// Any text (format `default` only).
    String,
    /// Optional sign and digits, grouped in threes by `groupChar` when given
    /// ([`NumberFormat::parse_integer`]).
    Integer { group: Option<char> },
    /// A decimal number written with `decimal` (`decimalChar`, default `.`) and `group`
    /// (`groupChar`); `NaN`, `INF`, `-INF` ([`NumberFormat::parse`], Table Schema style).
    Number { decimal: char, group: Option<char> },
    /// A calendar date.
    Date(DateFormat),
    /// Four digits.
    Year,
}

/// How a date field is written.
#[derive(Debug, Clone, PartialEq)]
pub enum DateFormat {
    /// `YYYY-MM-DD` (format `default`).
    Iso,
    /// A strftime pattern such as `%d/%m/%Y` (format `%d/%m/%Y` or the older `fmt:%d/%m/%Y`).
    Pattern(String),
}

/// A field's constraints; absent ones are `None` or `false`.
#[derive(Debug, Clone, Default)]
pub struct Constraints {
    /// A null (absent or a missing-value marker) breaks the rule.
    pub required: bool,
    /// Two rows of a chunk with the same non-null value both break the rule.
    pub unique: bool,
    /// `enum`: the allowed values.
    pub allowed: Option<Allowed>,
    /// A regex the whole text must match.
    pub pattern: Option<Pattern>,
    /// The smallest allowed parsed value (integer, number, date and year fields).
    pub minimum: Option<Bound>,
    /// The largest allowed parsed value (integer, number, date and year fields).
    pub maximum: Option<Bound>,
    /// `minLength`, in characters.
    pub min_length: Option<usize>,
    /// `maxLength`, in characters.
    pub max_length: Option<usize>,
}

/// The values an `enum` constraint allows, parsed with the field's type.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Parsed, in schema order.
    pub values: Vec<Value>,
    /// The values as the schema writes them, for messages.
    pub texts: Vec<String>,
}

/// A `pattern` constraint: the schema's regex, compiled anchored at both ends.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// As written in the schema.
    pub source: String,
    pub(super) anchored: Regex,
}

impl Pattern {
    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

/// A `minimum` or `maximum`: the parsed value and the schema's text of it.
#[derive(Debug, Clone)]
pub struct Bound {
    /// Parsed with the field's type.
    pub value: Value,
    /// As the schema writes it, for messages.
    pub text: String,
}

/// A parsed (logical) cell value; values of one field always have the field's variant.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Value {
    /// A string field's text, as is.
    Text(String),
    Integer(i64),
    Number(f64),
    Date(NaiveDate),
    Year(i32),
}

impl Value {
    pub(super) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

impl TableSchema {
    /// The file the schema was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl FieldType {
    /// The parsed value of `text`, or `None` when it is not of this type.
    pub fn parse(&self, text: &str) -> Option<Value> {
        match self {
            FieldType::String => Some(Value::Text(text.to_string())),
            FieldType::Integer { group } => NumberFormat::table_schema('.', *group)
                .parse_integer(text)
                .map(Value::Integer),
            FieldType::Number { decimal, group } => NumberFormat::table_schema(*decimal, *group)
                .parse(text)
                .map(Value::Number),
            FieldType::Date(format) => parse_date(text, format).map(Value::Date),
            FieldType::Year => (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| Value::Year(text.parse().expect("four digits"))),
        }
    }

    /// The type's name in a schema.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer { .. } => "integer",
            FieldType::Number { .. } => "number",
            FieldType::Date(_) => "date",
            FieldType::Year => "year",
        }
    }

    /// What a value of this type looks like, for messages: `a number (decimal separator `,`)`.
    pub fn expectation(&self) -> String {
        let group = |g: &Option<char>| match g {
            Some(g) => format!(", thousands separator `{g}`"),
            None => String::new(),
        };
        match self {
            FieldType::String => "text".to_string(),
            FieldType::Integer { group: None } => "an integer".to_string(),
            FieldType::Integer { group: Some(g) } => {
                format!("an integer (thousands separator `{g}`)")
            }
            FieldType::Number { decimal, group: g } => {
                format!("a number (decimal separator `{decimal}`{})", group(g))
            }
            FieldType::Date(DateFormat::Iso) => "a date (YYYY-MM-DD)".to_string(),
            FieldType::Date(DateFormat::Pattern(p)) => format!("a date (format `{p}`)"),
            FieldType::Year => "a year (four digits)".to_string(),
        }
    }
}

fn parse_date(text: &str, format: &DateFormat) -> Option<NaiveDate> {
    match format {
        DateFormat::Iso => {
            let b = text.as_bytes();
            let shape = b.len() == 10
                && b[4] == b'-'
                && b[7] == b'-'
                && b.iter()
                    .enumerate()
                    .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
            if !shape {
                return None;
            }
            let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().expect("digits");
            NaiveDate::from_ymd_opt(n(0..4) as i32, n(5..7), n(8..10))
        }
        DateFormat::Pattern(pattern) => NaiveDate::parse_from_str(text, pattern).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_parsing_follows_the_separators() {
        let comma = FieldType::Number {
            decimal: ',',
            group: Some(' '),
        };
        let point = FieldType::Number {
            decimal: '.',
            group: None,
        };
        let number = |kind: &FieldType, text: &str| match kind.parse(text) {
            Some(Value::Number(n)) => Some(n),
            _ => None,
        };
        assert_eq!(number(&comma, "1 234,5"), Some(1234.5));
        assert_eq!(number(&comma, ",5"), Some(0.5));
        assert_eq!(number(&point, "+5."), Some(5.0));
        assert_eq!(number(&point, "2.5E-1"), Some(0.25));
        assert_eq!(number(&point, "-INF"), Some(f64::NEG_INFINITY));
        assert!(number(&point, "NaN").unwrap().is_nan());
        for bad in [
            "", "-", ".", "1e", "inf", "nan", "1,5", " 1", "0x10", "1.2.3",
        ] {
            assert_eq!(number(&point, bad), None, "{bad:?}");
        }
    }
}
