//! Numbers written as text: the one grammar that CSV cells, Table Schema validation and the
//! harmoniser's value columns are read with.
//!
//! Owns: the decimal separator (`.` or `,`), thousands separators, signs, surrounding whitespace
//! and what is not a number (markers, `inf`, badly grouped digits) — as a [`NumberFormat`].
//! Must not: decide what a text that is not a number means (a marker, a missing value or a
//! refused row: the caller decides), or read columns.
//!
//! The grammar, for both styles:
//!
//! ```text
//! number   = sign? mantissa exponent?
//! sign     = "+" | "-" | "−" (U+2212)
//! mantissa = integer (decimal digit*)? | decimal digit+
//! integer  = digit+, or with a group separator: 1-3 digits (group 3 digits)*
//! exponent = ("e" | "E") ("+" | "-")? digit+
//! ```
//!
//! Two decisions where the parsers this replaces disagreed:
//! - **Groups of three, in the integer part only.** Table Schema's `groupChar` only says "used to
//!   group digits", and frictionless-py removes it wherever it is; we accept it only between
//!   groups of three integer digits. Otherwise `1,5` with `groupChar = ","` (a decimal comma in a
//!   point-decimal file) reads as fifteen, and `12 34` as 1234.
//! - **Finite only.** An exponent beyond a double (`1e400`) is not a number, not infinity; in a
//!   Table Schema the only infinities are the ones written `INF` and `-INF`.
//! - **A space is any space.** A group separator `' '` also accepts the no-break space (U+00A0)
//!   and the narrow no-break space (U+202F) that Excel and SCB write, and `−` (U+2212) is a minus
//!   in every style.
//!
//! What stays different is a named [`NumberStyle`]: a cell of an export ignores surrounding
//! whitespace and never reads `NaN` or `INF` as a number; a Table Schema `number` is the number
//! and nothing else (`bareNumber: true`), with `NaN`, `INF` and `-INF` as the spec defines them.

/// How a column writes its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberFormat {
    /// The decimal separator (`.` or `,`).
    pub decimal: char,
    /// The thousands separator, if digits may be grouped; never equal to `decimal`. `' '` also
    /// matches U+00A0 and U+202F.
    pub group: Option<char>,
    /// What else the text may hold; see [`NumberStyle`].
    pub style: NumberStyle,
}

/// What a number's text may hold besides the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberStyle {
    /// A cell of a statistics export (CSV, a value written as text): surrounding whitespace is
    /// ignored, and `NaN`, `inf` and the like are not numbers: a producer writing them means a
    /// marker, and a NaN in the warehouse would pass for a value.
    Export,
    /// A Table Schema `number` or `integer` (`bareNumber: true`): the text is the number and
    /// nothing else, not even a space; `NaN`, `INF`, `+INF` and `-INF` (as written) are numbers.
    TableSchema,
}

impl NumberFormat {
    /// An export's numbers: `decimal` as configured, digits grouped by spaces (`1 234,5`).
    pub fn export(decimal: char) -> Self {
        Self {
            decimal,
            group: Some(' '),
            style: NumberStyle::Export,
        }
    }

    /// A Table Schema field's numbers: its `decimalChar` and `groupChar`.
    pub fn table_schema(decimal: char, group: Option<char>) -> Self {
        Self {
            decimal,
            group,
            style: NumberStyle::TableSchema,
        }
    }

    /// The number `text` writes, or `None` when it is not one in this format: empty text,
    /// markers (`..`, `-`), the other decimal separator, badly grouped digits, trailing text.
    pub fn parse(&self, text: &str) -> Option<f64> {
        let text = self.body(text);
        if self.style == NumberStyle::TableSchema {
            match text {
                "NaN" => return Some(f64::NAN),
                "INF" | "+INF" => return Some(f64::INFINITY),
                "-INF" => return Some(f64::NEG_INFINITY),
                _ => {}
            }
        }
        // An exponent too large for a double reads as infinity; no producer means that.
        let number: f64 = self.plain(text, true)?.parse().ok()?;
        number.is_finite().then_some(number)
    }

