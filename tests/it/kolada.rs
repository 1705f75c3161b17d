//! Kolada pipelines against the Kolada v3 test server: paging, batching, the area rule and
//! genders, faults, change detection, and retired or renamed KPIs found by `check --online`.

use std::sync::Arc;

use arrow_array::{Array, Int32Array, RecordBatch, StringArray};
use indikator::ledger::RunStatus;
use indikator::pipeline::{Pipeline, RunOutcome};
use indikator::service::Service;
use indikator::testkit::kolada_server::{
    AreaType, Dataset, Fault, Gender, Kind, KoladaServer, Kpi, ServerConfig,
};
use indikator::warehouse::Warehouse;

use crate::pxweb_bed::{loopback_service, observation_batches, run_manual, values};
use crate::util::{Project, read_parquet};

struct Bed {
    runtime: tokio::runtime::Runtime,
    server: KoladaServer,
    project: Project,
    service: Service,
    warehouse: Warehouse,
}

/// The small dataset served in pages of at most 5 items, its KPIs N15428 and N01951 catalogued.
fn bed() -> Bed {
    bed_with(Dataset::small())
}

/// `dataset` served in pages of at most 5 items, to a project with the repository's schemas and
/// N01951 catalogued.
fn bed_with(dataset: Dataset) -> Bed {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let project = Project::with_samples();
    // The repository's catalogue has N15428 (percent); the server's N01951 (count) is added.
    let catalogue =
        std::fs::read_to_string(project.path().join("schemas/indicators.toml")).unwrap();
    project.write(
        "schemas/indicators.toml",
        format!(
            "{catalogue}\n[indicator.N01951]\ntitle_sv = \"Invånare totalt, antal\"\nunit = \"count\"\n"
        ),
    );
    let server = runtime.block_on(async {
        KoladaServer::start(dataset, ServerConfig::default().with_per_page_cap(5))
    });
    let (service, warehouse) = loopback_service(&project);
    Bed {
        runtime,
        server,
        project,
        service,
        warehouse,
    }
}

impl Bed {
    fn pipeline(&self, source: &str) -> Arc<Pipeline> {
        self.pipeline_as("k", source)
    }

    fn pipeline_as(&self, id: &str, source: &str) -> Arc<Pipeline> {
        let text = format!(
            "id = \"{id}\"\n[source]\nkind = \"kolada\"\nurl = \"{}\"\n{source}",
            self.server.url()
        );
        let file = self.project.write(&format!("pipelines/{id}.toml"), text);
        let settings = indikator::config::Settings::load(None, self.project.path()).unwrap();
        let schemas = indikator::schemas::Schemas::load(&settings.schemas_dir).unwrap();
        let (pipeline, _) = indikator::pipeline::check_file(&file, &settings, &schemas)
            .unwrap_or_else(|problems| panic!("{problems:?}"));
        Arc::new(pipeline)
    }

    fn run(&self, pipeline: &Arc<Pipeline>) -> RunOutcome {
        run_manual(
            &self.runtime,
            &self.service,
            &self.warehouse,
            pipeline,
            false,
        )
    }
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let array = batch.column_by_name(column).unwrap();
        let array = arrow_cast::cast(array, &arrow_schema::DataType::Utf8).unwrap();
        let array = array.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..array.len()).map(|i| array.value(i).to_string()));
    }
    out
}

/// The model's area code of a Kolada area, its level, and for a group the reference; `None`
/// for a group left out.
fn model_area(area: &str, groups: bool) -> Option<(String, &'static str, String)> {
    let (code, level) = match area {
        "0000" => ("00", "country"),
        a if a.starts_with("00") => (&a[2..], "county"),
        a if a.starts_with('G') && !groups => return None,
        a if a.starts_with('G') => {
            return Some((a.into(), "network", format!("network:{a}")));
        }
        a => (a, "municipality"),
    };
    Some((code.into(), level, String::new()))
}

