//! Pipelines: their definition (a TOML file, checked once) and their run
//! (fetch → decode → validate → harmonise → stage → commit → ledger).
//!
//! Owns: the checked [`Pipeline`] and the list of source kinds.
//! Must not: know when pipelines run (the CLI and the scheduler decide) or how each stage works
//! inside (formats, validate, harmonise, warehouse do).

pub mod catalogs;
pub mod check;
pub mod online;
mod partitions;
pub mod run;
pub mod spec;
mod years;

use std::path::PathBuf;
use std::time::Duration;

use crate::formats::{DecodeLimits, Format};
use crate::harmonise::Mapping;
use crate::schedule::Schedule;
use crate::sources::file::FileSource;
use crate::sources::kolada::KoladaSource;
use crate::sources::pxweb::PxwebSource;
use crate::sources::url::UrlSource;
use crate::sources::{FetchContext, Fetched, Source, SourceError};
use crate::validate::TableSchema;

pub use check::{Loaded, check_file, load_all};
pub use run::{Progress, RunContext, RunError, RunOutcome, Step, StopCause, Trigger, run};

/// A checked pipeline: every path resolved, code list loaded and value checked.
#[derive(Debug)]
pub struct Pipeline {
    pub id: String,
    /// The pipeline file it was read from.
    pub file: PathBuf,
    /// When the daemon runs it; `None` = only by hand.
    pub schedule: Option<Schedule>,
    /// How the daemon retries, times out and spreads its runs.
    pub policy: RunPolicy,
    pub description: Option<String>,
    pub source: SourceKind,
    pub format: Format,
    /// How big a table its payloads may decode to, each and all together.
    pub limits: DecodeLimits,
    /// What the model's `source`, `source_table` and `source_url` columns say.
    pub origin: Origin,
    pub schema: Option<TableSchema>,
    pub mapping: Mapping,
    pub max_reject_ratio: f64,
    /// Hash of everything that shapes the output besides the data: the pipeline file, its table
    /// schema and code lists. Part of the content hash, so that editing a mapping reruns.
    pub fingerprint: String,
}

/// Default for [`RunPolicy::retries`].
pub const DEFAULT_RETRIES: u32 = 3;
/// Most retries `check` accepts.
pub const MAX_RETRIES: u32 = 20;
/// Most jitter `check` accepts.
pub const MAX_JITTER_SECS: u64 = 3600;

/// How the daemon treats a pipeline's runs (`retries`, `timeout_secs`, `jitter_secs`).
#[derive(Debug, Clone, PartialEq)]
pub struct RunPolicy {
    /// A run that failed transiently (network, 5xx) is run again this many times, with backoff.
    pub retries: u32,
    /// A run still going after this long is cancelled (and counts as a transient failure).
    pub timeout: Option<Duration>,
    /// Each fire waits a random delay up to this, so that pipelines on one minute spread out.
    pub jitter: Duration,
}

impl Default for RunPolicy {
    fn default() -> Self {
        Self {
            retries: DEFAULT_RETRIES,
            timeout: None,
            jitter: Duration::ZERO,
        }
    }
}

/// The model's source columns for a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub producer: String,
    pub table: String,
    pub url: String,
}

/// The only list of source kinds: one variant per file in `sources/`.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    File(FileSource),
    Url(UrlSource),
    /// Both PxWeb APIs: one harvest, two protocols.
    Pxweb(Box<PxwebSource>),
    Kolada(KoladaSource),
}

impl Source for SourceKind {
    async fn fetch(&self, cx: &FetchContext) -> Result<Fetched, SourceError> {
        match self {
            Self::File(source) => source.fetch(cx).await,
            Self::Url(source) => source.fetch(cx).await,
            Self::Pxweb(source) => source.fetch(cx).await,
            Self::Kolada(source) => source.fetch(cx).await,
        }
    }
}
