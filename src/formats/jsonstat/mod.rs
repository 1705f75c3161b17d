//! JSON-stat: the bytes of a JSON-stat 2.0 dataset, or of a JSON-stat 1.x bundle holding one
//! dataset (PxWeb v1's `json-stat`), become a [`Cube`] inside a [`SourceTable`].
//!
//! Owns: reading `id`, `size`, `dimension` (categories in index order, labels), `value`, `status`,
//! `label` and `updated`, streaming from the bytes, and the checks that the cube is
//! whole (sizes match categories, one value per cell, indices in range).
//! Must not: fetch, map codes or status markers to our vocabulary, or read `role` (SCB sets no
//! `role.geo`; which dimension is the region is configuration), `note`, `link` or `extension`.
//!
//! Decisions, each with a test below:
//! - **Speed.** A top-level `value` array is parsed by hand straight into a `Vec<f64>` plus a
//!   validity bitmap (module `fast`; numbers are correctly rounded); every other member, and any
//!   document the fast path finds unusual, goes through serde seeds over the byte slice, which
//!   stream `value` the same way and `status` into `(cell, marker)` pairs with interned markers.
//!   Nothing goes through `serde_json::Value`. Errors always come from the serde pass, so they
//!   carry serde_json's line and column.
//! - **Key order** comes from our own map visitors, which see keys as written: a `category`
//!   without `index` takes its codes in the order of its `label` keys (`oecd.json`'s `concept`).
//!   serde_json's `preserve_order` feature is not needed.
//! - **String values.** A string in `value` that reads as a finite number (`"1.5"`, `" 42 "`) is
//!   that number. Any other string (`".."`, `"A1B1C1"` in json-stat.org's `order.json`) makes the
//!   cell null and becomes the cell's status marker, unless `status` gives that cell a marker of its
//!   own (the dedicated field wins; so a whole-table `status` string hides such markers). An empty
//!   string is a null without marker.
//! - **Status.** A string, or an array of length 1, applies to every cell; an array of another
//!   length has one entry per cell; an object is keyed by cell index. `null` and `""` mean no
//!   marker. An empty array means no markers at all.
//! - **Dimensions** are read in the order of `id`; entries of `dimension` that `id` does not name
//!   are ignored (Statistics Greenland keeps its eliminated `ContentsCode` there). `size` entries
//!   may be numeric strings (CSO). `version` and `class` may be missing.
//! - **1.x bundles**: a top-level object with no dataset keys of its own, whose object members are
//!   datasets with `id` and `size` inside `dimension`. Exactly one must be there.
//!   Eurostat's old web service wraps its per-cell markers as `status: {"value": [...],
//!   "category": {...}}`; that `value` array is read as a status array and `category` is ignored.
//! - **Metadata responses** (`value: []` with a non-empty cube) are an error of their own, as are
//!   a 2.0 `collection` or `bundle` and an RFC 7807 problem document (a numeric `status` or a
//!   `title` without dataset: what PxWeb v2 sends for "Too many cells selected").
//! - A leading UTF-8 byte order mark is skipped.
//!
//! The work is split by concern: `seeds.rs` streams the document through serde into the raw
//! shapes of `raw.rs`, `fast.rs` reads the common big file's `value` array by hand, and
//! `cube.rs` checks what was read and builds the cube. This file picks the dataset (the top
//! level or the one of a 1.x bundle) and owns the errors.

mod cube;
mod fast;
mod raw;
mod seeds;
#[cfg(test)]
mod testing;

use serde::de::DeserializeSeed;
use serde_json::error::Category;

use super::DecodeLimits;
use super::table::{SourceTable, TableError};
use cube::build;
use raw::{RawDataset, RawStatus};
use seeds::DatasetSeed;

