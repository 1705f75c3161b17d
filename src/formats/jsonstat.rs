//! JSON-stat: the bytes of a JSON-stat 2.0 dataset, or of a JSON-stat 1.x bundle holding one
//! dataset (PxWeb v1's `json-stat`), become a [`Cube`] inside a [`SourceTable`].
//!
//! Owns: reading `id`, `size`, `dimension` (categories in index order, labels), `value`, `status`,
//! `label` and `updated`, in one streaming pass over the bytes, and the checks that the cube is
//! whole (sizes match categories, one value per cell, indices in range).
//! Must not: fetch, map codes or status markers to our vocabulary, or read `role` (SCB sets no
//! `role.geo`; which dimension is the region is configuration), `note`, `link` or `extension`.
//!
//! Decisions, each with a test below:
//! - **Speed.** `value` is streamed straight into a `Vec<f64>` plus a validity bitmap, and `status`
//!   into `(cell, marker)` pairs with interned markers; nothing goes through `serde_json::Value`.
//!   Parsing is from the byte slice, so keys and strings without escapes are borrowed.
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
//! - **Metadata responses** (`value: []` with a non-empty cube) are an error of their own, as is a
//!   2.0 `collection` or `bundle`.
//! - A leading UTF-8 byte order mark is skipped.

use std::collections::HashMap;
use std::fmt;

use arrow_array::Float64Array;
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::table::{CellStatus, Cube, Dimension, SourceMeta, SourceTable, TableError};

/// The most cells a cube may have: beyond this, a sparse `value` object would make us allocate
/// more than 32 GB for the dense values.
pub const MAX_CELLS: u64 = 1 << 32;

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
        "{origin}: no JSON-stat dataset found (no `dimension`, `id`, `size` or `value`, and no \
         1.x bundle entry holding them); check what the source returned"
    )]
    NoDataset { origin: String },
    #[error(
        "{origin}: the bundle holds {} datasets ({}); request one table per file",
        .names.len(), .names.join(", ")
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
        "{origin}: the cube has {cells} cells, more than the {max} we decode; request fewer \
         categories per file"
    , max = MAX_CELLS)]
    TooManyCells { origin: String, cells: u128 },
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
/// The cube's dimensions follow `id`, its cells are in row-major order (the last dimension varies
/// fastest), and `label`/`updated` become the [`SourceMeta`]. See the module docs for how string
/// values, status forms and missing indices are read.
pub fn decode(bytes: &[u8], origin: &str) -> Result<SourceTable, JsonStatError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // No value takes fewer than two bytes (`0,`): a bound for preallocating `value`.
    let seed = DatasetSeed {
        top: true,
        max_values: bytes.len() / 2 + 1,
    };
    let top = seed
        .deserialize(&mut de)
        .and_then(|top| de.end().map(|()| top))
        .map_err(|source| json_error(origin, source))?;
    let dataset = pick(top, origin)?;
    build(dataset, origin)
}

