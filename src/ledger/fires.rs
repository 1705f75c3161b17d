//! The daemon's fire times: which scheduled slots of each pipeline have fired.
//!
//! Owns: the `fires` table, keyed by (pipeline, scheduled time in UTC), so that a slot fires once
//! whatever restarts come between, even inside the repeated hour of a fall-back night (the UTC
//! instants differ where the local clock repeats itself).
//! Must not: compute fire times (`schedule.rs` does) or start runs (the scheduler does).
//!
//! Times are RFC 3339 in UTC with milliseconds (`rfc3339`), so that text order is time order.

use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError};

impl Ledger {
    /// Claims slot `scheduled` of `pipeline`, fired at `fired`: true the first time the slot is
    /// claimed, false when it has fired already (in this process or an earlier one).
    pub fn claim_fire(
        &self,
        pipeline: &str,
        scheduled: &str,
        fired: &str,
    ) -> Result<bool, LedgerError> {
        let inserted = self
            .connection()
            .execute(
                "INSERT INTO fires (pipeline, scheduled_utc, fired) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline, scheduled_utc) DO NOTHING",
                params![pipeline, scheduled, fired],
            )
            .map_err(self.sql())?;
        Ok(inserted > 0)
    }

    /// Names the run slot `scheduled` of `pipeline` started.
    pub fn fire_started(
        &self,
        pipeline: &str,
        scheduled: &str,
        run_id: &str,
    ) -> Result<(), LedgerError> {
        self.connection()
            .execute(
                "UPDATE fires SET run_id = ?3 WHERE pipeline = ?1 AND scheduled_utc = ?2",
                params![pipeline, scheduled, run_id],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The latest slot of `pipeline` that fired, if any.
    pub fn last_fire(&self, pipeline: &str) -> Result<Option<String>, LedgerError> {
        self.connection()
            .query_row(
                "SELECT MAX(scheduled_utc) FROM fires WHERE pipeline = ?1",
                params![pipeline],
                |row| row.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.sql())
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::Ledger;

    #[test]
    fn a_slot_fires_once_across_reopenings() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.last_fire("p").unwrap(), None);
        // 02:30 local on the fall-back night is two instants: 00:30Z and 01:30Z.
        let first = "2026-10-25T00:30:00.000Z";
        let second = "2026-10-25T01:30:00.000Z";
        assert!(ledger.claim_fire("p", first, first).unwrap());
        assert!(!ledger.claim_fire("p", first, second).unwrap());
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        assert!(!ledger.claim_fire("p", first, second).unwrap());
        assert!(ledger.claim_fire("q", first, first).unwrap());
        assert_eq!(ledger.last_fire("p").unwrap().as_deref(), Some(first));
        ledger.fire_started("p", first, "run-1").unwrap();
        assert!(ledger.claim_fire("p", second, second).unwrap());
        assert_eq!(ledger.last_fire("p").unwrap().as_deref(), Some(second));
    }
}
