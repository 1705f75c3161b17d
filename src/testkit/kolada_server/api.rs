//! The v3 endpoints: what each answers, in Kolada's JSON shapes.
//!
//! | request | answer (every list in the paged envelope) |
//! |---|---|
//! | `GET /v3/kpi[?title=…]`, `/v3/kpi/{ids}` | KPI objects |
//! | `GET /v3/municipality[?title=…]`, `/v3/municipality/{ids}` | `{id, title, type}` |
//! | `GET /v3/municipality_groups[?title=…]`, `/v3/municipality_groups/{ids}` | `{id, title, members: [{id, title}]}` |
//! | `GET /v3/data/kpi/{kpis}/municipality/{areas}/year/{years}` | data rows |
//! | `GET /v3/data/kpi/{kpis}/year/{years}` | data rows of every area and group |
//!
//! Owns: the shapes, the `title` filter, the id lists (comma-separated, at most
//! [`MAX_IDS`] per path segment, else 400).
//! Must not: page (`paging.rs`), count or fault (`mod.rs`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::dataset::{Area, Gender, Kpi, MunicipalityType};
use super::paging::{self, Here, PageRequest};
use super::{Refusal, Shared};

/// Ids one path segment may list; clients batch by 25 (koladapy, Kolada-MCP `MAX_BATCH_SIZE`),
/// and a longer list is refused here with 400 (the refusal is assumed, not observed).
pub const MAX_IDS: usize = 25;

type Pairs = Query<Vec<(String, String)>>;

/// The request's page and its links' base, or the 422 that refuses it.
fn paged<T: Serialize>(
    shared: &Shared,
    uri: &Uri,
    pairs: &[(String, String)],
    all: impl FnOnce() -> Vec<T>,
) -> Response {
    let request = match PageRequest::parse(pairs) {
        Ok(request) => request,
        Err(refused) => return refused.into_response(),
    };
    let here = Here {
        origin: &shared.origin,
        path: uri.path(),
        query: uri.query(),
    };
    let config = &shared.config;
    let envelope = paging::page(all(), request, config.per_page_cap, config.paging, &here);
    let body = serde_json::to_vec(&envelope).expect("strings and numbers serialise");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// A comma-separated path segment as ids, or 400 beyond [`MAX_IDS`].
fn ids(segment: &str, what: &str) -> Result<Vec<String>, Refusal> {
    let ids: Vec<String> = segment
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    match ids.len() > MAX_IDS {
        // FastAPI's `{"detail": …}`; the wording is assumed, not observed.
        true => Err(Refusal(
            StatusCode::BAD_REQUEST,
            json!(format!(
                "Too many {what} ids: {} given, at most {MAX_IDS} allowed",
                ids.len()
            )),
        )),
        false => Ok(ids),
    }
}

fn years(segment: &str) -> Result<Vec<i32>, Refusal> {
    ids(segment, "year")?
        .iter()
        .map(|y| {
            y.parse::<i32>()
                .map_err(|_| Refusal(StatusCode::BAD_REQUEST, json!(format!("Invalid year: {y}"))))
        })
        .collect()
}

/// `title` matched case-insensitively as a substring; every item without it.
fn title_filter(pairs: &[(String, String)]) -> impl Fn(&str) -> bool + use<> {
    let wanted = pairs
        .iter()
        .find(|(k, _)| k == "title")
        .map(|(_, v)| v.to_lowercase());
    move |title: &str| {
        wanted
            .as_ref()
            .is_none_or(|w| title.to_lowercase().contains(w))
    }
}

#[derive(Serialize)]
struct KpiJson<'a> {
    id: &'a str,
    title: &'a str,
    description: &'a str,
    is_divided_by_gender: bool,
    operating_area: &'a str,
    municipality_type: MunicipalityType,
    has_ou_data: bool,
    publication_date: &'a str,
    prel_publication_date: Option<&'a str>,
    ou_publication_date: Option<&'a str>,
    perspective: &'a str,
    auspices: &'a str,
}

fn kpi_json(kpi: &Kpi) -> KpiJson<'_> {
    KpiJson {
        id: &kpi.id,
        title: &kpi.title,
        description: &kpi.description,
        is_divided_by_gender: kpi.is_divided_by_gender,
        operating_area: &kpi.operating_area,
        municipality_type: kpi.municipality_type,
        has_ou_data: kpi.has_ou_data,
        publication_date: &kpi.publication_date,
        prel_publication_date: kpi.prel_publication_date.as_deref(),
        ou_publication_date: kpi.ou_publication_date.as_deref(),
        perspective: &kpi.perspective,
        auspices: &kpi.auspices,
    }
}

/// `GET /v3/kpi`.
pub(super) async fn kpis(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Query(pairs): Pairs,
) -> Response {
    let data = shared.dataset();
    let keep = title_filter(&pairs);
    paged(&shared, &uri, &pairs, || {
        data.kpis
            .iter()
            .filter(|k| keep(&k.title))
            .map(kpi_json)
            .collect()
    })
}

