//! Tables made from real recorded metadata, so the server serves the shapes real tables have
//! (FoHM's variable codes with spaces and non-ASCII, SCB's 312 regions, TAB6471's code lists).
//!
//! Owns: reading v1 table metadata (`{title, variables}`) and v2 json-stat2 metadata into a
//! `PxTable`.
//! Must not: read files (tests pass the fixture's bytes) or serve anything.

use std::collections::HashMap;

use serde::Deserialize;

use super::table::{CodelistKind, PxCodelist, PxTable, PxUnit, PxValue, PxVariable};

/// Metadata that cannot be made a table.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("metadata is not the JSON shape expected")]
    Json {
        #[source]
        source: serde_json::Error,
    },
    #[error("variable `{variable}` has {values} codes but {labels} labels")]
    Labels {
        variable: String,
        values: usize,
        labels: usize,
    },
    #[error("`{0}` is in `id` but not in `dimension`")]
    MissingDimension(String),
    #[error("metadata names no table id (`extension.px.tableid`)")]
    NoTableId,
}

fn json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, LoadError> {
    serde_json::from_slice(bytes).map_err(|source| LoadError::Json { source })
}

#[derive(Deserialize)]
struct V1Meta {
    title: String,
    variables: Vec<V1Variable>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Variable {
    code: String,
    text: String,
    values: Vec<String>,
    value_texts: Vec<String>,
    #[serde(default)]
    elimination: bool,
    #[serde(default)]
    time: bool,
}

#[derive(Deserialize)]
struct V2Meta {
    label: String,
    source: Option<String>,
    updated: String,
    #[serde(default)]
    note: Vec<String>,
    #[serde(default)]
    role: V2Role,
    id: Vec<String>,
    dimension: HashMap<String, V2Dimension>,
    extension: Option<V2Extension>,
}

#[derive(Deserialize, Default)]
struct V2Role {
    #[serde(default)]
    time: Vec<String>,
    #[serde(default)]
    metric: Vec<String>,
}

#[derive(Deserialize)]
struct V2Extension {
    px: Option<V2Px>,
}

#[derive(Deserialize)]
struct V2Px {
    tableid: Option<String>,
    #[serde(rename = "subject-code")]
    subject_code: Option<String>,
}

#[derive(Deserialize)]
struct V2Dimension {
    label: String,
    category: V2Category,
    extension: Option<V2DimensionExtension>,
}

#[derive(Deserialize)]
struct V2Category {
    index: Option<V2Index>,
    label: HashMap<String, String>,
    unit: Option<HashMap<String, V2Unit>>,
}

/// `category.index` as an object (SCB) or an array (json-stat allows both).
#[derive(Deserialize)]
#[serde(untagged)]
enum V2Index {
    Positions(HashMap<String, usize>),
    Codes(Vec<String>),
}

#[derive(Deserialize)]
struct V2Unit {
    base: String,
    decimals: u32,
}

#[derive(Deserialize)]
struct V2DimensionExtension {
    #[serde(default)]
    elimination: bool,
    #[serde(default)]
    codelists: Vec<V2Codelist>,
}

#[derive(Deserialize)]
struct V2Codelist {
    id: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
}

impl PxTable {
    /// A table from v1 table metadata (`GET <table-url>`, e.g.
    /// `pxwebpy/response_table_variables.json`), served as `id` in v2 and at `v1_path` in
    /// v1. v1 metadata has no roles: `ContentsCode` is the content variable by SCB's
    /// convention; `updated` is `2024-01-01T08:00:00Z` and `source` `SCB` until the test sets
    /// them.
    pub fn from_v1_metadata(id: &str, v1_path: &str, bytes: &[u8]) -> Result<PxTable, LoadError> {
        let meta: V1Meta = json(bytes)?;
        let mut table = PxTable::generated(id, &[]);
        table.v1_path = v1_path.to_owned();
        table.label = meta.title;
        table.time_unit = None;
        table.variables = meta
            .variables
            .into_iter()
            .map(|v| {
                if v.values.len() != v.value_texts.len() {
                    return Err(LoadError::Labels {
                        variable: v.code,
                        values: v.values.len(),
                        labels: v.value_texts.len(),
                    });
                }
                let values = v
                    .values
                    .into_iter()
                    .zip(v.value_texts)
                    .map(|(code, label)| PxValue {
                        code,
                        label,
                        unit: None,
                    })
                    .collect();
                Ok(PxVariable {
                    content: v.code == "ContentsCode",
                    code: v.code,
                    label: v.text,
                    values,
                    elimination: v.elimination,
                    elimination_value: None,
                    time: v.time,
                    codelists: Vec::new(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(table)
    }

    /// A table from v2 json-stat2 metadata (`/tables/{id}/metadata`, e.g.
    /// `pxwebpy/TAB6471_metadata.json`): id from `extension.px.tableid`, v1 path
    /// `ssd/<subject-code>/<id>`. Code lists come with id, label and type only (metadata lists
    /// no code list values); a test that selects through one fills in its values.
    pub fn from_v2_metadata(bytes: &[u8]) -> Result<PxTable, LoadError> {
        let mut meta: V2Meta = json(bytes)?;
        let px = meta.extension.and_then(|e| e.px);
        let subject = px.as_ref().and_then(|px| px.subject_code.clone());
        let id = px.and_then(|px| px.tableid).ok_or(LoadError::NoTableId)?;
        let mut table = PxTable::generated(&id, &[]);
        table.v1_path = format!("ssd/{}/{id}", subject.as_deref().unwrap_or("TEST"));
        table.label = meta.label;
        table.updated = meta.updated;
        table.source = meta.source.unwrap_or_default();
        table.notes = meta.note;
        table.time_unit = None;
        table.discontinued = None;
        table.variables = Vec::with_capacity(meta.id.len());
        for code in meta.id {
            let dimension = meta
                .dimension
                .remove(&code)
                .ok_or_else(|| LoadError::MissingDimension(code.clone()))?;
            table.variables.push(variable(
                code.clone(),
                dimension,
                meta.role.time.contains(&code),
                meta.role.metric.contains(&code),
            ));
        }
        Ok(table)
    }
}

fn variable(code: String, dimension: V2Dimension, time: bool, content: bool) -> PxVariable {
    let mut category = dimension.category;
    let codes: Vec<String> = match category.index {
        Some(V2Index::Codes(codes)) => codes,
        Some(V2Index::Positions(positions)) => {
            let mut codes: Vec<(String, usize)> = positions.into_iter().collect();
            codes.sort_by_key(|(_, at)| *at);
            codes.into_iter().map(|(code, _)| code).collect()
        }
        // json-stat lets a one-category dimension leave out `index`: its only label is it.
        None => category.label.keys().cloned().collect(),
    };
    let values = codes
        .into_iter()
        .map(|code| PxValue {
            label: category.label.remove(&code).unwrap_or_else(|| code.clone()),
            unit: category
                .unit
                .as_mut()
                .and_then(|units| units.remove(&code))
                .map(|u| PxUnit {
                    base: u.base,
                    decimals: u.decimals,
                }),
            code,
        })
        .collect();
    let extension = dimension.extension;
    let elimination = extension.as_ref().is_some_and(|e| e.elimination);
    let codelists = extension
        .map(|e| e.codelists)
        .unwrap_or_default()
        .into_iter()
        .map(|list| PxCodelist {
            kind: match list.kind.as_str() {
                "Aggregation" => CodelistKind::Aggregation,
                _ => CodelistKind::Valueset,
            },
            id: list.id,
            label: list.label,
            values: Vec::new(),
        })
        .collect();
    PxVariable {
        code,
        label: dimension.label,
        values,
        elimination,
        elimination_value: None,
        time,
        content,
        codelists,
    }
}
