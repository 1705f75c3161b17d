//! A static-file server on loopback, for `kind = "url"`: files served whole with an ETag and a
//! Last-Modified, conditional requests answered 304, every request logged.
//!
//! Owns: the files it holds (replaced on demand, each replacement a new version), answering GET
//! as a plain web server does, and the request log.
//! Must not: know any statistics protocol (the PxWeb and Kolada servers do) or inject faults.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::http::{Bound, Running, lock};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub path: String,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    /// 200, 304 or 404.
    pub status: u16,
}

/// A file as served: its bytes and the validators of this version.
struct Served {
    bytes: Vec<u8>,
    etag: String,
    last_modified: String,
}

#[derive(Default)]
struct Shared {
    files: Mutex<HashMap<String, Served>>,
    log: Mutex<Vec<Logged>>,
    /// Versions handed out so far: each file's ETag and Last-Modified derive from its own.
    versions: AtomicU32,
}

/// A running server; it shuts down when dropped. Start it inside a tokio runtime.
pub struct FileServer {
    running: Running,
    shared: Arc<Shared>,
}

impl FileServer {
    /// Serves no files yet on `127.0.0.1` at a port of the system's choosing. Panics outside a
    /// tokio runtime or when loopback cannot be bound (a broken test machine).
    pub fn start() -> FileServer {
        let bound = Bound::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("binding 127.0.0.1:0 works on any test machine");
        let shared = Arc::new(Shared::default());
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let running = bound
            .serve(app)
            .expect("a bound loopback socket can be served");
        FileServer { running, shared }
    }

    /// `http://127.0.0.1:PORT` + `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr())
    }

    /// Serves `bytes` at `path` from the next request on, as a new version (a new ETag and a
    /// later Last-Modified), even when the bytes are the same.
    pub fn put(&self, path: &str, bytes: impl Into<Vec<u8>>) {
        let version = self.shared.versions.fetch_add(1, Ordering::Relaxed) + 1;
        // A fixed day plus a minute per version: distinct, increasing and a valid HTTP-date.
        let modified = chrono::DateTime::from_timestamp(1_767_225_600 + 60 * i64::from(version), 0)
            .expect("a date in 2026");
        let served = Served {
            bytes: bytes.into(),
            etag: format!("\"v{version}\""),
            last_modified: modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        };
        lock(&self.shared.files).insert(path.to_string(), served);
    }

    /// Every request so far, in the order answered.
    pub fn requests(&self) -> Vec<Logged> {
        lock(&self.shared.log).clone()
    }
}

/// GET of a file: 404 if there is none, 304 if the client's validator is the current one (an
/// If-None-Match decides when present, as RFC 9110 says), else the file with its validators.
async fn answer(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let asked = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (if_none_match, if_modified_since) = (
        asked(header::IF_NONE_MATCH),
        asked(header::IF_MODIFIED_SINCE),
    );
    let path = uri.path().to_string();
    let response = match lock(&shared.files).get(&path) {
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
        Some(file) => {
            let unchanged = match &if_none_match {
                Some(etag) => *etag == file.etag,
                None => if_modified_since.as_deref() == Some(file.last_modified.as_str()),
            };
            let validators = [
                (header::ETAG, file.etag.clone()),
                (header::LAST_MODIFIED, file.last_modified.clone()),
            ];
            if unchanged {
                (StatusCode::NOT_MODIFIED, validators).into_response()
            } else {
                (validators, file.bytes.clone()).into_response()
            }
        }
    };
    lock(&shared.log).push(Logged {
        path,
        if_none_match,
        if_modified_since,
        status: response.status().as_u16(),
    });
    response
}