/// Why a JSON-stat file could not be decoded. Every variant names the file or URL (`origin`).
#[derive(Debug, thiserror::Error)]
pub enum JsonStatError {
    #[error(
        "{origin}: the JSON ends early at line {line}, column {column}; the download was cut \
         off: fetch it again"
    )]
    Truncated {
        origin: String,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{origin}: not valid JSON at line {line}, column {column}; the file is truncated or not \
         JSON-stat: re-download it and check what the source returned"
    )]
    Syntax {
        origin: String,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{origin}: line {line}, column {column} does not fit a JSON-stat 2.0 dataset or a 1.x \
         bundle; check that the source returned JSON-stat"
    )]
    Structure {
        origin: String,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{origin}: class `{class}` is not supported; only a `dataset` (or a 1.x bundle of one) \
         can be decoded: request one table per file"
    )]
    UnsupportedClass { origin: String, class: String },
    #[error(
        "{origin}: the source answered with an error ({detail}) instead of a dataset; fix the \
         request and fetch again"
    )]
    ErrorResponse { origin: String, detail: String },
    #[error(
        "{origin}: no JSON-stat dataset found (no `dimension`, `id`, `size` or `value`, and no \
         1.x bundle entry holding them); check what the source returned"
    )]
    NoDataset { origin: String },
    #[error(
        "{origin}: the bundle holds {} datasets ({}{}); request one table per file",
        .names.len(),
        .names.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
        if .names.len() > 10 { format!(" and {} more", .names.len() - 10) } else { String::new() }
    )]
    SeveralDatasets { origin: String, names: Vec<String> },
    #[error("{origin}: the dataset has no `{field}`; the file is damaged or not JSON-stat")]
    Missing { origin: String, field: &'static str },
    #[error(
        "{origin}: `id` names {ids} dimensions but `size` has {sizes} entries; the file is damaged"
    )]
    IdSizeLength {
        origin: String,
        ids: usize,
        sizes: usize,
    },
    #[error(
        "{origin}: `size` of dimension `{dimension}` is `{size}`, not a count; the file is damaged"
    )]
    BadSize {
        origin: String,
        dimension: String,
        size: String,
    },
    #[error(
        "{origin}: dimension `{dimension}` is listed in `id` but missing from `dimension`; the \
         file is damaged"
    )]
    MissingDimension { origin: String, dimension: String },
    #[error(
        "{origin}: dimension `{dimension}` has neither `category.index` nor `category.label`; the \
         file is damaged"
    )]
    NoCategories { origin: String, dimension: String },
    #[error(
        "{origin}: dimension `{dimension}` has size {size} but {categories} categories; the file \
         is damaged or was edited"
    )]
    SizeMismatch {
        origin: String,
        dimension: String,
        size: u64,
        categories: usize,
    },
    #[error(
        "{origin}: dimension `{dimension}` puts category `{code}` at position {position}, outside \
         0..{categories}; the file is damaged"
    )]
    IndexPosition {
        origin: String,
        dimension: String,
        code: String,
        position: u64,
        categories: usize,
    },
    #[error(
        "{origin}: dimension `{dimension}` puts two categories at position {position}; the file \
         is damaged"
    )]
    DuplicatePosition {
        origin: String,
        dimension: String,
        position: u64,
    },
    #[error(
        "{origin}: the table declares {} cells, more than max_table_cells = {limit} allows; \
         if the table really is that big, raise `max_table_cells` in [source]",
        .cells.map_or("over 2^128".to_string(), |cells| cells.to_string())
    )]
    TooManyCells {
        origin: String,
        /// The product of `size`; `None` when it does not even fit a u128.
        cells: Option<u128>,
        limit: u64,
    },
    #[error(
        "{origin}: the dataset has no values but {cells} cells (a metadata response?); fetch the \
         data, not the metadata"
    )]
    NoValues { origin: String, cells: u64 },
    #[error(
        "{origin}: `value` has {values} entries but the sizes give {cells} cells; the file is \
         truncated or its `size` is wrong"
    )]
    ValueCount {
        origin: String,
        values: usize,
        cells: u64,
    },
    #[error(
        "{origin}: `status` has {statuses} entries but the sizes give {cells} cells (expected 1 or \
         {cells}); the file is damaged"
    )]
    StatusCount {
        origin: String,
        statuses: u64,
        cells: u64,
    },
    #[error(
        "{origin}: `{field}` names cell {cell} but the cube has {cells} cells; the file is damaged \
         or its `size` is wrong"
    )]
    CellOutOfRange {
        origin: String,
        field: &'static str,
        cell: u64,
        cells: u64,
    },
    #[error("{origin}: the decoded cube is not a valid table")]
    Table {
        origin: String,
        #[source]
        source: TableError,
    },
}

