//! The admin API of `indikator serve`: health and readiness probes, Prometheus metrics, and
//! pipelines and runs as JSON, to list, trigger and cancel.
//!
//! Owns: the routes, bearer-token checks (constant time), the JSON shapes of pipelines, runs and
//! errors (`{error, detail}`), and the limits on what a request may make us read.
//! Must not: decide anything about runs (the daemon does) or block the runtime (ledger reads go
//! to the blocking pool).

pub mod client;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::blocking::blocking;
use crate::daemon::runner::{Cancelled, SubmitError};
use crate::daemon::{Daemon, TriggerError};
use crate::ledger::{RunFilter, RunRecord, RunStatus};
use crate::pipeline::Trigger;
use crate::pipeline::run::rfc3339;

/// Longest request target (path and query) read, in bytes.
pub const MAX_URI_BYTES: usize = 2048;
/// Largest request body read; no route takes one.
pub const MAX_BODY_BYTES: usize = 1024;
/// Most runs one list returns.
pub const MAX_LIST: usize = 1000;
/// Runs a list returns when `limit` is not given.
const DEFAULT_LIST: usize = 50;

/// The bearer token, kept only as its hash: compared in constant time, never logged.
#[derive(Clone)]
pub struct Token(blake3::Hash);

impl Token {
    pub fn new(secret: &str) -> Self {
        Self(blake3::hash(secret.as_bytes()))
    }

    /// Whether `header` is `Bearer <this token>`; `blake3::Hash` compares in constant time.
    fn admits(&self, header: Option<&str>) -> bool {
        let given = header.and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        blake3::hash(given.as_bytes()) == self.0
    }
}

#[derive(Clone)]
struct Admin {
    daemon: Arc<Daemon>,
    token: Option<Token>,
    /// Ledger reads of handlers at once: a burst of requests queues here, on the runtime,
    /// rather than as threads of the blocking pool taking turns at the ledger's one connection.
    reads: Arc<tokio::sync::Semaphore>,
}

/// How many handlers read the ledger at once.
const CONCURRENT_READS: usize = 2;

impl Admin {
    /// `read` on the blocking pool, once a read slot is free.
    async fn read<T: Send + 'static>(&self, read: impl FnOnce() -> T + Send + 'static) -> T {
        let _slot = self
            .reads
            .acquire()
            .await
            .expect("the read slots are never closed");
        blocking(read).await
    }
}

/// The API's routes over `daemon`; with `token`, everything but the probes asks for it.
pub fn router(daemon: Arc<Daemon>, token: Option<Token>) -> Router {
    let admin = Admin {
        daemon,
        token,
        reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS)),
    };
    let guarded = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/pipelines", get(pipelines))
        .route("/api/v1/pipelines/{id}/runs", post(trigger))
        .route("/api/v1/runs", get(runs))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
        .route_layer(middleware::from_fn_with_state(admin.clone(), authorise));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .merge(guarded)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see README, \"Run as a service\"",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(limit_uri))
        .with_state(admin)
}

/// An error answer: `{error, detail}`.
fn error(status: StatusCode, code: &str, detail: impl Into<String>) -> Response {
    let body = json!({"error": code, "detail": detail.into()});
    (status, Json(body)).into_response()
}

async fn limit_uri(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if length > MAX_URI_BYTES {
        return error(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {length} bytes; at most {MAX_URI_BYTES} are read"),
        );
    }
    next.run(request).await
}

