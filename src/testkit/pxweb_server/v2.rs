//! PxWebApi 2.0 as SCB's `statistikdatabasen.scb.se/api/v2` answers it.
//!
//! Owns: `/config`, `/tables` pages (404 "Non-existent page" past the end), `/tables/{id}`,
//! `/tables/{id}/metadata`, `/codelists/{id}` (ids case-sensitive) and POST
//! `/tables/{id}/data`, with SCB's problem titles: `Non-existent table`, `Non-existent
//! variable`, `Non-existent value`, `Non-existent codelist`, `Missing selection for mandantory
//! variable` (sic), `Illegal selection expression` and `Too many cells selected` (400, with
//! `detail`).
//! Must not: resolve selections (`select.rs`) or write json-stat2 (`jsonstat.rs`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::jsonstat::{self, Shape};
use super::select::{self, SelectError, Selection, V2Query};
use super::table::PxTable;
use super::{Shared, faults, json, problem};

const JSON: &str = "application/json; charset=UTF-8";

/// Query parameters by lowercased name: ASP.NET binds them case-insensitively (SCB's own
/// links write `pagesize`).
type Params = Query<HashMap<String, String>>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn lang(params: &Params) -> &str {
    param(params, "lang").unwrap_or("sv")
}

fn answer(value: &Value) -> Response {
    json(JSON, value.to_string().into_bytes())
}

fn no_table() -> Response {
    problem(StatusCode::NOT_FOUND, "Non-existent table", None)
}

/// `GET /api/v2/config`.
pub(super) async fn config(State(shared): State<Arc<Shared>>) -> Response {
    let limits = &shared.limits;
    answer(&json!({
        "apiVersion": "2.3.2",
        "appVersion": "1.0.0",
        "languages": [{"id": "sv", "label": "Svenska"}, {"id": "en", "label": "English"}],
        "defaultLanguage": "sv",
        "maxDataCells": limits.max_cells,
        "maxCallsPerTimeWindow": limits.max_calls,
        "timeWindow": limits.window.as_secs_f64().ceil() as u64,
        "license": "https://creativecommons.org/share-your-work/public-domain/cc0/",
        "sourceReferences": [
            {"language": "en", "text": "Source: Statistics Sweden"},
            {"language": "sv", "text": "Källa: SCB"},
        ],
        "defaultDataFormat": "json-stat2",
        "dataFormats": ["json-stat2"],
    }))
}

/// `GET /api/v2/tables?query=&pageNumber=&pageSize=&lang=&includeDiscontinued=`.
pub(super) async fn tables(State(shared): State<Arc<Shared>>, params: Params) -> Response {
    let lang = lang(&params);
    let number = |name: &str, default: usize| match param(&params, name) {
        None => Some(default),
        Some(n) => n.parse().ok().filter(|&n| n > 0),
    };
    let (Some(page_number), Some(page_size)) = (number("pageNumber", 1), number("pageSize", 20))
    else {
        return problem(StatusCode::BAD_REQUEST, "Illegal parameter", None);
    };
    let query = param(&params, "query").unwrap_or_default().to_lowercase();
    let discontinued =
        param(&params, "includeDiscontinued").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let hits: Vec<Arc<PxTable>> = shared
        .tables()
        .into_iter()
        .filter(|t| discontinued || t.discontinued != Some(true))
        .filter(|t| t.label.to_lowercase().contains(&query) || t.id.to_lowercase().contains(&query))
        .collect();
    let total_pages = hits.len().div_ceil(page_size);
    if page_number > total_pages.max(1) {
        return problem(StatusCode::NOT_FOUND, "Non-existent page", None);
    }
    let base = &shared.base;
    let search = match query.is_empty() {
        true => String::new(),
        false => format!("&query={query}"),
    };
    let link = |rel: &str, n: usize| {
        json!({"rel": rel, "hreflang": lang,
               "href": format!("{base}/api/v2/tables/?lang={lang}{search}&pagesize={page_size}&pageNumber={n}")})
    };
    let mut page_links = Vec::new();
    if page_number > 1 {
        page_links.push(link("previous", page_number - 1));
    }
    if page_number < total_pages {
        page_links.push(link("next", page_number + 1));
        page_links.push(link("last", total_pages));
    }
    let page: Vec<Value> = hits
        .iter()
        .skip((page_number - 1) * page_size)
        .take(page_size)
        .map(|t| table_response(base, t, lang))
        .collect();
    answer(&json!({
        "language": lang,
        "tables": page,
        "page": {
            "pageNumber": page_number,
            "pageSize": page_size,
            "totalElements": hits.len(),
            "totalPages": total_pages,
            "links": page_links,
        },
        "links": [link("self", page_number)],
    }))
}

