//! Pieces of one table that a source fetched in several payloads, made one [`SourceTable`].
//!
//! Owns: the rule that cubes equal in every dimension but one, whose categories on that one are
//! disjoint, are one cube laid side by side along it (how PxWeb splits a query that is too big);
//! that any other pieces become rows with their columns matched by name; and the [`Provenance`]
//! that tells, for each row of the merged table, which payload and source row it came from.
//! Must not: decode payloads, or decide which of two pieces' cells with one key is right
//! (harmonise refuses both as a repeated key).

use std::collections::HashMap;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_buffer::NullBufferBuilder;
use arrow_schema::DataType;

use super::table::{CellStatus, Cube, SourceMeta, SourceTable, TableError};

/// Where the rows of a merged table came from: each row id a [`SourceTable`] hands out
/// ([`crate::formats::Chunk::rows`]) leads back to a payload and its own row number.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// Payload names, in fetch order.
    names: Vec<String>,
    layout: Layout,
}

#[derive(Debug, Clone, Default)]
enum Layout {
    /// One payload: row ids are its own row numbers.
    #[default]
    Single,
    /// Cubes side by side along dimension `axis`: piece `p` holds coordinates
    /// `starts[p]..starts[p + 1]` there. Row ids are cell indices of the merged cube (`sizes`).
    SideBySide {
        axis: usize,
        starts: Vec<usize>,
        sizes: Vec<usize>,
    },
    /// Rows one piece after another: piece `p`'s rows have ids from `firsts[p]`, and row id `i`
    /// was row `numbers[i]` of its payload.
    Appended { firsts: Vec<u64>, numbers: Vec<u64> },
}

/// A row of a merged table, in its payload's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowOrigin<'a> {
    pub payload: &'a str,
    /// The payload's row number (CSV line, JSON-stat cell index).
    pub row: u64,
}

impl Provenance {
    /// The provenance of a table of one unnamed payload, for the stages' unit tests.
    #[cfg(test)]
    pub const fn unnamed() -> Self {
        Self {
            names: Vec::new(),
            layout: Layout::Single,
        }
    }

    /// Where row id `row` of the merged table came from.
    pub fn locate(&self, row: u64) -> RowOrigin<'_> {
        let name = |piece: usize| self.names.get(piece).map_or("", String::as_str);
        match &self.layout {
            Layout::Single => RowOrigin {
                payload: name(0),
                row,
            },
            Layout::SideBySide {
                axis,
                starts,
                sizes,
            } => {
                let stride: u64 = sizes[axis + 1..].iter().map(|&s| s as u64).product();
                let along = sizes[*axis] as u64;
                let (block, rest) = (row / (along * stride), row % (along * stride));
                let (coordinate, inner) = (rest / stride, rest % stride);
                let piece = starts.partition_point(|&s| s as u64 <= coordinate) - 1;
                let width = (starts[piece + 1] - starts[piece]) as u64;
                let local = coordinate - starts[piece] as u64;
                RowOrigin {
                    payload: name(piece),
                    row: (block * width + local) * stride + inner,
                }
            }
            Layout::Appended { firsts, numbers } => RowOrigin {
                payload: name(firsts.partition_point(|&f| f <= row) - 1),
                row: numbers[row as usize],
            },
        }
    }
}

impl Provenance {
    /// Row id `row` as a message names it: the row number, and its payload when the table was
    /// merged from several.
    pub fn describe(&self, row: u64) -> String {
        let origin = self.locate(row);
        if self.names.len() > 1 {
            format!("{} of {}", origin.row, origin.payload)
        } else {
            origin.row.to_string()
        }
    }
}

