//! `kind = "url"`: files served at http(s) URLs, each fetched whole; several URLs are the pieces
//! of one table, as several paths are for `kind = "file"`.
//!
//! Owns: GETting each URL through the shared client, conditionally on the ETag and
//! Last-Modified the last run stored, reporting "unchanged" when every piece answers 304, and
//! saying what a refused URL means.
//! Must not: retry, sleep or bound a body on its own (the shared client in `sources::http`
//! does), decode (`formats` does) or archive (the pipeline archives every payload it fetches).

use super::http::{Answer, HttpError, Redacted, Request, Response};
use super::{FetchContext, Fetched, Payload, Source, SourceError};
use crate::ledger::Validator;

/// A checked URL source: every URL is http(s), each named once.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlSource {
    /// One payload each, in this order.
    pub urls: Vec<String>,
}

impl Source for UrlSource {
    async fn fetch(&self, cx: &FetchContext) -> Result<Fetched, SourceError> {
        let mut answers: Vec<Option<Response>> = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            // Once a piece has changed the table is fetched whole: asking the rest
            // conditionally would only earn 304s to fetch again.
            let validator = if answers.iter().all(Option::is_none) {
                stored(cx, url)
            } else {
                None
            };
            answers.push(conditional(cx, url, validator).await?);
        }
        if answers.iter().all(Option::is_none) {
            let kept = (self.urls.iter())
                .filter_map(|url| stored(cx, url).cloned())
                .collect();
            return Ok(Fetched::unchanged(kept));
        }
        let mut payloads = Vec::with_capacity(self.urls.len());
        let mut validators = Vec::new();
        for (url, answer) in self.urls.iter().zip(answers) {
            let response = match answer {
                Some(response) => response,
                // Unchanged, but a later piece changed: the table is all its pieces.
                None => whole(cx, url).await?,
            };
            if response.etag.is_some() || response.last_modified.is_some() {
                validators.push(response.validator(resource(url)));
            }
            payloads.push(Payload::new(&file_name(url), response.url, response.bytes));
        }
        Ok(Fetched::new(payloads, validators))
    }
}

/// What a URL's validator is stored under: the URL as shown, so that no credential or secret
/// query value reaches the ledger.
fn resource(url: &str) -> String {
    Redacted(url).to_string()
}

/// The validator the last run stored for `url`.
fn stored<'a>(cx: &'a FetchContext, url: &str) -> Option<&'a Validator> {
    let resource = resource(url);
    cx.validators.iter().find(|v| v.resource == resource)
}

/// GETs `url`, conditionally when there is a `validator`; `None` = 304 Not Modified.
async fn conditional(
    cx: &FetchContext,
    url: &str,
    validator: Option<&Validator>,
) -> Result<Option<Response>, SourceError> {
    let Some(validator) = validator else {
        return whole(cx, url).await.map(Some);
    };
    let request = Request::get(url).with_validator(Some(validator));
    match cx.http.send(&request, &cx.cancel).await.map_err(refused)? {
        Answer::Fresh(response) => Ok(Some(response)),
        Answer::NotModified => Ok(None),
    }
}

/// GETs `url` unconditionally.
async fn whole(cx: &FetchContext, url: &str) -> Result<Response, SourceError> {
    cx.http.get_bytes(url, &cx.cancel).await.map_err(refused)
}

/// An error status in this kind's terms (what to do about a URL that is not there); every
/// other failure of the HTTP layer as it is.
fn refused(error: HttpError) -> SourceError {
    match error {
        HttpError::Status {
            url,
            status,
            body_start,
            ..
        } => UrlError::Refused {
            url,
            status,
            body_start,
        }
        .into(),
        other => other.into(),
    }
}

/// The file name `url` ends in: its last non-empty path segment (`BE0101.px`), or its host for
/// a URL without a path; empty for a URL that does not parse (`check` refuses those). The
/// default `source_table` and the payload's name under `raw/`.
pub fn file_name(url: &str) -> String {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return String::new();
    };
    let segment = (parsed.path_segments())
        .and_then(|mut segments| segments.rfind(|s| !s.is_empty()))
        .map(str::to_string);
    segment
        .or_else(|| parsed.host_str().map(str::to_string))
        .unwrap_or_default()
}

