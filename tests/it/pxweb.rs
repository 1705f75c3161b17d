//! PxWeb harvests end to end: the real client, planner and run path against the loopback PxWeb
//! test server, for API v1 and PxWebApi 2.0, through the library's run service.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use indikator::ledger::RunStatus;
use indikator::pipeline::{Pipeline, RunOutcome};
use indikator::testkit::pxweb_server::{
    DataFault, Fault, PxTable, PxWebServer, Role, ServerLimits,
};

use crate::pxweb_bed::{Bed, observation_batches, values};
use crate::util::{Project, read_parquet, strings};

const PIPELINE: &str = "pxweb-folkmangd";
const TABLE: &str = "TAB9001";

/// Which API a test harvests through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    V1,
    V2,
}

/// Population by region (every code of `schemas/areas.csv`), age 0–19, sex and 107 years:
/// about two million cells, the size of a real municipal history table.
fn population(project: &Project) -> PxTable {
    let areas = std::fs::read_to_string(project.path().join("schemas/areas.csv")).unwrap();
    let regions: Vec<String> = areas
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_string())
        .collect();
    PxTable::population(TABLE, &regions)
}

fn source_keys(api: Api, server: &PxWebServer) -> String {
    match api {
        Api::V1 => format!(
            "kind = \"pxweb\"\nurl = \"{}\"\n",
            server.v1_table_url(TABLE)
        ),
        Api::V2 => format!(
            "kind = \"pxweb2\"\nurl = \"{}\"\ntable = \"{TABLE}\"\n",
            server.v2_root()
        ),
    }
}

/// A pipeline selecting the whole table, mapped like the real population pipelines.
fn pipeline_file(api: Api, server: &PxWebServer) -> String {
    format!(
        "id = \"{PIPELINE}\"\n[source]\n{}producer = \"scb\"\n\
         [source.select]\nRegion = \"*\"\nAlder = \"*\"\nKon = \"*\"\nContentsCode = [\"BE0101N1\"]\nTid = \"*\"\n\
         [map]\nindicator = {{ column = \"ContentsCode\", codes = {{ BE0101N1 = \"folkmangd_0_17\" }} }}\n\
         area = \"Region\"\nperiod = {{ column = \"Tid\", kind = \"year\" }}\n\
         sex = {{ column = \"Kon\", codes = {{ \"1\" = \"M\", \"2\" = \"F\", \"1+2\" = \"T\" }} }}\n\
         age = \"Alder\"\nunit = \"count\"\n",
        source_keys(api, server)
    )
}

impl Bed {
    /// This file's pipeline, harvesting the table through `api`.
    fn pipeline(&self, api: Api) -> Arc<Pipeline> {
        self.check(PIPELINE, &pipeline_file(api, &self.server)).0
    }
}

/// Every observation of the pipeline as (area, period, sex, age) → value.
fn observations(warehouse: &Path) -> HashMap<(String, String, String, String), Option<f64>> {
    let batches = observation_batches(warehouse, PIPELINE);
    let [areas, periods, sexes, ages] =
        ["area_code", "period", "sex", "age"].map(|c| strings(&batches, c));
    let mut found = HashMap::new();
    for (i, value) in values(&batches).into_iter().enumerate() {
        let key = (
            areas[i].clone(),
            periods[i].clone(),
            sexes[i].clone(),
            ages[i].clone(),
        );
        assert!(found.insert(key, value).is_none(), "a row twice");
    }
    found
}

/// Asserts the warehouse holds exactly the table: one row per cell, each with the server's value.
fn assert_exact(warehouse: &Path, table: &PxTable) {
    let found = observations(warehouse);
    assert_eq!(found.len() as u64, table.cells(), "one row per cell");
    let sex = HashMap::from([("M", "1"), ("F", "2"), ("T", "1+2")]);
    for ((area, period, model_sex, age), value) in &found {
        let codes = [
            area.as_str(),
            age.as_str(),
            sex[model_sex.as_str()],
            "BE0101N1",
            period.as_str(),
        ];
        assert_eq!(*value, table.value_at(&codes), "cell {codes:?}");
    }
}

