//! One harvest of one table: the host's config → the table's `updated` → unchanged? → its
//! metadata and code lists → expand → plan → the pieces (`pieces.rs`) → the table's `updated`
//! again, with everything asked recorded for the archive and the manifest.
//!
//! Owns: the order of those steps, the restart when the table changed meanwhile, what is
//! archived under which name, and the table's description for the catalogues.
//! Must not: know either API's URLs or bodies (`v1.rs`, `v2.rs`) or split queries (`plan.rs`).

use std::collections::HashMap;

use serde_json::Value as Json;

use super::meta::{self, Codelist, NodeKind, TableInfo, TableMeta};
use super::pieces::{self, Answered};
use super::plan::{self, Limits};
use super::select::{self, Selection, Via};
use super::{Api, DEFAULT_MAX_CELLS, PxwebError, PxwebSource, Scope, Survey};
use crate::ledger::Validator;
use crate::sources::http::{Expect, HttpClient, HttpError, LimitHints, Response, host_key};
use crate::sources::manifest::{Exchange, MANIFEST_NAME, Manifest};
use crate::sources::{About, CodeLabel, FetchContext, Fetched, Payload, safe_name};

/// One fetch of one table: what it has asked so far, and the answers kept for the archive.
pub(super) struct Harvest<'a> {
    pub(super) source: &'a PxwebSource,
    pub(super) http: &'a HttpClient,
    pub(super) cx: &'a FetchContext,
    host: String,
    manifest: Manifest,
    /// Answers archived beside the pieces and not decoded: metadata, and the pieces of an
    /// attempt given up because the table changed.
    records: Vec<Payload>,
    pub(super) notices: Vec<String>,
    /// The host's licence, as its config states it.
    license: Option<String>,
    /// 1, or 2 once the table changed during the first attempt; names what each asks.
    attempt: u32,
}

