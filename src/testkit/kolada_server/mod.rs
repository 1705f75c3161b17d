//! A Kolada API v3 test server on loopback: KPI, municipality and group metadata and data rows
//! in v3's shapes and paged envelope (SOURCES §e), Kolada's limits, faults on demand, switches
//! that retire, rename or revise a KPI, and counts of what it received.
//!
//! URL layout (`http://127.0.0.1:PORT`): the v3 endpoints under `/v3` (table in `api.rs`),
//! and `GET /_stats`, test-only: [`Stats`] as JSON, outside the gate (neither counted, logged
//! nor faulted). Every other request passes the gate: the request log, the counts by
//! [`Kind`], and the next queued [`Fault`] whose path prefix matches.
//!
//! Kolada v3 is a FastAPI application (it serves `/v3/docs` and `/v3/openapi.json`), so its
//! errors are written here as FastAPI writes them: `{"detail": "…"}`, 404 `{"detail": "Not
//! Found"}` for an unknown path, 422 with a list of pydantic errors for a bad query parameter.
//! The shapes are FastAPI's; the exact texts Kolada sends are assumed, not observed.
//!
//! Owns: the server's lifetime (it stops when dropped), the dataset it serves and its
//! changes, the fault queue and the statistics.
//! Must not: be reached from the daemon's code paths; decide an endpoint's answer (`api.rs`)
//! or page one (`paging.rs`).

mod api;
mod dataset;
mod faults;
mod paging;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::testkit::http::{Bound, Running, lock};

pub use api::MAX_IDS;
pub use dataset::{
    Area, AreaType, Cell, DataRow, Dataset, ExpectedRow, Gender, Group, Kpi, MISSING,
    MunicipalityType,
};
pub use faults::Fault;
pub use paging::{MAX_PER_PAGE, PagingNames};

/// How the server pages.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Items per page at most, whatever `per_page` asks (≤ [`MAX_PER_PAGE`]): a small cap
    /// forces paging in tests.
    pub per_page_cap: usize,
    pub paging: PagingNames,
}

impl Default for ServerConfig {
    /// Kolada's: 5 000 per page, v3's link names.
    fn default() -> Self {
        ServerConfig {
            per_page_cap: MAX_PER_PAGE,
            paging: PagingNames::V3,
        }
    }
}

impl ServerConfig {
    pub fn with_per_page_cap(mut self, cap: usize) -> ServerConfig {
        self.per_page_cap = cap.clamp(1, MAX_PER_PAGE);
        self
    }

    pub fn with_paging(mut self, paging: PagingNames) -> ServerConfig {
        self.paging = paging;
        self
    }
}

/// What a request asked for, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `/v3/kpi…`
    Kpi,
    /// `/v3/municipality`, `/v3/municipality/{ids}`
    Municipality,
    /// `/v3/municipality_groups…`
    Group,
    /// `/v3/data/…`
    Data,
    /// Anything else (answered 404).
    Other,
}

impl Kind {
    fn of(path: &str) -> Kind {
        let Some(rest) = path.strip_prefix("/v3/") else {
            return Kind::Other;
        };
        let first = rest.split('/').next().unwrap_or_default();
        match first {
            "kpi" => Kind::Kpi,
            "municipality" => Kind::Municipality,
            "municipality_groups" => Kind::Group,
            "data" => Kind::Data,
            _ => Kind::Other,
        }
    }
}

/// What the server has received. Counts by kind are of arrivals, faulted ones too.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub kpi_pages: u64,
    pub municipality_pages: u64,
    pub group_pages: u64,
    pub data_pages: u64,
    pub other_requests: u64,
    /// 429s sent (all by [`Fault::TooManyRequests`]).
    pub rate_limited: u64,
    /// 503s sent.
    pub unavailable: u64,
    /// Answers cut short ([`Fault::TruncatedPage`], [`Fault::CutMidBody`]).
    pub cut_short: u64,
    /// Answers delayed ([`Fault::Slow`]).
    pub slowed: u64,
    /// 400s (too many ids, a bad year) and 422s (a bad `page` or `per_page`).
    pub refused: u64,
    /// 404s.
    pub not_found: u64,
    /// Every request through the gate, in arrival order.
    pub log: Vec<Logged>,
}

impl Stats {
    /// The logged requests of `kind`, in arrival order.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Logged> {
        self.log.iter().filter(move |l| l.kind == kind)
    }
}

