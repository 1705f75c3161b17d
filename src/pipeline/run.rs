//! One run of one pipeline: fetch → archive → decode → (per year) validate → harmonise → sort →
//! stage → commit → ledger.
//!
//! Owns: the order of the stages, the skip on unchanged content, the reject-ratio gate, and
//! splitting the table into year partitions so that a 10-million-cell cube is handled a year at a
//! time on every core.
//! Must not: know how a stage works inside, or when a pipeline runs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

use super::Pipeline;
use crate::catalog::{Catalogue, CoverageCounter, CoverageRow, coverage_batch};
use crate::formats::{DecodeError, DecodeLimits, SourceTable};
use crate::harmonise::cube::CubeHarmoniser;
use crate::harmonise::{self, Context, HarmoniseError, Harmonised, periods};
use crate::ledger::{Ledger, LedgerError, RunEnd, RunStatus};
use crate::rejects::{Reason, Rejects, Report};
use crate::sources::{Source, SourceError};
use crate::validate::{self, ValidateError};
use crate::warehouse::{Stager, Warehouse, WarehouseError};

/// What a run needs besides its pipeline.
pub struct RunContext<'a> {
    pub warehouse: &'a Warehouse,
    pub ledger: &'a Ledger,
    pub catalogue: &'a Catalogue,
    /// `manual`, `schedule`, `api`.
    pub trigger: &'a str,
    /// Rewrite even when the content is unchanged.
    pub force: bool,
    /// Told of each step, for a progress bar; must be cheap.
    pub progress: &'a (dyn Fn(Step) + Sync),
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
}

