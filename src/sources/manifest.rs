//! The record a network source keeps beside its archived payloads: every request it made and
//! what came back, so that a later `replay` can re-process a run without the network and an
//! operator can see exactly what was asked.
//!
//! Owns: the manifest's shape (`manifest.json` under `raw/<pipeline>/<run>/`).
//! Must not: archive anything itself (the run archives the manifest with the payloads).

use serde::Serialize;

/// The name the manifest is archived under.
pub const MANIFEST_NAME: &str = "manifest.json";

/// What one fetch asked and got.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Manifest {
    /// The source kind (`pxweb`, `pxweb2`).
    pub kind: String,
    /// The table as the source names it (`TAB638`, `BefolkningNy`).
    pub table: String,
    /// The table's own URL.
    pub url: String,
    /// The table's `updated` when it was fetched.
    pub updated: Option<String>,
    /// The limits the requests were planned for.
    pub max_cells: u64,
    pub max_values: Option<u64>,
    /// Every request, in the order sent: metadata first, then the data pieces.
    pub requests: Vec<Exchange>,
}

/// One request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exchange {
    /// The archived payload holding the answer (`piece-0003.json`, `metadata.json`).
    pub name: String,
    pub method: &'static str,
    pub url: String,
    /// The JSON body sent with a POST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    pub status: u16,
    /// The body's bytes; for a refusal, the bytes of its start that were kept.
    pub bytes: u64,
    /// blake3 of the answer's body as received; `None` for a refusal (no body is archived).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Part of a harvest that was started again (the table changed meanwhile): archived, not
    /// decoded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub discarded: bool,
    /// For a data piece: the cells it asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cells: Option<u64>,
}

impl Manifest {
    /// The manifest as the bytes archived.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest is plain JSON")
    }
}
