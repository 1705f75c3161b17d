//! Alerts: tells `[alerts] webhook_url` of every failed run, as a JSON POST.
//!
//! Owns: the events and their JSON ([`Alert`], [`Event`]), the bounded queue in front of the
//! webhook and its one sender task, and delivery through the process's shared `HttpClient`
//! (its retries and backoff, a short timeout per attempt).
//! Must not: hold up or fail a run (a full queue drops the alert, an undeliverable alert is a
//! warning), show more of the webhook URL than its scheme and host anywhere, or decide which
//! runs happen (the daemon calls [`Alerter::run_ended`] after each).
//!
//! The body is one flat JSON object, stable for receivers that script on it:
//! `{"event":"run_failed","run_id":…,"pipeline":…,"trigger":…,"status":"failed","error":…,
//! "started":…,"finished":…,"rows_read":…,"rows_rejected":…,"host":…,"text":…}`. `event` names
//! the variant; `host` (the machine's name, `null` where it cannot be read cheaply) and `text`
//! (one line for Slack- or Teams-like receivers, which show `text` and ignore the rest) come
//! with every event. A new kind of event (a survey file moved to `failed/`) is one more
//! [`Event`] variant and one arm of [`Event::summary`].

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::AlertSettings;
use crate::ledger::{RunRecord, RunStatus};
use crate::sources::http::{HttpClient, HttpError, Request, Shown};

/// Alerts waiting for the sender task; one more is dropped with a warning. A webhook that is
/// down makes each alert take its retries (seconds), so a burst of failures fills this rather
/// than a task per alert piling up.
pub const QUEUE_CAPACITY: usize = 64;
/// Longest one attempt at the webhook may take; receivers answer in milliseconds or not at all.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest line of an error quoted in [`Alert::text`]; the whole error is in `error`.
const TEXT_ERROR_CHARS: usize = 300;

/// What an alert is about. Serialised with its name under `event` (`"run_failed"`) and its
/// fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunFailed(RunFailed),
}

/// A run that ended `failed`, as the ledger recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunFailed {
    pub run_id: String,
    pub pipeline: String,
    /// `manual`, `schedule`, `api`.
    pub trigger: String,
    pub status: String,
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub rows_read: u64,
    pub rows_rejected: u64,
}

/// One POST's body: the event, the machine it happened on, and a line for humans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    #[serde(flatten)]
    pub event: Event,
    pub host: Option<String>,
    pub text: String,
}

/// What became of an event handed to the [`Alerter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// The sender task will POST it.
    Queued,
    /// Nothing to tell: no webhook is configured, or the run did not fail.
    Ignored,
    /// The queue was full (or the process is stopping): dropped, with a warning.
    Dropped,
}

impl Event {
    /// The event a run's end raises: only `failed` alerts. `interrupted` (a stop or a crash,
    /// redone by the next run), `cancelled` (an operator's doing) and the rest do not.
    pub fn of_run(record: &RunRecord) -> Option<Self> {
        (record.status == RunStatus::Failed).then(|| {
            Self::RunFailed(RunFailed {
                run_id: record.run_id.clone(),
                pipeline: record.pipeline.clone(),
                trigger: record.trigger.clone(),
                status: record.status.as_str().to_string(),
                error: record.error.clone(),
                started: record.started.clone(),
                finished: record.finished.clone(),
                rows_read: record.rows_read,
                rows_rejected: record.rows_rejected,
            })
        })
    }

    /// One line a person reads in a chat channel.
    pub fn summary(&self, host: Option<&str>) -> String {
        let by = host.map_or("indikator".to_string(), |h| format!("indikator on {h}"));
        match self {
            Self::RunFailed(run) => {
                let error = run.error.as_deref().map_or(String::new(), |error| {
                    format!(": {}", first_line(error, TEXT_ERROR_CHARS))
                });
                format!(
                    "{by}: pipeline {} failed (run {}, {}){error}",
                    run.pipeline, run.run_id, run.trigger
                )
            }
        }
    }
}

/// The first line of `text`, at most `max` characters, `…` when anything was left out.
fn first_line(text: &str, max: usize) -> String {
    let text = text.trim_end();
    let mut line: String = text
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(max)
        .collect();
    if line.len() < text.len() {
        line.push('…');
    }
    line
}

