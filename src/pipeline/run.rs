//! One run of one pipeline: fetch (or, for a replay, read an earlier run's archive) → archive
//! → decode → merge the payloads → (per year) validate → harmonise → sort → stage → commit →
//! ledger → catalogs.
//!
//! Owns: the order of the stages, the skip on unchanged content, the reject-ratio gate, checking
//! cancellation between stages, and recording every run in the ledger whatever happens. Waiting
//! (fetching) is async; decoding, encoding, fsync and SQLite run on the blocking pool.
//! Must not: know how a stage works inside, or when a pipeline runs (the service decides).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio_util::sync::CancellationToken;

use super::Pipeline;
use super::catalogs::write_catalogs;
use super::partitions::{Partitioner, Processed};
use crate::blocking::blocking;
use crate::catalog::CoverageRow;
use crate::failpoint;
use crate::formats::merge::{self, Provenance};
use crate::formats::{DecodeError, SourceTable, TableError};
use crate::harmonise::{Context, HarmoniseError};
use crate::ledger::{Ledger, LedgerError, RunEnd, RunStatus, Validator};
use crate::problem::error_chain;
use crate::rejects::Report;
use crate::schemas::Schemas;
use crate::sources::archive::{ArchiveError, ArchiveIndex, Archived};
use crate::sources::http::HttpClient;
use crate::sources::{About, FetchContext, Fetched, Source, SourceError};
use crate::validate::ValidateError;
use crate::warehouse::{Staged, Warehouse, WarehouseError};

/// The version written into every content hash: a new program re-runs unchanged input once.
pub const PROGRAM_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Told of each step of a run, for a progress bar; must be cheap.
pub type Progress = Arc<dyn Fn(Step) + Send + Sync>;

/// What a run needs besides its pipeline: owned and cheap to clone, so that a run can move to
/// the blocking pool and several runs can share one ledger.
#[derive(Clone)]
pub struct RunContext {
    pub warehouse: Warehouse,
    pub ledger: Arc<Ledger>,
    pub schemas: Arc<Schemas>,
    pub trigger: Trigger,
    /// Rewrite even when the content is unchanged.
    pub force: bool,
    /// Cancelled when the run is to stop: it stops at its next stage and commits nothing.
    pub cancel: CancellationToken,
    /// Why `cancel` was cancelled: the status and error the run then ends with.
    pub stop: StopCause,
    pub progress: Progress,
    /// Part of the content hash; [`PROGRAM_VERSION`] but in tests of an upgrade.
    pub program_version: String,
    /// The process's HTTP client: one connection pool and one rate limiter per host for every
    /// run, so that limits learnt from a host hold for every pipeline using it.
    pub http: HttpClient,
    /// An earlier run's archive to fetch from instead of the source (`indikator replay`).
    pub replay: Option<Archived>,
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `indikator run`.
    Manual,
    /// The daemon's scheduler.
    Schedule,
    /// The admin API.
    Api,
    /// `indikator replay`: an earlier run's raw payloads processed again.
    Replay,
}

impl Trigger {
    /// The trigger as the ledger stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Schedule => "schedule",
            Self::Api => "api",
            Self::Replay => "replay",
        }
    }
}

/// Why a run's cancellation token was cancelled, which decides how its row ends: a shutdown
/// (the default) ends it `interrupted`, an operator `cancelled`, a timeout `failed`. The first
/// cause given wins; clones share it.
#[derive(Debug, Clone, Default)]
pub struct StopCause(Arc<std::sync::OnceLock<(RunStatus, String)>>);

impl StopCause {
    /// Records why the run is being stopped (before its token is cancelled).
    pub fn set(&self, status: RunStatus, why: impl Into<String>) {
        let _first_wins = self.0.set((status, why.into()));
    }

    /// The status a stopped run ends with, and why in words.
    pub fn get(&self) -> (RunStatus, &str) {
        match self.0.get() {
            Some((status, why)) => (*status, why),
            None => (RunStatus::Interrupted, "the process is shutting down"),
        }
    }
}

/// A step of a run, for progress reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Fetched { bytes: usize },
    Decoded { rows: usize, partitions: usize },
    PartitionDone,
    Committing,
}

