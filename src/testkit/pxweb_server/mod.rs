//! A PxWeb test server on loopback speaking API v1 (as SCB and Folkhälsodata do) and
//! PxWebApi 2.0 (as SCB's `statistikdatabasen.scb.se/api/v2` does), with their quirks, their
//! limits, and faults on demand, counting what it receives.
//!
//! URL layout (`http://127.0.0.1:PORT`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/v1/{lang}/?config` | `{maxValues, maxCells, maxCalls, timeWindow, CORS}`; `…/{lang}/config` is 400 |
//! | `GET /api/v1/{lang}/` | databases `[{dbid, text}]` |
//! | `GET /api/v1/{lang}/{db}/{level}/…` | nodes `[{id, type: l\|t, text, updated}]` |
//! | `GET /api/v1/{lang}/{v1_path}` | table metadata `{title, variables}` |
//! | `POST /api/v1/{lang}/{v1_path}` | json-stat2 (or PX when `response` is left out) |
//! | `GET /api/v2/config`, `/api/v2/tables`, `/api/v2/tables/{id}` | config, a page of tables, one table |
//! | `GET /api/v2/tables/{id}/metadata` | json-stat2 without values |
//! | `GET /api/v2/codelists/{id}` (or `codeLists`) | a code list |
//! | `POST /api/v2/tables/{id}/data` | json-stat2 |
//! | `GET /_stats` | test-only: [`Stats`] as JSON (counts, and the log with arrival times); outside the gate, so neither counted nor limited |
//!
//! Every request passes one gate first: a sliding window over admitted arrivals (429 with
//! `Retry-After` beyond `max_calls` per `window`; a refused request does not take a slot, so a
//! client that waits as told gets in), the request log, and for v2 SCB's `X-Rate-Limit-*`
//! headers (v1 at SCB sends none).
//!
//! Owns: the server's lifetime (it stops when dropped), the tables it serves and their
//! changes, limits, the fault queue and the statistics.
//! Must not: be reached from the daemon's code paths; decide an API's answers (`v1.rs`,
//! `v2.rs`) or the meaning of a selection (`select.rs`).

mod faults;
mod jsonstat;
mod load;
mod select;
mod table;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::testkit::http::{Bound, Running, lock};

pub use faults::{DataFault, Fault};
pub use load::LoadError;
pub use table::{
    CodelistKind, CodelistValue, PxCodelist, PxTable, PxUnit, PxValue, PxVariable, Role, SpecError,
    cell,
};

/// The limits the server publishes (v1 `?config`, v2 `/config`) and enforces.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Cells one data request may select (the product of the selected sizes).
    pub max_cells: u64,
    /// v1 only: values one data request may select (the sum of the selected sizes); `None`
    /// leaves `maxValues` out of `?config` and unchecked.
    pub max_values: Option<u64>,
    /// Requests admitted per `window`, counted over every endpoint of both APIs.
    pub max_calls: u32,
    pub window: Duration,
    /// Send SCB's `X-Rate-Limit-Limit/-Remaining/-Reset` on v2 answers.
    pub rate_headers: bool,
}

impl ServerLimits {
    /// SCB's as `?config` gave them in 2026: 150 000 cells, 110 000 values, 30 calls per 10 s.
    pub fn scb() -> ServerLimits {
        ServerLimits {
            max_cells: 150_000,
            max_values: Some(110_000),
            max_calls: 30,
            window: Duration::from_secs(10),
            rate_headers: true,
        }
    }
}

/// What the server has received.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// Admitted data requests (v1 POST on a table, v2 POST `/data`), whatever their answer.
    pub data_requests: u64,
    /// Admitted GETs: metadata, config, node lists, table pages, code lists.
    pub metadata_requests: u64,
    /// 429s sent.
    pub rate_limited: u64,
    /// Data requests refused for selecting too much (v1 403, v2 400 "Too many cells selected").
    pub too_many_cells: u64,
    /// Every request in arrival order, refused ones too.
    pub log: Vec<Logged>,
}

/// One request and the status it was answered with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Logged {
    /// Milliseconds from the server's start to the request's arrival at the gate.
    pub at_ms: f64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Lossy UTF-8.
    pub body: String,
    pub status: u16,
}

/// A running server; it shuts down when dropped. Start it inside a tokio runtime.
pub struct PxWebServer {
    running: Running,
    shared: Arc<Shared>,
}

