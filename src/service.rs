//! The run service that `indikator run` uses today and `indikator serve` will: one per process
//! and state directory.
//!
//! Owns: recovering what dead processes left (their runs marked `interrupted`, their staging
//! removed) without touching live runs of other processes, taking a pipeline's lock for each
//! run and saying who holds it when it is taken, and starting runs with an owned context.
//! Must not: decide when pipelines run (the CLI or the scheduler does) or how (pipeline does).

use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::blocking::blocking;
use crate::config::Settings;
use crate::ledger::locks::{Holder, RETENTION_HOLDER};
use crate::ledger::{Ledger, LedgerError, PipelineLock, RunStatus, RunningRun, StateShare};
use crate::pipeline::run::{PROGRAM_VERSION, new_run_id, rfc3339};
use crate::pipeline::{self, Pipeline, Progress, RunContext, RunOutcome, StopCause, Trigger};
use crate::schemas::Schemas;
use crate::sources::archive::Archived;
use crate::sources::http::HttpClient;
use crate::warehouse::{Warehouse, WarehouseError};

/// How a recovery names itself in a pipeline's lock note.
const RECOVERY: &str = "recovery of";
/// Longest a run waits for a recovery to let go of its pipeline.
const RECOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Errors of the service; a run's own failure is not one (it is a `failed` outcome).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The runtime shut down under the run (its row stays `running` until the next start).
    #[error(
        "the run was stopped with the process before it ended; the next start marks it interrupted"
    )]
    Stopped,
}

/// What recovery found of processes that died mid-run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recovered {
    /// Runs marked `interrupted`: left `running` by a process that holds their pipeline no more.
    pub interrupted: Vec<String>,
    /// Runs whose staging files were removed.
    pub staging_removed: Vec<String>,
}

/// One request to run a pipeline.
#[derive(Clone)]
pub struct RunRequest {
    /// The run's id when the caller gave one out before the run started (the daemon's queue);
    /// else a new one.
    pub run_id: Option<String>,
    pub trigger: Trigger,
    /// Rewrite even when the content is unchanged.
    pub force: bool,
    pub warehouse: Warehouse,
    pub cancel: CancellationToken,
    /// Why `cancel` was cancelled (see [`StopCause`]).
    pub stop: StopCause,
    pub progress: Progress,
}

/// Runs pipelines of one state directory; cheap to share (`Arc` inside).
#[derive(Clone)]
pub struct Service {
    settings: Arc<Settings>,
    ledger: Arc<Ledger>,
    schemas: Arc<Schemas>,
    program_version: String,
    /// Shared by every run of the process (see [`RunContext::http`]).
    http: HttpClient,
    /// Held for the service's life: keeps a binary of an earlier version from starting beside it.
    _share: Arc<StateShare>,
}

impl Service {
    /// Opens the ledger of `settings.state_dir` (migrating it) with `schemas` loaded.
    pub fn open(settings: Settings, schemas: Schemas) -> Result<Self, ServiceError> {
        // Before the ledger: an older binary still running must not see its ledger migrated.
        let share = StateShare::take(&settings.state_dir)?;
        let ledger = Ledger::open(&settings.state_dir)?;
        Ok(Self {
            settings: Arc::new(settings),
            ledger: Arc::new(ledger),
            schemas: Arc::new(schemas),
            program_version: PROGRAM_VERSION.to_string(),
            http: HttpClient::default(),
            _share: Arc::new(share),
        })
    }

    /// The same service claiming another program version, as an upgraded binary would.
    pub fn with_program_version(mut self, version: &str) -> Self {
        self.program_version = version.to_string();
        self
    }

    /// The same service sending its requests through `http` (tests use one that ignores the
    /// environment's proxies and gives up sooner).
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// The ledger runs are recorded in (for `history`, the daemon, and tests).
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The process's HTTP client (for its counts by host).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The same service (ledger, client, state directory) running with `schemas`, as a
    /// reloaded daemon does.
    pub fn with_schemas(&self, schemas: Schemas) -> Self {
        Self {
            schemas: Arc::new(schemas),
            ..self.clone()
        }
    }

    /// Marks `interrupted` every run left `running` whose pipeline lock nobody holds (its
    /// process died: the OS released the lock), and removes the staging files in `warehouse` of
    /// runs this ledger knows have ended. Runs of live processes, this one's or another's, are
    /// left alone, and so is staging of runs this ledger does not know (another state directory
    /// may be writing into the same warehouse).
    pub fn recover(&self, warehouse: &Warehouse) -> Result<Recovered, ServiceError> {
        let mut recovered = Recovered::default();
        for run in self.ledger.running()? {
            let lock = match PipelineLock::try_acquire(
                &self.settings.state_dir,
                &run.pipeline,
                &format!("{RECOVERY} {}", run.run_id),
            ) {
                Ok(lock) => lock,
                Err(LedgerError::Held { .. }) => continue,
                Err(other) => return Err(other.into()),
            };
            self.interrupt(&run, &mut recovered)?;
            drop(lock);
        }
        for run_id in warehouse.staged_runs()? {
            let ended = self
                .ledger
                .status(&run_id)?
                .is_some_and(|status| status != RunStatus::Running);
            if ended && warehouse.remove_staging(&run_id)? {
                recovered.staging_removed.push(run_id);
            }
        }
        Ok(recovered)
    }

