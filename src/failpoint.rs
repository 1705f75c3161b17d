//! Crash points: `INDIKATOR_FAILPOINT` makes the process abort, or hold still, at a named step of
//! staging, commit, ledger or catalogs, so that tests can aim a crash at every step.
//!
//! Owns: the list of points ([`POINTS`]), reading and checking `INDIKATOR_FAILPOINT` once, and
//! counting passes of the armed point.
//! Must not: clean anything up on the way out (an abort stands in for `kill -9`), or decide where
//! the points sit (the code that passes one calls [`hit`]).
//!
//! `INDIKATOR_FAILPOINT=<point>[:<n>]` aborts the process the n-th time (default: the first) any
//! thread passes `<point>`: one line on stderr, then `std::process::abort()` — no destructors,
//! no flush, no removal of staging, as if killed. `INDIKATOR_FAILPOINT=<point>@pause` holds each
//! thread that passes `<point>` until the run's cancellation token is cancelled, then lets it go
//! on, so the caller meets the cancellation at its next check. Honoured in every build, release
//! too: when the variable is unset a pass costs one atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The environment variable that arms a point.
pub const ENV: &str = "INDIKATOR_FAILPOINT";

/// Every point, in the order a run passes them:
/// - `stage.written`: a partition file has been written in `.staging/<run>/`;
/// - `commit.rename`: before each rename of a staged part over its final name (`:3` dies after
///   two parts are published);
/// - `commit.dirsync`: every part renamed, before the directory fsyncs and the removal of stale
///   partitions;
/// - `ledger.finish`: the commit is done, before the run's end is recorded in the ledger;
/// - `catalog.rename`: a catalog file written beside its final name, before the rename.
pub const POINTS: &[&str] = &[
    "stage.written",
    "commit.rename",
    "commit.dirsync",
    "ledger.finish",
    "catalog.rename",
];

/// How often a paused thread looks at its cancellation token.
const PAUSE_POLL: Duration = Duration::from_millis(20);

/// Why `INDIKATOR_FAILPOINT` was ignored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FailpointError {
    #[error(
        "{ENV}={value} names no failpoint; the points are {}",
        POINTS.join(", ")
    )]
    UnknownPoint { value: String },
    #[error(
        "{ENV}={value}: the count after `:` must be a whole number from 1 (the pass that \
         aborts), or write `@pause` instead; the points are {}",
        POINTS.join(", ")
    )]
    BadCount { value: String },
}

/// What the armed point does when passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Abort on the n-th pass (counting from 1).
    Abort { nth: u64 },
    /// Hold every passing thread until its token is cancelled.
    Pause,
}

/// What one pass of a point must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Abort,
    Pause,
}

/// The point `INDIKATOR_FAILPOINT` arms, with its pass count.
#[derive(Debug)]
struct Armed {
    point: &'static str,
    action: Action,
    passes: AtomicU64,
}

impl Armed {
    /// Reads `value` (`<point>`, `<point>:<n>` or `<point>@pause`).
    fn parse(value: &str) -> Result<Self, FailpointError> {
        let (name, action) = if let Some(name) = value.strip_suffix("@pause") {
            (name, Action::Pause)
        } else if let Some((name, count)) = value.split_once(':') {
            let nth = count
                .parse::<u64>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| FailpointError::BadCount {
                    value: value.to_string(),
                })?;
            (name, Action::Abort { nth })
        } else {
            (value, Action::Abort { nth: 1 })
        };
        let point = POINTS.iter().copied().find(|&p| p == name).ok_or_else(|| {
            FailpointError::UnknownPoint {
                value: value.to_string(),
            }
        })?;
        Ok(Self {
            point,
            action,
            passes: AtomicU64::new(0),
        })
    }

    /// Counts one pass of `point` and says what it must do (`None`: go on).
    fn pass(&self, point: &str) -> Option<Effect> {
        if point != self.point {
            return None;
        }
        match self.action {
            Action::Pause => Some(Effect::Pause),
            Action::Abort { nth } => {
                let pass = self.passes.fetch_add(1, Ordering::Relaxed) + 1;
                (pass == nth).then_some(Effect::Abort)
            }
        }
    }
}

/// The armed point, read from the environment at the first pass of any point.
///
/// Process-global state, which STYLE otherwise leaves out: it is read-only once set (only the
/// atomic pass count moves, and only when a point is armed), it mirrors the environment, which is
/// process-global itself, and threading it through every function that passes a point would put a
/// test hook into the signatures of staging, commit and the ledger.
static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