/// Makes one table of `pieces` (payload name, decoded table), in fetch order. One piece is
/// returned as it is.
pub fn merge(
    mut pieces: Vec<(String, SourceTable)>,
) -> Result<(SourceTable, Provenance), TableError> {
    let names: Vec<String> = pieces.iter().map(|(name, _)| name.clone()).collect();
    if pieces.len() == 1 {
        let (_, table) = pieces.pop().expect("one piece");
        return Ok((
            table,
            Provenance {
                names,
                layout: Layout::Single,
            },
        ));
    }
    let meta = merged_meta(pieces.iter().map(|(_, table)| &table.meta));
    let tables: Vec<SourceTable> = pieces.into_iter().map(|(_, table)| table).collect();
    if let Some(axis) = side_by_side_axis(&tables) {
        let cubes: Vec<&Cube> = tables.iter().filter_map(SourceTable::cube).collect();
        let (cube, starts) = lay_side_by_side(&cubes, axis);
        let sizes = cube.dimensions.iter().map(|d| d.codes.len()).collect();
        let table = SourceTable::from_cube(cube, meta)?;
        return Ok((
            table,
            Provenance {
                names,
                layout: Layout::SideBySide {
                    axis,
                    starts,
                    sizes,
                },
            },
        ));
    }
    let (batch, firsts, numbers) = append_rows(&tables);
    drop(tables);
    let ids = (0..batch.num_rows() as u64).collect();
    let table = SourceTable::from_rows(batch, ids, meta)?;
    Ok((
        table,
        Provenance {
            names,
            layout: Layout::Appended { firsts, numbers },
        },
    ))
}

/// The first label and encoding, and the latest "last updated" of the pieces.
fn merged_meta<'a>(metas: impl Iterator<Item = &'a SourceMeta>) -> SourceMeta {
    let mut merged = SourceMeta::default();
    for meta in metas {
        if merged.label.is_none() {
            merged.label.clone_from(&meta.label);
        }
        if merged.encoding.is_none() {
            merged.encoding.clone_from(&meta.encoding);
        }
        if meta.updated > merged.updated {
            merged.updated.clone_from(&meta.updated);
        }
    }
    merged
}

/// The dimension along which every piece is a cube with the same dimensions and the same
/// categories elsewhere, and categories of its own there; `None` if there is no such dimension.
fn side_by_side_axis(tables: &[SourceTable]) -> Option<usize> {
    let cubes: Vec<&Cube> = tables
        .iter()
        .map(SourceTable::cube)
        .collect::<Option<_>>()?;
    let first = cubes[0];
    let ids = |cube: &Cube| {
        cube.dimensions
            .iter()
            .map(|d| d.id.clone())
            .collect::<Vec<_>>()
    };
    if cubes.iter().any(|cube| ids(cube) != ids(first)) {
        return None;
    }
    let differing: Vec<usize> = (0..first.dimensions.len())
        .filter(|&d| {
            cubes
                .iter()
                .any(|cube| cube.dimensions[d].codes != first.dimensions[d].codes)
        })
        .collect();
    let [axis] = differing[..] else { return None };
    let mut seen = std::collections::HashSet::new();
    let disjoint = cubes
        .iter()
        .flat_map(|cube| &cube.dimensions[axis].codes)
        .all(|code| seen.insert(code.as_str()));
    disjoint.then_some(axis)
}

/// One cube of `cubes` laid side by side along `axis`, and where each piece starts on it.
fn lay_side_by_side(cubes: &[&Cube], axis: usize) -> (Cube, Vec<usize>) {
    let mut starts = vec![0];
    for cube in cubes {
        starts.push(starts.last().expect("a start") + cube.dimensions[axis].codes.len());
    }
    let mut dimensions = cubes[0].dimensions.clone();
    let along = &mut dimensions[axis];
    along.codes.clear();
    along.labels.clear();
    for cube in cubes {
        along.codes.extend_from_slice(&cube.dimensions[axis].codes);
        along
            .labels
            .extend_from_slice(&cube.dimensions[axis].labels);
    }
    let stride: usize = dimensions[axis + 1..]
        .iter()
        .map(|d| d.codes.len())
        .product();
    let blocks: usize = dimensions[..axis].iter().map(|d| d.codes.len()).product();
    let cells: usize = cubes.iter().map(|c| c.values.len()).sum();
    let mut values = Vec::with_capacity(cells);
    let mut nulls = NullBufferBuilder::new(cells);
    for block in 0..blocks {
        for cube in cubes {
            let run = cube.dimensions[axis].codes.len() * stride;
            let slice = cube.values.slice(block * run, run);
            values.extend_from_slice(slice.values());
            match slice.nulls() {
                Some(valid) => valid.iter().for_each(|v| nulls.append(v)),
                None => nulls.append_n_non_nulls(run),
            }
        }
    }
    let values = Float64Array::new(values.into(), nulls.finish());
    let status = side_by_side_status(cubes, axis, &starts, stride);
    (
        Cube {
            dimensions,
            values,
            status,
        },
        starts,
    )
}

