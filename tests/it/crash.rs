//! Crash safety: abort a run at every failpoint of staging, commit, ledger and catalogs (and at a
//! rename and a staged partition in the middle of a run), as `kill -9` would. Every partition
//! must stay a readable Parquet file holding exactly the data the table in `warehouse/mod.rs`
//! promises for that step; the next run must mark the killed run `interrupted`, remove its
//! staging and commit the new data.
//!
//! Killing at fractions of a run's duration (what this file did before failpoints) was dropped:
//! it rarely landed between two renames, the one place where readers see a mix, and every other
//! moment is either invisible to readers (staging, the temporary files) or atomic on its own
//! (SQLite), so the points below cover every change a reader can see.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use arrow_array::{Array, Float64Array};
use indikator::failpoint::POINTS;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{Project, text};

const REGIONS: usize = 12;
const AGES: usize = 5;
/// Partitions of the cube: enough for a rename in the middle.
const YEARS: usize = 10;
const FIRST_YEAR: i32 = 1995;
const SIGABRT: i32 = 6;

/// A JSON-stat cube whose every value is `scale` × a fixed pattern; returns the per-year sums.
fn write_cube(path: &Path, scale: f64) -> BTreeMap<i32, f64> {
    let codes = |n: usize, f: &dyn Fn(usize) -> String| -> Vec<String> { (0..n).map(f).collect() };
    let regions = codes(REGIONS, &|i| {
        format!(
            "{:02}{:02}",
            [1, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14][i % 12],
            10 + i / 12
        )
    });
    let ages = codes(AGES, &|i| i.to_string());
    let years = codes(YEARS, &|i| (FIRST_YEAR + i as i32).to_string());
    let dims: [(&str, &Vec<String>); 4] = [
        ("Region", &regions),
        ("Alder", &ages),
        ("Kon", &vec!["1".to_string(), "2".to_string()]),
        ("Tid", &years),
    ];
    let mut sums = BTreeMap::new();
    let cells = REGIONS * AGES * 2 * YEARS;
    let mut values = Vec::with_capacity(cells);
    for cell in 0..cells {
        // Whole numbers: sums are exact in any order of addition.
        let value = ((cell % 997) as f64 + 1.0) * scale;
        *sums
            .entry(FIRST_YEAR + (cell % YEARS) as i32)
            .or_insert(0.0) += value;
        values.push(value.to_string());
    }
    let dimension: Vec<String> = dims
        .iter()
        .map(|(id, codes)| {
            let index: Vec<String> = codes
                .iter()
                .enumerate()
                .map(|(i, c)| format!("\"{c}\":{i}"))
                .collect();
            format!(
                "\"{id}\":{{\"category\":{{\"index\":{{{}}}}}}}",
                index.join(",")
            )
        })
        .collect();
    let json = format!(
        "{{\"version\":\"2.0\",\"class\":\"dataset\",\"id\":[\"Region\",\"Alder\",\"Kon\",\"Tid\"],\"size\":[{REGIONS},{AGES},2,{YEARS}],\"dimension\":{{{}}},\"value\":[{}]}}",
        dimension.join(","),
        values.join(",")
    );
    std::fs::write(path, json).unwrap();
    sums
}

/// A project with the `crash` pipeline over `cube.json`.
fn crash_project() -> Project {
    let project = Project::empty();
    project.write(
        "pipelines/crash.toml",
        "id = \"crash\"\n[source]\nkind = \"file\"\npath = \"../cube.json\"\nformat = \"jsonstat\"\n\
         [map]\nindicator = \"crash_test\"\narea = \"Region\"\nperiod = { column = \"Tid\", kind = \"year\" }\n\
         sex = { column = \"Kon\", codes = { \"1\" = \"M\", \"2\" = \"F\" } }\nage = \"Alder\"\nunit = \"count\"\n",
    );
    project
}

/// Sums of `value` in a Parquet file; panics if it is not readable Parquet.
fn value_sum(file: &Path) -> f64 {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap_or_else(|e| panic!("{} is not readable Parquet: {e}", file.display()))
        .build()
        .unwrap();
    let mut sum = 0.0;
    for batch in reader {
        let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let Some(values) = batch.column_by_name("value") else {
            continue;
        };
        let values = values.as_any().downcast_ref::<Float64Array>().unwrap();
        sum += (0..values.len())
            .filter(|&i| values.is_valid(i))
            .map(|i| values.value(i))
            .sum::<f64>();
    }
    sum
}

/// Per-year sum of `value` in every partition; panics if any file is not readable Parquet.
fn partition_sums(warehouse: &Path) -> BTreeMap<i32, f64> {
    let dir = warehouse.join("observations/pipeline=crash");
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let year_dir = entry.unwrap().path();
        let year: i32 = year_dir.file_name().unwrap().to_str().unwrap()["year=".len()..]
            .parse()
            .unwrap();
        for file in std::fs::read_dir(&year_dir).unwrap() {
            *sums.entry(year).or_insert(0.0) += value_sum(&file.unwrap().path());
        }
    }
    sums
}

