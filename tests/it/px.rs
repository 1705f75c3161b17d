//! PC-Axis files: every real `.px` under `../shared/fixtures/real` decodes to exactly the cells
//! its VALUES give, and the deliberately broken ones fail naming keyword and line; a
//! `format = "px"` pipeline runs through the binary, and `inspect` shows a PX file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, RecordBatch, TimestampMicrosecondArray};
use indikator::formats::px::{self, PxOptions};
use indikator::formats::{CellStatus, DecodeLimits, SourceTable};

use crate::util::{Project, read_parquet, real_dir, strings, text};

/// Every `.px` file under `dir`, by its path relative to `dir`, sorted.
fn px_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("px"))
            {
                let relative = path.strip_prefix(dir).unwrap();
                found.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    found.sort();
    found
}

fn decode(dir: &Path, name: &str) -> Result<SourceTable, px::PxError> {
    let bytes = std::fs::read(dir.join(name)).unwrap();
    px::decode(
        &bytes,
        name,
        &PxOptions::default(),
        &DecodeLimits::default(),
    )
}

fn is_broken(name: &str) -> bool {
    name.contains("error") || name.contains("missingData")
}

/// Independent of the decoder: the number of quoted values of each main-language
/// `VALUES("…")=` entry (values hold no `"`, so quotes / 2), sorted.
fn values_counts(text: &str) -> Vec<usize> {
    let mut counts = Vec::new();
    let mut open: Option<usize> = None;
    for line in text.lines() {
        if line.starts_with("VALUES(") {
            open = Some(0);
        }
        let Some(quotes) = open.as_mut() else {
            continue;
        };
        let values = line.split_once(")=").map_or(line, |(_, v)| v);
        *quotes += values.matches('"').count();
        if line.trim_end().ends_with(';') {
            counts.push(*quotes / 2);
            open = None;
        }
    }
    counts.sort_unstable();
    counts
}

/// Each cell's marker name.
fn markers(table: &SourceTable) -> Vec<Option<String>> {
    let cube = table.cube().unwrap();
    let mut out = vec![None; cube.values.len()];
    if let CellStatus::Sparse { markers, cells } = &cube.status {
        for &(cell, m) in cells {
            out[cell as usize] = Some(markers[m as usize].clone());
        }
    }
    out
}

fn marker_counts(table: &SourceTable) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for marker in markers(table).into_iter().flatten() {
        *counts.entry(marker).or_default() += 1;
    }
    counts
}

fn values(table: &SourceTable) -> Vec<Option<f64>> {
    table.cube().unwrap().values.iter().collect()
}

#[test]
fn every_real_px_file_decodes_to_the_cells_its_values_give() {
    let Some(dir) = real_dir() else { return };
    let files = px_files(&dir);
    assert!(files.len() >= 12, "{files:?}");
    for name in files.iter().filter(|n| !is_broken(n)) {
        let table = decode(&dir, name).unwrap_or_else(|e| panic!("{e}"));
        let cube = table.cube().unwrap();
        let mut sizes: Vec<usize> = cube.dimensions.iter().map(|d| d.codes.len()).collect();
        sizes.sort_unstable();
        let raw = String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned();
        let counts = values_counts(&raw);
        assert_eq!(sizes, counts, "{name}: dimension sizes");
        assert_eq!(
            cube.values.len(),
            counts.iter().product::<usize>(),
            "{name}: cells"
        );
    }
}