enum Job {
    Send(Box<Alert>),
    /// Answered once every job queued before it is done.
    Flush(oneshot::Sender<()>),
}

/// Hands alerts to the webhook from off the caller's path. Cheap to clone; clones share one
/// queue and one sender task, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct Alerter {
    webhook: Option<Webhook>,
    host: Option<Arc<str>>,
}

#[derive(Clone)]
struct Webhook {
    queue: mpsc::Sender<Job>,
    /// The URL as logs show it ([`Shown::Origin`]): a webhook's path is its secret.
    shown: Arc<str>,
}

impl std::fmt::Debug for Alerter {
    // By hand: the derived one would print the webhook's secret path.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("webhook", &self.webhook.as_ref().map(|w| &*w.shown))
            .field("host", &self.host)
            .finish()
    }
}

impl Alerter {
    /// An alerter for `settings`, sending through `http` (the process's client: its stats and
    /// rate limits then cover the webhook too). With a webhook it spawns the sender task, so it
    /// must be called inside a tokio runtime; without one every event is [`Queued::Ignored`].
    pub fn new(settings: &AlertSettings, http: HttpClient) -> Self {
        let host = hostname().map(Arc::from);
        let webhook = settings.webhook_url.as_ref().map(|url| {
            let (queue, jobs) = mpsc::channel(QUEUE_CAPACITY);
            let shown: Arc<str> = Shown::Origin.show(url).into();
            tokio::spawn(deliver_all(jobs, http, url.clone(), shown.clone()));
            Webhook { queue, shown }
        });
        Self { webhook, host }
    }

    /// Alerts if `record` (a run as the ledger has it after its end) failed. Never waits.
    pub fn run_ended(&self, record: &RunRecord) -> Queued {
        match Event::of_run(record) {
            Some(event) => self.alert(event),
            None => Queued::Ignored,
        }
    }

    /// Queues `event` for the webhook. Never waits.
    pub fn alert(&self, event: Event) -> Queued {
        let Some(webhook) = &self.webhook else {
            return Queued::Ignored;
        };
        let host = self.host.as_deref();
        let alert = Alert {
            text: event.summary(host),
            host: host.map(str::to_string),
            event,
        };
        match webhook.queue.try_send(Job::Send(Box::new(alert))) {
            Ok(()) => Queued::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    url = %webhook.shown,
                    queued = QUEUE_CAPACITY,
                    "alert dropped: the webhook is not keeping up"
                );
                Queued::Dropped
            }
            // The sender task is gone only with the runtime: the process is stopping.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(url = %webhook.shown, "alert dropped: shutting down");
                Queued::Dropped
            }
        }
    }

    /// Waits until every alert queued before this call was delivered or given up, at most
    /// `within` (the daemon's last step at shutdown, so that a run failing in the grace period
    /// is still told). `false` when time ran out first.
    pub async fn flush(&self, within: Duration) -> bool {
        let Some(webhook) = &self.webhook else {
            return true;
        };
        let (done, delivered) = oneshot::channel();
        let flushed =
            async { webhook.queue.send(Job::Flush(done)).await.is_ok() && delivered.await.is_ok() };
        match tokio::time::timeout(within, flushed).await {
            Ok(flushed) => flushed,
            Err(_) => {
                tracing::warn!(url = %webhook.shown, "alerts still queued at shutdown");
                false
            }
        }
    }
}

/// The sender task: one alert at a time, in order, until every [`Alerter`] clone is gone.
async fn deliver_all(
    mut jobs: mpsc::Receiver<Job>,
    http: HttpClient,
    url: String,
    shown: Arc<str>,
) {
    // Nothing cancels a delivery but the process ending: [`Alerter::flush`] bounds the wait.
    let never = CancellationToken::new();
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Send(alert) => match deliver(&http, &url, &alert, &never).await {
                Ok(()) => tracing::debug!(url = %shown, "alert delivered"),
                Err(err) => tracing::warn!(url = %shown, error = %err, "alert not delivered"),
            },
            Job::Flush(done) => {
                // Err = the flusher stopped waiting; nothing to tell.
                let _ = done.send(());
            }
        }
    }
}