fn json_error(origin: &str, source: serde_json::Error) -> JsonStatError {
    let (origin, line, column) = (origin.to_string(), source.line(), source.column());
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
// What the streaming pass collects: the dataset as written, before any check.

#[derive(Default)]
struct RawDataset {
    class: Option<String>,
    label: Option<String>,
    updated: Option<String>,
    id: Option<Vec<String>>,
    size: Option<Vec<String>>,
    dimension: Option<RawDimensions>,
    value: Option<RawValues>,
    status: Option<RawStatus>,
    markers: Interner,
    /// Objects under keys JSON-stat does not define, by key: the datasets of a 1.x bundle.
    nested: Vec<(String, RawDataset)>,
}

impl RawDataset {
    fn is_dataset(&self) -> bool {
        self.dimension.is_some() || self.id.is_some() || self.size.is_some() || self.value.is_some()
    }
}

#[derive(Default)]
struct RawDimensions {
    entries: Vec<(String, RawDimension)>,
    /// JSON-stat 1.x keeps `id` and `size` inside `dimension`.
    id: Option<Vec<String>>,
    size: Option<Vec<String>>,
}

#[derive(Default)]
struct RawDimension {
    label: Option<String>,
    index: Option<RawIndex>,
    labels: Option<Vec<(String, Option<String>)>>,
}

enum RawIndex {
    Array(Vec<String>),
    Object(Vec<(String, u64)>),
}

enum RawValues {
    Dense {
        values: Vec<f64>,
        nulls: NullBufferBuilder,
        /// Markers from string values, in cell order.
        markers: Vec<(u64, u32)>,
    },
    Sparse {
        values: Vec<(u64, f64)>,
        markers: Vec<(u64, u32)>,
    },
}

enum RawStatus {
    None,
    All(String),
    Array { len: u64, cells: Vec<(u64, u32)> },
    Object { cells: Vec<(u64, u32)> },
}

/// Distinct status markers, numbered in order of first appearance.
#[derive(Default)]
struct Interner {
    markers: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    fn intern(&mut self, marker: &str) -> u32 {
        if let Some(&id) = self.ids.get(marker) {
            return id;
        }
        let id = u32::try_from(self.markers.len()).expect("fewer than 2^32 distinct markers");
        self.markers.push(marker.to_string());
        self.ids.insert(marker.to_string(), id);
        id
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming visitors.

/// A dataset object; at the top level also the members of a 1.x bundle.
struct DatasetSeed {
    top: bool,
    max_values: usize,
}

impl<'de> DeserializeSeed<'de> for DatasetSeed {
    type Value = RawDataset;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawDataset, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DatasetSeed {
    type Value = RawDataset;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-stat dataset or 1.x bundle (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDataset, A::Error> {
        let mut raw = RawDataset::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "class" => raw.class = map.next_value_seed(Text)?,
                "label" => raw.label = map.next_value_seed(Text)?,
                "updated" => raw.updated = map.next_value_seed(Text)?,
                "id" => raw.id = Some(map.next_value_seed(Scalars("`id`"))?),
                "size" => raw.size = Some(map.next_value_seed(Scalars("`size`"))?),
                "dimension" => raw.dimension = Some(map.next_value_seed(DimensionsSeed)?),
                "value" => {
                    let hint = expected_cells(&raw).min(self.max_values);
                    let seed = ValuesSeed {
                        markers: &mut raw.markers,
                        hint,
                    };
                    raw.value = Some(map.next_value_seed(seed)?);
                }
                "status" => {
                    raw.status = Some(map.next_value_seed(StatusSeed {
                        markers: &mut raw.markers,
                    })?)
                }
                "version" | "href" | "note" | "source" | "role" | "extension" | "link"
                | "error" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ if self.top => {
                    let seed = MaybeDataset {
                        max_values: self.max_values,
                    };
                    if let Some(dataset) = map.next_value_seed(seed)? {
                        raw.nested.push((key, dataset));
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

/// The cell count the sizes read so far promise (0 if unknown), to size the value buffer once.
fn expected_cells(raw: &RawDataset) -> usize {
    let sizes = raw
        .size
        .as_ref()
        .or_else(|| raw.dimension.as_ref().and_then(|d| d.size.as_ref()));
    sizes
        .and_then(|sizes| {
            sizes
                .iter()
                .try_fold(1usize, |n, s| n.checked_mul(s.trim().parse().ok()?))
        })
        .unwrap_or(0)
}

/// A member of a top-level object that JSON-stat does not define: a dataset when it is an object,
/// skipped otherwise.
struct MaybeDataset {
    max_values: usize,
}

impl<'de> DeserializeSeed<'de> for MaybeDataset {
    type Value = Option<RawDataset>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MaybeDataset {
    type Value = Option<RawDataset>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let seed = DatasetSeed {
            top: false,
            max_values: self.max_values,
        };
        seed.visit_map(map).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A descriptive text (`label`, `updated`): a string, or `None` for anything else, which is
/// skipped (a label is not worth failing a decode for).
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a text")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// One string or number, as text: ids, codes and sizes (CSO writes sizes as strings).
struct Scalar(&'static str);

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<String, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string or number in {}", self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// An array of [`Scalar`]s; the name says where, for serde's message.
struct Scalars(&'static str);

impl<'de> DeserializeSeed<'de> for Scalars {
    type Value = Vec<String>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Vec<String>, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Scalars {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of strings or numbers in {}", self.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(item) = seq.next_element_seed(Scalar(self.0))? {
            out.push(item);
        }
        Ok(out)
    }
}

/// The `dimension` object: dimensions by id, plus 1.x's `id` and `size` arrays.
struct DimensionsSeed;

impl<'de> DeserializeSeed<'de> for DimensionsSeed {
    type Value = RawDimensions;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawDimensions, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DimensionsSeed {
    type Value = RawDimensions;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a `dimension` object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDimensions, A::Error> {
        let mut out = RawDimensions::default();
        while let Some(key) = map.next_key::<String>()? {
            // An array here is 1.x's `id`/`size` (or its `role` members); an object is a
            // dimension, even one called `id` in a 2.0 file.
            match map.next_value_seed(DimensionEntry)? {
                Entry::Dimension(dimension) => out.entries.push((key, dimension)),
                Entry::List(list) if key == "id" => out.id = Some(list),
                Entry::List(list) if key == "size" => out.size = Some(list),
                Entry::List(_) | Entry::Other => {}
            }
        }
        Ok(out)
    }
}

enum Entry {
    Dimension(RawDimension),
    List(Vec<String>),
    Other,
}

struct DimensionEntry;

impl<'de> DeserializeSeed<'de> for DimensionEntry {
    type Value = Entry;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Entry, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DimensionEntry {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a dimension object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut dimension = RawDimension::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "label" => dimension.label = map.next_value_seed(Text)?,
                "category" => map.next_value_seed(CategorySeed(&mut dimension))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Entry::Dimension(dimension))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Entry, A::Error> {
        Scalars("`dimension`").visit_seq(seq).map(Entry::List)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::Other)
    }
}

/// A `category` object: `index` and `label`; `unit`, `child`, `note`… are skipped.
struct CategorySeed<'a>(&'a mut RawDimension);

impl<'de> DeserializeSeed<'de> for CategorySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CategorySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a `category` object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "index" => self.0.index = Some(map.next_value_seed(IndexSeed)?),
                "label" => self.0.labels = Some(map.next_value_seed(LabelsSeed)?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `category.index`: an array of codes, or an object code → position.
struct IndexSeed;

impl<'de> DeserializeSeed<'de> for IndexSeed {
    type Value = RawIndex;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawIndex, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed {
    type Value = RawIndex;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`category.index` as an array of codes or an object of positions")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawIndex, A::Error> {
        Scalars("`category.index`")
            .visit_seq(seq)
            .map(RawIndex::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawIndex, A::Error> {
        let mut out = Vec::new();
        while let Some(code) = map.next_key::<String>()? {
            let position = map.next_value_seed(Scalar("`category.index`"))?;
            let position = position.trim().parse::<u64>().map_err(|_| {
                de::Error::custom(format!(
                    "`category.index` gives category `{code}` the position `{position}`, not a \
                     whole number"
                ))
            })?;
            out.push((code, position));
        }
        Ok(RawIndex::Object(out))
    }
}

/// `category.label`: code → text, in the order written.
struct LabelsSeed;

impl<'de> DeserializeSeed<'de> for LabelsSeed {
    type Value = Vec<(String, Option<String>)>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LabelsSeed {
    type Value = Vec<(String, Option<String>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`category.label` as an object of texts")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(code) = map.next_key::<String>()? {
            out.push((code, map.next_value_seed(Text)?));
        }
        Ok(out)
    }
}

/// A key of a `value` or `status` object: a cell index, or the key as written when it is not one.
struct CellKey;

impl<'de> DeserializeSeed<'de> for CellKey {
    type Value = Result<u64, String>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CellKey {
    type Value = Result<u64, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a cell index")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.parse().map_err(|_| v.to_string()))
    }
}

/// One cell of `value`: a number, no value, or a marker written in place of a value.
enum Cell {
    Number(f64),
    Null,
    Marker(u32),
}

struct CellSeed<'a> {
    markers: &'a mut Interner,
}

impl<'de> DeserializeSeed<'de> for CellSeed<'_> {
    type Value = Cell;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Cell, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CellSeed<'_> {
    type Value = Cell;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, null or a marker string in `value`")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
        Ok(Cell::Number(v as f64))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
        Ok(Cell::Number(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
        Ok(Cell::Number(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
        Ok(Cell::Null)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
        Ok(match number_in(v) {
            Some(number) => Cell::Number(number),
            None if v.is_empty() => Cell::Null,
            None => Cell::Marker(self.markers.intern(v)),
        })
    }
}

/// The number a string value stands for, if it reads as a finite decimal number. Rust's parser
/// alone would also take `inf` and `NaN`, which no producer means as a value.
fn number_in(text: &str) -> Option<f64> {
    let text = text.trim();
    let first = text.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `value`: a dense array, or a sparse object keyed by cell index.
struct ValuesSeed<'a> {
    markers: &'a mut Interner,
    hint: usize,
}

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_> {
    type Value = RawValues;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawValues, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_> {
    type Value = RawValues;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`value` as an array or an object keyed by cell index")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValues, A::Error> {
        let mut values = Vec::with_capacity(self.hint);
        let mut nulls = NullBufferBuilder::new(self.hint);
        let mut markers = Vec::new();
        loop {
            let seed = CellSeed {
                markers: &mut *self.markers,
            };
            match seq.next_element_seed(seed)? {
                Some(Cell::Number(v)) => {
                    values.push(v);
                    nulls.append_non_null();
                }
                Some(Cell::Null) => {
                    values.push(0.0);
                    nulls.append_null();
                }
                Some(Cell::Marker(marker)) => {
                    markers.push((values.len() as u64, marker));
                    values.push(0.0);
                    nulls.append_null();
                }
                None => break,
            }
        }
        Ok(RawValues::Dense {
            values,
            nulls,
            markers,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValues, A::Error> {
        let (mut values, mut markers) = (Vec::new(), Vec::new());
        while let Some(key) = map.next_key_seed(CellKey)? {
            let cell = key.map_err(|key| {
                de::Error::custom(format!("`value` key `{key}` is not a cell index"))
            })?;
            let seed = CellSeed {
                markers: &mut *self.markers,
            };
            match map.next_value_seed(seed)? {
                Cell::Number(v) => values.push((cell, v)),
                Cell::Null => {}
                Cell::Marker(marker) => markers.push((cell, marker)),
            }
        }
        Ok(RawValues::Sparse { values, markers })
    }
}

/// One status entry: a marker, or `None` for `null` and `""`.
struct MarkerSeed<'a> {
    markers: &'a mut Interner,
}

impl<'de> DeserializeSeed<'de> for MarkerSeed<'_> {
    type Value = Option<u32>;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<u32>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MarkerSeed<'_> {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a status marker (a string or null)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<u32>, E> {
        Ok((!v.is_empty()).then(|| self.markers.intern(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
        Ok(None)
    }
}

/// `status`: a string, an array, or an object keyed by cell index.
struct StatusSeed<'a> {
    markers: &'a mut Interner,
}

impl<'de> DeserializeSeed<'de> for StatusSeed<'_> {
    type Value = RawStatus;
    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<RawStatus, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StatusSeed<'_> {
    type Value = RawStatus;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`status` as a string, an array or an object keyed by cell index")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RawStatus, E> {
        Ok(if v.is_empty() {
            RawStatus::None
        } else {
            RawStatus::All(v.to_string())
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<RawStatus, E> {
        Ok(RawStatus::None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawStatus, A::Error> {
        let (mut len, mut cells) = (0u64, Vec::new());
        loop {
            let seed = MarkerSeed {
                markers: &mut *self.markers,
            };
            match seq.next_element_seed(seed)? {
                Some(Some(marker)) => cells.push((len, marker)),
                Some(None) => {}
                None => break,
            }
            len += 1;
        }
        Ok(match (len, cells.first()) {
            (1, Some(&(_, marker))) => {
                RawStatus::All(self.markers.markers[marker as usize].clone())
            }
            (0 | 1, _) => RawStatus::None,
            _ => RawStatus::Array { len, cells },
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawStatus, A::Error> {
        let mut cells = Vec::new();
        let mut eurostat = None;
        while let Some(key) = map.next_key_seed(CellKey)? {
            match key {
                Ok(cell) => {
                    let seed = MarkerSeed {
                        markers: &mut *self.markers,
                    };
                    if let Some(marker) = map.next_value_seed(seed)? {
                        cells.push((cell, marker));
                    }
                }
                Err(key) if key == "value" => {
                    let seed = StatusSeed {
                        markers: &mut *self.markers,
                    };
                    eurostat = Some(map.next_value_seed(seed)?);
                }
                Err(key) if key == "category" => {
                    map.next_value::<IgnoredAny>()?;
                }
                Err(key) => {
                    return Err(de::Error::custom(format!(
                        "`status` key `{key}` is not a cell index"
                    )));
                }
            }
        }
        Ok(match eurostat {
            Some(status) if cells.is_empty() => status,
            Some(_) => {
                return Err(de::Error::custom(
                    "`status` mixes cell indices with a `value` member",
                ));
            }
            None => RawStatus::Object { cells },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// From what was written to a checked cube.

/// The dataset the file holds: the top level itself, or the one dataset of a 1.x bundle.
fn pick(top: RawDataset, origin: &str) -> Result<RawDataset, JsonStatError> {
    check_class(&top, origin)?;
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

fn build(raw: RawDataset, origin: &str) -> Result<SourceTable, JsonStatError> {
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
    let cells: u128 = dimensions.iter().map(|d| d.codes.len() as u128).product();
    if cells > MAX_CELLS as u128 {
        return Err(JsonStatError::TooManyCells {
            origin: origin.to_string(),
            cells,
        });
    }
    let cells = cells as u64;
    let value = value.ok_or_else(|| missing("value"))?;
    let (values, value_markers) = dense_values(value, cells, origin)?;
    let explicit = explicit_status(status.unwrap_or(RawStatus::None), cells, origin)?;
    let status = merge_status(explicit, value_markers, &mut markers.markers);
    let cube = Cube {
        dimensions,
        values,
        status,
    };
    SourceTable::from_cube(cube, SourceMeta { label, updated }).map_err(|source| {
        JsonStatError::Table {
            origin: origin.to_string(),
            source,
        }
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
            mut nulls,
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
            let array = Float64Array::new(ScalarBuffer::from(values), nulls.finish());
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
        RawStatus::None => Explicit::None,
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