/// `catalog/tables.parquet` names the table by both ids; `catalog/codes.parquet` has the label
/// of every code fetched.
fn assert_catalogued(warehouse: &Path, api: Api, table: &PxTable) {
    let tables = read_parquet(&warehouse.join("catalog/tables.parquet"));
    assert_eq!(strings(&tables, "pipeline"), [PIPELINE]);
    assert_eq!(
        strings(&tables, "table_id"),
        [TABLE],
        "v1 answers carry the v2 id too"
    );
    let path = match api {
        Api::V1 => table.v1_path.clone(),
        Api::V2 => String::new(),
    };
    assert_eq!(strings(&tables, "path"), [path]);
    assert_eq!(
        strings(&tables, "label"),
        std::slice::from_ref(&table.label)
    );
    let codes = read_parquet(&warehouse.join("catalog/codes.parquet"));
    let [columns, values, labels] = ["source_column", "code", "label"].map(|c| strings(&codes, c));
    let fetched: usize = table.variables.iter().map(|v| v.values.len()).sum();
    assert_eq!(columns.len(), fetched);
    let stockholm = (0..columns.len())
        .find(|&i| columns[i] == "Region" && values[i] == "0180")
        .expect("Stockholm's code is catalogued");
    assert_eq!(labels[stockholm], "label 0180");
}

fn two_million_cells_arrive_exact_within_the_limits(api: Api) {
    let limits = ServerLimits {
        max_cells: 150_000,
        max_values: None,
        max_calls: 5,
        window: Duration::from_secs(2),
        rate_headers: api == Api::V2,
    };
    let bed = Bed::new(|project| vec![population(project)], limits);
    let table = population(&bed.project);
    assert!(table.cells() > 2_000_000, "{}", table.cells());
    let pipeline = bed.pipeline(api);
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.status, RunStatus::Succeeded);
    let stats = bed.server.stats();
    assert_eq!(stats.rate_limited, 0, "no 429");
    assert_eq!(stats.too_many_cells, 0, "no piece over the limit");
    let minimum = table.cells().div_ceil(150_000);
    assert!(
        stats.data_requests as f64 <= minimum as f64 * 1.25,
        "{} data requests for a minimum of {minimum}",
        stats.data_requests
    );
    assert_exact(bed.warehouse.root(), &table);
    let manifest = manifest(&bed, &outcome);
    let posts = manifest["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .count();
    assert_eq!(
        posts as u64, stats.data_requests,
        "the manifest names every data request"
    );
    assert_catalogued(bed.warehouse.root(), api, &table);

    // Unchanged: the metadata requests only, and a skip that says why.
    let before = bed.server.stats();
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.status, RunStatus::Skipped, "{:?}", outcome.error);
    assert!(outcome.reason.unwrap().starts_with("unchanged"));
    let after = bed.server.stats();
    assert_eq!(after.data_requests, before.data_requests, "no data request");
    assert!(after.metadata_requests > before.metadata_requests);

    // A new `updated` fetches again.
    bed.server.set_updated(TABLE, "2024-06-01T08:00:00Z");
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert!(
        bed.server.stats().data_requests > after.data_requests,
        "fetched again"
    );
}

#[test]
fn v1_two_million_cells_arrive_exact_within_the_limits() {
    two_million_cells_arrive_exact_within_the_limits(Api::V1);
}

#[test]
fn v2_two_million_cells_arrive_exact_within_the_limits() {
    two_million_cells_arrive_exact_within_the_limits(Api::V2);
}

/// A small table, so that fault tests are quick: 21 counties × 3 sexes × 5 years.
fn small(_: &Project) -> Vec<PxTable> {
    let mut table = PxTable::generated(
        TABLE,
        &[
            ("Region", 21, Role::Eliminable),
            ("Alder", 1, Role::Plain),
            ("Kon", 3, Role::Eliminable),
            ("ContentsCode", 1, Role::Content),
            ("Tid", 5, Role::Time),
        ],
    );
    let counties = [
        "01", "03", "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "17", "18", "19",
        "20", "21", "22", "23", "24", "25",
    ];
    for (value, code) in table.variables[0].values.iter_mut().zip(counties) {
        value.code = code.into();
    }
    table.variables[1].values[0].code = "0".into();
    for (value, code) in table.variables[2].values.iter_mut().zip(["1", "2", "1+2"]) {
        value.code = code.into();
    }
    table.variables[3].values[0].code = "BE0101N1".into();
    vec![table]
}

fn small_limits() -> ServerLimits {
    ServerLimits {
        max_cells: 100,
        max_values: None,
        max_calls: 50,
        window: Duration::from_secs(1),
        rate_headers: false,
    }
}

/// Runs the small table once with `fault` injected before the run; returns the outcome.
fn with_fault(api: Api, fault: Fault) -> (Bed, RunOutcome) {
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(api);
    bed.server.inject(fault);
    let outcome = bed.run(&pipeline, false);
    (bed, outcome)
}

