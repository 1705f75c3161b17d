//! The per-host sliding-window rate limiter every request of a process passes through.
//!
//! Owns: each host's limits (learnt from its `?config`/`/config` and `X-Rate-Limit-*` headers,
//! overridden by a pipeline, else [`DEFAULT_MAX_CALLS`] per [`DEFAULT_WINDOW`]), the calls in
//! each host's window, and the waits before a call may start.
//! Must not: send requests or retry (`client.rs` and `retry.rs` do), or parse PxWeb beyond the
//! limit fields of its config.
//!
//! A call occupies its slot from the moment it starts until its [`Permit`] is dropped (the
//! answer read) plus one window. The server counts a call when it *arrives*, which is after we
//! start it and before we finish reading it; counting from the end of the call therefore keeps
//! our window at least as wide as the server's whatever the latency, at the price of one
//! round-trip per window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Calls per window when nothing is known about a host: SCB's published terms (10 per 10 s), the
/// strictest limit seen on a Swedish PxWeb host besides Västerås's 30 per second.
pub const DEFAULT_MAX_CALLS: u32 = 10;
/// Window length when nothing is known about a host.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// Longest window believed, from any party: a host counting calls over more than an hour is
/// taken to count them over an hour.
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// Longest a server's "no calls left until …" (`X-Rate-Limit-Remaining: 0` with a reset time) is
/// believed; a reset further away is taken as a clock error, not as an order to stop for hours.
pub const MAX_SERVER_PAUSE: Duration = Duration::from_secs(300);

/// A host's limits as the limiter applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// Calls that may start within any [`window`](Self::window).
    pub max_calls: u32,
    pub window: Duration,
    /// Most cells one PxWeb data request may ask for; `None` = the host has not said (which is not
    /// "unlimited": the planner then uses its own default).
    pub max_cells: Option<u64>,
    /// Most selected values one PxWeb v1 request may name (v1 `maxValues`); `None` = not said.
    pub max_values: Option<u64>,
}

/// Limits as one party states them: a server's config, its headers, or a pipeline's
/// `[source] server_max_calls`, `server_window_secs`, `server_max_cells`. `None` = not stated;
/// a server's `0` is read as not stated ("announced elsewhere", as SSB's `/config` does), never as
/// unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHints {
    pub max_calls: Option<u32>,
    pub window: Option<Duration>,
    pub max_cells: Option<u64>,
    pub max_values: Option<u64>,
}

impl LimitHints {
    /// The limit fields of a PxWeb config answer: v1 `?config` (`maxCalls`, `timeWindow`,
    /// `maxCells`, `maxValues`) or v2 `/config` (`maxCallsPerTimeWindow`, `timeWindow`,
    /// `maxDataCells`). Fields that are absent, not numbers, or 0 are not stated.
    pub fn from_pxweb_config(config: &serde_json::Value) -> Self {
        let number = |keys: &[&str]| {
            keys.iter()
                .find_map(|key| config.get(*key).and_then(positive))
        };
        Self {
            max_calls: number(&["maxCalls", "maxCallsPerTimeWindow"])
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            window: number(&["timeWindow"]).map(Duration::from_secs),
            max_cells: number(&["maxCells", "maxDataCells"]),
            max_values: number(&["maxValues"]),
        }
    }

    /// Each field from `self`, else from `fallback`.
    fn or(self, fallback: Self) -> Self {
        Self {
            max_calls: self.max_calls.or(fallback.max_calls),
            window: self.window.or(fallback.window),
            max_cells: self.max_cells.or(fallback.max_cells),
            max_values: self.max_values.or(fallback.max_values),
        }
    }
}

/// A positive integer, also when the server wrote it as a string or a float (`"30"`, `30.0`).
fn positive(value: &serde_json::Value) -> Option<u64> {
    let n = match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }?;
    (n > 0).then_some(n)
}

/// What a response's rate-limit headers say. Two families are read, names case-insensitive:
/// AspNetCoreRateLimit's (SCB v2: `X-Rate-Limit-Limit: 10s` is the *window*,
/// `X-Rate-Limit-Remaining: 29`, `X-Rate-Limit-Reset: 2026-09-01T10:00:10Z`) and the IETF draft's
/// (SSB: `x-ratelimit-limit: 40;w=60`, `x-ratelimit-policy: 40;w=60s`, `ratelimit-remaining`,
/// `ratelimit-reset` in seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateHeaders {
    pub hints: LimitHints,
    /// Calls the server says are left in its current window.
    pub remaining: Option<u64>,
    /// How long until the server's window resets, from `now`.
    pub reset_in: Option<Duration>,
}

