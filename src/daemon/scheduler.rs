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

/// Told of each fire's lag: how long after its slot (and its jitter) it fired.
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
                self.fire(pipeline.clone(), slot);
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
                self.fire(pipeline.clone(), missed);
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

    /// After the pipeline's jitter (without holding up the loop), claims `slot` of `pipeline`
    /// in the ledger and, when it had not fired yet, submits a run. Claimed only then: a daemon
    /// stopped during the jitter leaves the slot to the next start's catch-up.
    fn fire(&self, pipeline: Arc<Pipeline>, slot: DateTime<Utc>) {
        let (runner, ledger, clock) =
            (self.runner.clone(), self.ledger.clone(), self.clock.clone());
        let on_fire = self.on_fire.clone();
        let scheduled = rfc3339(slot);
        let delay = jitter(&pipeline.id, &scheduled, pipeline.policy.jitter);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if runner.is_closed() {
                return;
            }
            let now = clock.now();
            let claimed = {
                let (ledger, id, scheduled) =
                    (ledger.clone(), pipeline.id.clone(), scheduled.clone());
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
            let late = (now - slot).to_std().unwrap_or_default();
            on_fire(&pipeline.id, late.saturating_sub(delay));
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

#[cfg(test)]
mod fire_tests {
    use super::*;
    use crate::config::Settings;
    use crate::daemon::testing::{Act, Script, pipeline};
    use crate::schemas::Schemas;
    use crate::service::Service;
    use crate::warehouse::Warehouse;
    use chrono::TimeZone;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    /// Scheduled pipelines over a real ledger, run by a script; each scheduler run a "process".
    struct Bed {
        ledger: Arc<Ledger>,
        set: watch::Sender<Arc<PipelineSet>>,
        service: Service,
        _dir: tempfile::TempDir,
    }

    impl Bed {
        fn new(pipelines: Vec<Arc<Pipeline>>) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let settings = Settings::load(None, dir.path()).unwrap();
            let service = Service::open(settings, Schemas::default()).unwrap();
            let (set, _) = watch::channel(Arc::new(PipelineSet::new(pipelines, service.clone())));
            Self {
                ledger: service.ledger().clone(),
                set,
                service,
                _dir: dir,
            }
        }

        /// Runs a scheduler (a daemon's life) from `start` for `life`; what its script ran.
        async fn live(
            &self,
            start: DateTime<Utc>,
            life: Duration,
            catch_up: bool,
            slots: usize,
            act: Act,
        ) -> Arc<Script> {
            let clock = Clock::starting_at(start);
            let script = Script::new(self.ledger.clone(), clock.clone(), act);
            let runner = script.runner(slots, &Warehouse::new(self._dir.path().join("w")));
            let scheduler = Scheduler {
                ledger: self.ledger.clone(),
                runner: runner.clone(),
                clock,
                pipelines: self.set.subscribe(),
                on_fire: Arc::new(|_, _| {}),
            };
            let stop = CancellationToken::new();
            let task = tokio::spawn(scheduler.run(catch_up, stop.clone()));
            tokio::time::sleep(life).await;
            stop.cancel();
            task.await.unwrap();
            runner.shutdown(Duration::from_secs(3600)).await;
            let _ = &self.service;
            script
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn local_dates(script: &Script) -> Vec<String> {
        let zone = chrono_tz::Europe::Stockholm;
        (script.calls().iter())
            .map(|c| {
                c.started
                    .with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_0230_job_runs_once_on_both_dst_nights() {
        let bed = Bed::new(vec![pipeline("p", "schedule = \"30 2 * * *\"")]);
        let spring = bed
            .live(
                utc("2026-03-28T12:00:00Z"),
                48 * HOUR,
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        let nights = local_dates(&spring);
        assert_eq!(nights.len(), 2, "{nights:?}");
        assert_eq!(
            nights
                .iter()
                .filter(|d| d.starts_with("2026-03-29"))
                .count(),
            1,
            "{nights:?}"
        );
        let bed = Bed::new(vec![pipeline("p", "schedule = \"30 2 * * *\"")]);
        let autumn = bed
            .live(
                utc("2026-10-24T12:00:00Z"),
                48 * HOUR,
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        assert_eq!(
            local_dates(&autumn),
            ["2026-10-25 02:30", "2026-10-26 02:30"],
            "02:30 of the repeated hour fires once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_inside_the_repeated_hour_does_not_fire_again() {
        let bed = Bed::new(vec![pipeline("p", "schedule = \"30 2 * * *\"")]);
        let first = bed
            .live(
                utc("2026-10-25T00:00:00Z"),
                HOUR,
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        assert_eq!(local_dates(&first), ["2026-10-25 02:30"]);
        // Back at 02:20 and at 02:40 of the second (CET) pass through the hour.
        for restart in ["2026-10-25T01:20:00Z", "2026-10-25T01:40:00Z"] {
            let again = bed
                .live(utc(restart), 20 * HOUR, true, 2, Act::succeeds_after(1))
                .await;
            assert!(
                again.calls().is_empty(),
                "{restart}: {:?}",
                local_dates(&again)
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn downtime_brings_one_catch_up_run_not_one_per_missed_slot() {
        let bed = Bed::new(vec![pipeline(
            "p",
            "schedule = \"0 * * * *\"\ntimezone = \"UTC\"",
        )]);
        let first = bed
            .live(
                utc("2026-11-23T09:30:00Z"),
                HOUR,
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        assert_eq!(first.calls().len(), 1);
        // Down from 10:30 to 15:10: the 11:00 … 15:00 slots were missed.
        let back = utc("2026-11-23T15:10:00Z");
        let second = bed
            .live(
                back,
                Duration::from_secs(40 * 60),
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        let calls = second.calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert!((calls[0].started - back).num_seconds() < 1);
        assert_eq!(calls[0].trigger, "schedule");
        assert_eq!(
            bed.ledger.last_fire("p").unwrap().as_deref(),
            Some("2026-11-23T15:00:00.000Z"),
            "the catch-up fired the latest missed slot"
        );
        // A start right after fires nothing: the catch-up is recorded.
        let third = bed
            .live(
                back + chrono::Duration::minutes(1),
                Duration::from_secs(40 * 60),
                true,
                2,
                Act::succeeds_after(1),
            )
            .await;
        assert!(third.calls().is_empty());
        // Off: missed slots are left missed.
        let bed = Bed::new(vec![pipeline(
            "p",
            "schedule = \"0 * * * *\"\ntimezone = \"UTC\"",
        )]);
        bed.live(
            utc("2026-11-23T09:30:00Z"),
            HOUR,
            false,
            2,
            Act::succeeds_after(1),
        )
        .await;
        let off = bed
            .live(
                back,
                Duration::from_secs(40 * 60),
                false,
                2,
                Act::succeeds_after(1),
            )
            .await;
        assert!(off.calls().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_pipeline_never_overlaps_itself_and_slots_limit_the_rest() {
        let every_ten = "schedule = \"*/10 * * * * *\"\ntimezone = \"UTC\"";
        let bed = Bed::new(vec![pipeline("slow", every_ten)]);
        let script = bed
            .live(
                utc("2026-11-23T10:00:00Z"),
                Duration::from_secs(120),
                false,
                2,
                Act::succeeds_after(25),
            )
            .await;
        let calls = script.calls();
        assert!(calls.len() >= 3 && calls.len() < 12, "{calls:?}");
        for pair in calls.windows(2) {
            assert!(pair[1].started >= pair[0].ended.unwrap().0, "{pair:?}");
        }
        let minutely = "schedule = \"0 * * * * *\"\ntimezone = \"UTC\"";
        let ids = ["a", "b", "c", "d"];
        let bed = Bed::new(ids.iter().map(|id| pipeline(id, minutely)).collect());
        let script = bed
            .live(
                utc("2026-11-23T10:00:30Z"),
                Duration::from_secs(60),
                false,
                2,
                Act::succeeds_after(20),
            )
            .await;
        assert_eq!(script.calls().len(), 4);
        assert_eq!(script.max_running(), 2);
        let slot = Utc.with_ymd_and_hms(2026, 11, 23, 10, 1, 0).unwrap();
        let ends: Vec<i64> = (script.calls().iter())
            .map(|c| (c.ended.unwrap().0 - slot).num_seconds())
            .collect();
        assert_eq!(ends.iter().filter(|s| **s == 20).count(), 2, "{ends:?}");
        assert_eq!(ends.iter().filter(|s| **s == 40).count(), 2, "{ends:?}");
    }
}
