//! A decoded table staged a year at a time, on every core.
//!
//! Owns: the worker pool over year partitions, the choice between the cube path and the row
//! path for each, putting a partition's refused rows in their payload's terms, and counting
//! what each partition produced.
//! Must not: fetch, commit, or touch the ledger (run.rs does), or know how validate and
//! harmonise work inside.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use super::Pipeline;
use super::run::{RunError, Step};
use super::years::Years;
use crate::catalog::CoverageCounter;
use crate::formats::merge::Provenance;
use crate::formats::{Chunk, SourceTable};
use crate::harmonise::cube::CubeHarmoniser;
use crate::harmonise::{self, Context, Harmonised};
use crate::rejects::{Reason, Rejects, Report};
use crate::validate;
use crate::warehouse::Stager;

/// Most worker threads a run uses: partitions past four cores wait on the disk, not the CPU.
const MAX_WORKERS: usize = 4;

/// What staging a table produced.
#[derive(Default)]
pub(super) struct Processed {
    pub report: Report,
    pub rejects: Rejects,
    pub coverage: CoverageCounter,
    pub uncatalogued: BTreeSet<String>,
    pub rows_written: u64,
    /// Years whose partition was staged, unsorted.
    pub years: Vec<i32>,
}

impl Processed {
    fn merge(&mut self, other: Processed) {
        self.report.merge(other.report);
        self.rejects.append(other.rejects);
        self.coverage.merge(other.coverage);
        self.uncatalogued.extend(other.uncatalogued);
        self.rows_written += other.rows_written;
        self.years.extend(other.years);
    }
}

/// What the partitions of one run share.
pub(super) struct Partitioner<'a> {
    pub pipeline: &'a Pipeline,
    pub context: Context<'a>,
    pub stager: &'a Stager,
    pub progress: &'a (dyn Fn(Step) + Sync),
    /// Checked before each partition: a cancelled run stops staging.
    pub cancel: &'a CancellationToken,
}

impl Partitioner<'_> {
    /// Splits `table` into year partitions by its period column and stages them on every core.
    /// `table` is the whole of the run's table (a source that fetched it in pieces merged them),
    /// so no two partitions share a year.
    pub(super) fn stage_table(&self, table: &SourceTable) -> Result<Processed, RunError> {
        let mapping = &self.pipeline.mapping;
        let by_year = Years::of(table, &mapping.period_column, mapping.period_kind)?;
        (self.progress)(Step::Decoded {
            rows: table.num_rows(),
            partitions: by_year.years.len(),
        });
        tracing::info!(
            rows = table.num_rows(),
            partitions = by_year.years.len(),
            "decoded"
        );
        // A cube the cube path can take goes a partition at a time straight from its
        // dimensions; a partition it cannot take (and every other table) goes row by row, which
        // explains refusals.
        let cube_path = match (table.cube(), &self.pipeline.schema) {
            (Some(cube), None) => CubeHarmoniser::new(cube, mapping, &self.context),
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
            .min(MAX_WORKERS);
        let worker = || -> Result<Processed, RunError> {
            let mut total = Processed::default();
            loop {
                let next = queue.lock().expect("no panic holds the queue").next();
                let Some((group, year)) = next else { break };
                if self.cancel.is_cancelled() {
                    return Err(RunError::Cancelled);
                }
                let fast = cube_path
                    .as_ref()
                    .and_then(|c| c.partition(&by_year.keep(group)));
                let part = match fast {
                    Some(harmonised) => {
                        let mut part = self.stage(harmonised, year)?;
                        part.report.rows_checked = part.rows_written;
                        part
                    }
                    None => {
                        let chunk = match &buckets {
                            Some(buckets) => table.take_rows(&buckets[group]),
                            None => table.select(&mapping.period_column, &by_year.keep(group)),
                        };
                        self.partition(&chunk, year)?
                    }
                };
                total.merge(part);
                (self.progress)(Step::PartitionDone);
            }
            Ok(total)
        };
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| RunError::Panicked)?)
                .collect::<Result<Vec<_>, RunError>>()
        })?;
        let mut processed = Processed::default();
        for part in results {
            processed.merge(part);
        }
        Ok(processed)
    }

    /// Validates, harmonises, sorts and stages the rows of one year (`None`: rows whose period
    /// does not parse, which harmonise refuses with the reason).
    fn partition(&self, chunk: &Chunk, year: Option<i32>) -> Result<Processed, RunError> {
        let mut reasons: Vec<Reason> = Vec::new();
        let accepted;
        let chunk_to_map = match &self.pipeline.schema {
            Some(schema) => {
                let validated = validate::validate(chunk, schema)?;
                reasons.extend(validated.reasons);
                accepted = validated.accepted;
                &accepted
            }
            None => chunk,
        };
        let mut harmonised =
            harmonise::harmonise(chunk_to_map, &self.pipeline.mapping, &self.context)?;
        reasons.append(&mut harmonised.reasons);
        let mut result = self.stage(harmonised, year)?;
        result.report.rows_checked = chunk.batch.num_rows() as u64;
        result.report.rows_rejected =
            reasons.iter().map(|r| r.row).collect::<BTreeSet<_>>().len() as u64;
        let provenance = self.context.provenance;
        result
            .rejects
            .add(&chunk.batch, &chunk.rows, &reasons, |row| {
                located(provenance, row)
            });
        for reason in &mut reasons {
            (reason.payload, reason.row) = located(provenance, reason.row);
            result.report.count(reason);
        }
        Ok(result)
    }

    /// Stages the observations of a harmonised partition of `year` (`None`: rows that are no
    /// period, which are never written) and counts them.
    fn stage(&self, harmonised: Harmonised, year: Option<i32>) -> Result<Processed, RunError> {
        let mut result = Processed {
            uncatalogued: harmonised.uncatalogued,
            ..Processed::default()
        };
        let observations = harmonised.observations;
        if let Some(year) = year
            && observations.num_rows() > 0
        {
            self.stager.write_partition(year, &observations)?;
            result.coverage.add(&observations);
            result.rows_written = observations.num_rows() as u64;
            result.years.push(year);
        }
        Ok(result)
    }
}

/// A row id as its payload names it.
fn located(provenance: &Provenance, row: u64) -> (String, u64) {
    let origin = provenance.locate(row);
    (origin.payload.to_string(), origin.row)
}
