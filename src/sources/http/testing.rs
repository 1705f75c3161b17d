//! A loopback HTTP/1.1 server for the HTTP layer's tests, with faults on demand.
//!
//! Owns: accepting on `127.0.0.1:0`, reading each request (head and Content-Length body),
//! recording when it arrived, and answering as the test's script says — including answers no
//! well-behaved server gives (a body cut off, one that never ends, one that comes too late).
//! Must not: be used outside tests. It speaks plain HTTP/1.1 over tokio's `TcpListener` (one
//! request per connection, `Connection: close`) so that a fault is a socket doing exactly what
//! the script says, which a framework would smooth over.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{HttpSettings, ProxyPolicy, RetryPolicy};

/// Client settings with small waits and limits, so that a suite of tests against this server
/// stays fast: 3 attempts, backoff 10 to 50 ms, 2 s timeouts, straight to loopback.
pub fn fast() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        max_body_bytes: 1 << 20,
        retry: RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
            retry_after_cap: Duration::from_secs(2),
        },
        proxy: ProxyPolicy::Direct,
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// 0 for the first request the server received.
    pub n: usize,
    /// When its head was read.
    pub at: Instant,
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Arrival {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send only this many bytes of the body (with the full Content-Length), then close.
    pub cut_after: Option<usize>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// No Content-Length, and body chunks until the client hangs up.
    pub endless: bool,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            cut_after: None,
            delay: Duration::ZERO,
            endless: false,
        }
    }

    pub fn json(body: &str) -> Self {
        Self::new(200, "application/json; charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Script = dyn Fn(&Arrival) -> Reply + Send + Sync;

/// A running server; it stops when dropped.
pub struct TestServer {
    addr: std::net::SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Starts a server answering every request with `script(arrival)`.
    pub async fn start(script: impl Fn(&Arrival) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let task = tokio::spawn({
            let arrivals = arrivals.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(stream, arrivals.clone(), script.clone()));
                }
            }
        });
        Self {
            addr,
            arrivals,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.arrivals.lock().unwrap().clone()
    }
}

async fn serve(stream: TcpStream, arrivals: Arc<Mutex<Vec<Arrival>>>, script: Arc<Script>) {
    let mut stream = BufReader::new(stream);
    let mut request_line = String::new();
    if stream.read_line(&mut request_line).await.unwrap_or(0) == 0 {
        return;
    }
    let at = Instant::now();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if stream.read_exact(&mut body).await.is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let arrival = {
        let mut arrivals = arrivals.lock().unwrap();
        let arrival = Arrival {
            n: arrivals.len(),
            at,
            method,
            target,
            headers,
            body,
        };
        arrivals.push(arrival.clone());
        arrival
    };
    let reply = script(&arrival);
    tokio::time::sleep(reply.delay).await;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status)
    );
    if !reply.endless {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let stream = stream.get_mut();
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    if reply.endless {
        let chunk = vec![b'x'; 64 << 10];
        while stream.write_all(&chunk).await.is_ok() {}
        return;
    }
    let end = reply
        .cut_after
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    let _ = stream.write_all(&reply.body[..end]).await;
    let _ = stream.flush().await;
    // Dropping the stream closes it: after a cut, mid-body.
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}