/// Every `catalog/*.parquet` is readable Parquet.
fn assert_catalogs_readable(warehouse: &Path) {
    for entry in std::fs::read_dir(warehouse.join("catalog")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            value_sum(&path);
        }
    }
}

/// The distinct `last_run` of `catalog/coverage.parquet`.
fn coverage_last_runs(warehouse: &Path) -> Vec<String> {
    let file = std::fs::File::open(warehouse.join("catalog/coverage.parquet")).unwrap();
    let mut runs: Vec<String> = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .flat_map(|batch| {
            let batch = batch.unwrap();
            let column = batch.column_by_name("last_run").unwrap().clone();
            let column = arrow_cast::cast(&column, &arrow_schema::DataType::Utf8).unwrap();
            let text = column
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap();
            (0..text.len())
                .map(|i| text.value(i).to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    runs.sort();
    runs.dedup();
    runs
}

/// The runs of `crash`, newest first, as (status, run id).
fn history(project: &Project) -> Vec<(String, String)> {
    let output = project.run(&["history", "crash"]);
    assert!(output.status.success(), "{}", text(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.starts_with(' '))
        .map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let status = fields.next().unwrap().to_string();
            (status, fields.next().unwrap().to_string())
        })
        .collect()
}

/// Run ids with leftovers under `.staging/`.
fn staged_runs(warehouse: &Path) -> Vec<String> {
    match std::fs::read_dir(warehouse.join(".staging")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn run_with_failpoint(project: &Project, failpoint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_indikator"))
        .args(["run", "crash"])
        .current_dir(project.path())
        .env("INDIKATOR_LOG", "indikator=info")
        .env("INDIKATOR_FAILPOINT", failpoint)
        .output()
        .expect("the binary runs")
}

/// What the killed run has published when it dies.
#[derive(Debug, Clone, Copy)]
enum Published {
    Nothing,
    /// The partitions of the first `n` years (parts are renamed in year order).
    FirstYears(usize),
    Everything,
}

struct Case {
    failpoint: String,
    published: Published,
    /// Whether the killed run leaves `.staging/<run>/` behind.
    leaves_staging: bool,
    /// The killed run's status once the next run has looked at it.
    killed_becomes: &'static str,
    /// The next run's status.
    next_run: &'static str,
}

const MIDDLE: usize = YEARS / 2;

#[test]
fn a_run_aborted_at_every_failpoint_leaves_every_partition_old_or_new() {
    let interrupted = |failpoint: &str, published, leaves_staging| Case {
        failpoint: failpoint.to_string(),
        published,
        leaves_staging,
        killed_becomes: "interrupted",
        next_run: "succeeded",
    };
    let cases = [
        interrupted("stage.written", Published::Nothing, true),
        interrupted(&format!("stage.written:{MIDDLE}"), Published::Nothing, true),
        interrupted("commit.rename", Published::Nothing, true),
        // Dies before the rename of part MIDDLE + 1: parts 1..=MIDDLE are published.
        interrupted(
            &format!("commit.rename:{}", MIDDLE + 1),
            Published::FirstYears(MIDDLE),
            true,
        ),
        interrupted("commit.dirsync", Published::Everything, true),
        // Committed and its staging removed; only the ledger does not know.
        interrupted("ledger.finish", Published::Everything, false),
        // Committed and recorded: the next run finds the content unchanged.
        Case {
            failpoint: "catalog.rename".to_string(),
            published: Published::Everything,
            leaves_staging: false,
            killed_becomes: "succeeded",
            next_run: "skipped",
        },
    ];
    for point in POINTS {
        assert!(
            cases.iter().any(|c| c.failpoint == *point),
            "failpoint {point} has no case here"
        );
    }

    let project = crash_project();
    let data = project.path().join("cube.json");
    let mut old = write_cube(&data, 1.0);
    let first = project.run(&["run", "crash"]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(partition_sums(&project.warehouse()), old);

    for (round, case) in cases.iter().enumerate() {
        let failpoint = case.failpoint.as_str();
        let new = write_cube(&data, if round % 2 == 0 { 2.0 } else { 1.0 });
        let killed = run_with_failpoint(&project, failpoint);
        assert_eq!(
            killed.status.signal(),
            Some(SIGABRT),
            "{failpoint}: {}",
            text(&killed)
        );
        let point = failpoint.split(':').next().unwrap();
        assert!(
            String::from_utf8_lossy(&killed.stderr)
                .contains(&format!("failpoint {point}: aborting")),
            "{failpoint}: {}",
            text(&killed)
        );

        let sums = partition_sums(&project.warehouse());
        let expected: BTreeMap<i32, f64> = match case.published {
            Published::Nothing => old.clone(),
            Published::Everything => new.clone(),
            Published::FirstYears(n) => old
                .keys()
                .enumerate()
                .map(|(i, year)| (*year, if i < n { new[year] } else { old[year] }))
                .collect(),
        };
        assert_eq!(sums, expected, "{failpoint}: what readers see");
        assert_catalogs_readable(&project.warehouse());
        let (status, killed_run) = history(&project).remove(0);
        let expected_status = if case.killed_becomes == "succeeded" {
            "succeeded"
        } else {
            "running"
        };
        assert_eq!(
            status, expected_status,
            "{failpoint}: killed run in the ledger"
        );
        assert_eq!(
            staged_runs(&project.warehouse()).contains(&killed_run),
            case.leaves_staging,
            "{failpoint}: staging left by {killed_run}"
        );

        let next = project.run(&["run", "crash"]);
        assert!(next.status.success(), "{failpoint}: {}", text(&next));
        let runs = history(&project);
        assert_eq!(runs[0].0, case.next_run, "{failpoint}: the next run");
        assert_eq!(
            runs[1],
            (case.killed_becomes.to_string(), killed_run.clone()),
            "{failpoint}: the killed run, once the next has run"
        );
        assert!(
            staged_runs(&project.warehouse()).is_empty(),
            "{failpoint}: staging cleaned"
        );
        assert_eq!(
            partition_sums(&project.warehouse()),
            new,
            "{failpoint}: the next run commits the new data"
        );
        assert_catalogs_readable(&project.warehouse());
        // The catalogs describe what is committed, even when the next run was skipped.
        let committed_by = if case.killed_becomes == "succeeded" {
            &killed_run
        } else {
            &runs[0].1
        };
        assert_eq!(
            coverage_last_runs(&project.warehouse()),
            std::slice::from_ref(committed_by),
            "{failpoint}: coverage"
        );
        old = new;
    }
}

#[test]
fn a_paused_run_holds_its_pipeline_and_a_kill_leaves_the_warehouse_old() {
    let project = crash_project();
    let data = project.path().join("cube.json");
    let old = write_cube(&data, 1.0);
    let first = project.run(&["run", "crash"]);
    assert!(first.status.success(), "{}", text(&first));
    let new = write_cube(&data, 3.0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_indikator"))
        .args(["run", "crash"])
        .current_dir(project.path())
        .env("INDIKATOR_LOG", "indikator=info")
        .env("INDIKATOR_FAILPOINT", "stage.written@pause")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, paused) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("failpoint stage.written: paused") {
                let _ = lines.send(());
            }
        }
    });
    paused
        .recv_timeout(Duration::from_secs(60))
        .expect("the run pauses at stage.written");

    let (status, paused_run) = history(&project).remove(0);
    assert_eq!(status, "running");
    let refused = project.run(&["run", "crash"]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "pipeline `crash` is being run by run {paused_run} (pid {},",
            child.id()
        )),
        "{}",
        text(&refused)
    );
    assert_eq!(
        history(&project)[0],
        ("running".to_string(), paused_run.clone()),
        "a refused run records nothing and leaves the live run alone"
    );

    child.kill().unwrap(); // SIGKILL: the kernel releases the pipeline's lock
    child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(partition_sums(&project.warehouse()), old);
    assert_eq!(
        staged_runs(&project.warehouse()),
        std::slice::from_ref(&paused_run)
    );

    let next = project.run(&["run", "crash"]);
    assert!(next.status.success(), "{}", text(&next));
    assert_eq!(
        history(&project)[1],
        ("interrupted".to_string(), paused_run)
    );
    assert!(staged_runs(&project.warehouse()).is_empty());
    assert_eq!(partition_sums(&project.warehouse()), new);
}

/// A commit that died after its renames left the new content in the warehouse with the ledger's
/// last succeeded run still on the old: going back to the old content must write it, not skip.
#[test]
fn after_a_commit_that_died_going_back_to_the_old_content_rewrites_it() {
    let project = crash_project();
    let data = project.path().join("cube.json");
    let old = write_cube(&data, 1.0);
    let first = project.run(&["run", "crash"]);
    assert!(first.status.success(), "{}", text(&first));

    let new = write_cube(&data, 2.0);
    let killed = run_with_failpoint(&project, "commit.dirsync");
    assert_eq!(killed.status.signal(), Some(SIGABRT), "{}", text(&killed));
    assert_eq!(partition_sums(&project.warehouse()), new);

    write_cube(&data, 1.0);
    let back = project.run(&["run", "crash"]);
    assert!(back.status.success(), "{}", text(&back));
    assert_eq!(history(&project)[0].0, "succeeded", "not skipped");
    assert_eq!(partition_sums(&project.warehouse()), old);
}
