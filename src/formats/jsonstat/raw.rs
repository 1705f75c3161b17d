//! What the streaming pass collects: the dataset as written, before any check.
//!
//! Owns: the shapes a JSON-stat document's members may take as read (`RawDataset` and its parts)
//! and the interning of status markers.
//! Must not: check anything (`cube.rs` does) or read bytes (`seeds.rs` and `fast.rs` do).

use std::collections::HashMap;

use arrow_buffer::NullBuffer;

#[derive(Default)]
pub(super) struct RawDataset {
    pub(super) class: Option<String>,
    pub(super) label: Option<String>,
    pub(super) updated: Option<String>,
    pub(super) id: Option<Vec<String>>,
    pub(super) size: Option<Vec<String>>,
    pub(super) dimension: Option<RawDimensions>,
    pub(super) value: Option<RawValues>,
    pub(super) status: Option<RawStatus>,
    /// `title` of an RFC 7807 problem document (PxWeb v2 errors); JSON-stat has no `title`.
    pub(super) title: Option<String>,
    pub(super) markers: Interner,
    /// Objects under keys JSON-stat does not define, by key: the datasets of a 1.x bundle.
    pub(super) nested: Vec<(String, RawDataset)>,
}

impl RawDataset {
    pub(super) fn is_dataset(&self) -> bool {
        self.dimension.is_some() || self.id.is_some() || self.size.is_some() || self.value.is_some()
    }
}

#[derive(Default)]
pub(super) struct RawDimensions {
    pub(super) entries: Vec<(String, RawDimension)>,
    /// JSON-stat 1.x keeps `id` and `size` inside `dimension`.
    pub(super) id: Option<Vec<String>>,
    pub(super) size: Option<Vec<String>>,
}

#[derive(Default)]
pub(super) struct RawDimension {
    pub(super) label: Option<String>,
    pub(super) index: Option<RawIndex>,
    pub(super) labels: Option<Vec<(String, Option<String>)>>,
}

pub(super) enum RawIndex {
    Array(Vec<String>),
    Object(Vec<(String, u64)>),
}

pub(super) enum RawValues {
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

pub(super) enum RawStatus {
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
pub(super) struct Interner {
    pub(super) markers: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Interner {
    pub(super) fn intern(&mut self, marker: &str) -> u32 {
        if let Some(&id) = self.ids.get(marker) {
            return id;
        }
        let id = u32::try_from(self.markers.len()).expect("fewer than 2^32 distinct markers");
        self.markers.push(marker.to_string());
        self.ids.insert(marker.to_string(), id);
        id
    }
}
