//! The ledger: run history and per-pipeline state in SQLite, in the state directory.
//!
//! Owns: the `runs` table (id, pipeline, trigger, warehouse, times, status, row counts, error,
//! content hash, validation report), each (warehouse, pipeline)'s committed coverage, each
//! pipeline's source validators, and, in submodules, the schema's versions ([`migrations`]) and
//! the per-pipeline locks ([`locks`]).
//! Must not: touch the warehouse or decide when runs happen.
//!
//! Methods are plain sync functions over a `Mutex<Connection>`: short sections, never held
//! across an `.await`.
//!
//! A warehouse is named by the directory string its caller gives ([`Ledger::start_run`]); the
//! ledger compares those strings and never touches the directory, so callers pass one spelling
//! (the absolute path the settings resolve).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::rejects::Report;

mod fires;
pub mod locks;
mod migrations;
pub mod retention;

pub use locks::{Holder, PipelineLock, StateShare};
pub use migrations::CURRENT as SCHEMA_VERSION;

/// File name of the SQLite database inside the state directory.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// The warehouse of coverage rows recorded before the ledger knew warehouses (schema version 1).
/// Every warehouse's [`Ledger::coverage`] falls back to them, as version 1 showed them to all.
pub const UNKNOWN_WAREHOUSE: &str = "";

/// Errors of the ledger and its locks; each names the database or lock file.
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
    #[error(
        "cannot migrate the ledger {} to schema version {version}; it was left as it was: fix \
         the cause and open it again",
        .path.display()
    )]
    Migrate {
        path: PathBuf,
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the ledger {} has schema version {found}, but this indikator knows versions up to \
         {known}: a newer indikator wrote it. Run that version or a later one against this \
         state directory, or give this one a state directory of its own",
        .path.display()
    )]
    Newer {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("cannot create the state directory {}", .path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open or write the lock file {}", .path.display())]
    LockFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "pipeline `{pipeline}` is being run by {}, which holds {}; wait for that run to end, \
         or see it with `indikator history {pipeline}`",
        locks::held_by(.holder), .path.display()
    )]
    Held {
        pipeline: String,
        holder: Option<Holder>,
        path: PathBuf,
    },
    #[error(
        "an indikator older than this one holds {} (it locks the whole state directory and \
         cannot share it); stop it before starting this version",
        .path.display()
    )]
    OlderProcess { path: PathBuf },
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
    /// The process died or was stopped mid-run; marked by the next run of its pipeline (which
    /// holds the pipeline's lock, so it knows no live process has it).
    Interrupted,
    /// The input was unchanged since the last committed run: nothing was written.
    Skipped,
    /// Waiting for a slot of the daemon (its run id already given to whoever asked).
    Queued,
    /// Stopped by an operator, queued or running; nothing committed.
    Cancelled,
}

impl RunStatus {
    /// The status as the ledger stores it and `history` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Skipped => "skipped",
            Self::Queued => "queued",
            Self::Cancelled => "cancelled",
        }
    }

    /// Every status, for operators' filters and the metrics.
    pub const ALL: [RunStatus; 7] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Skipped,
        Self::Failed,
        Self::Interrupted,
        Self::Cancelled,
    ];

    /// The status named `text` as [`Self::as_str`] writes it.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the run has ended (nothing will change its row again).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    fn parse(text: &str) -> Self {
        Self::from_name(text).unwrap_or(Self::Failed)
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
    /// The warehouse directory the run wrote to; `None` for runs recorded before the ledger
    /// knew warehouses (schema version 1).
    pub warehouse: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    pub finished: Option<String>,
    pub status: RunStatus,
    pub rows_read: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    pub content_hash: Option<String>,
    /// Why a run was skipped (`unchanged`: the table's `updated` has not moved), in words.
    pub reason: Option<String>,
    pub error: Option<String>,
    pub report: Option<Report>,
}

/// Which runs [`Ledger::runs`] lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFilter {
    pub pipeline: Option<String>,
    pub status: Option<RunStatus>,
    /// At most this many, newest first; all when `None`.
    pub limit: Option<usize>,
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
    /// Why the run was skipped, in words.
    pub reason: Option<String>,
    pub error: Option<String>,
    pub report: Option<Report>,
}

