//! Decoders: raw bytes of a supported format → [`SourceTable`].
//!
//! Owns: one file per format, the [`SourceTable`] they all produce, merging the pieces of one
//! table, and [`Format`], the choice a pipeline makes among them.
//! Must not: fetch, validate or map codes.

pub mod csv;
pub mod jsonstat;
pub mod merge;
pub mod table;

pub use table::{CellStatus, Chunk, Cube, Dimension, SourceMeta, SourceTable, TableError};

/// A checked `format` of a pipeline's `[source]`, with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Jsonstat,
    Csv(csv::CsvOptions),
}

/// A payload could not be decoded; the error names the file or URL.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Jsonstat(#[from] jsonstat::JsonStatError),
    #[error(transparent)]
    Csv(#[from] csv::CsvError),
}

impl Format {
    /// Decodes `bytes`; `origin` names the file or URL in errors.
    pub fn decode(&self, bytes: &[u8], origin: &str) -> Result<SourceTable, DecodeError> {
        Ok(match self {
            Format::Jsonstat => jsonstat::decode(bytes, origin)?,
            Format::Csv(options) => csv::decode(bytes, origin, options)?,
        })
    }

    /// The decimal separator numbers written as text use.
    pub fn decimal(&self) -> char {
        match self {
            Format::Jsonstat => '.',
            Format::Csv(options) => options.decimal,
        }
    }
}
