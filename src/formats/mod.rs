//! Decoders: raw bytes of a supported format → [`SourceTable`].
//!
//! Owns: one file per format and the [`SourceTable`] they all produce.
//! Must not: fetch, validate or map codes.

pub mod table;

pub use table::{CellStatus, Chunk, Cube, Dimension, SourceMeta, SourceTable};
