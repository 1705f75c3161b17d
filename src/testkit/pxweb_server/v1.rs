//! PxWeb API v1 as SCB answers it (`api.scb.se/OV0104/v1/doris/sv/…`).
//!
//! Owns: `?config` (on the language level only; `…/config` is 400), the database list, node
//! lists with zone-less `updated`, table metadata with `elimination`/`time` left out when
//! false, and data POSTs: json-stat2, or PX when `response` is left out (SCB's default);
//! any other format (`jsonstat2` too) is 400. Errors as SCB gives them: 400 plain `Bad
//! Request` for anything it cannot read or find in the table, 403 `{"error":"Too many values
//! selected"}` over `maxCells` (product) or `maxValues` (sum), 404 plain `Not Found`.
//! Must not: resolve selections (`select.rs`) or write json-stat2 (`jsonstat.rs`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::jsonstat::{self, Shape};
use super::select::{self, Selection, V1Query};
use super::table::PxTable;
use super::{Shared, faults, json, plain};

const JSON: &str = "application/json; charset=utf-8";

fn bad_request() -> Response {
    plain(StatusCode::BAD_REQUEST, "Bad Request")
}

/// `GET /api/v1/{lang}/`: `?config`, or the databases.
pub(super) async fn language(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if query.as_deref() == Some("config") {
        let limits = &shared.limits;
        let mut config = json!({
            "maxCells": limits.max_cells,
            "maxCalls": limits.max_calls,
            "timeWindow": limits.window.as_secs_f64().ceil() as u64,
            "CORS": true,
        });
        if let Some(max_values) = limits.max_values {
            config["maxValues"] = max_values.into();
        }
        return json(JSON, config.to_string().into_bytes());
    }
    let mut databases: Vec<&str> = Vec::new();
    let tables = shared.tables();
    for table in &tables {
        let db = table.v1_path.split('/').next().unwrap_or_default();
        if !databases.contains(&db) {
            databases.push(db);
        }
    }
    let list: Vec<_> = databases
        .iter()
        .map(|db| json!({"dbid": db, "text": db}))
        .collect();
    json(JSON, serde_json::to_vec(&list).expect("strings serialise"))
}

/// `GET /api/v1/{lang}/{path}`: a table's metadata, or the nodes under a level.
pub(super) async fn node(
    State(shared): State<Arc<Shared>>,
    Path((_lang, path)): Path<(String, String)>,
) -> Response {
    let path = path.trim_end_matches('/');
    if path == "config" {
        return bad_request();
    }
    let tables = shared.tables();
    if let Some(table) = tables.iter().find(|t| t.v1_path == path) {
        let body = metadata(table);
        shared.metadata_served(&table.id);
        return json(JSON, body);
    }
    let prefix = format!("{path}/");
    let mut nodes: Vec<Node> = Vec::new();
    for table in &tables {
        let Some(rest) = table.v1_path.strip_prefix(&prefix) else {
            continue;
        };
        let (id, deeper) = rest
            .split_once('/')
            .map_or((rest, false), |(id, _)| (id, true));
        if nodes.iter().any(|n| n.id == id) {
            continue;
        }
        nodes.push(match deeper {
            true => Node {
                id: id.to_owned(),
                kind: "l",
                text: id.to_owned(),
                updated: None,
            },
            false => Node {
                id: id.to_owned(),
                kind: "t",
                text: table.label.clone(),
                updated: Some(zoneless(&table.updated)),
            },
        });
    }
    if nodes.is_empty() {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    json(JSON, serde_json::to_vec(&nodes).expect("strings serialise"))
}

#[derive(Serialize)]
struct Node {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
}

/// `2022-11-21T08:00:00Z` → `2022-11-21T08:00:00`, as v1 node lists write it (an `updated`
/// that is not RFC 3339 is passed on as it is).
fn zoneless(updated: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(updated)
        .map(|t| t.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_else(|_| updated.to_owned())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MetaVariable<'a> {
    code: &'a str,
    text: &'a str,
    values: Vec<&'a str>,
    value_texts: Vec<&'a str>,
    // Left out when false, as SCB and FoHM do.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    elimination: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    time: bool,
}

fn metadata(table: &PxTable) -> Vec<u8> {
    let variables: Vec<MetaVariable> = table
        .variables
        .iter()
        .map(|v| MetaVariable {
            code: &v.code,
            text: &v.label,
            values: v.values.iter().map(|x| x.code.as_str()).collect(),
            value_texts: v.values.iter().map(|x| x.label.as_str()).collect(),
            elimination: v.elimination,
            time: v.time,
        })
        .collect();
    serde_json::to_vec(&json!({"title": table.label, "variables": variables}))
        .expect("strings serialise")
}

/// `POST /api/v1/{lang}/{path}`: a data query.
pub(super) async fn data(
    State(shared): State<Arc<Shared>>,
    Path((_lang, path)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let fault = shared.next_data_fault();
    let table = shared.tables().into_iter().find(|t| t.v1_path == path);
    faults::answer(fault, || {
        let Some(table) = table else {
            return plain(StatusCode::NOT_FOUND, "Not Found");
        };
        let Ok(query) = serde_json::from_slice::<V1Query>(&body) else {
            return bad_request();
        };
        let format = query.response.as_ref().map(|r| r.format.as_str());
        if !matches!(format, None | Some("json-stat2" | "px")) {
            return bad_request();
        }
        let Ok(selection) = select::v1(&table, &query) else {
            return bad_request();
        };
        let limits = &shared.limits;
        if selection.cells() > limits.max_cells
            || limits
                .max_values
                .is_some_and(|max| selection.values() > max)
        {
            shared.count_too_many_cells();
            return (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, JSON)],
                r#"{"error":"Too many values selected"}"#,
            )
                .into_response();
        }
        match format {
            Some("json-stat2") => json(JSON, jsonstat::dataset(&table, &selection, Shape::V1Data)),
            _ => px(&table, &selection),
        }
    })
    .await
}

/// The PX file SCB sends when a query names no format: Windows-1252 bytes, CRLF lines, every
/// answered variable in STUB so `DATA` is in the json-stat2 answer's row-major order.
fn px(table: &PxTable, selection: &Selection) -> Response {
    let quoted = |items: &mut dyn Iterator<Item = &str>| -> String {
        items
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let kept: Vec<_> = selection.kept(table).collect();
    let mut px = format!(
        "CHARSET=\"ANSI\";\r\nAXIS-VERSION=\"2010\";\r\nLANGUAGE=\"sv\";\r\nMATRIX=\"{}\";\r\nTITLE=\"{}\";\r\nSTUB={};\r\n",
        table.id,
        table.label,
        quoted(&mut kept.iter().map(|(v, _)| v.label.as_str())),
    );
    for (variable, categories) in &kept {
        let labels = quoted(&mut categories.iter().map(|c| c.label.as_str()));
        let codes = quoted(&mut categories.iter().map(|c| c.code.as_str()));
        px.push_str(&format!(
            "VALUES(\"{0}\")={labels};\r\nCODES(\"{0}\")={codes};\r\n",
            variable.label
        ));
    }
    px.push_str("DATA=\r\n");
    for value in selection.cell_values(table) {
        match value {
            Some(v) => px.push_str(&format!("{v} ")),
            None => px.push_str("\"..\" "),
        }
    }
    px.push_str("\r\n;\r\n");
    let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&px);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/octet-stream; charset=Windows-1252",
        )],
        bytes.into_owned(),
    )
        .into_response()
}
