//! Bad input: each gives an error naming the file and row, and leaves the warehouse as it was,
//! or writes the good rows and keeps the bad ones in rejects/.

use std::path::Path;

use arrow_array::{Array, RecordBatch, StringArray, UInt64Array};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::{Project, text};

fn read(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
    let column = arrow_cast::cast(
        batch.column_by_name(name).unwrap(),
        &arrow_schema::DataType::Utf8,
    )
    .unwrap();
    let column = column.as_any().downcast_ref::<StringArray>().unwrap();
    (0..column.len())
        .map(|i| column.value(i).to_string())
        .collect()
}

/// Every file under the warehouse's observations with its bytes.
fn snapshot(project: &Project) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![project.warehouse().join("observations")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

const LUPP: &str = "pipelines/samples/lupp-trygghet.toml";
const SCB: &str = "pipelines/samples/scb-folkmangd-barn.toml";

#[test]
fn a_truncated_json_fails_naming_the_file_and_leaves_the_warehouse_as_it_was() {
    let project = Project::with_samples();
    assert!(project.run(&["run", SCB]).status.success());
    let before = snapshot(&project);
    let data = project
        .path()
        .join("pipelines/samples/data/scb_folkmangd_barn.json");
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() / 2]).unwrap();

    let output = project.run(&["run", SCB]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scb-folkmangd-barn: failed"), "{stdout}");
    assert!(stdout.contains("scb_folkmangd_barn.json"), "{stdout}");
    assert!(stdout.contains("line"), "{stdout}");
    assert_eq!(snapshot(&project), before);
    let history = String::from_utf8_lossy(&project.run(&["history", "scb-folkmangd-barn"]).stdout)
        .to_string();
    assert!(history.contains("failed"), "{history}");
}

#[test]
fn a_csv_in_the_wrong_encoding_names_the_line_and_the_fix() {
    let project = Project::with_samples();
    let pipeline = project.path().join(LUPP);
    let toml = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        toml.replace("encoding = \"windows-1252\"", "encoding = \"utf-8\""),
    )
    .unwrap();
    let output = project.run(&["run", LUPP]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("lupp_fritid.csv"), "{stdout}");
    assert!(stdout.contains("line 2"), "{stdout}");
    assert!(stdout.contains("windows-1252"), "{stdout}");
    assert!(
        !project
            .warehouse()
            .join("observations/pipeline=lupp-trygghet")
            .exists()
    );
}

/// A Lupp export with one share over 100 and one row repeated (both break the schema: its
/// `maximum` and its `primaryKey`).
fn bad_lupp(project: &Project) {
    let data = project
        .path()
        .join("pipelines/samples/data/lupp_fritid.csv");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.extend_from_slice(
        b"0114;Upplands V\xe4sby;2024;\xe5k 8;Flicka;F99;Mycket trygg;150,0;40\r\n",
    );
    bytes.extend_from_slice(b"2584;Kiruna;2023;gy 2;Totalt;F31;Ja;40,0;200\r\n");
    bytes.extend_from_slice(b"2584;Kiruna;2023;gy 2;Totalt;F31;Ja;41,0;200\r\n");
    std::fs::write(&data, bytes).unwrap();
}

#[test]
fn schema_violations_go_to_rejects_and_good_rows_are_written() {
    let project = Project::with_samples();
    bad_lupp(&project);
    let output = project.run(&["run", LUPP]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("3 rejected"), "{stdout}");
    assert!(stdout.contains("maximum"), "{stdout}");
    assert!(stdout.contains("primaryKey"), "{stdout}");

    let rejects_dir = project.warehouse().join("rejects/pipeline=lupp-trygghet");
    let file = std::fs::read_dir(&rejects_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let rejects = read(&file);
    let rules = strings(&rejects, "rule");
    assert_eq!(
        rules.iter().filter(|r| *r == "primaryKey").count(),
        2,
        "{rules:?}"
    );
    assert_eq!(
        rules.iter().filter(|r| *r == "maximum").count(),
        1,
        "{rules:?}"
    );
    let rows = rejects
        .column_by_name("row")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let lines = std::fs::read(
        project
            .path()
            .join("pipelines/samples/data/lupp_fritid.csv"),
    )
    .unwrap()
    .split(|b| *b == b'\n')
    .filter(|l| !l.is_empty())
    .count() as u64;
    let mut got: Vec<u64> = rows.values().to_vec();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![lines - 2, lines - 1, lines],
        "the last three lines are refused"
    );
    assert!(strings(&rejects, "source_andel").contains(&"150,0".to_string()));

    let year = read(
        &project
            .warehouse()
            .join("observations/pipeline=lupp-trygghet/year=2024/part-00000.parquet"),
    );
    assert!(year.num_rows() > 0, "good rows of 2024 are written");
    assert!(
        !project
            .warehouse()
            .join("observations/pipeline=lupp-trygghet/year=2023")
            .exists(),
        "2023 had only refused rows"
    );
}