impl RateHeaders {
    /// Reads the headers; a value that cannot be read is ignored (a header is advice, not a
    /// contract). `now` turns an absolute reset time into a wait.
    pub fn parse(headers: &HeaderMap, now: DateTime<Utc>) -> Self {
        let mut parsed = Self::default();
        let family = ["x-rate-limit-", "x-ratelimit-", "ratelimit-"];
        let value = |suffix: &str| {
            family.iter().find_map(|prefix| {
                headers
                    .get(format!("{prefix}{suffix}"))
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            })
        };
        for text in [value("policy"), value("limit")].into_iter().flatten() {
            parsed.hints = parsed.hints.or(parse_limit(text));
        }
        parsed.remaining = value("remaining").and_then(|v| v.parse().ok());
        parsed.reset_in = value("reset").and_then(|v| parse_reset(v, now));
        parsed
    }
}

/// `10s`, `1m` (a window alone), `40` (calls alone), `40;w=60` or `40;w=60s` (both); in a list
/// (`40, 40;w=60`: the limit, then its policies) each field comes from the first item stating it.
fn parse_limit(text: &str) -> LimitHints {
    let mut hints = LimitHints::default();
    for item in text.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let head = parts.next().unwrap_or("");
        if let Some(window) = parse_period(head) {
            hints.window = hints.window.or(Some(window));
            continue;
        }
        if let Ok(calls) = head.parse::<u32>()
            && calls > 0
        {
            hints.max_calls = hints.max_calls.or(Some(calls));
        }
        for parameter in parts {
            if let Some(w) = parameter.strip_prefix("w=") {
                let window = parse_period(w).or_else(|| w.parse().ok().map(Duration::from_secs));
                hints.window = hints.window.or(window.filter(|w| !w.is_zero()));
            }
        }
    }
    hints
}

/// `10s`, `60s`, `1m`, `1h`, `1d`: a number with a unit. Zero is not a period.
fn parse_period(text: &str) -> Option<Duration> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// An ISO timestamp (AspNetCoreRateLimit) or delta seconds (the IETF draft).
fn parse_reset(text: &str, now: DateTime<Utc>) -> Option<Duration> {
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The rate limiter of one process: cheap to clone, every clone the same limiter.
#[derive(Debug, Clone, Default)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    hosts: Mutex<HashMap<String, HostState>>,
    /// Woken whenever a call ends or a host's limits change, so that waiters look again.
    changed: Notify,
}

#[derive(Debug, Default)]
struct HostState {
    overrides: LimitHints,
    config: LimitHints,
    headers: LimitHints,
    calls: Vec<Call>,
    next_call: u64,
    /// No call starts before this (a 429's `Retry-After`, a server's "0 remaining").
    paused_until: Option<Instant>,
}

#[derive(Debug)]
struct Call {
    id: u64,
    /// `None` while the call is in flight: it holds its slot until it ends.
    ended: Option<Instant>,
}

impl HostState {
    fn limits(&self) -> HostLimits {
        let hints = self.overrides.or(self.config).or(self.headers);
        HostLimits {
            // A zero from an override would block the host for ever; one call per window is the least.
            max_calls: hints.max_calls.unwrap_or(DEFAULT_MAX_CALLS).max(1),
            // A server's window is believed up to an hour: `timeWindow: 1e12` would stop the
            // host for ever (and overflow the clock).
            window: hints.window.unwrap_or(DEFAULT_WINDOW).min(MAX_WINDOW),
            max_cells: hints.max_cells,
            max_values: hints.max_values,
        }
    }
}

