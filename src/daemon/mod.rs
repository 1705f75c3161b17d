//! The daemon's state: the loaded pipelines (replaced whole by a reload that passes `check`),
//! the runner, the counters, and what the admin API asks of them.
//!
//! Owns: the pipeline set and its reload, triggering by id (an unknown id is an answer, never a
//! path), readiness, and turning ended runs into counts and log lines.
//! Must not: serve HTTP (admin does), read signals (serve does), or run a pipeline itself (the
//! runner hands runs to the service).

pub mod runner;
pub mod scheduler;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::watch;

use crate::alerts::Alerter;
use crate::blocking::blocking;
use crate::config::Settings;
use crate::ledger::{Ledger, RunFilter, RunStatus};
use crate::metrics::{Gauges, Metrics, RunCount};
use crate::pipeline::{self, Pipeline, Trigger};
use crate::problem::Problem;
use crate::retention;
use crate::schemas::Schemas;
use crate::service::Service;
use crate::warehouse::Warehouse;

use runner::{Ended, Runner, SubmitError};
use scheduler::{Clock, Scheduler};

/// One generation of loaded pipelines, with the service that runs them (its schemas).
pub struct PipelineSet {
    by_id: BTreeMap<String, Arc<Pipeline>>,
    service: Service,
}

impl PipelineSet {
    pub fn new(pipelines: impl IntoIterator<Item = Arc<Pipeline>>, service: Service) -> Self {
        Self {
            by_id: (pipelines.into_iter()).map(|p| (p.id.clone(), p)).collect(),
            service,
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Pipeline>> {
        self.by_id.get(id)
    }

    /// Every pipeline, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Pipeline>> {
        self.by_id.values()
    }

    /// The pipelines with a schedule.
    pub fn scheduled(&self) -> impl Iterator<Item = &Arc<Pipeline>> {
        self.iter().filter(|p| p.schedule.is_some())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Why a trigger was refused.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("no pipeline has id `{0}`; GET /api/v1/pipelines lists them")]
    Unknown(String),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

/// The state one `indikator serve` shares between its scheduler, runner and admin API.
pub struct Daemon {
    settings: Settings,
    ledger: Arc<Ledger>,
    warehouse: Warehouse,
    set: watch::Sender<Arc<PipelineSet>>,
    runner: Runner,
    metrics: Arc<Metrics>,
    /// Why the last reload was refused (`None`: the running set is the configuration's).
    config_problem: Mutex<Option<String>>,
    alerter: Alerter,
    service: Service,
}

impl Daemon {
    /// A daemon running `pipelines` through `service` into the settings' warehouse.
    pub fn new(settings: Settings, service: Service, pipelines: PipelineSet) -> Arc<Self> {
        let warehouse = Warehouse::new(&settings.warehouse_dir);
        let (set, current) = watch::channel(Arc::new(pipelines));
        let metrics = Arc::new(Metrics::default());
        let execute: runner::Execute = Arc::new(move |pipeline, request| {
            // The service of the set current when the run starts: a reload's schemas apply to
            // the runs after it.
            let service = current.borrow().service.clone();
            Box::pin(async move { service.run(pipeline, request).await })
        });
        let alerter = Alerter::new(&settings.alerts, service.http().clone());
        let on_end: runner::OnEnd = {
            let (metrics, alerter, ledger) =
                (metrics.clone(), alerter.clone(), service.ledger().clone());
            Arc::new(move |ended: &Ended| {
                count(&metrics, ended);
                alert(&alerter, &ledger, ended);
            })
        };
        let runner = Runner::new(
            execute,
            on_end,
            service.ledger().clone(),
            warehouse.clone(),
            settings.serve.max_concurrent_runs,
        );
        Arc::new(Self {
            ledger: service.ledger().clone(),
            warehouse,
            set,
            runner,
            metrics,
            config_problem: Mutex::new(None),
            alerter,
            settings,
            service,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The pipelines loaded now.
    pub fn pipelines(&self) -> Arc<PipelineSet> {
        self.set.borrow().clone()
    }

    /// A scheduler firing this daemon's pipelines by `clock`.
    pub fn scheduler(&self, clock: Clock) -> Scheduler {
        let metrics = self.metrics.clone();
        Scheduler {
            ledger: self.ledger.clone(),
            runner: self.runner.clone(),
            clock,
            pipelines: self.set.subscribe(),
            on_fire: Arc::new(move |_pipeline, lag| metrics.fired(lag)),
        }
    }

    /// Queues a run of pipeline `id`; its run id at once.
    pub async fn trigger(
        &self,
        id: &str,
        trigger: Trigger,
        force: bool,
    ) -> Result<String, TriggerError> {
        let pipeline = (self.pipelines().get(id).cloned())
            .ok_or_else(|| TriggerError::Unknown(id.to_string()))?;
        Ok(self.runner.submit(pipeline, trigger, force).await?)
    }

    /// Reads the settings file, schemas and pipelines again; the new set replaces the running
    /// one only if it passes `check` without errors, else the old one stays and the reason is
    /// kept for the API and the metrics. Directories and the admin address need a restart.
    pub async fn reload(&self) -> Result<usize, String> {
        let (settings, service) = (self.settings.clone(), self.service.clone());
        let loaded = blocking(move || load_set(&settings, &service)).await;
        let result = match loaded {
            Ok(set) => {
                let count = set.len();
                self.set.send_replace(Arc::new(set));
                tracing::info!(pipelines = count, "configuration reloaded");
                Ok(count)
            }
            Err(problems) => {
                let why = format!(
                    "the new configuration was not loaded, the running pipelines stay: {problems}"
                );
                tracing::error!("{why}");
                Err(why)
            }
        };
        *self.problem() = result.as_ref().err().cloned();
        result
    }

    fn problem(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.config_problem
            .lock()
            .expect("a panic while holding the reload problem is a bug")
    }

    /// Why the last reload was refused, if it was.
    pub fn config_problem(&self) -> Option<String> {
        self.problem().clone()
    }

    /// Whether runs can be recorded and written: the ledger answers, the warehouse is there.
    pub async fn ready(&self) -> Result<(), String> {
        let (ledger, warehouse) = (self.ledger.clone(), self.warehouse.clone());
        blocking(move || {
            ledger
                .runs(&RunFilter {
                    limit: Some(1),
                    ..RunFilter::default()
                })
                .map_err(|e| format!("the ledger does not answer: {e}"))?;
            warehouse
                .create()
                .map_err(|e| format!("the warehouse is not writable: {e}"))
        })
        .await
    }

    /// Sets each pipeline's last success from the ledger, for the metrics after a restart.
    pub async fn load_last_successes(&self) {
        let ids: Vec<String> = self.pipelines().iter().map(|p| p.id.clone()).collect();
        let ledger = self.ledger.clone();
        let found = blocking(move || {
            let mut found = Vec::new();
            for id in ids {
                for status in [RunStatus::Succeeded, RunStatus::Skipped] {
                    let filter = RunFilter {
                        pipeline: Some(id.clone()),
                        status: Some(status),
                        limit: Some(1),
                    };
                    let last = ledger.runs(&filter)?.pop().and_then(|r| r.finished);
                    found.extend(last.map(|finished| (id.clone(), finished)));
                }
            }
            Ok::<_, crate::ledger::LedgerError>(found)
        })
        .await;
        match found {
            Ok(found) => {
                for (id, finished) in found {
                    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(&finished) {
                        self.metrics
                            .last_success(&id, t.timestamp_millis() as f64 / 1000.0);
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the last successes for the metrics"),
        }
    }

    /// Keeps the warehouse and ledger within `[retention]` (raw archives, old rejects, vacuum),
    /// as the daemon does at start-up and daily; a failure is logged, the daemon goes on.
    pub async fn prune(&self) {
        let (settings, ledger, warehouse) = (
            self.settings.clone(),
            self.ledger.clone(),
            self.warehouse.clone(),
        );
        let pruned = blocking(move || {
            retention::prune(
                &settings,
                &ledger,
                &warehouse,
                Utc::now(),
                retention::Mode::Remove,
            )
        })
        .await;
        match pruned {
            Ok(report) => tracing::info!(
                removed = report.removed.len(),
                bytes = report.bytes(),
                busy = ?report.busy,
                "retention: pruned raw archives and old rejects, vacuumed the ledger"
            ),
            Err(error) => {
                tracing::error!(error = %crate::problem::error_chain(&error), "retention failed; it is tried again in a day")
            }
        }
    }

    /// Waits, up to `within`, for the alerts still queued to be sent (at shutdown).
    pub async fn flush_alerts(&self, within: std::time::Duration) {
        if !self.alerter.flush(within).await {
            tracing::warn!(
                within_secs = within.as_secs(),
                "alerts still unsent at shutdown were dropped"
            );
        }
    }

    /// The metrics text, with the gauges read now.
    pub fn render_metrics(&self) -> String {
        let (running, queued) = self.runner.load();
        let hosts = self.service.http().stats().snapshot();
        self.metrics.render(&Gauges {
            pipelines: self.pipelines().len(),
            running,
            queued,
            config_ok: self.config_problem().is_none(),
            hosts,
        })
    }
}

/// The settings' pipelines, checked, as a set run by `service` with the schemas read now; or
/// the problems that keep them from being loaded.
pub fn load_set(settings: &Settings, service: &Service) -> Result<PipelineSet, String> {
    let reread =
        Settings::load(settings.file.as_deref(), &settings.root).map_err(|p| errors_of(&p))?;
    if reread.state_dir != settings.state_dir
        || reread.warehouse_dir != settings.warehouse_dir
        || reread.admin != settings.admin
    {
        tracing::warn!(
            "state_dir, warehouse_dir and [admin] changed in the settings file; they apply at the next start"
        );
    }
    let schemas = Schemas::load(&reread.schemas_dir).map_err(|p| errors_of(&p))?;
    for warning in &schemas.warnings {
        tracing::warn!("{warning}");
    }
    let loaded = pipeline::load_all(&reread, &schemas);
    for warning in loaded.problems.iter().filter(|p| !p.is_error()) {
        tracing::warn!("{warning}");
    }
    if loaded.problems.iter().any(Problem::is_error) {
        return Err(errors_of(&loaded.problems));
    }
    Ok(PipelineSet::new(
        loaded.pipelines.into_iter().map(Arc::new),
        service.with_schemas(schemas),
    ))
}

/// The errors among `problems`, one line each.
pub fn errors_of(problems: &[Problem]) -> String {
    let errors: Vec<String> = (problems.iter())
        .filter(|p| p.is_error())
        .map(Problem::to_string)
        .collect();
    errors.join("; ")
}

/// Tells the webhook of a run that failed for good (an attempt that will be retried is not
/// news yet; the metrics count it). The ledger has the run's whole record.
fn alert(alerter: &Alerter, ledger: &Arc<Ledger>, ended: &Ended) {
    if ended.status != RunStatus::Failed || ended.retried {
        return;
    }
    let (alerter, ledger, run_id) = (alerter.clone(), ledger.clone(), ended.run_id.clone());
    tokio::spawn(async move {
        match blocking(move || ledger.run(&run_id)).await {
            Ok(Some(record)) => {
                alerter.run_ended(&record);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read a failed run for its alert"),
        }
    });
}

/// An ended run into the counters and the log.
fn count(metrics: &Metrics, ended: &Ended) {
    metrics.run_ended(&RunCount {
        pipeline: &ended.pipeline,
        status: ended.status.as_str(),
        elapsed: ended.elapsed,
        rows_written: ended.rows_written,
        rows_rejected: ended.rows_rejected,
        finished: Utc::now().timestamp_millis() as f64 / 1000.0,
        retried: ended.retried,
    });
    tracing::info!(
        pipeline = %ended.pipeline,
        run_id = %ended.run_id,
        trigger = ended.trigger.as_str(),
        status = %ended.status,
        elapsed_ms = ended.elapsed.as_millis() as u64,
        rows_written = ended.rows_written,
        "run ended"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "[source]\nkind = \"file\"\npath = \"a.csv\"\nformat = \"csv\"\n\
        [map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\nvalue = \"v\"\n";

    #[tokio::test]
    async fn a_reload_that_fails_check_keeps_the_running_set_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let pipelines = dir.path().join("pipelines");
        std::fs::create_dir_all(&pipelines).unwrap();
        std::fs::write(pipelines.join("a.csv"), "i,R,T,v\nx,0180,2024,1\n").unwrap();
        std::fs::write(pipelines.join("p.toml"), format!("id = \"p\"\n{PIPELINE}")).unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        let (daemon, _lock) = crate::serve::start(settings).await.unwrap();
        assert_eq!(daemon.pipelines().len(), 1);

        std::fs::write(
            pipelines.join("q.toml"),
            format!("id = \"q\"\nschedule = \"0 25 * * *\"\n{PIPELINE}"),
        )
        .unwrap();
        let refused = daemon.reload().await.unwrap_err();
        assert!(
            refused.contains("q.toml") && refused.contains("schedule"),
            "{refused}"
        );
        assert_eq!(daemon.config_problem(), Some(refused));
        let ids: Vec<String> = daemon.pipelines().iter().map(|p| p.id.clone()).collect();
        assert_eq!(ids, ["p"], "the old set stays");
        assert!(
            daemon
                .render_metrics()
                .lines()
                .any(|l| l == "indikator_config_ok 0")
        );

        std::fs::write(
            pipelines.join("q.toml"),
            format!("id = \"q\"\nschedule = \"0 5 * * *\"\n{PIPELINE}"),
        )
        .unwrap();
        assert_eq!(daemon.reload().await, Ok(2));
        assert_eq!(daemon.config_problem(), None);
        assert!(daemon.pipelines().get("q").unwrap().schedule.is_some());
        let run_id = daemon.trigger("q", Trigger::Api, false).await.unwrap();
        assert!(run_id.ends_with("-q"));
        assert!(matches!(
            daemon.trigger("nope", Trigger::Api, false).await,
            Err(TriggerError::Unknown(_))
        ));
        daemon
            .runner()
            .shutdown(std::time::Duration::from_secs(30))
            .await;
    }
}