impl PxWebServer {
    /// Serves `tables` on `127.0.0.1` at a port of the system's choosing. Panics outside a
    /// tokio runtime or when loopback cannot be bound (a broken test machine).
    pub fn start(tables: Vec<PxTable>, limits: ServerLimits) -> PxWebServer {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), tables, limits)
            .expect("binding 127.0.0.1:0 works on any test machine")
    }

    /// Serves `tables` at `addr` (the example binary's `--port`).
    pub fn start_on(
        addr: SocketAddr,
        tables: Vec<PxTable>,
        limits: ServerLimits,
    ) -> std::io::Result<PxWebServer> {
        let bound = Bound::bind(addr)?;
        let addr = bound.addr();
        let shared = Arc::new(Shared {
            limits,
            started: Instant::now(),
            base: format!("http://{addr}"),
            inner: Mutex::new(Inner {
                tables: tables.into_iter().map(Arc::new).collect(),
                ..Inner::default()
            }),
        });
        let running = bound.serve(router(shared.clone()))?;
        Ok(PxWebServer { running, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://127.0.0.1:PORT/api/v1/sv`.
    pub fn v1_root(&self) -> String {
        format!("{}/api/v1/sv", self.shared.base)
    }

    /// The v1 URL of the table whose id (`TAB638`) or v1 table name (`BefolkningNy`) is `id`.
    /// Panics when the server has no such table: a bug in the test.
    pub fn v1_table_url(&self, id: &str) -> String {
        let table = self
            .shared
            .inner()
            .tables
            .iter()
            .find(|t| t.id == id || t.v1_path.rsplit('/').next() == Some(id))
            .cloned()
            .unwrap_or_else(|| panic!("the test server has no table {id}"));
        format!("{}/{}", self.v1_root(), table.v1_path)
    }

    /// `http://127.0.0.1:PORT/api/v2`.
    pub fn v2_root(&self) -> String {
        format!("{}/api/v2", self.shared.base)
    }

    /// A copy of the statistics so far.
    pub fn stats(&self) -> Stats {
        self.shared.inner().stats.clone()
    }

    /// Moves a table's `updated` (RFC 3339). Panics on an unknown table.
    pub fn set_updated(&self, table_id: &str, updated: &str) {
        let mut inner = self.shared.inner();
        let slot = inner
            .tables
            .iter_mut()
            .find(|t| t.id == table_id)
            .unwrap_or_else(|| panic!("the test server has no table {table_id}"));
        Arc::make_mut(slot).updated = updated.to_owned();
    }

    /// Serves `table` instead of the table with its id (or besides the others if none).
    pub fn replace_table(&self, table: PxTable) {
        self.shared.inner().replace(table);
    }

    /// Queues a fault (see [`Fault`]); data faults apply in the order injected.
    pub fn inject(&self, fault: Fault) {
        let mut inner = self.shared.inner();
        match fault {
            Fault::Data { fault, times } => inner.data_faults.push_back((fault, times)),
            Fault::ChangeAfterMetadata(table) => inner.changes.push(*table),
        }
    }
}

/// What the handlers share.
struct Shared {
    limits: ServerLimits,
    /// For [`Logged::at_ms`].
    started: Instant,
    /// `http://127.0.0.1:PORT`, for links.
    base: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    tables: Vec<Arc<PxTable>>,
    /// Admitted arrivals within the last window, oldest first.
    arrivals: VecDeque<Instant>,
    stats: Stats,
    data_faults: VecDeque<(DataFault, u32)>,
    /// Tables that replace theirs after the next metadata request for them.
    changes: Vec<PxTable>,
}

impl Inner {
    fn replace(&mut self, table: PxTable) {
        match self.tables.iter_mut().find(|t| t.id == table.id) {
            Some(slot) => *slot = Arc::new(table),
            None => self.tables.push(Arc::new(table)),
        }
    }
}

/// Why the gate refused a request: how long until a slot frees.
struct Wait(Duration);

/// The state of the window after admitting a request.
struct Admitted {
    remaining: u32,
    resets_in: Duration,
}

impl Shared {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn tables(&self) -> Vec<Arc<PxTable>> {
        self.inner().tables.clone()
    }

    /// The table `id`, compared case-insensitively (`tab638` finds `TAB638`).
    fn table(&self, id: &str) -> Option<Arc<PxTable>> {
        let inner = self.inner();
        inner
            .tables
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id))
            .cloned()
    }

    /// Called after a table's metadata was answered: a queued change for it takes effect now,
    /// so the data request planned from that metadata meets the changed table.
    fn metadata_served(&self, table_id: &str) {
        let mut inner = self.inner();
        if let Some(i) = inner.changes.iter().position(|t| t.id == table_id) {
            let table = inner.changes.remove(i);
            inner.replace(table);
        }
    }

    /// The fault the current data request meets, if any.
    fn next_data_fault(&self) -> Option<DataFault> {
        let mut inner = self.inner();
        let (fault, times) = inner.data_faults.front_mut()?;
        let fault = fault.clone();
        *times -= 1;
        if *times == 0 {
            inner.data_faults.pop_front();
        }
        Some(fault)
    }

    fn count_too_many_cells(&self) {
        self.inner().stats.too_many_cells += 1;
    }

    /// Admits a request into the window, or says how long to wait.
    fn admit(&self, data: bool) -> Result<Admitted, Wait> {
        let window = self.limits.window;
        let now = Instant::now();
        let mut inner = self.inner();
        while inner.arrivals.front().is_some_and(|&t| t + window <= now) {
            inner.arrivals.pop_front();
        }
        let resets_in = |inner: &Inner| {
            inner
                .arrivals
                .front()
                .map_or(window, |&oldest| oldest + window - now)
        };
        if inner.arrivals.len() >= self.limits.max_calls as usize {
            inner.stats.rate_limited += 1;
            return Err(Wait(resets_in(&inner)));
        }
        inner.arrivals.push_back(now);
        match data {
            true => inner.stats.data_requests += 1,
            false => inner.stats.metadata_requests += 1,
        }
        Ok(Admitted {
            remaining: self.limits.max_calls - inner.arrivals.len() as u32,
            resets_in: resets_in(&inner),
        })
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/{lang}", get(v1::language))
        .route("/api/v1/{lang}/", get(v1::language))
        .route("/api/v1/{lang}/{*path}", get(v1::node).post(v1::data))
        .route("/api/v2/config", get(v2::config))
        .route("/api/v2/tables", get(v2::tables))
        .route("/api/v2/tables/", get(v2::tables))
        .route("/api/v2/tables/{id}", get(v2::table))
        .route("/api/v2/tables/{id}/metadata", get(v2::metadata))
        .route("/api/v2/tables/{id}/data", post(v2::data))
        .route("/api/v2/codelists/{id}", get(v2::codelist))
        .route("/api/v2/codeLists/{id}", get(v2::codelist))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        // Added after the gate's layer, so the gate does not see it.
        .route("/_stats", get(stats))
        .with_state(shared)
}

/// `GET /_stats`: what [`PxWebServer::stats`] returns, for a client in another process (the
/// PxWeb bench reads it between runs). Test-only, like the whole server.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.inner().stats.clone();
    json(
        "application/json",
        serde_json::to_vec(&stats).expect("plain numbers and strings serialise"),
    )
}