/// Decodes a JSON-stat 2.0 dataset, or a JSON-stat 1.x bundle holding one dataset, into a cube.
/// `origin` names the file or URL in errors.
///
/// A cube whose product of `size` exceeds `limits.max_table_cells` is refused before its dense
/// value column is allocated; until then everything read is sized by the bytes themselves (a
/// sparse `value` object holds only the cells it names).
///
/// The cube's dimensions follow `id`, its cells are in row-major order (the last dimension varies
/// fastest), and `label`/`updated` become the [`SourceMeta`]. See the module docs for how string
/// values, status forms and missing indices are read.
pub fn decode(
    bytes: &[u8],
    origin: &str,
    limits: &DecodeLimits,
) -> Result<SourceTable, JsonStatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let top = match fast::read(bytes) {
        Some(top) => top,
        None => read(bytes).map_err(|source| json_error(origin, source))?,
    };
    let dataset = pick(top, origin)?;
    build(dataset, origin, limits)
}

/// No value takes fewer than two bytes (`0,`): a bound for preallocating `value`.
fn max_values(bytes: &[u8]) -> usize {
    bytes.len() / 2 + 1
}

/// The whole document through serde: every shape, and errors with their line and column.
fn read(bytes: &[u8]) -> Result<RawDataset, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = DatasetSeed {
        top: true,
        max_values: max_values(bytes),
    };
    let top = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(top)
}

