//! Faults on demand: what a request meets instead of, or on top of, its real answer.
//!
//! Owns: `Fault` and turning a real answer into the faulty one.
//! Must not: decide the real answer (`api.rs`) or queue faults (`mod.rs`).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error;
use crate::testkit::http::{cut_mid_body, into_bytes};

/// A fault for [`KoladaServer::inject`](super::KoladaServer::inject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `{"detail": "Too Many Requests"}`, with `Retry-After: <secs>` when given. Kolada
    /// documents no rate limit; this is what a client must survive if one appears.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// 503 in plain text, as a proxy in front of an application server sends one.
    Unavailable,
    /// A truncated page: the real answer's headers with its full `Content-Length`, half its
    /// body, then the connection closes.
    TruncatedPage,
    /// The real answer sent chunked (no `Content-Length`), cut after half its body: only the
    /// missing last chunk shows it.
    CutMidBody,
    /// The real answer, after this long.
    Slow(Duration),
}

impl Fault {
    /// The name the request log gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::TooManyRequests { .. } => "too_many_requests",
            Fault::Unavailable => "unavailable",
            Fault::TruncatedPage => "truncated_page",
            Fault::CutMidBody => "cut_mid_body",
            Fault::Slow(_) => "slow",
        }
    }
}

/// The answer to a request that meets `fault`; `real` makes the real answer.
pub(super) async fn answer(fault: Option<Fault>, real: impl Future<Output = Response>) -> Response {
    match fault {
        None => real.await,
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, json!("Too Many Requests"));
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Some(Fault::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Service Unavailable",
        )
            .into_response(),
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            real.await
        }
        Some(Fault::TruncatedPage) => {
            let (mut parts, bytes) = into_bytes(real.await).await;
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            cut_mid_body(parts, &bytes)
        }
        Some(Fault::CutMidBody) => {
            let (mut parts, bytes) = into_bytes(real.await).await;
            parts.headers.remove(header::CONTENT_LENGTH);
            cut_mid_body(parts, &bytes)
        }
    }
}
