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
}

/// The API's routes over `daemon`; with `token`, everything but the probes asks for it.
pub fn router(daemon: Arc<Daemon>, token: Option<Token>) -> Router {
    let admin = Admin { daemon, token };
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
    let ids: Vec<String> = set.iter().map(|p| p.id.clone()).collect();
    let ledger = admin.daemon.ledger().clone();
    let last = blocking(move || {
        (ids.into_iter())
            .map(|id| {
                ledger
                    .history(Some(&id), 1)
                    .map(|mut runs| (id, runs.pop()))
            })
            .collect::<Result<std::collections::HashMap<_, _>, _>>()
    })
    .await;
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
            let last_run = last.get(&p.id).and_then(Option::as_ref).map(|r| {
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
    match blocking(move || ledger.runs(&filter)).await {
        Ok(runs) => {
            Json(json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()})).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "ledger", e.to_string()),
    }
}

async fn run(State(admin): State<Admin>, Path(id): Path<String>) -> Response {
    let ledger = admin.daemon.ledger().clone();
    let lookup = id.clone();
    match blocking(move || ledger.run(&lookup)).await {
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
            match blocking(move || ledger.status(&lookup)).await {
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
