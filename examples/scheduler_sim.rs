//! Scheduler lag over simulated hours, for `bench/serve.sh`: the daemon of a project (its real
//! runner and runs) with the scheduler on a clock that starts at a fixed instant and runs with
//! tokio's paused clock, so an hour of per-second and per-minute schedules takes only the time
//! its runs take. Prints the fires per pipeline against the slots and the lag histogram the
//! daemon itself keeps (`indikator_scheduler_lag_seconds`).
//!
//! `cargo run --release --example scheduler_sim -- PROJECT_DIR [HOURS]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indikator::config::Settings;
use indikator::daemon::scheduler::Clock;
use tokio_util::sync::CancellationToken;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(args.first().expect("PROJECT_DIR"));
    let hours: u64 = args.get(1).and_then(|h| h.parse().ok()).unwrap_or(1);
    let settings = Settings::load(None, &root).unwrap_or_else(|problems| {
        panic!("{problems:?}");
    });
    let origin: DateTime<Utc> = "2026-11-23T00:00:00Z".parse().expect("an instant");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    let real = Instant::now();
    let (daemon, _lock) = runtime.block_on(async {
        let (daemon, lock) = indikator::serve::start(settings)
            .await
            .expect("the daemon starts");
        let stop = CancellationToken::new();
        let scheduler = tokio::spawn(
            daemon
                .scheduler(Clock::starting_at(origin))
                .run(false, stop.clone()),
        );
        tokio::time::sleep(Duration::from_secs(hours * 3600)).await;
        stop.cancel();
        scheduler.await.expect("the scheduler ends");
        daemon.runner().shutdown(Duration::from_secs(60)).await;
        (daemon, lock)
    });
    let ledger = rusqlite::Connection::open(daemon.settings().state_dir.join("ledger.sqlite"))
        .expect("the ledger");
    let mut fires = ledger
        .prepare("SELECT pipeline, count(*), count(run_id) FROM fires GROUP BY 1 ORDER BY 1")
        .expect("a query");
    let rows: Vec<(String, i64, i64)> = fires
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("fires")
        .map(Result::unwrap)
        .collect();
    println!(
        "simulated {hours} h in {:.1} s real",
        real.elapsed().as_secs_f64()
    );
    for pipeline in daemon.pipelines().iter() {
        let schedule = pipeline
            .schedule
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let end = origin + chrono::Duration::seconds(hours as i64 * 3600);
        let (mut slots, mut at) = (0i64, origin);
        if let Some(s) = &pipeline.schedule {
            while let Some(next) = s.next_after(at).filter(|t| *t <= end) {
                slots += 1;
                at = next;
            }
        }
        let (fired, with_run) = (rows.iter())
            .find(|(id, ..)| *id == pipeline.id)
            .map_or((0, 0), |(_, f, r)| (*f, *r));
        println!(
            "fires {:<28} {schedule:<16} slots {slots:>6} fired {fired:>6} ran {with_run:>6}",
            pipeline.id
        );
    }
    for line in daemon.render_metrics().lines() {
        if line.starts_with("indikator_scheduler_lag_seconds") {
            println!("{line}");
        }
    }
}
