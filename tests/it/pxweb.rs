//! PxWeb harvests end to end: the real client, planner and run path against the loopback PxWeb
//! test server, for API v1 and PxWebApi 2.0, through the library's run service.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Float64Array};
use indikator::config::Settings;
use indikator::ledger::RunStatus;
use indikator::pipeline::{Pipeline, RunOutcome, Trigger};
use indikator::schemas::Schemas;
use indikator::service::{RunRequest, Service};
use indikator::sources::http::{HttpClient, HttpSettings, ProxyPolicy, RetryPolicy};
use indikator::testkit::pxweb_server::{
    DataFault, Fault, PxTable, PxWebServer, Role, ServerLimits,
};
use indikator::warehouse::Warehouse;
use tokio_util::sync::CancellationToken;

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

/// A test bed: a runtime serving the test server, a project, and a service whose client goes
/// straight to loopback and retries quickly.
struct Bed {
    runtime: tokio::runtime::Runtime,
    server: PxWebServer,
    project: Project,
    service: Service,
    warehouse: Warehouse,
}

impl Bed {
    fn new(tables: impl FnOnce(&Project) -> Vec<PxTable>, limits: ServerLimits) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let project = Project::with_samples();
        let tables = tables(&project);
        let server = runtime.block_on(async { PxWebServer::start(tables, limits) });
        let settings = Settings::load(None, project.path()).unwrap();
        let schemas = Schemas::load(&settings.schemas_dir).unwrap();
        let warehouse = Warehouse::new(&settings.warehouse_dir);
        let http = HttpClient::new(HttpSettings {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(200),
                attempts: 3,
                ..RetryPolicy::default()
            },
            proxy: ProxyPolicy::Direct,
            ..HttpSettings::default()
        });
        let service = Service::open(settings, schemas).unwrap().with_http(http);
        Self {
            runtime,
            server,
            project,
            service,
            warehouse,
        }
    }

    fn pipeline(&self, api: Api) -> Arc<Pipeline> {
        let file = self.project.write(
            &format!("pipelines/{PIPELINE}.toml"),
            pipeline_file(api, &self.server),
        );
        let settings = Settings::load(None, self.project.path()).unwrap();
        let schemas = Schemas::load(&settings.schemas_dir).unwrap();
        let (pipeline, _) = indikator::pipeline::check_file(&file, &settings, &schemas)
            .unwrap_or_else(|problems| panic!("{problems:?}"));
        Arc::new(pipeline)
    }

    fn run(&self, pipeline: &Arc<Pipeline>, force: bool) -> RunOutcome {
        let request = RunRequest {
            trigger: Trigger::Manual,
            force,
            warehouse: self.warehouse.clone(),
            cancel: CancellationToken::new(),
            progress: Arc::new(|_| {}),
        };
        self.runtime
            .block_on(self.service.run(pipeline.clone(), request))
            .unwrap()
    }
}

/// Every observation of the pipeline as (area, period, sex, age) → value.
fn observations(warehouse: &Path) -> HashMap<(String, String, String, String), Option<f64>> {
    let dir = warehouse.join(format!("observations/pipeline={PIPELINE}"));
    let mut found = HashMap::new();
    for year in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(year.unwrap().path()).unwrap() {
            let batches = read_parquet(&file.unwrap().path());
            let [areas, periods, sexes, ages] =
                ["area_code", "period", "sex", "age"].map(|c| strings(&batches, c));
            let mut values = Vec::new();
            for batch in &batches {
                let column = batch.column_by_name("value").unwrap();
                let column = column.as_any().downcast_ref::<Float64Array>().unwrap();
                values
                    .extend((0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i))));
            }
            for (i, value) in values.into_iter().enumerate() {
                let key = (
                    areas[i].clone(),
                    periods[i].clone(),
                    sexes[i].clone(),
                    ages[i].clone(),
                );
                assert!(found.insert(key, value).is_none(), "a row twice");
            }
        }
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
    assert_exact(&bed.warehouse.root().to_path_buf(), &table);
    let raw = bed
        .warehouse
        .root()
        .join(format!("raw/{PIPELINE}/{}", outcome.run_id));
    let manifest =
        zstd::decode_all(std::fs::File::open(raw.join("manifest.json.zst")).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
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
    let bed = Bed::new(small, small_limits());
    let pipeline = bed.pipeline(Api::V2);
    let mut changed = small(&bed.project).remove(0);
    changed.updated = "2025-01-01T08:00:00Z".into();
    bed.server
        .inject(Fault::ChangeAfterMetadata(Box::new(changed)));
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let manifests = bed.server.stats();
    assert!(manifests.data_requests > 1, "fetched twice");
}
