//! Helpers the JSON-stat tests share: decoding test documents and looking at the cube.

pub(super) use crate::problem::error_chain;

use super::decode;
use crate::formats::DecodeLimits;
use crate::formats::table::{CellStatus, Cube, SourceTable};

pub(super) fn decoded(json: &str) -> SourceTable {
    decode(json.as_bytes(), "test.json", &DecodeLimits::default()).unwrap()
}

pub(super) fn cube(table: &SourceTable) -> &Cube {
    table.cube().expect("a JSON-stat table is a cube")
}

pub(super) fn values(table: &SourceTable) -> Vec<Option<f64>> {
    cube(table).values.iter().collect()
}

pub(super) fn error(json: &str) -> String {
    error_chain(&decode(json.as_bytes(), "test.json", &DecodeLimits::default()).unwrap_err())
}

/// The marker of every cell, in cell order.
pub(super) fn markers(table: &SourceTable) -> Vec<Option<String>> {
    let cells = table.num_rows() as u64;
    match &cube(table).status {
        CellStatus::None => vec![None; cells as usize],
        CellStatus::All(marker) => vec![Some(marker.clone()); cells as usize],
        CellStatus::Sparse {
            markers,
            cells: marked,
        } => (0..cells)
            .map(|cell| {
                marked
                    .iter()
                    .find(|&&(c, _)| c == cell)
                    .map(|&(_, m)| markers[m as usize].clone())
            })
            .collect(),
    }
}

pub(super) fn codes(table: &SourceTable, dimension: usize) -> Vec<&str> {
    cube(table).dimensions[dimension]
        .codes
        .iter()
        .map(String::as_str)
        .collect()
}

/// A 2 × 3 dataset (`r` = a, b; `t` = 1, 2, 3) with the given `value` and extra members.
pub(super) fn two_by_three(value: &str, extra: &str) -> String {
    format!(
        r#"{{"version": "2.0", "class": "dataset", "id": ["r", "t"], "size": [2, 3],
                "dimension": {{
                  "r": {{"label": "region", "category": {{"index": ["a", "b"]}}}},
                  "t": {{"category": {{"index": ["1", "2", "3"]}}}}
                }},
                "value": {value}{extra}}}"#
    )
}

pub(super) const MARKERS: [&str; 3] = ["..", ".", "-"];

/// The `id` list and the `dimension` members of dimensions `d0`, `d1`… of `sizes`, with codes
/// `c0`, `c1`…, as JSON text.
pub(super) fn dimensions_of(sizes: &[usize]) -> (String, String) {
    let ids: Vec<String> = (0..sizes.len()).map(|d| format!("\"d{d}\"")).collect();
    let dimensions: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(d, &n)| {
            let codes: Vec<String> = (0..n).map(|k| format!("\"c{k}\"")).collect();
            format!(
                "\"d{d}\": {{\"category\": {{\"index\": [{}]}}}}",
                codes.join(",")
            )
        })
        .collect();
    (ids.join(","), dimensions.join(","))
}

/// A cube written as JSON-stat 2.0: dimensions `d0`, `d1`… with codes `c0`, `c1`…; `value`
/// dense or sparse; `status` as an object.
pub(super) fn written(
    sizes: &[usize],
    values: &[Option<i32>],
    statuses: &[Option<usize>],
    sparse: bool,
) -> String {
    let (ids, dimensions) = dimensions_of(sizes);
    let number = |v: i32| format!("{}", f64::from(v) / 4.0);
    let value = if sparse {
        let entries: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(cell, v)| Some(format!("\"{cell}\": {}", number((*v)?))))
            .collect();
        format!("{{{}}}", entries.join(","))
    } else {
        let entries: Vec<String> = values
            .iter()
            .map(|v| v.map_or("null".into(), number))
            .collect();
        format!("[{}]", entries.join(","))
    };
    let status: Vec<String> = statuses
        .iter()
        .enumerate()
        .filter_map(|(cell, m)| Some(format!("\"{cell}\": \"{}\"", MARKERS[(*m)?])))
        .collect();
    format!(
        "{{\"id\": [{ids}], \"size\": {sizes:?}, \"dimension\": {{{dimensions}}}, \"value\": {value}, \"status\": {{{}}}}}",
        status.join(",")
    )
}
