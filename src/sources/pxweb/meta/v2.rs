//! PxWebApi 2.0 catalogue metadata: `/tables/{id}`, `/tables` pages and `/codelists/{id}`
//! (a table's own metadata is `v2_metadata.rs`).
//!
//! Owns: those shapes as written and their reading into [`TableInfo`], [`TablesPage`] and
//! [`Codelist`].
//! Must not: know URLs (`origin` is only named in errors; `next` is handed on as written).

use serde::Deserialize;

use super::{
    Codelist, MAX_VALUES, MetaError, TableInfo, TablesPage, Value, checked_values, parse, too_large,
};

/// A `TableResponse`: `/tables/{id}` and each hit of a `/tables` page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableRaw {
    id: String,
    label: String,
    updated: Option<String>,
    first_period: Option<String>,
    last_period: Option<String>,
    time_unit: Option<String>,
    discontinued: Option<bool>,
    source: Option<String>,
}

impl From<TableRaw> for TableInfo {
    fn from(raw: TableRaw) -> Self {
        Self {
            id: raw.id,
            label: raw.label,
            updated: raw.updated,
            first_period: raw.first_period,
            last_period: raw.last_period,
            time_unit: raw.time_unit,
            discontinued: raw.discontinued,
            source: raw.source,
        }
    }
}

/// What a table says about itself (`GET /tables/{id}`).
///
/// Errors: [`MetaError::NotJson`] when the body is not a `TableResponse` (a problem document,
/// a page of tables).
pub fn v2_table_info(bytes: &[u8], origin: &str) -> Result<TableInfo, MetaError> {
    parse::<TableRaw>(bytes, origin, "a PxWebApi 2.0 table").map(TableInfo::from)
}

