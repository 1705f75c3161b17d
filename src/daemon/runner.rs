//! The daemon's runs: a queue in front of a fixed number of slots, never two runs of one
//! pipeline at once, scheduled runs that failed transiently run again with backoff, a time limit
//! per run, and cancellation by operators or a shutdown.
//!
//! Owns: the `queued` rows (a run id is given out before the run has a slot), who is active per
//! pipeline, the slots, retries and timeouts, and how a stopped run ends (`cancelled`,
//! `interrupted`, or `failed` for a timeout).
//! Must not: know how a run works ([`Execute`] does it: the service in the daemon, a script in
//! tests) or when pipelines are due (the scheduler and the admin API decide).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::blocking::blocking;
use crate::ledger::{Ledger, LedgerError, RunStatus};
use crate::pipeline::run::{new_run_id, rfc3339};
use crate::pipeline::{Pipeline, RunOutcome, StopCause, Trigger};
use crate::service::{RunRequest, ServiceError};
use crate::warehouse::Warehouse;

/// Runs one request: [`crate::service::Service::run`] in the daemon.
pub type Execute = Arc<
    dyn Fn(Arc<Pipeline>, RunRequest) -> BoxFuture<'static, Result<RunOutcome, ServiceError>>
        + Send
        + Sync,
>;

/// Told of every run that ended (metrics, alerts): its id, pipeline and outcome.
pub type OnEnd = Arc<dyn Fn(&Ended) + Send + Sync>;

/// A run that ended, as the runner saw it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub run_id: String,
    pub pipeline: String,
    pub trigger: Trigger,
    pub status: RunStatus,
    /// From its slot to its end.
    pub elapsed: Duration,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub error: Option<String>,
    /// Whether another attempt follows (a retry is queued).
    pub retried: bool,
}

/// The first wait before a retry; each further retry waits twice as long.
pub const RETRY_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait before a retry.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Why a run was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(
        "pipeline `{pipeline}` already has run {run_id} {state}; wait for it to end or cancel it"
    )]
    Busy {
        pipeline: String,
        run_id: String,
        state: &'static str,
    },
    #[error("the daemon is shutting down and starts no new runs")]
    ShuttingDown,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// What became of a cancel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The run was told to stop (a queued one ends at once, a running one at its next stage).
    Stopping,
    /// No active run has that id (it ended, or never was).
    NotActive,
}

/// The run a pipeline has now.
#[derive(Debug, Clone)]
struct Active {
    run_id: String,
    cancel: CancellationToken,
    stop: StopCause,
    running: bool,
}

impl Active {
    fn new(run_id: String) -> Self {
        Self {
            run_id,
            cancel: CancellationToken::new(),
            stop: StopCause::default(),
            running: false,
        }
    }
}

/// Accepts, queues and runs the daemon's runs; cheap to clone.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    execute: Execute,
    on_end: OnEnd,
    ledger: Arc<Ledger>,
    warehouse: Warehouse,
    slots: Arc<Semaphore>,
    active: Mutex<HashMap<String, Active>>,
    /// Told when a pipeline leaves `active`, for [`Runner::shutdown`].
    left: Notify,
    /// Cancelled at shutdown: no new runs.
    closed: CancellationToken,
    backoff: Duration,
}

