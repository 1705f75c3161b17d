//! `indikator inspect`: what an operator looks at before writing a pipeline.
//!
//! Owns: choosing a decoder for a file and summarising the decoded table (dimensions and sizes,
//! cells, non-null cells, raw status markers) as text or one JSON object.
//! Must not: map, validate or write anything.

pub mod kolada;
pub mod remote;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::types::Int32Type;
use arrow_array::{Array, DictionaryArray, StringArray};
use serde_json::json;

use crate::formats::csv::{CsvOptions, encoding_for};
use crate::formats::px::PxOptions;
use crate::formats::xlsx::{SheetChoice, XlsxOptions};
use crate::formats::{CellStatus, DecodeError, DecodeLimits, Format, SourceTable};

/// A format chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatChoice {
    Jsonstat,
    Csv,
    Px,
    Xlsx,
}

impl FormatChoice {
    /// The name `inspect` shows.
    fn name(self) -> &'static str {
        match self {
            FormatChoice::Jsonstat => "json-stat",
            FormatChoice::Csv => "csv",
            FormatChoice::Px => "px",
            FormatChoice::Xlsx => "xlsx",
        }
    }
}

/// Decoder choices of `inspect` (all optional).
#[derive(Debug, Default)]
pub struct InspectOptions {
    pub format: Option<FormatChoice>,
    pub delimiter: Option<char>,
    pub encoding: Option<String>,
    /// The language of a PX file.
    pub lang: Option<String>,
    /// XLSX: a sheet name, or digits for its 1-based number.
    pub sheet: Option<String>,
    /// XLSX: the 1-based row that names the columns.
    pub header_row: Option<usize>,
}

/// Errors of `inspect`; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot tell the format of {}; give --format jsonstat, csv, px or xlsx", .0.display())]
    UnknownFormat(PathBuf),
    #[error("`{0}` is not an encoding; use utf-8, windows-1252 or iso-8859-1")]
    Encoding(String),
    #[error("the delimiter must be one ASCII character")]
    Delimiter,
    #[error("--lang is for a PX file or a PxWebApi 2.0 URL; {} is neither", .0.display())]
    Lang(PathBuf),
    #[error("--{0} 0: sheets and rows are numbered from 1")]
    Zero(&'static str),
    #[error("--sheet and --header-row are for an xlsx file; give --format xlsx if the file is one")]
    NotXlsx,
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// One dimension (cube) or column (rows) and how many distinct values it has.
#[derive(Debug, Clone, PartialEq)]
pub struct DimensionSummary {
    pub id: String,
    pub size: usize,
    /// The first few codes, for a glance.
    pub first: Vec<String>,
}

/// What `inspect` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub file: String,
    pub format: &'static str,
    pub dimensions: Vec<DimensionSummary>,
    /// Cells of a cube, rows of a CSV or XLSX sheet.
    pub cells: u64,
    /// Cells whose source value is a number (before markers are mapped; for PX, cells whose
    /// DATA token is a number); for CSV and XLSX, rows with no empty field.
    pub non_null: u64,
    /// Raw status markers and how many cells carry each.
    pub status_counts: BTreeMap<String, u64>,
}

/// How many codes of each dimension the text output shows.
const FIRST_CODES: usize = 5;

/// Decodes `path` and summarises it.
pub fn inspect(path: &Path, options: &InspectOptions) -> Result<Inspection, InspectError> {
    let bytes = std::fs::read(path).map_err(|source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let choice = match options.format {
        Some(choice) => choice,
        None => match path.extension().and_then(|e| e.to_str()) {
            Some("json") => FormatChoice::Jsonstat,
            Some("csv") | Some("txt") => FormatChoice::Csv,
            Some("px") | Some("PX") => FormatChoice::Px,
            Some("xlsx") => FormatChoice::Xlsx,
            _ => return Err(InspectError::UnknownFormat(path.to_path_buf())),
        },
    };
    if options.lang.is_some() && choice != FormatChoice::Px {
        return Err(InspectError::Lang(path.to_path_buf()));
    }
    let xlsx_only = options.sheet.is_some() || options.header_row.is_some();
    if xlsx_only && choice != FormatChoice::Xlsx {
        return Err(InspectError::NotXlsx);
    }
    let format = match choice {
        FormatChoice::Jsonstat => Format::Jsonstat,
        FormatChoice::Csv => {
            let mut csv = CsvOptions::default();
            if let Some(label) = &options.encoding {
                csv.encoding =
                    encoding_for(label).ok_or_else(|| InspectError::Encoding(label.clone()))?;
            }
            if let Some(delimiter) = options.delimiter {
                csv.delimiter = u8::try_from(delimiter)
                    .ok()
                    .filter(u8::is_ascii)
                    .ok_or(InspectError::Delimiter)?;
            }
            Format::Csv(csv)
        }
        // The file says its own encoding.
        FormatChoice::Px => Format::Px(PxOptions {
            lang: options.lang.clone(),
        }),
        FormatChoice::Xlsx => Format::Xlsx(XlsxOptions {
            sheet: sheet_choice(options.sheet.as_deref())?,
            header_row: match options.header_row {
                Some(0) => return Err(InspectError::Zero("header-row")),
                row => row,
            },
        }),
    };
    let origin = path.display().to_string();
    // `inspect` is for looking at a file before a pipeline exists, so no pipeline's limits apply.
    let table = format.decode(&bytes, &origin, &DecodeLimits::default())?;
    Ok(summarise(&table, origin, choice))
}

/// `--sheet`: digits are a 1-based number (as `sheet = 2` in a pipeline), anything else a name.
fn sheet_choice(sheet: Option<&str>) -> Result<SheetChoice, InspectError> {
    Ok(match sheet {
        None => SheetChoice::First,
        Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            match text.parse::<usize>() {
                Ok(0) => return Err(InspectError::Zero("sheet")),
                Ok(n) => SheetChoice::Index(n),
                // More digits than a usize holds: no workbook has that many sheets.
                Err(_) => SheetChoice::Index(usize::MAX),
            }
        }
        Some(name) => SheetChoice::Name(name.to_owned()),
    })
}

