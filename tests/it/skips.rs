//! When a run on unchanged input is skipped: only for the same pipeline into the same
//! warehouse, and only while the files that shape its output (the pipeline's own, its code
//! lists and table schema, the catalogues of `schemas/`) and the program version are unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow_array::{Array, StringArray};
use indikator::config::Settings;
use indikator::ledger::RunStatus;
use indikator::pipeline;
use indikator::schemas::Schemas;
use indikator::service::Service;
use indikator::warehouse::Warehouse;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{Project, run_in_service, text};

const SCB: &str = "scb-folkmangd-barn";

/// How the run of `pipeline` ended, as `indikator run` prints it (`succeeded`, `skipped`, …).
fn status(output: &Output, pipeline: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let prefix = format!("{pipeline}: ");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no outcome of {pipeline}:\n{}", text(output)))
        .to_string()
}

/// `indikator ARGS`, which must succeed; how the run of `pipeline` ended.
fn run(project: &Project, args: &[&str], pipeline: &str) -> String {
    let output = project.run(args);
    assert!(output.status.success(), "{}", text(&output));
    status(&output, pipeline)
}

/// Every file under `dir` but the catalogs (which every committed or skipped run rewrites),
/// with its modification time.
fn files(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("catalog") {
                    pending.push(path);
                }
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                found.insert(path, modified);
            }
        }
    }
    found
}

/// Appends `text` to the project's file `relative`.
fn append(project: &Project, relative: &str, text: &str) {
    let path = project.path().join(relative);
    let mut contents = std::fs::read_to_string(&path).unwrap();
    contents.push_str(text);
    std::fs::write(&path, contents).unwrap();
}

#[test]
fn another_warehouse_is_written_as_new_and_then_skipped_leaving_the_default_untouched() {
    let project = Project::with_samples();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    let default = files(&project.warehouse());
    std::thread::sleep(Duration::from_millis(20));

    assert_eq!(
        run(&project, &["run", SCB, "--warehouse", "other"], SCB),
        "succeeded",
        "the same content into another warehouse is not skipped"
    );
    let other = project.path().join("other");
    for year in 2020..=2024 {
        let part = other.join(format!(
            "observations/pipeline={SCB}/year={year}/part-00000.parquet"
        ));
        assert!(part.is_file(), "{}", part.display());
    }
    let written = files(&other);
    std::thread::sleep(Duration::from_millis(20));

    assert_eq!(
        run(&project, &["run", SCB, "--warehouse", "other"], SCB),
        "skipped"
    );
    assert_eq!(files(&other), written, "a skipped run writes nothing");
    assert_eq!(
        files(&project.warehouse()),
        default,
        "runs into another warehouse leave the default alone"
    );
    assert_eq!(
        run(&project, &["run", SCB], SCB),
        "skipped",
        "the default warehouse still has this content"
    );
}

#[test]
fn the_default_warehouse_named_another_way_is_the_same_warehouse() {
    let project = Project::with_samples();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    let absolute = project.warehouse().display().to_string();
    for name in [absolute.as_str(), "./warehouse", "warehouse/"] {
        assert_eq!(
            run(&project, &["run", SCB, "--warehouse", name], SCB),
            "skipped",
            "--warehouse {name}"
        );
    }
}

/// The pipelines in `catalog/coverage.parquet` of `warehouse`.
fn covered(warehouse: &Path) -> BTreeSet<String> {
    let file = std::fs::File::open(warehouse.join("catalog/coverage.parquet")).unwrap();
    let mut pipelines = BTreeSet::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let column = batch.column_by_name("pipeline").unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        pipelines.extend(column.iter().flatten().map(str::to_string));
    }
    pipelines
}

#[test]
fn a_forced_run_into_the_default_warehouse_named_another_way_keeps_the_coverage_of_the_others() {
    let project = Project::with_samples();
    let lupp = "lupp-trygghet";
    assert_eq!(run(&project, &["run", lupp], lupp), "succeeded");
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    let both = BTreeSet::from([lupp.to_string(), SCB.to_string()]);
    assert_eq!(covered(&project.warehouse()), both);
    assert_eq!(
        run(
            &project,
            &["run", SCB, "--force", "--warehouse", "./warehouse"],
            SCB
        ),
        "succeeded"
    );
    assert_eq!(covered(&project.warehouse()), both);
}

#[test]
fn a_new_indicator_in_the_catalogue_reruns_an_unchanged_pipeline() {
    let project = Project::with_samples();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    assert_eq!(run(&project, &["run", SCB], SCB), "skipped");
    append(
        &project,
        "schemas/indicators.toml",
        "\n[indicator.ny_indikator]\ntitle_sv = \"Ny\"\nunit = \"count\"\n",
    );
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    assert_eq!(run(&project, &["run", SCB], SCB), "skipped");
}

