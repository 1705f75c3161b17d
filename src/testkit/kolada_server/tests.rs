//! The server from the outside: a reqwest client against it on loopback.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, RETRY_AFTER, TRANSFER_ENCODING};
use serde_json::{Value, json};

use super::*;
use crate::fixtures::real;

fn client() -> reqwest::Client {
    crate::sources::http::install_crypto_provider();
    reqwest::Client::new()
}

async fn get(url: &str) -> (u16, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Every page from `url` on, following `link` (`next_url` or `next_page`).
async fn all_pages(url: &str, link: &str) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut next = Some(url.to_owned());
    while let Some(url) = next {
        let (status, page) = get(&url).await;
        assert_eq!(status, 200, "{url}: {page}");
        next = page.get(link).and_then(Value::as_str).map(str::to_owned);
        pages.push(page);
        assert!(pages.len() < 100, "paging does not end");
    }
    pages
}

fn ids_of(pages: &[Value]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p["values"].as_array().unwrap().clone())
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

fn capped(cap: usize) -> ServerConfig {
    ServerConfig::default().with_per_page_cap(cap)
}

#[test]
fn named_kpis_are_added_once_each() {
    let data = Dataset::small().with_kpis_named(["N15428", "U31803", "U31803"].map(String::from));
    let ids: Vec<&str> = data.kpis.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["N01951", "N15428", "U28112", "U31803"]);
}

#[tokio::test]
async fn kpis_page_by_next_url_with_count_per_page() {
    let data = Dataset::small().with_generated_kpis(9);
    let server = KoladaServer::start(data.clone(), capped(5));
    let pages = all_pages(&format!("{}/kpi", server.url()), "next_url").await;
    let counts: Vec<u64> = pages.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [5, 5, 2]);
    let ids: Vec<String> = data.kpis.iter().map(|k| k.id.clone()).collect();
    assert_eq!(ids_of(&pages), ids);
    let origin = format!("http://{}", server.addr());
    assert_eq!(
        pages[0]["next_url"],
        json!(format!("{origin}/v3/kpi?page=2"))
    );
    assert_eq!(pages[0]["previous_url"], Value::Null);
    assert_eq!(pages[2]["next_url"], Value::Null);
    assert_eq!(
        pages[2]["previous_url"],
        json!(format!("{origin}/v3/kpi?page=2"))
    );
    let log: Vec<usize> = server.stats().of(Kind::Kpi).map(Logged::page).collect();
    assert_eq!(log, [1, 2, 3]);
}

#[tokio::test]
async fn next_url_keeps_the_other_parameters() {
    let server = KoladaServer::start(Dataset::small(), capped(2));
    let (_, page) = get(&format!(
        "{}/municipality?per_page=3&title=region&page=1",
        server.url()
    ))
    .await;
    // The cap (2) wins over `per_page=3`; the filter leaves Region Stockholm, Region Halland.
    assert_eq!(page["count"], json!(2));
    assert_eq!(page["next_url"], Value::Null);
    let (_, page) = get(&format!("{}/municipality?per_page=3&page=1", server.url())).await;
    let next = page["next_url"].as_str().unwrap();
    assert!(
        next.ends_with("/v3/municipality?per_page=3&page=2"),
        "{next}"
    );
}

#[tokio::test]
async fn v2_names_are_next_page_and_left_out_at_the_ends() {
    let config = capped(4).with_paging(PagingNames::V2);
    let server = KoladaServer::start(Dataset::small().with_generated_kpis(9), config);
    let pages = all_pages(&format!("{}/kpi", server.url()), "next_page").await;
    assert_eq!(pages.len(), 3);
    assert!(pages[0].get("previous_page").is_none());
    assert!(pages[0].get("next_url").is_none());
    assert!(pages[1]["previous_page"].is_string());
    assert!(pages[2].get("next_page").is_none());
}

