//! The SourceTable: what every decoder hands on, in the source's own terms.
//!
//! Owns: the two physical shapes a decoded table can have (a dense cube for JSON-stat/PX, rows for
//! CSV/XLSX) behind one interface that hands out Arrow `RecordBatch`es of chosen rows, and the
//! source row number of every row (for error messages and `rejects/`).
//! Must not: parse any format, map codes or know the common model.
//!
//! Every text column is `Dictionary(Int32, Utf8)` with distinct dictionary values, so later stages
//! map each category once instead of once per cell. A cube is never expanded as a whole: a
//! 10-million-cell table is handed out a slice at a time, with coordinates computed from the
//! dimension sizes.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    Array, ArrayRef, DictionaryArray, Float64Array, Int32Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// The name of the numeric cell column of a cube.
pub const VALUE: &str = "value";
/// The name of the raw marker column of a cube (`..`, `.`, `-`, …; null = no marker).
pub const STATUS: &str = "status";

/// The Arrow type of every text column of a SourceTable.
pub fn text_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// A decoded table. See the module docs for its invariants.
#[derive(Debug, Clone)]
pub struct SourceTable {
    schema: SchemaRef,
    body: Body,
    /// What the source says about itself (title, last update), when it says it.
    pub meta: SourceMeta,
}

/// Facts a source states about the whole table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceMeta {
    pub label: Option<String>,
    /// The source's own "last updated", as written (RFC 3339 or SCB's zone-less form).
    pub updated: Option<String>,
    /// The text encoding the decoder used, when it had to choose one (PX: `utf-8`,
    /// `iso-8859-1 (declared)`, `windows-1252 (CHARSET=ANSI)`); `None` where it does not apply.
    pub encoding: Option<String>,
}

#[derive(Debug, Clone)]
enum Body {
    Rows(Rows),
    Cube(Cube),
}

/// Decoded rows (CSV, XLSX): one batch whose text columns each have one dictionary.
#[derive(Debug, Clone)]
struct Rows {
    batch: RecordBatch,
    /// Source row number of each row (CSV: the record's line number, header = line 1).
    numbers: Vec<u64>,
}

/// A dense cube in row-major order (the last dimension varies fastest), as JSON-stat and PX store it.
#[derive(Debug, Clone)]
pub struct Cube {
    pub dimensions: Vec<Dimension>,
    /// One value per cell; null where the source has none.
    pub values: Float64Array,
    pub status: CellStatus,
}

/// One dimension of a cube.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// The dimension id (`Region`, `Tid`, `Kön`), which becomes the column name.
    pub id: String,
    pub label: Option<String>,
    /// Category codes in index order; distinct.
    pub codes: Vec<String>,
    /// Category labels in index order (the code where the source gives none).
    pub labels: Vec<String>,
}

impl Dimension {
    /// A dimension whose categories have no labels of their own (each label is its code).
    pub fn coded<S: Into<String>>(id: &str, codes: impl IntoIterator<Item = S>) -> Self {
        let codes: Vec<String> = codes.into_iter().map(Into::into).collect();
        Self {
            id: id.into(),
            label: None,
            labels: codes.clone(),
            codes,
        }
    }
}

/// The raw status markers of a cube's cells.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum CellStatus {
    #[default]
    None,
    /// One marker for every cell (JSON-stat `status` as a string or a one-element array).
    All(String),
    /// Markers for some cells: `cells` sorted by cell index, each naming an entry of `markers`.
    Sparse {
        markers: Vec<String>,
        cells: Vec<(u64, u32)>,
    },
}

/// Chosen rows of a SourceTable: a batch in the table's schema plus each row's source row number.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub batch: RecordBatch,
    pub rows: Vec<u64>,
}

/// Errors in building a SourceTable: a decoder broke an invariant of this module.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(
        "the cube has {cells} cells but {values} values; the sizes are {sizes:?}; \
             the file is truncated or its `size` is wrong"
    )]
    CellCount {
        cells: u128,
        values: usize,
        sizes: Vec<usize>,
    },
    #[error("dimension `{0}` appears twice")]
    DuplicateDimension(String),
    #[error("dimension `{dimension}` has category `{code}` twice")]
    DuplicateCategory { dimension: String, code: String },
    #[error("column `{0}` is not a text column (Dictionary(Int32, Utf8))")]
    NotText(String),
    #[error("{rows} row numbers for {len} rows")]
    RowNumbers { rows: usize, len: usize },
}