/// How a run ended, for the CLI.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub report: Report,
    pub uncatalogued: BTreeSet<String>,
    pub years: Vec<i32>,
    pub rejects_file: Option<PathBuf>,
    pub elapsed_ms: u128,
    /// Why a failed run failed (the error chain, one line).
    pub error: Option<String>,
    /// Why a skipped run was skipped.
    pub reason: Option<String>,
    /// What the source said about the table that an operator should know (discontinued, no
    /// new period for too long).
    pub notices: Vec<String>,
    /// The run failed in a way a later run may not (the network, a 5xx): the daemon retries it.
    pub transient: bool,
}

/// Errors that end a run; each names the pipeline's file, URL or row through its source.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("fetch failed")]
    Fetch(#[from] SourceError),
    #[error("the archive of the run being replayed cannot be read")]
    Replay(#[from] ArchiveError),
    #[error("decode failed")]
    Decode(#[from] DecodeError),
    #[error("the payloads cannot be made one table")]
    Merge(#[from] TableError),
    #[error("the table does not fit the pipeline's [validate] schema")]
    Validate(#[from] ValidateError),
    #[error("the table does not fit the pipeline's [map]")]
    Harmonise(#[from] HarmoniseError),
    #[error("the warehouse could not be written")]
    Warehouse(#[source] WarehouseError),
    #[error("the ledger could not be written")]
    Ledger(#[from] LedgerError),
    #[error(
        "{rejected} of {checked} rows ({ratio:.1} %) were refused, more than max_reject_ratio \
         = {max} allows; nothing was committed. The refused rows are in {}; fix the source or \
         the pipeline, or raise max_reject_ratio", .rejects.display()
    )]
    TooManyRejects {
        rejected: u64,
        checked: u64,
        ratio: f64,
        max: f64,
        rejects: PathBuf,
    },
    #[error(
        "the {payloads} payloads hold {cells} cells together, more than max_table_cells = {max} \
         allows for one table; if the table really is that big, raise `max_table_cells` in [source]"
    )]
    TooManyCells {
        payloads: usize,
        cells: u64,
        max: u64,
    },
    #[error(
        "{payload} has no column `{column}`, which the pipeline reads (its columns are {}); every \
         piece of one table needs the columns [map] and [validate] name",
        .columns.join(", ")
    )]
    PieceLacksColumn {
        payload: String,
        column: String,
        columns: Vec<String>,
    },
    #[error(
        "the source gave no rows to write ({read} read); nothing was committed and the \
         warehouse keeps the last commit. Check what the source returned (the payload is under \
         raw/)"
    )]
    NothingToWrite { read: u64 },
    #[error("the run was cancelled before it committed; nothing was written")]
    Cancelled,
    #[error("the worker thread panicked")]
    Panicked,
}

impl From<WarehouseError> for RunError {
    /// A warehouse that refused because the run was cancelled is a cancelled run, not a broken
    /// warehouse.
    fn from(error: WarehouseError) -> Self {
        match error {
            WarehouseError::Cancelled { .. } => Self::Cancelled,
            other => Self::Warehouse(other),
        }
    }
}

/// Timestamps as the ledger stores them.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new run id: sortable by start time, unique per process and pipeline.
pub fn new_run_id(started: DateTime<Utc>, pipeline: &str) -> String {
    format!(
        "{}-{:03}-{pipeline}",
        started.format("%Y%m%dT%H%M%S"),
        started.timestamp_subsec_millis()
    )
}