/// The pieces' markers at their cells' places in the merged cube.
fn side_by_side_status(
    cubes: &[&Cube],
    axis: usize,
    starts: &[usize],
    stride: usize,
) -> CellStatus {
    if cubes.iter().all(|c| c.status == CellStatus::None) {
        return CellStatus::None;
    }
    if let CellStatus::All(first) = &cubes[0].status
        && cubes
            .iter()
            .all(|c| c.status == CellStatus::All(first.clone()))
    {
        return CellStatus::All(first.clone());
    }
    let along = *starts.last().expect("a start") as u64;
    let stride = stride as u64;
    let mut markers: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut cells: Vec<(u64, u32)> = Vec::new();
    for (piece, cube) in cubes.iter().enumerate() {
        let width = cube.dimensions[axis].codes.len() as u64;
        let mut intern = |marker: &str| {
            *index.entry(marker.to_string()).or_insert_with(|| {
                markers.push(marker.to_string());
                (markers.len() - 1) as u32
            })
        };
        let place = |cell: u64| {
            let (block, rest) = (cell / (width * stride), cell % (width * stride));
            (block * along + starts[piece] as u64) * stride + rest
        };
        match &cube.status {
            CellStatus::None => {}
            CellStatus::All(marker) => {
                let m = intern(marker);
                cells.extend((0..cube.values.len() as u64).map(|cell| (place(cell), m)));
            }
            CellStatus::Sparse {
                markers: theirs,
                cells: marked,
            } => {
                let ours: Vec<u32> = theirs.iter().map(|m| intern(m)).collect();
                cells.extend(
                    marked
                        .iter()
                        .map(|&(cell, m)| (place(cell), ours[m as usize])),
                );
            }
        }
    }
    cells.sort_unstable_by_key(|&(cell, _)| cell);
    CellStatus::Sparse { markers, cells }
}