async fn authorise(
    State(admin): State<Admin>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &admin.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token.admits(given) {
            let mut answer = error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <token>` with the token of INDIKATOR_ADMIN_TOKEN or [admin] token_file",
            );
            answer.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                "Bearer".parse().expect("a header value"),
            );
            return answer;
        }
    }
    next.run(request).await
}

async fn ready(State(admin): State<Admin>) -> Response {
    match admin.daemon.ready().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why),
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let text = admin.daemon.render_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn pipelines(State(admin): State<Admin>) -> Response {
    let set = admin.daemon.pipelines();
    let ledger = admin.daemon.ledger().clone();
    let last = admin.read(move || ledger.last_runs()).await.map(|runs| {
        (runs.into_iter())
            .map(|run| (run.pipeline.clone(), run))
            .collect::<std::collections::HashMap<_, _>>()
    });
    let last = match last {
        Ok(last) => last,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "ledger", e.to_string()),
    };
    let now = chrono::Utc::now();
    let runner = admin.daemon.runner();
    let listed: Vec<Value> = set
        .iter()
        .map(|p| {
            let next = (p.schedule.as_ref())
                .and_then(|s| s.next_after(now))
                .map(rfc3339);
            let last_run = last.get(&p.id).map(|r| {
                json!({"run_id": r.run_id, "status": r.status.as_str(), "trigger": r.trigger,
                       "started": r.started, "finished": r.finished})
            });
            json!({
                "id": p.id,
                "description": p.description,
                "file": p.file.display().to_string(),
                "schedule": p.schedule.as_ref().map(ToString::to_string),
                "next_fire": next,
                "active_run": runner.active_run(&p.id),
                "last_run": last_run,
            })
        })
        .collect();
    let problem = admin.daemon.config_problem();
    Json(json!({
        "pipelines": listed,
        "config": {"ok": problem.is_none(), "problem": problem},
    }))
    .into_response()
}

#[derive(Deserialize)]
struct TriggerQuery {
    #[serde(default)]
    force: bool,
}

async fn trigger(
    State(admin): State<Admin>,
    Path(id): Path<String>,
    query: Result<Query<TriggerQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "the only parameter is force=true|false",
        );
    };
    match admin.daemon.trigger(&id, Trigger::Api, query.force).await {
        Ok(run_id) => (StatusCode::ACCEPTED, Json(json!({"run_id": run_id}))).into_response(),
        Err(e @ TriggerError::Unknown(_)) => {
            error(StatusCode::NOT_FOUND, "unknown_pipeline", e.to_string())
        }
        Err(TriggerError::Submit(e @ SubmitError::Busy { .. })) => {
            error(StatusCode::CONFLICT, "busy", e.to_string())
        }
        Err(TriggerError::Submit(e @ SubmitError::ShuttingDown)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            e.to_string(),
        ),
        Err(TriggerError::Submit(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ledger",
            crate::problem::error_chain(&e),
        ),
    }
}

#[derive(Deserialize)]
struct RunsQuery {
    pipeline: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
}

async fn runs(
    State(admin): State<Admin>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            "parameters: pipeline=<id>, status=<status>, limit=<1..1000>",
        );
    };
    let status = match query
        .status
        .as_deref()
        .map(|s| RunStatus::from_name(s).ok_or(s))
    {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(unknown)) => {
            let known: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
            return error(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("status `{unknown}` is none of {}", known.join(", ")),
            );
        }
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST);
    if !(1..=MAX_LIST).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            format!("limit must be 1 to {MAX_LIST}"),
        );
    }
    let filter = RunFilter {
        pipeline: query.pipeline,
        status,
        limit: Some(limit),
    };
    let ledger = admin.daemon.ledger().clone();
    match admin.read(move || ledger.runs(&filter)).await {
        Ok(runs) => {
            Json(json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "ledger", e.to_string()),
    }
}

async fn run(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    let ledger = admin.daemon.ledger().clone();
    let lookup = id.clone();
    match admin.read(move || ledger.run(&lookup)).await {
        Ok(Some(run)) => Json(run_json(&run)).into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "unknown_run",
            format!("no run has id `{id}`; GET /api/v1/runs lists them"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "ledger", e.to_string()),
    }
}

async fn cancel(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    match admin.daemon.runner().cancel(&id) {
        Cancelled::Stopping => (
            StatusCode::ACCEPTED,
            Json(json!({"run_id": id, "status": "cancelling"})),
        )
            .into_response(),
        Cancelled::NotActive => {
            let ledger = admin.daemon.ledger().clone();
            let lookup = id.clone();
            match admin.read(move || ledger.status(&lookup)).await {
                Ok(Some(status)) => error(
                    StatusCode::CONFLICT,
                    "not_active",
                    format!(
                        "run `{id}` has ended ({status}); only a queued or running run can be cancelled"
                    ),
                ),
                Ok(None) => error(
                    StatusCode::NOT_FOUND,
                    "unknown_run",
                    format!("no run has id `{id}`"),
                ),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "ledger", e.to_string()),
            }
        }
    }
}

/// A run as the API shows it.
pub fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "trigger": run.trigger,
        "status": run.status.as_str(),
        "reason": run.reason,
        "started": run.started,
        "finished": run.finished,
        "rows_read": run.rows_read,
        "rows_written": run.rows_written,
        "rows_rejected": run.rows_rejected,
        "error": run.error,
        "report": run.report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    /// A daemon over one file pipeline `p` in a temp folder, its API on a loopback port.
    struct Api {
        base: String,
        daemon: Arc<Daemon>,
        _lock: crate::ledger::PipelineLock,
        _dir: tempfile::TempDir,
    }

    async fn api(token: Option<&str>) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let pipelines = dir.path().join("pipelines");
        std::fs::create_dir_all(&pipelines).unwrap();
        std::fs::write(pipelines.join("a.csv"), "i,R,T,v\nx,0180,2024,1\n").unwrap();
        std::fs::write(
            pipelines.join("p.toml"),
            "id = \"p\"\n[source]\nkind = \"file\"\npath = \"a.csv\"\nformat = \"csv\"\n\
             [map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\nvalue = \"v\"\n",
        )
        .unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        let (daemon, lock) = crate::serve::start(settings).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = router(daemon.clone(), token.map(Token::new));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Api {
            base,
            daemon,
            _lock: lock,
            _dir: dir,
        }
    }

    async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    #[tokio::test]
    async fn everything_but_the_probes_wants_the_token() {
        crate::sources::http::install_crypto_provider();
        let api = api(Some("s3cret")).await;
        let base = &api.base;
        assert_eq!(get(&format!("{base}/healthz"), None).await.0, 200);
        assert_eq!(get(&format!("{base}/readyz"), None).await.0, 200);
        for path in [
            "/metrics",
            "/api/v1/pipelines",
            "/api/v1/runs",
            "/api/v1/runs/x",
        ] {
            let (status, body) = get(&format!("{base}{path}"), None).await;
            assert_eq!(status, 401, "{path}");
            assert_eq!(body["error"], "unauthorized", "{path}");
            assert_eq!(
                get(&format!("{base}{path}"), Some("wrong")).await.0,
                401,
                "{path}"
            );
            assert_eq!(
                get(&format!("{base}{path}"), Some("s3cret!")).await.0,
                401,
                "{path}"
            );
        }
        let (status, body) = get(&format!("{base}/api/v1/pipelines"), Some("s3cret")).await;
        assert_eq!(status, 200);
        assert_eq!(body["pipelines"][0]["id"], "p");
        assert_eq!(body["config"]["ok"], true);
    }

    #[tokio::test]
    async fn unknown_ids_bad_queries_and_long_urls_are_json_errors() {
        crate::sources::http::install_crypto_provider();
        let api = api(None).await;
        let base = &api.base;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let answer = client
            .post(format!("{base}/api/v1/pipelines/..%2F..%2Fetc/runs"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "unknown_pipeline");
        let (status, body) = get(&format!("{base}/api/v1/runs/nope"), None).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("unknown_run")));
        let (status, body) = get(&format!("{base}/api/v1/runs?status=sleeping"), None).await;
        assert_eq!(status, 400);
        assert!(
            body["detail"].as_str().unwrap().contains("cancelled"),
            "{body}"
        );
        let (status, _) = get(&format!("{base}/api/v1/runs?limit=0"), None).await;
        assert_eq!(status, 400);
        let long = "x".repeat(MAX_URI_BYTES);
        let (status, body) = get(&format!("{base}/api/v1/runs?pipeline={long}"), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (414, Some("uri_too_long"))
        );
        let (status, body) = get(&format!("{base}/nowhere"), None).await;
        assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
        let answer = client
            .post(format!("{base}/api/v1/runs/nope/cancel"))
            .body(vec![b'x'; MAX_BODY_BYTES * 4])
            .send()
            .await
            .unwrap();
        assert!([404, 413].contains(&answer.status().as_u16()));
    }

    #[tokio::test]
    async fn a_triggered_run_is_listed_with_its_end_and_counted() {
        crate::sources::http::install_crypto_provider();
        let api = api(None).await;
        let base = &api.base;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let answer = client
            .post(format!("{base}/api/v1/pipelines/p/runs"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 202);
        let run_id = answer.json::<Value>().await.unwrap()["run_id"]
            .as_str()
            .unwrap()
            .to_string();
        let run = client::Client::new(base, None).wait(&run_id).await.unwrap();
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["trigger"], "api");
        assert_eq!(run["rows_written"], 1);
        for key in [
            "run_id",
            "pipeline",
            "reason",
            "started",
            "finished",
            "rows_read",
            "rows_rejected",
            "error",
            "report",
        ] {
            assert!(run.get(key).is_some(), "{key} missing from {run}");
        }
        let (_, listed) = get(
            &format!("{base}/api/v1/runs?pipeline=p&status=succeeded"),
            None,
        )
        .await;
        assert_eq!(listed["runs"][0]["run_id"], run_id.as_str());
        let (_, pipelines) = get(&format!("{base}/api/v1/pipelines"), None).await;
        assert_eq!(
            pipelines["pipelines"][0]["last_run"]["run_id"],
            run_id.as_str()
        );
        let (status, text) = get(&format!("{base}/metrics"), None).await;
        assert_eq!(status, 200);
        let text = text.as_str().unwrap().to_string();
        assert!(
            text.lines()
                .any(|l| l == "indikator_runs_total{pipeline=\"p\",status=\"succeeded\"} 1"),
            "{text}"
        );
        // Cancelling a run that has ended is a conflict, not a success.
        let answer = client
            .post(format!("{base}/api/v1/runs/{run_id}/cancel"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 409);
        drop(api.daemon);
    }

    #[tokio::test]
    async fn an_open_address_without_a_token_is_refused_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("indikator.toml"),
            "[admin]\nbind = \"0.0.0.0:0\"\n",
        )
        .unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        // A token in the environment would make the open address acceptable.
        if std::env::var(client::TOKEN_ENV).is_ok() {
            return;
        }
        let refused = crate::serve::serve(settings).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("not a loopback address, without a token"),
            "{refused}"
        );
        assert!(!dir.path().join("state").exists(), "nothing was opened");
    }
}