/// Runs `pipeline` once as run `run_id` (the caller holds the pipeline's lock) and records it
/// in the ledger, whatever happens. A run whose content is unchanged since its last commit
/// into this warehouse writes nothing (unless forced) and ends `skipped`; a cancelled run ends
/// `interrupted` with nothing committed. `Err` only when the ledger itself fails.
#[tracing::instrument(name = "run", skip_all, fields(pipeline = %pipeline.id, run_id = %run_id))]
pub async fn run(
    pipeline: Arc<Pipeline>,
    run_id: String,
    cx: RunContext,
) -> Result<RunOutcome, LedgerError> {
    let clock = Instant::now();
    let started = Utc::now();
    {
        let (ledger, run_id, id) = (cx.ledger.clone(), run_id.clone(), pipeline.id.clone());
        let (trigger, warehouse) = (cx.trigger, cx.warehouse.key());
        blocking(move || {
            ledger.start_run(
                &run_id,
                &id,
                trigger.as_str(),
                &rfc3339(started),
                &warehouse,
            )
        })
        .await?;
    }
    let mut outcome = RunOutcome {
        run_id: run_id.clone(),
        pipeline: pipeline.id.clone(),
        status: RunStatus::Failed,
        rows_read: 0,
        rows_written: 0,
        rows_rejected: 0,
        report: Report::default(),
        uncatalogued: BTreeSet::new(),
        years: Vec::new(),
        rejects_file: None,
        elapsed_ms: 0,
        error: None,
        reason: None,
        notices: Vec::new(),
        transient: false,
    };
    let result = execute(&pipeline, &cx, &run_id, started, &mut outcome).await;
    let (coverage, content_hash, validators, about) = match result {
        Ok(Executed {
            coverage,
            content_hash,
            validators,
            about,
        }) => (coverage, content_hash, validators, about),
        Err(error) => {
            let mut message = error_chain(&error);
            if matches!(error, RunError::Cancelled) {
                let (status, why) = cx.stop.get();
                message = format!("{why}: {message}");
                tracing::warn!(error = %message, %status, "run stopped");
                outcome.status = status;
            } else {
                tracing::error!(error = %message, "run failed");
                outcome.status = RunStatus::Failed;
                outcome.transient = matches!(&error, RunError::Fetch(e) if e.is_transient());
            }
            outcome.error = Some(message);
            (None, None, Vec::new(), None)
        }
    };
    outcome.elapsed_ms = clock.elapsed().as_millis();
    let end = RunEnd {
        status: outcome.status,
        finished: rfc3339(Utc::now()),
        rows_read: outcome.rows_read,
        rows_written: outcome.rows_written,
        rows_rejected: outcome.rows_rejected,
        content_hash,
        reason: outcome.reason.clone(),
        error: outcome.error.clone(),
        report: Some(outcome.report.clone()),
    };
    let committed = coverage.is_some();
    let coverage_json =
        coverage.map(|rows| serde_json::to_string(&rows).expect("coverage serialises"));
    let (ledger, id, pipeline_id) = (cx.ledger.clone(), run_id.clone(), pipeline.id.clone());
    let cancel = cx.cancel.clone();
    blocking(move || {
        // On the blocking pool: a pause here must not hold the runtime that delivers SIGTERM.
        failpoint::hit("ledger.finish", &cancel);
        let coverage = coverage_json
            .as_deref()
            .map(|json| (pipeline_id.as_str(), json));
        ledger.finish_run(&id, &end, coverage)
    })
    .await?;
    // Only once the run's end is recorded: a run that dies before must not leave "not
    // modified" for data the ledger never saw arrive. Losing them costs one full fetch.
    if let Err(error) = store_validators(&cx, &pipeline.id, validators).await {
        tracing::warn!(error = %error_chain(&error), "source validators not stored");
    }
    if let Some(about) = about.filter(|_| committed) {
        let json = serde_json::to_string(&about).expect("a table's description serialises");
        let (ledger, id, warehouse) = (cx.ledger.clone(), pipeline.id.clone(), cx.warehouse.key());
        // Catalogue text, not data: a failure leaves the last commit's labels until the next.
        if let Err(error) = blocking(move || ledger.store_about(&id, &warehouse, &json)).await {
            tracing::warn!(error = %error_chain(&error), "table description not stored");
        }
    }
    // After a skip too: catalogs are small, and one left stale by a crash or a failed write
    // would otherwise stay stale for as long as the source does not change.
    if committed || outcome.status == RunStatus::Skipped {
        let (warehouse, ledger, schemas) =
            (cx.warehouse.clone(), cx.ledger.clone(), cx.schemas.clone());
        let cancel = cx.cancel.clone();
        if let Err(error) =
            blocking(move || write_catalogs(&warehouse, &ledger, &schemas, &cancel)).await
        {
            // The observations are committed and recorded; a stale catalog is fixed by the next run.
            tracing::warn!(error = %error_chain(&error), "catalog files not rewritten");
        }
    }
    Ok(outcome)
}

struct Executed {
    /// This pipeline's coverage when the run committed; `None` when it was skipped.
    coverage: Option<Vec<CoverageRow>>,
    content_hash: Option<String>,
    /// What the source said about its resources, to keep for the next fetch.
    validators: Vec<Validator>,
    /// What the source said about its table, for the catalogues (committed runs only).
    about: Option<About>,
}