/// Errors of fetching a file at a URL; the URL in each is redacted.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{url} answered HTTP {status}{}; {}", said(body_start), advice(*status))]
    Refused {
        url: String,
        status: u16,
        /// The first bytes of the answer, lossy UTF-8.
        body_start: String,
    },
}

impl UrlError {
    /// A server error (after the client's retries) may pass; a 4xx answers the same next time.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { status, .. } => *status >= 500,
        }
    }
}

/// The start of an error answer's body, quoted, if it has one.
fn said(body_start: &str) -> String {
    if body_start.is_empty() {
        String::new()
    } else {
        format!(" ({body_start:?})")
    }
}

/// What an operator can do about an error status.
fn advice(status: u16) -> &'static str {
    match status {
        404 | 410 => "no file is there; check `url` in [source] (the file may have moved)",
        401 | 403 => {
            "the server refuses to serve the file; check `url` in [source] and that the file is public"
        }
        500.. => "the server fails even after retries; try again later",
        _ => "check `url` in [source]",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::HttpClient;
    use crate::sources::http::testing::fast;
    use crate::testkit::file_server::FileServer;

    fn context(validators: Vec<Validator>) -> FetchContext {
        FetchContext {
            validators,
            http: HttpClient::new(fast()),
            ..FetchContext::default()
        }
    }

    #[test]
    fn a_url_names_its_file_by_its_last_path_segment() {
        assert_eq!(
            file_name("https://example.org/statistik/BE0101.px"),
            "BE0101.px"
        );
        assert_eq!(file_name("https://example.org/statistik/dir/"), "dir");
        assert_eq!(file_name("https://example.org/x.csv?lang=sv"), "x.csv");
        assert_eq!(file_name("https://example.org"), "example.org");
        assert_eq!(file_name("not a url"), "");
    }

    #[tokio::test]
    async fn every_piece_is_fetched_whole_with_its_validators() {
        let server = FileServer::start();
        server.put("/lan/a.csv", "a\n1\n");
        server.put("/lan/b.csv", "a\n2\n");
        let (a, b) = (server.url("/lan/a.csv"), server.url("/lan/b.csv"));
        let source = UrlSource {
            urls: vec![a.clone(), b.clone()],
        };
        let fetched = source.fetch(&context(Vec::new())).await.unwrap();
        assert!(!fetched.unchanged);
        let names: Vec<&str> = fetched.payloads.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.csv"]);
        assert_eq!(fetched.payloads[1].origin, b);
        assert_eq!(fetched.payloads[1].bytes, b"a\n2\n");
        let resources: Vec<&str> = (fetched.validators.iter())
            .map(|v| v.resource.as_str())
            .collect();
        assert_eq!(resources, [a.as_str(), b.as_str()]);
        assert_eq!(fetched.validators[0].etag.as_deref(), Some("\"v1\""));
        assert!(fetched.validators[0].last_modified.is_some());
    }

    #[tokio::test]
    async fn the_stored_validators_are_sent_and_304_for_every_piece_is_unchanged() {
        let server = FileServer::start();
        server.put("/a.csv", "a\n1\n");
        server.put("/b.csv", "a\n2\n");
        let source = UrlSource {
            urls: vec![server.url("/a.csv"), server.url("/b.csv")],
        };
        let first = source.fetch(&context(Vec::new())).await.unwrap();
        let second = (source.fetch(&context(first.validators.clone())).await).unwrap();
        assert!(second.unchanged);
        assert!(second.payloads.is_empty());
        assert_eq!(second.validators, first.validators, "kept for the next run");
        let asked: Vec<(Option<String>, u16)> = (server.requests().into_iter().skip(2))
            .map(|r| (r.if_none_match, r.status))
            .collect();
        assert_eq!(
            asked,
            [(Some("\"v1\"".into()), 304), (Some("\"v2\"".into()), 304)]
        );
    }

    #[tokio::test]
    async fn a_last_modified_alone_is_asked_as_if_modified_since() {
        let server = FileServer::start();
        server.put("/a.csv", "a\n1\n");
        let source = UrlSource {
            urls: vec![server.url("/a.csv")],
        };
        let mut validators = source.fetch(&context(Vec::new())).await.unwrap().validators;
        validators[0].etag = None;
        let second = source.fetch(&context(validators)).await.unwrap();
        assert!(second.unchanged);
        let asked = server.requests().pop().unwrap();
        assert_eq!(asked.if_none_match, None);
        assert!(asked.if_modified_since.is_some());
        assert_eq!(asked.status, 304);
    }

    #[tokio::test]
    async fn one_changed_piece_fetches_the_whole_table_again() {
        let server = FileServer::start();
        server.put("/a.csv", "a\n1\n");
        server.put("/b.csv", "a\n2\n");
        let source = UrlSource {
            urls: vec![server.url("/a.csv"), server.url("/b.csv")],
        };
        let first = source.fetch(&context(Vec::new())).await.unwrap();
        server.put("/b.csv", "a\n3\n");
        let second = (source.fetch(&context(first.validators))).await.unwrap();
        assert!(!second.unchanged);
        let bytes: Vec<&[u8]> = second.payloads.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(bytes, [&b"a\n1\n"[..], b"a\n3\n"]);
        let answered: Vec<(String, u16)> = (server.requests().into_iter().skip(2))
            .map(|r| (r.path, r.status))
            .collect();
        assert_eq!(
            answered,
            [
                ("/a.csv".into(), 304),
                ("/b.csv".into(), 200),
                ("/a.csv".into(), 200)
            ]
        );
        assert_eq!(second.validators[1].etag.as_deref(), Some("\"v3\""));
    }

    #[tokio::test]
    async fn a_missing_file_names_the_url_the_status_and_the_key() {
        let server = FileServer::start();
        let url = server.url("/statistik/BE0101.csv");
        let err = (UrlSource { urls: vec![url] })
            .fetch(&context(Vec::new()))
            .await
            .unwrap_err();
        assert!(!err.is_transient());
        let shown = err.to_string().replace(&server.url(""), "http://server");
        insta::assert_snapshot!(shown, @r#"http://server/statistik/BE0101.csv answered HTTP 404 ("no such file"); no file is there; check `url` in [source] (the file may have moved)"#);
    }

    #[test]
    fn each_refusal_says_what_to_do_and_only_a_server_error_may_pass() {
        let refused = |status| UrlError::Refused {
            url: "https://example.org/BE0101.csv".into(),
            status,
            body_start: String::new(),
        };
        insta::assert_snapshot!(refused(403), @r#"https://example.org/BE0101.csv answered HTTP 403; the server refuses to serve the file; check `url` in [source] and that the file is public"#);
        insta::assert_snapshot!(refused(503), @r#"https://example.org/BE0101.csv answered HTTP 503; the server fails even after retries; try again later"#);
        assert!(refused(503).is_transient());
        assert!(!refused(400).is_transient());
    }

    #[tokio::test]
    async fn credentials_reach_neither_the_origin_nor_the_ledger() {
        let server = FileServer::start();
        server.put("/a.csv", "a\n1\n");
        let plain = server.url("/a.csv");
        let secret = plain.replace("http://", "http://user:pw@") + "?api_key=k";
        let fetched = (UrlSource { urls: vec![secret] })
            .fetch(&context(Vec::new()))
            .await
            .unwrap();
        let shown = format!("{plain}?api_key=REDACTED");
        assert_eq!(fetched.payloads[0].origin, shown);
        assert_eq!(fetched.payloads[0].name, "a.csv");
        assert_eq!(fetched.validators[0].resource, shown);
    }
}