impl Runner {
    /// A runner of at most `max_concurrent` runs at once into `warehouse`.
    pub fn new(
        execute: Execute,
        on_end: OnEnd,
        ledger: Arc<Ledger>,
        warehouse: Warehouse,
        max_concurrent: usize,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                execute,
                on_end,
                ledger,
                warehouse,
                slots: Arc::new(Semaphore::new(max_concurrent)),
                active: Mutex::new(HashMap::new()),
                left: Notify::new(),
                closed: CancellationToken::new(),
                backoff: RETRY_BACKOFF,
            }),
        }
    }

    /// Accepts a run of `pipeline`: recorded `queued` and given its id at once, run when a slot
    /// is free. `Busy` while that pipeline has a run queued, running or waiting for a retry.
    pub async fn submit(
        &self,
        pipeline: Arc<Pipeline>,
        trigger: Trigger,
        force: bool,
    ) -> Result<String, SubmitError> {
        let active = self.reserve(&pipeline.id)?;
        let run_id = active.run_id.clone();
        let queued = {
            let (ledger, run, id) = (
                self.inner.ledger.clone(),
                run_id.clone(),
                pipeline.id.clone(),
            );
            blocking(move || ledger.queue_run(&run, &id, trigger.as_str(), &rfc3339(Utc::now())))
                .await
        };
        if let Err(error) = queued {
            self.leave(&pipeline.id, &run_id);
            return Err(error.into());
        }
        tokio::spawn(self.clone().drive(pipeline, trigger, force, active));
        Ok(run_id)
    }

    /// Takes `pipeline`'s place for a new run, or says who has it.
    fn reserve(&self, pipeline: &str) -> Result<Active, SubmitError> {
        if self.inner.closed.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let mut active = self.active();
        if let Some(held) = active.get(pipeline) {
            return Err(SubmitError::Busy {
                pipeline: pipeline.to_string(),
                run_id: held.run_id.clone(),
                state: if held.running { "running" } else { "queued" },
            });
        }
        let run = Active::new(new_run_id(Utc::now(), pipeline));
        active.insert(pipeline.to_string(), run.clone());
        Ok(run)
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.inner
            .active
            .lock()
            .expect("a panic while holding the runner's map is a bug")
    }

    /// Frees `pipeline`'s place, if `run_id` still holds it.
    fn leave(&self, pipeline: &str, run_id: &str) {
        let mut active = self.active();
        if active.get(pipeline).is_some_and(|a| a.run_id == run_id) {
            active.remove(pipeline);
        }
        drop(active);
        self.inner.left.notify_waiters();
    }

    /// Whether [`Self::shutdown`] has begun (no run is accepted any more).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// The run `pipeline` has now (queued, running or waiting for a retry), if any.
    pub fn active_run(&self, pipeline: &str) -> Option<String> {
        self.active().get(pipeline).map(|a| a.run_id.clone())
    }

    /// How many runs hold a slot or wait for one.
    pub fn load(&self) -> (usize, usize) {
        let active = self.active();
        let running = active.values().filter(|a| a.running).count();
        (running, active.len() - running)
    }

    /// Stops run `run_id` at an operator's request: it ends `cancelled`, committing nothing.
    pub fn cancel(&self, run_id: &str) -> Cancelled {
        let active = self.active();
        match active.values().find(|a| a.run_id == run_id) {
            Some(run) => {
                run.stop
                    .set(RunStatus::Cancelled, "cancelled by an operator");
                run.cancel.cancel();
                Cancelled::Stopping
            }
            None => Cancelled::NotActive,
        }
    }

    /// Starts no new runs, lets running ones end within `grace`, then cancels them (they end
    /// `interrupted`, committing nothing) and waits for them. Queued runs end `interrupted` at
    /// once.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closed.cancel();
        for run in self.active().values().filter(|a| !a.running) {
            run.cancel.cancel();
        }
        let all_left = async {
            loop {
                let left = self.inner.left.notified();
                if self.active().is_empty() {
                    return;
                }
                left.await;
            }
        };
        tokio::pin!(all_left);
        if tokio::time::timeout(grace, &mut all_left).await.is_err() {
            let running: Vec<String> = self.active().values().map(|a| a.run_id.clone()).collect();
            tracing::warn!(runs = ?running, grace_secs = grace.as_secs(), "grace period over: cancelling the runs still going; they commit nothing");
            for run in self.active().values() {
                run.cancel.cancel();
            }
            all_left.await;
        }
    }

    /// One accepted run, and its retries, from queue to end.
    async fn drive(self, pipeline: Arc<Pipeline>, trigger: Trigger, force: bool, mut run: Active) {
        let mut attempt = 0;
        loop {
            let outcome = self.attempt(&pipeline, trigger, force, &run).await;
            let retry = trigger == Trigger::Schedule
                && attempt < pipeline.policy.retries
                && outcome.transient
                && !self.inner.closed.is_cancelled();
            (self.inner.on_end)(&Ended {
                retried: retry,
                ..outcome.ended
            });
            if !retry {
                break;
            }
            attempt += 1;
            let backoff = self.backoff(attempt);
            tracing::warn!(pipeline = %pipeline.id, run_id = %run.run_id, attempt, of = pipeline.policy.retries, wait_secs = backoff.as_secs(), "run failed transiently; running it again after a wait");
            match self.requeue(&pipeline.id, trigger, &run.run_id).await {
                Some(next) => run = next,
                None => break,
            }
            let cancelled = tokio::select! {
                () = tokio::time::sleep(backoff) => false,
                () = run.cancel.cancelled() => true,
            };
            if cancelled {
                self.end_queued(&run).await;
                (self.inner.on_end)(&self.ended_in_queue(&pipeline.id, trigger, &run));
                break;
            }
        }
        self.leave(&pipeline.id, &run.run_id);
    }

    /// The wait before retry `attempt` (from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << (attempt - 1).min(10);
        (self.inner.backoff * factor).min(MAX_RETRY_BACKOFF)
    }

    /// Queues the retry of `previous` as a run of its own; `None` when the ledger refuses (said
    /// in the log: the retry is dropped, the failure stands).
    async fn requeue(&self, pipeline: &str, trigger: Trigger, previous: &str) -> Option<Active> {
        let mut run_id = new_run_id(Utc::now(), pipeline);
        // A retry at once after a quick failure may fall in the same millisecond.
        if run_id == previous {
            run_id.push_str("-retry");
        }
        let run = Active::new(run_id);
        let (ledger, id, run_id) = (
            self.inner.ledger.clone(),
            pipeline.to_string(),
            run.run_id.clone(),
        );
        let queued = blocking(move || {
            ledger.queue_run(&run_id, &id, trigger.as_str(), &rfc3339(Utc::now()))
        })
        .await;
        if let Err(error) = queued {
            tracing::error!(pipeline, %error, "cannot queue the retry; the failure stands");
            return None;
        }
        let mut active = self.active();
        match active.get_mut(pipeline) {
            Some(held) if held.run_id == previous => *held = run.clone(),
            _ => return None,
        }
        Some(run)
    }

    /// One attempt: a slot, the run within its time limit, its end.
    async fn attempt(
        &self,
        pipeline: &Arc<Pipeline>,
        trigger: Trigger,
        force: bool,
        run: &Active,
    ) -> Attempt {
        let slot = tokio::select! {
            slot = self.inner.slots.clone().acquire_owned() => slot.expect("the slots are never closed"),
            () = run.cancel.cancelled() => {
                self.end_queued(run).await;
                return Attempt { ended: self.ended_in_queue(&pipeline.id, trigger, run), transient: false };
            }
        };
        if let Some(held) = self.active().get_mut(&pipeline.id) {
            held.running = true;
        }
        let clock = tokio::time::Instant::now();
        let request = RunRequest {
            run_id: Some(run.run_id.clone()),
            trigger,
            force,
            warehouse: self.inner.warehouse.clone(),
            cancel: run.cancel.clone(),
            stop: run.stop.clone(),
            progress: Arc::new(|_| {}),
        };
        let mut execution = (self.inner.execute)(pipeline.clone(), request);
        let mut timed_out = false;
        let result = match pipeline.policy.timeout {
            None => execution.await,
            Some(limit) => tokio::select! {
                result = &mut execution => result,
                () = tokio::time::sleep(limit) => {
                    timed_out = true;
                    run.stop.set(RunStatus::Failed, format!("timed out after {} s (timeout_secs)", limit.as_secs()));
                    run.cancel.cancel();
                    execution.await
                }
            },
        };
        drop(slot);
        let elapsed = clock.elapsed();
        match result {
            Ok(outcome) => Attempt {
                transient: outcome.transient || (timed_out && outcome.status == RunStatus::Failed),
                ended: Ended {
                    run_id: outcome.run_id,
                    pipeline: outcome.pipeline,
                    trigger,
                    status: outcome.status,
                    elapsed,
                    rows_written: outcome.rows_written,
                    rows_rejected: outcome.rows_rejected,
                    error: outcome.error,
                    retried: false,
                },
            },
            Err(error) => {
                // The run never started (another process holds the pipeline, or the ledger
                // failed): its queued row ends failed with the reason. A held pipeline is free
                // again soon, so that is worth a retry.
                let held = matches!(error, ServiceError::Ledger(LedgerError::Held { .. }));
                let message = crate::problem::error_chain(&error);
                tracing::error!(pipeline = %pipeline.id, run_id = %run.run_id, error = %message, "run did not start");
                let (ledger, run_id, why) = (
                    self.inner.ledger.clone(),
                    run.run_id.clone(),
                    message.clone(),
                );
                let ended = blocking(move || {
                    ledger.end_queued(&run_id, RunStatus::Failed, &rfc3339(Utc::now()), &why)
                })
                .await;
                if let Err(error) = ended {
                    tracing::error!(run_id = %run.run_id, %error, "cannot record the run's end");
                }
                Attempt {
                    transient: held,
                    ended: Ended {
                        run_id: run.run_id.clone(),
                        pipeline: pipeline.id.clone(),
                        trigger,
                        status: RunStatus::Failed,
                        elapsed,
                        rows_written: 0,
                        rows_rejected: 0,
                        error: Some(message),
                        retried: false,
                    },
                }
            }
        }
    }

    /// Ends `run`, stopped before it had a slot, as its stop cause says.
    async fn end_queued(&self, run: &Active) {
        let (status, why) = run.stop.get();
        let (ledger, run_id, why) = (
            self.inner.ledger.clone(),
            run.run_id.clone(),
            why.to_string(),
        );
        let ended =
            blocking(move || ledger.end_queued(&run_id, status, &rfc3339(Utc::now()), &why)).await;
        if let Err(error) = ended {
            tracing::error!(run_id = %run.run_id, %error, "cannot record the end of a queued run");
        }
    }

    fn ended_in_queue(&self, pipeline: &str, trigger: Trigger, run: &Active) -> Ended {
        let (status, why) = run.stop.get();
        Ended {
            run_id: run.run_id.clone(),
            pipeline: pipeline.to_string(),
            trigger,
            status,
            elapsed: Duration::ZERO,
            rows_written: 0,
            rows_rejected: 0,
            error: Some(why.to_string()),
            retried: false,
        }
    }
}