#[test]
fn an_edited_area_catalogue_reruns_an_unchanged_pipeline() {
    let project = Project::with_samples();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    assert_eq!(run(&project, &["run", SCB], SCB), "skipped");
    append(
        &project,
        "schemas/areas.csv",
        "2599,Påhittad,municipality,25,,\n",
    );
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
}

#[test]
fn an_edited_table_schema_reruns_the_pipeline_that_validates_with_it() {
    let project = Project::with_samples();
    let lupp = "lupp-trygghet";
    assert_eq!(run(&project, &["run", lupp], lupp), "succeeded");
    assert_eq!(run(&project, &["run", lupp], lupp), "skipped");
    append(&project, "schemas/samples/lupp.table.json", "\n");
    assert_eq!(run(&project, &["run", lupp], lupp), "succeeded");
}

#[test]
fn an_edited_code_list_reruns_the_pipeline_that_names_it_and_no_other() {
    // No bundled sample names a code list: this pipeline maps its grades through `grades`.
    let project = Project::with_samples();
    let grades = "grades-test";
    project.write(
        "pipelines/data/grades.csv",
        "kommun,ar,arskurs,andel\n0180,2023,år 8,12.5\n0180,2023,år 9,10\n",
    );
    project.write(
        &format!("pipelines/{grades}.toml"),
        format!(
            "id = \"{grades}\"\n[source]\nkind = \"file\"\npath = \"data/grades.csv\"\n\
             format = \"csv\"\n[map]\nindicator = \"grades_test\"\narea = \"kommun\"\n\
             period = {{ column = \"ar\", kind = \"year\" }}\n\
             grade = {{ column = \"arskurs\", codes = \"grades\" }}\nvalue = \"andel\"\n\
             unit = \"percent\"\n"
        ),
    );
    assert_eq!(run(&project, &["run", grades], grades), "succeeded");
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    assert_eq!(run(&project, &["run", grades], grades), "skipped");

    append(
        &project,
        "schemas/codelists/grades.toml",
        "\"år 6\" = \"ak6\"\n",
    );
    assert_eq!(run(&project, &["run", grades], grades), "succeeded");
    assert_eq!(
        run(&project, &["run", SCB], SCB),
        "skipped",
        "a pipeline that does not name the list is not re-run"
    );
}

/// Runs `pipeline` once through `service` into `warehouse`, on a current-thread runtime.
#[test]
fn a_new_program_version_reruns_unchanged_input_once() {
    let project = Project::with_samples();
    let settings = Settings::load(None, project.path()).unwrap();
    let schemas = || Schemas::load(&settings.schemas_dir).unwrap();
    let file = project.path().join(format!("pipelines/samples/{SCB}.toml"));
    let (pipeline, _warnings) = pipeline::check_file(&file, &settings, &schemas()).unwrap();
    let pipeline = Arc::new(pipeline);
    let warehouse = Warehouse::new(&settings.warehouse_dir);

    let service = Service::open(settings.clone(), schemas()).unwrap();
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Succeeded
    );
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Skipped
    );

    let upgraded = Service::open(settings.clone(), schemas())
        .unwrap()
        .with_program_version("999.0.0");
    assert_eq!(
        run_in_service(&upgraded, &pipeline, &warehouse),
        RunStatus::Succeeded
    );
    assert_eq!(
        run_in_service(&upgraded, &pipeline, &warehouse),
        RunStatus::Skipped
    );
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Succeeded,
        "going back to the old version re-runs too"
    );
}

#[test]
fn a_warehouse_another_state_directory_wrote_since_is_not_skipped() {
    // Two installations (two state directories) sharing one warehouse: what one ledger last
    // committed is no longer what the warehouse holds once the other has written.
    let project = Project::with_samples();
    project.write("other.toml", "state_dir = \"state-other\"\n");
    let data = project
        .path()
        .join("pipelines/samples/data/scb_folkmangd_barn.json");
    let original = std::fs::read_to_string(&data).unwrap();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");

    let changed = original.replacen("\"value\"", "\"label\": \"changed\", \"value\"", 1);
    assert_ne!(changed, original);
    std::fs::write(&data, &changed).unwrap();
    assert_eq!(
        run(&project, &["--config", "other.toml", "run", SCB], SCB),
        "succeeded"
    );

    std::fs::write(&data, &original).unwrap();
    assert_eq!(
        run(&project, &["run", SCB], SCB),
        "succeeded",
        "the first ledger's last commit is not what the warehouse holds"
    );
    assert_eq!(run(&project, &["run", SCB], SCB), "skipped");
}

#[test]
fn a_wiped_partition_is_written_again_not_skipped() {
    let project = Project::with_samples();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    let year = project
        .warehouse()
        .join(format!("observations/pipeline={SCB}/year=2022"));
    std::fs::remove_dir_all(&year).unwrap();
    assert_eq!(run(&project, &["run", SCB], SCB), "succeeded");
    assert!(year.join("part-00000.parquet").is_file());
}
