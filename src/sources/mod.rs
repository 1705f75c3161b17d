//! Sources: a pipeline's `[source]` → raw payloads, archived before anything reads them.
//!
//! Owns: the [`Source`] contract and the list of source kinds (one file each).
//! Must not: decode payloads (`formats` does) or decide when a pipeline runs.

pub mod file;

use std::future::Future;
use std::path::PathBuf;

/// One fetched payload: the bytes as received and where they came from.
#[derive(Debug, Clone)]
pub struct Payload {
    /// A file-system-safe name for the raw archive (`data.csv`, `page-0001.json`).
    pub name: String,
    /// Where it came from: a file path or a URL without credentials.
    pub origin: String,
    pub bytes: Vec<u8>,
}

/// Everything a source fetched for one run.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    pub payloads: Vec<Payload>,
}

impl Fetched {
    pub fn total_bytes(&self) -> usize {
        self.payloads.iter().map(|p| p.bytes.len()).sum()
    }
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
}

/// A kind of source.
pub trait Source {
    /// Fetches every payload the spec names.
    fn fetch(&self) -> impl Future<Output = Result<Fetched, SourceError>> + Send;
}