/// `GET /v3/kpi/{ids}`: the KPIs held, in the dataset's order; unknown ids are left out.
pub(super) async fn kpis_by_id(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Path(segment): Path<String>,
    Query(pairs): Pairs,
) -> Response {
    let wanted = match ids(&segment, "kpi") {
        Ok(ids) => ids,
        Err(refused) => return refused.into_response(),
    };
    let data = shared.dataset();
    paged(&shared, &uri, &pairs, || {
        data.kpis
            .iter()
            .filter(|k| wanted.contains(&k.id))
            .map(kpi_json)
            .collect()
    })
}

/// `GET /v3/municipality` and `/v3/municipality/{ids}`.
pub(super) async fn areas(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    segment: Option<Path<String>>,
    Query(pairs): Pairs,
) -> Response {
    let wanted = match segment.map(|Path(s)| ids(&s, "municipality")).transpose() {
        Ok(ids) => ids,
        Err(refused) => return refused.into_response(),
    };
    let data = shared.dataset();
    let keep = title_filter(&pairs);
    paged(&shared, &uri, &pairs, || {
        data.areas
            .iter()
            .filter(|a| wanted.as_ref().is_none_or(|w| w.contains(&a.id)) && keep(&a.title))
            .cloned()
            .collect::<Vec<Area>>()
    })
}

#[derive(Serialize)]
struct GroupJson<'a> {
    id: &'a str,
    title: &'a str,
    members: Vec<MemberJson<'a>>,
}

/// v3 as clients read it; a 2024 v2 dump has `member_id`/`member_title` instead (SOURCES §e).
#[derive(Serialize)]
struct MemberJson<'a> {
    id: &'a str,
    title: &'a str,
}

/// `GET /v3/municipality_groups` and `/v3/municipality_groups/{ids}`.
pub(super) async fn groups(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    segment: Option<Path<String>>,
    Query(pairs): Pairs,
) -> Response {
    let wanted = match segment.map(|Path(s)| ids(&s, "group")).transpose() {
        Ok(ids) => ids,
        Err(refused) => return refused.into_response(),
    };
    let data = shared.dataset();
    let keep = title_filter(&pairs);
    paged(&shared, &uri, &pairs, || {
        data.groups
            .iter()
            .filter(|g| wanted.as_ref().is_none_or(|w| w.contains(&g.id)) && keep(&g.title))
            .map(|g| GroupJson {
                id: &g.id,
                title: &g.title,
                members: g
                    .members
                    .iter()
                    .map(|m| MemberJson {
                        id: m,
                        title: data
                            .areas
                            .iter()
                            .find(|a| &a.id == m)
                            .map_or(m.as_str(), |a| a.title.as_str()),
                    })
                    .collect(),
            })
            .collect()
    })
}

#[derive(Serialize)]
struct RowJson {
    kpi: String,
    period: i32,
    municipality: String,
    values: Vec<ValueJson>,
}

#[derive(Serialize)]
struct ValueJson {
    gender: Gender,
    value: Option<f64>,
    count: u32,
    status: &'static str,
    isdeleted: bool,
}

/// `GET /v3/data/kpi/{kpis}/municipality/{areas}/year/{years}`.
pub(super) async fn data(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Path((kpis, areas, years)): Path<(String, String, String)>,
    Query(pairs): Pairs,
) -> Response {
    data_rows(&shared, &uri, &pairs, &kpis, Some(&areas), &years)
}

/// `GET /v3/data/kpi/{kpis}/year/{years}`: every area and group.
pub(super) async fn data_all_areas(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    Path((kpis, years)): Path<(String, String)>,
    Query(pairs): Pairs,
) -> Response {
    data_rows(&shared, &uri, &pairs, &kpis, None, &years)
}

fn data_rows(
    shared: &Shared,
    uri: &Uri,
    pairs: &[(String, String)],
    kpis: &str,
    areas: Option<&str>,
    years_segment: &str,
) -> Response {
    let checked = (|| {
        let kpis = ids(kpis, "kpi")?;
        let areas = areas.map(|a| ids(a, "municipality")).transpose()?;
        Ok::<_, Refusal>((kpis, areas, years(years_segment)?))
    })();
    let (kpis, areas, years) = match checked {
        Ok(checked) => checked,
        Err(refused) => return refused.into_response(),
    };
    let data = shared.dataset();
    paged(shared, uri, pairs, || {
        data.rows(Some(&kpis), areas.as_deref(), &years)
            .into_iter()
            .map(|row| RowJson {
                kpi: row.kpi,
                period: row.period,
                municipality: row.area,
                values: row
                    .values
                    .into_iter()
                    .map(|(gender, cell)| ValueJson {
                        gender,
                        value: cell.value,
                        count: cell.count,
                        status: cell.status,
                        isdeleted: false,
                    })
                    .collect(),
            })
            .collect()
    })
}
