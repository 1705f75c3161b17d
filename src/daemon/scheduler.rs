//! When scheduled pipelines run: each pipeline's next fire time, one catch-up run at start-up for
//! a pipeline that missed fire times while the daemon was down, and every fire claimed in the
//! ledger first, so that no slot fires twice across restarts.
//!
//! Owns: the fire loop, the next fire of each pipeline (from max(now, its last fire), so a late
//! wake-up fires once, not once per missed slot), catch-up, jitter, and the lag of each fire.
//! Must not: run anything itself (the [`Runner`] does) or read crontabs (`schedule.rs` does).
//!
//! Time comes from a [`Clock`]: the wall clock in the daemon, tokio's clock started at a given
//! instant in tests (paused, it jumps to the next timer), so that a night of fires takes no time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::PipelineSet;
use super::runner::{Runner, SubmitError};
use crate::blocking::blocking;
use crate::ledger::Ledger;
use crate::pipeline::run::rfc3339;
use crate::pipeline::{Pipeline, Trigger};
use crate::schedule::Schedule;

/// The longest the loop sleeps before looking at the clock again: a wall clock set forward (or
/// a suspended machine) is noticed within this, at the cost of one wake-up a minute.
const MAX_NAP: Duration = Duration::from_secs(60);

/// Told of each fire's lag: how long after its slot it fired.
pub type OnFire = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// Where the scheduler reads the time.
#[derive(Debug, Clone)]
pub struct Clock {
    virtual_origin: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    /// The system's clock.
    pub fn wall() -> Self {
        Self {
            virtual_origin: None,
        }
    }

    /// A clock that reads `origin` now and runs with tokio's clock (paused in tests).
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        Self {
            virtual_origin: Some((origin, tokio::time::Instant::now())),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.virtual_origin {
            None => Utc::now(),
            Some((origin, at)) => {
                let elapsed = chrono::Duration::from_std(at.elapsed()).unwrap_or_default();
                origin + elapsed
            }
        }
    }
}

/// Fires scheduled pipelines into a [`Runner`].
pub struct Scheduler {
    pub ledger: Arc<Ledger>,
    pub runner: Runner,
    pub clock: Clock,
    /// The loaded pipelines; a change (a reload) is seen at once.
    pub pipelines: watch::Receiver<Arc<PipelineSet>>,
    pub on_fire: OnFire,
}

impl Scheduler {
    /// Fires pipelines until `stop`; first, when `catch_up`, one run of each pipeline that
    /// missed a fire time since its last one.
    pub async fn run(mut self, catch_up: bool, stop: CancellationToken) {
        let mut next = self.plan(catch_up).await;
        loop {
            let now = self.clock.now();
            let due: Vec<(String, DateTime<Utc>)> = (next.iter())
                .filter(|(_, slot)| **slot <= now)
                .map(|(id, slot)| (id.clone(), *slot))
                .collect();
            for (id, slot) in due {
                let set = self.pipelines.borrow().clone();
                let Some(pipeline) = set.get(&id) else {
                    next.remove(&id);
                    continue;
                };
                self.fire(pipeline.clone(), slot).await;
                let schedule = pipeline
                    .schedule
                    .as_ref()
                    .expect("only scheduled pipelines");
                match schedule.next_after(now.max(slot)) {
                    Some(following) => next.insert(id, following),
                    None => next.remove(&id),
                };
            }
            let now = self.clock.now();
            let nap = (next.values().min())
                .map(|slot| (*slot - now).to_std().unwrap_or_default())
                .unwrap_or(MAX_NAP)
                .min(MAX_NAP);
            tokio::select! {
                () = tokio::time::sleep(nap) => {}
                changed = self.pipelines.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    next = self.plan(false).await;
                }
                () = stop.cancelled() => return,
            }
        }
    }

    /// The next fire of every scheduled pipeline, after max(now, its last fire); with
    /// `catch_up`, a pipeline that missed slots meanwhile fires its latest missed one first.
    async fn plan(&self, catch_up: bool) -> HashMap<String, DateTime<Utc>> {
        let set = self.pipelines.borrow().clone();
        let mut next = HashMap::new();
        for pipeline in set.scheduled() {
            let schedule = pipeline.schedule.as_ref().expect("scheduled");
            let last = match self.last_fire(&pipeline.id).await {
                Ok(last) => last,
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.id, %error, "cannot read the last fire time; the pipeline is not scheduled until the next reload");
                    continue;
                }
            };
            let now = self.clock.now();
            if catch_up
                && let Some(last) = last
                && let Some(missed) = latest_slot(schedule, last, now)
            {
                tracing::info!(pipeline = %pipeline.id, slot = %rfc3339(missed), "catching up: the daemon was down at a fire time");
                self.fire(pipeline.clone(), missed).await;
            }
            let from = last.map_or(now, |last| last.max(now));
            if let Some(slot) = schedule.next_after(from) {
                next.insert(pipeline.id.clone(), slot);
            }
        }
        next
    }

    async fn last_fire(
        &self,
        pipeline: &str,
    ) -> Result<Option<DateTime<Utc>>, crate::ledger::LedgerError> {
        let (ledger, id) = (self.ledger.clone(), pipeline.to_string());
        let last = blocking(move || ledger.last_fire(&id)).await?;
        Ok(last.and_then(|text| DateTime::parse_from_rfc3339(&text).ok().map(|t| t.to_utc())))
    }

    /// Claims `slot` of `pipeline` in the ledger and, when it had not fired yet, submits a run
    /// after the pipeline's jitter (without holding up the loop).
    async fn fire(&self, pipeline: Arc<Pipeline>, slot: DateTime<Utc>) {
        let now = self.clock.now();
        let (ledger, id, scheduled) = (self.ledger.clone(), pipeline.id.clone(), rfc3339(slot));
        let claimed = {
            let scheduled = scheduled.clone();
            blocking(move || ledger.claim_fire(&id, &scheduled, &rfc3339(now))).await
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(pipeline = %pipeline.id, %error, "cannot record a fire time; the slot is skipped so that it cannot fire twice");
                return;
            }
        }
        (self.on_fire)(&pipeline.id, (now - slot).to_std().unwrap_or_default());
        let (runner, ledger) = (self.runner.clone(), self.ledger.clone());
        let delay = jitter(&pipeline.id, &scheduled, pipeline.policy.jitter);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            match runner
                .submit(pipeline.clone(), Trigger::Schedule, false)
                .await
            {
                Ok(run_id) => {
                    let id = pipeline.id.clone();
                    let recorded =
                        blocking(move || ledger.fire_started(&id, &scheduled, &run_id)).await;
                    if let Err(error) = recorded {
                        tracing::warn!(pipeline = %pipeline.id, %error, "cannot name the run of a fire time");
                    }
                }
                Err(error @ SubmitError::Busy { .. }) => {
                    tracing::warn!(pipeline = %pipeline.id, slot = %scheduled, %error, "fire time skipped: the pipeline's last run has not ended");
                }
                Err(SubmitError::ShuttingDown) => {}
                Err(error) => {
                    tracing::error!(pipeline = %pipeline.id, %error, "cannot queue a scheduled run");
                }
            }
        });
    }
}