/// The wait for a slot was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// A started call's slot in its host's window; dropping it ends the call.
#[derive(Debug)]
#[must_use = "the call's slot is released as soon as the permit is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
    host: String,
    id: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut hosts = self.shared.lock();
            if let Some(call) = hosts
                .get_mut(&self.host)
                .and_then(|state| state.calls.iter_mut().find(|call| call.id == self.id))
            {
                call.ended = Some(Instant::now());
            }
        }
        self.shared.changed.notify_waiters();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HostState>> {
        // Every section below leaves the map consistent, so a panic elsewhere cannot poison it.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RateLimiter {
    /// Waits until a call to `host` may start without the host seeing more than its
    /// `max_calls` in any window, then takes the slot. `Err(Cancelled)` as soon as `cancel` is.
    pub async fn acquire(
        &self,
        host: &str,
        cancel: &CancellationToken,
    ) -> Result<Permit, Cancelled> {
        loop {
            // Registered before looking, so a call ending after the look still wakes us.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake_at = {
                let mut hosts = self.shared.lock();
                let state = hosts.entry(host.to_string()).or_default();
                let now = Instant::now();
                let limits = state.limits();
                state
                    .calls
                    .retain(|call| call.ended.is_none_or(|ended| ended + limits.window > now));
                match state.paused_until {
                    Some(until) if until > now => Some(until),
                    _ if state.calls.len() < limits.max_calls as usize => {
                        let id = state.next_call;
                        state.next_call += 1;
                        state.calls.push(Call { id, ended: None });
                        return Ok(Permit {
                            shared: self.shared.clone(),
                            host: host.to_string(),
                            id,
                        });
                    }
                    // Every slot taken: the first to leave the window frees one; if all are
                    // in flight, the next to end (a notification) starts its window.
                    _ => state
                        .calls
                        .iter()
                        .filter_map(|call| call.ended)
                        .min()
                        .map(|ended| ended + limits.window),
                }
            };
            let sleep = async {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {}
                () = &mut changed => {}
                () = cancel.cancelled() => return Err(Cancelled),
            }
        }
    }

    /// The limits applied to `host` now.
    pub fn limits(&self, host: &str) -> HostLimits {
        self.shared
            .lock()
            .get(host)
            .map_or_else(|| HostState::default().limits(), HostState::limits)
    }

    /// Sets what `host`'s config says (replacing what an earlier config said).
    pub fn learn_config(&self, host: &str, hints: LimitHints) {
        self.update(host, |state| state.config = hints);
    }

    /// Sets a pipeline's `[source] server_*` overrides for `host`; they beat what the server
    /// says. The last pipeline to set them wins: overrides describe the host, not the pipeline.
    pub fn set_overrides(&self, host: &str, overrides: LimitHints) {
        self.update(host, |state| state.overrides = overrides);
    }

    /// Learns from a response's rate-limit headers: the limits they state, and a pause until the
    /// server's window resets when it says no calls are left (capped at [`MAX_SERVER_PAUSE`]).
    pub fn learn_headers(&self, host: &str, headers: &RateHeaders) {
        self.update(host, |state| {
            state.headers = headers.hints.or(state.headers);
            if headers.remaining == Some(0)
                && let Some(reset_in) = headers.reset_in
            {
                pause(state, reset_in.min(MAX_SERVER_PAUSE));
            }
        });
    }

    /// Starts no call to `host` for `wait` (a 429's `Retry-After`); a longer pause already set stays.
    pub fn pause(&self, host: &str, wait: Duration) {
        self.update(host, |state| pause(state, wait));
    }

    fn update(&self, host: &str, change: impl FnOnce(&mut HostState)) {
        change(self.shared.lock().entry(host.to_string()).or_default());
        self.shared.changed.notify_waiters();
    }
}