impl SourceTable {
    /// A table of decoded rows. Every `Utf8` column is turned into a dictionary column; the other
    /// columns are kept as they are. `numbers` gives each row's source row number.
    pub fn from_rows(
        batch: RecordBatch,
        numbers: Vec<u64>,
        meta: SourceMeta,
    ) -> Result<Self, TableError> {
        if numbers.len() != batch.num_rows() {
            return Err(TableError::RowNumbers {
                rows: numbers.len(),
                len: batch.num_rows(),
            });
        }
        let mut fields = Vec::with_capacity(batch.num_columns());
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let column = match column.data_type() {
                DataType::Utf8 => dictionary_of(column.as_any().downcast_ref().expect("Utf8")),
                DataType::Dictionary(key, value)
                    if **key == DataType::Int32 && **value == DataType::Utf8 =>
                {
                    column.clone()
                }
                DataType::Dictionary(..) => return Err(TableError::NotText(field.name().clone())),
                _ => column.clone(),
            };
            fields.push(Field::new(
                field.name(),
                column.data_type().clone(),
                field.is_nullable(),
            ));
            columns.push(column);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)
            .expect("columns were rebuilt with their own types");
        Ok(Self {
            schema,
            body: Body::Rows(Rows { batch, numbers }),
            meta,
        })
    }

    /// A cube. Checks that the values fill exactly the product of the dimension sizes and that ids
    /// and category codes are distinct.
    pub fn from_cube(cube: Cube, meta: SourceMeta) -> Result<Self, TableError> {
        let sizes: Vec<usize> = cube.dimensions.iter().map(|d| d.codes.len()).collect();
        let cells: u128 = sizes.iter().map(|&s| s as u128).product();
        if cells != cube.values.len() as u128 {
            return Err(TableError::CellCount {
                cells,
                values: cube.values.len(),
                sizes,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for dimension in &cube.dimensions {
            if !seen.insert(dimension.id.as_str()) {
                return Err(TableError::DuplicateDimension(dimension.id.clone()));
            }
            let mut codes = std::collections::HashSet::new();
            for code in &dimension.codes {
                if !codes.insert(code.as_str()) {
                    return Err(TableError::DuplicateCategory {
                        dimension: dimension.id.clone(),
                        code: code.clone(),
                    });
                }
            }
        }
        let mut fields: Vec<Field> = cube
            .dimensions
            .iter()
            .map(|d| Field::new(&d.id, text_type(), false))
            .collect();
        fields.push(Field::new(VALUE, DataType::Float64, true));
        fields.push(Field::new(STATUS, text_type(), true));
        Ok(Self {
            schema: Arc::new(Schema::new(fields)),
            body: Body::Cube(cube),
            meta,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn num_rows(&self) -> usize {
        match &self.body {
            Body::Rows(rows) => rows.batch.num_rows(),
            Body::Cube(cube) => cube.values.len(),
        }
    }

    /// How many cells the table holds, counted as the decoders count them against
    /// `max_table_cells`: a cube's cells, or rows × columns.
    pub fn cells(&self) -> u64 {
        match &self.body {
            Body::Cube(cube) => cube.values.len() as u64,
            Body::Rows(rows) => rows.batch.num_rows() as u64 * rows.batch.num_columns() as u64,
        }
    }

    /// The cube behind the table, when it is one.
    pub fn cube(&self) -> Option<&Cube> {
        match &self.body {
            Body::Cube(cube) => Some(cube),
            Body::Rows(_) => None,
        }
    }

    /// The distinct values (dictionary) of a text column, in key order; `None` if there is no such
    /// text column.
    pub fn categories(&self, column: &str) -> Option<StringArray> {
        match &self.body {
            Body::Cube(cube) => cube
                .dimensions
                .iter()
                .find(|d| d.id == column)
                .map(|d| StringArray::from_iter_values(&d.codes))
                .or_else(|| (column == STATUS).then(|| status_dictionary(&cube.status))),
            Body::Rows(rows) => {
                let column = rows.batch.column_by_name(column)?;
                let dictionary = column
                    .as_any()
                    .downcast_ref::<DictionaryArray<Int32Type>>()?;
                dictionary.values().as_any().downcast_ref().cloned()
            }
        }
    }

    /// Every row, in source order. Meant for small tables and `inspect`; big cubes go by [`Self::select`].
    pub fn all(&self) -> Chunk {
        match &self.body {
            Body::Rows(rows) => Chunk {
                batch: rows.batch.clone(),
                rows: rows.numbers.clone(),
            },
            Body::Cube(cube) => cube_chunk(&self.schema, cube, None),
        }
    }

    /// The rows whose text column `column` holds a category `k` with `keep[k]` (k = dictionary key,
    /// the order of [`Self::categories`]). Rows come in source order.
    ///
    /// Panics if `column` is not a text column or `keep` is shorter than its dictionary: the caller
    /// got both from [`Self::categories`].
    pub fn select(&self, column: &str, keep: &[bool]) -> Chunk {
        match &self.body {
            Body::Rows(_) => {
                let group_of: Vec<usize> =
                    keep.iter().map(|&k| if k { 0 } else { NO_GROUP }).collect();
                let mut buckets = self
                    .bucket_rows(column, &group_of, 1)
                    .expect("a table of rows");
                self.take_rows(&buckets.swap_remove(0))
            }
            Body::Cube(cube) => {
                let axis = cube
                    .dimensions
                    .iter()
                    .position(|d| d.id == column)
                    .expect("select on a cube dimension");
                cube_chunk(&self.schema, cube, Some((axis, keep)))
            }
        }
    }
}

/// The group of a category that belongs to none (see [`SourceTable::bucket_rows`]).
pub const NO_GROUP: usize = usize::MAX;

impl SourceTable {
    /// A table of rows' row indices bucketed by group in one pass over the keys of text column
    /// `column`: a row whose category `k` has `group_of[k] == g` goes to bucket `g` (of
    /// `groups`), in source order; a row whose category is in no group ([`NO_GROUP`]) or whose
    /// cell is empty goes nowhere. `None` for a cube, whose groups [`Self::select`] cuts from the
    /// dimension sizes without looking at cells.
    ///
    /// Panics if `column` is not a text column or `group_of` is shorter than its dictionary.
    pub fn bucket_rows(
        &self,
        column: &str,
        group_of: &[usize],
        groups: usize,
    ) -> Option<Vec<Vec<u32>>> {
        let Body::Rows(rows) = &self.body else {
            return None;
        };
        let keys = rows
            .batch
            .column_by_name(column)
            .and_then(|c| c.as_any().downcast_ref::<DictionaryArray<Int32Type>>())
            .expect("bucket_rows on a text column")
            .keys();
        let mut buckets = vec![Vec::new(); groups];
        for (row, key) in keys.iter().enumerate() {
            if let Some(&group) = key.map(|k| &group_of[k as usize])
                && group != NO_GROUP
            {
                buckets[group].push(row as u32);
            }
        }
        Some(buckets)
    }

    /// Rows `rows` of a table of rows (indices as [`Self::bucket_rows`] gives them), in that
    /// order. Panics on a cube or an index out of range.
    pub fn take_rows(&self, rows: &[u32]) -> Chunk {
        let Body::Rows(table) = &self.body else {
            panic!("take_rows on a cube");
        };
        let indices = arrow_array::UInt32Array::from(rows.to_vec());
        let batch = arrow_select::take::take_record_batch(&table.batch, &indices)
            .expect("indices are in bounds");
        Chunk {
            batch,
            rows: rows.iter().map(|&i| table.numbers[i as usize]).collect(),
        }
    }
}

/// The cells of `cube` in cell order: all of them, or those whose coordinate `k` on dimension
/// `axis` has `keep[k]`.
fn cube_chunk(schema: &SchemaRef, cube: &Cube, selection: Option<(usize, &[bool])>) -> Chunk {
    let sizes: Vec<usize> = cube.dimensions.iter().map(|d| d.codes.len()).collect();
    let n_cells = cube.values.len();
    // Every cell at once is the selection of every category of the first dimension.
    let all;
    let (axis, keep) = match selection {
        Some(selection) => selection,
        None => {
            all = vec![true; sizes.first().copied().unwrap_or(0)];
            (0, all.as_slice())
        }
    };
    let kept: Vec<usize> = if sizes.is_empty() || n_cells == 0 {
        Vec::new()
    } else {
        (0..sizes[axis]).filter(|&k| keep[k]).collect()
    };
    // Cells on one category of `axis` form runs of `stride` consecutive cells, one run per
    // combination of the outer dimensions (a "block"): walk the runs, never the rejected cells,
    // and lay out each dimension's keys run by run instead of dividing per cell.
    let stride: usize = sizes.iter().skip(axis + 1).product();
    let blocks = if kept.is_empty() {
        0
    } else {
        n_cells / (stride * sizes[axis])
    };
    let len = blocks * kept.len() * stride;
    let mut cells: Vec<u64> = Vec::with_capacity(len);
    for block in 0..blocks {
        for &k in &kept {
            let start = ((block * sizes[axis] + k) * stride) as u64;
            cells.extend(start..start + stride as u64);
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(sizes.len() + 2);
    for (d, dimension) in cube.dimensions.iter().enumerate() {
        let mut keys: Vec<i32> = Vec::with_capacity(len);
        if d < axis {
            let outer_stride: usize = sizes[d + 1..axis].iter().product();
            for block in 0..blocks {
                let key = ((block / outer_stride) % sizes[d]) as i32;
                keys.extend(std::iter::repeat_n(key, kept.len() * stride));
            }
        } else if d == axis {
            for _ in 0..blocks {
                for &k in &kept {
                    keys.extend(std::iter::repeat_n(k as i32, stride));
                }
            }
        } else {
            let inner_stride: usize = sizes[d + 1..].iter().product();
            let pattern: Vec<i32> = (0..stride)
                .map(|j| ((j / inner_stride) % sizes[d]) as i32)
                .collect();
            for _ in 0..blocks * kept.len() {
                keys.extend_from_slice(&pattern);
            }
        }
        let values = Arc::new(StringArray::from_iter_values(&dimension.codes));
        columns.push(Arc::new(crate::model::dictionary_array(
            keys.into(),
            values,
        )));
    }
    let values: Float64Array = if cells.len() == n_cells {
        cube.values.clone()
    } else {
        let indices = arrow_array::UInt64Array::from(cells.clone());
        arrow_select::take::take(&cube.values, &indices, None)
            .expect("cells are in bounds")
            .as_any()
            .downcast_ref::<Float64Array>()
            .expect("take keeps the type")
            .clone()
    };
    columns.push(Arc::new(values));
    columns.push(Arc::new(status_of(&cube.status, &cells)));
    Chunk {
        batch: RecordBatch::try_new(schema.clone(), columns).expect("cube columns match schema"),
        rows: cells,
    }
}

fn status_dictionary(status: &CellStatus) -> StringArray {
    match status {
        CellStatus::None => StringArray::from_iter_values(std::iter::empty::<&str>()),
        CellStatus::All(marker) => StringArray::from_iter_values([marker]),
        CellStatus::Sparse { markers, .. } => StringArray::from_iter_values(markers),
    }
}

/// The status column for `cells` (sorted ascending), merging with the sorted sparse markers.
fn status_of(status: &CellStatus, cells: &[u64]) -> DictionaryArray<Int32Type> {
    let keys: Int32Array = match status {
        CellStatus::None => Int32Array::new_null(cells.len()),
        CellStatus::All(_) => Int32Array::from(vec![0; cells.len()]),
        CellStatus::Sparse { cells: marked, .. } => {
            let mut next =
                marked.partition_point(|&(c, _)| c < cells.first().copied().unwrap_or(0));
            cells
                .iter()
                .map(|&cell| {
                    while next < marked.len() && marked[next].0 < cell {
                        next += 1;
                    }
                    (next < marked.len() && marked[next].0 == cell).then(|| marked[next].1 as i32)
                })
                .collect()
        }
    };
    DictionaryArray::try_new(keys, Arc::new(status_dictionary(status)))
        .expect("marker indices are in range")
}

/// A dictionary column with distinct values from plain strings (nulls stay null).
pub fn dictionary_of(strings: &StringArray) -> ArrayRef {
    let mut builder = arrow_array::builder::StringDictionaryBuilder::<Int32Type>::new();
    for value in strings.iter() {
        match value {
            Some(v) => {
                builder.append_value(v);
            }
            None => builder.append_null(),
        }
    }
    Arc::new(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;

    fn cube() -> SourceTable {
        let cube = Cube {
            dimensions: vec![
                Dimension::coded("Region", ["00", "01"]),
                Dimension::coded("Tid", ["2022", "2023", "2024"]),
            ],
            values: Float64Array::from(vec![
                Some(1.0),
                Some(2.0),
                None,
                Some(4.0),
                Some(5.0),
                Some(6.0),
            ]),
            status: CellStatus::Sparse {
                markers: vec!["..".into()],
                cells: vec![(2, 0)],
            },
        };
        SourceTable::from_cube(cube, SourceMeta::default()).unwrap()
    }

    fn text(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let column = batch
            .column_by_name(name)
            .unwrap()
            .as_dictionary::<Int32Type>();
        let values = column.values().as_string::<i32>();
        column
            .keys()
            .iter()
            .map(|k| k.map(|k| values.value(k as usize).to_string()))
            .collect()
    }

    #[test]
    fn cube_select_walks_only_the_kept_categories() {
        let chunk = cube().select("Tid", &[false, true, true]);
        assert_eq!(chunk.rows, vec![1, 2, 4, 5]);
        let s = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
        assert_eq!(text(&chunk.batch, "Region"), s(&["00", "00", "01", "01"]));
        assert_eq!(
            text(&chunk.batch, "Tid"),
            s(&["2023", "2024", "2023", "2024"])
        );
        let values = chunk
            .batch
            .column_by_name(VALUE)
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            vec![Some(2.0), None, Some(5.0), Some(6.0)]
        );
        assert_eq!(
            text(&chunk.batch, STATUS),
            vec![None, Some("..".into()), None, None]
        );
    }

    #[test]
    fn cube_select_on_a_middle_dimension_lays_out_every_coordinate() {
        let dim = |id: &str, n: usize| Dimension::coded(id, (0..n).map(|i| format!("{id}{i}")));
        let cube = Cube {
            dimensions: vec![dim("A", 2), dim("B", 3), dim("C", 2)],
            values: Float64Array::from((0..12).map(f64::from).collect::<Vec<_>>()),
            status: CellStatus::None,
        };
        let table = SourceTable::from_cube(cube, SourceMeta::default()).unwrap();
        let chunk = table.select("B", &[true, false, true]);
        assert_eq!(chunk.rows, vec![0, 1, 4, 5, 6, 7, 10, 11]);
        let keys = |name: &str| -> Vec<i32> {
            let column = chunk
                .batch
                .column_by_name(name)
                .unwrap()
                .as_dictionary::<Int32Type>();
            column.keys().values().to_vec()
        };
        assert_eq!(keys("A"), [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(keys("B"), [0, 0, 2, 2, 0, 0, 2, 2]);
        assert_eq!(keys("C"), [0, 1, 0, 1, 0, 1, 0, 1]);
        let values = chunk
            .batch
            .column_by_name(VALUE)
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(
            values.values().to_vec(),
            [0.0, 1.0, 4.0, 5.0, 6.0, 7.0, 10.0, 11.0]
        );
    }

    #[test]
    fn cube_all_is_every_cell_in_order() {
        let chunk = cube().all();
        assert_eq!(chunk.rows, (0..6).collect::<Vec<_>>());
        assert_eq!(chunk.batch.num_rows(), 6);
    }

    #[test]
    fn cube_with_wrong_value_count_is_refused() {
        let mut c = cube().cube().unwrap().clone();
        c.values = Float64Array::from(vec![1.0]);
        let err = SourceTable::from_cube(c, SourceMeta::default()).unwrap_err();
        assert!(err.to_string().contains("6 cells but 1 values"), "{err}");
    }

    #[test]
    fn rows_select_filters_by_category() {
        let batch = RecordBatch::try_from_iter([(
            "ar",
            Arc::new(StringArray::from(vec!["2023", "2024", "2023"])) as ArrayRef,
        )])
        .unwrap();
        let table = SourceTable::from_rows(batch, vec![2, 3, 4], SourceMeta::default()).unwrap();
        let categories = table.categories("ar").unwrap();
        let keep: Vec<bool> = categories.iter().map(|c| c == Some("2023")).collect();
        let chunk = table.select("ar", &keep);
        assert_eq!(chunk.rows, vec![2, 4]);
    }

    #[test]
    fn rows_are_bucketed_by_group_in_source_order_and_the_rest_left_out() {
        let years = vec![Some("2023"), Some("2024"), None, Some("2023"), Some("1999")];
        let batch =
            RecordBatch::try_from_iter([("ar", Arc::new(StringArray::from(years)) as ArrayRef)])
                .unwrap();
        let table =
            SourceTable::from_rows(batch, vec![2, 3, 4, 5, 6], SourceMeta::default()).unwrap();
        let group_of: Vec<usize> = (table.categories("ar").unwrap().iter())
            .map(|c| match c {
                Some("2024") => 0,
                Some("2023") => 1,
                _ => NO_GROUP,
            })
            .collect();
        let buckets = table.bucket_rows("ar", &group_of, 2).unwrap();
        assert_eq!(buckets, [vec![1], vec![0, 3]]);
        assert_eq!(table.take_rows(&buckets[1]).rows, vec![2, 5]);
        assert_eq!(cube().bucket_rows("Tid", &[0, 0, 0], 1), None);
    }
}
