//! Kolada (RKA's municipal key figures, API v3): the KPIs' metadata, then their values by KPI ×
//! municipality × year, page by page, in batches of ids the API accepts.
//!
//! Owns: the request plan (at most `batch_ids` ids per path segment, never above 25), following
//! `next_url` (or v2's `next_page`) to the end and no further than [`MAX_PAGES`], the
//! self-throttle (5 requests a second unless the host said otherwise), refusing KPIs that Kolada
//! no longer has, change detection by the KPIs' publication dates, and the archive of every
//! answer with its manifest.
//! Must not: decode data pages (`formats::kolada` does), retry or sleep by itself (the shared
//! HTTP client does), or map anything to the model.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use super::http::{Expect, HttpError, LimitHints, host_key};
use super::manifest::{Exchange, MANIFEST_NAME, Manifest};
use super::{About, CodeLabel, FetchContext, Fetched, Payload, SourceError};
use crate::ledger::Validator;

/// Kolada's API root.
pub const DEFAULT_URL: &str = "https://api.kolada.se/v3";
/// Default of `batch_ids`: what clients found Kolada v3 accepts per path segment.
pub const DEFAULT_BATCH_IDS: usize = 20;
/// The most ids one path segment may hold (clients' `MAX_BATCH_SIZE`).
pub const MAX_BATCH_IDS: usize = 25;
/// Items per page asked for (Kolada's default and maximum).
pub const PER_PAGE: usize = 5000;
/// The most pages followed from one first request: a server whose `next_url` never ends must
/// not hold a run for ever.
pub const MAX_PAGES: usize = 10_000;
/// Requests a second to Kolada unless the host says otherwise (Kolada states no limit; clients
/// keep to this).
pub const REQUESTS_PER_SECOND: u32 = 5;
/// The first year `year = "*"` asks for; Kolada's series begin in the 1990s.
pub const FIRST_YEAR: i32 = 1990;

/// What `catalog/tables.parquet` says of a pipeline that keeps municipality groups.
pub const GROUPS_NOTE: &str = "Municipality groups (area_level network, reference network:<id>) \
     are Kolada's unweighted means of their members' values; members is how many members had one.";

/// Whether `id` looks like a Kolada KPI id: a capital letter and five digits (`N15428`).
pub fn is_kpi_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 6 && bytes[0].is_ascii_uppercase() && bytes[1..].iter().all(u8::is_ascii_digit)
}

/// The `[map]` a Kolada pipeline has when it writes none, with `unit`: what the decoder's
/// columns mean in the model. Spelling it out in the pipeline gives the same result. Statuses:
/// none (`""`) is a value; `Saknas` ("missing", assumed: no stored answer shows Kolada's status
/// words) and a deleted value are missing; any other status is refused, naming it. A group's
/// rows (kept with `groups = true`) are network rows, and their `count` is how many members
/// Kolada's unweighted mean rests on.
pub fn default_map(unit: &str, groups: bool) -> String {
    let area = if groups {
        "area = { column = \"municipality\", networks = true }\nmembers = \"count\""
    } else {
        "area = \"municipality\""
    };
    format!(
        "indicator = {{ column = \"kpi\" }}\n\
         {area}\n\
         period = {{ column = \"period\", kind = \"year\" }}\n\
         sex = {{ column = \"gender\", codes = {{ T = \"T\", K = \"F\", M = \"M\" }} }}\n\
         unit = \"{unit}\"\n\
         value = \"value\"\n\
         [missing]\n\
         \"\" = \"ok\"\n\
         Saknas = \"missing\"\n\
         {} = \"missing\"\n",
        crate::formats::kolada::DELETED
    )
}