#[test]
fn more_rejects_than_allowed_fail_the_run_and_commit_nothing() {
    let project = Project::with_samples();
    bad_lupp(&project);
    let pipeline = project.path().join(LUPP);
    let toml = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        toml.replace("max_reject_ratio = 0.05", "max_reject_ratio = 0.0"),
    )
    .unwrap();
    let output = project.run(&["run", LUPP]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("more than max_reject_ratio"), "{stdout}");
    assert!(
        !project
            .warehouse()
            .join("observations/pipeline=lupp-trygghet")
            .exists()
    );
    assert!(
        project
            .warehouse()
            .join("rejects/pipeline=lupp-trygghet")
            .is_dir(),
        "the refused rows are kept to look at"
    );
}

#[test]
fn codes_mapped_onto_one_key_are_refused_as_duplicates_naming_the_rows() {
    let project = Project::with_samples();
    let pipeline = project.path().join(SCB);
    let toml = std::fs::read_to_string(&pipeline).unwrap();
    // A typo maps women to men too: every (M, F) pair of cells now shares a key.
    let toml = toml.replace("\"2\" = \"F\"", "\"2\" = \"M\"");
    std::fs::write(&pipeline, format!("max_reject_ratio = 1.0\n{toml}")).unwrap();
    let output = project.run(&["run", SCB]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pairs = 13 * 4 * 5;
    assert!(
        stdout.contains(&format!("{} rejected", 2 * pairs)),
        "{stdout}"
    );
    assert!(stdout.contains("duplicate_key"), "{stdout}");
    assert!(stdout.contains("rows 0, 5 have the same key"), "{stdout}");
    let part = read(
        &project
            .warehouse()
            .join("observations/pipeline=scb-folkmangd-barn/year=2020/part-00000.parquet"),
    );
    assert_eq!(
        strings(&part, "sex").iter().filter(|s| *s == "M").count(),
        0,
        "no row of a duplicated key is kept"
    );
}

/// Runs `indikator ARGS` in the project like [`Project::run`], with the address space limited to
/// `kib` KiB (`ulimit -v`), so that an allocation the size of a declared table fails instead of
/// swapping the machine.
fn run_in_address_space(project: &Project, kib: u64, args: &[&str]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_indikator"))
        .args(args)
        .current_dir(project.path())
        .env("INDIKATOR_LOG", "indikator=info")
        .output()
        .expect("the binary runs")
}

/// 4 GiB: ten times what the samples need, an eighth of what 4 000 000 000 dense cells need.
const ADDRESS_SPACE_KIB: u64 = 4 * 1024 * 1024;

#[test]
fn a_small_json_stat_file_declaring_billions_of_cells_is_refused_without_allocating_them() {
    use std::os::unix::process::ExitStatusExt;

    let project = Project::with_samples();
    let output = run_in_address_space(&project, ADDRESS_SPACE_KIB, &["run", LUPP]);
    assert!(
        output.status.success(),
        "a normal pipeline runs in the limited address space: {}",
        text(&output)
    );

    // 4000 × 1000 × 1000 cells from 6 000 categories and two values: about 42 KB.
    let dimension = |name: &str, n: usize| {
        let codes: Vec<String> = (0..n).map(|k| format!("\"{k:04}\"")).collect();
        format!(
            "\"{name}\": {{\"category\": {{\"index\": [{}]}}}}",
            codes.join(",")
        )
    };
    let json = format!(
        "{{\"version\": \"2.0\", \"class\": \"dataset\", \"id\": [\"Region\", \"Alder\", \"Tid\"], \
         \"size\": [4000, 1000, 1000], \"dimension\": {{{}, {}, {}}}, \
         \"value\": {{\"0\": 1.5, \"17\": 3}}}}",
        dimension("Region", 4000),
        dimension("Alder", 1000),
        dimension("Tid", 1000),
    );
    assert!((40_000..60_000).contains(&json.len()), "{}", json.len());
    project.write("pipelines/samples/data/scb_folkmangd_barn.json", json);

    let output = run_in_address_space(&project, ADDRESS_SPACE_KIB, &["run", SCB]);
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(output.status.signal(), None, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("scb_folkmangd_barn.json"), "{stdout}");
    assert!(
        stdout.contains(
            "the table declares 4000000000 cells, more than max_table_cells = 50000000 allows; \
             if the table really is that big, raise `max_table_cells` in [source]"
        ),
        "{}",
        text(&output)
    );
    assert!(
        !project
            .warehouse()
            .join("observations/pipeline=scb-folkmangd-barn")
            .exists()
    );
}

#[test]
fn a_dense_table_just_over_max_table_cells_is_refused_and_one_at_it_runs() {
    let project = Project::with_samples();
    let pipeline = project.path().join(SCB);
    let original = std::fs::read_to_string(&pipeline).unwrap();
    // The sample cube is 13 × 4 × 3 × 1 × 5 = 780 cells.
    let with_limit = |cells: u64| {
        original.replace(
            "table = \"BE0101N1\"\n",
            &format!("table = \"BE0101N1\"\nmax_table_cells = {cells}\n"),
        )
    };
    std::fs::write(&pipeline, with_limit(779)).unwrap();
    let output = project.run(&["run", SCB]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "the table declares 780 cells, more than max_table_cells = 779 allows; if the table \
             really is that big, raise `max_table_cells` in [source]"
        ),
        "{}",
        text(&output)
    );
    assert!(
        !project
            .warehouse()
            .join("observations/pipeline=scb-folkmangd-barn")
            .exists()
    );

    std::fs::write(&pipeline, with_limit(780)).unwrap();
    let output = project.run(&["run", SCB]);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn a_bundle_of_many_datasets_each_declaring_a_huge_table_is_refused_without_reserving_them() {
    use std::os::unix::process::ExitStatusExt;

    let project = Project::with_samples();
    // 12 000 1.x bundle members, each declaring 100 million cells: about 1.2 MB. Reserving the
    // declared size per member (bounded by the file only) would ask for tens of gigabytes.
    let member = |i: usize| {
        format!(
            "\"d{i}\": {{\"dimension\": {{\"id\": [\"a\"], \"size\": [100000000], \
             \"a\": {{\"category\": {{\"index\": [\"x\"]}}}}}}, \"value\": []}}"
        )
    };
    let json = format!(
        "{{{}}}",
        (0..12_000).map(member).collect::<Vec<_>>().join(", ")
    );
    project.write("pipelines/samples/data/scb_folkmangd_barn.json", json);
    let output = run_in_address_space(&project, ADDRESS_SPACE_KIB, &["run", SCB]);
    assert!(!output.status.success(), "{}", text(&output));
    assert_eq!(output.status.signal(), None, "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("the bundle holds 12000 datasets (d0, d1, d2, d3, d4, d5, d6, d7, d8, d9 and 11990 more); request one table per file"),
        "{}",
        text(&output)
    );
}

#[test]
fn an_export_without_rows_commits_nothing_and_keeps_the_published_years() {
    let project = Project::with_samples();
    let first = project.run(&["run", LUPP]);
    assert!(first.status.success(), "{}", text(&first));
    let before = snapshot(&project);
    let data = project
        .path()
        .join("pipelines/samples/data/lupp_fritid.csv");
    // The export is Windows-1252: cut its bytes after the header line.
    let bytes = std::fs::read(&data).unwrap();
    let header_end = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(&data, &bytes[..header_end]).unwrap();
    let output = project.run(&["run", LUPP]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(
            "the source gave no rows to write (0 read); nothing was committed and the warehouse \
             keeps the last commit"
        ),
        "{}",
        text(&output)
    );
    assert_eq!(snapshot(&project), before);
}