#[test]
fn broken_real_px_files_fail_naming_keyword_and_line() {
    let Some(dir) = real_dir() else { return };
    let errors: Vec<String> = px_files(&dir)
        .iter()
        .filter(|n| is_broken(n))
        .map(|name| {
            decode(&dir, name)
                .expect_err("a broken file fails")
                .to_string()
        })
        .collect();
    insta::assert_snapshot!(errors.join("\n"), @r#"
    PxWeb/BE0101F1errorTimeval.px: line 23, `TIMEVAL` lists 2 values but `VALUES("period")` has 1; they must match one to one: fix the file or export the table again
    PxWeb/BE0101F1errorValues.px: line 18, `VALUES`: expected `,` or `;` after a value (a value cannot hold a `"` of its own), found `w`; the file is damaged or not PC-Axis: fix that line or export the table again
    PxWeb/BE0101F1missingData.px: the file ends at line 80 without `DATA=`; the file is truncated or not a PX file: export the table again
    "#);
}

#[test]
fn real_datasymbols_file_keeps_each_dot_count_and_is_windows_1252() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PxWeb/BE0101F1datasymbols.px").unwrap();
    let (values, markers) = (values(&table), markers(&table));
    // DATA: `456 "." 613 ".." … 924 "......" 14 38 … 20 23;`
    assert_eq!(
        (values[0], values[2], values[23]),
        (Some(456.0), Some(613.0), Some(23.0))
    );
    assert_eq!(markers[1].as_deref(), Some("DATASYMBOL1"));
    assert_eq!(markers[3].as_deref(), Some("DATASYMBOL2"));
    assert_eq!(markers[11].as_deref(), Some("DATASYMBOL6"));
    assert_eq!(
        table.meta.encoding.as_deref(),
        Some("windows-1252 (CHARSET=ANSI)")
    );
    let region = &table.cube().unwrap().dimensions[0];
    assert_eq!(region.labels[2], "0114 Upplands Väsby");
}

#[test]
fn real_nil_file_marks_dashes_nil_though_its_nil_text_is_a_word() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PxWeb/BE0101F1nildotsymbols.px").unwrap();
    let markers = markers(&table);
    // DATA starts `"-" "." ".." "..."` then `0 0 0 0`; DATASYMBOLNIL="nothing".
    assert_eq!(markers[0].as_deref(), Some("DATASYMBOLNIL"));
    assert_eq!(markers[1].as_deref(), Some("DATASYMBOL1"));
    assert_eq!(values(&table)[4..8], [Some(0.0); 4]);
    assert_eq!(values(&table)[47], Some(35.0));
    assert_eq!(marker_counts(&table)["DATASYMBOLNIL"], 8);
}

#[test]
fn real_keys_file_expands_its_left_out_rows_as_zeros() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PxWeb/BE101ACEkeys.px").unwrap();
    let cube = table.cube().unwrap();
    let ids: Vec<&str> = cube.dimensions.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["marital status", "age", "period", "sex"]);
    let values = values(&table);
    // The first row is `"single","0-4",306443 290460 596903 …`; the file ends `… 19 20;`.
    assert_eq!(
        values[..3],
        [Some(306443.0), Some(290460.0), Some(596903.0)]
    );
    assert_eq!(values.last(), Some(&Some(20.0)));
    let row_cells = cube.dimensions[2].codes.len() * cube.dimensions[3].codes.len();
    let zero_rows = values
        .chunks(row_cells)
        .filter(|row| row.iter().all(|v| *v == Some(0.0)))
        .count();
    let bytes = std::fs::read(dir.join("PxWeb/BE101ACEkeys.px")).unwrap();
    let written_rows = bytes
        .split(|&b| b == b'\n')
        .skip_while(|line| !line.starts_with(b"DATA="))
        .filter(|line| line.starts_with(b"\""))
        .count();
    assert_eq!((values.len() / row_cells, written_rows), (84, 78));
    assert_eq!(zero_rows, 6);
}