    /// The whole number `text` writes (sign, digits and group separators only), or `None`.
    /// `decimal` plays no part: `12,0` is not an integer.
    pub fn parse_integer(&self, text: &str) -> Option<i64> {
        self.plain(self.body(text), false)?.parse().ok()
    }

    fn body<'a>(&self, text: &'a str) -> &'a str {
        match self.style {
            NumberStyle::Export => text.trim(),
            NumberStyle::TableSchema => text,
        }
    }

    fn is_group(&self, c: char) -> bool {
        match self.group {
            Some(' ') => matches!(c, ' ' | '\u{a0}' | '\u{202f}'),
            Some(group) => c == group,
            None => false,
        }
    }

    /// `text` as Rust's parser reads it (`-`, ASCII digits, `.`, exponent), if it follows the
    /// grammar; a fraction and an exponent only when `real`.
    fn plain(&self, text: &str, real: bool) -> Option<String> {
        let mut chars = text.chars().peekable();
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
            } else if self.is_group(c) {
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
        if real && chars.peek() == Some(&self.decimal) {
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
        if let Some(&e @ ('e' | 'E')) = chars.peek().filter(|_| real) {
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
        chars.next().is_none().then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn export(text: &str, decimal: char) -> Option<f64> {
        NumberFormat::export(decimal).parse(text)
    }

    fn schema(text: &str, decimal: char, group: Option<char>) -> Option<f64> {
        NumberFormat::table_schema(decimal, group).parse(text)
    }

    #[test]
    fn numbers_parse_with_decimal_comma_signs_and_grouped_thousands() {
        assert_eq!(export("12,5", ','), Some(12.5));
        assert_eq!(export(" -0,25 ", ','), Some(-0.25));
        assert_eq!(export("+3", ','), Some(3.0));
        assert_eq!(export("\u{2212}4,5", ','), Some(-4.5));
        assert_eq!(export("1 234 567,5", ','), Some(1_234_567.5));
        assert_eq!(export("1\u{a0}234", ','), Some(1234.0));
        assert_eq!(export("12\u{202f}345,0", ','), Some(12345.0));
        assert_eq!(export(",5", ','), Some(0.5));
        assert_eq!(export("5,", ','), Some(5.0));
        assert_eq!(export("0114", ','), Some(114.0));
        assert_eq!(export("1.5", '.'), Some(1.5));
        assert_eq!(export("1.5e3", '.'), Some(1500.0));
        assert_eq!(export("2,5E-1", ','), Some(0.25));
    }

    #[test]
    fn markers_and_malformed_numbers_are_not_numbers() {
        for text in [
            "",
            " ",
            "..",
            ".",
            "-",
            "x",
            "1.5",
            "1,5,3",
            "12 34",
            "1234 567",
            "1  234",
            " 234 5",
            "inf",
            "NaN",
            "INF",
            "1e",
            "--1",
            "+-1",
            "1,5 %",
            "1 234,5 6",
            "1,2 34",
        ] {
            assert_eq!(export(text, ','), None, "{text:?}");
        }
        assert_eq!(export("1,5", '.'), None);
    }

    #[test]
    fn table_schema_numbers_are_bare_and_know_nan_and_infinity() {
        assert_eq!(schema("1 234,5", ',', Some(' ')), Some(1234.5));
        assert_eq!(schema("+5.", '.', None), Some(5.0));
        assert_eq!(schema("-INF", '.', None), Some(f64::NEG_INFINITY));
        assert!(schema("NaN", '.', None).unwrap().is_nan());
        for bad in [" 1", "1 ", "inf", "nan", "1 234"] {
            assert_eq!(schema(bad, '.', None), None, "{bad:?}");
        }
    }

    // Where the validator's parser and the CSV one used to disagree; each case says which
    // answer the one grammar keeps.

    #[test]
    fn a_group_separator_only_groups_three_integer_digits() {
        // The validator removed `groupChar` wherever it was: `1,5` became fifteen.
        assert_eq!(schema("1,5", '.', Some(',')), None);
        assert_eq!(schema("12 34", ',', Some(' ')), None);
        assert_eq!(schema("1,5 0", ',', Some(' ')), None);
        assert_eq!(schema("1,000,000.5", '.', Some(',')), Some(1_000_000.5));
        assert_eq!(schema("1.234,5", ',', Some('.')), Some(1234.5));
    }

    #[test]
    fn a_space_group_separator_accepts_no_break_spaces() {
        // The validator took only the character `groupChar` named.
        assert_eq!(schema("1\u{a0}234", ',', Some(' ')), Some(1234.0));
        assert_eq!(schema("1\u{202f}234", ',', Some(' ')), Some(1234.0));
        assert_eq!(schema("1\u{a0}234", ',', Some('.')), None);
    }

    #[test]
    fn the_unicode_minus_is_a_minus_in_a_schema_too() {
        assert_eq!(schema("\u{2212}4,5", ',', None), Some(-4.5));
    }

    #[test]
    fn an_exponent_beyond_a_double_is_not_a_number() {
        // Both parsers used to give infinity; JSON-stat's string values never did.
        assert_eq!(export("1e400", '.'), None);
        assert_eq!(schema("-1e400", '.', None), None);
        assert_eq!(export("1e-400", '.'), Some(0.0));
    }

    #[test]
    fn surrounding_whitespace_and_nan_follow_the_style() {
        // Kept apart on purpose: an export cell is trimmed and never NaN; a schema value is bare.
        assert_eq!(export(" 7 ", '.'), Some(7.0));
        assert_eq!(schema(" 7 ", '.', None), None);
        assert_eq!(export("NaN", '.'), None);
        assert!(schema("NaN", '.', None).unwrap().is_nan());
    }

    #[test]
    fn integers_are_signs_digits_and_groups_only() {
        let plain = NumberFormat::table_schema('.', None);
        let grouped = NumberFormat::table_schema(',', Some(' '));
        assert_eq!(plain.parse_integer("-42"), Some(-42));
        assert_eq!(plain.parse_integer("+7"), Some(7));
        assert_eq!(grouped.parse_integer("1 234 567"), Some(1_234_567));
        for bad in ["", "1.5", "1,5", "12,0", "1e3", "1 234", " 1", "INF", "NaN"] {
            assert_eq!(plain.parse_integer(bad), None, "{bad:?}");
        }
        assert_eq!(grouped.parse_integer("12 34"), None);
    }

    /// `value` written the Swedish way: `,` decimal, thousands grouped by `group`.
    fn swedish(value: f64, group: char) -> String {
        let text = format!("{:.3}", value.abs());
        let (whole, fraction) = text.split_once('.').expect("three decimals");
        let mut grouped = String::new();
        for (i, digit) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                grouped.push(group);
            }
            grouped.push(digit);
        }
        let sign = if value.is_sign_negative() { "-" } else { "" };
        format!("{sign}{grouped},{fraction}")
    }

    proptest! {
        #[test]
        fn numbers_written_with_decimal_comma_and_grouped_thousands_read_back(
            value in -1e12f64..1e12,
            group in prop::sample::select(vec![' ', '\u{a0}', '\u{202f}', '.']),
        ) {
            let text = swedish(value, group);
            let expected: f64 = format!("{value:.3}").parse().unwrap();
            let format = if group == '.' {
                NumberFormat::table_schema(',', Some('.'))
            } else {
                NumberFormat::export(',')
            };
            prop_assert_eq!(format.parse(&text), Some(expected), "{}", text);
        }
    }
}
