//! A file source of several payloads (`path = ["a.json", "b.json"]`): the run makes them one
//! table before it splits it by year, so pieces of different years, pieces of one year and CSV
//! pieces are all committed whole, and a cell that two pieces both hold is refused in both,
//! named by payload and row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch, StringArray, UInt64Array};

use crate::util::{Project, read_parquet, strings, text};

const PIPELINE: &str = "pieces";

/// A JSON-stat 2.0 dataset of `Region` × `Kon` × `Tid`; `values` in row-major order (`Tid`
/// fastest), as JSON-stat lays them out.
fn cube(regions: &[&str], sexes: &[&str], years: &[&str], values: &[f64]) -> String {
    assert_eq!(values.len(), regions.len() * sexes.len() * years.len());
    let dimension = |codes: &[&str]| {
        let index: Vec<String> = codes
            .iter()
            .enumerate()
            .map(|(i, code)| format!("\"{code}\":{i}"))
            .collect();
        format!("{{\"category\":{{\"index\":{{{}}}}}}}", index.join(","))
    };
    let values: Vec<String> = values.iter().map(f64::to_string).collect();
    format!(
        "{{\"version\":\"2.0\",\"class\":\"dataset\",\"id\":[\"Region\",\"Kon\",\"Tid\"],\
         \"size\":[{},{},{}],\"dimension\":{{\"Region\":{},\"Kon\":{},\"Tid\":{}}},\"value\":[{}]}}",
        regions.len(),
        sexes.len(),
        years.len(),
        dimension(regions),
        dimension(sexes),
        dimension(years),
        values.join(",")
    )
}

/// A project with the bundled schemas and `pipelines/pieces.toml` reading `files` (under
/// `pipelines/data/`) with `rest` after the `[source]` table's `path`.
fn project(files: &[(&str, String)], source_and_map: &str) -> Project {
    let project = Project::with_samples();
    for (name, contents) in files {
        project.write(&format!("pipelines/data/{name}"), contents);
    }
    let paths: Vec<String> = files
        .iter()
        .map(|(name, _)| format!("\"data/{name}\""))
        .collect();
    project.write(
        &format!("pipelines/{PIPELINE}.toml"),
        source_and_map.replace("PATHS", &format!("[{}]", paths.join(", "))),
    );
    project
}

/// How a run names payload `name` of [`project`]: by the path it was read from.
fn origin(project: &Project, name: &str) -> String {
    project
        .path()
        .join("pipelines")
        .join(format!("data/{name}"))
        .display()
        .to_string()
}

/// A JSON-stat pipeline over `Region` × `Kon` × `Tid`.
fn jsonstat_pipeline(max_reject_ratio: f64) -> String {
    format!(
        "id = \"{PIPELINE}\"\nmax_reject_ratio = {max_reject_ratio}\n\
         [source]\nkind = \"file\"\npath = PATHS\nformat = \"jsonstat\"\n\
         [map]\nindicator = \"pieces_test\"\narea = \"Region\"\n\
         period = {{ column = \"Tid\", kind = \"year\" }}\n\
         sex = {{ column = \"Kon\", codes = {{ \"1\" = \"M\", \"2\" = \"F\" }} }}\nunit = \"count\"\n"
    )
}

/// A CSV pipeline over `kommun,ar,kon,andel` (and whatever other columns).
fn csv_pipeline() -> String {
    format!(
        "id = \"{PIPELINE}\"\n[source]\nkind = \"file\"\npath = PATHS\nformat = \"csv\"\n\
         [map]\nindicator = \"pieces_test\"\narea = \"kommun\"\n\
         period = {{ column = \"ar\", kind = \"year\" }}\nsex = \"kon\"\nvalue = \"andel\"\n\
         unit = \"percent\"\n"
    )
}

/// One year partition of the pipeline: its rows, the sum of `value`, and its area codes sorted.
#[derive(Debug, PartialEq)]
struct Partition {
    rows: usize,
    sum: f64,
    areas: Vec<String>,
}

/// Every year partition of the pipeline, by year.
fn partitions(warehouse: &Path) -> BTreeMap<i32, Partition> {
    let dir = warehouse.join(format!("observations/pipeline={PIPELINE}"));
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let year_dir = entry.unwrap().path();
        let year: i32 = year_dir.file_name().unwrap().to_str().unwrap()["year=".len()..]
            .parse()
            .unwrap();
        let mut batches = Vec::new();
        for file in std::fs::read_dir(&year_dir).unwrap() {
            batches.extend(read_parquet(&file.unwrap().path()));
        }
        let mut sum = 0.0;
        for batch in &batches {
            let values = batch.column_by_name("value").unwrap();
            let values = values.as_any().downcast_ref::<Float64Array>().unwrap();
            sum += values.iter().flatten().sum::<f64>();
        }
        let mut areas = strings(&batches, "area_code");
        areas.sort();
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        found.insert(year, Partition { rows, sum, areas });
    }
    found
}

