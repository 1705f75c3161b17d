//! Faults on demand: what a data request meets instead of (or on top of) its real answer.
//!
//! Owns: `Fault` and `DataFault`, and turning a real answer into the faulty one (a cut body,
//! a truncated one, a late one, an HTML page, a 503).
//! Must not: decide the real answer (the API handlers do) or queue faults (`mod.rs`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::table::PxTable;
use crate::testkit::http::{cut_mid_body, into_bytes};

/// A fault for [`PxWebServer::inject`](super::PxWebServer::inject).
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next `times` data requests (v1 POST, v2 POST `/data`) meet `fault`.
    Data { fault: DataFault, times: u32 },
    /// "Metadata changes between planning and fetching": after the next metadata request for
    /// this table's id (v1 GET on the table, v2 `/metadata`), it replaces the served table,
    /// e.g. with `updated` moved or a value added or removed.
    ChangeAfterMetadata(Box<PxTable>),
}

/// What a data request meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataFault {
    /// 503 `Service Unavailable`, as SCB answers while it reloads metadata.
    Unavailable,
    /// The real answer's headers with its full `Content-Length`, half its body, then the
    /// connection drops.
    ResetMidBody,
    /// 200 with the first half of the real JSON, its `Content-Length` that of the half: only
    /// parsing shows it.
    TruncatedJson,
    /// The real answer, after this long.
    Slow(Duration),
    /// 200 `text/html` error page, as a proxy in front of a PxWeb server sends one.
    HtmlPage,
    /// 200 with this JSON instead of the answer, as a caching proxy or a server that ignored
    /// the selection gives (a well-formed dataset of another shape).
    OtherJson(String),
}

/// The answer to a data request that meets `fault`; `real` makes the real answer.
pub(super) async fn answer(fault: Option<DataFault>, real: impl FnOnce() -> Response) -> Response {
    match fault {
        None => real(),
        Some(DataFault::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Service Unavailable",
        )
            .into_response(),
        Some(DataFault::HtmlPage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>Fel</title></head>\
             <body><h1>Ett fel har uppstått</h1><p>Försök igen senare.</p></body></html>",
        )
            .into_response(),
        Some(DataFault::OtherJson(json)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            json,
        )
            .into_response(),
        Some(DataFault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            real()
        }
        Some(DataFault::TruncatedJson) => {
            let (parts, bytes) = into_bytes(real()).await;
            let half = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, Body::from(half))
        }
        Some(DataFault::ResetMidBody) => {
            let (mut parts, bytes) = into_bytes(real()).await;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            cut_mid_body(parts, &bytes)
        }
    }
}
