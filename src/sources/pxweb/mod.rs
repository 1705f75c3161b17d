//! `kind = "pxweb"` (PxWeb API v1) and `kind = "pxweb2"` (PxWebApi 2.0): a table fetched
//! completely, in as few requests as the server's limits allow, and not at all when its
//! `updated` has not moved.
//!
//! Owns: the order of a harvest (the host's config → the table's `updated` → unchanged? → its
//! metadata and code lists → expand → plan → the data pieces → the table's `updated` again), the
//! re-plan of a piece the server still finds too big, the restart when the table changed while it
//! was being fetched, and the manifest of every request.
//! Must not: send requests but through `sources::http`, or decode the json-stat2 answers
//! (`formats::jsonstat` does, piece by piece, and `formats::merge` lays them side by side).
//!
//! Files: `v1.rs` and `v2.rs` know each API's URLs, bodies and refusals, `meta.rs` reads their
//! metadata, `select.rs` expands a pipeline's `select`, `plan.rs` splits the query.

pub mod listing;
pub mod meta;
pub mod plan;
pub mod select;
pub mod v1;
pub mod v2;

use std::collections::HashMap;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::Value as Json;

use self::meta::{Codelist, MetaError, NodeKind, TableInfo, TableMeta};
use self::plan::{Dimension, Limits, Piece, PlanError};
use self::select::{Expanded, SelectError, Selected, Selection};
use self::v1::V1Table;
use self::v2::V2Table;
use super::http::{Expect, HostLimits, HttpClient, HttpError, LimitHints, Response, host_key};
use super::manifest::{Exchange, MANIFEST_NAME, Manifest};
use super::{About, CodeLabel, FetchContext, Fetched, Payload, Source, SourceError};
use crate::ledger::Validator;

/// Cells per request when a host states no limit: Folkhälsodata's `maxCells`, the smallest a
/// Swedish host announces, and SCB's published "100 000 values per table".
pub const DEFAULT_MAX_CELLS: u64 = 100_000;
/// Data requests in flight at once: enough to keep a window's calls busy while answers stream
/// in; the limiter decides when each may start.
const PIECES_IN_FLIGHT: usize = 4;

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

/// One fetch of one table: what it has asked so far, and the answers kept for the archive.
struct Harvest<'a> {
    source: &'a PxwebSource,
    http: &'a HttpClient,
    cx: &'a FetchContext,
    host: String,
    manifest: Manifest,
    /// Metadata answers, archived beside the pieces and not decoded.
    records: Vec<Payload>,
    notices: Vec<String>,
    /// The host's licence, as its config states it.
    license: Option<String>,
}

impl<'a> Harvest<'a> {
    fn new(source: &'a PxwebSource, cx: &'a FetchContext) -> Result<Self, HttpError> {
        let host = host_key(&source.api.table_url())?;
        Ok(Self {
            source,
            http: &cx.http,
            cx,
            host,
            manifest: Manifest {
                kind: source.api.kind().into(),
                table: source.api.table_id().into(),
                url: source.api.table_url(),
                ..Manifest::default()
            },
            records: Vec::new(),
            notices: Vec::new(),
            license: None,
        })
    }

    async fn run(&mut self) -> Result<Fetched, PxwebError> {
        self.learn_limits().await?;
        let table_url = self.source.api.table_url();
        let mut info = self.info("table.json").await?;
        let known = self
            .cx
            .validators
            .iter()
            .find(|v| v.resource == table_url)
            .and_then(|v| v.updated.as_deref());
        if info.updated.is_some() && known == info.updated.as_deref() {
            tracing::info!(updated = known, "table unchanged since the last run");
            return Ok(Fetched::unchanged(vec![self.validator(&info)]));
        }
        // A table that changes while it is fetched would mix two versions: fetch it again, once.
        for attempt in 1..=2 {
            let survey = self.survey(info.clone(), Scope::Selection).await?;
            let pieces = self.fetch_pieces(&survey).await?;
            let after = self.info("table-after.json").await?;
            if after.updated == info.updated {
                self.manifest.updated = after.updated.clone();
                let records = std::mem::take(&mut self.records)
                    .into_iter()
                    .chain([Payload::new(
                        MANIFEST_NAME,
                        table_url.clone(),
                        self.manifest.to_bytes(),
                    )])
                    .collect();
                let about = self.about(&survey, &after, &pieces);
                return Ok(Fetched::new(pieces, vec![self.validator(&after)])
                    .with_records(records)
                    .with_notices(std::mem::take(&mut self.notices))
                    .with_about(about));
            }
            tracing::warn!(
                attempt,
                before = info.updated,
                after = after.updated,
                "the table changed while it was fetched; fetching it again"
            );
            if attempt == 2 {
                return Err(PxwebError::KeptChanging {
                    table: self.source.api.table_id().into(),
                    before: info.updated,
                    after: after.updated,
                });
            }
            info = after;
        }
        unreachable!("the loop returns on its last attempt")
    }

