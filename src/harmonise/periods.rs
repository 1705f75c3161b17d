//! Periods: a source's time label (`2023M03`, `2023K1`, `HT2023`, `2021-2022`) → the model's
//! canonical `period` label with the first and last day it covers (DESIGN §3).
//!
//! Owns: the canonical labels, the spellings each period kind accepts, and the span of each kind
//! (school years and terms start on 1 July). Must not: look at Arrow arrays (the batch-level
//! harmoniser calls [`parse_period`] once per distinct label) or know which source wrote a label.
//!
//! | kind         | accepted (case-insensitive, trimmed)             | label       | span                    |
//! |--------------|--------------------------------------------------|-------------|-------------------------|
//! | `year`       | `2023`                                           | `2023`      | 2023-01-01 … 2023-12-31 |
//! | `month`      | `2023M03`, `2023-03`                             | `2023-03`   | 2023-03-01 … 2023-03-31 |
//! | `quarter`    | `2023Q1`, `2023K1`, PX `20231`                   | `2023Q1`    | 2023-01-01 … 2023-03-31 |
//! | `half`       | `2023H1`, PX `20231`                             | `2023H1`    | 2023-01-01 … 2023-06-30 |
//! | `schoolyear` | `2023/24`, `2023/2024`, `2023-2024`, `2023-24`   | `2023/24`   | 2023-07-01 … 2024-06-30 |
//! | `range`      | `2019-2022`                                      | `2019-2022` | 2019-01-01 … 2022-12-31 |
//! | `term`       | `HT2023`, `2023HT`, `VT2024`, `2024VT`           | `2023HT`    | 2023-07-01 … 2023-12-31 |
//! |              |                                                  | `2024VT`    | 2024-01-01 … 2024-06-30 |
//!
//! `auto` recognises every shape in the table except the ones that need the kind to be read:
//! `YYYY-YYYY` is a multi-year range under `auto` (Skolverket and HBSC write school years the same
//! way, and nothing in the label says which is meant, so a school year written with a dash needs
//! `kind = "schoolyear"`), and PX's letterless `20231` is a quarter or a half-year depending on
//! the file's `TLIST(Q1)` / `TLIST(H1)`, so it needs `kind = "quarter"` or `kind = "half"`.
//! Likewise `2023-24` is a (bad) month under `auto` and a school year only under `schoolyear`.

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;

/// How a pipeline's `period = { column = …, kind = … }` reads its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Year,
    Month,
    Quarter,
    Half,
    Schoolyear,
    Range,
    Term,
    /// Detect the kind from the label's shape (see the module docs for what it cannot detect).
    Auto,
}

impl PeriodKind {
    /// The name as written in a pipeline (`schoolyear`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Year => "year",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Half => "half",
            Self::Schoolyear => "schoolyear",
            Self::Range => "range",
            Self::Term => "term",
            Self::Auto => "auto",
        }
    }

    /// Examples of accepted labels, for error messages.
    fn looks_like(self) -> &'static str {
        match self {
            Self::Year => "`2023`",
            Self::Month => "`2023-03` or `2023M03`",
            Self::Quarter => "`2023Q1` or `2023K1`",
            Self::Half => "`2023H1`",
            Self::Schoolyear => "`2023/24`, `2023/2024` or `2023-2024`",
            Self::Range => "`2019-2022`",
            Self::Term => "`2023HT`, `HT2023` or `VT2024`",
            Self::Auto => {
                "`2023`, `2023-03`, `2023M03`, `2023Q1`, `2023K1`, `2023H1`, `2023/24`, \
                 `2019-2022`, `2023HT` or `HT2023`"
            }
        }
    }
}

impl std::fmt::Display for PeriodKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A period of the model: its canonical label and the first and last day it covers (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// The year of [`Period::start`]: the warehouse's `year=` partition (DESIGN §4), so a school
    /// year `2023/24` and the term `2023HT` live in `year=2023`.
    pub fn year(&self) -> i32 {
        self.start.year()
    }
}