/// A `TableResponse`: what a table says about itself, its levels from its v1 path.
fn table_response(base: &str, table: &PxTable, lang: &str) -> Value {
    let segments: Vec<&str> = table.v1_path.split('/').collect();
    let levels = segments
        .get(1..segments.len().saturating_sub(1))
        .unwrap_or_default();
    let (first, last) = table.periods();
    let id = &table.id;
    json!({
        "id": id,
        "label": table.label,
        "description": "",
        "sortCode": id,
        "updated": table.updated,
        "firstPeriod": first,
        "lastPeriod": last,
        "category": "public",
        "variableNames": table.variables.iter().map(|v| v.label.as_str()).collect::<Vec<_>>(),
        "discontinued": table.discontinued,
        "source": table.source,
        "subjectCode": levels.first(),
        "timeUnit": table.time_unit,
        "paths": [levels.iter().map(|l| json!({"id": l, "label": l, "sortCode": l})).collect::<Vec<_>>()],
        "links": [
            {"rel": "self", "hreflang": lang, "href": format!("{base}/api/v2/tables/{id}?lang={lang}")},
            {"rel": "metadata", "hreflang": lang, "href": format!("{base}/api/v2/tables/{id}/metadata?lang={lang}")},
            {"rel": "data", "hreflang": lang,
             "href": format!("{base}/api/v2/tables/{id}/data?lang={lang}&outputFormat=json-stat2")},
        ],
    })
}

/// `GET /api/v2/tables/{id}`.
pub(super) async fn table(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let Some(table) = shared.table(&id) else {
        return no_table();
    };
    let lang = lang(&params);
    let mut response = table_response(&shared.base, &table, lang);
    response["language"] = lang.into();
    answer(&response)
}

/// `GET /api/v2/tables/{id}/metadata`.
pub(super) async fn metadata(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let Some(table) = shared.table(&id) else {
        return no_table();
    };
    let shape = Shape::V2Metadata {
        base: &shared.base,
        lang: lang(&params),
    };
    let body = jsonstat::dataset(&table, &Selection::everything(&table), shape);
    shared.metadata_served(&table.id);
    json(JSON, body)
}

/// `GET /api/v2/codelists/{id}`: the first variable of any table offering it.
pub(super) async fn codelist(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
) -> Response {
    let lang = lang(&params);
    let tables = shared.tables();
    let found = tables
        .iter()
        .flat_map(|t| &t.variables)
        .find_map(|v| v.codelists.iter().find(|l| l.id == id).map(|l| (v, l)));
    let Some((variable, list)) = found else {
        return problem(StatusCode::NOT_FOUND, "Non-existent codelist", None);
    };
    let elimination_value = variable
        .elimination_value
        .as_deref()
        .filter(|code| list.values.iter().any(|v| v.code == *code));
    let values: Vec<Value> = list
        .values
        .iter()
        .map(|v| json!({"code": v.code, "label": v.label, "valueMap": v.value_map}))
        .collect();
    answer(&json!({
        "id": list.id,
        "label": list.label,
        "language": lang,
        "languages": ["sv", "en"],
        "elimination": variable.elimination,
        "eliminationValueCode": elimination_value,
        "type": list.kind.as_str(),
        "values": values,
        "links": [{"rel": "self", "hreflang": lang,
                   "href": format!("{}/api/v2/codelists/{}?lang={lang}", shared.base, list.id)}],
    }))
}

/// `POST /api/v2/tables/{id}/data?lang=&outputFormat=json-stat2`.
pub(super) async fn data(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    params: Params,
    body: Bytes,
) -> Response {
    let fault = shared.next_data_fault();
    let table = shared.table(&id);
    faults::answer(fault, || {
        let Some(table) = table else {
            return no_table();
        };
        if !matches!(param(&params, "outputFormat"), None | Some("json-stat2")) {
            return problem(StatusCode::BAD_REQUEST, "Unsupported output format", None);
        }
        let Ok(query) = serde_json::from_slice::<V2Query>(&body) else {
            return problem(
                StatusCode::BAD_REQUEST,
                "Illegal selection expression",
                None,
            );
        };
        let selection = match select::v2(&table, &query) {
            Ok(selection) => selection,
            Err(err) => return refused(err),
        };
        let max = shared.limits.max_cells;
        if selection.cells() > max {
            shared.count_too_many_cells();
            let detail = format!(
                "The request selects {} cells; at most {max} are allowed",
                selection.cells()
            );
            return problem(
                StatusCode::BAD_REQUEST,
                "Too many cells selected",
                Some(detail),
            );
        }
        json(JSON, jsonstat::dataset(&table, &selection, Shape::V2Data))
    })
    .await
}

fn refused(err: SelectError) -> Response {
    let (title, detail) = match err {
        SelectError::UnknownVariable(code) => ("Non-existent variable", code),
        SelectError::UnknownValue { variable, code } => {
            ("Non-existent value", format!("{variable}: {code}"))
        }
        SelectError::UnknownCodelist { variable, id } => {
            ("Non-existent codelist", format!("{variable}: {id}"))
        }
        SelectError::Mandatory(code) => ("Missing selection for mandantory variable", code),
        SelectError::Illegal(expression) => ("Illegal selection expression", expression),
    };
    // SCB sends `detail` only with "Too many cells selected"; naming the offending code here
    // too costs a client nothing (none should read `detail`) and tells a failing test why.
    problem(StatusCode::BAD_REQUEST, title, Some(detail))
}
