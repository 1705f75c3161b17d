//! A test bed for PxWeb harvests: the loopback PxWeb test server, a temporary project and the
//! library's run service wired to it, and reading back what a run wrote.
//!
//! Owns: starting the server inside its own runtime, checking a pipeline file the way
//! `indikator check` does, running it as `indikator run` would, and reading a pipeline's
//! observation files.
//! Must not: know any table or pipeline (the tests that use it do).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, Float64Array, RecordBatch};
use indikator::config::Settings;
use indikator::pipeline::{Pipeline, RunOutcome};
use indikator::problem::Problem;
use indikator::schemas::Schemas;
use indikator::service::Service;
use indikator::sources::http::{HttpClient, HttpSettings, ProxyPolicy, RetryPolicy};
use indikator::testkit::pxweb_server::{PxTable, PxWebServer, ServerLimits};
use indikator::warehouse::Warehouse;

use crate::util::{Project, read_parquet};

/// A runtime serving the test server, a project, and a service whose client goes straight to
/// loopback and retries quickly.
pub struct Bed {
    pub runtime: tokio::runtime::Runtime,
    pub server: PxWebServer,
    pub project: Project,
    pub service: Service,
    pub warehouse: Warehouse,
}

impl Bed {
    pub fn new(tables: impl FnOnce(&Project) -> Vec<PxTable>, limits: ServerLimits) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let project = Project::with_samples();
        let tables = tables(&project);
        let server = runtime.block_on(async { PxWebServer::start(tables, limits) });
        let (service, warehouse) = loopback_service(&project);
        Self {
            runtime,
            server,
            project,
            service,
            warehouse,
        }
    }

    /// Writes `text` as `pipelines/<id>.toml` and checks it as `indikator check` does; panics on
    /// an error, returns the checked pipeline and the warnings.
    pub fn check(&self, id: &str, text: &str) -> (Arc<Pipeline>, Vec<Problem>) {
        let file = self.project.write(&format!("pipelines/{id}.toml"), text);
        let settings = Settings::load(None, self.project.path()).unwrap();
        let schemas = Schemas::load(&settings.schemas_dir).unwrap();
        let (pipeline, warnings) = indikator::pipeline::check_file(&file, &settings, &schemas)
            .unwrap_or_else(|problems| panic!("{id}: {problems:?}"));
        (Arc::new(pipeline), warnings)
    }

    pub fn run(&self, pipeline: &Arc<Pipeline>, force: bool) -> RunOutcome {
        run_manual(
            &self.runtime,
            &self.service,
            &self.warehouse,
            pipeline,
            force,
        )
    }
}

/// A service over `project` whose client goes straight to loopback and retries quickly, and
/// the project's warehouse.
pub fn loopback_service(project: &Project) -> (Service, Warehouse) {
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
    (
        Service::open(settings, schemas).unwrap().with_http(http),
        warehouse,
    )
}

/// Runs `pipeline` as `indikator run` would.
pub fn run_manual(
    runtime: &tokio::runtime::Runtime,
    service: &Service,
    warehouse: &Warehouse,
    pipeline: &Arc<Pipeline>,
    force: bool,
) -> RunOutcome {
    let request = crate::util::manual_request(warehouse, force);
    runtime
        .block_on(service.run(pipeline.clone(), request))
        .unwrap()
}

/// Every batch of every observation file of `pipeline` in `warehouse`, year by year.
pub fn observation_batches(warehouse: &Path, pipeline: &str) -> Vec<RecordBatch> {
    let dir = warehouse.join(format!("observations/pipeline={pipeline}"));
    let mut batches = Vec::new();
    for year in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        for file in std::fs::read_dir(year.unwrap().path()).unwrap() {
            batches.extend(read_parquet(&file.unwrap().path()));
        }
    }
    batches
}

/// The `value` column of `batches`, nulls as `None`.
pub fn values(batches: &[RecordBatch]) -> Vec<Option<f64>> {
    let mut values = Vec::new();
    for batch in batches {
        let column = batch.column_by_name("value").unwrap();
        let column = column.as_any().downcast_ref::<Float64Array>().unwrap();
        values.extend((0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i))));
    }
    values
}
