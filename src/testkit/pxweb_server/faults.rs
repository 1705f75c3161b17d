//! Faults on demand: what a data request meets instead of (or on top of) its real answer.
//!
//! Owns: `Fault` and `DataFault`, and turning a real answer into the faulty one (a cut body,
//! a truncated one, a late one, an HTML page, a 503).
//! Must not: decide the real answer (the API handlers do) or queue faults (`mod.rs`).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;
use tokio_util::io::ReaderStream;

use super::table::PxTable;

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
            let half = bytes.slice(..bytes.len() / 2);
            let cut = CutReader {
                half,
                pause: Box::pin(tokio::time::sleep(PAUSE_BEFORE_RESET)),
            };
            Response::from_parts(parts, Body::from_stream(ReaderStream::new(cut)))
        }
    }
}

async fn into_bytes(response: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("an answer built in memory reads back");
    (parts, bytes)
}

/// Long enough for hyper to flush what it was given: it writes a response out only while the
/// body is pending, so a body that failed at once would take the headers down with it.
const PAUSE_BEFORE_RESET: Duration = Duration::from_millis(20);

/// Half an answer, a pause, then `ConnectionReset`: hyper sends the headers (with the full
/// `Content-Length`) and the half, then drops the connection.
struct CutReader {
    half: Bytes,
    pause: Pin<Box<Sleep>>,
}

impl AsyncRead for CutReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.half.is_empty() {
            let n = buf.remaining().min(self.half.len());
            let chunk = self.half.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.pause.as_mut().poll(cx));
        Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fault: connection reset mid-body",
        )))
    }
}
