//! The shared client: sends one request, politely, and reads its answer as asked.
//!
//! Owns: the reqwest client (rustls with ring, gzip, timeouts, `User-Agent`, proxies from the
//! environment), the attempt loop (limiter slot → send → classify → wait → again, counted in
//! `stats.rs`), reading bodies within `max_body_bytes`, conditional requests and the
//! per-request log lines.
//! Must not: know any source's protocol, or wait anywhere but the limiter and the backoff (both
//! cancellable).
//!
//! What is tried again: 429 (after its `Retry-After`, or one window of the host, pausing the
//! host for every pipeline), 5xx but 501/505, timeouts, connection failures and bodies cut
//! off. What is an answer, returned at once: every other status, a body over the limit, and a
//! body that is not the format asked for.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::HttpError;
use super::limiter::{RateHeaders, RateLimiter};
use super::redact::{Redacted, Shown};
use super::retry::{self, RetryPolicy};
use super::stats::{HostCounters, HttpStats};
use crate::ledger::Validator;

/// Sent with every request, so that a server's operators can see who calls.
pub const USER_AGENT: &str = concat!("indikator/", env!("CARGO_PKG_VERSION"));
/// Longest wait for a TCP + TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a request may take, body included; PxWeb's biggest answers (150 000 cells of
/// json-stat2, about 5 MB) take seconds, an overloaded server minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest body read (after gzip): 256 MiB, above any one PxWeb piece or Kolada page by far and
/// room for a whole-file CSV download, but a bound on a server (or gzip bomb) that never ends.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 256 << 20;
/// How much of an error answer's body is kept in [`HttpError::Status`].
pub const BODY_START_BYTES: usize = 512;

/// Whether requests go through the proxies the environment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyPolicy {
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case), as curl reads them.
    #[default]
    FromEnvironment,
    /// Straight to the server whatever the environment says (loopback test servers).
    Direct,
}

/// How the client behaves; `Default` is what the daemon uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Per attempt, body included.
    pub timeout: Duration,
    pub max_body_bytes: u64,
    pub retry: RetryPolicy,
    pub proxy: ProxyPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            retry: RetryPolicy::default(),
            proxy: ProxyPolicy::default(),
        }
    }
}

/// Installs rustls's ring provider as the process default, once; later calls do nothing. `main`
/// calls it at start-up; [`HttpClient`] calls it too before its first request, so that tests and library users
/// cannot build a client without one (reqwest's `rustls-no-provider` would panic).
pub fn install_crypto_provider() {
    // Err = a provider is installed already (ours, or one the embedding program chose).
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What to check an answer's body against before it counts as an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Any bytes (a CSV, a PX file: its decoder checks it).
    #[default]
    Bytes,
    /// JSON: a Content-Type that is not HTML or XML, and a body that parses as JSON (json-stat2
    /// included). An HTML error page or a truncated JSON is [`HttpError::Format`], even on 200.
    Json,
}

/// One request to send (retried as a whole).
#[derive(Debug, Clone)]
pub struct Request<'a> {
    method: Method,
    url: &'a str,
    json_body: Option<Vec<u8>>,
    expect: Expect,
    validator: Option<&'a Validator>,
    shown: Shown,
    timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    pub fn get(url: &'a str) -> Self {
        Self {
            method: Method::GET,
            url,
            json_body: None,
            expect: Expect::Bytes,
            validator: None,
            shown: Shown::Redacted,
            timeout: None,
        }
    }

    /// A POST of `body` as JSON (`Content-Type: application/json`).
    pub fn post_json(url: &'a str, body: &impl Serialize) -> Self {
        let body = serde_json::to_vec(body)
            .expect("request bodies are plain JSON values (string keys, finite numbers)");
        Self {
            method: Method::POST,
            json_body: Some(body),
            ..Self::get(url)
        }
    }

    pub fn with_expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }

    /// Asks only for a change since `validator` (`If-None-Match` from its ETag,
    /// `If-Modified-Since` from its Last-Modified); an unchanged resource is
    /// [`Answer::NotModified`]. `None` asks unconditionally.
    pub fn with_validator(mut self, validator: Option<&'a Validator>) -> Self {
        self.validator = validator;
        self
    }

    /// How the URL appears in log lines, errors and [`Response::url`] (default
    /// [`Shown::Redacted`]; [`Shown::Origin`] for a URL whose path is a secret).
    pub fn with_shown(mut self, shown: Shown) -> Self {
        self.shown = shown;
        self
    }

    /// Longest each attempt may take, body included, instead of the client's
    /// [`HttpSettings::timeout`] (a webhook that is not answering in seconds will not).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A complete 2xx answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL asked for, redacted (fit for `Payload::origin` and messages).
    pub url: String,
    pub status: u16,
    /// As sent, e.g. `text/csv; charset=iso-8859-1`.
    pub content_type: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The body, decompressed, at most `max_body_bytes`.
    pub bytes: Vec<u8>,
}

