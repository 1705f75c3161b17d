//! Sources: a pipeline's `[source]` → raw payloads, archived before anything reads them.
//!
//! Owns: the [`Source`] contract, what a fetch is given ([`FetchContext`]) and returns
//! ([`Fetched`]), and payload names that are safe as file names under `raw/`.
//! Must not: decode payloads (`formats` does) or decide when a pipeline runs.

pub mod archive;
pub mod file;
pub mod http;
pub mod kolada;
pub mod manifest;
pub mod pxweb;
pub mod url;

use std::future::Future;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::ledger::Validator;

pub use http::{HttpClient, HttpError};

/// Longest payload name kept for the raw archive (bytes); longer names are cut.
pub const MAX_PAYLOAD_NAME_BYTES: usize = 100;

/// What a fetch is given besides its source's spec.
///
/// `Default` gives a context with a client of its own, for the file source and tests; a process
/// that runs pipelines builds one [`HttpClient`] and clones it into every context, so that the
/// limits learnt from a host hold for all of them.
#[derive(Debug, Clone, Default)]
pub struct FetchContext {
    /// Cancelled when the run is cancelled or the process shuts down; a fetch stops waiting.
    pub cancel: CancellationToken,
    /// What the ledger holds from this pipeline's last fetch (ETag, Last-Modified, a table's
    /// `updated`), for conditional requests.
    pub validators: Vec<Validator>,
    /// The process's HTTP client and rate limiter (see [`http`]).
    pub http: HttpClient,
}

/// One fetched payload: the bytes as received and where they came from.
#[derive(Debug, Clone)]
pub struct Payload {
    /// A file-system-safe name for the raw archive (`data.csv`, `page-0001.json`).
    pub name: String,
    /// Where it came from: a file path or a URL without credentials.
    pub origin: String,
    pub bytes: Vec<u8>,
}

impl Payload {
    /// A payload whose archive name is made from `name` by [`safe_name`] (names may come from URLs).
    pub fn new(name: &str, origin: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: safe_name(name),
            origin: origin.into(),
            bytes,
        }
    }
}

/// What a source says about the table it fetched, for the catalogues analysts read it by
/// (`catalog/tables.parquet`, `catalog/codes.parquet`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct About {
    /// The table as the model's `source_table` names it (`TAB638`, `BefolkningNy`).
    pub table: String,
    /// The producer's stable id (`TAB638`), also for a v1 table when its answer gives it.
    pub table_id: Option<String>,
    /// Where a v1 table sits below its language (`ssd/BE/BE0101/BE0101A/BefolkningNy`).
    pub path: Option<String>,
    pub label: String,
    pub url: String,
    pub updated: Option<String>,
    /// The language of the labels.
    pub language: String,
    /// As the host's config states it.
    pub license: Option<String>,
    pub notes: Vec<String>,
    /// The label of every code fetched, per source column.
    pub codes: Vec<CodeLabel>,
}

/// One code of one source column and its label.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeLabel {
    pub column: String,
    pub code: String,
    pub label: String,
}

/// Everything a source fetched for one run.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The pieces of the table, in the order the source fetched them; names distinct.
    pub payloads: Vec<Payload>,
    /// Answers kept for audit and replay but not decoded (a table's metadata, the source's
    /// manifest of its requests); names distinct from the payloads'.
    pub records: Vec<Payload>,
    /// Validators to store for the next fetch (replacing the ones it was given).
    pub validators: Vec<Validator>,
    /// The source found, by its validators alone, that nothing changed since the last run: no
    /// payloads were fetched.
    pub unchanged: bool,
    /// What the source wants the operator to know about the table (discontinued, stale).
    pub notices: Vec<String>,
    /// What the source knows about the table beyond its cells; `None` for files.
    pub about: Option<About>,
}

impl Fetched {
    /// Payloads of one fetch, with names made distinct (`data.json`, `data-2.json`, …) so that
    /// no archived payload overwrites another.
    pub fn new(payloads: Vec<Payload>, validators: Vec<Validator>) -> Self {
        let mut fetched = Self {
            payloads,
            validators,
            ..Self::default()
        };
        fetched.make_names_distinct();
        fetched
    }

