//! From what was written to a checked cube: dimensions, sizes, values and status.
//!
//! Owns: resolving each dimension's categories, the checks that the cube is whole (sizes match
//! categories, one value per cell, indices in range, no more cells than [`DecodeLimits`] allows),
//! the dense value column and the merged status.
//! Must not: read bytes (`seeds.rs` and `fast.rs` do) or choose the dataset of a bundle (`mod.rs`).

use std::collections::HashMap;

use arrow_array::Float64Array;
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};

use super::JsonStatError;
use super::raw::{RawDataset, RawDimension, RawIndex, RawStatus, RawValues};
use crate::formats::DecodeLimits;
use crate::formats::table::{CellStatus, Cube, Dimension, SourceMeta, SourceTable};

pub(super) fn build(
    raw: RawDataset,
    origin: &str,
    limits: &DecodeLimits,
) -> Result<SourceTable, JsonStatError> {
    let missing = |field| JsonStatError::Missing {
        origin: origin.to_string(),
        field,
    };
    let RawDataset {
        label,
        updated,
        id,
        size,
        dimension,
        value,
        status,
        mut markers,
        ..
    } = raw;
    let mut dimension = dimension.ok_or_else(|| missing("dimension"))?;
    let ids = id
        .or_else(|| dimension.id.take())
        .ok_or_else(|| missing("id"))?;
    let sizes = size
        .or_else(|| dimension.size.take())
        .ok_or_else(|| missing("size"))?;
    if ids.len() != sizes.len() {
        return Err(JsonStatError::IdSizeLength {
            origin: origin.to_string(),
            ids: ids.len(),
            sizes: sizes.len(),
        });
    }
    let mut dimensions = Vec::with_capacity(ids.len());
    for (id, size) in ids.iter().zip(&sizes) {
        let size = size
            .trim()
            .parse::<u64>()
            .map_err(|_| JsonStatError::BadSize {
                origin: origin.to_string(),
                dimension: id.clone(),
                size: size.clone(),
            })?;
        // Later duplicates of a key win, as in serde_json's own maps.
        let position = dimension.entries.iter().rposition(|(key, _)| key == id);
        let raw = match position {
            Some(position) => dimension.entries.swap_remove(position).1,
            None => {
                return Err(JsonStatError::MissingDimension {
                    origin: origin.to_string(),
                    dimension: id.clone(),
                });
            }
        };
        let resolved = categories(id.clone(), raw, origin)?;
        if resolved.codes.len() as u64 != size {
            return Err(JsonStatError::SizeMismatch {
                origin: origin.to_string(),
                dimension: id.clone(),
                size,
                categories: resolved.codes.len(),
            });
        }
        dimensions.push(resolved);
    }
    // Up to here every allocation was sized by the bytes; the dense value column below is sized
    // by the sizes, which a small file can make as large as it likes. Checked: 90 dimensions of
    // 3 categories each take a few hundred bytes and overflow even a u128.
    let cells = dimensions
        .iter()
        .try_fold(1u128, |n, d| n.checked_mul(d.codes.len() as u128));
    let cells = match cells.and_then(|cells| u64::try_from(cells).ok()) {
        Some(cells) if cells <= limits.max_table_cells => cells,
        _ => {
            return Err(JsonStatError::TooManyCells {
                origin: origin.to_string(),
                cells,
                limit: limits.max_table_cells,
            });
        }
    };
    let value = value.ok_or_else(|| missing("value"))?;
    let (values, value_markers) = dense_values(value, cells, origin)?;
    let explicit = explicit_status(status.unwrap_or(RawStatus::None), cells, origin)?;
    let status = merge_status(explicit, value_markers, &mut markers.markers);
    let cube = Cube {
        dimensions,
        values,
        status,
    };
    SourceTable::from_cube(
        cube,
        SourceMeta {
            label,
            updated,
            encoding: None,
        },
    )
    .map_err(|source| JsonStatError::Table {
        origin: origin.to_string(),
        source,
    })
}