/// A run the ledger still has as `running`: live in some process, or left so by one that died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRun {
    pub run_id: String,
    pub pipeline: String,
    /// `None` for a run recorded before the ledger knew warehouses.
    pub warehouse: Option<String>,
}

/// What a source last said about one resource, to send back as a conditional request
/// (`If-None-Match`, `If-Modified-Since`) or to compare with a table's "updated".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// A URL or a table id, as the source names what it fetches.
    pub resource: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The source's own "last updated" of the resource (e.g. PxWeb's `updated`).
    pub updated: Option<String>,
}

/// The run history of one state directory.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `state_dir` and migrates it to
    /// [`SCHEMA_VERSION`]. `Err(Newer)` when a newer indikator wrote it: nothing is changed then.
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
        let mut connection = Connection::open(&path).map_err(open)?;
        // WAL keeps the ledger readable by `history` while a run writes; FULL sync because a
        // commit recorded here must survive a power cut as surely as the renamed files.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(open)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open)?;
        migrations::migrate(&mut connection, &path)?;
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

    /// Every run still `running`, oldest first. Some may be live in another process: only the
    /// holder of a run's [`PipelineLock`] may conclude that its process died.
    pub fn running(&self) -> Result<Vec<RunningRun>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT run_id, pipeline, warehouse FROM runs WHERE status = 'running'
                 ORDER BY started, rowid",
            )
            .map_err(self.sql())?;
        statement
            .query_map([], |row| {
                Ok(RunningRun {
                    run_id: row.get(0)?,
                    pipeline: row.get(1)?,
                    warehouse: row.get(2)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())
    }

    /// Marks run `run_id` `interrupted` at `finished`, if it is still `running` (a run that
    /// ended meanwhile keeps its end). Call only while holding its pipeline's [`PipelineLock`]:
    /// then no live process is running it.
    pub fn mark_interrupted(&self, run_id: &str, finished: &str) -> Result<bool, LedgerError> {
        let changed = self
            .connection()
            .execute(
                "UPDATE runs SET status = 'interrupted', finished = ?2,
                 error = 'the process stopped before the run ended'
                 WHERE run_id = ?1 AND status = 'running'",
                params![run_id, finished],
            )
            .map_err(self.sql())?;
        Ok(changed > 0)
    }

    /// The status of run `run_id`, `None` if this ledger never recorded it.
    pub fn status(&self, run_id: &str) -> Result<Option<RunStatus>, LedgerError> {
        self.connection()
            .query_row(
                "SELECT status FROM runs WHERE run_id = ?1",
                params![run_id],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map(|status| status.map(|s| RunStatus::parse(&s)))
            .map_err(self.sql())
    }

    /// Records that run `run_id` starts renaming its parts into the warehouse: from now on,
    /// whatever becomes of the run, the warehouse may hold its data.
    pub fn begin_commit(&self, run_id: &str, at: &str) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "UPDATE runs SET commit_started = ?2 WHERE run_id = ?1",
                params![run_id, at],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Records that run `run_id` of `pipeline` started at `started` (RFC 3339), writing into the
    /// warehouse directory `warehouse`. `trigger` is `manual`, `schedule`, `api` or `replay`. A
    /// run [queued](Self::queue_run) before keeps its row, now `running` from `started`.
    pub fn start_run(
        &self,
        run_id: &str,
        pipeline: &str,
        trigger: &str,
        started: &str,
        warehouse: &str,
    ) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "INSERT INTO runs (run_id, pipeline, trigger, started, status, warehouse)
                 VALUES (?1, ?2, ?3, ?4, 'running', ?5)
                 ON CONFLICT (run_id) DO UPDATE SET status = 'running', started = ?4,
                 warehouse = ?5 WHERE status = 'queued'",
                params![run_id, pipeline, trigger, started, warehouse],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Records run `run_id` of `pipeline` as `queued` at `queued`: asked for, waiting for a slot.
    pub fn queue_run(
        &self,
        run_id: &str,
        pipeline: &str,
        trigger: &str,
        queued: &str,
    ) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "INSERT INTO runs (run_id, pipeline, trigger, started, status)
                 VALUES (?1, ?2, ?3, ?4, 'queued')",
                params![run_id, pipeline, trigger, queued],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Ends a run that never started (still `queued`) as `status` (`cancelled` by an operator,
    /// `interrupted` by a shutdown) with `error` saying why; false if it had left the queue.
    pub fn end_queued(
        &self,
        run_id: &str,
        status: RunStatus,
        finished: &str,
        error: &str,
    ) -> Result<bool, LedgerError> {
        let changed = self
            .connection()
            .execute(
                "UPDATE runs SET status = ?2, finished = ?3, error = ?4
                 WHERE run_id = ?1 AND status = 'queued'",
                params![run_id, status.as_str(), finished, error],
            )
            .map_err(self.sql())?;
        Ok(changed > 0)
    }

    /// Ends as `interrupted` every run left `queued` by a daemon that stopped (call only while
    /// holding the daemon's lock: no other daemon can be queueing). The ids, oldest first.
    pub fn interrupt_queued(&self, finished: &str) -> Result<Vec<String>, LedgerError> {
        let queued = self.runs(&RunFilter {
            status: Some(RunStatus::Queued),
            ..RunFilter::default()
        })?;
        let mut ended = Vec::new();
        for run in queued.into_iter().rev() {
            if self.end_queued(
                &run.run_id,
                RunStatus::Interrupted,
                finished,
                "the daemon stopped before the run left the queue",
            )? {
                ended.push(run.run_id);
            }
        }
        Ok(ended)
    }

    /// Records how a run ended; for a committed run also replaces the coverage rows (JSON) of
    /// `coverage.0` (the pipeline) in the run's own warehouse, in the same transaction, and drops
    /// that pipeline's rows of [`UNKNOWN_WAREHOUSE`], which the new rows supersede.
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
                 rows_rejected = ?6, content_hash = ?7, error = ?8, report = ?9, reason = ?10
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
                    end.reason,
                ],
            )
            .map_err(self.sql())?;
        if let Some((pipeline, rows)) = coverage {
            transaction
                .execute(
                    "INSERT INTO coverage (warehouse, pipeline, rows)
                     SELECT COALESCE(warehouse, ?4), ?2, ?3 FROM runs WHERE run_id = ?1
                     ON CONFLICT (warehouse, pipeline) DO UPDATE SET rows = excluded.rows",
                    params![run_id, pipeline, rows, UNKNOWN_WAREHOUSE],
                )
                .map_err(self.sql())?;
            transaction
                .execute(
                    "DELETE FROM coverage WHERE warehouse = ?1 AND pipeline = ?2
                     AND EXISTS (SELECT 1 FROM runs WHERE run_id = ?3 AND warehouse <> ?1)",
                    params![UNKNOWN_WAREHOUSE, pipeline, run_id],
                )
                .map_err(self.sql())?;
        }
        transaction.commit().map_err(self.sql())
    }

    /// The content hash of the last succeeded run of `pipeline` into `warehouse`, if any. Runs
    /// recorded before the ledger knew warehouses never match: the first run after the upgrade
    /// rewrites once rather than risk skipping a warehouse that never got the data.
    pub fn last_content_hash(
        &self,
        pipeline: &str,
        warehouse: &str,
    ) -> Result<Option<String>, LedgerError> {
        self.connection()
            .query_row(
                "SELECT status, content_hash FROM runs
                 WHERE pipeline = ?1 AND warehouse = ?2
                   AND (status = 'succeeded' OR commit_started IS NOT NULL)
                 -- The order runs were recorded in, not their clocks: a clock stepped back
                 -- must not put an older commit first.
                 ORDER BY rowid DESC LIMIT 1",
                params![pipeline, warehouse],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|last| match last {
                Some((status, hash)) if RunStatus::parse(&status) == RunStatus::Succeeded => hash,
                _ => None,
            })
            .map_err(self.sql())
    }

    /// The committed coverage rows (JSON) of every pipeline in `warehouse`, by pipeline. A
    /// pipeline with no row there yet but one of [`UNKNOWN_WAREHOUSE`] (recorded before the
    /// ledger knew warehouses) is given that one.
    pub fn coverage(&self, warehouse: &str) -> Result<Vec<(String, String)>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT pipeline, rows FROM coverage WHERE warehouse = ?1
                 UNION ALL
                 SELECT pipeline, rows FROM coverage AS old WHERE old.warehouse = ?2
                   AND NOT EXISTS (SELECT 1 FROM coverage
                                   WHERE warehouse = ?1 AND pipeline = old.pipeline)
                 ORDER BY pipeline",
            )
            .map_err(self.sql())?;
        statement
            .query_map(params![warehouse, UNKNOWN_WAREHOUSE], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())
    }

    /// The validators stored for `pipeline`, by resource.
    pub fn validators(
        &self,
        pipeline: &str,
        warehouse: &str,
    ) -> Result<Vec<Validator>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT resource, etag, last_modified, updated FROM validators
                 WHERE pipeline = ?1 AND warehouse = ?2 ORDER BY resource",
            )
            .map_err(self.sql())?;
        statement
            .query_map(params![pipeline, warehouse], |row| {
                Ok(Validator {
                    resource: row.get(0)?,
                    etag: row.get(1)?,
                    last_modified: row.get(2)?,
                    updated: row.get(3)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())
    }

    /// Stores `validators` for `pipeline`, in one transaction: each replaces the stored one of
    /// its resource; resources not given keep theirs (a fetch that reached only some resources
    /// must not forget the others').
    pub fn store_validators(
        &self,
        pipeline: &str,
        warehouse: &str,
        validators: &[Validator],
    ) -> Result<(), LedgerError> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(self.sql())?;
        {
            let mut statement = transaction
                .prepare(
                    "INSERT INTO validators
                       (warehouse, pipeline, resource, etag, last_modified, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (warehouse, pipeline, resource) DO UPDATE SET etag = excluded.etag,
                       last_modified = excluded.last_modified, updated = excluded.updated",
                )
                .map_err(self.sql())?;
            for v in validators {
                statement
                    .execute(params![
                        warehouse,
                        pipeline,
                        v.resource,
                        v.etag,
                        v.last_modified,
                        v.updated
                    ])
                    .map_err(self.sql())?;
            }
        }
        transaction.commit().map_err(self.sql())
    }

    /// Keeps what `pipeline`'s source said about its table (JSON), replacing what it said
    /// before in this warehouse.
    pub fn store_about(
        &self,
        pipeline: &str,
        warehouse: &str,
        about: &str,
    ) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "INSERT INTO about (warehouse, pipeline, about) VALUES (?1, ?2, ?3)
                 ON CONFLICT (warehouse, pipeline) DO UPDATE SET about = excluded.about",
                params![warehouse, pipeline, about],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// What every pipeline's source said about its table in `warehouse`: (pipeline, JSON).
    pub fn about(&self, warehouse: &str) -> Result<Vec<(String, String)>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare("SELECT pipeline, about FROM about WHERE warehouse = ?1 ORDER BY pipeline")
            .map_err(self.sql())?;
        statement
            .query_map(params![warehouse], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())
    }

    /// The latest `limit` runs, newest first, of one pipeline or of all.
    pub fn history(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        self.runs(&RunFilter {
            pipeline: pipeline.map(str::to_string),
            status: None,
            limit: Some(limit),
        })
    }

    /// The latest run of every pipeline, in one query (the admin API lists them per pipeline).
    pub fn last_runs(&self) -> Result<Vec<RunRecord>, LedgerError> {
        self.select_runs(
            "rowid IN (SELECT rowid FROM (SELECT rowid, ROW_NUMBER() OVER (PARTITION BY pipeline
             ORDER BY started DESC, rowid DESC) AS n FROM runs) WHERE n = 1)
             ORDER BY pipeline",
            [],
        )
    }

    /// Run `run_id` as recorded, `None` if this ledger never recorded it.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, LedgerError> {
        Ok(self.select_runs("run_id = ?1", params![run_id])?.pop())
    }

    /// The runs `filter` picks, newest first.
    pub fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, LedgerError> {
        let limit = filter.limit.map_or(-1, |limit| limit as i64);
        self.select_runs(
            "(?1 IS NULL OR pipeline = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY started DESC, rowid DESC LIMIT ?3",
            params![filter.pipeline, filter.status.map(RunStatus::as_str), limit],
        )
    }

    /// The runs `condition` (the rest of a `WHERE` over `runs`) selects with `values`.
    fn select_runs(
        &self,
        condition: &str,
        values: impl rusqlite::Params,
    ) -> Result<Vec<RunRecord>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(&format!(
                "SELECT run_id, pipeline, trigger, started, finished, status, rows_read,
                        rows_written, rows_rejected, content_hash, error, report, warehouse,
                        reason
                 FROM runs WHERE {condition}"
            ))
            .map_err(self.sql())?;
        let rows = statement
            .query_map(values, |row| {
                Ok((
                    RunRecord {
                        run_id: row.get(0)?,
                        pipeline: row.get(1)?,
                        trigger: row.get(2)?,
                        warehouse: row.get(12)?,
                        started: row.get(3)?,
                        finished: row.get(4)?,
                        status: RunStatus::parse(&row.get::<_, String>(5)?),
                        rows_read: row.get::<_, i64>(6)? as u64,
                        rows_written: row.get::<_, i64>(7)? as u64,
                        rows_rejected: row.get::<_, i64>(8)? as u64,
                        content_hash: row.get(9)?,
                        reason: row.get(13)?,
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

    const WAREHOUSE: &str = "/srv/indikator/warehouse";

    fn end(status: RunStatus, hash: &str) -> RunEnd {
        RunEnd {
            status,
            finished: "2026-11-23T10:00:01Z".into(),
            rows_read: 10,
            rows_written: 9,
            rows_rejected: 1,
            content_hash: Some(hash.into()),
            reason: None,
            error: None,
            report: Some(Report::default()),
        }
    }

    /// Records a whole run `run_id` of `pipeline` into `warehouse` that ended as `status`.
    fn ran(
        ledger: &Ledger,
        run_id: &str,
        pipeline: &str,
        started: &str,
        warehouse: &str,
        status: RunStatus,
        hash: &str,
    ) {
        ledger
            .start_run(run_id, pipeline, "manual", started, warehouse)
            .unwrap();
        ledger.finish_run(run_id, &end(status, hash), None).unwrap();
    }

    #[test]
    fn a_queued_run_keeps_its_row_when_it_starts_or_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .queue_run("r1", "p", "api", "2026-11-23T10:00:00Z")
            .unwrap();
        ledger
            .queue_run("r2", "p", "api", "2026-11-23T10:00:01Z")
            .unwrap();
        ledger
            .queue_run("r3", "q", "schedule", "2026-11-23T10:00:02Z")
            .unwrap();
        assert_eq!(ledger.status("r1").unwrap(), Some(RunStatus::Queued));
        ledger
            .start_run("r1", "p", "api", "2026-11-23T10:00:05Z", WAREHOUSE)
            .unwrap();
        let r1 = ledger.run("r1").unwrap().unwrap();
        assert_eq!(
            (r1.status, r1.started.as_str()),
            (RunStatus::Running, "2026-11-23T10:00:05Z")
        );
        assert_eq!(r1.warehouse.as_deref(), Some(WAREHOUSE));
        // Only a queued row is taken over: a second start changes nothing of a running run.
        assert!(
            ledger
                .start_run("r1", "p", "api", "2026-11-23T10:00:06Z", WAREHOUSE)
                .is_ok()
        );
        assert_eq!(
            ledger.run("r1").unwrap().unwrap().started,
            "2026-11-23T10:00:05Z"
        );
        assert!(
            ledger
                .end_queued(
                    "r2",
                    RunStatus::Cancelled,
                    "2026-11-23T10:00:07Z",
                    "cancelled by an operator"
                )
                .unwrap()
        );
        assert!(
            !ledger
                .end_queued("r1", RunStatus::Cancelled, "2026-11-23T10:00:07Z", "x")
                .unwrap()
        );
        let r2 = ledger.run("r2").unwrap().unwrap();
        assert_eq!(r2.status, RunStatus::Cancelled);
        assert_eq!(r2.error.as_deref(), Some("cancelled by an operator"));
        assert_eq!(
            ledger.interrupt_queued("2026-11-23T10:01:00Z").unwrap(),
            ["r3"]
        );
        assert_eq!(ledger.status("r3").unwrap(), Some(RunStatus::Interrupted));
        let filter = RunFilter {
            pipeline: Some("p".into()),
            status: Some(RunStatus::Running),
            limit: Some(5),
        };
        let running: Vec<String> = ledger
            .runs(&filter)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(running, ["r1"]);
        assert_eq!(ledger.run("nope").unwrap(), None);
    }

    #[test]
    fn a_run_left_running_is_listed_and_marked_interrupted_alone() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .start_run("r1", "p", "manual", "2026-11-23T10:00:00Z", WAREHOUSE)
            .unwrap();
        ledger
            .start_run("r2", "q", "manual", "2026-11-23T10:00:01Z", WAREHOUSE)
            .unwrap();
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        let running = ledger.running().unwrap();
        assert_eq!(
            running[0],
            RunningRun {
                run_id: "r1".into(),
                pipeline: "p".into(),
                warehouse: Some(WAREHOUSE.into()),
            }
        );
        assert_eq!(running.len(), 2);
        ledger
            .mark_interrupted("r1", "2026-11-23T11:00:00Z")
            .unwrap();
        let runs = ledger.history(Some("p"), 10).unwrap();
        assert_eq!(runs[0].status, RunStatus::Interrupted);
        assert_eq!(runs[0].finished.as_deref(), Some("2026-11-23T11:00:00Z"));
        assert_eq!(
            ledger.history(Some("q"), 10).unwrap()[0].status,
            RunStatus::Running
        );
        assert_eq!(ledger.running().unwrap().len(), 1);
    }

    #[test]
    fn a_run_that_ended_is_not_marked_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ran(
            &ledger,
            "r1",
            "p",
            "2026-11-23T10:00:00Z",
            WAREHOUSE,
            RunStatus::Succeeded,
            "aaa",
        );
        ledger
            .mark_interrupted("r1", "2026-11-23T11:00:00Z")
            .unwrap();
        let run = &ledger.history(Some("p"), 1).unwrap()[0];
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.finished.as_deref(), Some("2026-11-23T10:00:01Z"));
    }

    #[test]
    fn a_commit_the_ledger_never_saw_end_keeps_the_next_run_from_skipping() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ran(
            &ledger,
            "r1",
            "p",
            "2026-11-23T10:00:00Z",
            WAREHOUSE,
            RunStatus::Succeeded,
            "aaa",
        );
        // r2 commits other content and dies before it records its end.
        ledger
            .start_run("r2", "p", "manual", "2026-11-23T10:05:00Z", WAREHOUSE)
            .unwrap();
        ledger.begin_commit("r2", "2026-11-23T10:05:01Z").unwrap();
        assert!(
            ledger
                .mark_interrupted("r2", "2026-11-23T11:00:00Z")
                .unwrap()
        );
        assert!(
            !ledger
                .mark_interrupted("r2", "2026-11-23T11:00:00Z")
                .unwrap()
        );
        assert_eq!(
            ledger.last_content_hash("p", WAREHOUSE).unwrap(),
            None,
            "the warehouse may hold r2's data, not r1's: r1's content must be written again"
        );
        // A run that stopped before its commit changed nothing.
        ledger
            .start_run("r3", "p", "manual", "2026-11-23T10:06:00Z", WAREHOUSE)
            .unwrap();
        ledger.begin_commit("r3", "2026-11-23T10:06:01Z").unwrap();
        ledger
            .finish_run("r3", &end(RunStatus::Succeeded, "ccc"), None)
            .unwrap();
        ran(
            &ledger,
            "r4",
            "p",
            "2026-11-23T10:07:00Z",
            WAREHOUSE,
            RunStatus::Failed,
            "ddd",
        );
        assert_eq!(ledger.status("r4").unwrap(), Some(RunStatus::Failed));
        assert_eq!(ledger.status("nope").unwrap(), None);
        assert_eq!(
            ledger.last_content_hash("p", WAREHOUSE).unwrap().as_deref(),
            Some("ccc")
        );
    }

    #[test]
    fn last_content_hash_is_that_of_the_last_succeeded_run_into_that_warehouse() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .start_run("r1", "p", "manual", "2026-11-23T10:00:00Z", WAREHOUSE)
            .unwrap();
        ledger
            .finish_run("r1", &end(RunStatus::Succeeded, "aaa"), Some(("p", "[]")))
            .unwrap();
        ran(
            &ledger,
            "r2",
            "p",
            "2026-11-23T10:05:00Z",
            WAREHOUSE,
            RunStatus::Failed,
            "bbb",
        );
        ran(
            &ledger,
            "r3",
            "p",
            "2026-11-23T10:06:00Z",
            "/tmp/other",
            RunStatus::Succeeded,
            "ccc",
        );
        assert_eq!(
            ledger.last_content_hash("p", WAREHOUSE).unwrap().as_deref(),
            Some("aaa")
        );
        assert_eq!(
            ledger
                .last_content_hash("p", "/tmp/other")
                .unwrap()
                .as_deref(),
            Some("ccc")
        );
        assert_eq!(ledger.last_content_hash("other", WAREHOUSE).unwrap(), None);
        assert_eq!(ledger.last_content_hash("p", "/tmp/new").unwrap(), None);
        let history = ledger.history(None, 10).unwrap();
        assert_eq!(
            history
                .iter()
                .map(|r| r.run_id.as_str())
                .collect::<Vec<_>>(),
            ["r3", "r2", "r1"]
        );
        assert_eq!(history[2].report, Some(Report::default()));
        assert_eq!(history[2].warehouse.as_deref(), Some(WAREHOUSE));
    }

    #[test]
    fn coverage_is_kept_per_warehouse_under_the_runs_own() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        for (run, pipeline, warehouse, rows) in [
            ("r1", "p", WAREHOUSE, "[1]"),
            ("r2", "q", WAREHOUSE, "[2]"),
            ("r3", "p", "/tmp/other", "[3]"),
            ("r4", "p", WAREHOUSE, "[4]"),
        ] {
            ledger
                .start_run(run, pipeline, "manual", "2026-11-23T10:00:00Z", warehouse)
                .unwrap();
            ledger
                .finish_run(run, &end(RunStatus::Succeeded, "h"), Some((pipeline, rows)))
                .unwrap();
        }
        assert_eq!(
            ledger.coverage(WAREHOUSE).unwrap(),
            [
                ("p".to_string(), "[4]".to_string()),
                ("q".to_string(), "[2]".to_string())
            ]
        );
        assert_eq!(
            ledger.coverage("/tmp/other").unwrap(),
            [("p".to_string(), "[3]".to_string())]
        );
        assert!(ledger.coverage("/tmp/new").unwrap().is_empty());
    }

    #[test]
    fn validators_are_stored_per_warehouse_pipeline_and_resource() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        let validator = |resource: &str, etag: &str| Validator {
            resource: resource.into(),
            etag: Some(etag.into()),
            last_modified: Some("Mon, 23 Nov 2026 10:00:00 GMT".into()),
            updated: None,
        };
        let (a, b) = ("https://api.scb.se/a", "TAB638");
        ledger
            .store_validators("p", "w", &[validator(a, "\"1\""), validator(b, "\"2\"")])
            .unwrap();
        ledger
            .store_validators("q", "w", &[validator(a, "\"9\"")])
            .unwrap();
        ledger
            .store_validators("p", "w", &[validator(b, "\"3\"")])
            .unwrap();
        assert_eq!(
            ledger.validators("p", "w").unwrap(),
            [validator(b, "\"3\""), validator(a, "\"1\"")],
            "b replaced, a kept; by resource"
        );
        assert_eq!(
            ledger.validators("q", "w").unwrap(),
            [validator(a, "\"9\"")]
        );
        assert!(ledger.validators("none", "w").unwrap().is_empty());
        assert!(
            ledger.validators("p", "other").unwrap().is_empty(),
            "another warehouse never got p's data: it must not be told it is unchanged"
        );
    }
}
