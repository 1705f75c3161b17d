//! The ledger's schema through time: every version as a forward step from the one before.
//!
//! Owns: the `schema_version` table, the ordered list of steps ([`STEPS`]), recognising a ledger
//! written before versions were recorded, and refusing one newer than this binary.
//! Must not: read or write runs (the ledger's methods do), or ever change a step once released:
//! a ledger in the field has already run it. A change of schema is a new step at the end.
//!
//! Each step runs in its own `BEGIN IMMEDIATE` transaction that also records its version, so a
//! crash mid-step leaves the ledger at the version before, and two processes opening an old
//! ledger at once migrate it once (the second waits, then finds the new version).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::LedgerError;

/// Version 1: the schema of the first release, verbatim. A ledger it wrote has no
/// `schema_version` table; [`migrate`] knows it by its `runs` table.
const V1: &str = "
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

/// Version 2: runs know their warehouse, coverage is kept per (warehouse, pipeline), and HTTP or
/// source validators have a table.
///
/// Old runs get a NULL warehouse: nobody recorded it. Old coverage rows move under the
/// warehouse `''` ([`super::UNKNOWN_WAREHOUSE`]), which every warehouse's coverage falls back to
/// for a pipeline it has no row of, as version 1 showed every row to every warehouse; each
/// pipeline's next committed run replaces its `''` row by one under its own warehouse.
const V2: &str = "
ALTER TABLE runs ADD COLUMN warehouse TEXT;
ALTER TABLE runs ADD COLUMN commit_started TEXT;
CREATE TABLE coverage_by_warehouse (
    warehouse TEXT NOT NULL,
    pipeline  TEXT NOT NULL,
    rows      TEXT NOT NULL,
    PRIMARY KEY (warehouse, pipeline)
);
INSERT INTO coverage_by_warehouse (warehouse, pipeline, rows)
    SELECT '', pipeline, rows FROM coverage;
DROP TABLE coverage;
ALTER TABLE coverage_by_warehouse RENAME TO coverage;
CREATE TABLE validators (
    warehouse     TEXT NOT NULL,
    pipeline      TEXT NOT NULL,
    resource      TEXT NOT NULL,
    etag          TEXT,
    last_modified TEXT,
    updated       TEXT,
    PRIMARY KEY (warehouse, pipeline, resource)
);
";

/// Version 3: a skipped run records why (`unchanged`), for operators and the admin API; what a
/// network source said about its table (labels, notes, licence) is kept per (warehouse,
/// pipeline) for the catalogues, as coverage is.
const V3: &str = "
ALTER TABLE runs ADD COLUMN reason TEXT;
CREATE TABLE about (
    warehouse TEXT NOT NULL,
    pipeline  TEXT NOT NULL,
    about     TEXT NOT NULL,
    PRIMARY KEY (warehouse, pipeline)
);
";

/// Version 4: the daemon's fire times, one row per (pipeline, scheduled time in UTC), so that a
/// restart (even inside the repeated hour of a fall-back night) never fires one slot twice; runs
/// may now also be `queued` (waiting for a slot) or `cancelled` (by an operator), found by status.
const V4: &str = "
CREATE TABLE fires (
    pipeline      TEXT NOT NULL,
    scheduled_utc TEXT NOT NULL,
    fired         TEXT NOT NULL,
    run_id        TEXT,
    PRIMARY KEY (pipeline, scheduled_utc)
);
CREATE INDEX runs_by_status ON runs (status, started);
";

/// The steps in order: `STEPS[i]` takes a ledger from version `i` to `i + 1` (version 0 = an
/// empty database).
const STEPS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this binary writes.
pub const CURRENT: u32 = STEPS.len() as u32;

const VERSION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
";

/// Brings the ledger at `path` up to [`CURRENT`], one step per transaction; a ledger already
/// there is left untouched. `Err(Newer)` for a ledger a newer binary wrote.
pub(super) fn migrate(connection: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let sql = |source| LedgerError::Sql {
        path: path.to_path_buf(),
        source,
    };
    // The version before the first step: a new ledger passes every step too, and only an
    // upgrade is news to the operator.
    let mut first_found = None;
    loop {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        let found = version(&transaction).map_err(sql)?;
        let upgrading = *first_found.get_or_insert(found) > 0;
        if found > CURRENT {
            return Err(LedgerError::Newer {
                path: path.to_path_buf(),
                found,
                known: CURRENT,
            });
        }
        let Some(step) = STEPS.get(found as usize) else {
            return transaction.commit().map_err(sql);
        };
        let next = found + 1;
        let migrate = |source| LedgerError::Migrate {
            path: path.to_path_buf(),
            version: next,
            source,
        };
        transaction.execute_batch(step).map_err(migrate)?;
        transaction
            .execute("INSERT INTO schema_version (version) VALUES (?1)", [next])
            .map_err(migrate)?;
        transaction.commit().map_err(migrate)?;
        if upgrading {
            tracing::info!(path = %path.display(), version = next, "ledger schema migrated");
        }
    }
}

