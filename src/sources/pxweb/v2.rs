//! PxWebApi 2.0: the endpoints of one table, what a data request looks like, and what its
//! refusals mean.
//!
//! Owns: the URLs (`/config`, `/tables/{id}`, `/tables/{id}/metadata`, `/codelists/{id}`,
//! `/tables/{id}/data`), the selection body (`{"selection": [{"variableCode", "codelist",
//! "valueCodes"}]}`), and reading "too many cells": 400 with title `Too many cells selected`,
//! as the reference server, SCB, SSB and Latvia answer. The spec's example says 403, but live
//! servers use 403 for a table not available through the API, which no smaller query helps.
//! Must not: send requests (the source does, through the shared client).

use reqwest::Url;
use serde_json::{Value as Json, json};

use super::select::{Selected, Via};
use crate::sources::http::HttpError;

/// The title PxWebApi servers give a 400 for a query over `maxDataCells`.
const TOO_MANY_CELLS_TITLE: &str = "Too many cells selected";

/// A v2 table, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Table {
    /// The API root, without a trailing `/` (`https://statistikdatabasen.scb.se/api/v2`).
    pub root: String,
    /// `TABnnnn`.
    pub id: String,
    pub lang: String,
}

impl V2Table {
    pub fn new(root: &str, id: &str, lang: &str) -> Result<Self, String> {
        let parsed = Url::parse(root).map_err(|e| format!("`{root}` is not a URL ({e})"))?;
        if parsed.query().is_some() {
            return Err(format!("`{root}` has a query; give the API root only"));
        }
        Ok(Self {
            root: root.trim_end_matches('/').to_string(),
            id: id.to_string(),
            lang: lang.to_string(),
        })
    }

    pub fn config_url(&self) -> String {
        format!("{}/config", self.root)
    }

    /// The table's own resource (`updated`, `discontinued`, periods): also its identity in the
    /// ledger and the model's `source_url`.
    pub fn table_url(&self) -> String {
        self.url(&["tables", &self.id], &[])
    }

    pub fn info_url(&self) -> String {
        self.url(&["tables", &self.id], &[("lang", &self.lang)])
    }

    pub fn metadata_url(&self) -> String {
        self.url(&["tables", &self.id, "metadata"], &[("lang", &self.lang)])
    }

    /// Code list ids are non-ASCII (`vs_CKM02Län`): each is one percent-encoded path segment.
    pub fn codelist_url(&self, codelist: &str) -> String {
        self.url(&["codelists", codelist], &[("lang", &self.lang)])
    }

    pub fn data_url(&self) -> String {
        self.url(
            &["tables", &self.id, "data"],
            &[("lang", &self.lang), ("outputFormat", "json-stat2")],
        )
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> String {
        api_url(&self.root, segments, query).expect("checked in new")
    }

    /// Whether `id` is a PxWebApi 2.0 table id: `TAB` and digits (`TAB638`), in any case.
    pub fn is_table_id(id: &str) -> bool {
        id.len() > 3
            && id[..3].eq_ignore_ascii_case("TAB")
            && id[3..].bytes().all(|b| b.is_ascii_digit())
    }

    /// The body of a data request for the variables of one piece (always POST: a GET over
    /// about 2 100 characters is answered 404).
    pub fn body(variables: &[Selected]) -> Json {
        let selection: Vec<Json> = variables
            .iter()
            .map(|variable| {
                let codes: Vec<&str> = variable.values.iter().map(|v| v.code.as_str()).collect();
                match &variable.via {
                    Via::Codelist(id) => {
                        json!({"variableCode": variable.code, "codelist": id, "valueCodes": codes})
                    }
                    Via::Table | Via::Filter(_) => {
                        json!({"variableCode": variable.code, "valueCodes": codes})
                    }
                }
            })
            .collect();
        json!({"selection": selection})
    }

    /// Whether a refused data request was refused for asking too many cells: a 400 whose
    /// problem document's title says so.
    pub fn too_many_cells(error: &HttpError) -> bool {
        match error {
            HttpError::Status {
                status: 400,
                body_start,
                ..
            } => match serde_json::from_str::<Json>(body_start) {
                Ok(problem) => problem
                    .get("title")
                    .and_then(Json::as_str)
                    .is_some_and(|title| title.eq_ignore_ascii_case(TOO_MANY_CELLS_TITLE)),
                // Only the body's start is kept: a long `detail` cuts the document.
                Err(_) => body_start.contains(TOO_MANY_CELLS_TITLE),
            },
            _ => false,
        }
    }
}

/// Page `page` of the tables of the host at `root` matching `query` (`/tables?…`); `None` if
/// `root` is not a URL.
pub fn tables_url(
    root: &str,
    query: &str,
    lang: &str,
    page: u64,
    page_size: u64,
) -> Option<String> {
    let (page, page_size) = (page.to_string(), page_size.to_string());
    api_url(
        root,
        &["tables"],
        &[
            ("lang", lang),
            ("query", query),
            ("includeDiscontinued", "true"),
            ("pageSize", &page_size),
            ("pageNumber", &page),
        ],
    )
}

/// `root` with `segments` appended (each one percent-encoded path segment) and `query`.
fn api_url(root: &str, segments: &[&str], query: &[(&str, &str)]) -> Option<String> {
    let mut url = Url::parse(root).ok()?;
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_code_list_ids_and_keep_the_language() {
        let table =
            V2Table::new("https://statistikdatabasen.scb.se/api/v2/", "TAB638", "sv").unwrap();
        assert_eq!(
            table.config_url(),
            "https://statistikdatabasen.scb.se/api/v2/config"
        );
        assert_eq!(
            table.info_url(),
            "https://statistikdatabasen.scb.se/api/v2/tables/TAB638?lang=sv"
        );
        assert_eq!(
            table.codelist_url("vs_CKM02Län"),
            "https://statistikdatabasen.scb.se/api/v2/codelists/vs_CKM02L%C3%A4n?lang=sv"
        );
        assert_eq!(
            table.data_url(),
            "https://statistikdatabasen.scb.se/api/v2/tables/TAB638/data?lang=sv&outputFormat=json-stat2"
        );
    }

    #[test]
    fn too_many_cells_is_read_from_the_status_and_the_problem_title() {
        let status = |status: u16, body: &str| HttpError::Status {
            url: "u".into(),
            status,
            body_start: body.into(),
            attempts: 1,
        };
        assert!(V2Table::too_many_cells(&status(
            400,
            r#"{"type":"x","title":"Too many cells selected","status":400,"detail":"…"}"#
        )));
        assert!(
            !V2Table::too_many_cells(&status(403, "")),
            "403: not available via the API"
        );
        assert!(!V2Table::too_many_cells(&status(
            400,
            r#"{"type":"x","title":"Non-existent value","status":400}"#
        )));
        assert!(!V2Table::too_many_cells(&status(400, "Bad Request")));
    }
}