/// POSTs `alert` to `url`, retried as the client's policy says. Errors show the URL by its
/// origin only.
async fn deliver(
    http: &HttpClient,
    url: &str,
    alert: &Alert,
    cancel: &CancellationToken,
) -> Result<(), HttpError> {
    let request = Request::post_json(url, alert)
        .with_shown(Shown::Origin)
        .with_timeout(DELIVERY_TIMEOUT);
    http.send(&request, cancel).await.map(drop)
}

/// The machine's name where reading it costs one small file (Linux); `None` elsewhere.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use super::*;
    use crate::sources::http::testing::{Reply, TestServer, fast};

    const SECRET: &str = "T0001/B0002/s3cr3tT0k3n";

    fn failed_run() -> RunRecord {
        RunRecord {
            run_id: "20260301T040000Z-7f3a".into(),
            pipeline: "scb_folkmangd".into(),
            trigger: "schedule".into(),
            warehouse: Some("/var/lib/indikator/warehouse".into()),
            started: "2026-03-01T04:00:00Z".into(),
            finished: Some("2026-03-01T04:00:09Z".into()),
            status: RunStatus::Failed,
            rows_read: 1200,
            rows_written: 0,
            rows_rejected: 1200,
            content_hash: None,
            reason: None,
            error: Some(
                "1200 of 1200 rows rejected (100 %), over the gate of 5 %\nsee rejects/".into(),
            ),
            report: None,
        }
    }

    fn alerter(url: &str) -> Alerter {
        let settings = AlertSettings {
            webhook_url: Some(url.to_string()),
        };
        Alerter::new(&settings, HttpClient::new(fast()))
    }

    /// Log lines written while it lives, on this thread (a `#[tokio::test]` runs its spawned
    /// tasks on it too).
    struct Logs {
        lines: Arc<Mutex<Vec<u8>>>,
        _guard: tracing::subscriber::DefaultGuard,
    }

    impl Logs {
        fn capture() -> Self {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let writer = {
                let lines = lines.clone();
                move || SharedWriter(lines.clone())
            };
            let subscriber = tracing_subscriber::fmt()
                .with_writer(writer)
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            Self {
                lines,
                _guard: tracing::subscriber::set_default(subscriber),
            }
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
        }
    }

    struct SharedWriter(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_run_is_posted_as_one_flat_json_object() {
        let server = TestServer::start(|_| Reply::new(200, "text/plain", "ok")).await;
        let alerter = alerter(&server.url(&format!("/services/{SECRET}")));
        assert_eq!(alerter.run_ended(&failed_run()), Queued::Queued);
        assert!(alerter.flush(Duration::from_secs(5)).await);

        let arrival = &server.arrivals()[0];
        assert_eq!(arrival.method, "POST");
        assert_eq!(arrival.target, format!("/services/{SECRET}"));
        assert_eq!(arrival.header("content-type"), Some("application/json"));
        let mut body: serde_json::Value = serde_json::from_slice(&arrival.body).unwrap();
        let host = hostname();
        assert_eq!(body["host"], serde_json::json!(host));
        // The machine's name varies; the rest is the contract.
        let text = body["text"].as_str().unwrap().replace(
            &format!("indikator on {}", host.as_deref().unwrap_or("")),
            "indikator on HOST",
        );
        body["host"] = "HOST".into();
        body["text"] = text.into();
        insta::assert_snapshot!(serde_json::to_string_pretty(&body).unwrap(), @r#"
        {
          "error": "1200 of 1200 rows rejected (100 %), over the gate of 5 %\nsee rejects/",
          "event": "run_failed",
          "finished": "2026-03-01T04:00:09Z",
          "host": "HOST",
          "pipeline": "scb_folkmangd",
          "rows_read": 1200,
          "rows_rejected": 1200,
          "run_id": "20260301T040000Z-7f3a",
          "started": "2026-03-01T04:00:00Z",
          "status": "failed",
          "text": "indikator on HOST: pipeline scb_folkmangd failed (run 20260301T040000Z-7f3a, schedule): 1200 of 1200 rows rejected (100 %), over the gate of 5 %…",
          "trigger": "schedule"
        }
        "#);
    }

    #[tokio::test]
    async fn only_a_failed_run_alerts_and_no_webhook_means_no_alerts() {
        let server = TestServer::start(|_| Reply::new(200, "text/plain", "ok")).await;
        let alerter = alerter(&server.url("/hook"));
        for status in [
            RunStatus::Succeeded,
            RunStatus::Skipped,
            RunStatus::Interrupted,
            RunStatus::Cancelled,
        ] {
            let run = RunRecord {
                status,
                ..failed_run()
            };
            assert_eq!(alerter.run_ended(&run), Queued::Ignored, "{status}");
        }
        assert!(alerter.flush(Duration::from_secs(5)).await);
        assert!(server.arrivals().is_empty());

        let silent = Alerter::new(&AlertSettings::default(), HttpClient::new(fast()));
        assert_eq!(silent.run_ended(&failed_run()), Queued::Ignored);
        assert!(silent.flush(Duration::ZERO).await);
    }

    #[tokio::test]
    async fn a_receiver_answering_500_then_200_gets_the_alert_after_a_retry() {
        let server = TestServer::start(|arrival| match arrival.n {
            0 => Reply::new(500, "text/plain", "oops"),
            _ => Reply::new(200, "text/plain", "ok"),
        })
        .await;
        let alerter = alerter(&server.url("/hook"));
        let logs = Logs::capture();
        alerter.run_ended(&failed_run());
        assert!(alerter.flush(Duration::from_secs(5)).await);
        let arrivals = server.arrivals();
        assert_eq!(arrivals.len(), 2);
        assert_eq!(arrivals[0].body, arrivals[1].body);
        // Delivery is proven by the arrivals; a log line's presence is not asserted, as a
        // thread's capture can miss an event while parallel tests change tracing's level hint.
        let logs = logs.text();
        assert!(!logs.contains("alert not delivered"), "{logs}");
    }

    #[tokio::test]
    async fn a_dead_receiver_is_a_warning_that_never_shows_the_webhook_secret() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://user:pw@127.0.0.1:{port}/services/{SECRET}?token=t0k");
        let alerter = alerter(&url);
        let logs = Logs::capture();
        assert_eq!(alerter.run_ended(&failed_run()), Queued::Queued);
        assert!(alerter.flush(Duration::from_secs(10)).await);
        let logs = logs.text();
        assert!(logs.contains("alert not delivered"), "{logs}");
        assert!(
            logs.contains(&format!("http://127.0.0.1:{port}/…")),
            "{logs}"
        );

        let alert = Alert {
            event: Event::of_run(&failed_run()).unwrap(),
            host: None,
            text: String::new(),
        };
        let http = HttpClient::new(fast());
        let err = deliver(&http, &url, &alert, &CancellationToken::new())
            .await
            .unwrap_err();
        let chain = format!("{:#}", anyhow::Error::new(err));
        for shown in [&logs, &chain, &format!("{alerter:?}")] {
            for secret in ["s3cr3t", "t0k", "pw@", "services"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_the_alert_with_a_warning_and_never_waits() {
        let server = TestServer::start(|_| Reply::new(200, "text/plain", "ok")).await;
        let alerter = alerter(&server.url("/hook"));
        let logs = Logs::capture();
        // The sender task has not run yet (this thread has not yielded): nothing leaves the queue.
        for _ in 0..QUEUE_CAPACITY {
            assert_eq!(alerter.run_ended(&failed_run()), Queued::Queued);
        }
        assert_eq!(alerter.clone().run_ended(&failed_run()), Queued::Dropped);
        assert!(logs.text().contains("alert dropped"), "{}", logs.text());
    }

    #[test]
    fn the_summary_is_one_line_with_the_error_cut() {
        let mut run = failed_run();
        let event = Event::of_run(&run).unwrap();
        insta::assert_snapshot!(event.summary(Some("stat01")), @"indikator on stat01: pipeline scb_folkmangd failed (run 20260301T040000Z-7f3a, schedule): 1200 of 1200 rows rejected (100 %), over the gate of 5 %…");
        run.error = Some("x".repeat(400));
        let long = Event::of_run(&run).unwrap().summary(None);
        assert!(
            long.ends_with(&format!(": {}…", "x".repeat(TEXT_ERROR_CHARS))),
            "{long}"
        );
        run.error = None;
        insta::assert_snapshot!(Event::of_run(&run).unwrap().summary(None), @"indikator: pipeline scb_folkmangd failed (run 20260301T040000Z-7f3a, schedule)");
    }
}
