//! Finding tables on a PxWebApi 2.0 host: `GET /tables?query=…`, page by page.
//!
//! Owns: the paging (`pageNumber`, `pageSize`) and its bound.
//! Must not: render anything (`inspect` does) or follow the `links` of a page: they name the
//! host the server believes it is (SCB's point at production even behind a proxy), so the next
//! page is asked of the root the operator gave.

use tokio_util::sync::CancellationToken;

use super::PxwebError;
use super::meta::{self, TableInfo};
use super::v2;
use crate::sources::http::{HttpClient, HttpError};

/// Tables asked per page: the reference server's default is 20, which makes SCB's 4 000
/// tables 200 requests.
pub const PAGE_SIZE: u64 = 100;
/// Most pages read for one search: 5 000 tables, more than SCB has.
pub const MAX_PAGES: u64 = 50;

/// Every table of the host at `root` whose text matches `query`, in the server's order, with
/// discontinued ones included (marked).
pub async fn find_tables(
    http: &HttpClient,
    root: &str,
    query: &str,
    lang: &str,
    cancel: &CancellationToken,
) -> Result<Vec<TableInfo>, PxwebError> {
    let mut tables = Vec::new();
    let mut page = 1;
    loop {
        let url = page_url(root, query, lang, page)?;
        let response = http.get_bytes(&url, cancel).await?;
        let listed = meta::v2_tables_page(&response.bytes, &response.url)?;
        tables.extend(listed.tables);
        if page >= listed.total_pages.min(MAX_PAGES) {
            if listed.total_pages > MAX_PAGES {
                tracing::warn!(
                    pages = listed.total_pages,
                    shown = MAX_PAGES,
                    "more tables match than are listed; narrow the query"
                );
            }
            return Ok(tables);
        }
        page += 1;
    }
}

fn page_url(root: &str, query: &str, lang: &str, page: u64) -> Result<String, PxwebError> {
    v2::tables_url(root, query, lang, page, PAGE_SIZE).ok_or_else(|| {
        PxwebError::Http(HttpError::InvalidUrl {
            url: root.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_asked_of_the_root_given() {
        assert_eq!(
            page_url("http://127.0.0.1:9/api/v2/", "barn och unga", "sv", 3).unwrap(),
            "http://127.0.0.1:9/api/v2/tables?lang=sv&query=barn+och+unga&includeDiscontinued=true&pageSize=100&pageNumber=3"
        );
    }
}
