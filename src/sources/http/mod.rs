//! The HTTP layer every network source shares: one client and one rate limiter per process.
//!
//! Owns: sending requests politely (the per-host limiter, retries with backoff, timeouts, a size
//! limit), reading answers as the caller asked (bytes, or JSON checked to be JSON), conditional
//! requests, the request log lines, and [`HttpError`].
//! Must not: know a source's protocol (PxWeb query plans, Kolada paging and the meaning of their
//! error bodies belong to their source kinds), archive payloads, or decode them.
//!
//! Files: `client.rs` sends and reads, `limiter.rs` decides when a call may start, `retry.rs`
//! how long to wait before trying again, `redact.rs` how a URL is shown, `stats.rs` what was
//! sent and answered per host.

mod client;
mod limiter;
mod redact;
mod retry;
mod stats;
#[cfg(test)]
pub(crate) mod testing;

use std::time::Duration;

pub use client::{
    Answer, BODY_START_BYTES, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMEOUT,
    Expect, HttpClient, HttpSettings, ProxyPolicy, Request, Response, USER_AGENT, host_key,
    install_crypto_provider,
};
pub use limiter::{
    Cancelled, DEFAULT_MAX_CALLS, DEFAULT_WINDOW, HostLimits, LimitHints, MAX_SERVER_PAUSE,
    MAX_WINDOW, Permit, RateHeaders, RateLimiter,
};
pub use redact::{Redacted, SECRET_QUERY_KEYS, Shown};
pub use retry::{
    DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_CAP, DEFAULT_RETRY_AFTER_CAP,
    RetryPolicy,
};
pub use stats::{HostStats, HttpStats};

/// Errors of the HTTP layer. URLs in them are already redacted. Errors after retries say how
/// many attempts were made; [`HttpError::Status`] is never retried for a 4xx other than 429: it
/// is the server's answer, and the source kind reads its `body_start` (PxWeb's "Too many cells
/// selected").
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{url} is not an http(s) URL; check `url` in [source]")]
    InvalidUrl { url: String },
    #[error(
        "cannot set up the HTTP client for {url}; TLS needs the system's CA certificates \
             (install `ca-certificates`)"
    )]
    Client {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: no complete answer within {} s after {attempts} attempts; the server is slow \
             or overloaded, try again later", .timeout.as_secs_f64())]
    Timeout {
        url: String,
        timeout: Duration,
        attempts: u32,
    },
    #[error(
        "cannot reach {url} after {attempts} attempts; check the network, the host name and \
             any proxy (HTTPS_PROXY, NO_PROXY)"
    )]
    Connect {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{url}: the answer was cut off after {bytes} bytes, {attempts} attempts in a row; \
             the server or a proxy drops the connection, try again later"
    )]
    Cut {
        url: String,
        bytes: u64,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "{url}: the answer is larger than {limit} bytes and was not read further; select \
             less per request, or raise `max_body_bytes`"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("{url} answered HTTP {status}: {body_start:?}; check the URL and the query")]
    Status {
        url: String,
        status: u16,
        /// The first [`BODY_START_BYTES`] of the body, lossy UTF-8.
        body_start: String,
        /// Attempts made: 1 for a 4xx, more for a 5xx that persisted.
        attempts: u32,
    },
    #[error(
        "{url} answered {content_type:?} where {expected} was asked for; the server probably \
             sent an error page, try again later or check the URL"
    )]
    Format {
        url: String,
        /// The Content-Type header as sent (empty when absent).
        content_type: String,
        expected: &'static str,
        #[source]
        source: Option<serde_json::Error>,
    },
    #[error("{url}: cancelled before the answer arrived")]
    Cancelled { url: String },
    #[error("{url} still answers 429 Too Many Requests after {attempts} attempts (last \
             Retry-After: {}); another client may share this address, or lower \
             `server_max_calls` / raise `server_window_secs` in [source]",
             .retry_after.map_or("none".to_string(), |d| format!("{} s", d.as_secs())))]
    RateLimited {
        url: String,
        attempts: u32,
        retry_after: Option<Duration>,
    },
}

impl HttpError {
    /// Whether trying the whole fetch again later may well succeed: the network, a timeout, a
    /// cut answer, a 5xx or 429 that outlasted the retries, an error page in place of JSON. A
    /// 4xx or a refused URL will answer the same next time.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. }
            | Self::Connect { .. }
            | Self::Cut { .. }
            | Self::RateLimited { .. }
            | Self::Format { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            Self::InvalidUrl { .. }
            | Self::Client { .. }
            | Self::TooLarge { .. }
            | Self::Cancelled { .. } => false,
        }
    }

    /// The HTTP status of an answer the server gave (a non-retried 4xx, a 5xx after retries).
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}
