//! The ledger: run history and per-pipeline state in SQLite, in the state directory.
//!
//! Owns: the `runs` table (id, pipeline, trigger, times, status, row counts, error, content
//! hash, validation report), each pipeline's committed coverage, and the state-directory lock
//! that keeps two processes from running pipelines against one ledger.
//! Must not: touch the warehouse or decide when runs happen.
//!
//! Methods are plain sync functions over a `Mutex<Connection>`: short sections, never held
//! across an `.await`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::rejects::Report;

/// File name of the SQLite database inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";
/// File name of the lock inside the state directory.
pub const LOCK_FILE: &str = "indikator.lock";

/// Errors of the ledger; each names the database file.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open the ledger {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("ledger {} failed", .path.display())]
    Sql {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {}", .path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another indikator process holds {}; wait for it to finish or stop it",
        .path.display()
    )]
    Locked { path: PathBuf },
    #[error("the ledger {} holds a report that is not valid JSON", .path.display())]
    Report {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// How a run ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// The process died or was stopped mid-run; marked at the next start.
    Interrupted,
    /// The input was unchanged since the last committed run: nothing was written.
    Skipped,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Skipped => "skipped",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "skipped" => Self::Skipped,
            "interrupted" => Self::Interrupted,
            _ => Self::Failed,
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the `runs` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    /// `manual`, `schedule`, `api`.
    pub trigger: String,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub status: RunStatus,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub content_hash: Option<String>,
    pub error: Option<String>,
    pub report: Option<Report>,
}

/// The end of a run, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub status: RunStatus,
    pub finished: String,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub content_hash: Option<String>,
    pub error: Option<String>,
    pub report: Option<Report>,
}

/// Exclusive use of a state directory by this process; released when dropped.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock on `state_dir` (created if absent) or says who holds it.
    pub fn acquire(state_dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(state_dir).map_err(|source| LedgerError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LedgerError::StateDir {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(_) => Err(LedgerError::Locked { path }),
        }
    }
}

/// The run history of one state directory.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    connection: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id        TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    started       TEXT NOT NULL,
    finished      TEXT,
    status        TEXT NOT NULL,
    rows_read     INTEGER NOT NULL DEFAULT 0,
    rows_written  INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    content_hash  TEXT,
    error         TEXT,
    report        TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started);
