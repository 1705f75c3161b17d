//! What retention asks of the ledger: runs in the order they were recorded, when each started,
//! forgetting a retired pipeline's rows of one warehouse, and giving freed pages back.
//!
//! Owns: those queries.
//! Must not: remove files or decide what is kept (`retention.rs` does).

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError, RunStatus, UNKNOWN_WAREHOUSE};

/// A run as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAge {
    pub run_id: String,
    pub status: RunStatus,
    /// RFC 3339, UTC.
    pub started: String,
}

/// The ledger's file sizes (database and write-ahead log together) around a vacuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vacuumed {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl Ledger {
    /// Every run of `pipeline`, newest first in the order they were recorded: a clock stepped
    /// back must not make an older run look newer.
    pub fn runs_by_age(&self, pipeline: &str) -> Result<Vec<RunAge>, LedgerError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare(
                "SELECT run_id, status, started FROM runs WHERE pipeline = ?1 ORDER BY rowid DESC",
            )
            .map_err(self.sql())?;
        statement
            .query_map(params![pipeline], |row| {
                Ok(RunAge {
                    run_id: row.get(0)?,
                    status: RunStatus::parse(&row.get::<_, String>(1)?),
                    started: row.get(2)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())
    }

    /// Run `run_id`'s status and start, `None` if this ledger never recorded it.
    pub fn run_age(&self, run_id: &str) -> Result<Option<RunAge>, LedgerError> {
        self.connection()
            .query_row(
                "SELECT run_id, status, started FROM runs WHERE run_id = ?1",
                params![run_id],
                |row| {
                    Ok(RunAge {
                        run_id: row.get(0)?,
                        status: RunStatus::parse(&row.get::<_, String>(1)?),
                        started: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.sql())
    }

    /// Forgets, in one transaction, what the ledger keeps of retired `pipeline` for `warehouse`:
    /// its coverage rows (and those recorded before the ledger knew warehouses, which every
    /// warehouse falls back to), its table description and its source validators. Its runs
    /// stay: they are history. Returns how many rows went.
    pub fn forget_pipeline(&self, pipeline: &str, warehouse: &str) -> Result<usize, LedgerError> {
        let mut connection = self.connection();
        let transaction = connection.transaction().map_err(self.sql())?;
        let mut removed = transaction
            .execute(
                "DELETE FROM coverage WHERE pipeline = ?1 AND warehouse IN (?2, ?3)",
                params![pipeline, warehouse, UNKNOWN_WAREHOUSE],
            )
            .map_err(self.sql())?;
        for table in ["about", "validators"] {
            removed += transaction
                .execute(
                    &format!("DELETE FROM {table} WHERE pipeline = ?1 AND warehouse = ?2"),
                    params![pipeline, warehouse],
                )
                .map_err(self.sql())?;
        }
        transaction.commit().map_err(self.sql())?;
        Ok(removed)
    }

    /// Rewrites the database without its free pages (`VACUUM`) and empties the write-ahead log
    /// into it, so that the file shrinks on disk. Other users of the ledger wait meanwhile
    /// (SQLite's busy timeout); on a ledger of a few thousand runs that is well under a second.
    pub fn vacuum(&self) -> Result<Vacuumed, LedgerError> {
        let bytes_before = self.bytes_on_disk();
        self.connection()
            .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(self.sql())?;
        Ok(Vacuumed {
            bytes_before,
            bytes_after: self.bytes_on_disk(),
        })
    }

    fn bytes_on_disk(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        [self.path.clone(), wal.into()]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_come_newest_first_in_the_order_recorded_whatever_their_clocks() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        for (run, started) in [("a", "2026-11-23T10:00:00Z"), ("b", "2026-11-22T10:00:00Z")] {
            ledger.start_run(run, "p", "manual", started, "/w").unwrap();
        }
        let ids: Vec<String> = (ledger.runs_by_age("p").unwrap().into_iter())
            .map(|r| r.run_id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(
            ledger.run_age("a").unwrap().unwrap().status,
            RunStatus::Running
        );
        assert_eq!(ledger.run_age("zz").unwrap(), None);
    }

    #[test]
    fn a_retired_pipeline_loses_its_coverage_in_that_warehouse_only() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        for (run, pipeline, warehouse) in [("r1", "p", "/w"), ("r2", "q", "/w"), ("r3", "p", "/x")]
        {
            ledger
                .start_run(run, pipeline, "manual", "2026-11-23T10:00:00Z", warehouse)
                .unwrap();
            let end = super::super::RunEnd {
                status: RunStatus::Succeeded,
                finished: "2026-11-23T10:00:01Z".into(),
                rows_read: 1,
                rows_written: 1,
                rows_rejected: 0,
                content_hash: None,
                reason: None,
                error: None,
                report: None,
            };
            ledger
                .finish_run(run, &end, Some((pipeline, "[]")))
                .unwrap();
        }
        assert_eq!(ledger.forget_pipeline("p", "/w").unwrap(), 1);
        let pipelines = |w| -> Vec<String> {
            ledger
                .coverage(w)
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        };
        assert_eq!(pipelines("/w"), ["q"]);
        assert_eq!(pipelines("/x"), ["p"]);
        let vacuumed = ledger.vacuum().unwrap();
        assert!(vacuumed.bytes_after > 0);
    }
}