fn pause(state: &mut HostState, wait: Duration) {
    let until = Instant::now() + wait;
    state.paused_until = Some(state.paused_until.map_or(until, |old| old.max(until)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                let name = HeaderName::from_bytes(k.as_bytes()).unwrap();
                (name, HeaderValue::from_str(v).unwrap())
            })
            .collect()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-09-01T10:00:00Z")
            .unwrap()
            .into()
    }

    #[test]
    fn scb_v2_headers_give_the_window_and_the_reset() {
        let parsed = RateHeaders::parse(
            &headers(&[
                ("X-Rate-Limit-Limit", "10s"),
                ("X-Rate-Limit-Remaining", "0"),
                ("X-Rate-Limit-Reset", "2026-09-01T10:00:04.2500000Z"),
            ]),
            now(),
        );
        assert_eq!(parsed.hints.window, Some(Duration::from_secs(10)));
        assert_eq!(parsed.hints.max_calls, None);
        assert_eq!(parsed.remaining, Some(0));
        assert_eq!(parsed.reset_in, Some(Duration::from_millis(4250)));
    }

    #[test]
    fn ssb_headers_give_calls_and_window() {
        for limit in ["40;w=60", "40, 40;w=60", "40;w=60s"] {
            let parsed = RateHeaders::parse(&headers(&[("x-ratelimit-limit", limit)]), now());
            assert_eq!(parsed.hints.max_calls, Some(40), "{limit}");
            assert_eq!(
                parsed.hints.window,
                Some(Duration::from_secs(60)),
                "{limit}"
            );
        }
        let policy = RateHeaders::parse(&headers(&[("RateLimit-Policy", "300;w=60")]), now());
        assert_eq!(policy.hints.max_calls, Some(300));
    }

    #[test]
    fn a_zero_limit_is_not_unlimited_but_unstated() {
        let parsed = RateHeaders::parse(&headers(&[("x-ratelimit-limit", "0;w=0")]), now());
        assert_eq!(parsed.hints, LimitHints::default());
        let config =
            serde_json::json!({"maxDataCells": 0, "maxCallsPerTimeWindow": 0, "timeWindow": 0});
        assert_eq!(
            LimitHints::from_pxweb_config(&config),
            LimitHints::default()
        );
        let limiter = RateLimiter::default();
        limiter.learn_config("ssb", LimitHints::from_pxweb_config(&config));
        assert_eq!(limiter.limits("ssb").max_calls, DEFAULT_MAX_CALLS);
    }

    #[test]
    fn v1_and_v2_configs_give_their_limits() {
        let Some(v2) = crate::fixtures::real("pxweb/config.json") else {
            return;
        };
        let v2: serde_json::Value = serde_json::from_slice(&v2).unwrap();
        let expected = LimitHints {
            max_calls: Some(30),
            window: Some(Duration::from_secs(10)),
            max_cells: Some(150_000),
            max_values: None,
        };
        assert_eq!(LimitHints::from_pxweb_config(&v2), expected);
        let v1 = serde_json::json!({"maxValues": 110000, "maxCells": 150000, "maxCalls": 30, "timeWindow": 10});
        assert_eq!(
            LimitHints::from_pxweb_config(&v1),
            LimitHints {
                max_values: Some(110_000),
                ..expected
            }
        );
    }

    #[test]
    fn a_window_of_years_is_taken_as_an_hour() {
        let limiter = RateLimiter::default();
        let config = serde_json::json!({"maxCalls": 1, "timeWindow": 1e19});
        limiter.learn_config("h:80", LimitHints::from_pxweb_config(&config));
        assert_eq!(limiter.limits("h:80").window, MAX_WINDOW);
    }

    #[test]
    fn overrides_beat_config_which_beats_headers_which_beat_the_default() {
        let limiter = RateLimiter::default();
        let host = "api.scb.se:443";
        assert_eq!(
            limiter.limits(host),
            HostLimits {
                max_calls: 10,
                window: DEFAULT_WINDOW,
                max_cells: None,
                max_values: None
            }
        );
        let parsed = RateHeaders::parse(&headers(&[("x-ratelimit-limit", "40;w=60")]), now());
        limiter.learn_headers(host, &parsed);
        assert_eq!(limiter.limits(host).max_calls, 40);
        limiter.learn_config(
            host,
            LimitHints {
                max_calls: Some(30),
                max_cells: Some(150_000),
                ..LimitHints::default()
            },
        );
        assert_eq!(
            limiter.limits(host),
            HostLimits {
                max_calls: 30,
                window: Duration::from_secs(60),
                max_cells: Some(150_000),
                max_values: None
            }
        );
        limiter.set_overrides(
            host,
            LimitHints {
                max_calls: Some(5),
                ..LimitHints::default()
            },
        );
        assert_eq!(limiter.limits(host).max_calls, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_a_waiting_acquire() {
        let limiter = RateLimiter::default();
        let one_per_minute = LimitHints {
            max_calls: Some(1),
            window: Some(Duration::from_secs(60)),
            ..LimitHints::default()
        };
        limiter.set_overrides("h", one_per_minute);
        let cancel = CancellationToken::new();
        let first = limiter.acquire("h", &cancel).await.unwrap();
        drop(first);
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            canceller.cancel();
        });
        let started = Instant::now();
        assert_eq!(limiter.acquire("h", &cancel).await.unwrap_err(), Cancelled);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_frees_one_window_after_its_call_ends() {
        let limiter = RateLimiter::default();
        limiter.set_overrides(
            "h",
            LimitHints {
                max_calls: Some(2),
                window: Some(Duration::from_secs(10)),
                ..LimitHints::default()
            },
        );
        let cancel = CancellationToken::new();
        let start = Instant::now();
        let a = limiter.acquire("h", &cancel).await.unwrap();
        let b = limiter.acquire("h", &cancel).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        drop(a); // ends at 3 s: its slot frees at 13 s
        let waiter = tokio::spawn({
            let (limiter, cancel) = (limiter.clone(), cancel.clone());
            async move { limiter.acquire("h", &cancel).await.map(|_| start.elapsed()) }
        });
        tokio::time::sleep(Duration::from_secs(20)).await;
        drop(b);
        assert_eq!(waiter.await.unwrap().unwrap(), Duration::from_secs(13));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_with_no_calls_left_pauses_the_host_until_its_reset() {
        let limiter = RateLimiter::default();
        let parsed = RateHeaders {
            remaining: Some(0),
            reset_in: Some(Duration::from_secs(4)),
            ..RateHeaders::default()
        };
        limiter.learn_headers("h", &parsed);
        let start = Instant::now();
        let _permit = limiter
            .acquire("h", &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }
}