/// Errors that end a run; each names the pipeline's file, URL or row through its source.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("fetch failed")]
    Fetch(#[from] SourceError),
    #[error("decode failed")]
    Decode(#[from] DecodeError),
    #[error("the table does not fit the pipeline's [validate] schema")]
    Validate(#[from] ValidateError),
    #[error("the table does not fit the pipeline's [map]")]
    Harmonise(#[from] HarmoniseError),
    #[error("the warehouse could not be written")]
    Warehouse(#[from] WarehouseError),
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
    #[error("the worker thread panicked")]
    Panicked,
}

/// Timestamps as the ledger stores them.
fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A new run id: sortable by start time, unique per process and pipeline.
fn new_run_id(started: DateTime<Utc>, pipeline: &str) -> String {
    format!(
        "{}-{:03}-{pipeline}",
        started.format("%Y%m%dT%H%M%S"),
        started.timestamp_subsec_millis()
    )
}

/// Runs `pipeline` once and records it in the ledger, whatever happens. A run whose content is
/// unchanged since its last commit writes nothing (unless forced) and ends `skipped`.
#[tracing::instrument(name = "run", skip_all, fields(pipeline = %pipeline.id, run_id))]
pub async fn run(pipeline: &Pipeline, cx: &RunContext<'_>) -> Result<RunOutcome, LedgerError> {
    let clock = Instant::now();
    let started = Utc::now();
    let run_id = new_run_id(started, &pipeline.id);
    tracing::Span::current().record("run_id", run_id.as_str());
    cx.ledger
        .start_run(&run_id, &pipeline.id, cx.trigger, &rfc3339(started))?;
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
    };
    let result = execute(pipeline, cx, &run_id, started, &mut outcome).await;
    let (coverage, content_hash) = match result {
        Ok(Executed {
            coverage,
            content_hash,
        }) => (coverage, content_hash),
        Err(error) => {
            let message = chain(&error);
            tracing::error!(error = %message, "run failed");
            outcome.status = RunStatus::Failed;
            outcome.error = Some(message);
            (None, None)
        }
    };
    outcome.elapsed_ms = clock.elapsed().as_millis();
    let coverage_json = coverage
        .as_ref()
        .map(|rows| serde_json::to_string(rows).expect("coverage serialises"));
    cx.ledger.finish_run(
        &run_id,
        &RunEnd {
            status: outcome.status,
            finished: rfc3339(Utc::now()),
            rows_read: outcome.rows_read,
            rows_written: outcome.rows_written,
            rows_rejected: outcome.rows_rejected,
            content_hash,
            error: outcome.error.clone(),
            report: Some(outcome.report.clone()),
        },
        coverage_json
            .as_deref()
            .map(|json| (pipeline.id.as_str(), json)),
    )?;
    if coverage.is_some()
        && let Err(error) = write_catalogs(cx)
    {
        // The observations are committed and recorded; a stale catalog is fixed by the next run.
        tracing::warn!(error = %chain(&error), "catalog files not rewritten");
    }
    Ok(outcome)
}

/// The error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

struct Executed {
    /// This pipeline's coverage when the run committed; `None` when it was skipped.
    coverage: Option<Vec<CoverageRow>>,
    content_hash: Option<String>,
}

async fn execute(
    pipeline: &Pipeline,
    cx: &RunContext<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    outcome: &mut RunOutcome,
) -> Result<Executed, RunError> {
    let fetched = pipeline.source.fetch().await?;
    (cx.progress)(Step::Fetched {
        bytes: fetched.total_bytes(),
    });
    tracing::info!(
        payloads = fetched.payloads.len(),
        bytes = fetched.total_bytes(),
        "fetched"
    );
    let mut hasher = blake3::Hasher::new();
    hasher.update(pipeline.fingerprint.as_bytes());
    for payload in &fetched.payloads {
        hasher.update(&(payload.bytes.len() as u64).to_le_bytes());
        hasher.update(&payload.bytes);
    }
    let content_hash = hasher.finalize().to_hex().to_string();
    if !cx.force && cx.ledger.last_content_hash(&pipeline.id)?.as_deref() == Some(&content_hash) {
        tracing::info!("content unchanged since the last commit; nothing written");
        outcome.status = RunStatus::Skipped;
        return Ok(Executed {
            coverage: None,
            content_hash: Some(content_hash),
        });
    }
    // One stager for the run: every payload's partitions are published by one commit.
    let stager = cx.warehouse.stage(&pipeline.id, run_id)?;
    let tables = std::thread::scope(|scope| -> Result<Vec<_>, RunError> {
        // Archive on a second thread while the first decodes: the raw copy is for audit and
        // replay, and need not hold up the run.
        let archive = scope.spawn(|| {
            fetched
                .payloads
                .iter()
                .map(|p| {
                    cx.warehouse
                        .archive_raw(&pipeline.id, run_id, &p.name, &p.bytes)
                })
                .collect::<Result<Vec<_>, _>>()
        });
        let tables = fetched
            .payloads
            .iter()
            .map(|payload| {
                let limits = DecodeLimits::default();
                pipeline
                    .format
                    .decode(&payload.bytes, &payload.origin, &limits)
            })
            .collect::<Result<Vec<_>, _>>()?;
        archive.join().map_err(|_| RunError::Panicked)??;
        Ok(tables)
    })?;
    // Decoded tables hold their own copies of every value: the payloads can go before the
    // partitions are built, which is when memory peaks.
    drop(fetched);
    let processed = tables
        .iter()
        .map(|table| process(pipeline, cx, run_id, started, table, &stager))
        .collect::<Result<Vec<_>, _>>()?;
    drop(tables);
    let staged = stager.finish();
    let mut rejects = Rejects::default();
    let mut coverage = CoverageCounter::default();
    for part in processed {
        outcome.rows_read += part.report.rows_checked;
        outcome.report.merge(part.report);
        outcome.uncatalogued.extend(part.uncatalogued);
        outcome.rows_written += part.rows_written;
        outcome.years.extend(part.years);
        rejects.append(part.rejects);
        coverage.merge(part.coverage);
    }
    outcome.rows_rejected = outcome.report.rows_rejected;
    if !rejects.is_empty() {
        let batch = rejects.finish().expect("not empty");
        outcome.rejects_file = Some(cx.warehouse.write_rejects(&pipeline.id, run_id, &batch)?);
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
    (cx.progress)(Step::Committing);
    let commit = staged.commit()?;
    tracing::info!(
        years = commit.years.len(),
        removed = commit.removed_years.len(),
        "committed"
    );
    outcome.years.sort_unstable();
    outcome.status = RunStatus::Succeeded;
    tracing::info!(
        rows = outcome.rows_written,
        rejected = outcome.rows_rejected,
        "run succeeded"
    );
    Ok(Executed {
        coverage: Some(coverage.finish(&pipeline.id, run_id)),
        content_hash: Some(content_hash),
    })
}

/// One decoded table, staged.
struct Processed {
    report: Report,
    rejects: Rejects,
    coverage: CoverageCounter,
    uncatalogued: BTreeSet<String>,
    rows_written: u64,
    years: Vec<i32>,
}

/// What one partition produced.
#[derive(Default)]
struct PartitionResult {
    report: Report,
    rejects: Rejects,
    coverage: CoverageCounter,
    uncatalogued: BTreeSet<String>,
    rows_written: u64,
}

/// Splits `table` into year partitions by its period column and stages them on every core.
/// Payloads of one run must not share a year: a source that fetches in pieces merges them into
/// one table first.
fn process(
    pipeline: &Pipeline,
    cx: &RunContext<'_>,
    run_id: &str,
    started: DateTime<Utc>,
    table: &SourceTable,
    stager: &Stager,
) -> Result<Processed, RunError> {
    let mapping = &pipeline.mapping;
    let by_year = Years::of(table, &mapping.period_column, mapping.period_kind)?;
    (cx.progress)(Step::Decoded {
        rows: table.num_rows(),
        partitions: by_year.years.len(),
    });
    tracing::info!(
        rows = table.num_rows(),
        partitions = by_year.years.len(),
        "decoded"
    );
    let catalogued = cx.catalogue.indicator_ids();
    let source_updated = table
        .meta
        .updated
        .as_deref()
        .and_then(parse_updated)
        .map(|t| t.timestamp_micros());
    let context = Context {
        run_id,
        ingested_at: started.timestamp_micros(),
        source: &pipeline.origin.producer,
        source_table: &pipeline.origin.table,
        source_url: &pipeline.origin.url,
        source_updated,
        catalogued: &catalogued,
        areas: cx.catalogue.areas.as_ref(),
    };
    // A cube the cube path can take goes a partition at a time straight from its dimensions; a
    // partition it cannot take (and every other table) goes row by row, which explains refusals.
    let cube_path = match (table.cube(), &pipeline.schema) {
        (Some(cube), None) => CubeHarmoniser::new(cube, mapping, &context),
        _ => None,
    };
    // Rows are bucketed by year in one pass, not scanned once per year.
    let buckets = table.bucket_rows(
        &mapping.period_column,
        &by_year.group_of,
        by_year.years.len(),
    );
    let queue = Mutex::new(by_year.years.iter().copied().enumerate());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<(PartitionResult, Vec<i32>), RunError> {
                    let mut total = PartitionResult::default();
                    let mut years = Vec::new();
                    loop {
                        let next = queue.lock().expect("queue").next();
                        let Some((group, year)) = next else { break };
                        let fast = cube_path
                            .as_ref()
                            .and_then(|c| c.partition(&by_year.keep(group)));
                        let part = match fast {
                            Some(harmonised) => {
                                let mut part = stage(harmonised, year, stager)?;
                                part.report.rows_checked = part.rows_written;
                                part
                            }
                            None => {
                                let chunk = match &buckets {
                                    Some(buckets) => table.take_rows(&buckets[group]),
                                    None => {
                                        table.select(&mapping.period_column, &by_year.keep(group))
                                    }
                                };
                                partition(pipeline, &context, &chunk, year, stager)?
                            }
                        };
                        if year.is_some() && part.rows_written > 0 {
                            years.extend(year);
                        }
                        total.report.merge(part.report);
                        total.rejects.append(part.rejects);
                        total.coverage.merge(part.coverage);
                        total.uncatalogued.extend(part.uncatalogued);
                        total.rows_written += part.rows_written;
                        (cx.progress)(Step::PartitionDone);
                    }
                    Ok((total, years))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| RunError::Panicked)?)
            .collect::<Result<Vec<_>, RunError>>()
    })?;
    let mut processed = Processed {
        report: Report::default(),
        rejects: Rejects::default(),
        coverage: CoverageCounter::default(),
        uncatalogued: BTreeSet::new(),
        rows_written: 0,
        years: Vec::new(),
    };
    for (part, years) in results {
        processed.report.merge(part.report);
        processed.rejects.append(part.rejects);
        processed.coverage.merge(part.coverage);
        processed.uncatalogued.extend(part.uncatalogued);
        processed.rows_written += part.rows_written;
        processed.years.extend(years);
    }
    Ok(processed)
}

/// Validates, harmonises, sorts and stages the rows of one year (`None`: rows whose period
/// does not parse, which harmonise refuses with the reason).
fn partition(
    pipeline: &Pipeline,
    context: &Context<'_>,
    chunk: &crate::formats::Chunk,
    year: Option<i32>,
    stager: &Stager,
) -> Result<PartitionResult, RunError> {
    let mut reasons: Vec<Reason> = Vec::new();
    let accepted;
    let chunk_to_map = match &pipeline.schema {
        Some(schema) => {
            let validated = validate::validate(chunk, schema)?;
            reasons.extend(validated.reasons);
            accepted = validated.accepted;
            &accepted
        }
        None => chunk,
    };
    let mut harmonised = harmonise::harmonise(chunk_to_map, &pipeline.mapping, context)?;
    reasons.append(&mut harmonised.reasons);
    let mut result = stage(harmonised, year, stager)?;
    result.report.rows_checked = chunk.batch.num_rows() as u64;
    result.report.rows_rejected =
        reasons.iter().map(|r| r.row).collect::<BTreeSet<_>>().len() as u64;
    for reason in &reasons {
        result.report.count(reason);
    }
    result.rejects.add(&chunk.batch, &chunk.rows, &reasons);
    Ok(result)
}

/// Stages the observations of a harmonised partition of `year` (`None`: rows that are no period,
/// which are never written) and counts them.
fn stage(
    harmonised: Harmonised,
    year: Option<i32>,
    stager: &Stager,
) -> Result<PartitionResult, RunError> {
    let mut result = PartitionResult {
        uncatalogued: harmonised.uncatalogued,
        ..PartitionResult::default()
    };
    let observations = harmonised.observations;
    if let Some(year) = year
        && observations.num_rows() > 0
    {
        stager.write_partition(year, &observations)?;
        result.coverage.add(&observations);
        result.rows_written = observations.num_rows() as u64;
    }
    Ok(result)
}

/// A table split by the year of its period column: one partition per year, plus, under `None`,
/// the categories that are no period at all.
struct Years {
    /// Each group's year, in order.
    years: Vec<Option<i32>>,
    /// Each period category's group.
    group_of: Vec<usize>,
}

impl Years {
    /// Parses the period once per category of `column`.
    fn of(table: &SourceTable, column: &str, kind: periods::PeriodKind) -> Result<Self, RunError> {
        let categories = table.categories(column).ok_or_else(|| {
            RunError::Harmonise(HarmoniseError::missing_column(
                "period",
                column,
                table.schema(),
            ))
        })?;
        let year_of: Vec<Option<i32>> = categories
            .iter()
            .map(|category| {
                periods::parse_period(category.unwrap_or(""), kind)
                    .ok()
                    .map(|p| p.year())
            })
            .collect();
        let years: Vec<Option<i32>> = year_of
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let group_of = year_of
            .iter()
            .map(|year| years.binary_search(year).expect("every year is listed"))
            .collect();
        Ok(Self { years, group_of })
    }

    /// Which period categories fall in group `group`.
    fn keep(&self, group: usize) -> Vec<bool> {
        self.group_of.iter().map(|&g| g == group).collect()
    }
}

/// A source's "last updated": RFC 3339, or SCB's zone-less local form taken as UTC.
fn parse_updated(text: &str) -> Option<DateTime<Utc>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    DateTime::parse_from_rfc3339(&compact)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(&compact, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// Rewrites `catalog/`: indicators and areas from `schemas/`, coverage from the ledger.
fn write_catalogs(cx: &RunContext<'_>) -> Result<(), RunError> {
    cx.warehouse
        .write_catalog("indicators", &cx.catalogue.indicators_batch())?;
    cx.warehouse
        .write_catalog("areas", &cx.catalogue.areas_batch())?;
    let mut rows: Vec<CoverageRow> = Vec::new();
    for (pipeline, json) in cx.ledger.coverage()? {
        match serde_json::from_str::<Vec<CoverageRow>>(&json) {
            Ok(pipeline_rows) => rows.extend(pipeline_rows),
            Err(error) => tracing::warn!(pipeline, %error, "coverage in the ledger is unreadable"),
        }
    }
    cx.warehouse
        .write_catalog("coverage", &coverage_batch(&rows))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scb_updated_without_zone_and_with_odd_spaces_parses() {
        let t = parse_updated("2023-02-22T05: 52: 00Z").unwrap();
        assert_eq!(rfc3339(t), "2023-02-22T05:52:00.000Z");
        let t = parse_updated("2022-11-21T08:00:00").unwrap();
        assert_eq!(rfc3339(t), "2022-11-21T08:00:00.000Z");
        assert!(parse_updated("yesterday").is_none());
    }

    #[test]
    fn run_ids_sort_by_start_time() {
        let a = new_run_id("2026-11-23T10:00:00.005Z".parse().unwrap(), "p");
        let b = new_run_id("2026-11-23T10:00:01.000Z".parse().unwrap(), "p");
        assert_eq!(a, "20261123T100000-005-p");
        assert!(a < b);
    }
}