/// One observation as the tests compare them: area, level, reference, period, sex, status,
/// value, members.
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<f64>,
    Option<i32>,
);

/// The rows of `kpi` in `years` the server holds, as the warehouse should have them, sorted.
fn served_rows(bed: &Bed, kpi: &str, years: &[i32], groups: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = (bed.server.dataset().expected_rows())
        .into_iter()
        .filter(|r| r.kpi == kpi && years.contains(&r.period))
        .filter_map(|r| {
            let (area, level, reference) = model_area(&r.area, groups)?;
            let sex = match r.gender {
                Gender::T => "T",
                Gender::K => "F",
                Gender::M => "M",
            };
            let status = if r.value.is_some() { "ok" } else { "missing" };
            let members = (level == "network").then_some(r.count as i32);
            Some((
                area,
                level.to_string(),
                reference,
                r.period.to_string(),
                sex.to_string(),
                status.to_string(),
                r.value,
                members,
            ))
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

/// The rows pipeline `id` wrote, sorted.
fn written_rows(bed: &Bed, id: &str) -> Vec<Row> {
    let batches = observation_batches(bed.warehouse.root(), id);
    let column = |name| strings(&batches, name);
    let (areas, levels, references) = (
        column("area_code"),
        column("area_level"),
        column("reference"),
    );
    let (periods, sexes, statuses) = (column("period"), column("sex"), column("status"));
    let written_values = values(&batches);
    let members: Vec<Option<i32>> = (batches.iter())
        .flat_map(|b| {
            let array = b.column_by_name("members").unwrap();
            let array = array.as_any().downcast_ref::<Int32Array>().unwrap();
            array.iter().collect::<Vec<_>>()
        })
        .collect();
    let mut rows: Vec<Row> = (0..areas.len())
        .map(|i| {
            (
                areas[i].clone(),
                levels[i].clone(),
                references[i].clone(),
                periods[i].clone(),
                sexes[i].clone(),
                statuses[i].clone(),
                written_values[i],
                members[i],
            )
        })
        .collect();
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    rows
}

#[test]
fn the_warehouse_holds_exactly_the_served_rows_over_pages_and_batches() {
    let bed = bed();
    let pipeline = bed.pipeline("kpi = [\"N15428\"]\nyear = [2020, 2021, 2022, 2023]\n");
    let outcome = bed.run(&pipeline);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let expected = served_rows(&bed, "N15428", &[2020, 2021, 2022, 2023], false);
    assert!(expected.len() > 30, "{}", expected.len());
    assert_eq!(written_rows(&bed, "k"), expected);
    let batches = observation_batches(bed.warehouse.root(), "k");
    assert!(
        strings(&batches, "indicator_id")
            .iter()
            .all(|i| i == "N15428")
    );
    assert!(strings(&batches, "unit").iter().all(|u| u == "percent"));
    assert!(strings(&batches, "source").iter().all(|s| s == "kolada"));
    let stats = bed.server.stats();
    let data: Vec<_> = stats.of(Kind::Data).collect();
    assert!(
        data.iter().filter(|l| l.page() > 1).count() >= 2,
        "followed next_url: {data:?}"
    );
    assert!(stats.of(Kind::Kpi).count() >= 1);
    // The raw pages and the manifest are archived.
    let raw = bed.warehouse.root().join("raw/k").join(&outcome.run_id);
    assert!(raw.join("manifest.json.zst").is_file());
    assert!(raw.join("data-0001.json.zst").is_file());
}

#[test]
fn groups_are_left_out_unless_asked_for_then_kept_as_network_rows() {
    let bed = bed();
    let source = "kpi = [\"N15428\"]\nyear = [2022, 2023]\n";
    let without = bed.pipeline_as("without", source);
    let with = bed.pipeline_as("with", &format!("{source}groups = true\n"));
    for pipeline in [&without, &with] {
        let outcome = bed.run(pipeline);
        assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    }
    assert_eq!(
        written_rows(&bed, "without"),
        served_rows(&bed, "N15428", &[2022, 2023], false)
    );
    let expected = served_rows(&bed, "N15428", &[2022, 2023], true);
    let networks: Vec<&Row> = expected.iter().filter(|r| r.1 == "network").collect();
    // Two groups × two years × three genders.
    assert_eq!(networks.len(), 12, "{networks:?}");
    assert!(networks.iter().any(|r| r.7 == Some(2)), "{networks:?}");
    assert_eq!(written_rows(&bed, "with"), expected);
    // The tables catalogue says what a group's value is.
    let tables = read_parquet(&bed.warehouse.root().join("catalog/tables.parquet"));
    let pipelines = strings(&tables, "pipeline");
    let notes = strings(&tables, "notes");
    let note = |id: &str| notes[pipelines.iter().position(|p| p == id).unwrap()].clone();
    assert!(
        note("with").contains("unweighted means"),
        "{}",
        note("with")
    );
    assert!(!note("without").contains("unweighted means"));
}

#[test]
fn ids_are_batched_within_the_limit() {
    let bed = bed();
    let pipeline = bed.pipeline(
        "kpi = [\"N15428\"]\nmunicipality = [\"0180\", \"1480\", \"1380\", \"1382\", \"0013\"]\n\
         year = [2020, 2021, 2022]\nbatch_ids = 2\n",
    );
    let outcome = bed.run(&pipeline);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let stats = bed.server.stats();
    let firsts: Vec<_> = stats.of(Kind::Data).filter(|l| l.page() <= 1).collect();
    // Five municipalities by two, three years by two: 3 × 2 first requests.
    assert_eq!(firsts.len(), 6, "{firsts:?}");
    for request in stats.of(Kind::Data) {
        assert!(request.ids("municipality").len() <= 2, "{request:?}");
        assert!(request.ids("year").len() <= 2, "{request:?}");
    }
    let areas: std::collections::BTreeSet<String> =
        strings(&observation_batches(bed.warehouse.root(), "k"), "area_code")
            .into_iter()
            .collect();
    let areas: Vec<&str> = areas.iter().map(String::as_str).collect();
    assert_eq!(areas, ["0180", "13", "1380", "1382", "1480"]);
}

#[test]
fn a_429_and_a_503_burst_are_outlasted_and_a_cut_page_fails_with_nothing_committed() {
    let bed = bed();
    let pipeline = bed.pipeline("kpi = [\"N15428\"]\nyear = [2022, 2023]\n");
    bed.server.inject_at(
        "/v3/data",
        Fault::TooManyRequests {
            retry_after_secs: Some(1),
        },
        1,
    );
    let outcome = bed.run(&pipeline);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(bed.server.stats().rate_limited, 1);
    // A burst within the client's three attempts of one request.
    let bed = self::bed();
    let pipeline = bed.pipeline("kpi = [\"N15428\"]\nyear = [2022, 2023]\n");
    bed.server.inject_at("/v3/data", Fault::Unavailable, 2);
    let outcome = bed.run(&pipeline);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    assert_eq!(bed.server.stats().unavailable, 2);

    for fault in [Fault::TruncatedPage, Fault::CutMidBody] {
        let bed = self::bed();
        let pipeline = bed.pipeline("kpi = [\"N15428\"]\nyear = [2022, 2023]\n");
        bed.server.inject_at("/v3/data", fault.clone(), 10);
        let outcome = bed.run(&pipeline);
        assert_eq!(outcome.status, RunStatus::Failed, "{fault:?}");
        assert!(
            outcome
                .error
                .as_deref()
                .unwrap()
                .contains("/v3/data/kpi/N15428"),
            "{:?}",
            outcome.error
        );
        assert!(
            !bed.warehouse
                .root()
                .join("observations/pipeline=k")
                .exists(),
            "{fault:?}: nothing committed"
        );
    }
}

#[test]
fn an_unchanged_publication_date_skips_and_a_revision_runs_again() {
    let bed = bed();
    let pipeline = bed.pipeline("kpi = [\"N15428\"]\nyear = [2022, 2023]\n");
    assert_eq!(bed.run(&pipeline).status, RunStatus::Succeeded);
    let data_pages = bed.server.stats().data_pages;
    let again = bed.run(&pipeline);
    assert_eq!(again.status, RunStatus::Skipped, "{:?}", again.error);
    assert_eq!(
        bed.server.stats().data_pages,
        data_pages,
        "no data asked for"
    );
    bed.server.revise_kpi("N15428");
    let revised = bed.run(&pipeline);
    assert_eq!(revised.status, RunStatus::Succeeded, "{:?}", revised.error);
    assert!(bed.server.stats().data_pages > data_pages);
}

#[test]
fn a_retired_kpi_fails_the_run_and_check_online_names_it_and_a_rename() {
    let bed = bed();
    let retired = bed.pipeline_as("k", "kpi = [\"N15428\"]\nyear = [2023]\n");
    let renamed = bed.pipeline_as("k2", "kpi = [\"N01951\"]\nyear = [2023]\n");
    bed.server.retire_kpi("N15428");
    bed.server
        .rename_kpi("N01951", "Invånare totalt (ny definition), antal");
    let outcome = bed.run(&retired);
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(
        outcome
            .error
            .as_deref()
            .unwrap()
            .contains("Kolada has no KPI N15428"),
        "{:?}",
        outcome.error
    );
    let settings = indikator::config::Settings::load(None, bed.project.path()).unwrap();
    let schemas = indikator::schemas::Schemas::load(&settings.schemas_dir).unwrap();
    let pipelines = [
        Arc::into_inner(retired).unwrap(),
        Arc::into_inner(renamed).unwrap(),
    ];
    let problems = bed
        .runtime
        .block_on(indikator::pipeline::online::check_online(
            &pipelines,
            &schemas,
            bed.service.http(),
            &tokio_util::sync::CancellationToken::new(),
        ));
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 2, "{shown:#?}");
    assert!(
        problems[0].is_error() && shown[0].contains("no longer has KPI N15428"),
        "{shown:#?}"
    );
    assert!(
        !problems[1].is_error() && shown[1].contains("ny definition"),
        "{shown:#?}"
    );
}

/// The KPI ids a pipeline file asks for.
fn kpis_of(text: &str) -> Vec<String> {
    let parsed: toml::Table = toml::from_str(text).unwrap();
    (parsed["source"]["kpi"].as_array().unwrap().iter())
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_real_kolada_pipeline_runs_against_the_test_server_and_refuses_no_row() {
    let dir = crate::util::repo().join("pipelines");
    let mut files: Vec<_> = (std::fs::read_dir(&dir).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("kolada-")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let catalogue: toml::Table = toml::from_str(
        &std::fs::read_to_string(crate::util::repo().join("schemas/indicators.toml")).unwrap(),
    )
    .unwrap();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let kpis = kpis_of(&text);
        let mut dataset = Dataset::default()
            .with_area("0180", "Stockholm", AreaType::K)
            .with_area("1380", "Halmstad", AreaType::K)
            .with_area("0013", "Region Halland", AreaType::L)
            .with_area("0000", "Riket", AreaType::L)
            .with_group("G33700", "Kommuner i Halland", &["1380"])
            .with_years(2022..=2023);
        for id in &kpis {
            let title = catalogue["indicator"][id.as_str()]["title_sv"]
                .as_str()
                .unwrap();
            dataset = dataset.with_kpi(Kpi::new(id, title).with_gender_split());
        }
        let bed = bed_with(dataset);
        let id = file.file_stem().unwrap().to_string_lossy().into_owned();
        let text = text.replacen(
            "kind = \"kolada\"",
            &format!("kind = \"kolada\"\nurl = \"{}\"", bed.server.url()),
            1,
        );
        let written = bed.project.write(&format!("pipelines/{id}.toml"), text);
        let settings = indikator::config::Settings::load(None, bed.project.path()).unwrap();
        let schemas = indikator::schemas::Schemas::load(&settings.schemas_dir).unwrap();
        let (pipeline, _) = indikator::pipeline::check_file(&written, &settings, &schemas)
            .unwrap_or_else(|problems| panic!("{id}: {problems:?}"));
        let outcome = bed.run(&Arc::new(pipeline));
        assert_eq!(
            outcome.status,
            RunStatus::Succeeded,
            "{id}: {:?}",
            outcome.error
        );
        assert_eq!(outcome.rows_rejected, 0, "{id}");
        // Every KPI × 3 areas and the country × 2 years × 3 genders; the group left out.
        assert_eq!(outcome.rows_written, kpis.len() as u64 * 4 * 2 * 3, "{id}");
        let batches = observation_batches(bed.warehouse.root(), &id);
        let units: std::collections::BTreeSet<String> =
            strings(&batches, "unit").into_iter().collect();
        let unit = catalogue["indicator"][kpis[0].as_str()]["unit"]
            .as_str()
            .unwrap();
        assert_eq!(units.into_iter().collect::<Vec<_>>(), [unit], "{id}");
    }
}

#[test]
fn kpi_metadata_is_read_over_pages() {
    let ids: Vec<String> = (0..7).map(|i| format!("N{}", 90000 + i)).collect();
    let dataset = (ids.iter()).fold(Dataset::small(), |data, id| {
        data.with_kpi(Kpi::new(id, &format!("Generated {id}, antal")))
    });
    let bed = bed_with(dataset);
    let entries: String = (ids.iter())
        .map(|id| format!("\n[indicator.{id}]\ntitle_sv = \"{id}\"\nunit = \"count\"\n"))
        .collect();
    let catalogue =
        std::fs::read_to_string(bed.project.path().join("schemas/indicators.toml")).unwrap();
    bed.project
        .write("schemas/indicators.toml", format!("{catalogue}{entries}"));
    let list: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    let pipeline = bed.pipeline(&format!("kpi = [{}]\nyear = [2023]\n", list.join(", ")));
    let outcome = bed.run(&pipeline);
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}", outcome.error);
    let stats = bed.server.stats();
    assert!(stats.of(Kind::Kpi).any(|l| l.page() > 1), "{:?}", stats.log);
    let indicators: std::collections::BTreeSet<String> = strings(
        &observation_batches(bed.warehouse.root(), "k"),
        "indicator_id",
    )
    .into_iter()
    .collect();
    assert_eq!(indicators.len(), 7);
}

#[test]
fn inspect_and_kpis_show_kolada_kpis_through_the_binary() {
    let bed = bed();
    let url = format!("{}/kpi/N15428,N01951", bed.server.url());
    let output = bed.project.run(&["inspect", &url]);
    let shown = crate::util::text(&output);
    assert!(output.status.success(), "{shown}");
    for expected in [
        "N15428  Elever i åk 9 som är behöriga till yrkesprogram, andel (%)",
        "by gender (T, K, M)",
        "unit by title percent",
        "unit by title count",
        "data requests before paging",
    ] {
        assert!(shown.contains(expected), "missing {expected:?}:\n{shown}");
    }
    let output = bed.project.run(&["inspect", &url, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["kpis"].as_array().unwrap().len(), 2);
    assert_eq!(json["missing"].as_array().unwrap().len(), 0);
    let output = bed
        .project
        .run(&["kpis", "--query", "BEHÖRIGA", "--url", &bed.server.url()]);
    let shown = crate::util::text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(
        shown.contains("N15428") && shown.contains("by gender") && shown.contains("1 KPIs"),
        "{shown}"
    );
}
