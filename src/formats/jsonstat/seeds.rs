//! The serde seeds that stream a JSON-stat document into a [`RawDataset`].
//!
//! Owns: reading every member JSON-stat defines (keys in the order written, numeric strings,
//! the forms of `value` and `status`) straight from the bytes, with no `serde_json::Value`.
//! Must not: check sizes, indices or counts against each other (`cube.rs` does).

use std::fmt;

use arrow_buffer::NullBufferBuilder;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::raw::{
    Interner, RawDataset, RawDimension, RawDimensions, RawIndex, RawStatus, RawValues,
};

/// A dataset object; at the top level also the members of a 1.x bundle.
pub(super) struct DatasetSeed {
    pub(super) top: bool,
    pub(super) max_values: usize,
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
pub(super) struct Member<'a> {
    pub(super) raw: &'a mut RawDataset,
    pub(super) key: &'a str,
    pub(super) top: bool,
    pub(super) max_values: usize,
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
                if let Some(dataset) = MaybeDataset.deserialize(de)? {
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
pub(super) fn expected_cells(raw: &RawDataset) -> usize {
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
struct MaybeDataset;

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
        // A bundle member reserves nothing ahead: the bound on `value` is per file, and a
        // bundle of many members each declaring a huge `size` would otherwise reserve it
        // once per member.
        let seed = DatasetSeed {
            top: false,
            max_values: 0,
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
pub(super) fn number_in(text: &str) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    use crate::formats::CellStatus;
    use crate::formats::jsonstat::testing::*;

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
    fn sizes_may_be_numeric_strings() {
        let table = decoded(
            r#"{"id": ["k", "t"], "size": ["2", "1"], "value": [1, 2],
                "dimension": {"k": {"category": {"index": ["a", "b"]}},
                              "t": {"category": {"index": ["2024"]}}}}"#,
        );
        assert_eq!(table.num_rows(), 2);
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
    fn status_key_that_is_not_an_index_is_refused_with_its_place() {
        insta::assert_snapshot!(error(&two_by_three("[1, 2, 3, 4, 5, 6]", r#", "status": {"x": ".."}"#)), @"test.json: line 6, column 59 does not fit a JSON-stat 2.0 dataset or a 1.x bundle; check that the source returned JSON-stat: `status` key `x` is not a cell index at line 6 column 59");
    }
}