fn is_v2(path: &str) -> bool {
    path.starts_with("/api/v2")
}

async fn not_found(request: Request) -> Response {
    match is_v2(request.uri().path()) {
        true => problem(StatusCode::NOT_FOUND, "Not found", None),
        false => plain(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The rate limit, the request log and the rate-limit headers, around every request.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let at_ms = shared.started.elapsed().as_secs_f64() * 1000.0;
    let (parts, body) = request.into_parts();
    // Query bodies are small; an unreadable one is logged empty and the handler refuses it.
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut logged = Logged {
        at_ms,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let v2 = is_v2(&logged.path);
    let response = match shared.admit(parts.method == Method::POST) {
        Ok(admitted) => {
            let mut response = next.run(Request::from_parts(parts, Body::from(body))).await;
            if v2 && shared.limits.rate_headers {
                rate_headers(&mut response, &shared.limits, &admitted);
            }
            response
        }
        Err(Wait(wait)) => {
            // Rounded up: a client that waits exactly this long finds the slot free.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = match v2 {
                true => problem(StatusCode::TOO_MANY_REQUESTS, "Too many requests", None),
                false => plain(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
            };
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
    };
    logged.status = response.status().as_u16();
    shared.inner().stats.log.push(logged);
    response
}

/// SCB's v2 headers: the window as `10s`, the calls left in it and when its oldest call
/// leaves it (an ISO timestamp).
fn rate_headers(response: &mut Response, limits: &ServerLimits, admitted: &Admitted) {
    let reset = chrono::Utc::now()
        + chrono::Duration::from_std(admitted.resets_in).unwrap_or(chrono::Duration::zero());
    let values = [
        (
            "x-rate-limit-limit",
            format!("{}s", limits.window.as_secs()),
        ),
        ("x-rate-limit-remaining", admitted.remaining.to_string()),
        (
            "x-rate-limit-reset",
            reset.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
    ];
    for (name, value) in values {
        let value =
            HeaderValue::from_str(&value).expect("digits, letters and `:.-` are header-safe");
        response.headers_mut().insert(name, value);
    }
}

/// A plain-text answer, as v1 gives its errors (`Bad Request`).
fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

/// A v2 error: RFC 7807 problem JSON with a plain-string `type`, as SCB writes it.
fn problem(status: StatusCode, title: &str, detail: Option<String>) -> Response {
    let mut body = serde_json::json!({
        "type": problem_type(status),
        "title": title,
        "status": status.as_u16(),
    });
    if let Some(detail) = detail {
        body["detail"] = detail.into();
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The RFC 9110 section of a status, as ASP.NET links them; RFC 7807's blank for the rest.
fn problem_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        404 => "https://tools.ietf.org/html/rfc9110#section-15.5.5",
        _ => "about:blank",
    }
}

/// A JSON answer with the given content type.
fn json(content_type: &'static str, body: Vec<u8>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}