/// The unit a KPI's title states, by Kolada's habits: `(%)` → percent, `antal` → count, `kr`
/// → sek; `None` when the title says none of these.
pub fn unit_of_title(title: &str) -> Option<&'static str> {
    let lower = title.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '%')
        .filter(|w| !w.is_empty())
        .collect();
    if lower.contains("(%)") || words.contains(&"andel") && lower.contains('%') {
        Some("percent")
    } else if lower.contains("/1000 inv") {
        Some("per_1000")
    } else if lower.contains("antal/inv") {
        Some("per_inhabitant")
    } else if lower.contains("antal/") || lower.contains("/100 000 inv") {
        // Another rate: the title does not say which of ours it is.
        None
    } else if words.iter().any(|w| *w == "kr" || *w == "kronor") {
        Some("sek")
    } else if words.contains(&"antal") {
        Some("count")
    } else {
        None
    }
}

/// The KPIs whose title holds `query` (case-insensitive), every page of them.
pub async fn find_kpis(url: &str, query: &str, cx: &FetchContext) -> Result<Vec<Kpi>, SourceError> {
    let mut pages = Vec::new();
    let first = format!(
        "{}/kpi?title={}&per_page={PER_PAGE}",
        url.trim_end_matches('/'),
        encode_query(query)
    );
    every_page(cx, first, "kpi", &mut pages).await
}

/// `text` as a URL query value (UTF-8 percent-encoded; letters, digits and `-_.~` as they are).
fn encode_query(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Which municipalities or which years: every one, or those listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick<T> {
    All,
    Listed(Vec<T>),
}

/// A checked `kind = "kolada"` source.
#[derive(Debug, Clone, PartialEq)]
pub struct KoladaSource {
    /// The API root, without a trailing `/`.
    pub url: String,
    pub kpis: Vec<String>,
    pub municipalities: Pick<String>,
    pub years: Pick<i32>,
    pub batch_ids: usize,
    /// Municipality groups are kept (as network rows), which the table's notes then explain.
    pub groups: bool,
}

/// What a Kolada fetch can fail on beyond HTTP; each names the KPI or URL.
#[derive(Debug, thiserror::Error)]
pub enum KoladaFetchError {
    #[error(
        "Kolada has no KPI {}; it may have been retired or renamed (N02904 was replaced by \
         N66077): find its successor with `indikator kpis --query …` and change `kpi` in [source]",
        .missing.join(", ")
    )]
    UnknownKpis { missing: Vec<String> },
    #[error("{url} is not a Kolada list page: {source}")]
    Page {
        url: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{url}: more than {MAX_PAGES} pages follow one another; the server's next_url does not end"
    )]
    EndlessPages { url: String },
}

/// A KPI as Kolada describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Kpi {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub is_divided_by_gender: bool,
    #[serde(default)]
    pub operating_area: Option<String>,
    #[serde(default)]
    pub publication_date: Option<String>,
    #[serde(default)]
    pub prel_publication_date: Option<String>,
}

impl Kpi {
    /// How its values are split, for operators' listings.
    pub fn split(&self) -> &'static str {
        if self.is_divided_by_gender {
            "by gender (T, K, M)"
        } else {
            "total only"
        }
    }

    /// When Kolada last published values of this KPI, as far as it says.
    fn published(&self) -> Option<String> {
        match (&self.publication_date, &self.prel_publication_date) {
            (Some(a), Some(b)) => Some(a.max(b).clone()),
            (a, b) => a.clone().or_else(|| b.clone()),
        }
    }
}

/// A list page of any entity: its items and where the next page is.
#[derive(Deserialize)]
struct ListPage<T> {
    values: Vec<T>,
    #[serde(default)]
    next_url: Option<String>,
    /// v2's name; some v3 clients still read it.
    #[serde(default)]
    next_page: Option<String>,
}

