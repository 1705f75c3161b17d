//! The server from the outside: a reqwest client against it on loopback.

use std::time::Duration;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use super::*;
use crate::fixtures::real;

fn client() -> reqwest::Client {
    crate::sources::http::install_crypto_provider();
    reqwest::Client::new()
}

/// Region (eliminable) × Kon × ContentsCode × Tid = 5 × 3 × 1 × 4 cells.
fn small() -> PxTable {
    PxTable::generated(
        "TAB9000",
        &[
            ("Region", 5, Role::Eliminable),
            ("Kon", 3, Role::Plain),
            ("ContentsCode", 1, Role::Content),
            ("Tid", 4, Role::Time),
        ],
    )
}

fn limits() -> ServerLimits {
    ServerLimits {
        max_cells: 30,
        max_values: Some(12),
        max_calls: 1_000,
        window: Duration::from_secs(10),
        rate_headers: true,
    }
}

fn server() -> PxWebServer {
    PxWebServer::start(vec![small()], limits())
}

async fn get(url: &str) -> (u16, String, Value) {
    answer(client().get(url).send().await.unwrap()).await
}

async fn post(url: &str, body: &Value) -> (u16, String, Value) {
    answer(client().post(url).json(body).send().await.unwrap()).await
}

/// Status, Content-Type and body (JSON if it parses, else the text as a JSON string).
async fn answer(response: reqwest::Response) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn v1_query(items: &[(&str, &str, &[&str])]) -> Value {
    let query: Vec<Value> = items
        .iter()
        .map(|(code, filter, values)| json!({"code": code, "selection": {"filter": filter, "values": values}}))
        .collect();
    json!({"query": query, "response": {"format": "json-stat2"}})
}

fn v2_query(items: &[(&str, &[&str])]) -> Value {
    let selection: Vec<Value> = items
        .iter()
        .map(|(code, values)| json!({"variableCode": code, "valueCodes": values}))
        .collect();
    json!({"selection": selection})
}

/// The value a json-stat2 answer holds at `codes` (one per dimension of its `id`).
fn value_of(dataset: &Value, codes: &[&str]) -> Value {
    let ids = dataset["id"].as_array().unwrap();
    let sizes = dataset["size"].as_array().unwrap();
    let mut flat = 0;
    for ((id, size), code) in ids.iter().zip(sizes).zip(codes) {
        let position = &dataset["dimension"][id.as_str().unwrap()]["category"]["index"][code];
        flat = flat * size.as_u64().unwrap() + position.as_u64().unwrap();
    }
    dataset["value"][flat as usize].clone()
}

fn number(value: Option<f64>) -> Value {
    value.map_or(Value::Null, |v| json!(v as i64))
}

#[tokio::test]
async fn v1_config_sits_on_the_language_level_only() {
    let server = server();
    let (status, _, config) = get(&format!("{}/?config", server.v1_root())).await;
    assert_eq!(status, 200);
    assert_eq!(
        config,
        json!({"maxValues": 12, "maxCells": 30, "maxCalls": 1000, "timeWindow": 10, "CORS": true})
    );
    let (status, _, body) = get(&format!("{}/config", server.v1_root())).await;
    assert_eq!((status, body), (400, json!("Bad Request")));
}

#[tokio::test]
async fn v1_navigation_lists_databases_levels_and_tables_with_zoneless_updated() {
    let server = server();
    let (_, _, databases) = get(&format!("{}/", server.v1_root())).await;
    assert_eq!(databases, json!([{"dbid": "ssd", "text": "ssd"}]));
    let (_, _, levels) = get(&format!("{}/ssd", server.v1_root())).await;
    assert_eq!(levels, json!([{"id": "TEST", "type": "l", "text": "TEST"}]));
    let (_, _, tables) = get(&format!("{}/ssd/TEST/TEST01", server.v1_root())).await;
    assert_eq!(
        tables,
        json!([{"id": "TAB9000", "type": "t", "text": "Testtabell TAB9000", "updated": "2024-01-01T08:00:00"}])
    );
}

#[tokio::test]
async fn v1_metadata_leaves_out_elimination_and_time_when_false() {
    let server = server();
    let (_, _, meta) = get(&server.v1_table_url("TAB9000")).await;
    let variables = meta["variables"].as_array().unwrap();
    assert_eq!(variables[0]["elimination"], json!(true));
    assert!(variables[1].get("elimination").is_none() && variables[1].get("time").is_none());
    assert_eq!(variables[3]["time"], json!(true));
    assert_eq!(server.stats().metadata_requests, 1);
}