/// One request and how it was answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Logged {
    /// Milliseconds from the server's start to the request's arrival.
    pub at_ms: f64,
    pub kind: Kind,
    /// As received (percent-encoded).
    pub path: String,
    pub query: Option<String>,
    /// 0 while the answer is being made, and for good when the client left before it.
    pub status: u16,
    /// [`Fault::name`] of the fault it met.
    pub fault: Option<&'static str>,
}

impl Logged {
    /// The ids of the path segment after `name` (`kpi`, `municipality`, `year`), split at
    /// commas; empty when the path has no such segment. For asserting batch sizes.
    pub fn ids(&self, name: &str) -> Vec<&str> {
        let mut segments = self.path.split('/');
        while let Some(segment) = segments.next() {
            if segment == name {
                return segments
                    .next()
                    .map(|s| s.split(',').filter(|id| !id.is_empty()).collect())
                    .unwrap_or_default();
            }
        }
        Vec::new()
    }

    /// The `page` asked for (1 when the query has none).
    pub fn page(&self) -> usize {
        self.query
            .as_deref()
            .unwrap_or_default()
            .split('&')
            .find_map(|p| p.strip_prefix("page="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1)
    }
}

/// A running server; it shuts down when dropped. Start it inside a tokio runtime.
pub struct KoladaServer {
    running: Running,
    shared: Arc<Shared>,
}

impl KoladaServer {
    /// Serves `dataset` on `127.0.0.1` at a port of the system's choosing. Panics outside a
    /// tokio runtime or when loopback cannot be bound (a broken test machine).
    pub fn start(dataset: Dataset, config: ServerConfig) -> KoladaServer {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), dataset, config)
            .expect("binding 127.0.0.1:0 works on any test machine")
    }

    /// Serves `dataset` at `addr` (the example binary's `--port`).
    pub fn start_on(
        addr: SocketAddr,
        dataset: Dataset,
        config: ServerConfig,
    ) -> std::io::Result<KoladaServer> {
        let bound = Bound::bind(addr)?;
        let shared = Arc::new(Shared {
            config,
            started: Instant::now(),
            origin: format!("http://{}", bound.addr()),
            inner: Mutex::new(Inner {
                dataset: Arc::new(dataset),
                ..Inner::default()
            }),
        });
        let running = bound.serve(router(shared.clone()))?;
        Ok(KoladaServer { running, shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr()
    }

    /// `http://127.0.0.1:PORT/v3`, the base a client is configured with.
    pub fn url(&self) -> String {
        format!("{}/v3", self.shared.origin)
    }

    /// `http://127.0.0.1:PORT/_stats`.
    pub fn stats_url(&self) -> String {
        format!("{}/_stats", self.shared.origin)
    }

    /// A copy of the statistics so far.
    pub fn stats(&self) -> Stats {
        self.shared.inner().stats.clone()
    }

    /// The dataset served now (after any retire, rename or revision), for `expected_rows`.
    pub fn dataset(&self) -> Dataset {
        Dataset::clone(&self.shared.dataset())
    }

    /// Serves `dataset` from the next request on.
    pub fn replace_dataset(&self, dataset: Dataset) {
        self.shared.inner().dataset = Arc::new(dataset);
    }

    /// The next `times` requests meet `fault`, whatever their path.
    pub fn inject(&self, fault: Fault, times: u32) {
        self.queue(None, fault, times);
    }

    /// The next `times` requests whose path starts with `prefix` (`/v3/data`) meet `fault`;
    /// others pass. Faults queued earlier come first.
    pub fn inject_at(&self, prefix: &str, fault: Fault, times: u32) {
        self.queue(Some(prefix.to_owned()), fault, times);
    }

    fn queue(&self, prefix: Option<String>, fault: Fault, times: u32) {
        if times > 0 {
            self.shared.inner().faults.push_back(Queued {
                prefix,
                fault,
                times,
            });
        }
    }

    /// Removes the KPI from metadata and data, as Kolada retires KPIs without notice. Panics
    /// on an unknown id.
    pub fn retire_kpi(&self, id: &str) {
        self.change(|data| {
            data.kpi_mut(id);
            data.kpis.retain(|k| k.id != id);
        });
    }

    /// Gives the KPI a new title. Panics on an unknown id.
    pub fn rename_kpi(&self, id: &str, title: &str) {
        self.change(|data| data.kpi_mut(id).title = title.to_owned());
    }

    /// Changes every value of the KPI and moves its publication date a day on (a revision at
    /// the source). Panics on an unknown id.
    pub fn revise_kpi(&self, id: &str) {
        self.change(|data| {
            let kpi = data.kpi_mut(id);
            kpi.revision += 1;
            // Kolada dates a publication: revised values come with a later date.
            let date = chrono::NaiveDate::parse_from_str(&kpi.publication_date, "%Y-%m-%d")
                .expect("the dataset's dates are ISO dates");
            kpi.publication_date = (date + chrono::Days::new(1)).format("%Y-%m-%d").to_string();
        });
    }

    fn change(&self, edit: impl FnOnce(&mut Dataset)) {
        let mut inner = self.shared.inner();
        edit(Arc::make_mut(&mut inner.dataset));
    }
}

/// What the handlers share.
struct Shared {
    config: ServerConfig,
    /// For [`Logged::at_ms`].
    started: Instant,
    /// `http://127.0.0.1:PORT`, for the paging links.
    origin: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    // Behind an `Arc` so that a handler computes a page without holding the lock.
    dataset: Arc<Dataset>,
    faults: VecDeque<Queued>,
    stats: Stats,
}

struct Queued {
    prefix: Option<String>,
    fault: Fault,
    times: u32,
}

impl Shared {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn dataset(&self) -> Arc<Dataset> {
        self.inner().dataset.clone()
    }

    /// The fault a request for `path` meets, if any: the first queued whose prefix matches.
    fn next_fault(&self, path: &str) -> Option<Fault> {
        let mut inner = self.inner();
        let i = inner
            .faults
            .iter()
            .position(|q| q.prefix.as_deref().is_none_or(|p| path.starts_with(p)))?;
        let queued = &mut inner.faults[i];
        let fault = queued.fault.clone();
        queued.times -= 1;
        if queued.times == 0 {
            inner.faults.remove(i);
        }
        Some(fault)
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v3/kpi", get(api::kpis))
        .route("/v3/kpi/{ids}", get(api::kpis_by_id))
        .route("/v3/municipality", get(api::areas))
        .route("/v3/municipality/{ids}", get(api::areas))
        .route("/v3/municipality_groups", get(api::groups))
        .route("/v3/municipality_groups/{ids}", get(api::groups))
        .route(
            "/v3/data/kpi/{kpis}/municipality/{areas}/year/{years}",
            get(api::data),
        )
        .route("/v3/data/kpi/{kpis}/year/{years}", get(api::data_all_areas))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        // Added after the gate's layer, so the gate does not see it.
        .route("/_stats", get(stats))
        .with_state(shared)
}

/// `GET /_stats`: what [`KoladaServer::stats`] returns, for a client in another process.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.inner().stats.clone();
    let body = serde_json::to_vec(&stats).expect("plain numbers and strings serialise");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, json!("Not Found"))
}