/// Why a label is not a period of the asked kind. `text` is the label, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period `{text}` is not a {kind} (labels look like {})", .kind.looks_like())]
    Shape { text: String, kind: PeriodKind },
    #[error(
        "period `{text}` has no known shape (labels look like {}); if it is one, set `kind` in \
         `period = {{ column = …, kind = \"…\" }}`",
        PeriodKind::Auto.looks_like()
    )]
    Unknown { text: String },
    #[error("period `{text}`: year must be 1000 to 9999 (labels look like {})", .kind.looks_like())]
    Year { text: String, kind: PeriodKind },
    #[error("period `{text}`: month must be 01 to 12 (labels look like {})", PeriodKind::Month.looks_like())]
    Month { text: String },
    #[error("period `{text}`: quarter must be 1 to 4 (labels look like {})", PeriodKind::Quarter.looks_like())]
    Quarter { text: String },
    #[error("period `{text}`: half-year must be 1 or 2 (labels look like {})", PeriodKind::Half.looks_like())]
    Half { text: String },
    #[error(
        "period `{text}`: a school year's second year must be the year after its first \
         (labels look like {})",
        PeriodKind::Schoolyear.looks_like()
    )]
    Schoolyear { text: String },
    #[error(
        "period `{text}`: a range must end in a later year than it starts (labels look like {})",
        PeriodKind::Range.looks_like()
    )]
    Range { text: String },
}

/// Reads `text` as a period of `kind` and returns its canonical label and span.
///
/// Surrounding whitespace is ignored and letters may be either case (`2023k1`, `ht2023`).
/// Every year must be 1000 to 9999. Errors say which rule the label broke and what labels of
/// that kind look like; under [`PeriodKind::Auto`] a label of no known shape is
/// [`PeriodError::Unknown`].
pub fn parse_period(text: &str, kind: PeriodKind) -> Result<Period, PeriodError> {
    let text = text.trim();
    let shape = Shape::detect(text, kind).ok_or_else(|| match kind {
        PeriodKind::Auto => PeriodError::Unknown {
            text: text.to_owned(),
        },
        kind => PeriodError::Shape {
            text: text.to_owned(),
            kind,
        },
    })?;
    shape.period(text)
}

/// A label's shape, with its numbers still unchecked.
enum Shape {
    Year(i32),
    Month(i32, u32),
    Quarter(i32, u32),
    Half(i32, u32),
    /// The first year and the second as written: two or four digits.
    Schoolyear(i32, i32, usize),
    Range(i32, i32),
    /// The year and whether it is the autumn term (HT) rather than the spring term (VT).
    Term(i32, bool),
}

// Each shape is checked whole (`^…$`), so the kinds never overlap except where the module docs
// say: `YYYY-YYYY` (range or school year) and `YYYYn` (PX quarter or half-year).
static YEAR: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})$"));
static MONTH: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})(?:M|-)(\d{2})$"));
static QUARTER: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})[QK](\d{1,2})$"));
static HALF: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})H(\d{1,2})$"));
static PX_PART: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})(\d)$"));
static SCHOOLYEAR_SLASH: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})/(\d{2}|\d{4})$"));
static SCHOOLYEAR_DASH: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})-(\d{2}|\d{4})$"));
static RANGE: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})-(\d{4})$"));
static TERM_FIRST: LazyLock<Regex> = LazyLock::new(|| regex(r"^(HT|VT)(\d{4})$"));
static TERM_LAST: LazyLock<Regex> = LazyLock::new(|| regex(r"^(\d{4})(HT|VT)$"));

/// A case-insensitive, ASCII-only pattern: `\d` must not match other scripts' digits, which
/// would not parse as numbers.
fn regex(pattern: &str) -> Regex {
    Regex::new(&format!("(?i-u){pattern}")).expect("period patterns are valid regexes")
}

/// The `n`th capture as a number; only called on groups of ASCII digits.
fn number<T: std::str::FromStr>(captures: &regex::Captures<'_>, n: usize) -> T {
    match captures[n].parse() {
        Ok(value) => value,
        Err(_) => unreachable!("period patterns capture only short runs of digits here"),
    }
}