#[tokio::test]
async fn more_than_5000_kpis_take_two_pages_at_kolada_s_size() {
    let server = KoladaServer::start(
        Dataset::small().with_generated_kpis(5_000),
        ServerConfig::default(),
    );
    let pages = all_pages(&format!("{}/kpi?per_page=5000", server.url()), "next_url").await;
    let counts: Vec<u64> = pages.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [5_000, 3]);
}

#[tokio::test]
async fn kpi_objects_have_v3_s_fields_and_title_filters_ignore_case() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let (status, page) = get(&format!("{}/kpi?title=BEHÖRIGA", server.url())).await;
    assert_eq!(status, 200);
    assert_eq!(page["count"], json!(1));
    assert_eq!(
        page["values"][0],
        json!({
            "id": "N15428",
            "title": "Elever i åk 9 som är behöriga till yrkesprogram, andel (%)",
            "description": "Elever i åk 9 som är behöriga till yrkesprogram, andel (%). Källa: testdata.",
            "is_divided_by_gender": true,
            "operating_area": "Grundskola",
            "municipality_type": "A",
            "has_ou_data": false,
            "publication_date": "2024-03-01",
            "prel_publication_date": null,
            "ou_publication_date": null,
            "perspective": "Resurser",
            "auspices": "X",
        })
    );
    let (_, page) = get(&format!("{}/kpi/U28112,N01951,X1", server.url())).await;
    assert_eq!(ids_of(&[page]), ["N01951", "U28112"]);
}

#[tokio::test]
async fn areas_are_municipalities_regions_and_riket_and_groups_list_members() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let (_, page) = get(&format!("{}/municipality/0180,0013,0000", server.url())).await;
    assert_eq!(
        page["values"],
        json!([
            {"id": "0180", "title": "Stockholm", "type": "K"},
            {"id": "0013", "title": "Region Halland", "type": "L"},
            {"id": "0000", "title": "Riket", "type": "L"},
        ])
    );
    let (_, page) = get(&format!("{}/municipality_groups/G33698", server.url())).await;
    assert_eq!(
        page["values"],
        json!([{"id": "G33698", "title": "Storstäder", "members": [
            {"id": "0180", "title": "Stockholm"}, {"id": "1480", "title": "Göteborg"},
        ]}])
    );
    assert_eq!(server.stats().municipality_pages, 1);
    assert_eq!(server.stats().group_pages, 1);
}

#[tokio::test]
async fn data_rows_have_v3_s_shape_and_gender_only_where_divided() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let url = format!(
        "{}/data/kpi/N15428,N01951/municipality/0180,G33698/year/2023",
        server.url()
    );
    let (_, page) = get(&url).await;
    let rows = page["values"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(page["next_url"], Value::Null);
    let first = &rows[0];
    assert_eq!(
        (&first["kpi"], &first["period"], &first["municipality"]),
        (&json!("N01951"), &json!(2023), &json!("0180"))
    );
    let genders = |row: &Value| -> Vec<String> {
        row["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["gender"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(genders(&rows[0]), ["T"]);
    assert_eq!(genders(&rows[2]), ["T", "K", "M"]);
    let value = &rows[0]["values"][0];
    let keys: BTreeSet<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["count", "gender", "isdeleted", "status", "value"])
    );
    assert_eq!(value["isdeleted"], json!(false));
    // A group row is a mean: its count is its members with a value.
    let group = &rows[1]["values"][0];
    assert!(group["count"].as_u64().unwrap() <= 2);
}

#[tokio::test]
async fn the_data_endpoint_serves_exactly_the_expected_rows() {
    let data = Dataset::small();
    let server = KoladaServer::start(data.clone(), capped(10));
    let url = format!(
        "{}/data/kpi/N01951,N15428,U28112/year/2020,2021,2022,2023",
        server.url()
    );
    let pages = all_pages(&url, "next_url").await;
    assert!(pages.len() >= 3);
    let mut served = Vec::new();
    for row in pages.iter().flat_map(|p| p["values"].as_array().unwrap()) {
        for v in row["values"].as_array().unwrap() {
            served.push(ExpectedRow {
                kpi: row["kpi"].as_str().unwrap().to_owned(),
                area: row["municipality"].as_str().unwrap().to_owned(),
                period: row["period"].as_i64().unwrap() as i32,
                gender: match v["gender"].as_str().unwrap() {
                    "T" => Gender::T,
                    "K" => Gender::K,
                    _ => Gender::M,
                },
                value: v["value"].as_f64(),
                count: v["count"].as_u64().unwrap() as u32,
                status: v["status"].as_str().unwrap().to_owned(),
            });
        }
    }
    assert_eq!(served, data.expected_rows());
    assert!(
        served
            .iter()
            .any(|r| r.value.is_none() && r.status == MISSING)
    );
    assert!(served.iter().any(|r| r.area == "G33700"));
}

