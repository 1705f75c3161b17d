//! The daemon's counters, and their Prometheus text (exposition format 0.0.4) for `/metrics`.
//!
//! Owns: what is counted (runs by pipeline and status, run durations, rows written and refused,
//! the last success per pipeline, scheduler lag) and rendering it with the gauges its caller
//! reads at scrape time (active runs, HTTP counts by host).
//! Must not: count anything by itself (the runner and scheduler tell it) or know HTTP serving.
//!
//! Kept by hand rather than through a metrics crate: a dozen series, one writer per event, and
//! a text format that is a page of rules.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::sources::http::HostStats;

/// Upper bounds of the run duration histogram, in seconds.
const RUN_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];
/// Upper bounds of the scheduler lag histogram, in seconds.
const LAG_BUCKETS: &[f64] = &[0.005, 0.05, 0.25, 1.0, 5.0, 30.0, 120.0];

/// The daemon's counters; shared behind an `Arc`, touched once per run or fire.
#[derive(Debug, Default)]
pub struct Metrics {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// (pipeline, status) → runs ended.
    runs: BTreeMap<(String, String), u64>,
    durations: BTreeMap<String, Histogram>,
    rows_written: BTreeMap<String, u64>,
    rows_rejected: BTreeMap<String, u64>,
    /// Unix seconds of each pipeline's last succeeded (or skipped: up to date) run.
    last_success: BTreeMap<String, f64>,
    lag: Histogram,
    retries: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Per bucket of the histogram's bounds, not cumulative.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len()];
        }
        if let Some(bucket) = bounds.iter().position(|bound| value <= *bound) {
            self.counts[bucket] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// What is read at scrape time rather than counted.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub pipelines: usize,
    pub running: usize,
    pub queued: usize,
    /// Whether the last reload of the configuration passed `check`.
    pub config_ok: bool,
    /// The HTTP client's counts by host.
    pub hosts: Vec<HostStats>,
}

/// One ended run, as counted.
#[derive(Debug, Clone)]
pub struct RunCount<'a> {
    pub pipeline: &'a str,
    pub status: &'a str,
    pub elapsed: Duration,
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Unix seconds of its end.
    pub finished: f64,
    pub retried: bool,
}

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("a panic while holding the metrics is a bug")
    }

    /// Counts an ended run.
    pub fn run_ended(&self, run: &RunCount) {
        let mut state = self.state();
        let pipeline = run.pipeline.to_string();
        *state
            .runs
            .entry((pipeline.clone(), run.status.to_string()))
            .or_default() += 1;
        (state.durations.entry(pipeline.clone()).or_default())
            .observe(RUN_BUCKETS, run.elapsed.as_secs_f64());
        *state.rows_written.entry(pipeline.clone()).or_default() += run.rows_written;
        *state.rows_rejected.entry(pipeline.clone()).or_default() += run.rows_rejected;
        if run.retried {
            *state.retries.entry(pipeline.clone()).or_default() += 1;
        }
        if matches!(run.status, "succeeded" | "skipped") {
            state.last_success.insert(pipeline, run.finished);
        }
    }

    /// Sets `pipeline`'s last success from the ledger at start-up.
    pub fn last_success(&self, pipeline: &str, unix_seconds: f64) {
        (self.state().last_success)
            .entry(pipeline.to_string())
            .and_modify(|t| *t = t.max(unix_seconds))
            .or_insert(unix_seconds);
    }

    /// Counts one fire `lag` after its slot.
    pub fn fired(&self, lag: Duration) {
        self.state().lag.observe(LAG_BUCKETS, lag.as_secs_f64());
    }

    /// The Prometheus text of everything counted and of `gauges`.
    pub fn render(&self, gauges: &Gauges) -> String {
        let state = self.state();
        let mut out = String::new();
        family(
            &mut out,
            "indikator_runs_total",
            "counter",
            "Runs ended, by pipeline and status.",
        );
        for ((pipeline, status), n) in &state.runs {
            let labels = [("pipeline", pipeline.as_str()), ("status", status.as_str())];
            sample(&mut out, "indikator_runs_total", &labels, *n as f64);
        }
        let per_pipeline: [(&str, &str, &str, &BTreeMap<String, u64>); 3] = [
            (
                "indikator_run_retries_total",
                "counter",
                "Scheduled runs that failed transiently and were queued again.",
                &state.retries,
            ),
            (
                "indikator_rows_written_total",
                "counter",
                "Observation rows committed.",
                &state.rows_written,
            ),
            (
                "indikator_rows_rejected_total",
                "counter",
                "Source rows refused into rejects/.",
                &state.rows_rejected,
            ),
        ];
        for (name, kind, help, values) in per_pipeline {
            let rows = values.iter().map(|(p, n)| (p.as_str(), *n as f64));
            series(&mut out, name, kind, help, "pipeline", rows);
        }
        let last = state.last_success.iter().map(|(p, t)| (p.as_str(), *t));
        series(
            &mut out,
            "indikator_last_success_timestamp_seconds",
            "gauge",
            "End of the last succeeded or skipped (up to date) run, Unix time.",
            "pipeline",
            last,
        );
        family(
            &mut out,
            "indikator_run_duration_seconds",
            "histogram",
            "Run duration from its slot to its end.",
        );
        for (pipeline, histogram) in &state.durations {
            buckets(
                &mut out,
                "indikator_run_duration_seconds",
                &[("pipeline", pipeline)],
                RUN_BUCKETS,
                histogram,
            );
        }
        family(
            &mut out,
            "indikator_scheduler_lag_seconds",
            "histogram",
            "How long after its scheduled time each fire happened.",
        );
        buckets(
            &mut out,
            "indikator_scheduler_lag_seconds",
            &[],
            LAG_BUCKETS,
            &state.lag,
        );
        drop(state);
        let active = [
            ("running", gauges.running as f64),
            ("queued", gauges.queued as f64),
        ];
        series(
            &mut out,
            "indikator_runs_active",
            "gauge",
            "Runs holding a slot (running) or waiting for one (queued).",
            "state",
            active.into_iter(),
        );
        family(
            &mut out,
            "indikator_pipelines",
            "gauge",
            "Pipelines loaded.",
        );
        sample(
            &mut out,
            "indikator_pipelines",
            &[],
            gauges.pipelines as f64,
        );
        family(
            &mut out,
            "indikator_config_ok",
            "gauge",
            "1 when the last (re)load of the configuration passed check, 0 when the previous set was kept.",
        );
        sample(
            &mut out,
            "indikator_config_ok",
            &[],
            f64::from(u8::from(gauges.config_ok)),
        );
        let http: [HostSeries; 6] = [
            (
                "indikator_http_requests_total",
                "HTTP attempts sent, retries included, by host.",
                |h| h.requests,
            ),
            (
                "indikator_http_retries_total",
                "HTTP attempts that failed and were tried again, by host.",
                |h| h.retries,
            ),
            (
                "indikator_http_rate_limited_total",
                "HTTP 429 answers, by host.",
                |h| h.rate_limited,
            ),
            (
                "indikator_http_server_errors_total",
                "HTTP 5xx answers, by host.",
                |h| h.server_errors,
            ),
            (
                "indikator_http_errors_total",
                "HTTP attempts without a complete answer (refused, reset, timed out, cut), by host.",
                |h| h.errors,
            ),
            (
                "indikator_http_received_bytes_total",
                "HTTP body bytes read, by host.",
                |h| h.bytes_received,
            ),
        ];
        for (name, help, value) in http {
            let rows = gauges
                .hosts
                .iter()
                .map(|h| (h.host.as_str(), value(h) as f64));
            series(&mut out, name, "counter", help, "host", rows);
        }
        out
    }
}

