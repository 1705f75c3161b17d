//! `indikator inspect https://api.kolada.se/v3/kpi/N15428[,…]`: what Kolada says of those KPIs,
//! and the requests a pipeline of them sends.
//!
//! Owns: recognising a Kolada KPI URL, and showing its KPIs as text or JSON.
//! Must not: fetch data (the source does, in a run).

use serde_json::{Value, json};

use crate::sources::kolada::{
    DEFAULT_BATCH_IDS, KoladaSource, Kpi, Pick, is_kpi_id, unit_of_title,
};
use crate::sources::{FetchContext, SourceError};

/// A Kolada source for the KPIs of `url` (`<root>/kpi/<id,id…>`), every municipality and year;
/// `None` when `url` is no such URL.
pub fn locate(url: &str) -> Option<KoladaSource> {
    let (root, rest) = url.split_once("/kpi/")?;
    let ids: Vec<String> = (rest.split(['?', '/']).next()?.split(','))
        .map(str::to_string)
        .collect();
    ids.iter().all(|id| is_kpi_id(id)).then(|| KoladaSource {
        url: root.trim_end_matches('/').to_string(),
        kpis: ids,
        municipalities: Pick::All,
        years: Pick::All,
        batch_ids: DEFAULT_BATCH_IDS,
        groups: false,
    })
}

/// The KPIs as Kolada has them, and the data requests a harvest of them would start with.
pub struct KpiReport {
    pub kpis: Vec<Kpi>,
    pub missing: Vec<String>,
    pub first_requests: usize,
}

pub async fn inspect(source: &KoladaSource, cx: &FetchContext) -> Result<KpiReport, SourceError> {
    let (kpis, missing) = source.survey(cx).await?;
    Ok(KpiReport {
        kpis,
        missing,
        first_requests: source.data_urls().len(),
    })
}

impl KpiReport {
    pub fn to_json(&self) -> Value {
        let kpis: Vec<Value> = (self.kpis.iter())
            .map(|k| {
                json!({
                    "id": k.id, "title": k.title, "description": k.description,
                    "operating_area": k.operating_area, "by_gender": k.is_divided_by_gender,
                    "publication_date": k.publication_date, "unit_by_title": unit_of_title(&k.title),
                })
            })
            .collect();
        json!({"kpis": kpis, "missing": self.missing, "first_requests": self.first_requests})
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for k in &self.kpis {
            out.push_str(&format!(
                "{}  {}\n    area {}; {}; published {}; unit by title {}\n",
                k.id,
                k.title,
                k.operating_area.as_deref().unwrap_or("-"),
                k.split(),
                k.publication_date.as_deref().unwrap_or("-"),
                unit_of_title(&k.title).unwrap_or("none (catalogue it with its unit)"),
            ));
        }
        for id in &self.missing {
            out.push_str(&format!("{id}  not at Kolada (retired or renamed)\n"));
        }
        out.push_str(&format!(
            "every municipality and year: {} data requests before paging\n",
            self.first_requests
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kpi_url_is_recognised_and_anything_else_is_left_to_pxweb() {
        let source = locate("https://api.kolada.se/v3/kpi/N15428,U31803?per_page=10").unwrap();
        assert_eq!(source.url, "https://api.kolada.se/v3");
        assert_eq!(source.kpis, ["N15428", "U31803"]);
        assert!(locate("https://api.kolada.se/v3/kpi/abc").is_none());
        assert!(locate("https://api.scb.se/OV0104/v1/doris/sv/ssd/BE/BE0101").is_none());
    }
}
