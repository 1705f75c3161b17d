//! XLSX sources through the binary: a `kind = "file"`, `format = "xlsx"` pipeline on a sheet
//! made here (merged area cells, a blank row, area codes stored as text), and `inspect --sheet`.

use rust_xlsxwriter::{Format, Workbook};

use crate::util::{Project, read_parquet, strings, text};

/// A workbook whose second sheet, `Andel`, holds a survey table under a title: kommun codes as
/// text (`0114`), each merged over its two years, and a blank row between the municipalities.
fn survey() -> Vec<u8> {
    let mut book = Workbook::new();
    book.add_worksheet()
        .set_name("Om")
        .unwrap()
        .write_string(0, 0, "Exempeldata")
        .unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Andel").unwrap();
    sheet.write_string(0, 0, "Andel trygga, procent").unwrap();
    for (column, name) in ["kommun", "år", "andel"].into_iter().enumerate() {
        sheet.write_string(2, column as u16, name).unwrap();
    }
    // Rows 4–5 are 0114, row 6 is blank, rows 7–8 are 0180.
    for (first, code) in [(3, "0114"), (6, "0180")] {
        sheet
            .merge_range(first, 0, first + 1, 0, code, &Format::new())
            .unwrap();
        for (row, (year, share)) in [(2023.0, 61.5), (2024.0, 63.0)].into_iter().enumerate() {
            let row = first + row as u32;
            sheet.write_number(row, 1, year).unwrap();
            sheet.write_number(row, 2, share).unwrap();
        }
    }
    book.save_to_buffer().unwrap()
}

const PIPELINE: &str = r#"id = "enkat-xlsx"
[source]
kind = "file"
path = "data/enkat.xlsx"
format = "xlsx"
sheet = "Andel"
producer = "enkat"
[map]
indicator = "enkat_trygg_andel"
area = "kommun"
period = { column = "år", kind = "year" }
value = "andel"
unit = "percent"
"#;

#[test]
fn an_xlsx_pipeline_writes_every_row_with_area_codes_kept_as_text() {
    let project = Project::with_samples();
    project.write("pipelines/data/enkat.xlsx", survey());
    project.write("pipelines/enkat.toml", PIPELINE);
    let output = project.run(&["run", "pipelines/enkat.toml"]);
    assert!(output.status.success(), "{}", text(&output));

    let mut rows = Vec::new();
    for year in ["2023", "2024"] {
        let file = project.warehouse().join(format!(
            "observations/pipeline=enkat-xlsx/year={year}/part-00000.parquet"
        ));
        let batches = read_parquet(&file);
        // `value` is Float64 in the warehouse, hence `63.0`.
        let columns = ["area_code", "period", "value", "source"].map(|c| strings(&batches, c));
        for i in 0..columns[0].len() {
            rows.push(columns.each_ref().map(|c| c[i].clone()));
        }
    }
    rows.sort();
    assert_eq!(
        rows,
        [
            ["0114", "2023", "61.5", "enkat"],
            ["0114", "2024", "63.0", "enkat"],
            ["0180", "2023", "61.5", "enkat"],
            ["0180", "2024", "63.0", "enkat"],
        ]
    );
}

#[test]
fn a_missing_sheet_fails_the_run_naming_the_sheets_there_are() {
    let project = Project::with_samples();
    project.write("pipelines/data/enkat.xlsx", survey());
    project.write(
        "pipelines/enkat.toml",
        PIPELINE.replace("sheet = \"Andel\"", "sheet = 3"),
    );
    let output = project.run(&["run", "pipelines/enkat.toml"]);
    assert!(!output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(
            "enkat.xlsx: the workbook has no sheet number 3; its sheets are `Om`, `Andel`"
        ),
        "{}",
        text(&output)
    );
}

#[test]
fn inspect_json_shows_the_chosen_sheet() {
    let project = Project::empty();
    project.write("enkat.xlsx", survey());
    let output = project.run(&["inspect", "enkat.xlsx", "--json", "--sheet", "Andel"]);
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "file": "enkat.xlsx",
            "format": "xlsx",
            "dimensions": [
                {"id": "kommun", "size": 2}, {"id": "år", "size": 2}, {"id": "andel", "size": 2}
            ],
            "cells": 4,
            "non_null": 4,
            "status_counts": {},
        })
    );
    let by_number = project.run(&["inspect", "enkat.xlsx", "--json", "--sheet", "2"]);
    assert_eq!(by_number.stdout, output.stdout, "{}", text(&by_number));
}
