//! When to try a request again, and how long to wait first.
//!
//! Owns: the [`RetryPolicy`] (attempts, exponential backoff with full jitter) and reading
//! `Retry-After`.
//! Must not: send requests or sleep (the client does both, cancellably), or decide which
//! answers are retryable (the client's classification does; see `client.rs`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Attempts per request, the first included.
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Backoff before the second attempt is drawn from 0..=this; it doubles per attempt.
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest backoff drawn, whatever the attempt.
pub const DEFAULT_BACKOFF_CAP: Duration = Duration::from_secs(30);
/// Longest `Retry-After` obeyed: a server asking for more is waited this long, then tried again
/// (and the run fails with the rate-limit error if it still refuses).
pub const DEFAULT_RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// How often and how patiently a request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: DEFAULT_ATTEMPTS,
            base: DEFAULT_BACKOFF_BASE,
            cap: DEFAULT_BACKOFF_CAP,
            retry_after_cap: DEFAULT_RETRY_AFTER_CAP,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): "full jitter", a uniform draw from
    /// `0..=min(cap, base × 2^(attempt-1))`, so that clients that failed together do not
    /// come back together. `random` is any uniformly distributed number (`retry::random()` in the client).
    pub fn backoff(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.cap);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(random % nanos.saturating_add(1))
    }

    /// The wait a server asked for, capped at [`retry_after_cap`](Self::retry_after_cap).
    pub fn obey(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.retry_after_cap)
    }
}

/// A uniformly distributed number for [`RetryPolicy::backoff`], from the standard library's
/// per-process random hash keys (jitter needs no cryptography and no extra crate).
pub(super) fn random() -> u64 {
    RandomState::new().hash_one(std::time::Instant::now())
}

/// `Retry-After` as delay seconds (`120`) or an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`,
/// measured from `now`; a date in the past is no wait). `None` when absent or unreadable.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-10-21T07:27:00Z")
            .unwrap()
            .into();
        assert_eq!(
            retry_after(&with_retry_after("7"), now),
            Some(Duration::from_secs(7))
        );
        let date = with_retry_after("Wed, 21 Oct 2026 07:28:00 GMT");
        assert_eq!(retry_after(&date, now), Some(Duration::from_secs(60)));
        let past = with_retry_after("Wed, 21 Oct 2026 07:00:00 GMT");
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_is_a_draw_below_a_doubling_capped_ceiling() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.backoff(1, u64::MAX - 1),
            Duration::from_nanos((u64::MAX - 1) % 500_000_001)
        );
        for attempt in 1..=10 {
            let ceiling = (DEFAULT_BACKOFF_BASE * 2u32.pow(attempt - 1)).min(DEFAULT_BACKOFF_CAP);
            for _ in 0..50 {
                assert!(policy.backoff(attempt, random()) <= ceiling);
            }
        }
        assert_eq!(policy.backoff(3, 0), Duration::ZERO);
        assert_eq!(
            policy.obey(Duration::from_secs(3600)),
            DEFAULT_RETRY_AFTER_CAP
        );
    }
}