impl Response {
    /// The `charset` parameter of the Content-Type, lowercase (`iso-8859-1`), if any.
    pub fn charset(&self) -> Option<String> {
        let content_type = self.content_type.as_deref()?;
        content_type.split(';').skip(1).find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
        })
    }

    /// What to store for the next conditional request of `resource`.
    pub fn validator(&self, resource: impl Into<String>) -> Validator {
        Validator {
            resource: resource.into(),
            etag: self.etag.clone(),
            last_modified: self.last_modified.clone(),
            updated: None,
        }
    }
}

/// What a request came back with.
#[derive(Debug, Clone)]
pub enum Answer {
    Fresh(Response),
    /// 304: unchanged since the validator sent.
    NotModified,
}

/// The key the limiter knows a URL's host by: `host:port` (`api.scb.se:443`).
pub fn host_key(url: &str) -> Result<String, HttpError> {
    let parsed = parse_url(url, &Redacted(url).to_string())?;
    Ok(host_of(&parsed))
}

/// `url` parsed; `shown` is how an error names it.
fn parse_url(url: &str, shown: &str) -> Result<Url, HttpError> {
    Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| HttpError::InvalidUrl {
            url: shown.to_string(),
        })
}

fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The HTTP client of a process: cheap to clone, every clone sharing one connection pool, one
/// [`RateLimiter`], so that limits learnt from a host hold for every pipeline that calls it, and
/// one [`HttpStats`].
///
/// The reqwest client inside is built at the first request, not here: building it loads the
/// system's CA certificates, which a file-only run should neither pay for nor fail on.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Arc<OnceCell<reqwest::Client>>,
    limiter: RateLimiter,
    stats: HttpStats,
    settings: Arc<HttpSettings>,
}

impl Default for HttpClient {
    /// The daemon's client ([`HttpSettings::default`]).
    fn default() -> Self {
        Self::new(HttpSettings::default())
    }
}

/// Where one request goes, resolved once for all its attempts.
struct Target<'a> {
    url: Url,
    /// The limiter's and the stats' key.
    host: String,
    /// The URL as logs and errors show it.
    shown: &'a str,
    counters: Arc<HostCounters>,
}

/// Why one attempt did not give an answer, and whether another may.
struct Failed {
    error: HttpError,
    retry: Retry,
}

enum Retry {
    /// An answer (4xx, too large, wrong format): trying again would get the same.
    Never,
    /// After the policy's backoff.
    Backoff,
    /// After the server's `Retry-After` (or, for a 429 without one, a window of the host).
    After(Option<Duration>),
}

enum BodyError {
    /// With the bytes read before the limit was seen to be passed.
    TooLarge(u64),
    Transport(reqwest::Error, u64),
}

impl HttpClient {
    /// A client with `settings` and a limiter of its own.
    pub fn new(settings: HttpSettings) -> Self {
        Self {
            client: Arc::new(OnceCell::new()),
            limiter: RateLimiter::default(),
            stats: HttpStats::default(),
            settings: Arc::new(settings),
        }
    }

    /// The reqwest client, built on first use; a failure (no CA certificates on the system) is
    /// returned to this request and tried again by the next.
    async fn reqwest(&self, shown: &str) -> Result<&reqwest::Client, HttpError> {
        self.client
            .get_or_try_init(|| async {
                install_crypto_provider();
                let settings = &self.settings;
                let mut builder = reqwest::Client::builder()
                    .user_agent(USER_AGENT)
                    .connect_timeout(settings.connect_timeout)
                    .timeout(settings.timeout)
                    .gzip(true);
                if settings.proxy == ProxyPolicy::Direct {
                    builder = builder.no_proxy();
                }
                builder.build()
            })
            .await
            .map_err(|source| HttpError::Client {
                url: shown.to_string(),
                source,
            })
    }

