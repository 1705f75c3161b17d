//! The CLI on the bundled samples: run, rerun, check, inspect, pipelines, history.

use crate::util::{Project, read_parquet, strings, text};

const SAMPLES: [&str; 5] = [
    "pipelines/samples/liv-halsa-ung.toml",
    "pipelines/samples/lupp-trygghet.toml",
    "pipelines/samples/scb-folkmangd-barn.toml",
    "pipelines/samples/scb-trangboddhet-barn.toml",
    "pipelines/samples/skolverket-behorighet.toml",
];

#[test]
fn samples_run_into_the_warehouse_layout() {
    let project = Project::with_samples();
    let mut args = vec!["run"];
    args.extend(SAMPLES);
    let output = project.run(&args);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scb-folkmangd-barn: succeeded"), "{stdout}");
    assert!(stdout.contains("uncatalogued indicators"), "{stdout}");
    let warehouse = project.warehouse();
    for year in 2020..=2024 {
        let part = warehouse.join(format!(
            "observations/pipeline=scb-folkmangd-barn/year={year}/part-00000.parquet"
        ));
        assert!(part.is_file(), "{}", part.display());
    }
    assert!(
        warehouse
            .join("observations/pipeline=skolverket-behorighet/year=2022/part-00000.parquet")
            .is_file()
    );
    // The PC-Axis sample: its one `"-"` cell (Kiruna, 2020) is a true zero, its `".."` missing.
    let px = read_parquet(
        &warehouse.join("observations/pipeline=scb-trangboddhet-barn/year=2020/part-00000.parquet"),
    );
    let (areas, breakdowns) = (strings(&px, "area_code"), strings(&px, "breakdown"));
    let (values, statuses) = (strings(&px, "value"), strings(&px, "status"));
    let kiruna = (0..areas.len())
        .filter(|&i| areas[i] == "2584" && breakdowns[i] == "fodelseregion=100")
        .map(|i| (values[i].as_str(), statuses[i].as_str()))
        .collect::<Vec<_>>();
    assert!(kiruna.contains(&("0.0", "ok")), "{kiruna:?}");
    assert!(statuses.iter().any(|s| s == "missing"), "{statuses:?}");
    // The Excel sample: codes stored as text keep their leading zero through the merged cells,
    // and exactly the groups of fewer than 5 (`*`) are suppressed.
    let xlsx = read_parquet(
        &warehouse.join("observations/pipeline=liv-halsa-ung/year=2024/part-00000.parquet"),
    );
    let mut areas = strings(&xlsx, "area_code");
    let (values, statuses) = (strings(&xlsx, "value"), strings(&xlsx, "status"));
    let sample_sizes = strings(&xlsx, "sample_size");
    for i in 0..values.len() {
        let small = sample_sizes[i].parse::<i64>().unwrap() < 5;
        let suppressed = values[i].is_empty() && statuses[i] == "suppressed";
        assert_eq!(small, suppressed, "row {i}: {} {}", values[i], statuses[i]);
    }
    assert!(statuses.iter().any(|s| s == "suppressed"), "{statuses:?}");
    areas.sort();
    areas.dedup();
    assert_eq!(areas, ["03", "0305", "0330", "0380"]);
    for catalog in ["indicators", "areas", "coverage"] {
        assert!(
            warehouse
                .join(format!("catalog/{catalog}.parquet"))
                .is_file(),
            "{catalog}"
        );
    }
    let raw = warehouse.join("raw/scb-folkmangd-barn");
    assert_eq!(
        std::fs::read_dir(raw).unwrap().count(),
        1,
        "one run archived"
    );
    assert!(
        !warehouse.join(".staging").exists()
            || std::fs::read_dir(warehouse.join(".staging"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn a_rerun_on_unchanged_input_writes_nothing_and_force_rewrites() {
    let project = Project::with_samples();
    let pipeline = "pipelines/samples/scb-folkmangd-barn.toml";
    assert!(project.run(&["run", pipeline]).status.success());
    let part = project
        .warehouse()
        .join("observations/pipeline=scb-folkmangd-barn/year=2024/part-00000.parquet");
    let before = std::fs::metadata(&part).unwrap().modified().unwrap();

    let again = project.run(&["run", pipeline]);
    assert!(again.status.success(), "{}", text(&again));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("skipped"), "{stdout}");
    assert!(stdout.contains("nothing written"), "{stdout}");
    assert_eq!(
        std::fs::metadata(&part).unwrap().modified().unwrap(),
        before
    );

    std::thread::sleep(std::time::Duration::from_millis(20));
    let forced = project.run(&["run", pipeline, "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(String::from_utf8_lossy(&forced.stdout).contains("succeeded"));
    assert_ne!(
        std::fs::metadata(&part).unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn pipelines_run_by_id_or_all_and_history_lists_them() {
    let project = Project::with_samples();
    let by_id = project.run(&["run", "scb-folkmangd-barn"]);
    assert!(by_id.status.success(), "{}", text(&by_id));
    let all = project.run(&["run", "--all"]);
    assert!(all.status.success(), "{}", text(&all));
    let history = project.run(&["history"]);
    let stdout = String::from_utf8_lossy(&history.stdout);
    assert_eq!(stdout.matches("scb-folkmangd-barn").count(), 2, "{stdout}");
    assert!(stdout.contains("skipped"), "{stdout}");
    assert!(stdout.contains("lupp-trygghet"), "{stdout}");
    let unknown = project.run(&["run", "no-such-pipeline"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no pipeline has id `no-such-pipeline`")
    );
}

#[test]
fn pipelines_lists_ids_and_files() {
    let project = Project::with_samples();
    let output = project.run(&["pipelines"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("skolverket-behorighet"), "{stdout}");
    assert!(
        stdout.contains("pipelines/samples/lupp-trygghet.toml"),
        "{stdout}"
    );
}

#[test]
fn check_passes_on_the_samples() {
    let project = Project::with_samples();
    let output = project.run(&["check"]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("5 pipelines checked: 0 errors"));
}

#[test]
fn check_reports_every_problem_with_file_and_key() {
    let project = Project::with_samples();
    project.write(
        "pipelines/broken.toml",
        r#"id = "scb-folkmangd-barn"
schedul = "0 6 * * 1"
[source]
kind = "file"
path = "data/x.json"
format = "jsonstat"
[map]
indicator = "x"
area = "Region"
period = "Tid"
unit = "count"
"#,
    );
    project.write(
        "pipelines/bad-values.toml",
        r#"id = "Bad Id"
max_reject_ratio = 2.0
[source]
kind = "file"
path = "missing.csv"
format = "csv"
encoding = "klingon"
[map]
indicator = { column = "q", codes = "no-such-list" }
area = "kommun"
period = { column = "ar", kind = "year" }
sex = { value = "K" }
unit = "Procent"
missing = { "" = "gone" }
"#,
    );
    project.write(
        "pipelines/samples/copy.toml",
        std::fs::read_to_string(project.path().join("pipelines/samples/lupp-trygghet.toml"))
            .unwrap(),
    );
    let output = project.run(&["check"]);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "pipelines/broken.toml: schedul: unknown field `schedul`",
        "pipelines/bad-values.toml: id: `Bad Id` must be lowercase",
        "pipelines/bad-values.toml: max_reject_ratio: 2 is not a share",
        "pipelines/bad-values.toml: source.path:",
        "pipelines/bad-values.toml: source.encoding: `klingon` is not an encoding",
        "pipelines/bad-values.toml: map.indicator.codes: code list `no-such-list`",
        "pipelines/bad-values.toml: map.sex: sex `K`",
        "pipelines/bad-values.toml: map.unit:",
        "pipelines/bad-values.toml: map.missing.\"\": `gone` is not a status",
        "id: id `lupp-trygghet` is already used",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
}

#[test]
fn inspect_json_counts_cells_and_markers() {
    let project = Project::with_samples();
    let output = project.run(&[
        "inspect",
        "pipelines/samples/data/scb_folkmangd_barn.json",
        "--json",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["cells"], 13 * 4 * 3 * 5);
    assert_eq!(json["non_null"], 13 * 4 * 3 * 5 - 4);
    assert_eq!(json["status_counts"], serde_json::json!({"..": 3, "-": 1}));
    assert_eq!(
        json["dimensions"],
        serde_json::json!([
            {"id": "Region", "size": 13}, {"id": "Alder", "size": 4}, {"id": "Kon", "size": 3},
            {"id": "ContentsCode", "size": 1}, {"id": "Tid", "size": 5}
        ])
    );
}

#[test]
fn inspect_text_shows_a_csv_export() {
    let project = Project::with_samples();
    let output = project.run(&[
        "inspect",
        "pipelines/samples/data/lupp_fritid.csv",
        "--delimiter",
        ";",
        "--encoding",
        "windows-1252",
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("arskurs"), "{stdout}");
    assert!(stdout.contains("Upplands Väsby"), "{stdout}");
}