/// Every item of a paged list, following `next_url` from `first`; each page's bytes are kept
/// in `pages` (name, URL, bytes) for the archive.
async fn every_page<T: serde::de::DeserializeOwned>(
    cx: &FetchContext,
    first: String,
    name: &str,
    pages: &mut Vec<(String, String, Vec<u8>)>,
) -> Result<Vec<T>, SourceError> {
    let mut items = Vec::new();
    let mut seen = HashSet::new();
    let mut url = first;
    loop {
        if !seen.insert(url.clone()) {
            break;
        }
        if seen.len() > MAX_PAGES {
            return Err(KoladaFetchError::EndlessPages { url }.into());
        }
        let response = cx
            .http
            .get_expecting(&url, Expect::Json, &cx.cancel)
            .await?;
        let page: ListPage<T> =
            serde_json::from_slice(&response.bytes).map_err(|source| KoladaFetchError::Page {
                url: response.url.clone(),
                source,
            })?;
        let empty = page.values.is_empty();
        items.extend(page.values);
        pages.push((
            format!("{name}-{:04}.json", pages.len() + 1),
            response.url,
            response.bytes,
        ));
        match page.next_url.or(page.next_page) {
            Some(next) if !empty && !next.is_empty() => url = next,
            _ => break,
        }
    }
    Ok(items)
}

/// `ids` in comma-joined batches of at most `size`.
fn batches<T: ToString>(ids: &[T], size: usize) -> Vec<String> {
    ids.chunks(size.max(1))
        .map(|chunk| {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            ids.join(",")
        })
        .collect()
}

impl KoladaSource {
    /// The years asked for: those listed, or every year from [`FIRST_YEAR`] to this one.
    fn years(&self) -> Vec<i32> {
        match &self.years {
            Pick::Listed(years) => years.clone(),
            Pick::All => {
                let now = chrono::Datelike::year(&chrono::Utc::now());
                (FIRST_YEAR..=now).collect()
            }
        }
    }

    /// The first URL of every data query the pipeline needs, each within the id limit.
    pub fn data_urls(&self) -> Vec<String> {
        let mut urls = Vec::new();
        for kpis in batches(&self.kpis, self.batch_ids) {
            for years in batches(&self.years(), self.batch_ids) {
                match &self.municipalities {
                    Pick::All => urls.push(format!(
                        "{}/data/kpi/{kpis}/year/{years}?per_page={PER_PAGE}",
                        self.url
                    )),
                    Pick::Listed(ids) => {
                        for areas in batches(ids, self.batch_ids) {
                            urls.push(format!(
                                "{}/data/kpi/{kpis}/municipality/{areas}/year/{years}?per_page={PER_PAGE}",
                                self.url
                            ));
                        }
                    }
                }
            }
        }
        urls
    }

    /// What Kolada says of the pipeline's KPIs now (for `check --online`): those it has, and
    /// the ids it no longer knows.
    pub async fn survey(&self, cx: &FetchContext) -> Result<(Vec<Kpi>, Vec<String>), SourceError> {
        self.metadata(cx, &mut Vec::new()).await
    }

    /// The KPIs' metadata, every one asked for or an error naming those Kolada lacks.
    pub async fn kpis(
        &self,
        cx: &FetchContext,
        pages: &mut Vec<(String, String, Vec<u8>)>,
    ) -> Result<Vec<Kpi>, SourceError> {
        let (kpis, missing) = self.metadata(cx, pages).await?;
        if !missing.is_empty() {
            return Err(KoladaFetchError::UnknownKpis { missing }.into());
        }
        Ok(kpis)
    }

    /// The KPIs Kolada has of those asked for, every page of them, and the ids it lacks.
    async fn metadata(
        &self,
        cx: &FetchContext,
        pages: &mut Vec<(String, String, Vec<u8>)>,
    ) -> Result<(Vec<Kpi>, Vec<String>), SourceError> {
        let mut kpis: Vec<Kpi> = Vec::new();
        for ids in batches(&self.kpis, self.batch_ids) {
            let url = format!("{}/kpi/{ids}?per_page={PER_PAGE}", self.url);
            kpis.extend(every_page::<Kpi>(cx, url, "kpi", pages).await?);
        }
        let known: HashSet<&str> = kpis.iter().map(|k| k.id.as_str()).collect();
        let missing: Vec<String> = (self.kpis.iter())
            .filter(|id| !known.contains(id.as_str()))
            .cloned()
            .collect();
        Ok((kpis, missing))
    }