    /// The process's rate limiter (the PxWeb planner reads a host's `max_cells` here, and a
    /// source sets what the host's config says).
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Requests, retries, 429s, 5xx, errors and bytes per host, for the daemon's `/metrics`.
    pub fn stats(&self) -> &HttpStats {
        &self.stats
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// GETs `url`; the body as bytes.
    pub async fn get_bytes(
        &self,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Response, HttpError> {
        let request = Request::get(url);
        fresh(self.send(&request, cancel).await?, &request)
    }

    /// GETs `url`; the body as bytes, checked to be JSON when `expect` says so.
    pub async fn get_expecting(
        &self,
        url: &str,
        expect: Expect,
        cancel: &CancellationToken,
    ) -> Result<Response, HttpError> {
        let request = Request::get(url).with_expect(expect);
        fresh(self.send(&request, cancel).await?, &request)
    }

    /// POSTs `body` as JSON to `url`; the answer's body as bytes, checked to be JSON when
    /// `expect` says so.
    pub async fn post_bytes(
        &self,
        url: &str,
        body: &impl Serialize,
        expect: Expect,
        cancel: &CancellationToken,
    ) -> Result<Response, HttpError> {
        let request = Request::post_json(url, body).with_expect(expect);
        fresh(self.send(&request, cancel).await?, &request)
    }

    /// GETs `url` and parses the body as a `T` ([`HttpError::Format`] if it is not one).
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<T, HttpError> {
        let response = self.get_bytes(url, cancel).await?;
        parse_json(&response)
    }

    /// POSTs `body` as JSON to `url` and parses the answer as a `T`.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &impl Serialize,
        cancel: &CancellationToken,
    ) -> Result<T, HttpError> {
        let response = self.post_bytes(url, body, Expect::Bytes, cancel).await?;
        parse_json(&response)
    }

    /// Sends `request` until it gets an answer or the retry policy gives up: each attempt waits
    /// for a slot of the host's rate limit, and everything waits cancellably (`Cancelled` as soon
    /// as `cancel` is, with nothing half-read returned).
    pub async fn send(
        &self,
        request: &Request<'_>,
        cancel: &CancellationToken,
    ) -> Result<Answer, HttpError> {
        let shown = request.shown.show(request.url);
        let url = parse_url(request.url, &shown)?;
        let host = host_of(&url);
        let target = Target {
            counters: self.stats.host(&host),
            url,
            host,
            shown: &shown,
        };
        let span = tracing::debug_span!("http", url = %shown, method = %request.method);
        async {
            let client = self.reqwest(&shown).await?;
            let policy = self.settings.retry;
            let cancelled = || HttpError::Cancelled { url: shown.clone() };
            let mut attempt = 0;
            loop {
                attempt += 1;
                let permit = self
                    .limiter
                    .acquire(&target.host, cancel)
                    .await
                    .map_err(|_| cancelled())?;
                let result = tokio::select! {
                    result = self.attempt(client, request, &target, attempt) => result,
                    () = cancel.cancelled() => return Err(cancelled()),
                };
                drop(permit);
                let Failed { error, retry } = match result {
                    Ok(answer) => return Ok(answer),
                    Err(failed) => failed,
                };
                if attempt >= policy.attempts.max(1) {
                    return Err(error);
                }
                let (sleep, wait) = match retry {
                    Retry::Never => return Err(error),
                    Retry::Backoff => {
                        let backoff = policy.backoff(attempt, retry::random());
                        (backoff, backoff)
                    }
                    Retry::After(retry_after) => {
                        let window = self.limiter.limits(&target.host).window;
                        let pause = policy.obey(retry_after.unwrap_or(window));
                        // A pause of the host holds every pipeline's calls to it, not only ours;
                        // the next `acquire` waits it out.
                        self.limiter.pause(&target.host, pause);
                        (Duration::ZERO, pause)
                    }
                };
                tracing::warn!(
                    attempt,
                    status = error.status(),
                    wait_ms = wait.as_millis() as u64,
                    error = %error,
                    "retrying"
                );
                target.counters.retried();
                tokio::select! {
                    () = tokio::time::sleep(sleep) => {}
                    () = cancel.cancelled() => return Err(cancelled()),
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One attempt: send, learn the host's rate headers, read and check the body.
    async fn attempt(
        &self,
        client: &reqwest::Client,
        request: &Request<'_>,
        target: &Target<'_>,
        attempt: u32,
    ) -> Result<Answer, Failed> {
        let Target {
            url,
            host,
            shown,
            counters,
        } = target;
        let started = Instant::now();
        let mut builder = client.request(request.method.clone(), url.clone());
        if let Some(timeout) = request.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(body) = &request.json_body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(validator) = request.validator {
            if let Some(etag) = &validator.etag {
                builder = builder.header(IF_NONE_MATCH, etag);
            }
            if let Some(last_modified) = &validator.last_modified {
                builder = builder.header(IF_MODIFIED_SINCE, last_modified);
            }
        }
        // Every way out of an attempt passes here once: the debug line and the bytes counted.
        let log = |status: Option<u16>, bytes: u64| {
            counters.received(bytes);
            let elapsed_ms = started.elapsed().as_millis() as u64;
            tracing::debug!(status, bytes, elapsed_ms, attempt, "request");
        };
        counters.sent();
        let mut response = match builder.send().await {
            Ok(response) => response,
            Err(err) => {
                log(None, 0);
                return Err(self.transport_failure(err, request, target, attempt, 0));
            }
        };
        let status = response.status();
        counters.answered(status.as_u16());
        let headers = response.headers().clone();
        self.limiter
            .learn_headers(host, &RateHeaders::parse(&headers, Utc::now()));
        let retry_after = retry::retry_after(&headers, Utc::now());

        if status == StatusCode::NOT_MODIFIED {
            log(Some(304), 0);
            return Ok(Answer::NotModified);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let body_start = body_start(&mut response).await;
            log(Some(429), body_start.len() as u64);
            return Err(Failed {
                error: HttpError::RateLimited {
                    url: shown.to_string(),
                    attempts: attempt,
                    retry_after,
                },
                retry: Retry::After(retry_after),
            });
        }
        if !status.is_success() {
            let body_start = body_start(&mut response).await;
            log(Some(status.as_u16()), body_start.len() as u64);
            let retryable = status.is_server_error()
                && !matches!(
                    status,
                    StatusCode::NOT_IMPLEMENTED | StatusCode::HTTP_VERSION_NOT_SUPPORTED
                );
            return Err(Failed {
                error: HttpError::Status {
                    url: shown.to_string(),
                    status: status.as_u16(),
                    body_start,
                    attempts: attempt,
                },
                retry: match (retryable, retry_after) {
                    (false, _) => Retry::Never,
                    (true, None) => Retry::Backoff,
                    (true, Some(after)) => Retry::After(Some(after)),
                },
            });
        }

        let bytes = match read_limited(&mut response, self.settings.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge(read)) => {
                log(Some(status.as_u16()), read);
                return Err(Failed {
                    error: HttpError::TooLarge {
                        url: shown.to_string(),
                        limit: self.settings.max_body_bytes,
                    },
                    retry: Retry::Never,
                });
            }
            Err(BodyError::Transport(err, read)) => {
                log(Some(status.as_u16()), read);
                return Err(self.transport_failure(err, request, target, attempt, read));
            }
        };
        log(Some(status.as_u16()), bytes.len() as u64);
        let header = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let response = Response {
            url: shown.to_string(),
            status: status.as_u16(),
            content_type: header(CONTENT_TYPE),
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
            bytes,
        };
        if request.expect == Expect::Json {
            check_json(&response).map_err(|error| Failed {
                error,
                retry: Retry::Never,
            })?;
        }
        Ok(Answer::Fresh(response))
    }

    fn transport_failure(
        &self,
        err: reqwest::Error,
        request: &Request<'_>,
        target: &Target<'_>,
        attempt: u32,
        read: u64,
    ) -> Failed {
        target.counters.failed();
        // reqwest's message names the URL as sent, credentials and secrets included; ours names
        // it as shown, so the cause goes on without it.
        let err = err.without_url();
        let url = target.shown.to_string();
        let error = if err.is_timeout() {
            HttpError::Timeout {
                url,
                timeout: request.timeout.unwrap_or(self.settings.timeout),
                attempts: attempt,
            }
        } else if err.is_body() || err.is_decode() {
            HttpError::Cut {
                url,
                bytes: read,
                attempts: attempt,
                source: err,
            }
        } else {
            // Refused, reset or closed before the answer's head: the connection failed.
            HttpError::Connect {
                url,
                attempts: attempt,
                source: err,
            }
        };
        Failed {
            error,
            retry: Retry::Backoff,
        }
    }
}

fn fresh(answer: Answer, request: &Request<'_>) -> Result<Response, HttpError> {
    match answer {
        Answer::Fresh(response) => Ok(response),
        // Only a conditional request may be answered 304; the plain methods send none, so a 304
        // (a confused proxy) is an answer like any other 3xx: an error naming the URL.
        Answer::NotModified => Err(HttpError::Status {
            url: request.shown.show(request.url),
            status: 304,
            body_start: String::new(),
            attempts: 1,
        }),
    }
}

/// The body, stopping with `TooLarge` as soon as it would pass `limit` (a Content-Length over it
/// is refused before a byte is read).
async fn read_limited(response: &mut reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(BodyError::TooLarge(0));
    }
    let capacity = response
        .content_length()
        .unwrap_or(0)
        .min(limit)
        .min(64 << 20);
    let mut bytes = Vec::with_capacity(capacity as usize);
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() as u64 + chunk.len() as u64 > limit {
                    return Err(BodyError::TooLarge(bytes.len() as u64));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(err) => return Err(BodyError::Transport(err, bytes.len() as u64)),
        }
    }
}

/// The first [`BODY_START_BYTES`] of an error answer, lossy UTF-8; the rest is not read (and
/// whatever cut the body short only shortens this).
async fn body_start(response: &mut reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_START_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(BODY_START_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An HTML or XML Content-Type where JSON was asked for is an error page, whatever it contains.
fn check_json_content_type(response: &Response) -> Result<(), HttpError> {
    let content_type = response
        .content_type
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("html") || content_type.contains("xml") {
        return Err(format_error(response, None));
    }
    Ok(())
}

fn check_json(response: &Response) -> Result<(), HttpError> {
    check_json_content_type(response)?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&response.bytes)
        .map(drop)
        .map_err(|err| format_error(response, Some(err)))
}

fn parse_json<T: DeserializeOwned>(response: &Response) -> Result<T, HttpError> {
    check_json_content_type(response)?;
    serde_json::from_slice(&response.bytes).map_err(|err| format_error(response, Some(err)))
}

fn format_error(response: &Response, source: Option<serde_json::Error>) -> HttpError {
    HttpError::Format {
        url: response.url.clone(),
        content_type: response.content_type.clone().unwrap_or_default(),
        expected: "JSON",
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::sources::http::testing::{Reply, TestServer, fast};
    use crate::sources::http::{HostStats, LimitHints};

    const GZIPPED: [u8; 48] = [
        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 171, 86, 202, 207, 86, 178, 42, 41, 42, 77, 213, 81, 42,
        73, 173, 40, 81, 178, 82, 74, 175, 202, 44, 40, 72, 77, 81, 170, 5, 0, 38, 232, 68, 77, 28,
        0, 0, 0,
    ];

    /// A client for `server` with `settings` and a rate limit that never gets in the way.
    fn client_with(server: &TestServer, settings: HttpSettings) -> HttpClient {
        let client = HttpClient::new(settings);
        let hints = LimitHints {
            max_calls: Some(1000),
            window: Some(Duration::from_millis(100)),
            ..LimitHints::default()
        };
        client
            .limiter()
            .set_overrides(&host_key(&server.url("/")).unwrap(), hints);
        client
    }

    fn client(server: &TestServer) -> HttpClient {
        client_with(server, fast())
    }

    fn never() -> CancellationToken {
        CancellationToken::new()
    }

    #[tokio::test]
    async fn a_429_is_tried_again_after_its_retry_after() {
        let server = TestServer::start(|arrival| match arrival.n {
            0 => Reply::new(429, "text/plain", "Too many requests").with_header("Retry-After", "1"),
            _ => Reply::json(r#"{"ok":true}"#),
        })
        .await;
        let value: serde_json::Value = client(&server)
            .get_json(&server.url("/api/v2/config"), &never())
            .await
            .unwrap();
        assert_eq!(value["ok"], true);
        let arrivals = server.arrivals();
        assert_eq!(arrivals.len(), 2);
        assert!(arrivals[1].at - arrivals[0].at >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_429_that_persists_is_the_rate_limit_error_with_its_retry_after() {
        let server = TestServer::start(|_| {
            Reply::new(429, "text/plain", "slow down").with_header("Retry-After", "0")
        })
        .await;
        let err = client(&server)
            .get_bytes(&server.url("/t"), &never())
            .await
            .unwrap_err();
        assert!(
            matches!(err, HttpError::RateLimited { attempts: 3, retry_after: Some(d), .. } if d.is_zero()),
            "{err:?}"
        );
        assert_eq!(server.arrivals().len(), 3);
    }

    #[tokio::test]
    async fn two_503s_are_tried_again_and_the_third_answer_counts() {
        let server = TestServer::start(|arrival| match arrival.n {
            0 | 1 => Reply::new(503, "text/html", "<h1>Service Unavailable</h1>"),
            _ => Reply::json(r#"{"ok":true}"#),
        })
        .await;
        let response = client(&server)
            .get_bytes(&server.url("/t"), &never())
            .await
            .unwrap();
        assert_eq!(response.bytes, br#"{"ok":true}"#);
        assert_eq!(server.arrivals().len(), 3);
    }

    #[tokio::test]
    async fn a_4xx_is_an_answer_at_once_with_the_start_of_its_body() {
        let problem = format!(
            r#"{{"type":"Parameter error","title":"Too many cells selected","status":400,"detail":"{}"}}"#,
            "x".repeat(2000)
        );
        let server = TestServer::start(move |arrival| match arrival.target.as_str() {
            "/missing" => Reply::new(404, "text/plain", "Node with id TAB9999 can not be found"),
            _ => Reply::new(
                400,
                "application/problem+json; charset=utf-8",
                problem.clone(),
            ),
        })
        .await;
        let client = client(&server);
        let err = client
            .get_bytes(&server.url("/missing"), &never())
            .await
            .unwrap_err();
        let HttpError::Status {
            status: 404,
            body_start,
            attempts: 1,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(body_start, "Node with id TAB9999 can not be found");
        let err = client
            .post_bytes(
                &server.url("/data"),
                &serde_json::json!({"selection": []}),
                Expect::Json,
                &never(),
            )
            .await
            .unwrap_err();
        let HttpError::Status {
            status: 400,
            body_start,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(body_start.len(), BODY_START_BYTES);
        assert!(body_start.contains(r#""title":"Too many cells selected""#));
        let arrivals = server.arrivals();
        assert_eq!(arrivals.len(), 2, "neither was tried again");
        assert_eq!(
            (arrivals[1].method.as_str(), arrivals[1].body.as_slice()),
            ("POST", br#"{"selection":[]}"#.as_slice())
        );
        assert_eq!(arrivals[1].header("content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_a_format_error_even_on_200() {
        let server = TestServer::start(|arrival| match arrival.target.as_str() {
            "/html" => Reply::new(
                200,
                "text/html; charset=utf-8",
                "<html><body>Ett fel har inträffat</body></html>",
            ),
            _ => Reply::json(r#"{"version":"2.0","class":"dataset","value":[1,2"#),
        })
        .await;
        let client = client(&server);
        let err = client
            .get_json::<serde_json::Value>(&server.url("/html"), &never())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, HttpError::Format { content_type, source: None, .. } if content_type == "text/html; charset=utf-8"),
            "{err:?}"
        );
        let err = client
            .post_bytes(
                &server.url("/cut-json"),
                &serde_json::json!({}),
                Expect::Json,
                &never(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                HttpError::Format {
                    source: Some(_),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            server.arrivals().len(),
            2,
            "a format error is an answer, not retried"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_without_reading_it_all() {
        let server = TestServer::start(|arrival| match arrival.target.as_str() {
            "/declared" => Reply::new(200, "text/csv", vec![b'x'; 2 << 20]),
            _ => Reply {
                endless: true,
                ..Reply::new(200, "text/csv", "")
            },
        })
        .await;
        let client = client(&server);
        for path in ["/declared", "/endless"] {
            let err = tokio::time::timeout(
                Duration::from_secs(5),
                client.get_bytes(&server.url(path), &never()),
            )
            .await
            .expect("the client stops reading at the limit")
            .unwrap_err();
            assert!(
                matches!(
                    err,
                    HttpError::TooLarge {
                        limit: 1_048_576,
                        ..
                    }
                ),
                "{path}: {err:?}"
            );
        }
        assert_eq!(
            server.arrivals().len(),
            2,
            "too large is an answer, not retried"
        );
    }

    #[tokio::test]
    async fn a_body_cut_off_is_tried_again_then_an_error() {
        let server = TestServer::start(|_| Reply {
            cut_after: Some(10),
            ..Reply::json(&format!("[{}0]", "1,".repeat(500)))
        })
        .await;
        let err = client(&server)
            .get_bytes(&server.url("/t"), &never())
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Cut { attempts: 3, .. }), "{err:?}");
        assert_eq!(server.arrivals().len(), 3);
    }

    #[tokio::test]
    async fn a_slow_answer_times_out_and_is_tried_again() {
        let server = TestServer::start(|arrival| Reply {
            delay: if arrival.n == 0 {
                Duration::from_secs(2)
            } else {
                Duration::ZERO
            },
            ..Reply::json("[]")
        })
        .await;
        let settings = HttpSettings {
            timeout: Duration::from_millis(300),
            ..fast()
        };
        let response = client_with(&server, settings)
            .get_bytes(&server.url("/t"), &never())
            .await
            .unwrap();
        assert_eq!(response.bytes, b"[]");
        assert_eq!(server.arrivals().len(), 2);
    }

    #[tokio::test]
    async fn the_limiter_never_lets_more_than_n_calls_start_in_a_window() {
        let server = TestServer::start(|_| Reply::json("{}")).await;
        let client = client(&server);
        let window = Duration::from_millis(200);
        let hints = LimitHints {
            max_calls: Some(3),
            window: Some(window),
            ..LimitHints::default()
        };
        client
            .limiter()
            .set_overrides(&host_key(&server.url("/")).unwrap(), hints);
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let (client, url) = (client.clone(), server.url("/t"));
            calls.spawn(async move {
                client
                    .get_bytes(&url, &CancellationToken::new())
                    .await
                    .map(drop)
            });
        }
        while let Some(result) = calls.join_next().await {
            result.unwrap().unwrap();
        }
        let mut arrivals: Vec<_> = server.arrivals().iter().map(|a| a.at).collect();
        arrivals.sort();
        assert_eq!(arrivals.len(), 10);
        for (earlier, later) in arrivals.iter().zip(&arrivals[3..]) {
            assert!(
                *later - *earlier >= window,
                "4 calls within {:?}",
                *later - *earlier
            );
        }
    }

    #[tokio::test]
    async fn rate_limit_headers_update_the_hosts_limits_whatever_their_case() {
        let ssb =
            TestServer::start(|_| Reply::json("{}").with_header("x-RateLimit-Limit", "40;w=60"))
                .await;
        let scb = TestServer::start(|_| {
            Reply::json("{}")
                .with_header("X-Rate-Limit-Limit", "10s")
                .with_header("X-Rate-Limit-Remaining", "29")
        })
        .await;
        let client = HttpClient::new(fast());
        for server in [&ssb, &scb] {
            client
                .get_bytes(&server.url("/api/v2/config"), &never())
                .await
                .unwrap();
        }
        let limits = |server: &TestServer| {
            client
                .limiter()
                .limits(&host_key(&server.url("/")).unwrap())
        };
        assert_eq!(
            (limits(&ssb).max_calls, limits(&ssb).window),
            (40, Duration::from_secs(60))
        );
        assert_eq!(
            (limits(&scb).max_calls, limits(&scb).window),
            (10, Duration::from_secs(10))
        );
    }

    #[tokio::test]
    async fn cancellation_stops_a_request_waiting_for_its_slot() {
        let server = TestServer::start(|_| Reply::json("{}")).await;
        let client = client(&server);
        let hints = LimitHints {
            max_calls: Some(1),
            window: Some(Duration::from_secs(60)),
            ..LimitHints::default()
        };
        client
            .limiter()
            .set_overrides(&host_key(&server.url("/")).unwrap(), hints);
        let cancel = CancellationToken::new();
        client
            .get_bytes(&server.url("/first"), &cancel)
            .await
            .unwrap();
        let canceller = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            canceller.cancel();
        });
        let started = Instant::now();
        let err = client
            .get_bytes(&server.url("/second"), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(err, HttpError::Cancelled { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(server.arrivals().len(), 1);
    }

    #[tokio::test]
    async fn gzip_bodies_are_decompressed_and_the_client_says_who_it_is() {
        let server = TestServer::start(|_| {
            Reply::new(200, "application/json", GZIPPED.to_vec())
                .with_header("Content-Encoding", "gzip")
        })
        .await;
        let value: serde_json::Value = client(&server)
            .get_json(&server.url("/t"), &never())
            .await
            .unwrap();
        assert_eq!(value["text"], "gzipped");
        let arrival = &server.arrivals()[0];
        assert!(arrival.header("accept-encoding").unwrap().contains("gzip"));
        assert_eq!(arrival.header("user-agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("indikator/0."));
    }

    #[tokio::test]
    async fn a_validator_makes_the_request_conditional_and_304_is_not_modified() {
        let server = TestServer::start(|arrival| match arrival.header("if-none-match") {
            Some(r#""v1""#) => Reply::new(304, "text/csv", ""),
            _ => Reply::new(200, "text/csv; charset=ISO-8859-1", "a,b\n")
                .with_header("ETag", r#""v1""#)
                .with_header("Last-Modified", "Wed, 21 Oct 2026 07:28:00 GMT"),
        })
        .await;
        let client = client(&server);
        let url = server.url("/data.csv");
        let Answer::Fresh(first) = client.send(&Request::get(&url), &never()).await.unwrap() else {
            panic!("the first request is unconditional")
        };
        assert_eq!(first.charset().as_deref(), Some("iso-8859-1"));
        let validator = first.validator(url.clone());
        let second = client
            .send(
                &Request::get(&url).with_validator(Some(&validator)),
                &never(),
            )
            .await
            .unwrap();
        assert!(matches!(second, Answer::NotModified));
        let arrival = &server.arrivals()[1];
        assert_eq!(
            arrival.header("if-modified-since"),
            Some("Wed, 21 Oct 2026 07:28:00 GMT")
        );
    }

    #[tokio::test]
    async fn a_304_nobody_asked_for_is_an_error_naming_the_url_not_a_panic() {
        let server = TestServer::start(|_| Reply::new(304, "application/json", "")).await;
        let url = server.url("/api/v2/config");
        let err = client(&server)
            .get_expecting(&url, Expect::Json, &never())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(304));
        assert!(err.to_string().contains("/api/v2/config"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_connection_is_tried_again_then_names_the_url() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = HttpClient::new(fast());
        let url = format!("http://user:pw@127.0.0.1:{port}/x?api_key=k");
        let err = client.get_bytes(&url, &never()).await.unwrap_err();
        assert!(
            matches!(err, HttpError::Connect { attempts: 3, .. }),
            "{err:?}"
        );
        assert!(err.to_string().starts_with(&format!(
            "cannot reach http://127.0.0.1:{port}/x?api_key=REDACTED "
        )));
        let chain = format!("{:#}", anyhow::Error::new(err));
        assert!(!chain.contains("pw@") && !chain.contains("=k"), "{chain}");
        let stats = client.stats().snapshot();
        assert_eq!((stats[0].requests, stats[0].errors), (3, 3), "{stats:?}");
    }

    #[tokio::test]
    async fn stats_count_a_429_then_200_under_the_host_alone() {
        let server = TestServer::start(|arrival| match arrival.n {
            0 => Reply::new(429, "text/plain", "slow down").with_header("Retry-After", "0"),
            _ => Reply::json(r#"{"ok":true}"#),
        })
        .await;
        let client = client(&server);
        let url = server.url("/api/v2/tables?api_key=secret");
        let url = url.replacen("http://", "http://user:pw@", 1);
        client.get_bytes(&url, &never()).await.unwrap();
        let host = host_key(&server.url("/")).unwrap();
        assert_eq!(
            client.clone().stats().snapshot(),
            [HostStats {
                host,
                requests: 2,
                retries: 1,
                rate_limited: 1,
                server_errors: 0,
                errors: 0,
                bytes_received: ("slow down".len() + r#"{"ok":true}"#.len()) as u64,
            }]
        );
    }

    #[tokio::test]
    async fn stats_count_every_attempt_of_a_503_burst() {
        let server = TestServer::start(|_| Reply::new(503, "text/plain", "busy")).await;
        let client = client(&server);
        let err = client
            .get_bytes(&server.url("/x"), &never())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(503));
        let stats = &client.stats().snapshot()[0];
        assert_eq!(
            (
                stats.requests,
                stats.retries,
                stats.server_errors,
                stats.rate_limited
            ),
            (3, 2, 3, 0)
        );
        assert_eq!((stats.errors, stats.bytes_received), (0, 12));
    }

    #[test]
    fn errors_name_the_url_and_what_to_do() {
        let url = || "https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy".to_string();
        let errors = [
            HttpError::InvalidUrl {
                url: "api.scb.se/x".into(),
            },
            HttpError::Timeout {
                url: url(),
                timeout: DEFAULT_TIMEOUT,
                attempts: 5,
            },
            HttpError::TooLarge {
                url: url(),
                limit: DEFAULT_MAX_BODY_BYTES,
            },
            HttpError::Status {
                url: url(),
                status: 403,
                body_start: "Forbidden".into(),
                attempts: 1,
            },
            HttpError::Format {
                url: url(),
                content_type: "text/html".into(),
                expected: "JSON",
                source: None,
            },
            HttpError::Cancelled { url: url() },
            HttpError::RateLimited {
                url: url(),
                attempts: 5,
                retry_after: Some(Duration::from_secs(10)),
            },
        ];
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(shown.join("\n"), @r#"
        api.scb.se/x is not an http(s) URL; check `url` in [source]
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy: no complete answer within 120 s after 5 attempts; the server is slow or overloaded, try again later
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy: the answer is larger than 268435456 bytes and was not read further; select less per request, or raise `max_body_bytes`
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy answered HTTP 403: "Forbidden"; check the URL and the query
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy answered "text/html" where JSON was asked for; the server probably sent an error page, try again later or check the URL
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy: cancelled before the answer arrived
        https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BefolkningNy still answers 429 Too Many Requests after 5 attempts (last Retry-After: 10 s); another client may share this address, or lower `server_max_calls` / raise `server_window_secs` in [source]
        "#);
    }
}
