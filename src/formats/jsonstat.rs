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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use arrow_array::Float64Array;
use arrow_buffer::{NullBuffer, NullBufferBuilder, ScalarBuffer};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::error::Category;

use super::DecodeLimits;
use super::table::{CellStatus, Cube, Dimension, SourceMeta, SourceTable, TableError};

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
    /// `title` of an RFC 7807 problem document (PxWeb v2 errors); JSON-stat has no `title`.
    title: Option<String>,
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
        nulls: Option<NullBuffer>,
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
    /// An HTTP status code: the document is an error response, not JSON-stat.
    Http(u64),
    All(String),
    Array {
        len: u64,
        cells: Vec<(u64, u32)>,
    },
    Object {
        cells: Vec<(u64, u32)>,
    },
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
            map.next_value_seed(Member {
                raw: &mut raw,
                key: &key,
                top: self.top,
                max_values: self.max_values,
            })?;
        }
        Ok(raw)
    }
}

/// One member `key: …` of a dataset object, read into `raw`.
struct Member<'a> {
    raw: &'a mut RawDataset,
    key: &'a str,
    top: bool,
    max_values: usize,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        let raw = self.raw;
        match self.key {
            "class" => raw.class = Text.deserialize(de)?,
            "label" => raw.label = Text.deserialize(de)?,
            "updated" => raw.updated = Text.deserialize(de)?,
            "title" => raw.title = Text.deserialize(de)?,
            "id" => raw.id = Some(Scalars("`id`").deserialize(de)?),
            "size" => raw.size = Some(Scalars("`size`").deserialize(de)?),
            "dimension" => raw.dimension = Some(DimensionsSeed.deserialize(de)?),
            "value" => {
                let hint = expected_cells(raw).min(self.max_values);
                let seed = ValuesSeed {
                    markers: &mut raw.markers,
                    hint,
                };
                raw.value = Some(seed.deserialize(de)?);
            }
            "status" => {
                let seed = StatusSeed {
                    markers: &mut raw.markers,
                };
                raw.status = Some(seed.deserialize(de)?);
            }
            "version" | "href" | "note" | "source" | "role" | "extension" | "link" | "error" => {
                IgnoredAny::deserialize(de)?;
            }
            key if self.top => {
                let seed = MaybeDataset {
                    max_values: self.max_values,
                };
                if let Some(dataset) = seed.deserialize(de)? {
                    raw.nested.push((key.to_string(), dataset));
                }
            }
            _ => {
                IgnoredAny::deserialize(de)?;
            }
        }
        Ok(())
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
            nulls: nulls.finish(),
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
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawStatus, E> {
        Ok(RawStatus::Http(v))
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

fn build(
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

/// The fast path for the common big file, a top-level object whose `value` is an array: that
/// array is parsed here, byte by byte, at several times serde_json's speed; every other member
/// goes through the serde seeds above. Anything unusual (invalid JSON, a shape the seeds refuse)
/// gives `None`, and the caller reads the document again through serde alone, which then
/// reports the problem with its line and column.
mod fast {
    use super::*;

    pub(super) fn read(bytes: &[u8]) -> Option<RawDataset> {
        let max_values = max_values(bytes);
        let mut raw = RawDataset::default();
        let mut pos = skip_space(bytes, 0);
        if bytes.get(pos) != Some(&b'{') {
            return None;
        }
        pos = skip_space(bytes, pos + 1);
        if bytes.get(pos) == Some(&b'}') {
            pos += 1;
        } else {
            loop {
                let (key, next) = string(bytes, pos)?;
                pos = skip_space(bytes, next);
                if bytes.get(pos) != Some(&b':') {
                    return None;
                }
                pos = skip_space(bytes, pos + 1);
                if key == "value" && bytes.get(pos) == Some(&b'[') {
                    let hint = expected_cells(&raw).min(max_values);
                    let (values, end) = value_array(bytes, pos, hint, &mut raw.markers)?;
                    raw.value = Some(values);
                    pos = end;
                } else {
                    // Find where the member ends, then read just that slice with the seeds.
                    let mut stream = serde_json::Deserializer::from_slice(&bytes[pos..])
                        .into_iter::<IgnoredAny>();
                    stream.next()?.ok()?;
                    let end = pos + stream.byte_offset();
                    let mut de = serde_json::Deserializer::from_slice(&bytes[pos..end]);
                    let member = Member {
                        raw: &mut raw,
                        key: &key,
                        top: true,
                        max_values,
                    };
                    member.deserialize(&mut de).ok()?;
                    pos = end;
                }
                pos = skip_space(bytes, pos);
                match bytes.get(pos)? {
                    b',' => pos = skip_space(bytes, pos + 1),
                    b'}' => {
                        pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (skip_space(bytes, pos) == bytes.len()).then_some(raw)
    }

    fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(pos) {
            pos += 1;
        }
        pos
    }

    /// The JSON string starting at `bytes[pos]` (a `"`), unescaped, and the position after it.
    fn string(bytes: &[u8], pos: usize) -> Option<(Cow<'_, str>, usize)> {
        if bytes.get(pos) != Some(&b'"') {
            return None;
        }
        let mut end = pos + 1;
        let mut escaped = false;
        loop {
            end += memchr::memchr2(b'"', b'\\', &bytes[end..])?;
            if bytes[end] == b'"' {
                break;
            }
            escaped = true;
            end += 2;
        }
        let text = &bytes[pos + 1..end];
        let text = if escaped {
            Cow::Owned(serde_json::from_slice::<String>(&bytes[pos..=end]).ok()?)
        } else if text.iter().any(|&b| b < 0x20) {
            // JSON forbids raw control characters in strings; let serde say so.
            return None;
        } else {
            Cow::Borrowed(std::str::from_utf8(text).ok()?)
        };
        Some((text, end + 1))
    }

    /// A dense `value` array starting at `bytes[pos]` (a `[`), and the position after its `]`.
    fn value_array(
        bytes: &[u8],
        mut pos: usize,
        hint: usize,
        markers: &mut Interner,
    ) -> Option<(RawValues, usize)> {
        let mut values = Vec::with_capacity(hint);
        let mut valid = Validity::with_capacity(hint);
        let mut marked = Vec::new();
        pos = skip_space(bytes, pos + 1);
        if bytes.get(pos) != Some(&b']') {
            loop {
                match *bytes.get(pos)? {
                    b'n' => {
                        if bytes.get(pos..pos + 4)? != b"null" {
                            return None;
                        }
                        pos += 4;
                        values.push(0.0);
                        valid.push(false);
                    }
                    b'"' => {
                        let (text, end) = string(bytes, pos)?;
                        pos = end;
                        match number_in(&text) {
                            Some(number) => {
                                values.push(number);
                                valid.push(true);
                            }
                            None => {
                                if !text.is_empty() {
                                    marked.push((values.len() as u64, markers.intern(&text)));
                                }
                                values.push(0.0);
                                valid.push(false);
                            }
                        }
                    }
                    _ => {
                        let (number, end) = number(bytes, pos)?;
                        pos = end;
                        values.push(number);
                        valid.push(true);
                    }
                }
                pos = skip_space(bytes, pos);
                match *bytes.get(pos)? {
                    b',' => pos = skip_space(bytes, pos + 1),
                    b']' => break,
                    _ => return None,
                }
            }
        }
        let values = RawValues::Dense {
            values,
            nulls: valid.finish(),
            markers: marked,
        };
        Some((values, pos + 1))
    }

    /// A validity bitmap built a 64-bit word at a time: a shift per value instead of
    /// `NullBufferBuilder`'s bounds-checked append per bit.
    struct Validity {
        words: Vec<u64>,
        word: u64,
        len: usize,
        nulls: usize,
    }

    impl Validity {
        fn with_capacity(bits: usize) -> Self {
            let words = Vec::with_capacity(bits.div_ceil(64));
            Self {
                words,
                word: 0,
                len: 0,
                nulls: 0,
            }
        }

        #[inline]
        fn push(&mut self, valid: bool) {
            self.word |= u64::from(valid) << (self.len % 64);
            self.nulls += usize::from(!valid);
            self.len += 1;
            if self.len.is_multiple_of(64) {
                // Arrow bitmaps are little-endian bit order, byte by byte.
                self.words.push(self.word.to_le());
                self.word = 0;
            }
        }

        fn finish(mut self) -> Option<NullBuffer> {
            if self.nulls == 0 {
                return None;
            }
            if !self.len.is_multiple_of(64) {
                self.words.push(self.word.to_le());
            }
            let bits = arrow_buffer::BooleanBuffer::new(
                arrow_buffer::Buffer::from_vec(self.words),
                0,
                self.len,
            );
            Some(NullBuffer::new(bits))
        }
    }

    /// Exact powers of ten as f64 (10^22 is the last one a double holds exactly).
    const POWERS_OF_TEN: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    /// The JSON number starting at `bytes[start]`, and the position after it.
    pub(super) fn number(bytes: &[u8], start: usize) -> Option<(f64, usize)> {
        let digits_from = |mut pos: usize, mantissa: &mut u64| {
            while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
                *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                pos += 1;
            }
            pos
        };
        let negative = bytes.get(start) == Some(&b'-');
        let int_start = start + usize::from(negative);
        let mut mantissa = 0u64;
        let mut pos = digits_from(int_start, &mut mantissa);
        let int_digits = pos - int_start;
        if int_digits == 0 || (int_digits > 1 && bytes[int_start] == b'0') {
            return None;
        }
        let mut fraction_digits = 0;
        if bytes.get(pos) == Some(&b'.') {
            let fraction_start = pos + 1;
            pos = digits_from(fraction_start, &mut mantissa);
            fraction_digits = pos - fraction_start;
            if fraction_digits == 0 {
                return None;
            }
        }
        let mut exponent = false;
        if let Some(b'e' | b'E') = bytes.get(pos) {
            pos += 1;
            if let Some(b'+' | b'-') = bytes.get(pos) {
                pos += 1;
            }
            let exponent_start = pos;
            pos = digits_from(exponent_start, &mut 0);
            if pos == exponent_start {
                return None;
            }
            exponent = true;
        }
        // Clinger's fast path: a mantissa a double holds exactly, divided by an exact power of
        // ten, is correctly rounded. Longer numbers and exponents go to the standard parser.
        if !exponent
            && int_digits + fraction_digits <= 19
            && mantissa <= 1 << 53
            && fraction_digits < POWERS_OF_TEN.len()
        {
            // Integers skip the division: it costs more than the rest of the parse.
            let value = match fraction_digits {
                // Through i64: one instruction on x86-64, where u64 → f64 takes a branch.
                0 => mantissa as i64 as f64,
                n => mantissa as i64 as f64 / POWERS_OF_TEN[n],
            };
            return Some((if negative { -value } else { value }, pos));
        }
        let text = std::str::from_utf8(&bytes[start..pos]).ok()?;
        Some((text.parse().ok()?, pos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::DEFAULT_MAX_TABLE_CELLS;
    use arrow_array::Array;
    use proptest::strategy::Strategy;
    use std::error::Error as _;

    fn decoded(json: &str) -> SourceTable {
        decode(json.as_bytes(), "test.json", &DecodeLimits::default()).unwrap()
    }

    fn cube(table: &SourceTable) -> &Cube {
        table.cube().expect("a JSON-stat table is a cube")
    }

    fn values(table: &SourceTable) -> Vec<Option<f64>> {
        cube(table).values.iter().collect()
    }

    /// The message and its causes, as `main.rs` prints them with `{err:#}`.
    fn chain(err: &JsonStatError) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    fn error(json: &str) -> String {
        chain(&decode(json.as_bytes(), "test.json", &DecodeLimits::default()).unwrap_err())
    }

    /// The marker of every cell, in cell order.
    fn markers(table: &SourceTable) -> Vec<Option<String>> {
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

    fn codes(table: &SourceTable, dimension: usize) -> Vec<&str> {
        cube(table).dimensions[dimension]
            .codes
            .iter()
            .map(String::as_str)
            .collect()
    }

    /// A 2 × 3 dataset (`r` = a, b; `t` = 1, 2, 3) with the given `value` and extra members.
    fn two_by_three(value: &str, extra: &str) -> String {
        format!(
            r#"{{"version": "2.0", "class": "dataset", "id": ["r", "t"], "size": [2, 3],
                "dimension": {{
                  "r": {{"label": "region", "category": {{"index": ["a", "b"]}}}},
                  "t": {{"category": {{"index": ["1", "2", "3"]}}}}
                }},
                "value": {value}{extra}}}"#
        )
    }

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
    fn numeric_strings_are_numbers_and_other_strings_become_markers() {
        let table = decoded(&two_by_three(r#"["1.5", " 42 ", "..", "", "NaN", 3]"#, ""));
        assert_eq!(
            values(&table),
            [Some(1.5), Some(42.0), None, None, None, Some(3.0)]
        );
        assert_eq!(
            markers(&table),
            [
                None,
                None,
                Some("..".into()),
                None,
                Some("NaN".into()),
                None
            ]
        );
    }

    #[test]
    fn status_string_applies_to_every_cell() {
        let table = decoded(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": "p""#));
        assert_eq!(cube(&table).status, CellStatus::All("p".into()));
    }

    #[test]
    fn status_array_of_one_applies_to_every_cell() {
        let table = decoded(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": ["a"]"#));
        assert_eq!(cube(&table).status, CellStatus::All("a".into()));
    }

    #[test]
    fn status_array_gives_each_cell_its_marker_and_null_or_empty_gives_none() {
        let table = decoded(&two_by_three(
            "[1, null, 3, null, 5, 6]",
            r#", "status": [null, "..", "", ".", "e", null]"#,
        ));
        assert_eq!(
            cube(&table).status,
            CellStatus::Sparse {
                markers: vec!["..".into(), ".".into(), "e".into()],
                cells: vec![(1, 0), (3, 1), (4, 2)],
            }
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
    fn sizes_may_be_numeric_strings() {
        let table = decoded(
            r#"{"id": ["k", "t"], "size": ["2", "1"], "value": [1, 2],
                "dimension": {"k": {"category": {"index": ["a", "b"]}},
                              "t": {"category": {"index": ["2024"]}}}}"#,
        );
        assert_eq!(table.num_rows(), 2);
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
            }
        );
    }

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
    fn a_dimension_called_id_is_still_a_dimension_in_json_stat_2() {
        let table = decoded(
            r#"{"id": ["id"], "size": [1], "value": [3],
                "dimension": {"id": {"category": {"index": ["x"]}}}}"#,
        );
        assert_eq!(codes(&table, 0), ["x"]);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let json = format!("\u{feff}{}", two_by_three("[1, 2, 3, 4, 5, 6]", ""));
        assert_eq!(decoded(&json).num_rows(), 6);
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
    fn status_key_that_is_not_an_index_is_refused_with_its_place() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": {"x": ".."}"#)), @"test.json: line 6, column 59 does not fit a JSON-stat 2.0 dataset or a 1.x bundle; check that the source returned JSON-stat: `status` key `x` is not a cell index at line 6 column 59");
    }

    #[test]
    fn status_array_of_the_wrong_length_is_refused() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": ["a", "b"]"#)), @"test.json: `status` has 2 entries but the sizes give 6 cells (expected 1 or 6); the file is damaged");
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

    /// A dataset with dimensions `d0`, `d1`… of the given sizes (codes `c0`, `c1`…) and `value`
    /// as written.
    fn declaring(sizes: &[usize], value: &str) -> String {
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
        format!(
            "{{\"id\": [{}], \"size\": {sizes:?}, \"dimension\": {{{}}}, \"value\": {value}}}",
            ids.join(","),
            dimensions.join(",")
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
        insta::assert_snapshot!(chain(&limited(&json, DEFAULT_MAX_TABLE_CELLS).unwrap_err()), @"test.json: the table declares 4000000000 cells, more than max_table_cells = 50000000 allows; if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn sizes_whose_product_overflows_are_refused() {
        let json = declaring(&[3; 90], "{}");
        insta::assert_snapshot!(chain(&limited(&json, DEFAULT_MAX_TABLE_CELLS).unwrap_err()), @"test.json: the table declares over 2^128 cells, more than max_table_cells = 50000000 allows; if the table really is that big, raise `max_table_cells` in [source]");
    }

    #[test]
    fn dense_table_just_over_the_limit_is_refused() {
        let json = declaring(&[3, 4], "[1,2,3,4,5,6,7,8,9,10,11,12]");
        insta::assert_snapshot!(chain(&limited(&json, 10).unwrap_err()), @"test.json: the table declares 12 cells, more than max_table_cells = 10 allows; if the table really is that big, raise `max_table_cells` in [source]");
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

    // Real files, read in place; every test skips with a reason when the folder is absent.

    const REAL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/real");

    fn real(path: &str) -> Option<Vec<u8>> {
        let full = std::path::Path::new(REAL).join(path);
        match std::fs::read(&full) {
            Ok(bytes) => Some(bytes),
            Err(err) => {
                eprintln!("skipped: cannot read {} ({err})", full.display());
                None
            }
        }
    }

    fn real_table(path: &str) -> Option<SourceTable> {
        let bytes = real(path)?;
        Some(
            decode(&bytes, path, &DecodeLimits::default())
                .unwrap_or_else(|err| panic!("{}", chain(&err))),
        )
    }

    fn real_error(path: &str) -> Option<String> {
        let bytes = real(path)?;
        Some(chain(
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

    const MARKERS: [&str; 3] = ["..", ".", "-"];

    /// A cube written as JSON-stat 2.0: dimensions `d0`, `d1`… with codes `c0`, `c1`…; `value`
    /// dense or sparse; `status` as an object.
    fn written(
        sizes: &[usize],
        values: &[Option<i32>],
        statuses: &[Option<usize>],
        sparse: bool,
    ) -> String {
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
            "{{\"id\": [{}], \"size\": {sizes:?}, \"dimension\": {{{}}}, \"value\": {value}, \"status\": {{{}}}}}",
            ids.join(","),
            dimensions.join(","),
            status.join(",")
        )
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

    /// The cube and meta a document gives through the fast path and through serde alone.
    fn both_paths(json: &str) -> (Option<SourceTable>, SourceTable) {
        let fast = fast::read(json.as_bytes()).map(|raw| {
            build(pick(raw, "fast").unwrap(), "fast", &DecodeLimits::default()).unwrap()
        });
        let slow = build(
            pick(read(json.as_bytes()).unwrap(), "slow").unwrap(),
            "slow",
            &DecodeLimits::default(),
        )
        .unwrap();
        (fast, slow)
    }

    #[test]
    fn fast_path_reads_what_serde_reads() {
        let documents = [
            two_by_three("[1, 2.5, null, -4, 5e2, 6]", r#", "status": {"2": ".."}"#),
            two_by_three(
                r#"[ "1.5" , "\u002e\u002e", "a\"b", "", -0.125, 1E-3 ]"#,
                r#", "label": "x""#,
            ),
            // Not 123456789012345678901234: serde_json without `float_roundtrip` rounds it one
            // unit in the last place off; the fast path rounds correctly (see the property below).
            two_by_three(
                "[0, 12345678901234567, 0.1, 2.2250738585072014e-308, 1.7976931348623157e308, 9007199254740993]",
                "",
            ),
            two_by_three(r#"{"1": 2}"#, ""),
            two_by_three(
                "[1,2,3,4,5,6]",
                r#", "status": ["a"], "extra": {"x": [1, {"y": 2}]}"#,
            ),
        ];
        for json in &documents {
            let (fast, slow) = both_paths(json);
            let fast = fast.expect("the fast path takes a well-formed document");
            assert_eq!(cube(&fast).dimensions, cube(&slow).dimensions, "{json}");
            assert_eq!(values(&fast), values(&slow), "{json}");
            assert_eq!(cube(&fast).status, cube(&slow).status, "{json}");
            assert_eq!(fast.meta, slow.meta, "{json}");
        }
    }

    #[test]
    fn fast_path_reads_escaped_markers() {
        let table = decoded(&two_by_three(r#"["\u002e\u002e", "a\"b", 3, 4, 5, 6]"#, ""));
        assert_eq!(
            markers(&table)[..2],
            [Some("..".to_string()), Some("a\"b".to_string())]
        );
    }

    #[test]
    fn fast_path_leaves_invalid_json_to_serde() {
        for bad in [
            "[01]",
            "[1.]",
            "[.5]",
            "[-]",
            "[1 2]",
            "[nul]",
            "[1,]",
            "[\"a\u{1}\"]",
            "[1e]",
        ] {
            let json = two_by_three(bad, "");
            assert!(fast::read(json.as_bytes()).is_none(), "{bad}");
            assert!(read(json.as_bytes()).is_err(), "{bad}");
        }
        assert!(fast::read(br#"{"value": [1]} x"#).is_none());
    }

    proptest::proptest! {
        #[test]
        fn fast_number_parser_agrees_with_the_standard_parser(
            negative in proptest::bool::ANY,
            int in "0|[1-9][0-9]{0,22}",
            fraction in proptest::option::of("[0-9]{1,22}"),
            exponent in proptest::option::of(-320i32..320),
        ) {
            let mut text = format!("{}{int}", if negative { "-" } else { "" });
            if let Some(fraction) = fraction {
                text.push('.');
                text.push_str(&fraction);
            }
            if let Some(exponent) = exponent {
                text.push_str(&format!("e{exponent}"));
            }
            let (value, end) = fast::number(text.as_bytes(), 0).unwrap();
            proptest::prop_assert_eq!(end, text.len());
            proptest::prop_assert_eq!(value.to_bits(), text.parse::<f64>().unwrap().to_bits());
        }
    }

    #[test]
    fn fast_path_validity_spans_many_words() {
        let cells: Vec<Option<i32>> = (0..200)
            .map(|i| (i % 7 != 3 && i != 64).then_some(i))
            .collect();
        let json = written(&[2, 100], &cells, &vec![None; 200], false);
        assert!(fast::read(json.as_bytes()).is_some());
        let expected: Vec<Option<f64>> = cells
            .iter()
            .map(|v| v.map(|v| f64::from(v) / 4.0))
            .collect();
        assert_eq!(values(&decoded(&json)), expected);
        let all_valid = written(&[1, 130], &vec![Some(1); 130], &vec![None; 130], false);
        assert_eq!(cube(&decoded(&all_valid)).values.null_count(), 0);
    }
}