    /// The table's description for the catalogues: labels of every code fetched, both ids.
    fn about(&self, survey: &Survey, after: &TableInfo, pieces: &[Payload]) -> About {
        let codes = survey
            .expanded
            .variables
            .iter()
            .flat_map(|variable| {
                variable.values.iter().map(|value| CodeLabel {
                    column: variable.code.clone(),
                    code: value.code.clone(),
                    label: value.label.clone(),
                })
            })
            .collect();
        let (table_id, path, language) = match &self.source.api {
            Api::V1(table) => (
                pieces.first().and_then(|piece| px_table_id(&piece.bytes)),
                Some(table.path.clone()),
                table.language.clone(),
            ),
            Api::V2(table) => (Some(table.id.clone()), None, table.lang.clone()),
        };
        About {
            table: self
                .source
                .api
                .table_id()
                .trim_end_matches(".px")
                .to_string(),
            table_id,
            path,
            label: survey.table.label.clone(),
            url: self.source.api.table_url(),
            updated: after.updated.clone(),
            language,
            license: self.license.clone(),
            notes: survey.table.notes.clone(),
            codes,
        }
    }

    fn validator(&self, info: &TableInfo) -> Validator {
        Validator {
            resource: self.source.api.table_url(),
            etag: None,
            last_modified: None,
            updated: info.updated.clone(),
        }
    }