async fn execute(
    pipeline: &Arc<Pipeline>,
    cx: &RunContext,
    run_id: &str,
    started: DateTime<Utc>,
    outcome: &mut RunOutcome,
) -> Result<Executed, RunError> {
    let setup = setup_hash(pipeline, &cx.schemas, &cx.program_version);
    // Read before the fetch: this run holds the pipeline's lock, so no other commit of it can
    // come between.
    let (last, held) = last_and_held(pipeline, cx).await?;
    // A forced run asks for everything again: "not modified" would leave it nothing to write.
    // A replay asks the source nothing.
    let validators = if cx.force || cx.replay.is_some() {
        Vec::new()
    } else {
        let (ledger, id, warehouse) = (cx.ledger.clone(), pipeline.id.clone(), cx.warehouse.key());
        let stored = blocking(move || ledger.validators(&id, &warehouse)).await?;
        source_validators(stored, &setup, last.as_deref(), held.as_deref())
    };
    let mut fetched = fetch(pipeline, cx, validators).await?;
    outcome.notices = std::mem::take(&mut fetched.notices);
    // Validators are given only with a commit the warehouse holds, so an unchanged source has
    // one to skip to.
    if fetched.unchanged
        && let Some(last) = last.clone()
    {
        tracing::info!("the source reports no change since the last run; nothing fetched");
        outcome.status = RunStatus::Skipped;
        outcome.reason =
            Some("unchanged: the source reports no change since the last run (its `updated`, ETag or Last-Modified)".into());
        return Ok(Executed {
            coverage: None,
            validators: with_setup(fetched.validators, &setup, &last),
            content_hash: Some(last),
            about: None,
        });
    }
    (cx.progress)(Step::Fetched {
        bytes: fetched.total_bytes(),
    });
    tracing::info!(
        payloads = fetched.payloads.len(),
        bytes = fetched.total_bytes(),
        "fetched"
    );
    // Hashing reads every payload byte: on the blocking pool, not the runtime's thread.
    let (fetched, content_hash) = {
        let (pipeline, schemas, version) = (
            pipeline.clone(),
            cx.schemas.clone(),
            cx.program_version.clone(),
        );
        blocking(move || {
            let hash = content_hash(&pipeline, &schemas, &version, &fetched);
            (fetched, hash)
        })
        .await
    };
    let mut fetched = fetched;
    let unchanged = [last.as_deref(), held.as_deref()] == [Some(content_hash.as_str()); 2];
    if !cx.force && unchanged {
        tracing::info!(
            "content unchanged since the last commit into this warehouse; nothing written"
        );
        outcome.status = RunStatus::Skipped;
        outcome.reason = Some("unchanged: the content is the last commit's".into());
        return Ok(Executed {
            coverage: None,
            validators: with_setup(fetched.validators, &setup, &content_hash),
            content_hash: Some(content_hash),
            about: None,
        });
    }
    let validators = with_setup(
        std::mem::take(&mut fetched.validators),
        &setup,
        &content_hash,
    );
    let about = fetched.about.take();
    let staging = {
        let (pipeline, cx, run_id) = (pipeline.clone(), cx.clone(), run_id.to_string());
        blocking(move || stage_run(&pipeline, &cx, &run_id, started, fetched)).await?
    };
    let Staging { staged, processed } = staging;
    outcome.rows_read = processed.report.rows_checked;
    outcome.rows_rejected = processed.report.rows_rejected;
    outcome.rows_written = processed.rows_written;
    outcome.report = processed.report;
    outcome.uncatalogued = processed.uncatalogued;
    outcome.years = processed.years;
    outcome.years.sort_unstable();
    if let Some(batch) = processed.rejects.finish() {
        let (warehouse, id, run) = (
            cx.warehouse.clone(),
            pipeline.id.clone(),
            run_id.to_string(),
        );
        outcome.rejects_file =
            Some(blocking(move || warehouse.write_rejects(&id, &run, &batch)).await?);
    }
    let ratio = outcome.report.reject_ratio();
    if ratio > pipeline.max_reject_ratio {
        return Err(RunError::TooManyRejects {
            rejected: outcome.rows_rejected,
            checked: outcome.rows_read,
            ratio: ratio * 100.0,
            max: pipeline.max_reject_ratio,
            rejects: outcome.rejects_file.clone().unwrap_or_default(),
        });
    }
    // A commit with no partition would remove every year the pipeline has published: a source
    // that suddenly gives nothing (an export of headers only, an empty `top:5`) is far likelier
    // broken than empty.
    if outcome.years.is_empty() {
        return Err(RunError::NothingToWrite {
            read: outcome.rows_read,
        });
    }
    // The last moment a cancel can stop the run: a started commit finishes (it is short).
    if cx.cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    (cx.progress)(Step::Committing);
    // Recorded before the first rename: should the run die during the commit, the next run
    // knows the warehouse may hold this run's data and does not skip on the older content.
    let (ledger, id) = (cx.ledger.clone(), run_id.to_string());
    blocking(move || ledger.begin_commit(&id, &rfc3339(Utc::now()))).await?;
    let content = content_hash.clone();
    let commit = blocking(move || staged.with_content(&content).commit()).await?;
    tracing::info!(
        years = commit.years.len(),
        removed = commit.removed_years.len(),
        "committed"
    );
    outcome.status = RunStatus::Succeeded;
    tracing::info!(
        rows = outcome.rows_written,
        rejected = outcome.rows_rejected,
        "run succeeded"
    );
    Ok(Executed {
        coverage: Some(processed.coverage.finish(&pipeline.id, run_id)),
        content_hash: Some(content_hash),
        validators,
        about,
    })
}