    /// Nothing fetched because nothing changed; `validators` are kept for the next fetch.
    pub fn unchanged(validators: Vec<Validator>) -> Self {
        Self {
            validators,
            unchanged: true,
            ..Self::default()
        }
    }

    /// With `records` archived beside the payloads.
    pub fn with_records(mut self, records: Vec<Payload>) -> Self {
        self.records = records;
        self.make_names_distinct();
        self
    }

    pub fn with_notices(mut self, notices: Vec<String>) -> Self {
        self.notices = notices;
        self
    }

    pub fn with_about(mut self, about: About) -> Self {
        self.about = Some(about);
        self
    }

    fn make_names_distinct(&mut self) {
        let mut seen = std::collections::HashSet::new();
        for payload in self.payloads.iter_mut().chain(&mut self.records) {
            let (stem, extension) = match payload.name.rsplit_once('.') {
                Some((stem, ext)) if !stem.is_empty() => (stem.to_string(), format!(".{ext}")),
                _ => (payload.name.clone(), String::new()),
            };
            let mut n = 1;
            while !seen.insert(payload.name.clone()) {
                n += 1;
                payload.name = format!("{stem}-{n}{extension}");
            }
        }
    }

    /// The bytes of every payload together.
    pub fn total_bytes(&self) -> usize {
        self.payloads.iter().map(|p| p.bytes.len()).sum()
    }
}

/// `name` as one file name that cannot leave its directory: ASCII letters, digits, `.`, `-` and
/// `_` kept, everything else (`/`, `?`, `%`, spaces, `..` as a whole) replaced by `_`, no leading
/// dot, at most [`MAX_PAYLOAD_NAME_BYTES`] bytes, never empty.
pub fn safe_name(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A leading dot would hide the file (and `..` would name the parent).
    while safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    safe.truncate(MAX_PAYLOAD_NAME_BYTES);
    if safe.is_empty() {
        safe.push_str("payload");
    }
    safe
}

/// Errors of fetching; each names the file or URL and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}; check `path` in [source] (it is relative to the pipeline file)", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Pxweb(#[from] pxweb::PxwebError),
    #[error(transparent)]
    Kolada(#[from] kolada::KoladaFetchError),
    #[error(transparent)]
    Url(#[from] url::UrlError),
}

impl SourceError {
    /// Whether the daemon should run the pipeline again later (see [`HttpError::is_transient`]);
    /// a table that kept changing while it was harvested will have settled too.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http(error) | Self::Pxweb(pxweb::PxwebError::Http(error)) => error.is_transient(),
            Self::Pxweb(pxweb::PxwebError::KeptChanging { .. }) => true,
            Self::Url(error) => error.is_transient(),
            Self::Read { .. } | Self::Pxweb(_) | Self::Kolada(_) => false,
        }
    }
}

/// A kind of source.
pub trait Source {
    /// Fetches every payload the spec names.
    fn fetch(&self, cx: &FetchContext)
    -> impl Future<Output = Result<Fetched, SourceError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls_become_one_harmless_file_name() {
        assert_eq!(safe_name("BE0101N1.json"), "BE0101N1.json");
        assert_eq!(safe_name("../../etc/passwd"), "_._.._etc_passwd");
        assert_eq!(safe_name(".."), "_.");
        assert_eq!(safe_name(".hidden"), "_hidden");
        assert_eq!(safe_name("TAB638?lang=sv&x=å"), "TAB638_lang_sv_x__");
        assert_eq!(safe_name(""), "payload");
        assert_eq!(safe_name(&"a".repeat(500)).len(), MAX_PAYLOAD_NAME_BYTES);
    }

    #[test]
    fn payloads_of_one_fetch_get_distinct_names() {
        let payload = |name: &str| Payload::new(name, "x", Vec::new());
        let fetched = Fetched::new(
            vec![payload("data.json"), payload("data.json"), payload("data")],
            Vec::new(),
        );
        let names: Vec<&str> = fetched.payloads.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["data.json", "data-2.json", "data"]);
    }
}