    /// The host's limits from its config, then the pipeline's overrides on top. A host without
    /// a config (some v1 hosts answer 404) keeps what the limiter knows or its safe default.
    async fn learn_limits(&mut self) -> Result<(), PxwebError> {
        let limiter = self.http.limiter();
        limiter.set_overrides(&self.host, self.source.overrides);
        let url = self.source.api.config_url();
        match self.get("config.json", &url).await {
            Ok(response) => {
                let config: Json = serde_json::from_slice(&response.bytes).unwrap_or_default();
                limiter.learn_config(&self.host, LimitHints::from_pxweb_config(&config));
                self.license = config
                    .get("license")
                    .and_then(Json::as_str)
                    .map(str::to_string);
            }
            Err(PxwebError::Http(error))
                if error
                    .status()
                    .is_some_and(|s| (400..500).contains(&s) && s != 429) =>
            {
                tracing::warn!(error = %error, "no config from the host; using the limits known for it");
            }
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// What the table says about itself: v2 `/tables/{id}`; v1 its node in the level above
    /// (a host that lists no such node gives no `updated`, and the content hash decides).
    async fn info(&mut self, name: &str) -> Result<TableInfo, PxwebError> {
        match &self.source.api {
            Api::V2(table) => {
                let url = table.info_url();
                let response = self.get(name, &url).await?;
                let info = meta::v2_table_info(&response.bytes, &response.url)?;
                if info.discontinued == Some(true) {
                    self.notice(format!(
                        "table {} is marked discontinued by {}",
                        table.id, table.root
                    ));
                }
                if let Some(stale) = info.stale(chrono::Utc::now().date_naive()) {
                    self.notice(format!("table {}: {stale}", table.id));
                }
                Ok(info)
            }
            Api::V1(table) => {
                let url = table.level_url.clone();
                let response = self.get(name, &url).await?;
                let nodes = meta::v1_nodes(&response.bytes, &response.url)?;
                let node = nodes
                    .into_iter()
                    .find(|n| n.kind == NodeKind::Table && n.id.eq_ignore_ascii_case(&table.id));
                if node.is_none() {
                    tracing::warn!(level = %url, table = %table.id, "the level does not list the table; its `updated` is unknown");
                }
                Ok(TableInfo {
                    id: table.id.clone(),
                    label: node.as_ref().map(|n| n.text.clone()).unwrap_or_default(),
                    updated: node.and_then(|n| n.updated),
                    ..TableInfo::default()
                })
            }
        }
    }

    fn notice(&mut self, notice: String) {
        tracing::warn!(notice = %notice, "table notice");
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
    }

    async fn metadata(&mut self) -> Result<(TableMeta, HashMap<String, Codelist>), PxwebError> {
        let mut codelists = HashMap::new();
        let table = match &self.source.api {
            Api::V1(table) => {
                let url = table.url.clone();
                let response = self.get("metadata.json", &url).await?;
                meta::v1_table(&response.bytes, &table.id, &response.url)?
            }
            Api::V2(table) => {
                let response = self.get("metadata.json", &table.metadata_url()).await?;
                let meta = meta::v2_table(&response.bytes, &response.url)?;
                for id in self.source.selection.codelists() {
                    let url = table.codelist_url(id);
                    let response = self.get(&format!("codelist-{id}.json"), &url).await?;
                    codelists.insert(
                        id.to_string(),
                        meta::v2_codelist(&response.bytes, &response.url)?,
                    );
                }
                meta
            }
        };
        Ok((table, codelists))
    }

    /// Metadata, expansion and plan.
    async fn survey(&mut self, info: TableInfo, scope: Scope) -> Result<Survey, PxwebError> {
        let (table, codelists) = self.metadata().await?;
        let selection = match scope {
            Scope::Selection => self.source.selection.clone(),
            Scope::WholeTable => Selection::whole(&table),
        };
        let expanded = select::expand(&table, &selection, &codelists)?;
        let cells = expanded.cells();
        if scope == Scope::Selection && cells > self.source.max_table_cells {
            return Err(PxwebError::TooManyCells {
                table: table.id,
                cells,
                max: self.source.max_table_cells,
            });
        }
        let host = self.http.limiter().limits(&self.host);
        let limits = Limits {
            max_cells: host.max_cells.unwrap_or(DEFAULT_MAX_CELLS),
            max_values: host.max_values,
        };
        let plan =
            plan::plan(&dimensions(&expanded), &limits).map_err(|source| PxwebError::Plan {
                table: table.id.clone(),
                source,
            })?;
        tracing::info!(
            cells,
            pieces = plan.len(),
            max_cells = limits.max_cells,
            "planned"
        );
        Ok(Survey {
            info,
            table,
            host,
            limits,
            expanded,
            plan,
            notices: Vec::new(),
        })
    }

    /// Every piece of the plan: the payloads to decode.
    async fn fetch_pieces(&mut self, survey: &Survey) -> Result<Vec<Payload>, PxwebError> {
        let Survey {
            expanded,
            limits,
            plan,
            ..
        } = survey;
        self.manifest.max_cells = limits.max_cells;
        self.manifest.max_values = limits.max_values;
        let dimensions = dimensions(expanded);
        let url = self.source.api.data_url();
        let count = plan.len();
        // Collected first: a lazy `map` inside the stream trips the compiler's proof that this
        // future is `Send` (rust-lang/rust#102211).
        let mut fetches = Vec::with_capacity(count);
        for (i, piece) in plan.iter().enumerate() {
            let name = format!("piece-{:04}", i + 1);
            fetches.push(self.fetch_piece(name, piece, expanded, &dimensions, limits, &url, count));
        }
        let answers: Vec<Vec<(String, Json, u64, Response)>> = futures_util::stream::iter(fetches)
            .buffered(PIECES_IN_FLIGHT)
            .try_collect()
            .await?;
        let mut payloads = Vec::new();
        for (name, body, cells, response) in answers.into_iter().flatten() {
            let name = format!("{name}.json");
            self.record(&name, "POST", Some(body), Some(cells), &response);
            let origin = format!("{}#{}", response.url, name.trim_end_matches(".json"));
            payloads.push(Payload::new(&name, origin, response.bytes));
        }
        Ok(payloads)
    }

    /// One piece; if the server still finds it too big, the piece split in two (or more), each
    /// sent once.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_piece(
        &self,
        name: String,
        piece: &Piece,
        expanded: &Expanded,
        dimensions: &[Dimension],
        limits: &Limits,
        url: &str,
        count: usize,
    ) -> Result<Vec<(String, Json, u64, Response)>, PxwebError> {
        let send = |piece: &Piece| {
            let body = self.source.api.body(&piece_variables(expanded, piece));
            async move {
                let response = self
                    .http
                    .post_bytes(url, &body, Expect::Json, &self.cx.cancel)
                    .await;
                (body, response)
            }
        };
        let (body, response) = send(piece).await;
        match response {
            Ok(response) => Ok(vec![(name, body, piece.cells(), response)]),
            Err(error) if self.source.api.too_many_cells(&error) => {
                tracing::warn!(piece = %name, of = count, cells = piece.cells(), "refused as too many cells; split smaller");
                let parts =
                    plan::replan(piece, dimensions, limits).map_err(|source| PxwebError::Plan {
                        table: self.source.api.table_id().into(),
                        source,
                    })?;
                let mut answers = Vec::with_capacity(parts.len());
                for (j, part) in parts.iter().enumerate() {
                    let (body, response) = send(part).await;
                    let part_name = format!("{name}-{}", j + 1);
                    match response {
                        Ok(response) => answers.push((part_name, body, part.cells(), response)),
                        Err(error) if self.source.api.too_many_cells(&error) => {
                            return Err(PxwebError::StillTooManyCells {
                                url: url.to_string(),
                                piece: part_name,
                                cells: part.cells(),
                            });
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Ok(answers)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// GETs a metadata resource (checked to be JSON), keeping it for the archive.
    async fn get(&mut self, name: &str, url: &str) -> Result<Response, PxwebError> {
        let response = self
            .http
            .send(
                &super::http::Request::get(url).with_expect(Expect::Json),
                &self.cx.cancel,
            )
            .await?;
        let super::http::Answer::Fresh(response) = response else {
            unreachable!("no validator was sent, so no 304 can come back")
        };
        self.record(name, "GET", None, None, &response);
        self.records.push(Payload::new(
            name,
            response.url.clone(),
            response.bytes.clone(),
        ));
        Ok(response)
    }

    fn record(
        &mut self,
        name: &str,
        method: &'static str,
        body: Option<Json>,
        cells: Option<u64>,
        response: &Response,
    ) {
        self.manifest.requests.push(Exchange {
            name: super::safe_name(name),
            method,
            url: response.url.clone(),
            body,
            status: response.status,
            bytes: response.bytes.len() as u64,
            blake3: blake3::hash(&response.bytes).to_hex().to_string(),
            cells,
        });
    }
}

/// `extension.px.tableid` of a json-stat2 answer (`TAB638`): SCB's v1 answers carry the v2 id
/// there. Read by serde, skipping everything else.
fn px_table_id(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        extension: Option<Extension>,
    }
    #[derive(serde::Deserialize)]
    struct Extension {
        px: Option<Px>,
    }
    #[derive(serde::Deserialize)]
    struct Px {
        tableid: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(bytes).ok()?;
    answer.extension?.px?.tableid
}

/// The planner's view of an expanded query.
fn dimensions(expanded: &Expanded) -> Vec<Dimension> {
    expanded
        .variables
        .iter()
        .map(|v| Dimension {
            code: v.code.clone(),
            size: v.values.len(),
            role: v.role,
        })
        .collect()
}

/// The variables of one piece: each with the codes of its range.
fn piece_variables(expanded: &Expanded, piece: &Piece) -> Vec<Selected> {
    expanded
        .variables
        .iter()
        .zip(&piece.ranges)
        .map(|(variable, range)| Selected {
            values: variable.values[range.clone()].to_vec(),
            ..variable.clone()
        })
        .collect()
}
