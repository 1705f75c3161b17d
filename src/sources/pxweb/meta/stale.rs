//! Whether a table has stopped being updated although nobody said so: SCB's TAB638 stops at
//! 2024 with `discontinued: null`, and a harvest of it succeeds every night with nothing new.
//!
//! Owns: reading a `lastPeriod` by its shape, the next period's label, and the date by which
//! that next period should have been published.
//! Must not: report anything (the caller words the warning) or read a clock (`today` is an
//! argument).
//!
//! The rule: a table is stale when today is past the end of the period *after* its next one,
//! with a longer grace for short periods. The next period must first end, and then be
//! published: annual tables come out months after the year ends, so one more whole year is
//! the shortest wait that does not warn about a table that is merely late. For months and
//! weeks one period is too short a grace: TAB4707 (monthly) had 2026M03 published on
//! 2026-05-29, two months after it ended, so a grace of one month would warn between every
//! pair of releases. Months and weeks get a quarter's grace instead (3 months, 13 weeks);
//! halves and quarters get one period, a quarter or more already.

use std::fmt;

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

use super::TableInfo;

/// A table whose next period is overdue: "last period `2024` should have been followed by
/// `2025` by 2026-12-31".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    /// As the table wrote it.
    pub last_period: String,
    /// The period that should have followed, spelt like `last_period` (`2025`, `2024K3`,
    /// `2022-2023`).
    pub next_period: String,
    /// The last day `next_period` could still have been published on without the table being
    /// stale.
    pub expected_by: NaiveDate,
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "last period `{}` should have been followed by `{}` by {}",
            self.last_period, self.next_period, self.expected_by
        )
    }
}