/// Fetches, stopping as soon as the run is cancelled; a replay reads its run's archive instead.
async fn fetch(
    pipeline: &Pipeline,
    cx: &RunContext,
    validators: Vec<Validator>,
) -> Result<Fetched, RunError> {
    if let Some(archived) = cx.replay.clone() {
        // The archive carries no validators: nothing of the past fetch is stored as this one's,
        // and the source's next fetch is not told "not modified" for a replayed commit.
        return Ok(blocking(move || archived.read()).await?);
    }
    let fetch_cx = FetchContext {
        cancel: cx.cancel.clone(),
        validators,
        http: cx.http.clone(),
    };
    tokio::select! {
        fetched = pipeline.source.fetch(&fetch_cx) => Ok(fetched?),
        () = cx.cancel.cancelled() => Err(RunError::Cancelled),
    }
}

/// The content hash of the ledger's last commit into this warehouse, and the one the
/// warehouse holds. A run is unchanged only when both are its own: another state directory may
/// have written since, or an operator wiped or restored the pipeline's partitions.
async fn last_and_held(
    pipeline: &Pipeline,
    cx: &RunContext,
) -> Result<(Option<String>, Option<String>), RunError> {
    let (ledger, id, warehouse) = (cx.ledger.clone(), pipeline.id.clone(), cx.warehouse.clone());
    blocking(move || -> Result<_, RunError> {
        let last = ledger.last_content_hash(&id, &warehouse.key())?;
        Ok((last, warehouse.committed(&id)?))
    })
    .await
}

/// The resource under which a run stores what its validators belong to: the [`setup_hash`] it
/// ran with and the content hash of the commit they describe.
const SETUP_RESOURCE: &str = "indikator:setup";

/// The source's validators, if they were stored with this setup for the commit this warehouse
/// holds (`last` = the ledger's, `held` = the warehouse's). A source that says "unchanged" by
/// them (a PxWeb table's `updated`) skips without fetching, so they must not outlive an edit of
/// the pipeline, its schemas or the program, nor describe a commit that is no longer the one
/// published (a later commit from another source kind, a wiped partition, another state
/// directory writing here).
fn source_validators(
    stored: Vec<Validator>,
    setup: &str,
    last: Option<&str>,
    held: Option<&str>,
) -> Vec<Validator> {
    let Some(last) = last.filter(|last| held == Some(*last)) else {
        return Vec::new();
    };
    let belongs = setup_value(setup, last);
    let same = stored
        .iter()
        .any(|v| v.resource == SETUP_RESOURCE && v.updated.as_deref() == Some(belongs.as_str()));
    if !same {
        return Vec::new();
    }
    stored
        .into_iter()
        .filter(|v| v.resource != SETUP_RESOURCE)
        .collect()
}

/// `validators` with what they belong to (`setup`, and the commit of `content`), to store.
fn with_setup(mut validators: Vec<Validator>, setup: &str, content: &str) -> Vec<Validator> {
    if !validators.is_empty() {
        validators.push(Validator {
            resource: SETUP_RESOURCE.into(),
            etag: None,
            last_modified: None,
            updated: Some(setup_value(setup, content)),
        });
    }
    validators
}