/// After a failed run: nothing committed, and the ledger says failed.
fn assert_nothing_committed(bed: &Bed, outcome: &RunOutcome) {
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        !bed.warehouse
            .root()
            .join(format!("observations/pipeline={PIPELINE}"))
            .exists(),
        "nothing committed"
    );
    let last = &bed.service.ledger().history(Some(PIPELINE), 1).unwrap()[0];
    assert_eq!(last.status, RunStatus::Failed);
}

#[test]
fn a_burst_of_503_is_retried_and_the_run_succeeds() {
    for api in [Api::V1, Api::V2] {
        let fault = Fault::Data {
            fault: DataFault::Unavailable,
            times: 2,
        };
        let (bed, outcome) = with_fault(api, fault);
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{api:?}: {:?}",
            outcome.error
        );
        assert_eq!(outcome.rows_written, 21 * 3 * 5);
        drop(bed);
    }
}

#[test]
fn a_connection_reset_mid_body_is_retried() {
    let fault = Fault::Data {
        fault: DataFault::ResetMidBody,
        times: 1,
    };
    let (_bed, outcome) = with_fault(Api::V2, fault);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
}

#[test]
fn a_truncated_json_or_an_html_page_on_200_fails_naming_the_url() {
    for (api, fault) in [
        (Api::V1, DataFault::TruncatedJson),
        (Api::V2, DataFault::HtmlPage),
    ] {
        let (bed, outcome) = with_fault(api, Fault::Data { fault, times: 1 });
        let error = outcome.error.clone().unwrap();
        assert!(error.contains("127.0.0.1"), "names the URL: {error}");
        assert_nothing_committed(&bed, &outcome);
    }
}

#[test]
fn an_answer_that_is_not_the_piece_asked_for_fails_naming_it() {
    // Well-formed json-stat2, but one region and one year: a cached or default answer.
    let other = r#"{"version":"2.0","class":"dataset","id":["Region","Tid"],"size":[1,1],
        "dimension":{"Region":{"category":{"index":{"01":0}}},"Tid":{"category":{"index":{"2024":0}}}},
        "value":[1]}"#;
    for api in [Api::V1, Api::V2] {
        let fault = Fault::Data {
            fault: DataFault::OtherJson(other.into()),
            times: 1,
        };
        let (bed, outcome) = with_fault(api, fault);
        let error = outcome.error.clone().unwrap_or_default();
        assert!(
            error.contains("is not the piece asked for") && error.contains("got Region 1 × Tid 1"),
            "{api:?}: {error}"
        );
        assert_nothing_committed(&bed, &outcome);
    }
}

#[test]
fn a_response_slower_than_the_timeout_is_retried_then_fails_within_bounds() {
    let fault = Fault::Data {
        fault: DataFault::Slow(Duration::from_secs(30)),
        times: 100,
    };
    let started = std::time::Instant::now();
    let (bed, outcome) = with_fault(Api::V1, fault);
    let error = outcome.error.clone().unwrap();
    assert!(error.contains("no complete answer"), "{error}");
    assert_nothing_committed(&bed, &outcome);
    // Bounded by the timeouts (3 attempts of 5 s), never a hang.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_table_that_changes_between_planning_and_fetching_is_fetched_again() {
    for api in [Api::V1, Api::V2] {
        let bed = Bed::new(small, small_limits());
        let pipeline = bed.pipeline(api);
        let mut changed = small(&bed.project).remove(0);
        changed.updated = "2025-01-01T08:00:00Z".into();
        bed.server
            .inject(Fault::ChangeAfterMetadata(Box::new(changed)));
        let outcome = bed.run(&pipeline, false);
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{api:?}: {:?}",
            outcome.error
        );
        // 315 cells at 100 a request: 4 pieces, each asked in both attempts.
        assert_eq!(bed.server.stats().data_requests, 2 * 4, "{api:?}");
        let changed_at = chrono::DateTime::parse_from_rfc3339("2025-01-01T08:00:00Z")
            .unwrap()
            .timestamp_micros();
        for batch in observation_batches(bed.warehouse.root(), PIPELINE) {
            let column = batch.column_by_name("source_updated").unwrap();
            let updated = column
                .as_any()
                .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                .unwrap();
            assert!(
                updated.iter().all(|u| u == Some(changed_at)),
                "{api:?}: every row from the table as changed"
            );
        }
        let manifest = manifest(&bed, &outcome);
        let requests = manifest["requests"].as_array().unwrap();
        let discarded = requests.iter().filter(|r| r["discarded"] == true).count();
        assert!(discarded >= 4, "{api:?}: the first attempt is kept, marked");
        let names: std::collections::HashSet<&str> = requests
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), requests.len(), "{api:?}: one name per request");
        let raw = raw_dir(&bed, &outcome);
        for name in names {
            assert!(
                raw.join(format!("{name}.zst")).is_file(),
                "{api:?}: {name} archived"
            );
        }
    }
}