fn armed() -> Option<&'static Armed> {
    ARMED
        .get_or_init(|| {
            let value = std::env::var(ENV).ok()?;
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            // eprintln, not tracing: the line must reach stderr whatever the log filter says.
            Armed::parse(value)
                .inspect_err(|error| eprintln!("warning: {error}; no failpoint is armed"))
                .ok()
        })
        .as_ref()
}

/// Passes `point` (one of [`POINTS`]): does nothing unless `INDIKATOR_FAILPOINT` arms it. Armed,
/// it aborts the process on the chosen pass, or (`@pause`) holds this thread until `cancel` is
/// cancelled and then returns, so the caller sees the cancellation at its next check.
pub fn hit(point: &'static str, cancel: &CancellationToken) {
    debug_assert!(
        POINTS.contains(&point),
        "failpoint `{point}` is not in POINTS"
    );
    let Some(armed) = armed() else { return };
    match armed.pass(point) {
        Some(Effect::Abort) => {
            eprintln!("failpoint {point}: aborting");
            std::process::abort();
        }
        // A thread that passes after the cancellation goes on at once, without a line.
        Some(Effect::Pause) if !cancel.is_cancelled() => {
            eprintln!("failpoint {point}: paused");
            pause(cancel);
        }
        Some(Effect::Pause) | None => {}
    }
}

/// Blocks the calling thread until `cancel` is cancelled. A blocking poll, not an `.await`: the
/// points sit in blocking code (staging threads, the commit, the ledger).
fn pause(cancel: &CancellationToken) {
    while !cancel.is_cancelled() {
        std::thread::sleep(PAUSE_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_alone_aborts_at_its_first_pass() {
        let armed = Armed::parse("commit.dirsync").unwrap();
        assert_eq!(armed.action, Action::Abort { nth: 1 });
        assert_eq!(armed.pass("commit.rename"), None);
        assert_eq!(armed.pass("commit.dirsync"), Some(Effect::Abort));
    }

    #[test]
    fn a_count_aborts_at_that_pass() {
        let armed = Armed::parse("commit.rename:3").unwrap();
        assert_eq!(armed.pass("commit.rename"), None);
        assert_eq!(
            armed.pass("stage.written"),
            None,
            "other points do not count"
        );
        assert_eq!(armed.pass("commit.rename"), None);
        assert_eq!(armed.pass("commit.rename"), Some(Effect::Abort));
    }

    #[test]
    fn pause_holds_every_pass() {
        let armed = Armed::parse("stage.written@pause").unwrap();
        assert_eq!(armed.pass("stage.written"), Some(Effect::Pause));
        assert_eq!(armed.pass("stage.written"), Some(Effect::Pause));
        assert_eq!(armed.pass("ledger.finish"), None);
    }

    #[test]
    fn every_point_can_be_armed() {
        for point in POINTS {
            assert_eq!(Armed::parse(point).unwrap().point, *point);
        }
    }

    #[test]
    fn an_unknown_point_names_the_valid_ones() {
        insta::assert_snapshot!(Armed::parse("commit.renam:2").unwrap_err(), @"INDIKATOR_FAILPOINT=commit.renam:2 names no failpoint; the points are stage.written, commit.rename, commit.dirsync, ledger.finish, catalog.rename");
    }

    #[test]
    fn a_malformed_count_is_refused() {
        for value in [
            "commit.rename:",
            "commit.rename:0",
            "commit.rename:-1",
            "commit.rename:x",
        ] {
            assert_eq!(
                Armed::parse(value).unwrap_err(),
                FailpointError::BadCount {
                    value: value.into()
                }
            );
        }
        insta::assert_snapshot!(Armed::parse("commit.rename:x").unwrap_err(), @"INDIKATOR_FAILPOINT=commit.rename:x: the count after `:` must be a whole number from 1 (the pass that aborts), or write `@pause` instead; the points are stage.written, commit.rename, commit.dirsync, ledger.finish, catalog.rename");
    }

    #[test]
    fn a_pause_returns_once_its_token_is_cancelled() {
        let cancel = CancellationToken::new();
        let canceller = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                cancel.cancel();
            })
        };
        let started = std::time::Instant::now();
        pause(&cancel);
        assert!(started.elapsed() >= Duration::from_millis(50));
        canceller.join().unwrap();
    }
}
