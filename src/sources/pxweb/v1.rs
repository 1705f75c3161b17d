//! PxWeb API v1: where a table's config, node list and metadata live, what a data request
//! looks like, and what its refusals mean.
//!
//! Owns: taking a table URL apart (`…/v1/<api>/<lang>/<db>/<levels>/<table>`), the query body
//! (`{"query": [...], "response": {"format": "json-stat2"}}`), and reading 403 as "too many
//! cells" (SCB's terms page; SSB sends `{"error":"Too many values selected"}`, Statistics Finland
//! an IIS page: the status is the signal, never the text).
//! Must not: send requests (the source does, through the shared client).

use reqwest::Url;
use serde_json::{Value as Json, json};

use super::select::{Selected, Via};
use crate::sources::http::HttpError;

/// A v1 table, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Table {
    /// The table URL as configured (metadata on GET, data on POST).
    pub url: String,
    /// Its last path segment (`BefolkningNy`, FoHM's `MobbningReg.px`).
    pub id: String,
    /// The level above the table, whose node list carries the table's `updated`.
    pub level_url: String,
    /// `<language level>/?config`, or the pipeline's `config_url`.
    pub config_url: String,
    /// The URL's language segment (`sv`).
    pub language: String,
    /// The table below its language: database, levels and table (`ssd/BE/BE0101/BE0101A/BefolkningNy`).
    pub path: String,
}

impl V1Table {
    /// Takes a table URL apart. The language segment is the first two-letter segment after `v1`
    /// (`…/OV0104/v1/doris/sv/ssd/…`, `…/Folkhalsodata/api/v1/sv/A_Folkhalsodata/…`); the
    /// table must lie below a database under it.
    pub fn parse(url: &str, config_url: Option<&str>) -> Result<Self, String> {
        let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
        let segments: Vec<&str> = parsed
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let v1 = segments
            .iter()
            .position(|s| s.eq_ignore_ascii_case("v1"))
            .ok_or_else(|| {
                format!(
                    "`{url}` has no `v1` segment; a PxWeb v1 table URL looks like \
                     https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BE0101A/BefolkningNy"
                )
            })?;
        let language = (v1 + 1..segments.len())
            .find(|&i| {
                segments[i].len() == 2 && segments[i].bytes().all(|b| b.is_ascii_alphabetic())
            })
            .ok_or_else(|| format!("`{url}` names no language (`sv`, `en`) after `v1`"))?;
        // Language, database, table: at least two segments after the language.
        if segments.len() < language + 3 {
            return Err(format!(
                "`{url}` ends at a database or the language level, not at a table; give the \
                 URL of the table itself"
            ));
        }
        let prefix = |n: usize| {
            let mut base = parsed.clone();
            base.set_query(None);
            base.set_fragment(None);
            base.set_path(&format!("/{}/", segments[..n].join("/")));
            base.to_string()
        };
        let table_url = {
            let mut u = parsed.clone();
            u.set_fragment(None);
            u.to_string()
        };
        Ok(Self {
            language: segments[language].to_string(),
            path: segments[language + 1..].join("/"),
            id: segments[segments.len() - 1].to_string(),
            level_url: prefix(segments.len() - 1),
            config_url: config_url.map_or_else(
                || format!("{}?config", prefix(language + 1)),
                str::to_string,
            ),
            url: table_url,
        })
    }

    /// The body of a data request for the variables of one piece.
    pub fn body(variables: &[Selected]) -> Json {
        let query: Vec<Json> = variables
            .iter()
            .map(|variable| {
                let filter = match &variable.via {
                    Via::Filter(filter) => filter.as_str(),
                    Via::Table | Via::Codelist(_) => "item",
                };
                let values: Vec<&str> = variable.values.iter().map(|v| v.code.as_str()).collect();
                json!({"code": variable.code, "selection": {"filter": filter, "values": values}})
            })
            .collect();
        json!({"query": query, "response": {"format": "json-stat2"}})
    }

    /// Whether a refused data request was refused for asking too many cells.
    pub fn too_many_cells(error: &HttpError) -> bool {
        error.status() == Some(403)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::pxweb::meta::Value;
    use crate::sources::pxweb::plan::Role;

    #[test]
    fn table_urls_of_real_hosts_are_taken_apart() {
        let scb = V1Table::parse(
            "https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BE0101A/BefolkningNy",
            None,
        )
        .unwrap();
        assert_eq!(scb.id, "BefolkningNy");
        assert_eq!(
            scb.level_url,
            "https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101/BE0101A/"
        );
        assert_eq!(
            scb.config_url,
            "https://api.scb.se/OV0104/v1/doris/sv/?config"
        );
        assert_eq!(scb.language, "sv");
        assert_eq!(scb.path, "ssd/BE/BE0101/BE0101A/BefolkningNy");
        let fohm = V1Table::parse(
            "https://fohm-app.folkhalsomyndigheten.se/Folkhalsodata/api/v1/sv/A_Folkhalsodata/C_HBSC/Regionalt/Skolan/Mobbning/MobbningReg.px",
            None,
        )
        .unwrap();
        assert_eq!(fohm.id, "MobbningReg.px");
        assert_eq!(
            fohm.config_url,
            "https://fohm-app.folkhalsomyndigheten.se/Folkhalsodata/api/v1/sv/?config"
        );
        let own = V1Table::parse("http://127.0.0.1:9/api/v1/sv/ssd/T", Some("http://x/c")).unwrap();
        assert_eq!(own.config_url, "http://x/c");
        assert_eq!(own.level_url, "http://127.0.0.1:9/api/v1/sv/ssd/");
    }

    #[test]
    fn urls_that_are_not_tables_are_refused() {
        for url in [
            "https://api.scb.se/OV0104/v1/doris/sv/",
            "https://api.scb.se/OV0104/v1/doris/sv/ssd",
            "https://statistikdatabasen.scb.se/api/v2/tables/TAB638",
            "not a url",
        ] {
            assert!(V1Table::parse(url, None).is_err(), "{url}");
        }
    }

    #[test]
    fn the_body_sends_codes_with_their_filter_and_asks_for_json_stat2() {
        let selected = |code: &str, via: Via, codes: &[&str]| Selected {
            code: code.into(),
            role: Role::Other,
            via,
            values: codes
                .iter()
                .map(|c| Value {
                    code: c.to_string(),
                    label: String::new(),
                })
                .collect(),
        };
        let body = V1Table::body(&[
            selected("Region", Via::Filter("vs:RegionKommun07".into()), &["0114"]),
            selected("Tid", Via::Table, &["2023", "2024"]),
        ]);
        assert_eq!(
            body,
            json!({"query": [
                {"code": "Region", "selection": {"filter": "vs:RegionKommun07", "values": ["0114"]}},
                {"code": "Tid", "selection": {"filter": "item", "values": ["2023", "2024"]}}
            ], "response": {"format": "json-stat2"}})
        );
    }
}
