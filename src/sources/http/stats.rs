//! What the HTTP layer has done, host by host, since the process started: for `/metrics`.
//!
//! Owns: [`HttpStats`], the per-host counters every clone of an `HttpClient` shares, and
//! [`HostStats`], a snapshot of one host's.
//! Must not: decide anything (the counters are read by the metrics, never by the attempt loop),
//! or hold a URL: a host is `host:port` as the limiter keys it, never a path, query or userinfo.
//!
//! A request takes its host's counters once (one short lock) and then only adds to atomics, so
//! counting costs an attempt nothing it would notice, and a host's counters are never removed:
//! a process calls a handful of hosts, and a counter that vanished would look like a reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The per-host counters of one process's HTTP client (cheap to clone; clones share them).
#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    hosts: Arc<Mutex<HashMap<String, Arc<HostCounters>>>>,
}

/// One host's counts, as [`HttpStats::snapshot`] took them. Every count only grows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStats {
    /// `host:port` (`api.scb.se:443`).
    pub host: String,
    /// Attempts sent, retries included.
    pub requests: u64,
    /// Failed attempts to be tried again (after a backoff or a `Retry-After`), counted when
    /// decided: a retry cancelled during its wait counts too.
    pub retries: u64,
    /// Answers 429 Too Many Requests.
    pub rate_limited: u64,
    /// Answers 500 to 599.
    pub server_errors: u64,
    /// Attempts without a complete answer: refused or reset connections, timeouts, cut bodies.
    pub errors: u64,
    /// Body bytes read (after gzip), error answers' starts included.
    pub bytes_received: u64,
}

/// One host's live counters; the attempt loop adds to them.
#[derive(Debug, Default)]
pub(super) struct HostCounters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    errors: AtomicU64,
    bytes_received: AtomicU64,
}

// Relaxed everywhere: each counter is read on its own, and no other memory hangs on its value.
impl HostCounters {
    pub(super) fn sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// An answer's status arrived (counted whatever happens to its body).
    pub(super) fn answered(&self, status: u16) {
        match status {
            429 => self.rate_limited.fetch_add(1, Ordering::Relaxed),
            500..=599 => self.server_errors.fetch_add(1, Ordering::Relaxed),
            _ => return,
        };
    }

    pub(super) fn failed(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn received(&self, bytes: u64) {
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl HttpStats {
    /// The counters of `host` (a limiter key), created at its first request.
    pub(super) fn host(&self, host: &str) -> Arc<HostCounters> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        match hosts.get(host) {
            Some(counters) => counters.clone(),
            None => hosts.entry(host.to_string()).or_default().clone(),
        }
    }

    /// Every host called so far, sorted by host.
    pub fn snapshot(&self) -> Vec<HostStats> {
        let hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut snapshot: Vec<HostStats> = hosts
            .iter()
            .map(|(host, c)| HostStats {
                host: host.clone(),
                requests: c.requests.load(Ordering::Relaxed),
                retries: c.retries.load(Ordering::Relaxed),
                rate_limited: c.rate_limited.load(Ordering::Relaxed),
                server_errors: c.server_errors.load(Ordering::Relaxed),
                errors: c.errors.load(Ordering::Relaxed),
                bytes_received: c.bytes_received.load(Ordering::Relaxed),
            })
            .collect();
        snapshot.sort_by(|a, b| a.host.cmp(&b.host));
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_into_the_same_host_and_statuses_land_in_their_class() {
        let stats = HttpStats::default();
        let clone = stats.clone();
        for status in [200, 304, 404, 429, 500, 503] {
            stats.host("b.example:443").answered(status);
        }
        clone.host("b.example:443").sent();
        clone.host("a.example:80").received(7);
        let snapshot = stats.snapshot();
        assert_eq!(
            snapshot,
            [
                HostStats {
                    host: "a.example:80".into(),
                    bytes_received: 7,
                    ..HostStats::default()
                },
                HostStats {
                    host: "b.example:443".into(),
                    requests: 1,
                    rate_limited: 1,
                    server_errors: 2,
                    ..HostStats::default()
                },
            ]
        );
    }
}