impl Shape {
    /// The shape of `text` as `kind` reads it, or `None` when it has none of that kind's shapes.
    fn detect(text: &str, kind: PeriodKind) -> Option<Self> {
        use PeriodKind as K;
        let year = || YEAR.captures(text).map(|c| Self::Year(number(&c, 1)));
        let month = || {
            MONTH
                .captures(text)
                .map(|c| Self::Month(number(&c, 1), number(&c, 2)))
        };
        let quarter = || {
            QUARTER
                .captures(text)
                .map(|c| Self::Quarter(number(&c, 1), number(&c, 2)))
        };
        let half = || {
            HALF.captures(text)
                .map(|c| Self::Half(number(&c, 1), number(&c, 2)))
        };
        let schoolyear = |pattern: &Regex| {
            pattern
                .captures(text)
                .map(|c| Self::Schoolyear(number(&c, 1), number(&c, 2), c[2].len()))
        };
        let range = || {
            RANGE
                .captures(text)
                .map(|c| Self::Range(number(&c, 1), number(&c, 2)))
        };
        let term = || {
            let (season, year) = match (TERM_FIRST.captures(text), TERM_LAST.captures(text)) {
                (Some(c), _) => (c[1].to_ascii_uppercase(), number(&c, 2)),
                (None, Some(c)) => (c[2].to_ascii_uppercase(), number(&c, 1)),
                (None, None) => return None,
            };
            Some(Self::Term(year, season == "HT"))
        };
        match kind {
            K::Year => year(),
            K::Month => month(),
            K::Quarter => quarter().or_else(|| {
                PX_PART
                    .captures(text)
                    .map(|c| Self::Quarter(number(&c, 1), number(&c, 2)))
            }),
            K::Half => half().or_else(|| {
                PX_PART
                    .captures(text)
                    .map(|c| Self::Half(number(&c, 1), number(&c, 2)))
            }),
            K::Schoolyear => schoolyear(&SCHOOLYEAR_SLASH).or_else(|| schoolyear(&SCHOOLYEAR_DASH)),
            K::Range => range(),
            K::Term => term(),
            K::Auto => year()
                .or_else(range)
                .or_else(month)
                .or_else(quarter)
                .or_else(half)
                .or_else(|| schoolyear(&SCHOOLYEAR_SLASH))
                .or_else(term),
        }
    }

    /// Checks the numbers and builds the period; `text` is only for errors.
    fn period(self, text: &str) -> Result<Period, PeriodError> {
        let owned = || text.to_owned();
        let year = |year: i32, kind: PeriodKind| {
            if (1000..=9999).contains(&year) {
                Ok(year)
            } else {
                Err(PeriodError::Year {
                    text: owned(),
                    kind,
                })
            }
        };
        let (label, start, end) = match self {
            Self::Year(y) => {
                let y = year(y, PeriodKind::Year)?;
                (format!("{y}"), date(y, 1, 1), date(y, 12, 31))
            }
            Self::Month(y, m) => {
                let y = year(y, PeriodKind::Month)?;
                if !(1..=12).contains(&m) {
                    return Err(PeriodError::Month { text: owned() });
                }
                (format!("{y}-{m:02}"), date(y, m, 1), last_day(y, m))
            }
            Self::Quarter(y, q) => {
                let y = year(y, PeriodKind::Quarter)?;
                if !(1..=4).contains(&q) {
                    return Err(PeriodError::Quarter { text: owned() });
                }
                let first = 3 * q - 2;
                (
                    format!("{y}Q{q}"),
                    date(y, first, 1),
                    last_day(y, first + 2),
                )
            }
            Self::Half(y, h) => {
                let y = year(y, PeriodKind::Half)?;
                if !(1..=2).contains(&h) {
                    return Err(PeriodError::Half { text: owned() });
                }
                let first = 6 * h - 5;
                (
                    format!("{y}H{h}"),
                    date(y, first, 1),
                    last_day(y, first + 5),
                )
            }
            Self::Schoolyear(first, second, digits) => {
                let first = year(first, PeriodKind::Schoolyear)?;
                let follows = match digits {
                    2 => second == (first + 1) % 100,
                    _ => second == first + 1,
                };
                if !follows {
                    return Err(PeriodError::Schoolyear { text: owned() });
                }
                let next = year(first + 1, PeriodKind::Schoolyear)?;
                (
                    format!("{first}/{:02}", next % 100),
                    date(first, 7, 1),
                    date(next, 6, 30),
                )
            }
            Self::Range(from, to) => {
                let from = year(from, PeriodKind::Range)?;
                let to = year(to, PeriodKind::Range)?;
                if to <= from {
                    return Err(PeriodError::Range { text: owned() });
                }
                (format!("{from}-{to}"), date(from, 1, 1), date(to, 12, 31))
            }
            // HT (höstterminen) and VT (vårterminen) split the school year at 1 July, so the
            // autumn and spring terms of one school year tile it exactly.
            Self::Term(y, true) => {
                let y = year(y, PeriodKind::Term)?;
                (format!("{y}HT"), date(y, 7, 1), date(y, 12, 31))
            }
            Self::Term(y, false) => {
                let y = year(y, PeriodKind::Term)?;
                (format!("{y}VT"), date(y, 1, 1), date(y, 6, 30))
            }
        };
        Ok(Period { label, start, end })
    }
}

