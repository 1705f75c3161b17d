//! `indikator replay RUN_ID`: an earlier run's archived payloads processed again through the
//! pipeline as it is defined now, so that a fixed mapping needs no new download.
//!
//! Owns: finding what a replay needs (the run in the ledger, its pipeline among the checked
//! pipelines, the run's archive in the warehouse it wrote to) and saying which is missing.
//! Must not: run anything (the service runs a replay like any run, under the pipeline's lock)
//! or read the payloads (`sources::archive` does, when the run fetches).
//!
//! A replay is a run like any other: a payload set the warehouse already holds, through an
//! unchanged pipeline, is skipped as unchanged (the content hash covers the payloads and the
//! pipeline); `--force` rewrites. After a mapping fix the hash differs and the replay commits.

use crate::ledger::{Ledger, LedgerError, RunStatus};
use crate::pipeline::Pipeline;
use crate::sources::archive::{ArchiveError, Archived};
use crate::warehouse::Warehouse;

/// Errors of preparing a replay; each names the run and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the ledger has no run `{run_id}`; `indikator history` lists the runs it knows")]
    UnknownRun { run_id: String },
    #[error(
        "run `{run_id}` is {status}: only a run that has ended can be replayed (its archive may \
         not be complete yet)"
    )]
    NotEnded { run_id: String, status: RunStatus },
    #[error(
        "run `{run_id}` was a run of pipeline `{pipeline}`, which no pipeline file defines any \
         more (or its file has errors: `indikator check` lists them); restore its file to replay"
    )]
    NoPipeline { run_id: String, pipeline: String },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What replaying one run needs: the current definition of its pipeline and its archive.
#[derive(Debug)]
pub struct Replay {
    pub pipeline: Pipeline,
    pub archived: Archived,
}

/// Finds run `run_id` in `ledger`, its pipeline among `pipelines` (the checked pipelines of
/// the pipelines directory) and its archive: in the warehouse the run wrote to, or in
/// `warehouse` for a run recorded before the ledger knew warehouses.
pub fn prepare(
    ledger: &Ledger,
    pipelines: Vec<Pipeline>,
    warehouse: &Warehouse,
    run_id: &str,
) -> Result<Replay, ReplayError> {
    let run = ledger.run(run_id)?.ok_or_else(|| ReplayError::UnknownRun {
        run_id: run_id.into(),
    })?;
    if !run.status.is_final() {
        return Err(ReplayError::NotEnded {
            run_id: run.run_id,
            status: run.status,
        });
    }
    let pipeline = pipelines
        .into_iter()
        .find(|p| p.id == run.pipeline)
        .ok_or_else(|| ReplayError::NoPipeline {
            run_id: run.run_id.clone(),
            pipeline: run.pipeline.clone(),
        })?;
    let archive = run
        .warehouse
        .map_or_else(|| warehouse.clone(), Warehouse::new);
    let archived = Archived::open(&archive, &pipeline.id, &run.run_id)?;
    Ok(Replay { pipeline, archived })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_or_unfinished_run_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let warehouse = Warehouse::new(dir.path().join("warehouse"));
        let err = prepare(&ledger, Vec::new(), &warehouse, "r1").unwrap_err();
        insta::assert_snapshot!(err, @"the ledger has no run `r1`; `indikator history` lists the runs it knows");
        ledger
            .start_run("r1", "p", "manual", "2026-11-23T10:00:00Z", "/w")
            .unwrap();
        let err = prepare(&ledger, Vec::new(), &warehouse, "r1").unwrap_err();
        insta::assert_snapshot!(err, @"run `r1` is running: only a run that has ended can be replayed (its archive may not be complete yet)");
    }
}
