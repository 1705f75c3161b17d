//! `catalog/` rewritten after a committed run: indicators and areas from `schemas/`; coverage,
//! tables and code labels from the ledger's rows of every pipeline of the warehouse.
//!
//! Owns: which catalog files there are and where each one's rows come from.
//! Must not: build their Arrow shape (catalog does) or decide when they are rewritten (run does).

use tokio_util::sync::CancellationToken;

use super::run::RunError;
use crate::catalog::{self, CoverageRow};
use crate::ledger::Ledger;
use crate::schemas::Schemas;
use crate::sources::About;
use crate::warehouse::Warehouse;

/// Rewrites `catalog/{indicators,areas,coverage,tables,codes}.parquet` of `warehouse`.
pub fn write_catalogs(
    warehouse: &Warehouse,
    ledger: &Ledger,
    schemas: &Schemas,
    cancel: &CancellationToken,
) -> Result<(), RunError> {
    warehouse.write_catalog("indicators", &catalog::indicators_batch(schemas), cancel)?;
    warehouse.write_catalog("areas", &catalog::areas_batch(schemas), cancel)?;
    let mut rows: Vec<CoverageRow> = Vec::new();
    for (pipeline, json) in ledger.coverage(&warehouse.key())? {
        match serde_json::from_str::<Vec<CoverageRow>>(&json) {
            Ok(pipeline_rows) => rows.extend(pipeline_rows),
            Err(error) => tracing::warn!(pipeline, %error, "coverage in the ledger is unreadable"),
        }
    }
    warehouse.write_catalog("coverage", &catalog::coverage_batch(&rows), cancel)?;
    let mut abouts: Vec<(String, About)> = Vec::new();
    for (pipeline, json) in ledger.about(&warehouse.key())? {
        match serde_json::from_str::<About>(&json) {
            Ok(about) => abouts.push((pipeline, about)),
            Err(error) => {
                tracing::warn!(pipeline, %error, "a table description in the ledger is unreadable")
            }
        }
    }
    warehouse.write_catalog("tables", &catalog::tables_batch(&abouts), cancel)?;
    warehouse.write_catalog("codes", &catalog::codes_batch(&abouts), cancel)?;
    Ok(())
}