fn summarise(table: &SourceTable, file: String, choice: FormatChoice) -> Inspection {
    match table.cube() {
        Some(cube) => {
            let mut status_counts = BTreeMap::new();
            match &cube.status {
                CellStatus::None => {}
                CellStatus::All(marker) => {
                    status_counts.insert(marker.clone(), cube.values.len() as u64);
                }
                CellStatus::Sparse { markers, cells } => {
                    for &(_, m) in cells {
                        *status_counts
                            .entry(markers[m as usize].clone())
                            .or_default() += 1;
                    }
                }
            }
            Inspection {
                file,
                format: choice.name(),
                dimensions: cube
                    .dimensions
                    .iter()
                    .map(|d| DimensionSummary {
                        id: d.id.clone(),
                        size: d.codes.len(),
                        first: d.codes.iter().take(FIRST_CODES).cloned().collect(),
                    })
                    .collect(),
                cells: cube.values.len() as u64,
                non_null: (cube.values.len() - cube.values.null_count()) as u64,
                status_counts,
            }
        }
        None => {
            let chunk = table.all();
            let mut dimensions = Vec::new();
            let mut empty = vec![false; chunk.batch.num_rows()];
            for (field, column) in chunk
                .batch
                .schema()
                .fields()
                .iter()
                .zip(chunk.batch.columns())
            {
                let Some(dictionary) = column.as_any().downcast_ref::<DictionaryArray<Int32Type>>()
                else {
                    continue;
                };
                let values = dictionary
                    .values()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("text columns are dictionaries of strings");
                for (row, key) in dictionary.keys().iter().enumerate() {
                    empty[row] |= key.is_none_or(|k| values.value(k as usize).is_empty());
                }
                dimensions.push(DimensionSummary {
                    id: field.name().clone(),
                    size: values.len(),
                    first: values
                        .iter()
                        .take(FIRST_CODES)
                        .map(|v| v.unwrap_or("").to_string())
                        .collect(),
                });
            }
            Inspection {
                file,
                format: choice.name(),
                dimensions,
                cells: chunk.batch.num_rows() as u64,
                non_null: empty.iter().filter(|e| !**e).count() as u64,
                status_counts: BTreeMap::new(),
            }
        }
    }
}