#[test]
fn a_table_that_keeps_changing_fails_the_run_with_nothing_committed() {
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(Api::V2);
    for updated in ["2025-01-01T08:00:00Z", "2025-02-01T08:00:00Z"] {
        let mut changed = small(&bed.project).remove(0);
        changed.updated = updated.into();
        bed.server
            .inject(Fault::ChangeAfterMetadata(Box::new(changed)));
    }
    let outcome = bed.run(&pipeline, false);
    let error = outcome.error.clone().unwrap_or_default();
    assert!(
        error.contains("changed twice while it was being fetched"),
        "{error}"
    );
    assert_nothing_committed(&bed, &outcome);
}

/// The run's archive directory under `raw/`.
fn raw_dir(bed: &Bed, outcome: &RunOutcome) -> std::path::PathBuf {
    bed.warehouse
        .root()
        .join(format!("raw/{PIPELINE}/{}", outcome.run_id))
}

/// The run's `manifest.json`.
fn manifest(bed: &Bed, outcome: &RunOutcome) -> serde_json::Value {
    let file = std::fs::File::open(raw_dir(bed, outcome).join("manifest.json.zst")).unwrap();
    serde_json::from_slice(&zstd::decode_all(file).unwrap()).unwrap()
}

#[test]
fn an_edited_pipeline_fetches_an_unchanged_table_again() {
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(Api::V1);
    assert_eq!(bed.run(&pipeline, false).status, RunStatus::Succeeded);
    let skipped = bed.run(&pipeline, false);
    assert_eq!(skipped.status, RunStatus::Skipped);
    let before = bed.server.stats().data_requests;
    // The same table, another mapping: the stored `updated` must not skip it.
    let edited = pipeline_file(Api::V1, &bed.server).replace(
        "id = \"pxweb-folkmangd\"",
        "id = \"pxweb-folkmangd\"\ndescription = \"edited\"",
    );
    let (edited, _) = bed.check(PIPELINE, &edited);
    let outcome = bed.run(&edited, false);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert!(bed.server.stats().data_requests > before, "fetched again");
}

#[test]
fn a_discontinued_table_is_reported_by_every_run_skipped_or_not() {
    let bed = Bed::new(
        |project| {
            let mut tables = small(project);
            tables[0].discontinued = Some(true);
            tables
        },
        small_limits(),
    );
    let pipeline = bed.pipeline(Api::V2);
    let notice = format!(
        "table {TABLE} is marked discontinued by {}",
        bed.server.v2_root()
    );
    let first = bed.run(&pipeline, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    assert_eq!(first.notices, std::slice::from_ref(&notice));
    let second = bed.run(&pipeline, false);
    assert_eq!(second.status, RunStatus::Skipped);
    assert_eq!(second.notices, [notice]);
}

#[test]
fn a_forced_run_fetches_an_unchanged_table() {
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(Api::V2);
    assert_eq!(bed.run(&pipeline, false).status, RunStatus::Succeeded);
    let before = bed.server.stats().data_requests;
    assert_eq!(bed.run(&pipeline, true).status, RunStatus::Succeeded);
    assert!(bed.server.stats().data_requests > before);
}

#[test]
fn run_all_without_the_network_fails_the_network_pipeline_and_runs_the_samples() {
    let project = Project::with_samples();
    // Port 1 on loopback: nothing listens, as no host answers on a machine without a network.
    project.write(
        "pipelines/unreachable.toml",
        "id = \"unreachable\"\n[source]\nkind = \"pxweb2\"\nurl = \"http://127.0.0.1:1/api/v2\"\n\
         table = \"TAB638\"\nproducer = \"scb\"\n[source.select]\nTid = \"*\"\n\
         [map]\nindicator = \"folkmangd_0_17\"\narea = \"Region\"\nperiod = \"Tid\"\nunit = \"count\"\n",
    );
    let output = project.run(&["run", "--all"]);
    let text = crate::util::text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("unreachable: failed"), "{text}");
    assert!(
        text.contains("cannot reach http://127.0.0.1:1/api/v2/config"),
        "{text}"
    );
    for sample in [
        "lupp-trygghet",
        "scb-folkmangd-barn",
        "skolverket-behorighet",
    ] {
        assert!(text.contains(&format!("{sample}: succeeded")), "{text}");
    }
}