impl<'a> Harvest<'a> {
    pub(super) fn new(source: &'a PxwebSource, cx: &'a FetchContext) -> Result<Self, HttpError> {
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
            attempt: 1,
        })
    }

    pub(super) async fn run(&mut self) -> Result<Fetched, PxwebError> {
        self.learn_limits().await?;
        let table_url = self.source.api.table_url();
        let mut info = self.info("table").await?;
        let known = self
            .cx
            .validators
            .iter()
            .find(|v| v.resource == table_url)
            .and_then(|v| v.updated.as_deref());
        if info.updated.is_some() && known == info.updated.as_deref() {
            tracing::info!(updated = known, "table unchanged since the last run");
            return Ok(Fetched::unchanged(vec![self.validator(&info)])
                .with_notices(std::mem::take(&mut self.notices)));
        }
        // A table that changes while it is fetched would mix two versions: fetch it again, once.
        loop {
            let survey = self.survey(info.clone(), Scope::Selection).await?;
            let answered = pieces::fetch(self, &survey).await?;
            let after = self.info("table-after").await?;
            if after.updated == info.updated {
                return Ok(self.finish(&survey, &after, answered));
            }
            tracing::warn!(
                attempt = self.attempt,
                before = info.updated,
                after = after.updated,
                "the table changed while it was fetched"
            );
            if self.attempt == 2 {
                return Err(PxwebError::KeptChanging {
                    table: self.source.api.table_id().into(),
                    before: info.updated,
                    after: after.updated,
                });
            }
            self.give_up_attempt(answered);
            self.attempt = 2;
            info = after;
        }
    }

    /// The payloads (every answered piece, in plan order), the records and manifest, the
    /// validator and the table's description.
    fn finish(&mut self, survey: &Survey, after: &TableInfo, answered: Vec<Answered>) -> Fetched {
        let mut payloads = Vec::with_capacity(answered.len());
        for answer in answered {
            let payload = self.record_piece(answer, false);
            payloads.extend(payload);
        }
        self.manifest.updated = after.updated.clone();
        let mut records = std::mem::take(&mut self.records);
        records.push(Payload::new(
            MANIFEST_NAME,
            self.source.api.table_url(),
            self.manifest.to_bytes(),
        ));
        let about = self.about(survey, after, &payloads);
        Fetched::new(payloads, vec![self.validator(after)])
            .with_records(records)
            .with_notices(std::mem::take(&mut self.notices))
            .with_about(about)
    }

    /// Keeps a given-up attempt's pieces for the archive (not to decode) and marks everything
    /// that attempt asked as discarded in the manifest.
    fn give_up_attempt(&mut self, answered: Vec<Answered>) {
        for exchange in &mut self.manifest.requests {
            exchange.discarded = true;
        }
        for answer in answered {
            if let Some(payload) = self.record_piece(answer, true) {
                self.records.push(payload);
            }
        }
    }

    /// Records one data request in the manifest; its payload if it was answered.
    fn record_piece(&mut self, answer: Answered, discarded: bool) -> Option<Payload> {
        let name = format!("{}.json", self.named(&answer.name));
        let (status, bytes, blake3) = match &answer.response {
            Ok(response) => (
                response.status,
                response.bytes.len() as u64,
                Some(blake3::hash(&response.bytes).to_hex().to_string()),
            ),
            Err(refusal) => (refusal.status, refusal.body_start.len() as u64, None),
        };
        self.manifest.requests.push(Exchange {
            name: name.clone(),
            method: "POST",
            url: answer.url.clone(),
            body: Some(answer.body),
            status,
            bytes,
            blake3,
            cells: Some(answer.cells),
            discarded,
        });
        let response = answer.response.ok()?;
        let origin = format!("{}#{}", response.url, name.trim_end_matches(".json"));
        Some(Payload::new(&name, origin, response.bytes))
    }

    /// `name` as this attempt archives it: `metadata`, or `retry-metadata` in a second attempt.
    fn named(&self, name: &str) -> String {
        let name = if self.attempt == 1 {
            name.to_string()
        } else {
            format!("retry-{name}")
        };
        safe_name(&name)
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

    /// The host's limits from its config. A host without one (some v1 hosts answer 404) keeps
    /// what the limiter knows, or its safe default. The pipeline's `server_max_calls` and
    /// `server_window_secs` describe the host for every pipeline calling it, and are set only
    /// when stated (one pipeline's silence must not undo another's); its `server_max_cells`
    /// is its own, applied when it plans.
    pub(super) async fn learn_limits(&mut self) -> Result<(), PxwebError> {
        let limiter = self.http.limiter();
        let overrides = self.source.overrides;
        if overrides.max_calls.is_some() || overrides.window.is_some() {
            limiter.set_overrides(
                &self.host,
                LimitHints {
                    max_calls: overrides.max_calls,
                    window: overrides.window,
                    ..LimitHints::default()
                },
            );
        }
        let url = self.source.api.config_url();
        match self.get("config", &url).await {
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
    pub(super) async fn info(&mut self, name: &str) -> Result<TableInfo, PxwebError> {
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
                self.stale(&info);
                Ok(info)
            }
            Api::V1(table) => {
                let url = table.level_url.clone();
                let response = self.get(name, &url).await?;
                let nodes = meta::v1_nodes(&response.bytes, &response.url)?;
                let node = nodes
                    .into_iter()
                    .find(|n| n.kind == NodeKind::Table && meta::same_code(&n.id, &table.id));
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

    fn stale(&mut self, info: &TableInfo) {
        if let Some(stale) = info.stale(chrono::Utc::now().date_naive()) {
            self.notice(format!("table {}: {stale}", info.id));
        }
    }

    fn notice(&mut self, notice: String) {
        tracing::warn!(notice = %notice, "table notice");
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
    }

    /// The metadata, and the v2 code lists the selection names that the variable offers (one
    /// it does not offer is refused by `select::expand`, naming those it does, not fetched).
    async fn metadata(&mut self) -> Result<(TableMeta, HashMap<String, Codelist>), PxwebError> {
        let mut codelists = HashMap::new();
        let table = match &self.source.api {
            Api::V1(table) => {
                let url = table.url.clone();
                let response = self.get("metadata", &url).await?;
                let meta = meta::v1_table(&response.bytes, &table.id, &response.url)?;
                // v1 metadata is all a v1 host says about time: its last period tells staleness.
                let last_period = meta
                    .variables
                    .iter()
                    .find(|v| v.time)
                    .and_then(|v| v.values.last())
                    .map(|v| v.code.clone());
                self.stale(&TableInfo {
                    id: table.id.clone(),
                    last_period,
                    ..TableInfo::default()
                });
                meta
            }
            Api::V2(table) => {
                let response = self.get("metadata", &table.metadata_url()).await?;
                let meta = meta::v2_table(&response.bytes, &response.url)?;
                let offered: Vec<(usize, &str)> = self
                    .source
                    .selection
                    .choices
                    .iter()
                    .filter_map(|choice| match &choice.via {
                        Via::Codelist(id) => meta
                            .variable(&choice.variable)
                            .filter(|v| v.codelists.iter().any(|c| c.id == *id))
                            .map(|_| id.as_str()),
                        _ => None,
                    })
                    .enumerate()
                    .collect();
                for (n, id) in offered {
                    // By number: ids are non-ASCII and two may be one name once made safe.
                    let response = self
                        .get(&format!("codelist-{}", n + 1), &table.codelist_url(id))
                        .await?;
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
    pub(super) async fn survey(
        &mut self,
        info: TableInfo,
        scope: Scope,
    ) -> Result<Survey, PxwebError> {
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
        let max_values = host.max_values;
        let limits = Limits {
            // The pipeline's word, else the host's; a host stating only `maxValues` (older v1
            // servers) is held to it for cells too, as rOpenGov's client does.
            max_cells: self
                .source
                .overrides
                .max_cells
                .or(host.max_cells)
                .unwrap_or_else(|| {
                    max_values.map_or(DEFAULT_MAX_CELLS, |v| v.min(DEFAULT_MAX_CELLS))
                }),
            max_values,
        };
        let plan = plan::plan(&pieces::dimensions(&expanded), &limits).map_err(|source| {
            PxwebError::Plan {
                table: table.id.clone(),
                source,
            }
        })?;
        tracing::info!(
            cells,
            pieces = plan.len(),
            max_cells = limits.max_cells,
            "planned"
        );
        self.manifest.max_cells = limits.max_cells;
        self.manifest.max_values = limits.max_values;
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

    /// GETs a metadata resource (checked to be JSON), keeping it for the archive as `name`.
    async fn get(&mut self, name: &str, url: &str) -> Result<Response, PxwebError> {
        let response = self
            .http
            .get_expecting(url, Expect::Json, &self.cx.cancel)
            .await?;
        let name = format!("{}.json", self.named(name));
        self.manifest.requests.push(Exchange {
            name: name.clone(),
            method: "GET",
            url: response.url.clone(),
            body: None,
            status: response.status,
            bytes: response.bytes.len() as u64,
            blake3: Some(blake3::hash(&response.bytes).to_hex().to_string()),
            cells: None,
            discarded: false,
        });
        self.records.push(Payload::new(
            &name,
            response.url.clone(),
            response.bytes.clone(),
        ));
        Ok(response)
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