/// The delay of `pipeline`'s fire at `slot`: spread evenly over `jitter` by a hash of both, so
/// that pipelines on one minute part, and a pipeline keeps no fixed offset.
fn jitter(pipeline: &str, slot: &str, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return Duration::ZERO;
    }
    let hash = blake3::hash(format!("{pipeline}\n{slot}").as_bytes());
    let spread = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
    Duration::from_millis(spread % (jitter.as_millis() as u64 + 1))
}

/// The latest slot of `schedule` after `last` and at or before `now` (the slot a catch-up
/// fires), found within the last hour, day, month or year before walking from `last`, so that
/// a long downtime of a per-second schedule is not walked slot by slot.
fn latest_slot(
    schedule: &Schedule,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    const HOUR: i64 = 3600;
    for window in [HOUR, 24 * HOUR, 32 * 24 * HOUR, 367 * 24 * HOUR] {
        let from = last.max(now - chrono::Duration::seconds(window));
        let mut found = None;
        let mut at = from;
        while let Some(slot) = schedule.next_after(at).filter(|slot| *slot <= now) {
            found = Some(slot);
            at = slot;
        }
        if found.is_some() || from == last {
            return found;
        }
    }
    // Nothing in the last year: walk from the last fire (a yearly schedule at most).
    let mut found = None;
    let mut at = last;
    while let Some(slot) = schedule.next_after(at).filter(|slot| *slot <= now) {
        found = Some(slot);
        at = slot;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn the_catch_up_slot_is_the_latest_missed_one() {
        let daily = Schedule::parse("30 2 * * *", None).unwrap();
        let last = utc("2026-11-20T01:30:00Z");
        let now = utc("2026-11-23T12:00:00Z");
        assert_eq!(
            latest_slot(&daily, last, now),
            Some(utc("2026-11-23T01:30:00Z"))
        );
        assert_eq!(latest_slot(&daily, utc("2026-11-23T01:30:00Z"), now), None);
        // A month down on a per-second schedule: found in the last hour, not walked.
        let secondly = Schedule::parse("* * * * * *", Some("UTC")).unwrap();
        assert_eq!(
            latest_slot(&secondly, utc("2026-10-01T00:00:00Z"), now),
            Some(now)
        );
        let yearly = Schedule::parse("0 0 1 1 *", Some("UTC")).unwrap();
        assert_eq!(
            latest_slot(&yearly, utc("2024-06-01T00:00:00Z"), now),
            Some(utc("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn jitter_stays_within_its_bound_and_spreads() {
        let bound = Duration::from_secs(60);
        let delays: Vec<Duration> = (0..50)
            .map(|i| jitter(&format!("p{i}"), "2026-11-23T01:30:00.000Z", bound))
            .collect();
        assert!(delays.iter().all(|d| *d <= bound));
        let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
        assert!(distinct.len() > 40, "{delays:?}");
        assert_eq!(jitter("p", "x", Duration::ZERO), Duration::ZERO);
    }
}