impl Inspection {
    /// The `--json` form: `dimensions` [{id, size}], `cells`, `non_null`, `status_counts`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "file": self.file,
            "format": self.format,
            "dimensions": self.dimensions.iter().map(|d| json!({"id": d.id, "size": d.size})).collect::<Vec<_>>(),
            "cells": self.cells,
            "non_null": self.non_null,
            "status_counts": self.status_counts,
        })
    }
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} ({})", self.file, self.format)?;
        let width = self
            .dimensions
            .iter()
            .map(|d| d.id.len())
            .max()
            .unwrap_or(0);
        for d in &self.dimensions {
            let more = if d.size > d.first.len() { ", …" } else { "" };
            writeln!(
                f,
                "  {:<width$}  {:>6}  {}{more}",
                d.id,
                d.size,
                d.first.join(", ")
            )?;
        }
        writeln!(f, "cells: {}, non-null: {}", self.cells, self.non_null)?;
        if self.status_counts.is_empty() {
            writeln!(f, "status markers: none")
        } else {
            let counts: Vec<String> = self
                .status_counts
                .iter()
                .map(|(marker, n)| format!("`{marker}` {n}"))
                .collect();
            writeln!(f, "status markers: {}", counts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CUBE: &str = r#"{"version":"2.0","class":"dataset","id":["Region","Tid"],"size":[2,3],
        "dimension":{"Region":{"category":{"index":["00","0180"]}},"Tid":{"category":{"index":["2022","2023","2024"]}}},
        "value":[1,2,null,4,null,6],"status":{"2":"..","4":"."}}"#;

    #[test]
    fn a_cube_shows_dimensions_cells_and_markers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        std::fs::write(&path, CUBE).unwrap();
        let mut report = inspect(&path, &InspectOptions::default()).unwrap();
        report.file = "t.json".into();
        insta::assert_snapshot!(report, @r"
        t.json (json-stat)
          Region       2  00, 0180
          Tid          3  2022, 2023, 2024
        cells: 6, non-null: 4
        status markers: `.` 1, `..` 1
        ");
        insta::assert_snapshot!(report.to_json(), @r#"{"cells":6,"dimensions":[{"id":"Region","size":2},{"id":"Tid","size":3}],"file":"t.json","format":"json-stat","non_null":4,"status_counts":{".":1,"..":1}}"#);
    }

    #[test]
    fn a_sheet_of_a_workbook_shows_its_columns_and_rows() {
        let mut book = rust_xlsxwriter::Workbook::new();
        book.add_worksheet().write_string(0, 0, "tom").unwrap();
        let sheet = book.add_worksheet();
        sheet.set_name("Data").unwrap();
        for (row, code) in ["kommun", "0114", "0180"].into_iter().enumerate() {
            sheet.write_string(row as u32, 0, code).unwrap();
        }
        sheet.write_string(0, 1, "andel").unwrap();
        sheet.write_number(1, 1, 12.0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.xlsx");
        std::fs::write(&path, book.save_to_buffer().unwrap()).unwrap();
        let options = |sheet: &str| InspectOptions {
            sheet: Some(sheet.into()),
            ..InspectOptions::default()
        };
        let mut report = inspect(&path, &options("Data")).unwrap();
        report.file = "t.xlsx".into();
        // The empty cell B3 makes row 3 one with an empty field.
        insta::assert_snapshot!(report, @r"
        t.xlsx (xlsx)
          kommun       2  0114, 0180
          andel        2  12, 
        cells: 2, non-null: 1
        status markers: none
        ");
        let mut by_number = inspect(&path, &options("2")).unwrap();
        by_number.file = "t.xlsx".into();
        assert_eq!(by_number, report);
        insta::assert_snapshot!(inspect(&path, &options("0")).unwrap_err(), @"--sheet 0: sheets and rows are numbered from 1");
        let below = InspectOptions {
            header_row: Some(2),
            ..options("Data")
        };
        let mut report = inspect(&path, &below).unwrap();
        report.file = "t.xlsx".into();
        assert_eq!(report.dimensions[0].id, "0114");
        assert_eq!(report.cells, 1);
        let csv = InspectOptions {
            format: Some(FormatChoice::Csv),
            ..options("Data")
        };
        insta::assert_snapshot!(inspect(&path, &csv).unwrap_err(), @"--sheet and --header-row are for an xlsx file; give --format xlsx if the file is one");
    }

    #[test]
    fn a_px_file_is_shown_like_a_cube_counting_numbers_as_non_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.px");
        let px = "STUB=\"region\";\nHEADING=\"år\";\nVALUES(\"region\")=\"Riket\";\n\
                  CODES(\"region\")=\"00\";\nVALUES(\"år\")=\"2022\",\"2023\",\"2024\";\n\
                  DATA=\n1 \"-\" \"..\";";
        std::fs::write(&path, px).unwrap();
        let mut report = inspect(&path, &InspectOptions::default()).unwrap();
        report.file = "t.px".into();
        insta::assert_snapshot!(report, @r"
        t.px (px)
          region       1  00
          år           3  2022, 2023, 2024
        cells: 3, non-null: 1
        status markers: `DATASYMBOL2` 1, `DATASYMBOLNIL` 1
        ");
        let options = InspectOptions {
            lang: Some("en".into()),
            ..InspectOptions::default()
        };
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "a\n1\n").unwrap();
        let err = inspect(&csv, &options).unwrap_err().to_string();
        assert!(
            err.starts_with("--lang is for a PX file or a PxWebApi 2.0 URL"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_extension_asks_for_the_format() {
        let err = inspect(Path::new("table.sav"), &InspectOptions::default()).unwrap_err();
        insta::assert_snapshot!(err, @"cannot read table.sav");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.sav");
        std::fs::write(&path, "x").unwrap();
        let err = inspect(&path, &InspectOptions::default()).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("give --format jsonstat, csv, px or xlsx"),
            "{err}"
        );
    }
}