/// One attempt's end, and whether a retry may help.
struct Attempt {
    ended: Ended,
    transient: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::scheduler::Clock;
    use crate::daemon::testing::{Act, Script, pipeline};

    struct Bed {
        script: Arc<Script>,
        runner: Runner,
        ledger: Arc<Ledger>,
        _dir: tempfile::TempDir,
    }

    fn bed(slots: usize, default: Act) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(dir.path()).unwrap());
        let clock = Clock::starting_at(Utc::now());
        let script = Script::new(ledger.clone(), clock, default);
        let runner = script.runner(slots, &Warehouse::new(dir.path().join("w")));
        Bed {
            script,
            runner,
            ledger,
            _dir: dir,
        }
    }

    /// Waits (in tokio time) until `pipeline` has no active run.
    async fn settled(runner: &Runner, pipeline: &str) {
        for _ in 0..100_000 {
            if runner.active_run(pipeline).is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{pipeline} never settled");
    }

    fn status(ledger: &Ledger, run_id: &str) -> RunStatus {
        ledger.status(run_id).unwrap().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_the_slots_run_at_once_and_each_pipeline_once() {
        let bed = bed(2, Act::succeeds_after(10));
        let ids: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        for id in &ids {
            let run_id = bed
                .runner
                .submit(pipeline(id, ""), Trigger::Api, false)
                .await
                .unwrap();
            assert_eq!(status(&bed.ledger, &run_id), RunStatus::Queued);
        }
        // A second run of a pipeline is refused while its first is queued.
        let busy = bed
            .runner
            .submit(pipeline("p4", ""), Trigger::Api, false)
            .await;
        assert!(
            matches!(
                busy,
                Err(SubmitError::Busy {
                    state: "queued",
                    ..
                })
            ),
            "{busy:?}"
        );
        for id in &ids {
            settled(&bed.runner, id).await;
        }
        assert_eq!(bed.script.max_running(), 2);
        let calls = bed.script.calls();
        assert_eq!(calls.len(), 5);
        assert!(
            calls
                .iter()
                .all(|c| c.ended.unwrap().1 == RunStatus::Succeeded)
        );
        // Five runs of ten seconds through two slots: three rounds.
        let first = calls.iter().map(|c| c.started).min().unwrap();
        let last = calls.iter().map(|c| c.ended.unwrap().0).max().unwrap();
        assert_eq!((last - first).num_seconds(), 30);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_scheduled_failure_is_retried_with_growing_waits() {
        let bed = bed(2, Act::succeeds_after(1));
        let p = pipeline("p", "retries = 3");
        bed.script.then(
            "p",
            &[
                Act::fails_transiently_after(1),
                Act::fails_transiently_after(1),
            ],
        );
        bed.runner
            .submit(p.clone(), Trigger::Schedule, false)
            .await
            .unwrap();
        settled(&bed.runner, "p").await;
        let calls = bed.script.calls_of("p");
        let statuses: Vec<RunStatus> = calls.iter().map(|c| c.ended.unwrap().1).collect();
        assert_eq!(
            statuses,
            [RunStatus::Failed, RunStatus::Failed, RunStatus::Succeeded]
        );
        // Each retry is a run of its own, after 30 s, then 60 s.
        let gaps: Vec<i64> = (calls.windows(2))
            .map(|w| (w[1].started - w[0].ended.unwrap().0).num_seconds())
            .collect();
        assert_eq!(gaps, [30, 60]);
        let ids: std::collections::BTreeSet<_> = calls.iter().map(|c| &c.run_id).collect();
        assert_eq!(ids.len(), 3);
        let retried: Vec<bool> = bed.script.ends().iter().map(|e| e.retried).collect();
        assert_eq!(retried, [true, true, false]);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_limit_and_spare_other_failures_and_manual_runs() {
        let bed = bed(2, Act::fails_transiently_after(1));
        bed.runner
            .submit(pipeline("p", "retries = 2"), Trigger::Schedule, false)
            .await
            .unwrap();
        settled(&bed.runner, "p").await;
        assert_eq!(bed.script.calls_of("p").len(), 3, "the run and two retries");
        // A failure a retry cannot mend (validation) is not retried.
        bed.script.then(
            "q",
            &[Act {
                transient: false,
                ..Act::fails_transiently_after(1)
            }],
        );
        bed.runner
            .submit(pipeline("q", ""), Trigger::Schedule, false)
            .await
            .unwrap();
        settled(&bed.runner, "q").await;
        assert_eq!(bed.script.calls_of("q").len(), 1);
        // An operator's run shows its failure at once: the operator is there to decide.
        bed.runner
            .submit(pipeline("r", ""), Trigger::Api, false)
            .await
            .unwrap();
        settled(&bed.runner, "r").await;
        assert_eq!(bed.script.calls_of("r").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_over_its_time_limit_is_cancelled_and_fails() {
        let bed = bed(2, Act::succeeds_after(100));
        let p = pipeline("p", "timeout_secs = 10\nretries = 0");
        let run_id = bed
            .runner
            .submit(p, Trigger::Schedule, false)
            .await
            .unwrap();
        settled(&bed.runner, "p").await;
        let call = &bed.script.calls_of("p")[0];
        assert_eq!((call.ended.unwrap().0 - call.started).num_seconds(), 10);
        let run = bed.ledger.run(&run_id).unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.error.unwrap().contains("timed out after 10 s"));
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_runs_end_cancelled_queued_or_running() {
        let bed = bed(1, Act::succeeds_after(60));
        let running = bed
            .runner
            .submit(pipeline("a", ""), Trigger::Api, false)
            .await
            .unwrap();
        let queued = bed
            .runner
            .submit(pipeline("b", ""), Trigger::Api, false)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(status(&bed.ledger, &queued), RunStatus::Queued);
        assert_eq!(bed.runner.cancel(&queued), Cancelled::Stopping);
        assert_eq!(bed.runner.cancel(&running), Cancelled::Stopping);
        settled(&bed.runner, "a").await;
        settled(&bed.runner, "b").await;
        assert_eq!(status(&bed.ledger, &running), RunStatus::Cancelled);
        assert_eq!(status(&bed.ledger, &queued), RunStatus::Cancelled);
        assert_eq!(
            bed.script.calls_of("b").len(),
            0,
            "a cancelled queued run never starts"
        );
        assert_eq!(bed.runner.cancel(&running), Cancelled::NotActive);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_running_runs_the_grace_period_then_interrupts_them() {
        let bed = bed(1, Act::succeeds_after(5));
        bed.script.then("slow", &[Act::succeeds_after(600)]);
        let quick = bed
            .runner
            .submit(pipeline("quick", ""), Trigger::Api, false)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let waiting = bed
            .runner
            .submit(pipeline("slow", ""), Trigger::Api, false)
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        bed.runner.shutdown(Duration::from_secs(30)).await;
        // The quick run finished within the grace; the queued one never started.
        assert_eq!(status(&bed.ledger, &quick), RunStatus::Succeeded);
        assert_eq!(status(&bed.ledger, &waiting), RunStatus::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(30));
        let refused = bed
            .runner
            .submit(pipeline("quick", ""), Trigger::Api, false)
            .await;
        assert!(matches!(refused, Err(SubmitError::ShuttingDown)));

        let bed = self::bed(1, Act::succeeds_after(600));
        let slow = bed
            .runner
            .submit(pipeline("slow", ""), Trigger::Api, false)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let started = tokio::time::Instant::now();
        bed.runner.shutdown(Duration::from_secs(30)).await;
        assert_eq!(started.elapsed().as_secs(), 30);
        assert_eq!(status(&bed.ledger, &slow), RunStatus::Interrupted);
    }
}