CREATE TABLE IF NOT EXISTS coverage (
    pipeline TEXT PRIMARY KEY,
    rows     TEXT NOT NULL
);
";

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(state_dir).map_err(|source| LedgerError::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(LEDGER_FILE);
        let open = |source| LedgerError::Open {
            path: path.clone(),
            source,
        };
        let connection = Connection::open(&path).map_err(open)?;
        // WAL keeps the ledger readable by `history` while a run writes; FULL sync because a
        // commit recorded here must survive a power cut as surely as the renamed files.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(open)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open)?;
        connection.execute_batch(SCHEMA).map_err(open)?;
        Ok(Self {
            path,
            connection: Mutex::new(connection),
        })
    }

    fn sql(&self) -> impl FnOnce(rusqlite::Error) -> LedgerError {
        let path = self.path.clone();
        move |source| LedgerError::Sql { path, source }
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .expect("a panic while holding the ledger is a bug")
    }

    /// Marks every run still `running` as `interrupted` (only call while holding the
    /// [`StateLock`]: then no other process can be running them). Returns their ids.
    pub fn mark_interrupted(&self, finished: &str) -> Result<Vec<String>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT run_id FROM runs WHERE status = 'running' ORDER BY started")
            .map_err(self.sql())?;
        let ids = statement
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        connection
            .execute(
                "UPDATE runs SET status = 'interrupted', finished = ?1,
                 error = 'the process stopped before the run ended'
                 WHERE status = 'running'",
                params![finished],
            )
            .map_err(self.sql())?;
        Ok(ids)
    }

    /// Records that a run started.
    pub fn start_run(
        &self,
        run_id: &str,
        pipeline: &str,
        trigger: &str,
        started: &str,
    ) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "INSERT INTO runs (run_id, pipeline, trigger, started, status)
                 VALUES (?1, ?2, ?3, ?4, 'running')",
                params![run_id, pipeline, trigger, started],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Records how a run ended; for a committed run also replaces the pipeline's coverage rows
    /// (JSON), in the same transaction.
    pub fn finish_run(
        &self,
        run_id: &str,
        end: &RunEnd,
        coverage: Option<(&str, &str)>,
    ) -> Result<(), LedgerError> {
        let report = end
            .report
            .as_ref()
            .map(|r| serde_json::to_string(r).expect("a report serialises"));
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(self.sql())?;
        transaction
            .execute(
                "UPDATE runs SET status = ?2, finished = ?3, rows_read = ?4, rows_written = ?5,
                 rows_rejected = ?6, content_hash = ?7, error = ?8, report = ?9
                 WHERE run_id = ?1",
                params![
                    run_id,
                    end.status.as_str(),
                    end.finished,
                    end.rows_read as i64,
                    end.rows_written as i64,
                    end.rows_rejected as i64,
                    end.content_hash,
                    end.error,
                    report,
                ],
            )
            .map_err(self.sql())?;
        if let Some((pipeline, rows)) = coverage {
            transaction
                .execute(
                    "INSERT INTO coverage (pipeline, rows) VALUES (?1, ?2)
                     ON CONFLICT (pipeline) DO UPDATE SET rows = excluded.rows",
                    params![pipeline, rows],
                )
                .map_err(self.sql())?;
        }
        transaction.commit().map_err(self.sql())
    }

    /// The content hash of the pipeline's last committed run, if any.
    pub fn last_content_hash(&self, pipeline: &str) -> Result<Option<String>, LedgerError> {
        self.connection()
            .query_row(
                "SELECT content_hash FROM runs
                 WHERE pipeline = ?1 AND status = 'succeeded' AND content_hash IS NOT NULL
                 ORDER BY started DESC, rowid DESC LIMIT 1",
                params![pipeline],
                |row| row.get(0),
            )
            .optional()
            .map_err(self.sql())
    }

    /// Every pipeline's committed coverage rows (JSON), by pipeline.
    pub fn coverage(&self) -> Result<Vec<(String, String)>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT pipeline, rows FROM coverage ORDER BY pipeline")
            .map_err(self.sql())?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows)
    }

    /// The latest `limit` runs, newest first, of one pipeline or of all.
    pub fn history(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT run_id, pipeline, trigger, started, finished, status, rows_read,
                        rows_written, rows_rejected, content_hash, error, report
                 FROM runs WHERE ?1 IS NULL OR pipeline = ?1
                 ORDER BY started DESC, rowid DESC LIMIT ?2",
            )
            .map_err(self.sql())?;
        let rows = statement
            .query_map(params![pipeline, limit as i64], |row| {
                Ok((
                    RunRecord {
                        run_id: row.get(0)?,
                        pipeline: row.get(1)?,
                        trigger: row.get(2)?,
                        started: row.get(3)?,
                        finished: row.get(4)?,
                        status: RunStatus::parse(&row.get::<_, String>(5)?),
                        rows_read: row.get::<_, i64>(6)? as u64,
                        rows_written: row.get::<_, i64>(7)? as u64,
                        rows_rejected: row.get::<_, i64>(8)? as u64,
                        content_hash: row.get(9)?,
                        error: row.get(10)?,
                        report: None,
                    },
                    row.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        rows.into_iter()
            .map(|(mut record, report)| {
                record.report = report
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|source| LedgerError::Report {
                        path: self.path.clone(),
                        source,
                    })?;
                Ok(record)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(status: RunStatus, hash: &str) -> RunEnd {
        RunEnd {
            status,
            finished: "2026-11-23T10:00:01Z".into(),
            rows_read: 10,
            rows_written: 9,
            rows_rejected: 1,
            content_hash: Some(hash.into()),
            error: None,
            report: Some(Report::default()),
        }
    }

    #[test]
    fn a_run_left_running_is_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .start_run("r1", "p", "manual", "2026-11-23T10:00:00Z")
            .unwrap();
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(
            ledger.mark_interrupted("2026-11-23T11:00:00Z").unwrap(),
            vec!["r1"]
        );
        let runs = ledger.history(Some("p"), 10).unwrap();
        assert_eq!(runs[0].status, RunStatus::Interrupted);
        assert!(ledger.mark_interrupted("x").unwrap().is_empty());
    }

    #[test]
    fn last_content_hash_is_that_of_the_last_succeeded_run() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .start_run("r1", "p", "manual", "2026-11-23T10:00:00Z")
            .unwrap();
        ledger
            .finish_run("r1", &end(RunStatus::Succeeded, "aaa"), Some(("p", "[]")))
            .unwrap();
        ledger
            .start_run("r2", "p", "manual", "2026-11-23T10:05:00Z")
            .unwrap();
        ledger
            .finish_run("r2", &end(RunStatus::Failed, "bbb"), None)
            .unwrap();
        assert_eq!(
            ledger.last_content_hash("p").unwrap().as_deref(),
            Some("aaa")
        );
        assert_eq!(ledger.last_content_hash("other").unwrap(), None);
        let history = ledger.history(None, 10).unwrap();
        assert_eq!(
            history
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r2", "r1"]
        );
        assert_eq!(history[1].report, Some(Report::default()));
        assert_eq!(
            ledger.coverage().unwrap(),
            vec![("p".to_string(), "[]".to_string())]
        );
    }

    #[test]
    fn a_second_process_cannot_take_the_state_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _held = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("another indikator process holds"),
            "{err}"
        );
    }
}
