//! A pipeline's `schedule` (crontab, 5 fields or 6 with seconds) in its IANA `timezone`:
//! when it fires, as instants in UTC.
//!
//! Owns: parsing and checking both keys, and the next fire times, computed by croner in the
//! pipeline's zone: on the spring-forward night a 02:30 job fires once (at the first instant
//! after the gap), on the fall-back night once (not in both 02:30s) — the `cron` crate skips
//! the first and doubles the second.
//! Must not: keep time, sleep or decide what fires (the daemon's scheduler does).

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The zone a schedule is read in when the pipeline names none.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Europe::Stockholm;
/// Most answers of croner walked through to find a fire time later than asked (see
/// [`Schedule::next_after`]); a schedule needing more is treated as never firing.
const MAX_STEPS: usize = 10_000;

/// A checked schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    timezone: Tz,
}

/// Why a schedule or zone is refused; the message says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "`{expression}` is not a crontab ({why}); write 5 fields (minute hour day month \
         weekday, e.g. \"30 5 * * 1\") or 6 with seconds first"
    )]
    Expression { expression: String, why: String },
    #[error("`{timezone}` is not an IANA time zone; write e.g. \"Europe/Stockholm\" or \"UTC\"")]
    Timezone { timezone: String },
}

impl Schedule {
    /// `expression` read in `timezone` (default [`DEFAULT_TIMEZONE`]).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let timezone = match timezone {
            None => DEFAULT_TIMEZONE,
            Some(name) => name.parse().map_err(|_| ScheduleError::Timezone {
                timezone: name.to_string(),
            })?,
        };
        let fields = expression.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(ScheduleError::Expression {
                expression: expression.to_string(),
                why: format!("it has {fields} fields"),
            });
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| ScheduleError::Expression {
                expression: expression.to_string(),
                why: e.to_string(),
            })?;
        Ok(Self {
            expression: expression.to_string(),
            cron,
            timezone,
        })
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The first fire time strictly after `after`; `None` if the expression never fires again
    /// (`0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Whole seconds: croner keeps the fraction of its starting point, which would put every
        // fire that far past its slot.
        let whole = after.with_nanosecond(0).unwrap_or(after);
        // Inside the repeated hour of a fall-back night croner reads the local time at its
        // earlier offset and may answer a slot already past (from 02:20 CET, the 02:30 CEST an
        // hour ago): walk on from its answers until one is really later.
        let mut from = whole;
        for _ in 0..MAX_STEPS {
            let local = from.with_timezone(&self.timezone);
            let next = self.cron.find_next_occurrence(&local, false).ok()?;
            let next = next.with_timezone(&Utc);
            if next > after {
                return Some(next);
            }
            from = if next == from {
                from + chrono::Duration::seconds(1)
            } else {
                next
            };
        }
        None
    }

    /// The next `n` fire times after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(n);
        let mut from = after;
        while times.len() < n {
            let Some(next) = self.next_after(from) else {
                break;
            };
            times.push(next);
            from = next;
        }
        times
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.timezone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn fires_between(schedule: &Schedule, from: &str, to: &str) -> Vec<String> {
        let to = utc(to);
        let mut fires = Vec::new();
        let mut at = utc(from);
        while let Some(next) = schedule.next_after(at).filter(|next| *next < to) {
            fires.push(next.to_rfc3339());
            at = next;
        }
        fires
    }

    #[test]
    fn a_0230_job_fires_once_on_the_spring_forward_night() {
        // 2026-03-29 in Stockholm: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        let daily = Schedule::parse("30 2 * * *", None).unwrap();
        let fires = fires_between(&daily, "2026-03-28T00:00:00Z", "2026-03-31T00:00:00Z");
        assert_eq!(fires.len(), 3, "{fires:?}");
        assert_eq!(fires[0], "2026-03-28T01:30:00+00:00", "02:30 CET");
        assert!(
            fires[1].starts_with("2026-03-29T01:"),
            "once, right after the gap: {fires:?}"
        );
        assert_eq!(fires[2], "2026-03-30T00:30:00+00:00", "02:30 CEST");
    }

    #[test]
    fn a_0230_job_fires_once_on_the_fall_back_night() {
        // 2026-10-25 in Stockholm: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let daily = Schedule::parse("30 2 * * *", Some("Europe/Stockholm")).unwrap();
        let fires = fires_between(&daily, "2026-10-24T00:00:00Z", "2026-10-27T00:00:00Z");
        assert_eq!(
            fires,
            [
                "2026-10-24T00:30:00+00:00",
                "2026-10-25T00:30:00+00:00",
                "2026-10-26T01:30:00+00:00"
            ],
            "once on the 25th"
        );
    }

    #[test]
    fn six_fields_have_seconds_first_and_zones_are_iana() {
        let every_ten = Schedule::parse("*/10 * * * * *", Some("UTC")).unwrap();
        assert_eq!(
            every_ten.upcoming(utc("2026-12-01T10:00:03Z"), 2),
            [utc("2026-12-01T10:00:10Z"), utc("2026-12-01T10:00:20Z")]
        );
        assert_eq!(every_ten.to_string(), "*/10 * * * * * (UTC)");
        let err = Schedule::parse("30 5 * *", None).unwrap_err();
        insta::assert_snapshot!(err, @r#"`30 5 * *` is not a crontab (it has 4 fields); write 5 fields (minute hour day month weekday, e.g. "30 5 * * 1") or 6 with seconds first"#);
        assert!(matches!(
            Schedule::parse("61 5 * * *", None),
            Err(ScheduleError::Expression { .. })
        ));
        let err = Schedule::parse("30 5 * * *", Some("Europe/Stockholmm")).unwrap_err();
        insta::assert_snapshot!(err, @r#"`Europe/Stockholmm` is not an IANA time zone; write e.g. "Europe/Stockholm" or "UTC""#);
    }

    #[test]
    fn from_inside_the_repeated_hour_the_next_fire_is_later_not_past() {
        let daily = Schedule::parse("30 2 * * *", None).unwrap();
        for (from, next) in [
            ("2026-10-25T00:20:00Z", "2026-10-25T00:30:00+00:00"),
            ("2026-10-25T01:20:00Z", "2026-10-26T01:30:00+00:00"),
            ("2026-10-25T01:40:00Z", "2026-10-26T01:30:00+00:00"),
        ] {
            let at = DateTime::parse_from_rfc3339(from).unwrap().to_utc();
            assert_eq!(
                daily.next_after(at).unwrap().to_rfc3339(),
                next,
                "from {from}"
            );
        }
    }

    #[test]
    fn fire_times_fall_on_whole_seconds() {
        let every_five = Schedule::parse("*/5 * * * * *", Some("UTC")).unwrap();
        let after = DateTime::parse_from_rfc3339("2026-12-02T04:44:34.951Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            every_five.next_after(after).unwrap().to_rfc3339(),
            "2026-12-02T04:44:35+00:00"
        );
    }

    #[test]
    fn a_schedule_that_never_fires_again_says_so() {
        let never = Schedule::parse("0 0 30 2 *", None).unwrap();
        assert_eq!(never.next_after(utc("2026-12-01T00:00:00Z")), None);
        assert!(never.upcoming(utc("2026-12-01T00:00:00Z"), 3).is_empty());
    }
}