#[test]
fn real_pxwebapi_files_read_swedish_with_their_markers() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PxWebApi/TAB001.px").unwrap();
    let cube = table.cube().unwrap();
    let ids: Vec<&str> = cube.dimensions.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["REGION", "SEX", "AGE", "ContentsCode", "TIME"]);
    assert_eq!(cube.dimensions[1].label.as_deref(), Some("kön"));
    assert_eq!(cube.dimensions[1].labels, ["Kvinnor", "Män", "Totalt"]);
    assert_eq!(
        marker_counts(&table),
        BTreeMap::from([("DATASYMBOL2".into(), 2259)])
    );
    // DATA starts `".." 4041797 4143737`.
    assert_eq!(
        values(&table)[..3],
        [None, Some(4041797.0), Some(4143737.0)]
    );
    assert_eq!(
        table.meta.encoding.as_deref(),
        Some("iso-8859-1 (declared)")
    );
    assert_eq!(table.meta.updated.as_deref(), Some("20230525 15:42"));

    let table = decode(&dir, "PxWebApi/TAB004.px").unwrap();
    assert_eq!(values(&table)[0], Some(296860.0));
    assert_eq!(
        markers(&table).last().unwrap().as_deref(),
        Some("DATASYMBOL2")
    );
}

#[test]
fn real_utf8_files_with_a_wrong_codepage_are_read_as_utf8() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PxWebApi/tab4_fewcells.px").unwrap();
    assert_eq!(values(&table), [Some(445.0)]);
    assert_eq!(
        table.meta.encoding.as_deref(),
        Some("utf-8 (not the declared iso-8859-1)")
    );
    let sector = &table.cube().unwrap().dimensions[0];
    assert_eq!(
        (sector.id.as_str(), sector.label.as_deref()),
        ("SECTOR", Some("sektor"))
    );
    assert_eq!(
        sector.labels,
        ["LÖSNINGSMEDEL OCH ÖVRIG PRODUKTANVÄNDNING, TOTALT"]
    );

    let table = decode(&dir, "PCAxis.Serializers/WierdTimeWithOneValue.px").unwrap();
    assert_eq!(
        table.meta.encoding.as_deref(),
        Some("utf-8 (not the declared iso-8859-15)")
    );
    let year = &table.cube().unwrap().dimensions[2];
    assert_eq!(
        (year.codes[0].as_str(), year.labels[0].as_str()),
        ("2023", "2023*")
    );
    assert_eq!(values(&table), [Some(1370.0)]);
    assert_eq!(markers(&table), [Some("PRELIMINARY".to_string())]);
    assert_eq!(table.cube().unwrap().dimensions[0].labels, ["HELA LANDET"]);
}

#[test]
fn real_serializer_files_keep_decimals_negatives_and_non_ascii_codes() {
    let Some(dir) = real_dir() else { return };
    let table = decode(&dir, "PCAxis.Serializers/BE0101N1.px").unwrap();
    // DATA starts `1054 1026 -1 -28` and ends `1004 1049 18 45`.
    assert_eq!(
        values(&table)[..4],
        [Some(1054.0), Some(1026.0), Some(-1.0), Some(-28.0)]
    );
    assert_eq!(values(&table)[63], Some(45.0));
    assert_eq!(table.meta.updated.as_deref(), Some("20220222 08:00"));

    let table = decode(&dir, "PCAxis.Serializers/BE0101A1_with_notes.px").unwrap();
    assert_eq!(values(&table)[2], Some(52.43));
    assert_eq!(values(&table)[95], Some(54.92));
    assert_eq!(table.cube().unwrap().dimensions[1].codes[2], "ÄNKL");
    assert_eq!(
        table.meta.encoding.as_deref(),
        Some("windows-1252 (declared)")
    );
}

/// A small PX table of two municipalities × two years with a nil and a missing cell.
const TABLE: &str = "CHARSET=\"ANSI\";\nLANGUAGE=\"sv\";\nDECIMALS=0;\nTITLE=\"Test\";\n\
    STUB=\"region\";\nHEADING=\"år\";\nVARIABLECODE(\"region\")=\"Region\";\n\
    VALUES(\"region\")=\"Upplands Väsby\",\"Stockholm\";\nCODES(\"region\")=\"0114\",\"0180\";\n\
    VARIABLECODE(\"år\")=\"Tid\";\nVALUES(\"år\")=\"2022\",\"2023\";\n\
    TIMEVAL(\"år\")=TLIST(A1),\"2022\",\"2023\";\nDATASYMBOLNIL=\"-\";\n\
    LAST-UPDATED=\"20230525 15:42\";\n\
    DATA=\n5 \"-\"\n\"..\" 7;\n";

