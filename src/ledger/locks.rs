//! Per-pipeline locks: at most one run of a pipeline at a time against one state directory,
//! whichever process it is in.
//!
//! Owns: `state/locks/<pipeline>.lock`, taking it (`flock`, never waiting), and the note in it
//! saying who holds it.
//! Must not: decide what a refused caller does (wait, skip or fail is the caller's policy), or
//! mark runs interrupted (the holder of a pipeline's lock may do that for the pipeline's runs).
//!
//! The lock is an advisory `flock` on the open file, so the kernel releases it when the holder's
//! process dies, however it dies: no stale lock survives a `kill -9` or a power cut. A lock file
//! left on disk is harmless; its note is read only while someone holds the lock. `flock` belongs
//! to one open file description: a second [`PipelineLock::try_acquire`] of the same pipeline in
//! the same process is refused too.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use chrono::{SecondsFormat, Utc};

use super::LedgerError;

/// Directory of the lock files inside the state directory.
pub const LOCKS_DIR: &str = "locks";
/// The lock file of the whole state directory that versions before per-pipeline locks took
/// exclusively; this version's processes hold it shared.
pub const STATE_LOCK_FILE: &str = "indikator.lock";

/// Shared use of a state directory by this version's processes, for as long as one lives.
///
/// Earlier versions took `indikator.lock` exclusively and know nothing of per-pipeline locks or
/// the ledger's new schema: holding it shared keeps one from starting beside us (its exclusive
/// lock is refused), and refuses us while one runs.
#[derive(Debug)]
pub struct StateShare {
    _file: File,
}

impl StateShare {
    /// Takes the shared lock on `state_dir/indikator.lock` (created if absent).
    pub fn take(state_dir: &Path) -> Result<Self, LedgerError> {
        let path = state_dir.join(STATE_LOCK_FILE);
        let file = std::fs::create_dir_all(state_dir)
            .and_then(|()| {
                File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
            })
            .map_err(|source| LedgerError::LockFile {
                path: path.clone(),
                source,
            })?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::OlderProcess { path }),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(LedgerError::LockFile { path, source })
            }
        }
    }
}

/// How retention names itself in a pipeline's lock note. It holds a pipeline's lock only while
/// it removes that pipeline's old files, so a run waits for it briefly, as for a recovery.
pub const RETENTION_HOLDER: &str = "retention";

/// Who holds a pipeline's lock, as its holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The run the lock was taken for.
    pub run_id: String,
    /// The process holding it.
    pub pid: u32,
    /// When the lock was taken: RFC 3339, UTC.
    pub started: String,
}

impl Holder {
    /// The note written into the lock file: `key=value` lines, readable with `cat`.
    fn to_note(&self) -> String {
        format!(
            "run_id={}\npid={}\nstarted={}\n",
            self.run_id, self.pid, self.started
        )
    }

