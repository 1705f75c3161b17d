//! Decoders: raw bytes of a supported format → [`SourceTable`].
//!
//! Owns: one file per format, the [`SourceTable`] they all produce, merging the pieces of one
//! table, [`Format`], the choice a pipeline makes among them, and [`DecodeLimits`], how big a
//! table a decoder may build.
//! Must not: fetch, validate or map codes.

pub mod csv;
pub mod decimal;
pub mod jsonstat;
pub mod kolada;
pub mod merge;
pub mod px;
mod rows;
pub mod table;
pub mod xlsx;

pub use table::{CellStatus, Chunk, Cube, Dimension, SourceMeta, SourceTable, TableError};

/// A checked `format` of a pipeline's `[source]`, with its options.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Jsonstat,
    Csv(csv::CsvOptions),
    /// Kolada API v3 data pages.
    Kolada(kolada::KoladaOptions),
    /// PC-Axis files.
    Px(px::PxOptions),
    /// One sheet of an Excel workbook.
    Xlsx(xlsx::XlsxOptions),
}

/// Default for [`DecodeLimits::max_table_cells`]. A cell costs about 9 bytes in the decoded
/// cube (an f64 value and a validity bit, plus the status of marked cells) and several times that
/// while a year of it is harmonised, so 50 million cells stay within a few GB. That is five times
/// the benchmark cube (10 million cells) and far above any table a statistics API hands out in
/// one response, yet a file that declares billions of cells (a sparse JSON-stat `value` object
/// lets a 42 KB file do that) is refused before its dense values are allocated.
pub const DEFAULT_MAX_TABLE_CELLS: u64 = 50_000_000;

/// How big a table a decoder may build from one payload: every size a file declares is checked
/// against these before anything of that size is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The most cells a table may have: a JSON-stat cube's product of `size`, a PX file's
    /// product of VALUES counts, a CSV file's data rows × columns, or the rows × columns of an
    /// XLSX sheet's used range.
    pub max_table_cells: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_table_cells: DEFAULT_MAX_TABLE_CELLS,
        }
    }
}

/// A payload could not be decoded; the error names the file or URL.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Jsonstat(#[from] jsonstat::JsonStatError),
    #[error(transparent)]
    Csv(#[from] csv::CsvError),
    /// Boxed: its messages carry the row's codes, and every run's error holds a decode error.
    #[error(transparent)]
    Kolada(Box<kolada::KoladaError>),
    /// Boxed: its messages carry the keyword and what was found.
    #[error(transparent)]
    Px(Box<px::PxError>),
    /// Boxed: it carries file, sheet and cell names, and calamine's error as its source.
    #[error(transparent)]
    Xlsx(Box<xlsx::XlsxError>),
}

impl From<px::PxError> for DecodeError {
    fn from(error: px::PxError) -> Self {
        Self::Px(Box::new(error))
    }
}

impl From<xlsx::XlsxError> for DecodeError {
    fn from(error: xlsx::XlsxError) -> Self {
        Self::Xlsx(Box::new(error))
    }
}

impl From<kolada::KoladaError> for DecodeError {
    fn from(error: kolada::KoladaError) -> Self {
        Self::Kolada(Box::new(error))
    }
}

impl Format {
    /// Decodes `bytes`; `origin` names the file or URL in errors. A table bigger than `limits`
    /// allows is refused with an error saying which limit to raise.
    pub fn decode(
        &self,
        bytes: &[u8],
        origin: &str,
        limits: &DecodeLimits,
    ) -> Result<SourceTable, DecodeError> {
        Ok(match self {
            Format::Jsonstat => jsonstat::decode(bytes, origin, limits)?,
            Format::Csv(options) => csv::decode(bytes, origin, options, limits)?,
            Format::Kolada(options) => kolada::decode(bytes, origin, options, limits)?,
            Format::Px(options) => px::decode(bytes, origin, options, limits)?,
            Format::Xlsx(options) => xlsx::decode(bytes, origin, options, limits)?,
        })
    }

    /// The decimal separator numbers written as text use.
    pub fn decimal(&self) -> char {
        match self {
            // XLSX numbers are written as text by the decoder itself, always with `.`.
            Format::Jsonstat | Format::Kolada(_) | Format::Px(_) | Format::Xlsx(_) => '.',
            Format::Csv(options) => options.decimal,
        }
    }
}