#[derive(Deserialize)]
struct PageRaw {
    tables: Vec<TableRaw>,
    page: PageInfoRaw,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfoRaw {
    page_number: u64,
    total_pages: u64,
    #[serde(default)]
    links: Vec<LinkRaw>,
}

#[derive(Deserialize)]
struct LinkRaw {
    rel: String,
    href: String,
}

/// One page of `GET /tables` (a listing or a search), tables in the server's order; `next` is
/// the `page.links` `rel=next` href, absent on the last page.
///
/// Errors: [`MetaError::NotJson`] when the body is not a page of tables.
pub fn v2_tables_page(bytes: &[u8], origin: &str) -> Result<TablesPage, MetaError> {
    let raw: PageRaw = parse(bytes, origin, "a PxWebApi 2.0 page of tables")?;
    Ok(TablesPage {
        tables: raw.tables.into_iter().map(TableInfo::from).collect(),
        page_number: raw.page.page_number,
        total_pages: raw.page.total_pages,
        next: raw
            .page
            .links
            .into_iter()
            .find(|link| link.rel == "next")
            .map(|link| link.href),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodelistRaw {
    id: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    elimination: bool,
    elimination_value_code: Option<String>,
    values: Vec<CodelistValueRaw>,
}

#[derive(Deserialize)]
struct CodelistValueRaw {
    code: String,
    // The 2.0 drafts spelt it `value` (PxApiSpecs' archived examples); 2.0 says `label`.
    #[serde(alias = "value")]
    label: String,
}

/// A code list (`GET /codelists/{id}`), values in the server's order.
///
/// Errors: [`MetaError::NotJson`] when the body is not a code list, [`MetaError::Shape`] when
/// it has no values, [`MetaError::TooLarge`] over [`MAX_VALUES`] values,
/// [`MetaError::DuplicateCode`] for a code listed twice (ignoring case).
pub fn v2_codelist(bytes: &[u8], origin: &str) -> Result<Codelist, MetaError> {
    let raw: CodelistRaw = parse(bytes, origin, "a PxWebApi 2.0 code list")?;
    if raw.values.len() > MAX_VALUES {
        return Err(too_large(origin, "values", raw.values.len(), MAX_VALUES));
    }
    let values: Vec<Value> = raw
        .values
        .into_iter()
        .map(|value| Value {
            code: value.code,
            label: value.label,
        })
        .collect();
    checked_values(origin, &format!("code list `{}`", raw.id), &values)?;
    Ok(Codelist {
        id: raw.id,
        label: raw.label,
        kind: raw.kind,
        values,
        elimination: raw.elimination,
        elimination_value_code: raw.elimination_value_code,
    })
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::fixtures::real;

    const ORIGIN: &str = "https://example.org/api/v2/tables/TAB1";

    #[test]
    fn reference_server_table_info_reads_periods_and_time_unit() {
        let Some(bytes) = real("PxWebApi/TableById_tab004.json") else {
            return;
        };
        let info = v2_table_info(&bytes, ORIGIN).unwrap();
        assert_eq!(
            info,
            TableInfo {
                id: "TAB004".into(),
                label: "Total air emissions by sector, greenhouse gas, contents and year".into(),
                updated: Some("2023-05-25T13:42:00Z".into()),
                first_period: Some("1990".into()),
                last_period: Some("2017".into()),
                time_unit: Some("Annual".into()),
                discontinued: None,
                source: Some("Statistics Sweden".into()),
            }
        );
    }

    #[test]
    fn scb_tables_page_links_to_the_next() {
        let Some(bytes) = real("pxwebpy/tables.json") else {
            return;
        };
        let page = v2_tables_page(&bytes, ORIGIN).unwrap();
        assert_eq!(
            (page.page_number, page.total_pages, page.tables.len()),
            (1, 213, 20)
        );
        assert_eq!(
            page.next.as_deref(),
            Some(
                "https://statistikdatabasen.scb.se/api/v2/tables/?lang=sv&pagesize=20&pageNumber=2"
            )
        );
        let first = &page.tables[0];
        assert_eq!(
            (
                first.id.as_str(),
                first.last_period.as_deref(),
                first.time_unit.as_deref()
            ),
            ("TAB4707", Some("2026M03"), Some("Monthly"))
        );
        assert_eq!(
            (first.discontinued, first.source.as_deref()),
            (None, Some("SCB"))
        );
        assert_eq!(page.tables[19].id, "TAB72");
        // Every hit is monthly up to 2026M03: due by the end of July 2026 (see `stale.rs`).
        let day = |month, day| NaiveDate::from_ymd_opt(2026, month, day).unwrap();
        assert!(page.tables.iter().all(|t| t.stale(day(7, 31)).is_none()));
        assert!(page.tables.iter().all(|t| t.stale(day(8, 1)).is_some()));
    }

    #[test]
    fn scb_search_page_is_the_last() {
        let Some(bytes) = real("pxwebpy/search.json") else {
            return;
        };
        let page = v2_tables_page(&bytes, ORIGIN).unwrap();
        assert_eq!(
            (
                page.page_number,
                page.total_pages,
                page.tables.len(),
                page.next
            ),
            (1, 1, 10, None)
        );
        let ids: Vec<_> = page.tables.iter().map(|t| t.id.as_str()).collect();
        assert_eq!((ids[0], ids[9]), ("TAB4552", "TAB6473"));
        assert_eq!(page.tables[0].time_unit.as_deref(), Some("Annual"));
    }

    #[test]
    fn scb_aggregation_reads_values_in_order() {
        let Some(bytes) = real("pxwebpy/agg_Ålder10årJ.json") else {
            return;
        };
        let list = v2_codelist(&bytes, ORIGIN).unwrap();
        assert_eq!(
            (list.id.as_str(), list.label.as_str(), list.kind.as_str()),
            ("agg_Ålder10årJ", "10-årsklasser", "Aggregation")
        );
        assert_eq!(
            (list.elimination, list.elimination_value_code),
            (false, None)
        );
        assert_eq!(list.values.len(), 11);
        assert_eq!(
            list.values[0],
            Value {
                code: "-9".into(),
                label: "0-9 år".into()
            }
        );
        assert_eq!(list.values[10].code, "100+");
    }

    #[test]
    fn draft_code_list_spelling_value_for_label_is_read() {
        let Some(bytes) = real("PxApiSpecs/codelists-agg_RegionNUTS2_2008-response.json") else {
            return;
        };
        let list = v2_codelist(&bytes, ORIGIN).unwrap();
        assert_eq!(
            (list.id.as_str(), list.kind.as_str(), list.values.len()),
            ("agg_RegionNUTS2_2008", "Aggregation", 8)
        );
        assert_eq!(
            list.values[0],
            Value {
                code: "SE11".into(),
                label: "Stockholm".into()
            }
        );
        assert_eq!(
            list.values[7],
            Value {
                code: "SE33".into(),
                label: "Övre Norrland".into()
            }
        );
        assert!(!list.elimination);
    }

    #[test]
    fn code_list_with_a_repeated_code_or_no_values_is_refused() {
        let repeated = br#"{"id":"vs_X","label":"x","type":"Valueset","eliminationValueCode":"00",
            "values":[{"code":"Ab","label":"a"},{"code":"aB","label":"b"}]}"#;
        insta::assert_snapshot!(v2_codelist(repeated, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1: code list `vs_X` lists `aB` twice (PxWeb compares codes ignoring case), so a query for it is ambiguous; report the table to its producer and leave it out meanwhile");
        let empty = br#"{"id":"vs_X","label":"x","type":"Valueset","values":[]}"#;
        insta::assert_snapshot!(v2_codelist(empty, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1: code list `vs_X` has no values; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }

    #[test]
    fn a_problem_document_is_not_a_table() {
        let problem = br#"{"type":"Parameter error","title":"Non-existent table","status":404}"#;
        insta::assert_snapshot!(v2_table_info(problem, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1: not the JSON of a PxWebApi 2.0 table; check `url`/`table` in [source]; the server may have sent an error page");
        assert!(matches!(
            v2_tables_page(problem, ORIGIN),
            Err(MetaError::NotJson { .. })
        ));
        assert!(matches!(
            v2_codelist(problem, ORIGIN),
            Err(MetaError::NotJson { .. })
        ));
    }
}