    /// Whether the process the note names lives. A holder that died without releasing its
    /// note (a `kill -9`) leaves it behind, and the next holder truncates it only after taking
    /// the lock: read in between, the note names a dead run. Without `/proc` the note is
    /// believed.
    fn is_alive(&self) -> bool {
        !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Reads a note; `None` if it is incomplete (the holder is still writing it, or an older
    /// indikator took the lock and wrote nothing).
    fn from_note(note: &str) -> Option<Self> {
        let field = |key: &str| {
            note.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        Some(Self {
            run_id: field("run_id")?,
            pid: field("pid")?.parse().ok()?,
            started: field("started")?,
        })
    }
}

/// The right to run one pipeline against one state directory; released when dropped (or when the
/// process dies).
#[derive(Debug)]
pub struct PipelineLock {
    /// Held open: closing it releases the `flock`.
    file: File,
    holder: Holder,
}

impl PipelineLock {
    /// Takes `state_dir/locks/<pipeline>.lock` for run `run_id` without waiting, and writes this
    /// process's run id, pid and the time into it. `pipeline` is a checked pipeline id (a file
    /// name). `Err(Held)` names the run holding it, when its holder has said.
    pub fn try_acquire(
        state_dir: &Path,
        pipeline: &str,
        run_id: &str,
    ) -> Result<Self, LedgerError> {
        let dir = state_dir.join(LOCKS_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| LedgerError::StateDir {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(format!("{pipeline}.lock"));
        let lock_file = |source| LedgerError::LockFile {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(lock_file)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .as_deref()
                    .and_then(Holder::from_note)
                    .filter(Holder::is_alive);
                return Err(LedgerError::Held {
                    pipeline: pipeline.to_string(),
                    holder,
                    path,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(lock_file(source)),
        }
        let holder = Holder {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            started: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        // Truncated only now, under the lock: the note of a live holder is never cut short.
        file.set_len(0).map_err(lock_file)?;
        (&file)
            .write_all(holder.to_note().as_bytes())
            .map_err(lock_file)?;
        Ok(Self { file, holder })
    }

    /// Who holds this lock: this process, for the run it was taken for.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }
}

impl Drop for PipelineLock {
    /// Clears the note while still holding the lock, so that a note is on disk only while its
    /// holder holds the lock, and the next holder's is never mistaken for this one's.
    fn drop(&mut self) {
        // Best effort: a note left behind names a process that is gone or a run that ended.
        let _ = self.file.set_len(0);
    }
}

/// The holder part of [`LedgerError::Held`]'s message.
pub(super) fn held_by(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => format!("run {} (pid {}, since {})", h.run_id, h.pid, h.started),
        None => "another indikator process (it has not said which run)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_of_this_version_share_the_state_and_an_older_one_holding_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, _b) = (
            StateShare::take(dir.path()).unwrap(),
            StateShare::take(dir.path()).unwrap(),
        );
        // What an earlier version does at start: an exclusive lock, refused while we share it.
        let path = dir.path().join(STATE_LOCK_FILE);
        let older = File::options().write(true).open(&path).unwrap();
        assert!(older.try_lock().is_err());
        drop((_a, _b));
        older.try_lock().unwrap();
        let err = StateShare::take(dir.path()).unwrap_err();
        let message = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>");
        insta::assert_snapshot!(message, @"an indikator older than this one holds <dir>/indikator.lock (it locks the whole state directory and cannot share it); stop it before starting this version");
    }

    #[test]
    fn locks_on_different_pipelines_coexist() {
        let dir = tempfile::tempdir().unwrap();
        let a = PipelineLock::try_acquire(dir.path(), "a", "r-a").unwrap();
        let b = PipelineLock::try_acquire(dir.path(), "b", "r-b").unwrap();
        assert_eq!(a.holder().run_id, "r-a");
        assert_eq!(b.holder().run_id, "r-b");
    }

    #[test]
    fn a_held_pipeline_is_refused_naming_its_holder_even_in_the_same_process() {
        let dir = tempfile::tempdir().unwrap();
        let held = PipelineLock::try_acquire(dir.path(), "p", "r1").unwrap();
        let err = PipelineLock::try_acquire(dir.path(), "p", "r2").unwrap_err();
        let LedgerError::Held {
            pipeline, holder, ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(pipeline, "p");
        assert_eq!(holder.as_ref(), Some(held.holder()));
        assert_eq!(held.holder().pid, std::process::id());
        assert!(err.to_string().contains("run r1 (pid "), "{err}");
    }

    #[test]
    fn a_refusal_says_which_run_holds_the_pipeline_and_what_to_do() {
        let err = LedgerError::Held {
            pipeline: "scb-befolkning".into(),
            holder: Some(Holder {
                run_id: "20261123T100000-005-scb-befolkning".into(),
                pid: 4242,
                started: "2026-11-23T10:00:00.005Z".into(),
            }),
            path: "state/locks/scb-befolkning.lock".into(),
        };
        insta::assert_snapshot!(err, @"pipeline `scb-befolkning` is being run by run 20261123T100000-005-scb-befolkning (pid 4242, since 2026-11-23T10:00:00.005Z), which holds state/locks/scb-befolkning.lock; wait for that run to end, or see it with `indikator history scb-befolkning`");
        let err = LedgerError::Held {
            pipeline: "p".into(),
            holder: None,
            path: "state/locks/p.lock".into(),
        };
        insta::assert_snapshot!(err, @"pipeline `p` is being run by another indikator process (it has not said which run), which holds state/locks/p.lock; wait for that run to end, or see it with `indikator history p`");
    }

    #[test]
    fn a_dropped_lock_can_be_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        drop(PipelineLock::try_acquire(dir.path(), "p", "r1").unwrap());
        let again = PipelineLock::try_acquire(dir.path(), "p", "r2").unwrap();
        let note = std::fs::read_to_string(dir.path().join("locks/p.lock")).unwrap();
        assert_eq!(Holder::from_note(&note).as_ref(), Some(again.holder()));
    }

    #[test]
    fn a_released_lock_leaves_no_note() {
        let dir = tempfile::tempdir().unwrap();
        drop(PipelineLock::try_acquire(dir.path(), "p", "r1").unwrap());
        assert_eq!(std::fs::read(dir.path().join("locks/p.lock")).unwrap(), b"");
    }

    #[test]
    fn a_note_naming_a_process_that_is_gone_names_no_holder() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let note = |pid| Holder {
            run_id: "r1".into(),
            pid,
            started: "2026-12-01T00:00:00.000Z".into(),
        };
        for (pid, believed) in [(gone.id(), false), (std::process::id(), true)] {
            std::fs::create_dir_all(dir.path().join(LOCKS_DIR)).unwrap();
            let path = dir.path().join("locks/p.lock");
            std::fs::write(&path, note(pid).to_note()).unwrap();
            let holder = File::options().write(true).open(&path).unwrap();
            holder.try_lock().unwrap();
            let err = PipelineLock::try_acquire(dir.path(), "p", "r2").unwrap_err();
            let LedgerError::Held { holder: named, .. } = err else {
                panic!("{err}")
            };
            assert_eq!(named, believed.then(|| note(pid)), "pid {pid}");
        }
    }

    #[test]
    fn an_incomplete_note_names_no_holder() {
        assert_eq!(Holder::from_note(""), None);
        assert_eq!(Holder::from_note("run_id=r1\npid="), None);
        let holder = Holder {
            run_id: "r1".into(),
            pid: 7,
            started: "2026-11-23T10:00:00.000Z".into(),
        };
        assert_eq!(Holder::from_note(&holder.to_note()), Some(holder));
    }
}