fn setup_value(setup: &str, content: &str) -> String {
    format!("{setup} {content}")
}

/// Keeps what the source said about its resources for the next fetch. Only a committed (or
/// unchanged) run's are kept: after a failed run the next fetch must not be told "not modified"
/// for data that never reached the warehouse.
async fn store_validators(
    cx: &RunContext,
    pipeline: &str,
    validators: Vec<Validator>,
) -> Result<(), LedgerError> {
    if validators.is_empty() {
        return Ok(());
    }
    let (ledger, id, warehouse) = (cx.ledger.clone(), pipeline.to_string(), cx.warehouse.key());
    blocking(move || ledger.store_validators(&id, &warehouse, &validators)).await
}

/// blake3 over everything that shapes the output besides the data: the pipeline's own
/// fingerprint (its file, table schema and code lists), the catalogues of `schemas/` and the
/// program version.
fn setup_hasher(pipeline: &Pipeline, schemas: &Schemas, version: &str) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    for part in [
        pipeline.fingerprint.as_str(),
        schemas.fingerprint.as_str(),
        version,
    ] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
}

fn setup_hash(pipeline: &Pipeline, schemas: &Schemas, version: &str) -> String {
    setup_hasher(pipeline, schemas, version)
        .finalize()
        .to_hex()
        .to_string()
}

/// The setup's hash continued over every payload (not the records: a table's metadata may
/// carry the time it was asked).
fn content_hash(
    pipeline: &Pipeline,
    schemas: &Schemas,
    version: &str,
    fetched: &Fetched,
) -> String {
    let mut hasher = setup_hasher(pipeline, schemas, version);
    for payload in &fetched.payloads {
        hasher.update(&(payload.bytes.len() as u64).to_le_bytes());
        hasher.update(&payload.bytes);
    }
    hasher.finalize().to_hex().to_string()
}

/// A run's partitions, staged and not yet visible, and what staging them produced.
struct Staging {
    staged: Staged,
    processed: Processed,
}

/// Archives and decodes every payload, makes them one table, and stages its partitions. Runs
/// on the blocking pool.
fn stage_run(
    pipeline: &Pipeline,
    cx: &RunContext,
    run_id: &str,
    started: DateTime<Utc>,
    fetched: Fetched,
) -> Result<Staging, RunError> {
    let stager = cx
        .warehouse
        .stage(&pipeline.id, run_id, cx.cancel.clone())?;
    let pieces = std::thread::scope(|scope| -> Result<Vec<(String, SourceTable)>, RunError> {
        // Archive on a second thread while the first decodes: the raw copy is for audit and
        // replay, and need not hold up the run.
        let archive = scope.spawn(|| {
            for p in fetched.payloads.iter().chain(&fetched.records) {
                cx.warehouse
                    .archive_raw(&pipeline.id, run_id, &p.name, &p.bytes)?;
            }
            // Last: an index says the archive is whole, and which files a replay decodes.
            ArchiveIndex::write(&fetched, &cx.warehouse, &pipeline.id, run_id)
        });
        let pieces = fetched
            .payloads
            .iter()
            .map(|payload| {
                let table =
                    pipeline
                        .format
                        .decode(&payload.bytes, &payload.origin, &pipeline.limits)?;
                // Messages name a payload by where it came from (a path or URL), which the
                // operator can find; its archive name may have been made unique or safe.
                Ok((payload.origin.clone(), table))
            })
            .collect::<Result<Vec<_>, RunError>>()?;
        archive.join().map_err(|_| RunError::Panicked)??;
        Ok(pieces)
    })?;
    // Decoded tables hold their own copies of every value: the payloads can go before the
    // partitions are built, which is when memory peaks.
    drop(fetched);
    if cx.cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    if pieces.len() > 1 {
        check_pieces(pipeline, &pieces)?;
    }
    let (table, provenance): (SourceTable, Provenance) = merge::merge(pieces)?;
    let catalogued = cx.schemas.indicator_ids();
    let source_updated = table
        .meta
        .updated
        .as_deref()
        .and_then(parse_updated)
        .map(|t| t.timestamp_micros());
    let progress = cx.progress.as_ref();
    let partitioner = Partitioner {
        pipeline,
        context: Context {
            run_id,
            ingested_at: started.timestamp_micros(),
            source: &pipeline.origin.producer,
            source_table: &pipeline.origin.table,
            source_url: &pipeline.origin.url,
            source_updated,
            catalogued: &catalogued,
            areas: cx.schemas.areas.as_ref(),
            provenance: &provenance,
        },
        stager: &stager,
        progress: &progress,
        cancel: &cx.cancel,
    };
    let processed = partitioner.stage_table(&table)?;
    Ok(Staging {
        staged: stager.finish(),
        processed,
    })
}