/// One counter of the HTTP client's by host: name, help, and how to read it.
type HostSeries = (&'static str, &'static str, fn(&HostStats) -> u64);

/// A family with one label: its header, then a sample per `(label value, value)`.
fn series<'a>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    rows: impl Iterator<Item = (&'a str, f64)>,
) {
    family(out, name, kind, help);
    for (value_of_label, value) in rows {
        sample(out, name, &[(label, value_of_label)], value);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn buckets(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    bounds: &[f64],
    histogram: &Histogram,
) {
    let mut cumulative = 0;
    let bucket = format!("{name}_bucket");
    for (i, bound) in bounds.iter().enumerate() {
        cumulative += histogram.counts.get(i).copied().unwrap_or(0);
        let le = bound.to_string();
        let mut with_le = labels.to_vec();
        with_le.push(("le", &le));
        sample(out, &bucket, &with_le, cumulative as f64);
    }
    let mut with_le = labels.to_vec();
    with_le.push(("le", "+Inf"));
    sample(out, &bucket, &with_le, histogram.count as f64);
    sample(out, &format!("{name}_sum"), labels, histogram.sum);
    sample(
        out,
        &format!("{name}_count"),
        labels,
        histogram.count as f64,
    );
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_lags_are_counted_into_cumulative_buckets() {
        let metrics = Metrics::default();
        let run = |status, secs| RunCount {
            pipeline: "p",
            status,
            elapsed: Duration::from_secs_f64(secs),
            rows_written: 10,
            rows_rejected: 1,
            finished: 1_700_000_000.0,
            retried: false,
        };
        metrics.run_ended(&run("succeeded", 0.3));
        metrics.run_ended(&run("failed", 7.0));
        metrics.fired(Duration::from_millis(2));
        let text = metrics.render(&Gauges {
            hosts: vec![HostStats {
                host: "api.scb.se:443".into(),
                requests: 3,
                retries: 1,
                rate_limited: 1,
                ..HostStats::default()
            }],
            ..Gauges::default()
        });
        for line in [
            "indikator_runs_total{pipeline=\"p\",status=\"succeeded\"} 1",
            "indikator_runs_total{pipeline=\"p\",status=\"failed\"} 1",
            "indikator_run_duration_seconds_bucket{pipeline=\"p\",le=\"0.5\"} 1",
            "indikator_run_duration_seconds_bucket{pipeline=\"p\",le=\"15\"} 2",
            "indikator_run_duration_seconds_bucket{pipeline=\"p\",le=\"+Inf\"} 2",
            "indikator_run_duration_seconds_count{pipeline=\"p\"} 2",
            "indikator_rows_written_total{pipeline=\"p\"} 20",
            "indikator_last_success_timestamp_seconds{pipeline=\"p\"} 1700000000",
            "indikator_scheduler_lag_seconds_bucket{le=\"0.005\"} 1",
            "indikator_http_rate_limited_total{host=\"api.scb.se:443\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