/// Every row of every piece, columns matched by name (first seen first; empty where a piece
/// lacks one), with each row's piece start and payload row number. A column whose type differs
/// between pieces is kept as text.
fn append_rows(tables: &[SourceTable]) -> (RecordBatch, Vec<u64>, Vec<u64>) {
    let chunks: Vec<_> = tables.iter().map(SourceTable::all).collect();
    let mut names: Vec<String> = Vec::new();
    for chunk in &chunks {
        for field in chunk.batch.schema().fields() {
            if !names.contains(field.name()) {
                names.push(field.name().clone());
            }
        }
    }
    let columns: Vec<(String, ArrayRef)> = names
        .into_iter()
        .map(|name| {
            let parts: Vec<Option<ArrayRef>> = chunks
                .iter()
                .map(|chunk| chunk.batch.column_by_name(&name).cloned())
                .collect();
            let column = append_column(
                &parts,
                &chunks
                    .iter()
                    .map(|c| c.batch.num_rows())
                    .collect::<Vec<_>>(),
            );
            (name, column)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(columns).expect("columns of one length");
    let mut firsts = Vec::with_capacity(chunks.len());
    let mut numbers = Vec::with_capacity(batch.num_rows());
    for chunk in chunks {
        firsts.push(numbers.len() as u64);
        numbers.extend(chunk.rows);
    }
    (batch, firsts, numbers)
}

/// One column of the appended rows from each piece's column (`None`: the piece lacks it).
fn append_column(parts: &[Option<ArrayRef>], lengths: &[usize]) -> ArrayRef {
    let types: Vec<&DataType> = parts.iter().flatten().map(|a| a.data_type()).collect();
    let is_text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::Dictionary(..));
    let target = if types.iter().all(|t| *t == types[0]) && !is_text(types[0]) {
        types[0].clone()
    } else {
        DataType::Utf8
    };
    let arrays: Vec<ArrayRef> = parts
        .iter()
        .zip(lengths)
        .map(|(part, &len)| match part {
            Some(array) if array.data_type() == &target => array.clone(),
            Some(array) => arrow_cast::cast(array, &target).expect("every column casts to text"),
            None => arrow_array::new_null_array(&target, len),
        })
        .collect();
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    // Text stays plain here: `from_rows` makes each text column one dictionary of distinct
    // values again, which concatenated dictionaries would not be.
    arrow_select::concat::concat(&refs).expect("arrays of one type")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::StringArray;

    use super::*;
    use crate::formats::Dimension;

    fn cube(
        regions: &[&str],
        years: &[&str],
        values: Vec<Option<f64>>,
        status: CellStatus,
    ) -> SourceTable {
        SourceTable::from_cube(
            Cube {
                dimensions: vec![
                    Dimension::coded("Region", regions.iter().copied()),
                    Dimension::coded("Tid", years.iter().copied()),
                ],
                values: Float64Array::from(values),
                status,
            },
            SourceMeta::default(),
        )
        .unwrap()
    }

    fn values(table: &SourceTable) -> Vec<Option<f64>> {
        table.cube().unwrap().values.iter().collect()
    }

    #[test]
    fn pieces_split_along_one_dimension_become_one_cube() {
        let a = cube(
            &["01", "03"],
            &["2022", "2023"],
            vec![Some(1.0), Some(2.0), Some(3.0), None],
            CellStatus::None,
        );
        let b = cube(
            &["01", "03"],
            &["2024"],
            vec![Some(5.0), Some(6.0)],
            CellStatus::Sparse {
                markers: vec!["..".into()],
                cells: vec![(1, 0)],
            },
        );
        let (table, provenance) = merge(vec![("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        let merged = table.cube().unwrap();
        assert_eq!(merged.dimensions[1].codes, ["2022", "2023", "2024"]);
        assert_eq!(
            values(&table),
            [Some(1.0), Some(2.0), Some(5.0), Some(3.0), None, Some(6.0)]
        );
        assert_eq!(
            merged.status,
            CellStatus::Sparse {
                markers: vec!["..".into()],
                cells: vec![(5, 0)]
            }
        );
        assert_eq!(
            provenance.locate(5),
            RowOrigin {
                payload: "b.json",
                row: 1
            }
        );
        assert_eq!(
            provenance.locate(4),
            RowOrigin {
                payload: "a.json",
                row: 3
            }
        );
        assert_eq!(
            provenance.locate(2),
            RowOrigin {
                payload: "b.json",
                row: 0
            }
        );
    }

    #[test]
    fn overlapping_pieces_become_rows_and_keep_their_payload_rows() {
        let a = cube(
            &["01"],
            &["2022", "2023"],
            vec![Some(1.0), Some(2.0)],
            CellStatus::None,
        );
        let b = cube(
            &["01", "03"],
            &["2023"],
            vec![Some(9.0), Some(4.0)],
            CellStatus::None,
        );
        let (table, provenance) = merge(vec![("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        assert!(table.cube().is_none());
        assert_eq!(table.num_rows(), 4);
        let regions = table.categories("Region").unwrap();
        assert_eq!(
            regions.iter().flatten().collect::<Vec<_>>(),
            ["01", "03"],
            "one dictionary of distinct values"
        );
        assert_eq!(
            provenance.locate(3),
            RowOrigin {
                payload: "b.json",
                row: 1
            }
        );
        assert_eq!(
            provenance.locate(1),
            RowOrigin {
                payload: "a.json",
                row: 1
            }
        );
    }

    #[test]
    fn rows_with_different_columns_are_matched_by_name() {
        let rows = |columns: Vec<(&str, Vec<&str>)>, first_line: u64| {
            let n = columns[0].1.len();
            let batch = RecordBatch::try_from_iter(
                columns
                    .into_iter()
                    .map(|(name, v)| (name, Arc::new(StringArray::from(v)) as ArrayRef)),
            )
            .unwrap();
            SourceTable::from_rows(
                batch,
                (first_line..first_line + n as u64).collect(),
                SourceMeta::default(),
            )
            .unwrap()
        };
        let a = rows(vec![("kommun", vec!["0180"]), ("andel", vec!["12"])], 2);
        let b = rows(vec![("andel", vec!["7", "8"]), ("kon", vec!["F", "M"])], 2);
        let (table, provenance) = merge(vec![("a.csv".into(), a), ("b.csv".into(), b)]).unwrap();
        let chunk = table.all();
        let names: Vec<String> = chunk
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["kommun", "andel", "kon"]);
        assert_eq!(chunk.batch.column(0).null_count(), 2);
        assert_eq!(
            provenance.locate(2),
            RowOrigin {
                payload: "b.csv",
                row: 3
            }
        );
    }

    /// A cube of `sizes` whose cell `i` holds `i`, marked `x` where `marked` says, and the same
    /// cube cut into pieces along `axis` at `cuts` (coordinates where a new piece starts).
    fn cut_cube(
        sizes: &[usize],
        axis: usize,
        cuts: &[usize],
        marked: &[bool],
    ) -> (Cube, Vec<SourceTable>) {
        let dimensions: Vec<Dimension> = sizes
            .iter()
            .enumerate()
            .map(|(d, &n)| Dimension::coded(&format!("d{d}"), (0..n).map(|k| format!("c{k}"))))
            .collect();
        let cells: usize = sizes.iter().product();
        let is_marked = |cell: usize| !marked.is_empty() && marked[cell % marked.len()];
        let status = |cells: Vec<u64>| CellStatus::Sparse {
            markers: vec!["x".into()],
            cells: cells.into_iter().map(|c| (c, 0)).collect(),
        };
        let whole = Cube {
            dimensions: dimensions.clone(),
            values: Float64Array::from_iter_values((0..cells).map(|i| i as f64)),
            status: status(
                (0..cells as u64)
                    .filter(|&c| is_marked(c as usize))
                    .collect(),
            ),
        };
        let stride: usize = sizes[axis + 1..].iter().product();
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < sizes[axis]));
        bounds.sort_unstable();
        bounds.dedup();
        bounds.push(sizes[axis]);
        let pieces = bounds
            .windows(2)
            .map(|range| {
                let mut dims = dimensions.clone();
                dims[axis] = Dimension::coded(
                    &format!("d{axis}"),
                    (range[0]..range[1]).map(|k| format!("c{k}")),
                );
                let full: Vec<usize> = (0..cells)
                    .filter(|&c| (range[0]..range[1]).contains(&((c / stride) % sizes[axis])))
                    .collect();
                let cube = Cube {
                    dimensions: dims,
                    values: Float64Array::from_iter_values(full.iter().map(|&c| c as f64)),
                    status: status(
                        (0..full.len() as u64)
                            .filter(|&j| is_marked(full[j as usize]))
                            .collect(),
                    ),
                };
                SourceTable::from_cube(cube, SourceMeta::default()).unwrap()
            })
            .collect();
        (whole, pieces)
    }

    proptest::proptest! {
        #[test]
        fn pieces_cut_along_any_dimension_become_the_whole_cube_and_each_cell_leads_back(
            sizes in proptest::collection::vec(1usize..4, 1..4),
            axis in 0usize..3,
            cuts in proptest::collection::vec(0usize..4, 0..3),
            marked in proptest::collection::vec(proptest::bool::ANY, 0..7),
        ) {
            let axis = axis % sizes.len();
            let (whole, pieces) = cut_cube(&sizes, axis, &cuts, &marked);
            let named: Vec<(String, SourceTable)> =
                pieces.iter().cloned().enumerate().map(|(p, t)| (format!("p{p}"), t)).collect();
            let (merged, provenance) = merge(named).unwrap();
            let cube = merged.cube().expect("one cube");
            proptest::prop_assert_eq!(&cube.dimensions, &whole.dimensions);
            proptest::prop_assert_eq!(&cube.values, &whole.values);
            let marked_cells = |status: &CellStatus| match status {
                CellStatus::Sparse { cells, .. } => cells.iter().map(|c| c.0).collect::<Vec<_>>(),
                CellStatus::All(_) => (0..whole.values.len() as u64).collect(),
                CellStatus::None => Vec::new(),
            };
            proptest::prop_assert_eq!(marked_cells(&cube.status), marked_cells(&whole.status));
            for cell in 0..cube.values.len() as u64 {
                let origin = provenance.locate(cell);
                let piece: usize = origin.payload[1..].parse().unwrap();
                let values = &pieces[piece].cube().unwrap().values;
                proptest::prop_assert_eq!(values.value(origin.row as usize), cell as f64);
            }
        }
    }

    #[test]
    fn one_piece_is_kept_as_it_is() {
        let a = cube(&["01"], &["2022"], vec![Some(1.0)], CellStatus::None);
        let (table, provenance) = merge(vec![("a.json".into(), a)]).unwrap();
        assert!(table.cube().is_some());
        assert_eq!(
            provenance.locate(0),
            RowOrigin {
                payload: "a.json",
                row: 0
            }
        );
    }
}