/// The version of the open ledger, creating `schema_version` if it is missing: 0 for an empty
/// database, 1 (then recorded) for a ledger of the first release, which had no version table.
fn version(connection: &Connection) -> rusqlite::Result<u32> {
    let has_table = |name: &str| -> rusqlite::Result<bool> {
        connection.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [name],
            |row| row.get(0),
        )
    };
    if !has_table("schema_version")? {
        connection.execute_batch(VERSION_TABLE)?;
        if has_table("runs")? {
            connection.execute("INSERT INTO schema_version (version) VALUES (1)", [])?;
        }
    }
    connection.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{LEDGER_FILE, Ledger, RunStatus, UNKNOWN_WAREHOUSE};

    /// The schema of the first release as it wrote it (no version table), frozen here: `V1` must
    /// never drift from it.
    const FIRST_RELEASE_SCHEMA: &str = "
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

    /// A ledger as the first release left it: one succeeded run of `p` and its coverage.
    fn first_release_ledger(state: &Path) {
        let connection = Connection::open(state.join(LEDGER_FILE)).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL;")
            .unwrap();
        connection.execute_batch(FIRST_RELEASE_SCHEMA).unwrap();
        connection
            .execute_batch(
                "INSERT INTO runs (run_id, pipeline, trigger, started, finished, status, rows_read,
                                   rows_written, rows_rejected, content_hash, error, report)
                 VALUES ('r1', 'p', 'manual', '2026-11-23T10:00:00.000Z',
                         '2026-11-23T10:00:01.000Z', 'succeeded', 10, 9, 1, 'aaa', NULL, NULL);
                 INSERT INTO coverage (pipeline, rows) VALUES ('p', '[1]');",
            )
            .unwrap();
    }

    fn versions(state: &Path) -> Vec<u32> {
        let connection = Connection::open(state.join(LEDGER_FILE)).unwrap();
        let mut statement = connection
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn v1_is_the_first_release_schema_verbatim() {
        assert_eq!(V1, FIRST_RELEASE_SCHEMA);
    }

    #[test]
    fn a_ledger_of_the_first_release_migrates_to_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        first_release_ledger(dir.path());
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(versions(dir.path()), [1, 2, 3, 4]);
        assert_eq!(CURRENT, 4);

        let old = &ledger.history(Some("p"), 10).unwrap()[0];
        assert_eq!(old.run_id, "r1");
        assert_eq!(old.status, RunStatus::Succeeded);
        assert_eq!(old.rows_written, 9);
        assert_eq!(old.warehouse, None);
        // Nobody knows where r1 wrote: its hash must not skip a run into any warehouse.
        assert_eq!(ledger.last_content_hash("p", "/srv/w").unwrap(), None);
        // Its coverage stays visible to every warehouse until p commits again.
        let kept = vec![("p".to_string(), "[1]".to_string())];
        assert_eq!(ledger.coverage("/srv/w").unwrap(), kept);
        assert_eq!(ledger.coverage("/srv/other").unwrap(), kept);

        ledger
            .start_run("r2", "p", "manual", "2026-11-24T10:00:00.000Z", "/srv/w")
            .unwrap();
        let end = crate::ledger::RunEnd {
            status: RunStatus::Succeeded,
            finished: "2026-11-24T10:00:01.000Z".into(),
            rows_read: 1,
            rows_written: 1,
            rows_rejected: 0,
            content_hash: Some("bbb".into()),
            reason: None,
            error: None,
            report: None,
        };
        ledger.finish_run("r2", &end, Some(("p", "[2]"))).unwrap();
        assert_eq!(
            ledger.coverage("/srv/w").unwrap(),
            [("p".to_string(), "[2]".to_string())]
        );
        assert!(
            ledger.coverage("/srv/other").unwrap().is_empty(),
            "the {UNKNOWN_WAREHOUSE:?} row is superseded once p commits into a known warehouse"
        );
    }

    #[test]
    fn an_empty_state_directory_gets_every_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(Ledger::open(dir.path()).unwrap());
        assert_eq!(versions(dir.path()), [1, 2, 3, 4]);
    }

    #[test]
    fn migrating_twice_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        first_release_ledger(dir.path());
        drop(Ledger::open(dir.path()).unwrap());
        let path = dir.path().join(LEDGER_FILE);
        let mut connection = Connection::open(&path).unwrap();
        let dump = |connection: &Connection| -> Vec<String> {
            let mut statement = connection
                .prepare(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL
                     UNION ALL SELECT version || applied FROM schema_version
                     UNION ALL SELECT run_id || status FROM runs
                     UNION ALL SELECT warehouse || pipeline || rows FROM coverage",
                )
                .unwrap();
            statement
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let before = dump(&connection);
        migrate(&mut connection, &path).unwrap();
        assert_eq!(dump(&connection), before);
        drop(connection);
        drop(Ledger::open(dir.path()).unwrap());
        assert_eq!(versions(dir.path()), [1, 2, 3, 4]);
    }

    #[test]
    fn a_ledger_from_a_newer_indikator_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(Ledger::open(dir.path()).unwrap());
        let path = dir.path().join(LEDGER_FILE);
        Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [CURRENT + 1],
            )
            .unwrap();
        let mut connection = Connection::open(&path).unwrap();
        let err = migrate(&mut connection, Path::new("state/ledger.sqlite")).unwrap_err();
        insta::assert_snapshot!(err, @"the ledger state/ledger.sqlite has schema version 5, but this indikator knows versions up to 4: a newer indikator wrote it. Run that version or a later one against this state directory, or give this one a state directory of its own");
        drop(connection);
        assert!(Ledger::open(dir.path()).is_err());
        assert_eq!(versions(dir.path()), [1, 2, 3, 4, 5]);
    }
}