    /// Marks `run` interrupted and removes its staging. Only while holding its pipeline's lock,
    /// which proves that no live process has the run.
    fn interrupt(&self, run: &RunningRun, recovered: &mut Recovered) -> Result<(), ServiceError> {
        if self
            .ledger
            .mark_interrupted(&run.run_id, &rfc3339(Utc::now()))?
        {
            recovered.interrupted.push(run.run_id.clone());
        }
        if let Some(root) = &run.warehouse
            && Warehouse::new(root).remove_staging(&run.run_id)?
        {
            recovered.staging_removed.push(run.run_id.clone());
        }
        Ok(())
    }

    /// Takes `pipeline`'s lock for run `run_id`. A recovery holds a pipeline's lock only for as
    /// long as it takes to mark one dead run, retention for as long as it takes to remove old
    /// files: waited for, briefly, rather than refused. So is a holder that has not yet written
    /// who it is (it took the lock a moment ago: a recovery, as often as not).
    fn lock(&self, pipeline: &str, run_id: &str) -> Result<PipelineLock, LedgerError> {
        let deadline = std::time::Instant::now() + RECOVERY_WAIT;
        let brief = |holder: &Option<Holder>| {
            holder.as_ref().is_none_or(|holder| {
                holder.run_id.starts_with(RECOVERY) || holder.run_id == RETENTION_HOLDER
            })
        };
        loop {
            match PipelineLock::try_acquire(&self.settings.state_dir, pipeline, run_id) {
                Err(LedgerError::Held { holder, .. })
                    if brief(&holder) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => return other,
            }
        }
    }

    /// Interrupts the runs of `pipeline` left `running`; the caller holds its lock. A run that
    /// died while another process held its pipeline's lock (a manual run killed beside the
    /// daemon) is found here, by the pipeline's next run, rather than by a start-up recovery.
    fn interrupt_dead_runs_of(&self, pipeline: &str) -> Result<Recovered, ServiceError> {
        let mut recovered = Recovered::default();
        for run in self.ledger.running()? {
            if run.pipeline == pipeline {
                self.interrupt(&run, &mut recovered)?;
            }
        }
        Ok(recovered)
    }

    /// Runs `pipeline` once under its lock. `Err(LedgerError::Held)` (inside
    /// [`ServiceError::Ledger`]) when another run holds the pipeline: its message names that run.
    pub async fn run(
        &self,
        pipeline: Arc<Pipeline>,
        request: RunRequest,
    ) -> Result<RunOutcome, ServiceError> {
        self.start(pipeline, request, None).await
    }

    /// Runs `pipeline` once under its lock as [`Service::run`] does, as a new run with trigger
    /// `replay` that reads `archived` (an earlier run's archive) instead of fetching. Holding
    /// the lock also keeps retention from pruning the archive while it is read.
    pub async fn replay(
        &self,
        pipeline: Arc<Pipeline>,
        archived: Archived,
        request: RunRequest,
    ) -> Result<RunOutcome, ServiceError> {
        let request = RunRequest {
            trigger: Trigger::Replay,
            ..request
        };
        self.start(pipeline, request, Some(archived)).await
    }

    async fn start(
        &self,
        pipeline: Arc<Pipeline>,
        request: RunRequest,
        replay: Option<Archived>,
    ) -> Result<RunOutcome, ServiceError> {
        let run_id =
            (request.run_id.clone()).unwrap_or_else(|| new_run_id(Utc::now(), &pipeline.id));
        let (lock, recovered) = {
            let (service, id, run) = (self.clone(), pipeline.id.clone(), run_id.clone());
            let warehouse = request.warehouse.clone();
            blocking(move || -> Result<_, ServiceError> {
                let lock = service.lock(&id, &run)?;
                // Before the run's row names the warehouse, so that it is named canonically.
                warehouse.create()?;
                Ok((lock, service.interrupt_dead_runs_of(&id)?))
            })
            .await?
        };
        if !recovered.interrupted.is_empty() {
            tracing::warn!(pipeline = %pipeline.id, runs = ?recovered.interrupted, "marked runs of this pipeline left running by a stopped process as interrupted");
        }
        let cx = RunContext {
            warehouse: request.warehouse,
            ledger: self.ledger.clone(),
            schemas: self.schemas.clone(),
            trigger: request.trigger,
            force: request.force,
            cancel: request.cancel,
            stop: request.stop,
            progress: request.progress,
            program_version: self.program_version.clone(),
            http: self.http.clone(),
            replay,
        };
        // A task of its own that owns the lock: should the caller stop waiting (a timeout, a
        // dropped request), the run still ends, and its lock is released only when it has, never
        // while its commit is renaming on the blocking pool.
        let run = tokio::spawn(async move {
            let outcome = pipeline::run(pipeline, run_id, cx).await;
            drop(lock);
            outcome
        });
        match run.await {
            Ok(outcome) => Ok(outcome?),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(ServiceError::Stopped),
        }
    }
}
