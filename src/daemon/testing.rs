//! Test support for the runner and the scheduler: checked pipelines from a few keys, and a
//! scripted [`Execute`] that records its runs in a real ledger, takes tokio time (paused in the
//! tests, so an hour takes none) and ends as told.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::runner::{Ended, Execute, OnEnd, Runner};
use super::scheduler::Clock;
use crate::config::Settings;
use crate::ledger::{Ledger, RunEnd, RunStatus};
use crate::pipeline::run::rfc3339;
use crate::pipeline::{Pipeline, RunOutcome, check_file};
use crate::rejects::Report;
use crate::schemas::Schemas;
use crate::warehouse::Warehouse;

/// A checked file pipeline `id` with `keys` (top-level TOML lines: `schedule`, `retries`, …).
pub fn pipeline(id: &str, keys: &str) -> Arc<Pipeline> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{id}.toml"));
    std::fs::write(dir.path().join("a.csv"), "i,R,T,v\n").unwrap();
    std::fs::write(
        &path,
        format!(
            "id = \"{id}\"\n{keys}\n[source]\nkind = \"file\"\npath = \"a.csv\"\nformat = \"csv\"\n\
             [map]\nindicator = \"i\"\narea = \"R\"\nperiod = \"T\"\nunit = \"count\"\n"
        ),
    )
    .unwrap();
    let settings = Settings::load(None, dir.path()).unwrap();
    Arc::new(check_file(&path, &settings, &Schemas::default()).unwrap().0)
}

/// What one scripted run does.
#[derive(Debug, Clone, Copy)]
pub struct Act {
    pub takes: Duration,
    pub status: RunStatus,
    pub transient: bool,
}

impl Act {
    pub fn succeeds_after(secs: u64) -> Self {
        Self {
            takes: Duration::from_secs(secs),
            status: RunStatus::Succeeded,
            transient: false,
        }
    }

    pub fn fails_transiently_after(secs: u64) -> Self {
        Self {
            status: RunStatus::Failed,
            transient: true,
            ..Self::succeeds_after(secs)
        }
    }
}

/// A run the script was asked for.
#[derive(Debug, Clone)]
pub struct Call {
    pub pipeline: String,
    pub run_id: String,
    pub trigger: &'static str,
    /// By the script's clock.
    pub started: DateTime<Utc>,
    pub ended: Option<(DateTime<Utc>, RunStatus)>,
}

/// Runs as scripted per pipeline (then `default`), recording each.
pub struct Script {
    acts: Mutex<HashMap<String, VecDeque<Act>>>,
    default: Act,
    clock: Clock,
    ledger: Arc<Ledger>,
    calls: Mutex<Vec<Call>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    ends: Mutex<Vec<Ended>>,
}

impl Script {
    pub fn new(ledger: Arc<Ledger>, clock: Clock, default: Act) -> Arc<Self> {
        Arc::new(Self {
            acts: Mutex::default(),
            default,
            clock,
            ledger,
            calls: Mutex::default(),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            ends: Mutex::default(),
        })
    }

    /// The next runs of `pipeline` do `acts`, in order.
    pub fn then(&self, pipeline: &str, acts: &[Act]) {
        let mut all = self.acts.lock().unwrap();
        all.entry(pipeline.to_string()).or_default().extend(acts);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls of `pipeline`.
    pub fn calls_of(&self, pipeline: &str) -> Vec<Call> {
        let calls = self.calls();
        calls
            .into_iter()
            .filter(|c| c.pipeline == pipeline)
            .collect()
    }

    /// The most runs that were going at once.
    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }

    /// What the runner told its `on_end` of.
    pub fn ends(&self) -> Vec<Ended> {
        self.ends.lock().unwrap().clone()
    }

    /// A runner of at most `slots` runs at once through this script.
    pub fn runner(self: &Arc<Self>, slots: usize, warehouse: &Warehouse) -> Runner {
        let script = self.clone();
        let on_end: OnEnd = Arc::new(move |ended| script.ends.lock().unwrap().push(ended.clone()));
        Runner::new(
            self.execute(),
            on_end,
            self.ledger.clone(),
            warehouse.clone(),
            slots,
        )
    }

    fn execute(self: &Arc<Self>) -> Execute {
        let script = self.clone();
        Arc::new(move |pipeline, request| {
            let script = script.clone();
            Box::pin(async move {
                let run_id = request.run_id.clone().expect("the runner names its runs");
                let act = (script.acts.lock().unwrap())
                    .get_mut(&pipeline.id)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or(script.default);
                let started = script.clock.now();
                let index = {
                    let mut calls = script.calls.lock().unwrap();
                    calls.push(Call {
                        pipeline: pipeline.id.clone(),
                        run_id: run_id.clone(),
                        trigger: request.trigger.as_str(),
                        started,
                        ended: None,
                    });
                    calls.len() - 1
                };
                script
                    .ledger
                    .start_run(
                        &run_id,
                        &pipeline.id,
                        request.trigger.as_str(),
                        &rfc3339(started),
                        "w",
                    )
                    .unwrap();
                let now_running = script.running.fetch_add(1, Ordering::SeqCst) + 1;
                script.max_running.fetch_max(now_running, Ordering::SeqCst);
                let stopped = tokio::select! {
                    () = tokio::time::sleep(act.takes) => false,
                    () = request.cancel.cancelled() => true,
                };
                script.running.fetch_sub(1, Ordering::SeqCst);
                let (status, error) = if stopped {
                    let (status, why) = request.stop.get();
                    (status, Some(why.to_string()))
                } else {
                    (
                        act.status,
                        (act.status == RunStatus::Failed).then(|| "scripted".to_string()),
                    )
                };
                let finished = script.clock.now();
                script.calls.lock().unwrap()[index].ended = Some((finished, status));
                let end = RunEnd {
                    status,
                    finished: rfc3339(finished),
                    rows_read: 1,
                    rows_written: 1,
                    rows_rejected: 0,
                    content_hash: None,
                    reason: None,
                    error: error.clone(),
                    report: None,
                };
                script.ledger.finish_run(&run_id, &end, None).unwrap();
                Ok(RunOutcome {
                    run_id,
                    pipeline: pipeline.id.clone(),
                    status,
                    rows_read: 1,
                    rows_written: 1,
                    rows_rejected: 0,
                    report: Report::default(),
                    uncatalogued: Default::default(),
                    years: Vec::new(),
                    rejects_file: None,
                    elapsed_ms: 0,
                    error,
                    reason: None,
                    notices: Vec::new(),
                    transient: act.transient && !stopped,
                })
            })
        })
    }
}