#[tokio::test]
async fn more_than_25_ids_in_a_segment_are_refused_with_fastapi_detail() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let many = |prefix: &str| {
        (0..26)
            .map(|i| format!("{prefix}{i:02}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let years = (1990..2016)
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let urls = [
        format!("{}/kpi/{}", server.url(), many("N")),
        format!("{}/data/kpi/{}/year/2023", server.url(), many("N")),
        format!(
            "{}/data/kpi/N01951/municipality/{}/year/2023",
            server.url(),
            many("01")
        ),
        format!("{}/data/kpi/N01951/year/{years}", server.url()),
    ];
    for url in &urls {
        let (status, body) = get(url).await;
        assert_eq!(status, 400, "{url}");
        assert!(
            body["detail"].as_str().unwrap().contains("at most 25"),
            "{body}"
        );
    }
    let exactly = (0..25)
        .map(|i| format!("N{i:02}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, _) = get(&format!("{}/kpi/{exactly}", server.url())).await;
    assert_eq!(status, 200);
    assert_eq!(server.stats().refused, 4);
}

#[tokio::test]
async fn unknown_paths_are_404_and_bad_paging_is_422() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let (status, body) = get(&format!("{}/kpis", server.url())).await;
    assert_eq!((status, body), (404, json!({"detail": "Not Found"})));
    let (status, body) = get(&format!("{}/kpi?per_page=5001", server.url())).await;
    assert_eq!(status, 422);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "per_page"]));
    let (status, _) = get(&format!("{}/kpi?page=0", server.url())).await;
    assert_eq!(status, 422);
    let stats = server.stats();
    assert_eq!(
        (stats.not_found, stats.refused, stats.other_requests),
        (1, 2, 1)
    );
}

#[tokio::test]
async fn a_429_comes_with_or_without_retry_after_then_the_answer() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    server.inject(
        Fault::TooManyRequests {
            retry_after_secs: Some(2),
        },
        1,
    );
    server.inject(
        Fault::TooManyRequests {
            retry_after_secs: None,
        },
        1,
    );
    let url = format!("{}/kpi", server.url());
    let first = client().get(&url).send().await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()[RETRY_AFTER], "2");
    let second = client().get(&url).send().await.unwrap();
    assert_eq!(second.status(), 429);
    assert!(second.headers().get(RETRY_AFTER).is_none());
    assert_eq!(
        second.json::<Value>().await.unwrap(),
        json!({"detail": "Too Many Requests"})
    );
    assert_eq!(get(&url).await.0, 200);
    let stats = server.stats();
    assert_eq!((stats.rate_limited, stats.kpi_pages), (2, 3));
    assert_eq!(stats.log[0].fault, Some("too_many_requests"));
}

#[tokio::test]
async fn a_503_burst_hits_only_its_prefix_and_ends() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    server.inject_at("/v3/data", Fault::Unavailable, 3);
    let data = format!("{}/data/kpi/N01951/year/2023", server.url());
    assert_eq!(get(&format!("{}/kpi", server.url())).await.0, 200);
    for _ in 0..3 {
        assert_eq!(get(&data).await, (503, json!("Service Unavailable")));
    }
    assert_eq!(get(&data).await.0, 200);
    assert_eq!(server.stats().unavailable, 3);
}