/// The request log, the counts and the faults, around every request.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let at_ms = shared.started.elapsed().as_secs_f64() * 1000.0;
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    let kind = Kind::of(&path);
    let fault = shared.next_fault(&path);
    let name = fault.as_ref().map(Fault::name);
    let cut = matches!(fault, Some(Fault::TruncatedPage | Fault::CutMidBody));
    let slow = matches!(fault, Some(Fault::Slow(_)));
    // Counted and logged on arrival: a client that gives up on a slow answer drops this
    // future before the answer exists.
    let at = {
        let mut inner = shared.inner();
        let stats = &mut inner.stats;
        *match kind {
            Kind::Kpi => &mut stats.kpi_pages,
            Kind::Municipality => &mut stats.municipality_pages,
            Kind::Group => &mut stats.group_pages,
            Kind::Data => &mut stats.data_pages,
            Kind::Other => &mut stats.other_requests,
        } += 1;
        stats.cut_short += u64::from(cut);
        stats.slowed += u64::from(slow);
        stats.log.push(Logged {
            at_ms,
            kind,
            path,
            query,
            status: 0,
            fault: name,
        });
        stats.log.len() - 1
    };
    let response = faults::answer(fault, next.run(request)).await;
    let status = response.status().as_u16();
    let mut inner = shared.inner();
    let stats = &mut inner.stats;
    match status {
        429 => stats.rate_limited += 1,
        503 => stats.unavailable += 1,
        400 | 422 => stats.refused += 1,
        404 => stats.not_found += 1,
        _ => {}
    }
    stats.log[at].status = status;
    response
}

/// A FastAPI error: `{"detail": detail}` (a string, or a list of validation errors).
fn error(status: StatusCode, detail: Value) -> Response {
    Refusal(status, detail).into_response()
}

/// A request refused: its status and FastAPI `detail`, answered as [`error`] writes it.
struct Refusal(StatusCode, Value);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (
            self.0,
            [(header::CONTENT_TYPE, "application/json")],
            json!({ "detail": self.1 }).to_string(),
        )
            .into_response()
    }
}