/// A calendar date; callers pass a year 1000..=10000, a month 1..=12 and a day that exists.
fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("period dates are checked before use")
}

/// The last day of `month` in `year`.
fn last_day(year: i32, month: u32) -> NaiveDate {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    date(next_year, next_month, 1)
        .pred_opt()
        .expect("the day before the first of a month exists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str, kind: PeriodKind) -> Period {
        parse_period(text, kind).unwrap_or_else(|err| panic!("{text} as {kind}: {err}"))
    }

    fn span(text: &str, kind: PeriodKind) -> (String, NaiveDate, NaiveDate) {
        let period = parse(text, kind);
        (period.label, period.start, period.end)
    }

    #[test]
    fn year_covers_the_calendar_year() {
        assert_eq!(
            span("2023", PeriodKind::Year),
            ("2023".into(), date(2023, 1, 1), date(2023, 12, 31))
        );
    }

    #[test]
    fn pxweb_and_iso_months_become_the_same_label() {
        let expected = ("2023-03".into(), date(2023, 3, 1), date(2023, 3, 31));
        assert_eq!(span("2023M03", PeriodKind::Month), expected);
        assert_eq!(span("2023-03", PeriodKind::Month), expected);
        assert_eq!(span("2023m03", PeriodKind::Auto), expected);
    }

    #[test]
    fn february_ends_on_the_leap_day_in_a_leap_year() {
        assert_eq!(parse("2024M02", PeriodKind::Month).end, date(2024, 2, 29));
        assert_eq!(parse("2023M02", PeriodKind::Month).end, date(2023, 2, 28));
        assert_eq!(parse("2023-12", PeriodKind::Month).end, date(2023, 12, 31));
    }

    #[test]
    fn swedish_quarter_label_becomes_canonical() {
        let p = parse("2023K1", PeriodKind::Quarter);
        assert_eq!(p.label, "2023Q1");
        assert_eq!((p.start, p.end), (date(2023, 1, 1), date(2023, 3, 31)));
        assert_eq!(
            span("2023k4", PeriodKind::Auto),
            span("2023Q4", PeriodKind::Quarter)
        );
        assert_eq!(parse("2023Q4", PeriodKind::Quarter).end, date(2023, 12, 31));
    }

    #[test]
    fn px_letterless_parts_are_read_by_the_kind_asked_for() {
        assert_eq!(parse("20061", PeriodKind::Quarter).label, "2006Q1");
        assert_eq!(parse("19952", PeriodKind::Half).label, "1995H2");
        insta::assert_snapshot!(parse_period("20061", PeriodKind::Auto).unwrap_err(),
            @"period `20061` has no known shape (labels look like `2023`, `2023-03`, `2023M03`, `2023Q1`, `2023K1`, `2023H1`, `2023/24`, `2019-2022`, `2023HT` or `HT2023`); if it is one, set `kind` in `period = { column = …, kind = \"…\" }`");
    }

    #[test]
    fn half_years_split_at_july() {
        assert_eq!(
            span("2023H1", PeriodKind::Half),
            ("2023H1".into(), date(2023, 1, 1), date(2023, 6, 30))
        );
        assert_eq!(
            span("2023h2", PeriodKind::Auto),
            ("2023H2".into(), date(2023, 7, 1), date(2023, 12, 31))
        );
    }

    #[test]
    fn school_year_spellings_become_one_label_from_july_to_june() {
        let expected = ("2023/24".into(), date(2023, 7, 1), date(2024, 6, 30));
        for text in ["2023/24", "2023/2024", "2023-2024", "2023-24", " 2023/24 "] {
            assert_eq!(span(text, PeriodKind::Schoolyear), expected, "{text}");
        }
        assert!(matches!(
            parse_period("2023-24", PeriodKind::Auto),
            Err(PeriodError::Month { .. })
        ));
        assert_eq!(span("2023/2024", PeriodKind::Auto), expected);
        assert_eq!(parse("1999/00", PeriodKind::Schoolyear).label, "1999/00");
    }

    #[test]
    fn a_dashed_pair_of_years_is_a_range_unless_the_kind_says_school_year() {
        assert_eq!(
            span("2019-2022", PeriodKind::Auto),
            ("2019-2022".into(), date(2019, 1, 1), date(2022, 12, 31))
        );
        assert_eq!(parse("2023-2024", PeriodKind::Auto).label, "2023-2024");
        assert_eq!(parse("2023-2024", PeriodKind::Schoolyear).label, "2023/24");
    }

    #[test]
    fn terms_in_either_order_tile_the_school_year() {
        let autumn = parse("HT2023", PeriodKind::Term);
        let spring = parse("2024vt", PeriodKind::Auto);
        let school_year = parse("2023/24", PeriodKind::Schoolyear);
        assert_eq!(
            (autumn.label.as_str(), spring.label.as_str()),
            ("2023HT", "2024VT")
        );
        assert_eq!(autumn.start, school_year.start);
        assert_eq!(autumn.end.succ_opt(), Some(spring.start));
        assert_eq!(spring.end, school_year.end);
        assert_eq!(
            parse("ht2023", PeriodKind::Term),
            parse("2023HT", PeriodKind::Term)
        );
    }

    #[test]
    fn the_partition_year_is_the_year_the_period_starts() {
        assert_eq!(parse("2023/24", PeriodKind::Schoolyear).year(), 2023);
        assert_eq!(parse("2024VT", PeriodKind::Term).year(), 2024);
        assert_eq!(parse("2019-2022", PeriodKind::Range).year(), 2019);
    }

    #[test]
    fn quarter_out_of_range_says_what_is_allowed() {
        insta::assert_snapshot!(parse_period("2023Q5", PeriodKind::Quarter).unwrap_err(),
            @"period `2023Q5`: quarter must be 1 to 4 (labels look like `2023Q1` or `2023K1`)");
    }

    #[test]
    fn out_of_range_numbers_say_what_is_allowed() {
        let message = |text, kind| parse_period(text, kind).unwrap_err().to_string();
        insta::assert_snapshot!(message("2023M13", PeriodKind::Month),
            @"period `2023M13`: month must be 01 to 12 (labels look like `2023-03` or `2023M03`)");
        insta::assert_snapshot!(message("2023-00", PeriodKind::Auto),
            @"period `2023-00`: month must be 01 to 12 (labels look like `2023-03` or `2023M03`)");
        insta::assert_snapshot!(message("2023H3", PeriodKind::Half),
            @"period `2023H3`: half-year must be 1 or 2 (labels look like `2023H1`)");
        insta::assert_snapshot!(message("0999", PeriodKind::Year),
            @"period `0999`: year must be 1000 to 9999 (labels look like `2023`)");
        insta::assert_snapshot!(message("9999/00", PeriodKind::Schoolyear),
            @"period `9999/00`: year must be 1000 to 9999 (labels look like `2023/24`, `2023/2024` or `2023-2024`)");
        insta::assert_snapshot!(message("2023/25", PeriodKind::Schoolyear),
            @"period `2023/25`: a school year's second year must be the year after its first (labels look like `2023/24`, `2023/2024` or `2023-2024`)");
        insta::assert_snapshot!(message("2022-2019", PeriodKind::Range),
            @"period `2022-2019`: a range must end in a later year than it starts (labels look like `2019-2022`)");
        insta::assert_snapshot!(message("2022-2022", PeriodKind::Auto),
            @"period `2022-2022`: a range must end in a later year than it starts (labels look like `2019-2022`)");
    }

    #[test]
    fn a_label_of_another_kind_names_the_kind_asked_for() {
        let message = |text, kind| parse_period(text, kind).unwrap_err().to_string();
        insta::assert_snapshot!(message("2023Q1", PeriodKind::Year),
            @"period `2023Q1` is not a year (labels look like `2023`)");
        insta::assert_snapshot!(message("2023-2024", PeriodKind::Term),
            @"period `2023-2024` is not a term (labels look like `2023HT`, `HT2023` or `VT2024`)");
        insta::assert_snapshot!(message("23", PeriodKind::Year),
            @"period `23` is not a year (labels look like `2023`)");
        insta::assert_snapshot!(message("2023-03", PeriodKind::Range),
            @"period `2023-03` is not a range (labels look like `2019-2022`)");
    }

    #[test]
    fn period_kinds_read_from_pipeline_toml_in_lowercase() {
        #[derive(serde::Deserialize)]
        struct Map {
            kind: PeriodKind,
        }
        let map: Map = toml::from_str(r#"kind = "schoolyear""#).unwrap();
        assert_eq!(map.kind, PeriodKind::Schoolyear);
        assert!(toml::from_str::<Map>(r#"kind = "Year""#).is_err());
    }

    /// A canonical label of every kind, with the kind that reads it.
    fn canonical() -> impl Strategy<Value = (String, PeriodKind)> {
        let year = 1000..=9998i32;
        prop_oneof![
            year.clone()
                .prop_map(|y| (format!("{y}"), PeriodKind::Year)),
            (year.clone(), 1..=12u32).prop_map(|(y, m)| (format!("{y}-{m:02}"), PeriodKind::Month)),
            (year.clone(), 1..=4u32).prop_map(|(y, q)| (format!("{y}Q{q}"), PeriodKind::Quarter)),
            (year.clone(), 1..=2u32).prop_map(|(y, h)| (format!("{y}H{h}"), PeriodKind::Half)),
            year.clone()
                .prop_map(|y| (format!("{y}/{:02}", (y + 1) % 100), PeriodKind::Schoolyear)),
            (year.clone(), 1..=50i32).prop_filter_map("end within 9999", |(y, n)| {
                (y + n <= 9999).then(|| (format!("{y}-{}", y + n), PeriodKind::Range))
            }),
            (year, prop::bool::ANY).prop_map(|(y, autumn)| {
                (
                    format!("{y}{}", if autumn { "HT" } else { "VT" }),
                    PeriodKind::Term,
                )
            }),
        ]
    }

    proptest! {
        #[test]
        fn canonical_labels_parse_to_themselves_by_kind_and_by_shape((label, kind) in canonical()) {
            let period = parse_period(&label, kind).unwrap();
            prop_assert_eq!(&period.label, &label);
            prop_assert!(period.start <= period.end);
            prop_assert_eq!(period.year(), period.start.year());
            prop_assert_eq!(parse_period(&label, PeriodKind::Auto).unwrap(), period);
        }

        #[test]
        fn source_spellings_parse_like_their_canonical_label(y in 1000..=9998i32, n in 1..=12u32) {
            let q = (n - 1) / 3 + 1;
            let same = |source: String, kind, canonical: String| {
                assert_eq!(parse(&source, kind), parse(&canonical, kind), "{source}");
            };
            same(format!("{y}M{n:02}"), PeriodKind::Month, format!("{y}-{n:02}"));
            same(format!("{y}k{q}"), PeriodKind::Quarter, format!("{y}Q{q}"));
            same(format!("{y}{q}"), PeriodKind::Quarter, format!("{y}Q{q}"));
            same(format!("{y}/{}", y + 1), PeriodKind::Schoolyear, format!("{y}/{:02}", (y + 1) % 100));
            same(format!("{y}-{}", y + 1), PeriodKind::Schoolyear, format!("{y}/{:02}", (y + 1) % 100));
            same(format!(" ht{y}\t"), PeriodKind::Term, format!("{y}HT"));
            same(format!("VT{y}"), PeriodKind::Term, format!("{y}VT"));
        }

        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,12}") {
            for kind in [PeriodKind::Auto, PeriodKind::Quarter, PeriodKind::Schoolyear] {
                let _ = parse_period(&text, kind);
            }
        }
    }
}
