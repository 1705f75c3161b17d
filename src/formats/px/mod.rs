//! PC-Axis (`.px`): the bytes of a PX file become a [`Cube`] inside a [`SourceTable`].
//!
//! Owns: the decoder's entry point, its options and its errors. Every error names the file, the
//! keyword and the 1-based line, and says what to do.
//! Must not: fetch, map codes or say what a marker means in the model (`harmonise::mapping`
//! gives the marker names of `symbols.rs` their meanings).
//!
//! The work is split by concern: `encoding.rs` picks the text encoding, `grammar.rs` reads the
//! keywords up to `DATA=`, `layout.rs` turns them into dimensions (language, STUB/HEADING,
//! CODES/VALUES, TIMEVAL, KEYS) and checks the cell limit, `symbols.rs` resolves the file's
//! `DATASYMBOL*` meanings, and `data.rs` reads the DATA block. A marked cell is null in the cube
//! with its marker in the status (`DATASYMBOLNIL` too: the mapping turns it into a true 0).

mod data;
mod encoding;
mod grammar;
mod layout;
mod symbols;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write;

pub use layout::DEFAULT_LANG;

use super::DecodeLimits;
use super::table::{Cube, SourceMeta, SourceTable};

/// How a PX file is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PxOptions {
    /// The language to read (`sv`, `en`); the file must have it. `None`: `sv` if the file has
    /// it, else its main `LANGUAGE`.
    pub lang: Option<String>,
}

/// Why a PX file could not be decoded. Every variant names the file (`origin`) and a line.
#[derive(Debug, thiserror::Error)]
pub enum PxError {
    #[error(
        "{origin}: line {line} is not valid {encoding}; declare the file's encoding in its header \
         (`CODEPAGE=\"windows-1252\";` or the right one) or save it as UTF-8"
    )]
    Encoding {
        origin: String,
        line: usize,
        encoding: String,
    },
    #[error(
        "{origin}: line {line}, `CODEPAGE`: `{label}` is not an encoding this decoder reads; use \
         utf-8, windows-1252, iso-8859-1 or iso-8859-15, or save the file as UTF-8"
    )]
    Codepage {
        origin: String,
        line: usize,
        label: String,
    },
    #[error(
        "{origin}: line {line}, `{keyword}`: expected {expected}, found {found}; the file is \
         damaged or not PC-Axis: fix that line or export the table again"
    )]
    Syntax {
        origin: String,
        keyword: String,
        line: usize,
        expected: &'static str,
        found: String,
    },
    #[error(
        "{origin}: the file ends at line {line} without `DATA=`; the file is truncated or not a \
         PX file: export the table again"
    )]
    NoData { origin: String, line: usize },
    #[error(
        "{origin}: no `{keyword}` before `DATA=` (line {line}); the file needs it: add it or \
         export the table again"
    )]
    Missing {
        origin: String,
        keyword: String,
        line: usize,
    },
    #[error(
        "{origin}: line {line}, `{keyword}` is `{value}` but must be {expected}; fix that line \
         or export the table again"
    )]
    BadValue {
        origin: String,
        keyword: String,
        line: usize,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{origin}: line {line}, `{keyword}` lists {found} values but `{of}` has {expected}; \
         they must match one to one: fix the file or export the table again"
    )]
    Count {
        origin: String,
        keyword: String,
        line: usize,
        found: usize,
        expected: usize,
        of: String,
    },
    #[error(
        "{origin}: line {line}, `LANGUAGES`: the file has no language `{lang}` (it has {}); set \
         `lang` in [source] to one of those or remove it",
        if .available.is_empty() { "none declared".to_string() } else { .available.join(", ") }
    )]
    Language {
        origin: String,
        lang: String,
        line: usize,
        available: Vec<String>,
    },
    #[error(
        "{origin}: line {line}, `VALUES`: the variables give {} cells, more than \
         max_table_cells = {limit} allows; if the table really is that big, raise \
         `max_table_cells` in [source]",
        .cells.map_or("over 2^128".to_string(), |cells| cells.to_string())
    )]
    TooManyCells {
        origin: String,
        line: usize,
        /// The product of the VALUES counts; `None` when it does not even fit a u128.
        cells: Option<u128>,
        limit: u64,
    },
    #[error(
        "{origin}: line {line}, `DATA`: {found} cells where the VALUES give {cells} (sizes \
         {sizes:?}); the file is truncated or its VALUES are wrong: export the table again"
    )]
    DataCount {
        origin: String,
        line: usize,
        found: u64,
        cells: u64,
        sizes: Vec<usize>,
    },
    #[error(
        "{origin}: line {line}, `DATA`: `{token}` is neither a number nor a symbol of the file \
         (1 to 6 dots, `-`, its DATASYMBOLNIL or DATASYMBOLSUM); fix the cell, or quote it if it \
         is a marker of the producer's own"
    )]
    DataToken {
        origin: String,
        line: usize,
        token: String,
    },
    #[error(
        "{origin}: line {line}, `DATA`: key `{key}` is not one of `{variable}`'s values or codes \
         (as its `KEYS` says); fix the row or the KEYS keyword"
    )]
    UnknownKey {
        origin: String,
        line: usize,
        key: String,
        variable: String,
    },
    #[error(
        "{origin}: line {line}, `DATA`: this KEYS row has the keys of an earlier row; remove one \
         of them"
    )]
    RepeatedRow { origin: String, line: usize },
    #[error(
        "{origin}: line {line}, `DATA`: the KEYS row ends before its keys and {cells} cells; the \
         file is truncated: export it again"
    )]
    ShortRow {
        origin: String,
        line: usize,
        cells: usize,
    },
    #[error(
        "{origin}: line {line}, `{keyword}`: `{text}` appears twice; each variable and each of \
         its values needs a code of its own: fix the file or export the table again"
    )]
    Duplicate {
        origin: String,
        keyword: String,
        line: usize,
        text: String,
    },
}

/// Decodes a PX file into a cube; `origin` names the file in errors.
///
/// The cube's dimensions are the STUB then the HEADING variables, its cells in DATA's order (the
/// last heading variable fastest), its markers the names of `symbols.rs` (`DATASYMBOL2`,
/// `DATASYMBOLNIL`, `PRELIMINARY`, …, or a quoted token it does not define, as written). A table with more cells than
/// `limits.max_table_cells` is refused before its values are allocated. The meta holds the
/// title (`TITLE`, else `DESCRIPTION`, in the chosen language), the latest `LAST-UPDATED` as
/// written, and the encoding used. See `layout.rs` for the language choice.
pub fn decode(
    bytes: &[u8],
    origin: &str,
    options: &PxOptions,
    limits: &DecodeLimits,
) -> Result<SourceTable, PxError> {
    let decoded = encoding::decode(bytes, origin)?;
    let text = decoded.text.as_ref();
    let header = grammar::parse(text, origin)?;
    let layout = layout::build(&header.entries, header.data_line, options, origin, limits)?;
    let cells = data::read(&text[header.data..], header.data_line, &layout, origin)?;
    let cube = Cube {
        dimensions: layout.dimensions,
        values: cells.values,
        status: cells.status,
    };
    let meta = SourceMeta {
        encoding: Some(decoded.encoding),
        ..layout.meta
    };
    Ok(SourceTable::from_cube(cube, meta)
        .expect("the layout gave distinct ids and codes, and data.rs one value per cell"))
}
