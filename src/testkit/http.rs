//! The HTTP plumbing the test servers share: a router served on loopback until its handle is
//! dropped, answers broken on purpose, and a lock that outlives a panicking handler.
//!
//! Owns: binding, serving and stopping (`Bound`, `Running`); cutting a real answer short (`cut_mid_body`).
//! Must not: know any protocol, queue faults or count requests (each server does).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::response::Parts;
use axum::response::Response;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::oneshot;
use tokio::time::Sleep;
use tokio_util::io::ReaderStream;

/// A loopback socket bound but not yet served: a server learns its address (for the absolute
/// URLs it writes) before it builds its router.
pub(super) struct Bound {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// Binds `addr` (port 0: the system chooses).
    pub(super) fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Bound { listener, addr })
    }

    /// The bound address, with the port the system chose.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `app` on the current tokio runtime until the returned handle is dropped. Panics
    /// outside a tokio runtime.
    pub(super) fn serve(self, app: Router) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            // An accept error ends a test server; the test then sees refused connections.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        Ok(Running {
            addr: self.addr,
            _shutdown: shutdown,
        })
    }
}

/// A router being served; it stops when dropped.
pub(super) struct Running {
    addr: SocketAddr,
    // Dropping the sender ends the graceful shutdown's wait.
    _shutdown: oneshot::Sender<()>,
}

impl Running {
    /// The address served.
    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The state behind `mutex`, even if a handler panicked while holding it: test servers hold
/// plain data, and the next test may use it.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A response read into memory: its head and its whole body.
pub(super) async fn into_bytes(response: Response) -> (Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("an answer built in memory reads back");
    (parts, bytes)
}

/// `parts` with the first half of `bytes`, a pause, then `ConnectionReset`: hyper sends the
/// headers as they are in `parts` (a `Content-Length` there promises more than comes; without
/// one the body goes chunked and never ends) and the half, then drops the connection.
pub(super) fn cut_mid_body(parts: Parts, bytes: &Bytes) -> Response {
    let cut = CutReader {
        half: bytes.slice(..bytes.len() / 2),
        pause: Box::pin(tokio::time::sleep(PAUSE_BEFORE_RESET)),
    };
    Response::from_parts(parts, Body::from_stream(ReaderStream::new(cut)))
}

/// Long enough for hyper to flush what it was given: it writes a response out only while the
/// body is pending, so a body that failed at once would take the headers down with it.
const PAUSE_BEFORE_RESET: Duration = Duration::from_millis(20);

/// Half an answer, a pause, then `ConnectionReset`.
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