/// A dimension's codes in index order, with labels (the code where none is given).
fn categories(id: String, raw: RawDimension, origin: &str) -> Result<Dimension, JsonStatError> {
    let codes: Vec<String> = match raw.index {
        Some(RawIndex::Array(codes)) => codes,
        Some(RawIndex::Object(positions)) => {
            let n = positions.len();
            let mut slots: Vec<Option<String>> = vec![None; n];
            for (code, position) in positions {
                let slot = slots
                    .get_mut(position as usize)
                    .filter(|_| position < n as u64);
                match slot {
                    None => {
                        return Err(JsonStatError::IndexPosition {
                            origin: origin.to_string(),
                            dimension: id,
                            code,
                            position,
                            categories: n,
                        });
                    }
                    Some(Some(_)) => {
                        return Err(JsonStatError::DuplicatePosition {
                            origin: origin.to_string(),
                            dimension: id,
                            position,
                        });
                    }
                    Some(slot) => *slot = Some(code),
                }
            }
            // n positions, each in 0..n and none twice: every slot is filled.
            slots.into_iter().map(|c| c.expect("slot filled")).collect()
        }
        // No index: the label keys in the order written give the codes (json-stat.org allows
        // this for a single category; we take the written order for any number).
        None => match &raw.labels {
            Some(labels) => labels.iter().map(|(code, _)| code.clone()).collect(),
            None => {
                return Err(JsonStatError::NoCategories {
                    origin: origin.to_string(),
                    dimension: id,
                });
            }
        },
    };
    let texts: HashMap<&str, &str> = raw
        .labels
        .iter()
        .flatten()
        .filter_map(|(code, text)| Some((code.as_str(), text.as_deref()?)))
        .collect();
    let labels = codes
        .iter()
        .map(|code| {
            texts
                .get(code.as_str())
                .copied()
                .unwrap_or(code)
                .to_string()
        })
        .collect();
    Ok(Dimension {
        id,
        label: raw.label,
        codes,
        labels,
    })
}

/// The dense value column and the markers that string values left, sorted by cell.
fn dense_values(
    value: RawValues,
    cells: u64,
    origin: &str,
) -> Result<(Float64Array, Vec<(u64, u32)>), JsonStatError> {
    match value {
        RawValues::Dense {
            values,
            nulls,
            markers,
        } => {
            if values.len() as u64 != cells {
                return Err(if values.is_empty() {
                    JsonStatError::NoValues {
                        origin: origin.to_string(),
                        cells,
                    }
                } else {
                    JsonStatError::ValueCount {
                        origin: origin.to_string(),
                        values: values.len(),
                        cells,
                    }
                });
            }
            let array = Float64Array::new(ScalarBuffer::from(values), nulls);
            Ok((array, markers))
        }
        RawValues::Sparse {
            values: sparse,
            mut markers,
        } => {
            let n = cells as usize;
            let mut values = vec![0.0; n];
            let mut nulls = NullBufferBuilder::new(n);
            nulls.append_n_nulls(n);
            for &(cell, value) in &sparse {
                in_range("value", cell, cells, origin)?;
                values[cell as usize] = value;
                nulls.set_bit(cell as usize, true);
            }
            for &(cell, _) in &markers {
                in_range("value", cell, cells, origin)?;
            }
            // A marker cell given a number by a later duplicate key keeps the number.
            markers.retain(|&(cell, _)| !nulls.is_valid(cell as usize));
            sort_keep_last(&mut markers);
            let array = Float64Array::new(ScalarBuffer::from(values), nulls.finish());
            Ok((array, markers))
        }
    }
}

fn in_range(field: &'static str, cell: u64, cells: u64, origin: &str) -> Result<(), JsonStatError> {
    if cell < cells {
        Ok(())
    } else {
        Err(JsonStatError::CellOutOfRange {
            origin: origin.to_string(),
            field,
            cell,
            cells,
        })
    }
}

/// Sorts `(cell, marker)` pairs by cell; of pairs for the same cell the last written stays, as a
/// repeated JSON key overrides the earlier one.
fn sort_keep_last(cells: &mut Vec<(u64, u32)>) {
    cells.sort_by_key(|&(cell, _)| cell);
    cells.dedup_by(|later, earlier| {
        let same = later.0 == earlier.0;
        if same {
            *earlier = *later;
        }
        same
    });
}

/// The markers `status` itself gives: one for all cells, or per cell sorted by cell.
enum Explicit {
    None,
    All(String),
    Cells(Vec<(u64, u32)>),
}

fn explicit_status(status: RawStatus, cells: u64, origin: &str) -> Result<Explicit, JsonStatError> {
    Ok(match status {
        RawStatus::None | RawStatus::Http(_) => Explicit::None,
        RawStatus::All(marker) => Explicit::All(marker),
        RawStatus::Array { len, cells: marked } => {
            if len != cells {
                return Err(JsonStatError::StatusCount {
                    origin: origin.to_string(),
                    statuses: len,
                    cells,
                });
            }
            Explicit::Cells(marked)
        }
        RawStatus::Object { cells: mut marked } => {
            for &(cell, _) in &marked {
                in_range("status", cell, cells, origin)?;
            }
            sort_keep_last(&mut marked);
            Explicit::Cells(marked)
        }
    })
}