#[tokio::test]
async fn v1_data_has_the_selected_size_and_the_table_values() {
    let server = server();
    let query = v1_query(&[
        ("Region", "item", &["3", "1"]),
        ("Kon", "all", &["*"]),
        ("ContentsCode", "item", &["ContentsCode0"]),
        ("Tid", "top", &["2"]),
    ]);
    let (status, content_type, data) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json; charset=utf-8")
    );
    assert_eq!(
        data["size"],
        json!([2, 3, 1, 2]),
        "values answered in table order"
    );
    assert_eq!(
        data["dimension"]["Region"]["category"]["index"],
        json!({"1": 0, "3": 1})
    );
    assert_eq!(data["extension"]["px"]["tableid"], json!("TAB9000"));
    assert_eq!(
        data["role"],
        json!({"time": ["Tid"], "metric": ["ContentsCode"]})
    );
    let table = small();
    for codes in [
        ["1", "0", "ContentsCode0", "2023"],
        ["3", "2", "ContentsCode0", "2024"],
    ] {
        assert_eq!(value_of(&data, &codes), number(table.value_at(&codes)));
    }
    // Flat 7 of the table (Region 0, Kon 1, Tid 2024) is a `..` cell; here it is cell 3 of 4.
    let query = v1_query(&[("Region", "item", &["0"]), ("Kon", "item", &["1"])]);
    let (_, _, data) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(data["value"][3], Value::Null);
    assert_eq!(data["status"], json!({"3": ".."}));
    assert_eq!(server.stats().data_requests, 2);
}

#[tokio::test]
async fn v1_eliminates_what_may_be_and_answers_all_of_what_may_not() {
    let server = server();
    let query = v1_query(&[("Tid", "item", &["2021"])]);
    let (_, _, data) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(data["id"], json!(["Kon", "ContentsCode", "Tid"]));
    assert_eq!(data["size"], json!([3, 1, 1]));
    assert!(data["dimension"].get("Region").is_none());
    let expected = small().value_at(&["0", "2", "ContentsCode0", "2021"]);
    assert_eq!(
        value_of(&data, &["2", "ContentsCode0", "2021"]),
        number(expected)
    );
}

#[tokio::test]
async fn v1_codes_are_case_insensitive() {
    let server = server();
    let query = v1_query(&[
        ("region", "item", &["2"]),
        ("CONTENTSCODE", "item", &["contentscode0"]),
    ]);
    let (status, _, data) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(status, 200);
    assert_eq!(data["size"], json!([1, 3, 1, 4]));
}

#[tokio::test]
async fn v1_refuses_as_scb_does() {
    let server = server();
    let url = server.v1_table_url("TAB9000");
    // 5 × 3 × 1 × 4 = 60 cells > 30.
    let (status, _, body) = post(&url, &v1_query(&[("Region", "all", &["*"])])).await;
    assert_eq!(
        (status, body),
        (403, json!({"error": "Too many values selected"}))
    );
    let (status, _, body) = post(&url, &v1_query(&[("Region", "item", &["9"])])).await;
    assert_eq!((status, body), (400, json!("Bad Request")));
    let mut query = v1_query(&[("Region", "item", &["1"])]);
    query["response"]["format"] = json!("jsonstat2");
    assert_eq!(post(&url, &query).await.0, 400);
    assert_eq!(server.stats().too_many_cells, 1);
}

#[tokio::test]
async fn v1_without_a_format_answers_px() {
    let server = server();
    let query =
        json!({"query": [{"code": "Region", "selection": {"filter": "item", "values": ["1"]}}]});
    let (status, content_type, body) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/octet-stream; charset=Windows-1252")
    );
    let body = body.as_str().unwrap();
    assert!(
        body.starts_with("CHARSET=\"ANSI\";\r\n") && body.ends_with("\r\n;\r\n"),
        "{body}"
    );
}

#[tokio::test]
async fn v2_config_publishes_the_limits() {
    let server = server();
    let (status, content_type, config) = get(&format!("{}/config", server.v2_root())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json; charset=UTF-8")
    );
    assert_eq!(config["apiVersion"], json!("2.3.2"));
    assert_eq!(
        (
            &config["maxDataCells"],
            &config["maxCallsPerTimeWindow"],
            &config["timeWindow"]
        ),
        (&json!(30), &json!(1000), &json!(10))
    );
}