fn json_error(origin: &str, source: serde_json::Error) -> JsonStatError {
    // serde_json counts columns from 1 but says 0 for an error before the first byte of a line.
    let (origin, line, column) = (origin.to_string(), source.line(), source.column().max(1));
    match source.classify() {
        Category::Eof => JsonStatError::Truncated {
            origin,
            line,
            column,
            source,
        },
        Category::Syntax | Category::Io => JsonStatError::Syntax {
            origin,
            line,
            column,
            source,
        },
        Category::Data => JsonStatError::Structure {
            origin,
            line,
            column,
            source,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Datasets and 1.x bundles.

/// The dataset the file holds: the top level itself, or the one dataset of a 1.x bundle.
fn pick(top: RawDataset, origin: &str) -> Result<RawDataset, JsonStatError> {
    check_class(&top, origin)?;
    let http = match top.status {
        Some(RawStatus::Http(code)) => Some(code),
        _ => None,
    };
    if http.is_some() || (top.title.is_some() && !top.is_dataset()) {
        let detail = match (http, &top.title) {
            (Some(code), Some(title)) => format!("{code} \"{title}\""),
            (Some(code), None) => code.to_string(),
            (None, title) => format!("\"{}\"", title.as_deref().unwrap_or_default()),
        };
        return Err(JsonStatError::ErrorResponse {
            origin: origin.to_string(),
            detail,
        });
    }
    if top.is_dataset() {
        return Ok(top);
    }
    let mut datasets: Vec<(String, RawDataset)> = top
        .nested
        .into_iter()
        .filter(|(_, dataset)| dataset.is_dataset())
        .collect();
    match datasets.len() {
        0 => Err(JsonStatError::NoDataset {
            origin: origin.to_string(),
        }),
        1 => {
            let (_, dataset) = datasets.pop().expect("one dataset");
            check_class(&dataset, origin)?;
            Ok(dataset)
        }
        _ => Err(JsonStatError::SeveralDatasets {
            origin: origin.to_string(),
            names: datasets.into_iter().map(|(name, _)| name).collect(),
        }),
    }
}

fn check_class(raw: &RawDataset, origin: &str) -> Result<(), JsonStatError> {
    match raw.class.as_deref() {
        None | Some("dataset") => Ok(()),
        Some(class) => Err(JsonStatError::UnsupportedClass {
            origin: origin.to_string(),
            class: class.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::CellStatus;
    use crate::formats::jsonstat::testing::*;
    use proptest::strategy::Strategy;

    #[test]
    fn one_dataset_bundle_of_json_stat_1_decodes() {
        let table = decoded(
            r#"{"dataset": {
                "label": "Folkmängd", "source": "SCB", "updated": "2024-02-21T08:00:00Z",
                "dimension": {
                  "Kon": {"label": "kön", "category": {"index": {"1": 0, "2": 1},
                          "label": {"1": "män", "2": "kvinnor"}}},
                  "Tid": {"label": "år", "category": {"index": {"2023": 0}}},
                  "id": ["Kon", "Tid"], "size": [2, 1],
                  "role": {"time": ["Tid"]}
                },
                "value": [10, 11], "status": {"1": "p"}}}"#,
        );
        assert_eq!(values(&table), [Some(10.0), Some(11.0)]);
        assert_eq!(markers(&table), [None, Some("p".into())]);
        assert_eq!(table.meta.label.as_deref(), Some("Folkmängd"));
        assert_eq!(codes(&table, 0), ["1", "2"]);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let json = format!("\u{feff}{}", two_by_three("[1, 2, 3, 4, 5, 6]", ""));
        assert_eq!(decoded(&json).num_rows(), 6);
    }

    #[test]
    fn truncated_file_says_fetch_again() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "value": [1, 2"#), @"test.json: the JSON ends early at line 1, column 28; the download was cut off: fetch it again: EOF while parsing a list at line 1 column 28");
    }

    #[test]
    fn invalid_json_names_line_and_column() {
        insta::assert_snapshot!(error("{\n  \"id\": [\"k\"],\n  // comment\n}"), @"test.json: not valid JSON at line 3, column 3; the file is truncated or not JSON-stat: re-download it and check what the source returned: key must be a string at line 3 column 3");
    }

    #[test]
    fn a_top_level_array_is_not_json_stat() {
        insta::assert_snapshot!(error("[1, 2]"), @"test.json: line 1, column 1 does not fit a JSON-stat 2.0 dataset or a 1.x bundle; check that the source returned JSON-stat: invalid type: sequence, expected a JSON-stat dataset or 1.x bundle (an object) at line 1 column 0");
    }

    #[test]
    fn bundle_with_two_datasets_names_them() {
        let one = two_by_three("[1, 2, 3, 4, 5, 6]", "");
        let one = one.replace(r#""version": "2.0", "class": "dataset", "#, "");
        insta::assert_snapshot!(error(&format!(r#"{{"befolkning": {one}, "arbete": {one}}}"#)), @"test.json: the bundle holds 2 datasets (befolkning, arbete); request one table per file");
    }

    #[test]
    fn collection_is_refused() {
        insta::assert_snapshot!(error(r#"{"version": "2.0", "class": "collection", "link": {"item": []}}"#), @"test.json: class `collection` is not supported; only a `dataset` (or a 1.x bundle of one) can be decoded: request one table per file");
    }

    #[test]
    fn problem_document_is_reported_as_the_error_the_source_sent() {
        insta::assert_snapshot!(error(r#"{"type": "Parameter error", "title": "Too many cells selected", "status": 400}"#), @r#"test.json: the source answered with an error (400 "Too many cells selected") instead of a dataset; fix the request and fetch again"#);
    }

    #[test]
    fn object_without_any_dataset_is_refused() {
        insta::assert_snapshot!(error(r#"{"hello": "world", "nested": {"x": 1}}"#), @"test.json: no JSON-stat dataset found (no `dimension`, `id`, `size` or `value`, and no 1.x bundle entry holding them); check what the source returned");
    }

    // Real files, read in place; every test skips with a reason when the folder is absent.

    use crate::fixtures::real;

    fn real_table(path: &str) -> Option<SourceTable> {
        let bytes = real(path)?;
        Some(
            decode(&bytes, path, &DecodeLimits::default())
                .unwrap_or_else(|err| panic!("{}", error_chain(&err))),
        )
    }

    fn real_error(path: &str) -> Option<String> {
        let bytes = real(path)?;
        Some(error_chain(
            &decode(&bytes, path, &DecodeLimits::default()).unwrap_err(),
        ))
    }

    /// The cell at the given codes, one per dimension in `id` order.
    fn cell_at(table: &SourceTable, coordinate: &[&str]) -> usize {
        cube(table)
            .dimensions
            .iter()
            .zip(coordinate)
            .fold(0, |cell, (dimension, code)| {
                let k = dimension.codes.iter().position(|c| c == code).unwrap();
                cell * dimension.codes.len() + k
            })
    }

    fn assert_cells_are_the_product_of_sizes(table: &SourceTable) {
        let product: usize = cube(table)
            .dimensions
            .iter()
            .map(|d| d.codes.len())
            .product();
        assert_eq!(table.num_rows(), product);
    }

    #[test]
    fn real_order_json_keeps_its_string_values_as_markers_in_row_major_order() {
        let Some(table) = real_table("jsonstat.py/order.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 3 * 2 * 4);
        assert_cells_are_the_product_of_sizes(&table);
        assert!(values(&table).iter().all(Option::is_none));
        let markers = markers(&table);
        // Cell 11 is (A=2, B=1, C=4); the official sample misspells its text as "A1B1C4".
        assert_eq!(cell_at(&table, &["2", "1", "4"]), 11);
        assert_eq!(markers[11].as_deref(), Some("A1B1C4"));
        assert_eq!(
            markers[cell_at(&table, &["2", "2", "3"])].as_deref(),
            Some("A2B2C3")
        );
        assert_eq!(markers[23].as_deref(), Some("A3B2C4"));
    }

    #[test]
    fn real_canada_json_has_one_status_for_all_and_a_label_only_dimension() {
        let Some(table) = real_table("jsonstat.py/canada.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 120);
        assert_cells_are_the_product_of_sizes(&table);
        assert_eq!(cube(&table).status, CellStatus::All("a".into()));
        let country = &cube(&table).dimensions[0];
        assert_eq!(
            (country.codes.as_slice(), country.labels.as_slice()),
            (&["CA".to_string()][..], &["Canada".to_string()][..])
        );
        let cell = cell_at(&table, &["CA", "2012", "4", "PERCENT", "F"]);
        assert_eq!(cell, 11);
        assert_eq!(values(&table)[cell], Some(5.3));
        assert_eq!(table.meta.updated.as_deref(), Some("2012-09-27"));
    }

    #[test]
    fn real_oecd_json_reads_a_country_year_and_its_status() {
        let Some(table) = real_table("jsonstat.py/oecd.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 36 * 12);
        assert_cells_are_the_product_of_sizes(&table);
        assert_eq!(codes(&table, 0), ["UNR"]);
        let values = values(&table);
        let markers = markers(&table);
        let sweden = cell_at(&table, &["UNR", "SE", "2012"]);
        assert_eq!(values[sweden], Some(7.651519753));
        assert_eq!(markers[sweden], None);
        let australia = cell_at(&table, &["UNR", "AU", "2013"]);
        assert_eq!(australia, 10);
        assert_eq!(
            (values[australia], markers[australia].as_deref()),
            (Some(5.50415003), Some("e"))
        );
        assert_eq!(markers.iter().flatten().count(), 72);
    }

    #[test]
    fn real_hierarchy_json_with_a_sparse_value_object_is_all_null() {
        let Some(table) = real_table("jsonstat.py/hierarchy.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 132);
        assert!(values(&table).iter().all(Option::is_none));
        assert_eq!(codes(&table, 0)[..3], ["T", "1", "1.1"]);
        assert_eq!(cube(&table).dimensions[0].labels[0], "Total");
    }

    #[test]
    fn real_eurostat_bundle_decodes_with_its_wrapped_status() {
        let Some(table) = real_table("jsonstat.py/eurostat-name_gpd_c-geo_IT_FR.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 2 * 69);
        assert_cells_are_the_product_of_sizes(&table);
        let (values, markers) = (values(&table), markers(&table));
        let italy_1990 = cell_at(&table, &["EUR_HAB", "B1GM", "IT", "1990"]);
        assert_eq!(
            (values[italy_1990], markers[italy_1990].as_deref()),
            (Some(15800.0), None)
        );
        assert_eq!((values[0], markers[0].as_deref()), (None, Some(":")));
        assert_eq!(markers.iter().flatten().count(), 74);
    }

    #[test]
    fn real_scb_tab6471_reads_a_value_by_its_codes() {
        let Some(table) = real_table("pxwebpy/TAB6471_data.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 21 * 11 * 3 * 4);
        assert_cells_are_the_product_of_sizes(&table);
        let cell = cell_at(&table, &["25", "0-9", "2", "000007SF", "2026M04"]);
        assert_eq!(values(&table)[cell], Some(10451.0));
        assert_eq!(values(&table)[0], Some(245284.0));
        assert_eq!(cube(&table).dimensions[0].labels[20], "Norrbottens län");
        assert_eq!(cube(&table).status, CellStatus::None);
        assert_eq!(table.meta.updated.as_deref(), Some("2026-06-08T06:00:00Z"));
    }

    #[test]
    fn real_greenland_response_ignores_the_eliminated_contents_code() {
        let Some(table) = real_table("pxwebpy/response_gl.json") else {
            return;
        };
        let ids: Vec<&str> = cube(&table)
            .dimensions
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        assert_eq!(ids, ["HFU", "alder", "registrering", "aar"]);
        assert_eq!(table.num_rows(), 2 * 6 * 3 * 3);
        let (values, markers) = (values(&table), markers(&table));
        assert_eq!((values[0], values[1]), (Some(2.0), None));
        assert_eq!(markers[1].as_deref(), Some("-"));
        assert_eq!(markers.iter().flatten().count(), 11);
    }

    #[test]
    fn real_scb_v1_response_keeps_its_malformed_timestamp_as_written() {
        let Some(table) = real_table("pxwebpy/response_se.json") else {
            return;
        };
        assert_eq!(table.num_rows(), 9);
        assert_eq!(codes(&table, 0), ["1", "2", "1+2"]);
        let cell = cell_at(&table, &["1+2", "tot16+", "HE0110J8", "2022"]);
        assert_eq!(values(&table)[cell], Some(316.6));
        assert_eq!(
            table.meta.updated.as_deref(),
            Some("2024-01-12T05: 52: 00Z")
        );
    }

    #[test]
    fn real_fohm_response_keeps_codes_with_spaces_and_prefixed_labels() {
        let Some(table) = real_table("fuzzy-MCP/fohm_data_mobbning.json") else {
            return;
        };
        assert_eq!(values(&table), [Some(4.0), Some(5.0)]);
        assert_eq!(
            cube(&table).dimensions[0].labels,
            ["00 Riket", "21 Gävleborgs län"]
        );
        assert_eq!(cube(&table).dimensions[2].id, "Hur ofta");
        assert_eq!(codes(&table, 5), ["2021-2022"]);
    }

    #[test]
    fn real_metadata_responses_are_refused_as_such() {
        if let Some(err) = real_error("PxWebApi/MetadataById_tab004_js2.json") {
            insta::assert_snapshot!(err, @"PxWebApi/MetadataById_tab004_js2.json: the dataset has no values but 4312 cells (a metadata response?); fetch the data, not the metadata");
        }
        if let Some(err) = real_error("pxwebpy/TAB6471_metadata.json") {
            insta::assert_snapshot!(err, @"pxwebpy/TAB6471_metadata.json: the dataset has no values but 2006784 cells (a metadata response?); fetch the data, not the metadata");
        }
    }

    #[test]
    fn real_spec_example_with_comments_is_refused_as_invalid_json() {
        let Some(err) = real_error("PxApiSpecs/response-scb-all-region.json") else {
            return;
        };
        insta::assert_snapshot!(err, @"PxApiSpecs/response-scb-all-region.json: not valid JSON at line 10, column 7; the file is truncated or not JSON-stat: re-download it and check what the source returned: key must be a string at line 10 column 7");
    }

    proptest::proptest! {
        #[test]
        fn any_cube_written_as_json_stat_reads_back(
            (sizes, cells, statuses) in proptest::collection::vec(1usize..4, 1..4).prop_flat_map(|sizes| {
                let n = sizes.iter().product::<usize>();
                (
                    proptest::strategy::Just(sizes),
                    proptest::collection::vec(proptest::option::of(-4000i32..4000), n),
                    proptest::collection::vec(proptest::option::of(0usize..3), n),
                )
            }),
            sparse in proptest::bool::ANY,
        ) {
            let table = decoded(&written(&sizes, &cells, &statuses, sparse));
            let expected: Vec<Option<f64>> = cells.iter().map(|v| v.map(|v| f64::from(v) / 4.0)).collect();
            proptest::prop_assert_eq!(values(&table), expected);
            let expected: Vec<Option<String>> = statuses.iter().map(|m| m.map(|m| MARKERS[m].to_string())).collect();
            proptest::prop_assert_eq!(markers(&table), expected);
        }
    }
}