#[test]
fn a_px_pipeline_writes_nil_as_zero_and_dots_as_missing() {
    let project = Project::with_samples();
    project.write("pipelines/data/t.px", TABLE);
    project.write(
        "pipelines/px.toml",
        "id = \"px-test\"\n[source]\nkind = \"file\"\npath = \"data/t.px\"\nformat = \"px\"\n\
         lang = \"sv\"\n[map]\nindicator = \"px_test\"\narea = \"Region\"\n\
         period = { column = \"Tid\", kind = \"year\" }\nunit = \"count\"\n",
    );
    let output = project.run(&["run", "pipelines/px.toml"]);
    assert!(output.status.success(), "{}", text(&output));
    let dir = project.warehouse().join("observations/pipeline=px-test");
    let mut rows: Vec<(String, String, Option<f64>, String)> = Vec::new();
    let mut updated = Vec::new();
    for year in std::fs::read_dir(&dir).unwrap() {
        for file in std::fs::read_dir(year.unwrap().path()).unwrap() {
            let batches: Vec<RecordBatch> = read_parquet(&file.unwrap().path());
            for batch in &batches {
                let column = batch.column_by_name("source_updated").unwrap();
                let column = column
                    .as_any()
                    .downcast_ref::<TimestampMicrosecondArray>()
                    .unwrap();
                updated.extend(column.iter());
            }
            let (areas, periods, statuses) = (
                strings(&batches, "area_code"),
                strings(&batches, "period"),
                strings(&batches, "status"),
            );
            let values: Vec<Option<f64>> = batches
                .iter()
                .flat_map(|b| {
                    let v = b.column_by_name("value").unwrap();
                    let v = v.as_any().downcast_ref::<Float64Array>().unwrap();
                    (0..v.len())
                        .map(|i| v.is_valid(i).then(|| v.value(i)))
                        .collect::<Vec<_>>()
                })
                .collect();
            for i in 0..areas.len() {
                rows.push((
                    areas[i].clone(),
                    periods[i].clone(),
                    values[i],
                    statuses[i].clone(),
                ));
            }
        }
    }
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let row = |a: &str, p: &str, v: Option<f64>, s: &str| (a.into(), p.into(), v, s.into());
    assert_eq!(
        rows,
        [
            row("0114", "2022", Some(5.0), "ok"),
            row("0114", "2023", Some(0.0), "ok"),
            row("0180", "2022", None, "missing"),
            row("0180", "2023", Some(7.0), "ok"),
        ]
    );
    // LAST-UPDATED="20230525 15:42".
    let last_updated = chrono::DateTime::parse_from_rfc3339("2023-05-25T15:42:00Z").unwrap();
    assert_eq!(updated, [Some(last_updated.timestamp_micros()); 4]);
}

#[test]
fn inspect_shows_a_px_file_like_any_other() {
    let project = Project::empty();
    let path: PathBuf = project.write("t.px", TABLE);
    let output = project.run(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", text(&output));
    let mut json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["file"] = "t.px".into();
    let output = project.run(&["inspect", path.to_str().unwrap(), "--lang", "en"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`LANGUAGES`: the file has no language `en` (it has sv)"),
        "{stderr}"
    );
    insta::assert_snapshot!(json, @r#"{"cells":4,"dimensions":[{"id":"Region","size":2},{"id":"Tid","size":2}],"file":"t.px","format":"px","non_null":2,"status_counts":{"DATASYMBOL2":1,"DATASYMBOLNIL":1}}"#);
}