impl TableInfo {
    /// Whether the table's last period is older than its time unit implies. `None` = not
    /// stale, or cannot tell: no `last_period`, a shape not read below, a `time_unit` that
    /// contradicts the shape (we would rather miss a warning than raise a false one), or a
    /// table the server marks `discontinued` (old on purpose).
    ///
    /// Shapes: `2024` (year), `2021-2022` (a school or split year, taken to end with its
    /// second calendar year, the later reading), `2024H1` (half), `2024K2` (quarter),
    /// `2025M11` (month), `2026V30` (ISO week).
    pub fn stale(&self, today: NaiveDate) -> Option<Staleness> {
        if self.discontinued == Some(true) {
            return None;
        }
        let last_period = self.last_period.as_deref()?;
        let last = Period::parse(last_period)?;
        if let Some(time_unit) = &self.time_unit
            && !last.unit.agrees_with(time_unit)
        {
            return None;
        }
        // The next period, then one period of grace (more for short units): due at its end.
        let expected_by = last.advance(1 + 1 + last.unit.extra_grace())?.end()?;
        if expected_by >= today {
            return None;
        }
        Some(Staleness {
            last_period: last_period.to_string(),
            next_period: last.advance(1)?.label(),
            expected_by,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Year,
    SplitYear,
    Half,
    Quarter,
    Month,
    Week,
}

impl Unit {
    /// v2 `timeUnit` values we know; any other (`Other`, a spelling we have not seen) does not
    /// contradict the shape.
    fn agrees_with(self, time_unit: &str) -> bool {
        match time_unit {
            "Annual" => matches!(self, Self::Year | Self::SplitYear),
            "Quarterly" => self == Self::Quarter,
            "Monthly" => self == Self::Month,
            "Weekly" => self == Self::Week,
            _ => true,
        }
    }

    /// Periods of grace beyond the one every unit gets, so that no grace is shorter than a
    /// quarter (see the module's rule).
    fn extra_grace(self) -> u32 {
        match self {
            Self::Month => 2,
            Self::Week => 12,
            Self::Year | Self::SplitYear | Self::Half | Self::Quarter => 0,
        }
    }
}

/// A period as its first day: stepping is calendar arithmetic, its end the day before the
/// next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Period {
    unit: Unit,
    /// A split year starts on 1 January of its second year: it is read as ending there.
    start: NaiveDate,
}

impl Period {
    fn parse(code: &str) -> Option<Self> {
        let year = year(code.get(..4)?)?;
        let rest = code.get(4..)?;
        let first_of = |month: u32| NaiveDate::from_ymd_opt(year, month, 1);
        let (unit, start) = match rest.split_at_checked(1) {
            None => (Unit::Year, first_of(1)?),
            Some(("-", second)) => {
                let second = self::year(second)?;
                if second != year.checked_add(1)? {
                    return None;
                }
                (Unit::SplitYear, NaiveDate::from_ymd_opt(second, 1, 1)?)
            }
            Some(("H", half)) => (Unit::Half, first_of(6 * (number(half, 1, 1..=2)? - 1) + 1)?),
            Some(("K", quarter)) => (
                Unit::Quarter,
                first_of(3 * (number(quarter, 1, 1..=4)? - 1) + 1)?,
            ),
            Some(("M", month)) => (Unit::Month, first_of(number(month, 2, 1..=12)?)?),
            Some(("V", week)) => (
                Unit::Week,
                NaiveDate::from_isoywd_opt(year, number(week, 2, 1..=53)?, Weekday::Mon)?,
            ),
            Some(_) => return None,
        };
        Some(Self { unit, start })
    }

    fn advance(self, periods: u32) -> Option<Self> {
        let months: u32 = match self.unit {
            Unit::Year | Unit::SplitYear => 12,
            Unit::Half => 6,
            Unit::Quarter => 3,
            Unit::Month => 1,
            Unit::Week => {
                let start = self
                    .start
                    .checked_add_days(Days::new(7 * u64::from(periods)))?;
                return Some(Self { start, ..self });
            }
        };
        let start = self
            .start
            .checked_add_months(Months::new(months.checked_mul(periods)?))?;
        Some(Self { start, ..self })
    }

    fn end(self) -> Option<NaiveDate> {
        self.advance(1)?.start.pred_opt()
    }

    /// Spelt as SCB spells it (`K` quarters, `V` weeks, two-digit months and weeks).
    fn label(self) -> String {
        let year = self.start.year();
        match self.unit {
            Unit::Year => year.to_string(),
            Unit::SplitYear => format!("{}-{year}", year - 1),
            Unit::Half => format!("{year}H{}", self.start.month0() / 6 + 1),
            Unit::Quarter => format!("{year}K{}", self.start.month0() / 3 + 1),
            Unit::Month => format!("{year}M{:02}", self.start.month()),
            Unit::Week => {
                let week = self.start.iso_week();
                format!("{}V{:02}", week.year(), week.week())
            }
        }
    }
}

/// Four ASCII digits.
fn year(digits: &str) -> Option<i32> {
    number(digits, 4, 0..=9999).and_then(|year| i32::try_from(year).ok())
}

/// Exactly `len` ASCII digits whose value lies in `range`.
fn number(digits: &str, len: usize, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    if digits.len() != len || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| range.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn table(last_period: &str, time_unit: Option<&str>) -> TableInfo {
        TableInfo {
            id: "TAB638".into(),
            last_period: Some(last_period.into()),
            time_unit: time_unit.map(str::to_string),
            ..TableInfo::default()
        }
    }

    /// The next period and the last day before the table counts as stale.
    fn due(last_period: &str) -> (String, NaiveDate) {
        let staleness = table(last_period, None).stale(date(9999, 1, 1)).unwrap();
        (staleness.next_period, staleness.expected_by)
    }

    #[test]
    fn tab638_stopping_at_2024_is_not_yet_stale_on_2026_12_01() {
        let tab638 = TableInfo {
            discontinued: None,
            ..table("2024", Some("Annual"))
        };
        assert_eq!(tab638.stale(date(2026, 12, 1)), None);
        assert_eq!(tab638.stale(date(2026, 12, 31)), None);
        let staleness = tab638.stale(date(2027, 1, 1)).unwrap();
        insta::assert_snapshot!(staleness, @"last period `2024` should have been followed by `2025` by 2026-12-31");
    }

    #[test]
    fn every_shape_has_its_next_period_and_due_date() {
        let cases = [
            ("2024", ("2025", date(2026, 12, 31))),
            ("2021-2022", ("2022-2023", date(2024, 12, 31))),
            ("2024H1", ("2024H2", date(2025, 6, 30))),
            ("2024H2", ("2025H1", date(2025, 12, 31))),
            ("2024K2", ("2024K3", date(2024, 12, 31))),
            ("2024K4", ("2025K1", date(2025, 6, 30))),
            // A month: the next one ends 2025-12-31, then three months' grace.
            ("2025M11", ("2025M12", date(2026, 3, 31))),
            ("2025M12", ("2026M01", date(2026, 4, 30))),
            // ISO week 30 of 2026 is 20–26 July; week 31 then 13 weeks' grace: week 44 ends
            // on Sunday 1 November.
            ("2026V30", ("2026V31", date(2026, 11, 1))),
            // 2026 has 53 ISO weeks (1 January is a Thursday).
            ("2026V52", ("2026V53", date(2027, 4, 4))),
            ("2026V53", ("2027V01", date(2027, 4, 11))),
        ];
        for (last, (next, expected_by)) in cases {
            assert_eq!(due(last), (next.to_string(), expected_by), "{last}");
        }
    }

    #[test]
    fn the_due_day_itself_is_not_stale() {
        let monthly = table("2026M03", Some("Monthly"));
        assert_eq!(monthly.stale(date(2026, 7, 31)), None);
        assert_eq!(
            monthly.stale(date(2026, 8, 1)).unwrap().expected_by,
            date(2026, 7, 31)
        );
    }

    #[test]
    fn cannot_tell_is_none() {
        let today = date(2099, 1, 1);
        let unread = [
            "",
            "24",
            "2024Q2",
            "2024K5",
            "2025M13",
            "2025M1",
            "2025V54",
            "2021V53",
            "2019-2021",
            "20061",
            "2024 ",
            "år 2024",
        ];
        for last in unread {
            assert_eq!(table(last, None).stale(today), None, "{last:?}");
        }
        assert_eq!(TableInfo::default().stale(today), None);
    }

    #[test]
    fn a_time_unit_that_contradicts_the_shape_gives_no_verdict() {
        let today = date(2099, 1, 1);
        assert_eq!(table("2025M11", Some("Annual")).stale(today), None);
        assert_eq!(table("2024", Some("Monthly")).stale(today), None);
        assert!(table("2021-2022", Some("Annual")).stale(today).is_some());
        assert!(table("2024H1", Some("Other")).stale(today).is_some());
    }

    #[test]
    fn a_discontinued_table_is_old_on_purpose() {
        let old = TableInfo {
            discontinued: Some(true),
            ..table("1999", Some("Annual"))
        };
        assert_eq!(old.stale(date(2026, 1, 1)), None);
        let running = TableInfo {
            discontinued: Some(false),
            ..table("1999", Some("Annual"))
        };
        assert!(running.stale(date(2026, 1, 1)).is_some());
    }
}