#[test]
fn a_piece_the_server_still_finds_too_big_is_split_once_more() {
    for api in [Api::V1, Api::V2] {
        let bed = Bed::new(small, small_limits());
        // Believing the host allows twice what it does: every piece is refused once, then halved.
        let believing = |cells: u64| {
            let text = pipeline_file(api, &bed.server).replace(
                "producer = \"scb\"",
                &format!("producer = \"scb\"\nserver_max_cells = {cells}"),
            );
            bed.check(PIPELINE, &text).0
        };
        let outcome = bed.run(&believing(200), false);
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{api:?}: {:?}",
            outcome.error
        );
        assert_eq!(outcome.rows_written, 21 * 3 * 5);
        assert!(
            bed.server.stats().too_many_cells > 0,
            "{api:?}: the server refused"
        );

        // Four times what it allows: halving once is not enough, and the run says what to set.
        let outcome = bed.run(&believing(315), true);
        let error = outcome.error.clone().unwrap_or_default();
        assert!(error.contains("set `server_max_cells`"), "{api:?}: {error}");
    }
}

#[test]
fn a_host_without_a_config_is_harvested_within_the_default_limits() {
    let bed = Bed::new(small, small_limits());
    // A v1 host that answers its `?config` 404, as some municipal installations do.
    let missing = format!("{}/no-config-here", bed.server.v1_root());
    let text = pipeline_file(Api::V1, &bed.server).replace(
        "producer = \"scb\"",
        &format!("producer = \"scb\"\nconfig_url = \"{missing}\"\nserver_max_cells = 100"),
    );
    let (pipeline, _) = bed.check(PIPELINE, &text);
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(outcome.rows_written, 21 * 3 * 5);
    let config = bed
        .server
        .stats()
        .log
        .into_iter()
        .find(|r| r.path.ends_with("no-config-here"))
        .expect("the config was asked for");
    assert_eq!(config.status, 404);
}

#[test]
fn a_selection_over_max_table_cells_is_refused_before_any_data_request() {
    let bed = Bed::new(small, small_limits());
    let text = pipeline_file(Api::V2, &bed.server).replace(
        "producer = \"scb\"",
        "producer = \"scb\"\nmax_table_cells = 300",
    );
    let (pipeline, _) = bed.check(PIPELINE, &text);
    let outcome = bed.run(&pipeline, false);
    let error = outcome.error.clone().unwrap_or_default();
    assert!(
        error.contains("the selection has 315 cells, more than max_table_cells = 300"),
        "{error}"
    );
    assert_eq!(bed.server.stats().data_requests, 0);
    assert_nothing_committed(&bed, &outcome);
}

#[test]
fn a_replayed_harvest_asks_the_server_nothing_and_keeps_the_manifest_and_validators() {
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(Api::V2);
    let first = bed.run(&pipeline, false);
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    let key = bed.warehouse.key();
    let validators = || bed.service.ledger().validators(PIPELINE, &key).unwrap();
    let stored = validators();
    assert!(!stored.is_empty());
    let log = bed.server.stats().log.len();

    let edited =
        pipeline_file(Api::V2, &bed.server).replace("unit = \"count\"", "unit = \"persons\"");
    let pipeline = bed.check(PIPELINE, &edited).0;
    let replay = indikator::replay::prepare(
        bed.service.ledger(),
        vec![Arc::into_inner(pipeline).unwrap()],
        &bed.warehouse,
        &first.run_id,
    )
    .unwrap();
    let request = crate::util::manual_request(&bed.warehouse, false);
    let replayed = bed
        .runtime
        .block_on(
            bed.service
                .replay(Arc::new(replay.pipeline), replay.archived, request),
        )
        .unwrap();
    assert_eq!(
        replayed.status,
        RunStatus::Succeeded,
        "{:?}",
        replayed.error
    );
    assert_eq!(bed.server.stats().log.len(), log, "no request of any kind");
    assert_eq!(replayed.rows_written, first.rows_written);
    let units = strings(&observation_batches(bed.warehouse.root(), PIPELINE), "unit");
    assert!(units.iter().all(|u| u == "persons"), "the edited mapping");
    assert_eq!(
        validators(),
        stored,
        "a replay stores no validators of its own"
    );
    assert_eq!(
        manifest(&bed, &replayed),
        manifest(&bed, &first),
        "records replayed too"
    );
    let run = bed.service.ledger().run(&replayed.run_id).unwrap().unwrap();
    assert_eq!(run.trigger, "replay");
}