/// The cube's status: `status`'s own markers win over markers written in place of values. Only
/// markers some cell uses are kept, numbered in order of first use.
fn merge_status(
    explicit: Explicit,
    from_values: Vec<(u64, u32)>,
    markers: &mut [String],
) -> CellStatus {
    let explicit = match explicit {
        Explicit::All(marker) => return CellStatus::All(marker),
        Explicit::None => Vec::new(),
        Explicit::Cells(cells) => cells,
    };
    let mut merged = Vec::with_capacity(explicit.len() + from_values.len());
    let (mut a, mut b) = (
        explicit.into_iter().peekable(),
        from_values.into_iter().peekable(),
    );
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                b.next();
                a.next()
            }
            (Some(x), Some(y)) if x.0 > y.0 => b.next(),
            (Some(_), _) => a.next(),
            (None, _) => b.next(),
        };
        match next {
            Some(pair) => merged.push(pair),
            None => break,
        }
    }
    if merged.is_empty() {
        return CellStatus::None;
    }
    let mut renumber: Vec<Option<u32>> = vec![None; markers.len()];
    let mut used = Vec::new();
    for (_, marker) in &mut merged {
        let old = *marker as usize;
        *marker = *renumber[old].get_or_insert_with(|| {
            used.push(std::mem::take(&mut markers[old]));
            used.len() as u32 - 1
        });
    }
    CellStatus::Sparse {
        markers: used,
        cells: merged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::DEFAULT_MAX_TABLE_CELLS;
    use crate::formats::jsonstat::decode;
    use crate::formats::jsonstat::testing::*;

    #[test]
    fn value_array_fills_cells_with_the_last_dimension_fastest() {
        let table = decoded(&two_by_three("[1, 2.5, null, -4, 5e2, 6]", ""));
        assert_eq!(
            values(&table),
            [
                Some(1.0),
                Some(2.5),
                None,
                Some(-4.0),
                Some(500.0),
                Some(6.0)
            ]
        );
        let chunk = table.all();
        let region = chunk.batch.column_by_name("r").unwrap();
        let region = arrow_array::cast::AsArray::as_dictionary::<arrow_array::types::Int32Type>(
            region.as_ref(),
        );
        assert_eq!(region.keys().values().as_ref(), [0, 0, 0, 1, 1, 1]);
        assert_eq!(cube(&table).status, CellStatus::None);
    }

    #[test]
    fn value_object_leaves_absent_cells_null() {
        let table = decoded(&two_by_three(r#"{"4": 7, "0": 1.5, "2": null}"#, ""));
        assert_eq!(
            values(&table),
            [Some(1.5), None, None, None, Some(7.0), None]
        );
    }

    #[test]
    fn status_object_marks_cells_by_index_sorted_by_cell() {
        let table = decoded(&two_by_three(
            "[1, 2, null, 4, null, 6]",
            r#", "status": {"4": "..", "2": "-", "0": null, "5": ".."}"#,
        ));
        assert_eq!(
            cube(&table).status,
            CellStatus::Sparse {
                markers: vec!["-".into(), "..".into()],
                cells: vec![(2, 0), (4, 1), (5, 1)],
            }
        );
    }

    #[test]
    fn status_marker_wins_over_a_marker_written_as_value() {
        let table = decoded(&two_by_three(
            r#"[1, "x", "y", 4, 5, 6]"#,
            r#", "status": {"1": "..", "5": "e"}"#,
        ));
        assert_eq!(
            markers(&table),
            [
                None,
                Some("..".into()),
                Some("y".into()),
                None,
                None,
                Some("e".into())
            ]
        );
        // "x" is used by no cell, so it is not in the dictionary either.
        let CellStatus::Sparse { markers, .. } = &cube(&table).status else {
            panic!("sparse status expected");
        };
        assert_eq!(markers, &["..", "y", "e"]);
    }

    #[test]
    fn index_object_orders_codes_by_position_whatever_the_key_order() {
        let table = decoded(
            r#"{"id": ["k"], "size": [3], "value": [1, 2, 3],
                "dimension": {"k": {"category": {
                  "index": {"c": 2, "a": 0, "b": 1},
                  "label": {"a": "A", "b": "B", "c": "C"}}}}}"#,
        );
        let dimension = &cube(&table).dimensions[0];
        assert_eq!(dimension.codes, ["a", "b", "c"]);
        assert_eq!(dimension.labels, ["A", "B", "C"]);
    }

    #[test]
    fn absent_index_takes_label_keys_in_written_order() {
        let table = decoded(
            r#"{"id": ["k"], "size": [3], "value": [1, 2, 3],
                "dimension": {"k": {"category": {"label": {"z": "Z", "a": "A", "m": "M"}}}}}"#,
        );
        assert_eq!(codes(&table, 0), ["z", "a", "m"]);
        assert_eq!(cube(&table).dimensions[0].labels, ["Z", "A", "M"]);
    }

    #[test]
    fn labels_default_to_the_code() {
        let table = decoded(
            r#"{"id": ["k"], "size": [2], "value": [1, 2],
                "dimension": {"k": {"label": "kön", "category": {
                  "index": ["1", "2"], "label": {"2": "kvinnor"}}}}}"#,
        );
        let dimension = &cube(&table).dimensions[0];
        assert_eq!(dimension.labels, ["1", "kvinnor"]);
        assert_eq!(dimension.label.as_deref(), Some("kön"));
    }

    #[test]
    fn dimension_not_in_id_is_ignored() {
        let table = decoded(
            r#"{"id": ["k"], "size": [2], "value": [1, 2],
                "dimension": {"ContentsCode": {"category": {"index": {"EliminatedValue": 0}}},
                              "k": {"category": {"index": ["a", "b"]}}}}"#,
        );
        assert_eq!(cube(&table).dimensions.len(), 1);
        assert_eq!(cube(&table).dimensions[0].id, "k");
    }

    #[test]
    fn label_and_updated_become_the_meta() {
        let table = decoded(&two_by_three(
            "[1, 2, 3, 4, 5, 6]",
            r#", "label": "Folkmängd", "updated": "2024-01-12T05: 52: 00Z""#,
        ));
        assert_eq!(
            table.meta,
            SourceMeta {
                label: Some("Folkmängd".into()),
                updated: Some("2024-01-12T05: 52: 00Z".into()),
                encoding: None,
            }
        );
    }

    #[test]
    fn empty_cube_with_no_values_decodes() {
        let table = decoded(
            r#"{"id": ["k"], "size": [0], "value": [],
                "dimension": {"k": {"category": {"index": []}}}}"#,
        );
        assert_eq!(table.num_rows(), 0);
    }

    #[test]
    fn missing_id_is_named() {
        insta::assert_snapshot!(error(r#"{"size": [1], "value": [1], "dimension": {}}"#), @"test.json: the dataset has no `id`; the file is damaged or not JSON-stat");
    }

    #[test]
    fn missing_size_is_named() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "value": [1], "dimension": {}}"#), @"test.json: the dataset has no `size`; the file is damaged or not JSON-stat");
    }

    #[test]
    fn missing_dimension_object_is_named() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [1], "value": [1]}"#), @"test.json: the dataset has no `dimension`; the file is damaged or not JSON-stat");
    }

    #[test]
    fn id_and_size_of_different_lengths_are_refused() {
        insta::assert_snapshot!(error(r#"{"id": ["k", "t"], "size": [1], "value": [1], "dimension": {}}"#), @"test.json: `id` names 2 dimensions but `size` has 1 entries; the file is damaged");
    }

    #[test]
    fn size_that_is_not_a_count_is_refused() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": ["two"], "value": [1], "dimension": {}}"#), @"test.json: `size` of dimension `k` is `two`, not a count; the file is damaged");
    }

    #[test]
    fn dimension_in_id_but_not_in_dimension_is_named() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [1], "value": [1], "dimension": {"t": {"category": {"index": ["x"]}}}}"#), @"test.json: dimension `k` is listed in `id` but missing from `dimension`; the file is damaged");
    }

    #[test]
    fn dimension_without_categories_is_named() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [1], "value": [1], "dimension": {"k": {"label": "k"}}}"#), @"test.json: dimension `k` has neither `category.index` nor `category.label`; the file is damaged");
    }

    #[test]
    fn size_that_disagrees_with_the_categories_is_refused() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", "").replace("[2, 3]", "[2, 4]")), @"test.json: dimension `t` has size 4 but 3 categories; the file is damaged or was edited");
    }

    #[test]
    fn index_position_out_of_range_is_refused() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [2], "value": [1, 2], "dimension": {"k": {"category": {"index": {"a": 0, "b": 2}}}}}"#), @"test.json: dimension `k` puts category `b` at position 2, outside 0..2; the file is damaged");
    }

    #[test]
    fn two_categories_at_one_position_are_refused() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [2], "value": [1, 2], "dimension": {"k": {"category": {"index": {"a": 1, "b": 1}}}}}"#), @"test.json: dimension `k` puts two categories at position 1; the file is damaged");
    }

    #[test]
    fn the_same_code_twice_in_an_index_array_is_refused() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [2], "value": [1, 2], "dimension": {"k": {"category": {"index": ["a", "a"]}}}}"#), @"test.json: the decoded cube is not a valid table: dimension `k` has category `a` twice");
    }

    #[test]
    fn too_few_values_are_refused() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5]", "")), @"test.json: `value` has 5 entries but the sizes give 6 cells; the file is truncated or its `size` is wrong");
    }

    #[test]
    fn metadata_response_without_values_is_named_as_such() {
        insta::assert_snapshot!(error(&two_by_three("[]", "")), @"test.json: the dataset has no values but 6 cells (a metadata response?); fetch the data, not the metadata");
    }

    #[test]
    fn missing_value_is_named() {
        insta::assert_snapshot!(error(r#"{"id": ["k"], "size": [1], "dimension": {"k": {"category": {"index": ["a"]}}}}"#), @"test.json: the dataset has no `value`; the file is damaged or not JSON-stat");
    }

    #[test]
    fn value_key_beyond_the_cube_is_refused() {
        insta::assert_snapshot!(error(&two_by_three(r#"{"6": 1}"#, "")), @"test.json: `value` names cell 6 but the cube has 6 cells; the file is damaged or its `size` is wrong");
    }

    #[test]
    fn status_key_beyond_the_cube_is_refused() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": {"9": ".."}"#)), @"test.json: `status` names cell 9 but the cube has 6 cells; the file is damaged or its `size` is wrong");
    }

    #[test]
    fn status_array_of_the_wrong_length_is_refused() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": ["a", "b"]"#)), @"test.json: `status` has 2 entries but the sizes give 6 cells (expected 1 or 6); the file is damaged");
    }

    /// A dataset with dimensions `d0`, `d1`… of the given sizes (codes `c0`, `c1`…) and `value`
    /// as written.
    fn declaring(sizes: &[usize], value: &str) -> String {
        let (ids, dimensions) = dimensions_of(sizes);
        format!(
            "{{\"id\": [{ids}], \"size\": {sizes:?}, \"dimension\": {{{dimensions}}}, \"value\": {value}}}"
        )
    }

    fn limited(json: &str, max_table_cells: u64) -> Result<SourceTable, JsonStatError> {
        decode(
            json.as_bytes(),
            "test.json",
            &DecodeLimits { max_table_cells },
        )
    }

    #[test]
    fn sparse_value_object_declaring_four_billion_cells_is_refused_before_allocating() {
        // 6 000 categories, about 42 KB: the file that used to abort on a 32 GB allocation.
        let json = declaring(&[4000, 1000, 1000], r#"{"0": 1.5, "17": 3}"#);
        assert!(json.len() < 50_000, "{}", json.len());
        insta::assert_snapshot!(error_chain(&limited(&json, DEFAULT_MAX_TABLE_CELLS).unwrap_err()), @"test.json: the table declares 4000000000 cells, more than max_table_cells = 50000000 allows; if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn sizes_whose_product_overflows_are_refused() {
        let json = declaring(&[3; 90], "{}");
        insta::assert_snapshot!(error_chain(&limited(&json, DEFAULT_MAX_TABLE_CELLS).unwrap_err()), @"test.json: the table declares over 2^128 cells, more than max_table_cells = 50000000 allows; if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn dense_table_just_over_the_limit_is_refused() {
        let json = declaring(&[3, 4], "[1,2,3,4,5,6,7,8,9,10,11,12]");
        insta::assert_snapshot!(error_chain(&limited(&json, 10).unwrap_err()), @"test.json: the table declares 12 cells, more than max_table_cells = 10 allows; if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn table_exactly_at_the_limit_decodes() {
        let json = declaring(&[2, 5], "[1,2,3,4,5,6,7,8,9,10]");
        assert_eq!(limited(&json, 10).unwrap().num_rows(), 10);
    }

    #[test]
    fn sparse_value_object_within_the_limit_fills_its_cells_and_leaves_the_rest_null() {
        let json = declaring(&[2, 5], r#"{"9": 3, "0": 1.5, "4": "..", "7": null}"#);
        let table = limited(&json, 10).unwrap();
        let mut expected = vec![None; 10];
        (expected[0], expected[9]) = (Some(1.5), Some(3.0));
        assert_eq!(values(&table), expected);
        assert_eq!(markers(&table)[4].as_deref(), Some(".."));
        assert_eq!(markers(&table).iter().flatten().count(), 1);
    }
}