#[tokio::test]
async fn v2_data_has_the_selected_size_values_and_elimination() {
    let server = server();
    let url = format!(
        "{}/tables/tab9000/data?lang=sv&outputFormat=json-stat2",
        server.v2_root()
    );
    let query = v2_query(&[
        ("kon", &["?"]),
        ("ContentsCode", &["*"]),
        ("Tid", &["TOP(3)", "2021"]),
    ]);
    let (status, _, data) = post(&url, &query).await;
    assert_eq!(status, 200);
    assert_eq!(
        data["id"],
        json!(["Kon", "ContentsCode", "Tid"]),
        "Region eliminated"
    );
    assert_eq!(data["size"], json!([3, 1, 4]));
    assert_eq!(
        data["dimension"]["Kon"]["extension"],
        json!({"elimination": false, "show": "value"})
    );
    let expected = small().value_at(&["0", "1", "ContentsCode0", "2022"]);
    assert_eq!(
        value_of(&data, &["1", "ContentsCode0", "2022"]),
        number(expected)
    );
}

#[tokio::test]
async fn v2_names_elimination_values_in_data_but_not_in_metadata() {
    let mut table = small();
    table.variables[0].elimination_value = Some("4".to_owned());
    let server = PxWebServer::start(vec![table.clone()], limits());
    let url = format!("{}/tables/TAB9000/data", server.v2_root());
    let query = v2_query(&[
        ("Region", &["4"]),
        ("Kon", &["1"]),
        ("ContentsCode", &["*"]),
        ("Tid", &["2024"]),
    ]);
    let (_, _, data) = post(&url, &query).await;
    assert_eq!(
        data["dimension"]["Region"]["extension"]["eliminationValueCode"],
        json!("4")
    );
    let (_, _, meta) = get(&format!(
        "{}/tables/TAB9000/metadata?lang=sv",
        server.v2_root()
    ))
    .await;
    assert_eq!(meta["value"], json!([]));
    assert_eq!(meta["size"], json!([5, 3, 1, 4]));
    assert_eq!(
        meta["dimension"]["Region"]["extension"],
        json!({"elimination": true, "show": "value", "codelists": []})
    );
    assert_eq!(
        meta["dimension"]["ContentsCode"]["category"]["unit"]["ContentsCode0"],
        json!({"base": "antal", "decimals": 0})
    );
    // Eliminated, Region stands at its elimination value.
    let query = v2_query(&[
        ("Kon", &["1"]),
        ("ContentsCode", &["*"]),
        ("Tid", &["2024"]),
    ]);
    let (_, _, data) = post(&url, &query).await;
    assert_eq!(
        data["value"],
        json!([number(table.value_at(&["4", "1", "ContentsCode0", "2024"]))])
    );
}

#[tokio::test]
async fn v2_refuses_with_scb_problem_titles() {
    let server = server();
    let url = format!("{}/tables/TAB9000/data", server.v2_root());
    let cases: [(Value, &str); 4] = [
        (
            v2_query(&[("Kon", &["1"]), ("ContentsCode", &["*"])]),
            "Missing selection for mandantory variable",
        ),
        (v2_query(&[("Kön", &["1"])]), "Non-existent variable"),
        (
            v2_query(&[("Kon", &["7"]), ("ContentsCode", &["*"]), ("Tid", &["*"])]),
            "Non-existent value",
        ),
        (
            v2_query(&[
                ("Region", &["*"]),
                ("Kon", &["*"]),
                ("ContentsCode", &["*"]),
                ("Tid", &["*"]),
            ]),
            "Too many cells selected",
        ),
    ];
    for (query, title) in cases {
        let (status, content_type, problem) = post(&url, &query).await;
        assert_eq!(
            (status, content_type.as_str()),
            (400, "application/problem+json"),
            "{title}"
        );
        assert_eq!(
            (&problem["title"], &problem["status"]),
            (&json!(title), &json!(400))
        );
    }
    let (status, _, problem) = post(
        &format!("{}/tables/TAB1/data", server.v2_root()),
        &json!({"selection": []}),
    )
    .await;
    assert_eq!(
        (status, &problem["title"]),
        (404, &json!("Non-existent table"))
    );
    assert_eq!(server.stats().too_many_cells, 1);
}

#[tokio::test]
async fn v2_tables_are_paged_and_searched() {
    let tables = (0..5)
        .map(|i| PxTable::generated(&format!("TAB{i}"), &[("Tid", 2, Role::Time)]))
        .collect();
    let server = PxWebServer::start(tables, limits());
    let (_, _, page) = get(&format!(
        "{}/tables?pageSize=2&pageNumber=3",
        server.v2_root()
    ))
    .await;
    assert_eq!(page["tables"].as_array().unwrap().len(), 1);
    assert_eq!(page["page"]["totalPages"], json!(3));
    assert_eq!(page["tables"][0]["firstPeriod"], json!("2023"));
    let (status, _, problem) = get(&format!(
        "{}/tables?pageSize=2&pageNumber=4",
        server.v2_root()
    ))
    .await;
    assert_eq!(
        (status, &problem["title"]),
        (404, &json!("Non-existent page"))
    );
    let (_, _, hits) = get(&format!("{}/tables?query=tab3", server.v2_root())).await;
    assert_eq!(hits["page"]["totalElements"], json!(1));
    let (_, _, table) = get(&format!("{}/tables/TAB3", server.v2_root())).await;
    assert_eq!(
        (&table["id"], &table["subjectCode"], &table["timeUnit"]),
        (&json!("TAB3"), &json!("TEST"), &json!("Annual"))
    );
}