#[tokio::test]
async fn a_truncated_page_promises_more_than_it_sends() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    server.inject(Fault::TruncatedPage, 1);
    let response = client()
        .get(format!("{}/kpi", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let promised: usize = response.headers()[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(promised > 100);
    assert!(response.bytes().await.is_err());
    assert_eq!(server.stats().cut_short, 1);
}

#[tokio::test]
async fn a_cut_chunked_body_fails_the_read() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    server.inject(Fault::CutMidBody, 1);
    let response = client()
        .get(format!("{}/kpi", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(CONTENT_LENGTH).is_none());
    assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");
    assert!(response.bytes().await.is_err());
    assert_eq!(get(&format!("{}/kpi", server.url())).await.0, 200);
}

#[tokio::test]
async fn a_slow_answer_outlasts_a_client_timeout() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    server.inject(Fault::Slow(Duration::from_millis(500)), 1);
    let url = format!("{}/kpi", server.url());
    let late = client()
        .get(&url)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(late.unwrap_err().is_timeout());
    assert_eq!(server.stats().slowed, 1);
}

#[tokio::test]
async fn retired_renamed_and_revised_kpis_show_on_the_next_request() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    let data_url = format!(
        "{}/data/kpi/N15428/municipality/0180/year/2023",
        server.url()
    );
    let (_, before) = get(&data_url).await;
    server.revise_kpi("N15428");
    let (_, after) = get(&data_url).await;
    assert_ne!(before["values"][0]["values"], after["values"][0]["values"]);
    server.rename_kpi("N15428", "Nytt namn");
    server.retire_kpi("U28112");
    let (_, page) = get(&format!("{}/kpi/N15428,U28112", server.url())).await;
    assert_eq!(page["count"], json!(1));
    assert_eq!(page["values"][0]["title"], json!("Nytt namn"));
    let (_, rows) = get(&format!("{}/data/kpi/U28112/year/2023", server.url())).await;
    assert_eq!(rows["count"], json!(0));
    let held = server.dataset();
    assert!(held.kpi("U28112").is_none());
    assert_eq!(held.kpi("N15428").unwrap().revision, 1);
}

#[tokio::test]
async fn stats_count_by_kind_and_log_the_ids_of_each_request() {
    let server = KoladaServer::start(Dataset::small(), ServerConfig::default());
    get(&format!("{}/kpi", server.url())).await;
    get(&format!("{}/municipality", server.url())).await;
    get(&format!(
        "{}/data/kpi/N01951,N15428/municipality/0180,1480,0000/year/2022,2023",
        server.url()
    ))
    .await;
    let (status, remote) = get(&server.stats_url()).await;
    assert_eq!(status, 200);
    let stats = server.stats();
    assert_eq!(
        (stats.kpi_pages, stats.municipality_pages, stats.data_pages),
        (1, 1, 1)
    );
    assert_eq!(stats.log.len(), 3, "/_stats is not logged");
    let data = stats.of(Kind::Data).next().unwrap();
    assert_eq!(data.ids("kpi"), ["N01951", "N15428"]);
    assert_eq!(data.ids("municipality").len(), 3);
    assert_eq!(data.ids("year"), ["2022", "2023"]);
    assert_eq!(remote["data_pages"], json!(1));
    assert_eq!(remote["log"][2]["kind"], json!("data"));
    assert_eq!(remote["log"][2]["status"], json!(200));
}

#[tokio::test]
async fn the_real_municipality_list_loads_as_areas() {
    let Some(bytes) = real("pykolada/municipality.json") else {
        return;
    };
    let data = Dataset::default().with_areas_json(&bytes).unwrap();
    assert_eq!(data.areas.len(), 312);
    let merged = Dataset::small().with_areas_json(&bytes).unwrap();
    assert_eq!(merged.areas.len(), 312, "ids already held are not repeated");
    let server = KoladaServer::start(data, ServerConfig::default());
    let (_, page) = get(&format!("{}/municipality/0000,0013", server.url())).await;
    assert_eq!(
        page["values"],
        json!([{"id": "0013", "title": "Region Halland", "type": "L"}, {"id": "0000", "title": "Riket", "type": "L"}])
    );
}
