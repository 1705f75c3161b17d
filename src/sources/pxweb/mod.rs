//! `kind = "pxweb"` (PxWeb API v1) and `kind = "pxweb2"` (PxWebApi 2.0): a table fetched
//! completely, in as few requests as the server's limits allow, and not at all when its
//! `updated` has not moved.
//!
//! Owns: the checked source, the two APIs behind one [`Api`], the harvest's errors, and the
//! [`Survey`] (everything short of data) that `inspect` and `check --online` show.
//! Must not: send requests but through `sources::http`, or decode the json-stat2 answers
//! (`formats::jsonstat` does, piece by piece, and `formats::merge` lays them side by side).
//!
//! Files: `harvest.rs` runs one harvest in order (and archives what it asked), `pieces.rs`
//! sends the data requests, `v1.rs` and `v2.rs` know each API's URLs, bodies and refusals,
//! `meta/` reads their metadata, `select.rs` expands a pipeline's `select`, `plan.rs` splits
//! the query, `listing.rs` pages through a v2 host's tables.

mod harvest;
pub mod listing;
pub mod meta;
mod pieces;
pub mod plan;
pub mod select;
pub mod v1;
pub mod v2;

use serde_json::Value as Json;

use self::harvest::Harvest;
use self::meta::{MetaError, TableInfo, TableMeta};
use self::plan::{Limits, Piece, PlanError};
use self::select::{Expanded, SelectError, Selected, Selection};
use self::v1::V1Table;
use self::v2::V2Table;
use super::http::{HostLimits, HttpError, LimitHints};
use super::{FetchContext, Fetched, Source, SourceError};

/// Cells per request when a host states no limit: Folkhälsodata's `maxCells`, the smallest a
/// Swedish host announces, and SCB's published "100 000 values per table".
pub const DEFAULT_MAX_CELLS: u64 = 100_000;

/// Which API, and where the table is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    V1(V1Table),
    V2(V2Table),
}

/// A checked PxWeb source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxwebSource {
    pub api: Api,
    pub selection: Selection,
    /// The pipeline's `server_*` keys: they beat what the host's config says.
    pub overrides: LimitHints,
    /// The most cells the whole selection may have (`max_table_cells`): refused before any
    /// data request, not after thousands.
    pub max_table_cells: u64,
}

/// Errors of a PxWeb harvest; HTTP errors name their URL themselves.
#[derive(Debug, thiserror::Error)]
pub enum PxwebError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("table {table}: {source}")]
    Plan {
        table: String,
        #[source]
        source: PlanError,
    },
    #[error(
        "table {table}: the selection has {cells} cells, more than max_table_cells = {max} \
         allows; select fewer values, or raise `max_table_cells` in [source]"
    )]
    TooManyCells { table: String, cells: u64, max: u64 },
    #[error(
        "{url}: piece {piece} ({cells} cells) was refused as too many cells even after it was \
         split in two; the server's limit is lower than its config says: set \
         `server_max_cells` in [source] below {cells}"
    )]
    StillTooManyCells {
        url: String,
        piece: String,
        cells: u64,
    },
    #[error(
        "{url}: the answer to {piece} is not the piece asked for ({what}); a proxy may be \
         caching answers, or the server ignored the selection"
    )]
    NotThePiece {
        url: String,
        piece: String,
        what: String,
    },
    #[error(
        "table {table} changed twice while it was being fetched (updated {before:?}, then \
         {after:?}); nothing was kept, the next run fetches it again"
    )]
    KeptChanging {
        table: String,
        before: Option<String>,
        after: Option<String>,
    },
}

impl Api {
    fn kind(&self) -> &'static str {
        match self {
            Self::V1(_) => "pxweb",
            Self::V2(_) => "pxweb2",
        }
    }

    /// The table's identity: the ledger's resource for its `updated`, and `source_url`.
    pub fn table_url(&self) -> String {
        match self {
            Self::V1(table) => table.url.clone(),
            Self::V2(table) => table.table_url(),
        }
    }

    pub fn table_id(&self) -> &str {
        match self {
            Self::V1(table) => &table.id,
            Self::V2(table) => &table.id,
        }
    }

    fn config_url(&self) -> String {
        match self {
            Self::V1(table) => table.config_url.clone(),
            Self::V2(table) => table.config_url(),
        }
    }

    fn data_url(&self) -> String {
        match self {
            Self::V1(table) => table.url.clone(),
            Self::V2(table) => table.data_url(),
        }
    }

    fn body(&self, variables: &[Selected]) -> Json {
        match self {
            Self::V1(_) => V1Table::body(variables),
            Self::V2(_) => V2Table::body(variables),
        }
    }

    fn too_many_cells(&self, error: &HttpError) -> bool {
        match self {
            Self::V1(_) => V1Table::too_many_cells(error),
            Self::V2(_) => V2Table::too_many_cells(error),
        }
    }
}

impl Source for PxwebSource {
    async fn fetch(&self, cx: &FetchContext) -> Result<Fetched, SourceError> {
        let mut harvest = Harvest::new(self, cx)?;
        Ok(harvest.run().await?)
    }
}

/// What a harvest learns before its first data request; also what `inspect` and
/// `check --online` show.
#[derive(Debug, Clone)]
pub struct Survey {
    pub info: TableInfo,
    pub table: TableMeta,
    /// What the host allows, as the limiter applies it now.
    pub host: HostLimits,
    /// The limits the plan was made for.
    pub limits: Limits,
    pub expanded: Expanded,
    pub plan: Vec<Piece>,
    pub notices: Vec<String>,
}

/// What a survey plans for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The pipeline's `select`.
    Selection,
    /// Every value of every variable (`inspect` of a table no pipeline reads yet).
    WholeTable,
}

impl PxwebSource {
    /// The host's limits, the table's metadata and the plan, without any data request.
    pub async fn survey(&self, cx: &FetchContext, scope: Scope) -> Result<Survey, PxwebError> {
        let mut harvest = Harvest::new(self, cx)?;
        harvest.learn_limits().await?;
        let info = harvest.info("table.json").await?;
        let mut survey = harvest.survey(info, scope).await?;
        survey.notices = std::mem::take(&mut harvest.notices);
        Ok(survey)
    }
}