#[tokio::test]
async fn codelists_answer_under_both_spellings_with_case_sensitive_ids() {
    let mut table = small();
    table.variables[0].codelists.push(PxCodelist {
        id: "vs_RegionLän".to_owned(),
        label: "län".to_owned(),
        kind: CodelistKind::Valueset,
        values: vec![CodelistValue {
            code: "1".to_owned(),
            label: "Region 1".to_owned(),
            value_map: vec!["1".to_owned()],
        }],
    });
    let server = PxWebServer::start(vec![table], limits());
    for spelling in ["codelists", "codeLists"] {
        let (status, _, list) = get(&format!("{}/{spelling}/vs_RegionLän", server.v2_root())).await;
        assert_eq!(
            (status, &list["type"], &list["values"][0]["valueMap"]),
            (200, &json!("Valueset"), &json!(["1"]))
        );
    }
    assert_eq!(
        get(&format!("{}/codelists/vs_regionlän", server.v2_root()))
            .await
            .0,
        404
    );
    let query = v1_query(&[("Region", "vs:RegionLän", &["1"]), ("Kon", "item", &["0"])]);
    let (_, _, data) = post(&server.v1_table_url("TAB9000"), &query).await;
    assert_eq!(data["size"], json!([1, 1, 1, 4]));
}

#[tokio::test]
async fn calls_beyond_the_window_get_429_with_retry_after() {
    let limits = ServerLimits {
        max_calls: 2,
        window: Duration::from_secs(2),
        ..limits()
    };
    let server = PxWebServer::start(vec![small()], limits);
    let config = format!("{}/config", server.v2_root());
    let first = client().get(&config).send().await.unwrap();
    assert_eq!(first.headers()["x-rate-limit-limit"], "2s");
    assert_eq!(first.headers()["x-rate-limit-remaining"], "1");
    assert!(first.headers().contains_key("x-rate-limit-reset"));
    let _ = get(&format!("{}/?config", server.v1_root())).await;
    let refused = client().get(&config).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()[RETRY_AFTER], "2");
    assert_eq!(
        refused.json::<Value>().await.unwrap()["title"],
        json!("Too many requests")
    );
    let (status, content_type, _) = get(&format!("{}/?config", server.v1_root())).await;
    assert_eq!(
        (status, content_type.as_str()),
        (429, "text/plain; charset=utf-8")
    );
    let stats = server.stats();
    assert_eq!((stats.rate_limited, stats.metadata_requests), (2, 2));
    assert_eq!(
        stats.log.iter().map(|l| l.status).collect::<Vec<_>>(),
        [200, 200, 429, 429]
    );
}

#[tokio::test]
async fn data_faults_take_turns_and_then_the_server_recovers() {
    let server = server();
    let url = server.v1_table_url("TAB9000");
    let query = v1_query(&[("Region", "item", &["1"])]);
    server.inject(Fault::Data {
        fault: DataFault::Unavailable,
        times: 2,
    });
    server.inject(Fault::Data {
        fault: DataFault::HtmlPage,
        times: 1,
    });
    assert_eq!(post(&url, &query).await.0, 503);
    assert_eq!(post(&url, &query).await.0, 503);
    let (status, content_type, _) = post(&url, &query).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    assert_eq!(post(&url, &query).await.0, 200);
}

#[tokio::test]
async fn a_truncated_answer_has_a_matching_length_but_is_not_json() {
    let server = server();
    server.inject(Fault::Data {
        fault: DataFault::TruncatedJson,
        times: 1,
    });
    let url = format!("{}/tables/TAB9000/data", server.v2_root());
    let query = v2_query(&[("Kon", &["*"]), ("ContentsCode", &["*"]), ("Tid", &["*"])]);
    let response = client().post(&url).json(&query).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let length: usize = response.headers()[CONTENT_LENGTH]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = response.bytes().await.unwrap();
    assert_eq!(body.len(), length);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn a_reset_mid_body_fails_the_read_after_the_headers() {
    let server = server();
    server.inject(Fault::Data {
        fault: DataFault::ResetMidBody,
        times: 1,
    });
    let query = v1_query(&[("Region", "item", &["1"])]);
    let response = client()
        .post(server.v1_table_url("TAB9000"))
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().await.is_err(),
        "the body must end short of Content-Length"
    );
}