    /// The validator of `kpi`: its publication date, under the KPI's URL.
    fn validator(&self, kpi: &Kpi) -> Validator {
        Validator {
            resource: format!("{}/kpi/{}", self.url, kpi.id),
            etag: None,
            last_modified: None,
            updated: kpi.published(),
        }
    }

    /// Throttles the host to [`REQUESTS_PER_SECOND`] unless it has said otherwise.
    fn throttle(&self, cx: &FetchContext) -> Result<(), HttpError> {
        let host = host_key(&self.url)?;
        cx.http.limiter().learn_config(
            &host,
            LimitHints {
                max_calls: Some(REQUESTS_PER_SECOND),
                window: Some(Duration::from_secs(1)),
                ..LimitHints::default()
            },
        );
        Ok(())
    }
}

impl super::Source for KoladaSource {
    async fn fetch(&self, cx: &FetchContext) -> Result<Fetched, SourceError> {
        self.throttle(cx)?;
        let mut metadata = Vec::new();
        let kpis = self.kpis(cx, &mut metadata).await?;
        let validators: Vec<Validator> = kpis.iter().map(|k| self.validator(k)).collect();
        // Unchanged only when Kolada dates every KPI and none moved since the stored run.
        let stored: BTreeMap<&str, &Validator> = (cx.validators.iter())
            .map(|v| (v.resource.as_str(), v))
            .collect();
        let unchanged = validators.iter().all(|v| {
            v.updated.is_some()
                && stored
                    .get(v.resource.as_str())
                    .is_some_and(|s| s.updated == v.updated)
        });
        let mut manifest = Manifest {
            kind: "kolada".into(),
            table: self.kpis.join(","),
            url: self.url.clone(),
            ..Manifest::default()
        };
        let exchange = |name: &str, url: &str, bytes: &[u8]| Exchange {
            name: name.to_string(),
            method: "GET",
            url: url.to_string(),
            body: None,
            status: 200,
            bytes: bytes.len() as u64,
            blake3: Some(blake3::hash(bytes).to_hex().to_string()),
            discarded: false,
            cells: None,
        };
        let about = About {
            table: self.kpis.join(","),
            table_id: None,
            path: None,
            label: kpis
                .iter()
                .map(|k| k.title.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            url: self.url.clone(),
            updated: validators.iter().filter_map(|v| v.updated.clone()).max(),
            language: "sv".into(),
            license: Some("Källa: Kolada".into()),
            notes: self
                .groups
                .then(|| GROUPS_NOTE.to_string())
                .into_iter()
                .collect(),
            codes: (kpis.iter())
                .map(|k| CodeLabel {
                    column: "kpi".into(),
                    code: k.id.clone(),
                    label: k.title.clone(),
                })
                .collect(),
        };
        let mut records = Vec::new();
        for (name, url, bytes) in metadata {
            manifest.requests.push(exchange(&name, &url, &bytes));
            records.push(Payload::new(&name, url, bytes));
        }
        if unchanged {
            return Ok(Fetched::unchanged(validators));
        }
        let mut pages = Vec::new();
        for url in self.data_urls() {
            every_page::<serde::de::IgnoredAny>(cx, url, "data", &mut pages).await?;
        }
        let mut payloads = Vec::new();
        for (name, url, bytes) in pages {
            manifest.requests.push(exchange(&name, &url, &bytes));
            payloads.push(Payload::new(&name, url, bytes));
        }
        records.push(Payload::new(
            MANIFEST_NAME,
            self.url.clone(),
            manifest.to_bytes(),
        ));
        let mut fetched = Fetched::new(payloads, validators).with_records(records);
        fetched.about = Some(about);
        Ok(fetched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(municipalities: Pick<String>, years: Pick<i32>, kpis: usize) -> KoladaSource {
        KoladaSource {
            url: "http://k/v3".into(),
            kpis: (0..kpis).map(|i| format!("N{i:05}")).collect(),
            municipalities,
            years,
            batch_ids: 20,
            groups: false,
        }
    }

    #[test]
    fn data_queries_keep_every_segment_within_the_batch() {
        let areas = Pick::Listed((0..45).map(|i| format!("{:04}", 100 + i)).collect());
        let urls = source(areas, Pick::Listed(vec![2022, 2023]), 21).data_urls();
        // 21 KPIs → 2 batches; 45 municipalities → 3; two years → 1.
        assert_eq!(urls.len(), 6);
        for url in &urls {
            let path = url.split('?').next().unwrap();
            for segment in path.split('/') {
                assert!(segment.split(',').count() <= 20, "{url}");
            }
        }
        assert!(urls[0].starts_with("http://k/v3/data/kpi/N00000,N00001,"));
        assert!(urls[0].ends_with("/year/2022,2023?per_page=5000"));
        let all = source(Pick::All, Pick::Listed(vec![2023]), 3).data_urls();
        assert_eq!(
            all,
            ["http://k/v3/data/kpi/N00000,N00001,N00002/year/2023?per_page=5000"]
        );
    }

    #[test]
    fn every_year_is_asked_for_in_batches() {
        let urls = source(Pick::All, Pick::All, 1).data_urls();
        let years: usize = (urls.iter())
            .map(|u| {
                u.split("/year/")
                    .nth(1)
                    .unwrap()
                    .split('?')
                    .next()
                    .unwrap()
                    .split(',')
                    .count()
            })
            .sum();
        let now = chrono::Datelike::year(&chrono::Utc::now());
        assert_eq!(years as i32, now - FIRST_YEAR + 1);
    }

    #[test]
    fn units_are_read_from_titles_as_kolada_writes_them() {
        let titles = [
            (
                "Invånare 0-19 år med låg ekonomisk standard, andel (%)",
                Some("percent"),
            ),
            (
                "Verkställda vräkningar som berör barn, antal barn/100 000 inv",
                None,
            ),
            (
                "Barn och unga 0-20 år placerade på HVB, antal/1000 inv",
                Some("per_1000"),
            ),
            (
                "Deltagartillfällen i idrottsföreningar, antal/inv 7-20 år",
                Some("per_inhabitant"),
            ),
            ("Antal elever i grundskolan", Some("count")),
            ("Kostnad per elev i grundskola, kr", Some("sek")),
            (
                "Elever i åk 9, meritvärde, hemkommun, genomsnitt (17 ämnen)",
                None,
            ),
            ("Kraftverk i kommunen", None),
        ];
        for (title, unit) in titles {
            assert_eq!(unit_of_title(title), unit, "{title}");
        }
        assert_eq!(
            encode_query("barn i ekonomiskt utsatta"),
            "barn%20i%20ekonomiskt%20utsatta"
        );
        assert_eq!(encode_query("åk"), "%C3%A5k");
    }

    #[test]
    fn a_kpi_is_published_at_its_latest_date() {
        let kpi = |a: Option<&str>, b: Option<&str>| Kpi {
            id: "N1".into(),
            title: "t".into(),
            description: None,
            is_divided_by_gender: false,
            operating_area: None,
            publication_date: a.map(Into::into),
            prel_publication_date: b.map(Into::into),
        };
        assert_eq!(
            kpi(Some("2025-03-01"), Some("2025-09-01"))
                .published()
                .as_deref(),
            Some("2025-09-01")
        );
        assert_eq!(
            kpi(None, Some("2025-09-01")).published().as_deref(),
            Some("2025-09-01")
        );
        assert_eq!(kpi(None, None).published(), None);
    }
}