/// The files under `rejects/pipeline=pieces/` (none when the directory does not exist).
fn rejects_files(warehouse: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(warehouse.join(format!("rejects/pipeline={PIPELINE}"))) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn areas(codes: &[&str]) -> Vec<String> {
    let mut codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    codes.sort();
    codes
}

#[test]
fn json_stat_pieces_of_different_years_commit_both_years_whole() {
    let regions = ["0180", "1480"];
    let project = project(
        &[
            (
                "a.json",
                cube(&regions, &["1", "2"], &["2022"], &[1.0, 2.0, 3.0, 4.0]),
            ),
            (
                "b.json",
                cube(&regions, &["1", "2"], &["2023"], &[10.0, 20.0, 30.0, 40.0]),
            ),
        ],
        &jsonstat_pipeline(0.0),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("pieces: succeeded")
            && stdout.contains("8 rows read, 8 written, 0 rejected"),
        "{stdout}"
    );
    let both = areas(&["0180", "0180", "1480", "1480"]);
    assert_eq!(
        partitions(&project.warehouse()),
        BTreeMap::from([
            (
                2022,
                Partition {
                    rows: 4,
                    sum: 10.0,
                    areas: both.clone()
                }
            ),
            (
                2023,
                Partition {
                    rows: 4,
                    sum: 100.0,
                    areas: both
                }
            ),
        ])
    );
    assert!(rejects_files(&project.warehouse()).is_empty());
}

#[test]
fn json_stat_pieces_of_one_year_commit_one_partition_with_both_pieces() {
    let project = project(
        &[
            (
                "a.json",
                cube(&["0180"], &["1", "2"], &["2023"], &[1.0, 2.0]),
            ),
            (
                "b.json",
                cube(&["1480"], &["1", "2"], &["2023"], &[30.0, 40.0]),
            ),
        ],
        &jsonstat_pipeline(0.0),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("4 rows read, 4 written, 0 rejected"),
        "{}",
        text(&output)
    );
    assert_eq!(
        partitions(&project.warehouse()),
        BTreeMap::from([(
            2023,
            Partition {
                rows: 4,
                sum: 73.0,
                areas: areas(&["0180", "0180", "1480", "1480"])
            }
        )])
    );
}

#[test]
fn csv_pieces_with_one_header_commit_their_union() {
    let project = project(
        &[
            (
                "a.csv",
                "kommun,ar,kon,andel\n0180,2023,F,12.5\n0180,2023,M,10\n".to_string(),
            ),
            (
                "b.csv",
                "kommun,ar,kon,andel\n1480,2023,F,7.5\n1480,2023,M,2.5\n".to_string(),
            ),
        ],
        &csv_pipeline(),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        partitions(&project.warehouse()),
        BTreeMap::from([(
            2023,
            Partition {
                rows: 4,
                sum: 32.5,
                areas: areas(&["0180", "0180", "1480", "1480"])
            }
        )])
    );
}

#[test]
fn csv_pieces_with_different_headers_run_and_reject_into_one_file() {
    // b.csv has a column more, which the pipeline does not read; each piece has a bad value, in
    // different years.
    let project = project(
        &[
            (
                "a.csv",
                "kommun,ar,kon,andel\n0180,2023,F,12.5\n0180,2022,M,bad\n".to_string(),
            ),
            (
                "b.csv",
                "kommun,ar,kon,andel,antal\n1480,2023,F,x,120\n1480,2022,M,2.5,80\n".to_string(),
            ),
        ],
        &csv_pipeline().replace("[source]", "max_reject_ratio = 0.5\n[source]"),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains("panicked"),
        "{}",
        text(&output)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("4 rows read, 2 written, 2 rejected"),
        "{}",
        text(&output)
    );
    assert_eq!(
        partitions(&project.warehouse()),
        BTreeMap::from([
            (
                2022,
                Partition {
                    rows: 1,
                    sum: 2.5,
                    areas: areas(&["1480"])
                }
            ),
            (
                2023,
                Partition {
                    rows: 1,
                    sum: 12.5,
                    areas: areas(&["0180"])
                }
            ),
        ])
    );

    let rejects = rejects_files(&project.warehouse());
    assert_eq!(rejects.len(), 1, "one file for the run: {rejects:?}");
    let batches = read_parquet(&rejects[0]);
    let mut refused: Vec<(String, String, String, String)> = strings(&batches, "payload")
        .into_iter()
        .zip(strings(&batches, "row"))
        .zip(strings(&batches, "source_andel"))
        .zip(strings(&batches, "source_antal"))
        .map(|(((payload, row), andel), antal)| (payload, row, andel, antal))
        .collect();
    refused.sort();
    let row = |payload: &str, row: &str, andel: &str, antal: &str| {
        (
            payload.to_string(),
            row.to_string(),
            andel.to_string(),
            antal.to_string(),
        )
    };
    let (a, b) = (origin(&project, "a.csv"), origin(&project, "b.csv"));
    assert_eq!(refused, [row(&a, "3", "bad", ""), row(&b, "2", "x", "120")]);
}

#[test]
fn a_piece_without_a_column_the_pipeline_reads_fails_the_run_naming_it() {
    // b.csv calls the period `period`: read as empty cells, its rows would vanish unrefused.
    let project = project(
        &[
            (
                "a.csv",
                "kommun,ar,kon,andel\n0180,2023,F,12.5\n".to_string(),
            ),
            (
                "b.csv",
                "kommun,period,kon,andel\n1480,2023,F,7\n".to_string(),
            ),
        ],
        &csv_pipeline(),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let b = origin(&project, "b.csv");
    assert!(
        stdout.contains(&format!(
            "{b} has no column `ar`, which the pipeline reads (its columns are kommun, period, \
             kon, andel); every piece of one table needs the columns [map] and [validate] name"
        )),
        "{}",
        text(&output)
    );
    assert!(
        !project
            .warehouse()
            .join("observations")
            .join(format!("pipeline={PIPELINE}"))
            .exists()
    );
}

#[test]
fn a_cell_in_two_pieces_is_refused_in_both_naming_payloads_and_rows() {
    // a.json: 0180 and 1480, both sexes. b.json: 1480 and 1280, men only. The cell 1480 × men ×
    // 2023 is in both: cell 2 of a.json, cell 0 of b.json.
    let project = project(
        &[
            (
                "a.json",
                cube(
                    &["0180", "1480"],
                    &["1", "2"],
                    &["2023"],
                    &[1.0, 2.0, 3.0, 4.0],
                ),
            ),
            (
                "b.json",
                cube(&["1480", "1280"], &["1"], &["2023"], &[30.0, 50.0]),
            ),
        ],
        &jsonstat_pipeline(0.5),
    );
    let output = project.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("pieces: succeeded")
            && stdout.contains("6 rows read, 4 written, 2 rejected"),
        "{stdout}"
    );
    let report: Vec<&str> = stdout
        .lines()
        .filter(|line| line.trim_start().starts_with("duplicate_key") || line.contains(" row "))
        .map(str::trim)
        .collect();
    assert_eq!(report.len(), 3, "{stdout}");
    assert_eq!(report[0], "duplicate_key on `indicator_id`: 2 rows");
    // Payloads are named by where they came from, which the operator can find.
    let (a, b) = (origin(&project, "a.json"), origin(&project, "b.json"));
    for (line, place) in report[1..]
        .iter()
        .zip([format!("{b} row 0: "), format!("{a} row 2: ")])
    {
        assert!(
            line.starts_with(&place),
            "`{line}` should start with `{place}`:\n{stdout}"
        );
        assert!(
            line.contains(&format!("rows 2 of {a}, 0 of {b} have the same key")),
            "{line}"
        );
    }

    let rejects = rejects_files(&project.warehouse());
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let batches = read_parquet(&rejects[0]);
    let mut refused: Vec<(String, u64, String)> = Vec::new();
    for batch in &batches {
        let payloads = batch.column_by_name("payload").unwrap();
        let payloads = payloads.as_any().downcast_ref::<StringArray>().unwrap();
        let rows = batch.column_by_name("row").unwrap();
        let rows = rows.as_any().downcast_ref::<UInt64Array>().unwrap();
        let rules = batch.column_by_name("rule").unwrap();
        let rules = rules.as_any().downcast_ref::<StringArray>().unwrap();
        for i in 0..batch.num_rows() {
            refused.push((
                payloads.value(i).into(),
                rows.value(i),
                rules.value(i).into(),
            ));
        }
    }
    refused.sort();
    assert_eq!(
        refused,
        [
            (a.clone(), 2, "duplicate_key".to_string()),
            (b.clone(), 0, "duplicate_key".to_string()),
        ]
    );
    let sources: Vec<String> = strings(&batches, "source_Region");
    assert_eq!(sources, ["1480", "1480"]);

    // What is left: 0180 × both sexes from a.json, 1480 × women from a.json, 1280 from b.json.
    assert_eq!(
        partitions(&project.warehouse()),
        BTreeMap::from([(
            2023,
            Partition {
                rows: 4,
                sum: 1.0 + 2.0 + 4.0 + 50.0,
                areas: areas(&["0180", "0180", "1280", "1480"])
            }
        )])
    );
}

#[test]
fn max_table_cells_bounds_the_pieces_together_counted_as_one_table() {
    let regions = ["0180", "1480"];
    let files = [
        (
            "a.json",
            cube(&regions, &["1", "2"], &["2022"], &[1.0, 2.0, 3.0, 4.0]),
        ),
        (
            "b.json",
            cube(&regions, &["1", "2"], &["2023"], &[5.0, 6.0, 7.0, 8.0]),
        ),
    ];
    let with_limit = |cells: u64| {
        jsonstat_pipeline(0.0).replace(
            "format = \"jsonstat\"\n",
            &format!("format = \"jsonstat\"\nmax_table_cells = {cells}\n"),
        )
    };
    // 8 cells together, as one file of both years would declare.
    let at_limit = project(&files, &with_limit(8));
    let output = at_limit.run(&["run", PIPELINE]);
    assert!(output.status.success(), "{}", text(&output));
    let over = project(&files, &with_limit(7));
    let output = over.run(&["run", PIPELINE]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("the 2 payloads hold 8 cells together, more than max_table_cells = 7 allows"),
        "{}",
        text(&output)
    );
}