/// Refuses pieces that cannot be one table: together bigger than `max_table_cells`, or one
/// without a column the pipeline reads (its rows would be taken as empty cells, not refused).
fn check_pieces(pipeline: &Pipeline, pieces: &[(String, SourceTable)]) -> Result<(), RunError> {
    let cells: u64 = pieces.iter().map(|(_, table)| table.cells()).sum();
    if cells > pipeline.limits.max_table_cells {
        return Err(RunError::TooManyCells {
            payloads: pieces.len(),
            cells,
            max: pipeline.limits.max_table_cells,
        });
    }
    let schema_fields = pipeline
        .schema
        .iter()
        .flat_map(|s| &s.fields)
        .map(|f| f.name.as_str());
    let wanted: Vec<&str> = pipeline
        .mapping
        .source_columns()
        .into_iter()
        .chain(schema_fields)
        .collect();
    for (payload, table) in pieces {
        if let Some(column) = wanted
            .iter()
            .find(|c| table.schema().field_with_name(c).is_err())
        {
            return Err(RunError::PieceLacksColumn {
                payload: payload.clone(),
                column: column.to_string(),
                columns: table
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
            });
        }
    }
    Ok(())
}

/// A source's "last updated": RFC 3339, or SCB's zone-less local form or PX's `LAST-UPDATED`
/// (`20230525 15:42`) taken as UTC.
fn parse_updated(text: &str) -> Option<DateTime<Utc>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    DateTime::parse_from_rfc3339(&compact)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S", "%Y%m%d%H:%M"]
                .iter()
                .find_map(|format| chrono::NaiveDateTime::parse_from_str(&compact, format).ok())
                .map(|t| t.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scb_and_px_updated_without_zone_and_with_odd_spaces_parse() {
        let t = parse_updated("2023-02-22T05: 52: 00Z").unwrap();
        assert_eq!(rfc3339(t), "2023-02-22T05:52:00.000Z");
        let t = parse_updated("2022-11-21T08:00:00").unwrap();
        assert_eq!(rfc3339(t), "2022-11-21T08:00:00.000Z");
        let t = parse_updated("20230525 15:42").unwrap();
        assert_eq!(rfc3339(t), "2023-05-25T15:42:00.000Z");
        assert!(parse_updated("yesterday").is_none());
    }

    #[test]
    fn validators_are_given_only_for_the_setup_and_the_commit_they_were_stored_with() {
        let table = Validator {
            resource: "https://host/api/v2/tables/TAB638".into(),
            etag: None,
            last_modified: None,
            updated: Some("2026-01-01T08:00:00Z".into()),
        };
        let stored = with_setup(vec![table.clone()], "S", "H1");
        let given = |setup, last, held| source_validators(stored.clone(), setup, last, held);
        assert_eq!(
            given("S", Some("H1"), Some("H1")),
            std::slice::from_ref(&table)
        );
        // An edited pipeline, or a program of another version.
        assert!(given("S2", Some("H1"), Some("H1")).is_empty());
        // A later commit (another source kind wrote H2, leaving the old validator behind).
        assert!(given("S", Some("H2"), Some("H2")).is_empty());
        // The warehouse holds something else (wiped, restored, written by another state dir).
        assert!(given("S", Some("H1"), Some("H3")).is_empty());
        assert!(given("S", Some("H1"), None).is_empty());
        assert!(given("S", None, None).is_empty());
        assert!(
            with_setup(Vec::new(), "S", "H1").is_empty(),
            "nothing to belong"
        );
    }

    #[test]
    fn run_ids_sort_by_start_time() {
        let a = new_run_id("2026-11-23T10:00:00.005Z".parse().unwrap(), "p");
        let b = new_run_id("2026-11-23T10:00:01.000Z".parse().unwrap(), "p");
        assert_eq!(a, "20261123T100000-005-p");
        assert!(a < b);
    }
}