#[tokio::test]
async fn a_slow_answer_outlasts_a_client_timeout() {
    let server = server();
    server.inject(Fault::Data {
        fault: DataFault::Slow(Duration::from_millis(500)),
        times: 1,
    });
    let query = v1_query(&[("Region", "item", &["1"])]);
    let url = server.v1_table_url("TAB9000");
    let late = client()
        .post(&url)
        .json(&query)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(late.unwrap_err().is_timeout());
    assert_eq!(post(&url, &query).await.0, 200);
}

#[tokio::test]
async fn metadata_can_change_between_planning_and_fetching() {
    let server = server();
    let mut changed = small();
    changed.updated = "2024-02-01T08:00:00Z".to_owned();
    changed.variables[3].values.pop();
    server.inject(Fault::ChangeAfterMetadata(Box::new(changed)));
    let (_, _, meta) = get(&format!("{}/tables/TAB9000/metadata", server.v2_root())).await;
    assert_eq!(
        meta["size"],
        json!([5, 3, 1, 4]),
        "the plan sees the old table"
    );
    let query = v2_query(&[
        ("Kon", &["1"]),
        ("ContentsCode", &["*"]),
        ("Tid", &["2024"]),
    ]);
    let (status, _, problem) =
        post(&format!("{}/tables/TAB9000/data", server.v2_root()), &query).await;
    assert_eq!(
        (status, &problem["title"]),
        (400, &json!("Non-existent value"))
    );
    let (_, _, table) = get(&format!("{}/tables/TAB9000", server.v2_root())).await;
    assert_eq!(table["updated"], json!("2024-02-01T08:00:00Z"));
    server.set_updated("TAB9000", "2024-03-01T08:00:00Z");
    let (_, _, nodes) = get(&format!("{}/ssd/TEST/TEST01", server.v1_root())).await;
    assert_eq!(nodes[0]["updated"], json!("2024-03-01T08:00:00"));
}

#[tokio::test]
async fn v1_metadata_fixtures_come_back_as_recorded() {
    for (path, v1_path) in [
        (
            "pxwebpy/response_table_variables.json",
            "ssd/HE/HE0110/HE0110A/SamForvInk1",
        ),
        (
            "fuzzy-MCP/fohm_metadata_mobbning.json",
            "Folkhalsodata/A_Mo/MobbningReg.px",
        ),
    ] {
        let Some(bytes) = real(path) else { return };
        let table = PxTable::from_v1_metadata("TAB1", v1_path, &bytes).unwrap();
        let server = PxWebServer::start(vec![table], limits());
        let (_, _, served) = get(&server.v1_table_url("TAB1")).await;
        let recorded: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(served, recorded, "{path}");
    }
}

#[tokio::test]
async fn v2_metadata_fixtures_come_back_with_their_dimensions() {
    for path in [
        "pxwebpy/TAB6471_metadata.json",
        "PxWebApi/MetadataById_tab004_js2.json",
    ] {
        let Some(bytes) = real(path) else { return };
        let table = PxTable::from_v2_metadata(&bytes).unwrap();
        let server = PxWebServer::start(vec![table.clone()], limits());
        let (_, _, served) = get(&format!(
            "{}/tables/{}/metadata",
            server.v2_root(),
            table.id
        ))
        .await;
        let recorded: Value = serde_json::from_slice(&bytes).unwrap();
        for key in ["id", "size", "role", "label", "updated"] {
            assert_eq!(served[key], recorded[key], "{path} {key}");
        }
        for id in recorded["id"].as_array().unwrap() {
            let (served, recorded) = (
                &served["dimension"][id.as_str().unwrap()],
                &recorded["dimension"][id.as_str().unwrap()],
            );
            assert_eq!(
                served["category"]["index"], recorded["category"]["index"],
                "{path} {id}"
            );
            assert_eq!(
                served["category"]["label"], recorded["category"]["label"],
                "{path} {id}"
            );
            assert_eq!(
                served["category"]["unit"], recorded["category"]["unit"],
                "{path} {id}"
            );
            assert_eq!(
                served["extension"]["elimination"], recorded["extension"]["elimination"],
                "{path} {id}"
            );
            let ids = |d: &Value| {
                d["extension"]["codelists"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["id"].clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(ids(served), ids(recorded), "{path} {id}");
        }
    }
}
