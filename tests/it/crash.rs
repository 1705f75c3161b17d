//! Crash safety: `kill -9` a run at several moments while it writes; every partition must stay
//! a readable Parquet file with either the old or the new content, the next start must mark
//! the killed run `interrupted` and clean staging, and a rerun must succeed.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{Project, text};

const REGIONS: usize = 72;
const AGES: usize = 25;
const YEARS: usize = 40;

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
    let years = codes(YEARS, &|i| (1990 + i).to_string());
    let dims: [(&str, &Vec<String>); 4] = [
        ("Region", &regions),
        ("Alder", &ages),
        ("Kon", &vec!["1".to_string(), "2".to_string()]),
        ("Tid", &years),
    ];
    let mut sums = BTreeMap::new();
    let mut values = String::with_capacity(REGIONS * AGES * 2 * YEARS * 8);
    let cells = REGIONS * AGES * 2 * YEARS;
    for cell in 0..cells {
        let value = ((cell % 997) as f64 + 1.0) * scale;
        *sums.entry(1990 + (cell % YEARS) as i32).or_insert(0.0) += value;
        if cell > 0 {
            values.push(',');
        }
        values.push_str(&value.to_string());
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
        "{{\"version\":\"2.0\",\"class\":\"dataset\",\"id\":[\"Region\",\"Alder\",\"Kon\",\"Tid\"],\"size\":[{REGIONS},{AGES},2,{YEARS}],\"dimension\":{{{}}},\"value\":[{values}]}}",
        dimension.join(",")
    );
    std::fs::write(path, json).unwrap();
    sums
}

/// Per-year sum of `value` in every partition; panics if any part file is not readable Parquet.
fn partition_sums(warehouse: &Path) -> BTreeMap<i32, f64> {
    let dir = warehouse.join("observations/pipeline=crash");
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let year_dir = entry.unwrap().path();
        let year: i32 = year_dir.file_name().unwrap().to_str().unwrap()["year=".len()..]
            .parse()
            .unwrap();
        for file in std::fs::read_dir(&year_dir).unwrap() {
            let file = file.unwrap().path();
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
                    .unwrap_or_else(|e| panic!("{} is not readable Parquet: {e}", file.display()))
                    .build()
                    .unwrap();
            let mut sum = 0.0;
            for batch in reader {
                let batch = batch.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let values = batch
                    .column_by_name("value")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .unwrap();
                sum += (0..values.len())
                    .filter(|&i| values.is_valid(i))
                    .map(|i| values.value(i))
                    .sum::<f64>();
            }
            *sums.entry(year).or_insert(0.0) += sum;
        }
    }
    sums
}

fn latest_run(project: &Project) -> (String, String) {
    let output = project.run(&["history", "crash", "--limit", "1"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let mut fields = stdout.split_whitespace();
    let _started = fields.next();
    let status = fields.next().unwrap_or_default().to_string();
    let run_id = fields.next().unwrap_or_default().to_string();
    (status, run_id)
}

#[test]
fn a_run_killed_at_any_moment_leaves_every_partition_old_or_new() {
    let project = Project::empty();
    let data = project.path().join("cube.json");
    project.write(
        "pipelines/crash.toml",
        "id = \"crash\"\n[source]\nkind = \"file\"\npath = \"../cube.json\"\nformat = \"jsonstat\"\n\
         [map]\nindicator = \"crash_test\"\narea = \"Region\"\nperiod = { column = \"Tid\", kind = \"year\" }\n\
         sex = { column = \"Kon\", codes = { \"1\" = \"M\", \"2\" = \"F\" } }\nage = \"Alder\"\nunit = \"count\"\n",
    );
    let variants = [write_cube(&data, 1.0), write_cube(&data, 2.0)];
    write_cube(&data, 1.0);
    let started = Instant::now();
    let first = project.run(&["run", "crash"]);
    assert!(first.status.success(), "{}", text(&first));
    let full = started.elapsed();
    assert_eq!(partition_sums(&project.warehouse()), variants[0]);

    for (round, fraction) in [0.15, 0.35, 0.55, 0.75, 0.9].into_iter().enumerate() {
        let (old, new) = (&variants[round % 2], &variants[(round + 1) % 2]);
        write_cube(&data, if round % 2 == 0 { 2.0 } else { 1.0 });
        let mut child = Command::new(env!("CARGO_BIN_EXE_indikator"))
            .args(["run", "crash", "--force"])
            .current_dir(project.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        let was_running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let sums = partition_sums(&project.warehouse());
        assert_eq!(
            sums.len(),
            YEARS,
            "round {round}: every year has a partition"
        );
        for (year, sum) in &sums {
            assert!(
                sum == &old[year] || sum == &new[year],
                "round {round}: year {year} holds {sum}, neither old {} nor new {}",
                old[year],
                new[year]
            );
        }
        let (status, killed) = latest_run(&project);
        eprintln!(
            "round {round}: killed at {fraction} of {full:?}, still running: {was_running}, ledger: {status}"
        );
        let rerun = project.run(&["run", "crash", "--force"]);
        assert!(rerun.status.success(), "round {round}: {}", text(&rerun));
        if was_running && status == "running" {
            let history =
                String::from_utf8_lossy(&project.run(&["history", "crash"]).stdout).to_string();
            let line = history.lines().find(|l| l.contains(&killed)).unwrap();
            assert!(line.contains("interrupted"), "round {round}: {line}");
        }
        let staging = project.warehouse().join(".staging");
        assert!(
            !staging.exists() || std::fs::read_dir(&staging).unwrap().count() == 0,
            "staging cleaned"
        );
        assert_eq!(
            &partition_sums(&project.warehouse()),
            new,
            "round {round}: the rerun commits the new data"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
