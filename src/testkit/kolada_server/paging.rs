//! The envelope every Kolada list comes in, and its paging: `values`, `count` (the items on
//! this page, not the total), and the links to the pages either side as full URLs.
//!
//! Owns: reading `page` and `per_page`, slicing a list into a page, writing the links under
//! v3's names (`next_url`, `previous_url`, null at the ends) or v2's (`next_page`,
//! `previous_page`, left out at the ends).
//! Must not: know what is listed (`api.rs`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use super::Refusal;

/// Kolada's default and largest `per_page` (SOURCES §e: v2 README, v3 OpenAPI text).
pub const MAX_PER_PAGE: usize = 5_000;

/// The names of the paging links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingNames {
    /// `next_url` and `previous_url`, `null` at the ends: v3 as observed.
    V3,
    /// `next_page` and `previous_page`, absent at the ends: v2, and what some v3 clients still
    /// read; a client must accept both.
    V2,
}

/// The page a request asks for, checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageRequest {
    /// 1-based.
    pub page: usize,
    /// As asked (or the default), at most [`MAX_PER_PAGE`]; the server's cap applies on top.
    pub per_page: usize,
}

impl PageRequest {
    /// `page` and `per_page` from a query string's pairs; a value that is not a whole number
    /// in range is a FastAPI validation error (422).
    pub(super) fn parse(pairs: &[(String, String)]) -> Result<PageRequest, Refusal> {
        let number = |name: &str, default: usize, max: usize| -> Result<usize, Refusal> {
            let Some((_, raw)) = pairs.iter().rev().find(|(k, _)| k == name) else {
                return Ok(default);
            };
            match raw.parse::<usize>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                Ok(n) if n < 1 => Err(invalid(name, raw, "greater_than_equal", json!({"ge": 1}))),
                Ok(_) => Err(invalid(name, raw, "less_than_equal", json!({ "le": max }))),
                Err(_) => Err(invalid(name, raw, "int_parsing", Value::Null)),
            }
        };
        Ok(PageRequest {
            page: number("page", 1, usize::MAX)?,
            per_page: number("per_page", MAX_PER_PAGE, MAX_PER_PAGE)?,
        })
    }
}

/// A FastAPI (pydantic 2) query validation error. The shape is FastAPI's; that Kolada declares
/// `per_page` with `le=5000` and `page` with `ge=1` is assumed, not observed.
fn invalid(name: &str, raw: &str, kind: &str, ctx: Value) -> Refusal {
    let msg = match kind {
        "int_parsing" => {
            "Input should be a valid integer, unable to parse string as an integer".to_owned()
        }
        "less_than_equal" => format!("Input should be less than or equal to {}", ctx["le"]),
        _ => "Input should be greater than or equal to 1".to_owned(),
    };
    let mut item = json!({"type": kind, "loc": ["query", name], "msg": msg, "input": raw});
    if !ctx.is_null() {
        item["ctx"] = ctx;
    }
    Refusal(StatusCode::UNPROCESSABLE_ENTITY, json!([item]))
}

/// One page of a list, ready to serialise.
#[derive(Serialize)]
pub(super) struct Envelope<T> {
    values: Vec<T>,
    count: usize,
    #[serde(flatten)]
    links: BTreeMap<&'static str, Option<String>>,
}

/// Where a request came to: for the links, which repeat it with another `page`.
pub(super) struct Here<'a> {
    /// `http://127.0.0.1:PORT`.
    pub origin: &'a str,
    /// As received (percent-encoded).
    pub path: &'a str,
    /// As received (percent-encoded), `None` without `?`.
    pub query: Option<&'a str>,
}

/// The page `request` asks for out of `all`, at most `cap` items, with its links.
pub(super) fn page<T>(
    all: Vec<T>,
    request: PageRequest,
    cap: usize,
    names: PagingNames,
    here: &Here<'_>,
) -> Envelope<T> {
    let per_page = request.per_page.min(cap).max(1);
    let start = (request.page - 1).saturating_mul(per_page);
    let total = all.len();
    let values: Vec<T> = all.into_iter().skip(start).take(per_page).collect();
    let next = (start.saturating_add(per_page) < total).then(|| link(here, request.page + 1));
    let previous = (request.page > 1).then(|| link(here, request.page - 1));
    let (next_name, previous_name) = match names {
        PagingNames::V3 => ("next_url", "previous_url"),
        PagingNames::V2 => ("next_page", "previous_page"),
    };
    let mut links = BTreeMap::new();
    for (name, url) in [(next_name, next), (previous_name, previous)] {
        if url.is_some() || names == PagingNames::V3 {
            links.insert(name, url);
        }
    }
    Envelope {
        count: values.len(),
        values,
        links,
    }
}

/// The request's URL with `page` set to `page` (moved last), the other parameters as sent.
fn link(here: &Here<'_>, page: usize) -> String {
    let mut pairs: Vec<String> = here
        .query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("page"))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("page={page}"));
    format!("{}{}?{}", here.origin, here.path, pairs.join("&"))
}
