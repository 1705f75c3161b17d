//! The DATA block: tokens into the cube's values and markers.
//!
//! Owns: splitting DATA into tokens (separated by spaces, tabs, line breaks, commas or
//! semicolons, which old files mix; the last `;`, if any, ends the block and may be glued to
//! the last number), numbers, quoted and bare markers (`".."`, `..`, `"-"`; a quoted token the file does
//! not define is kept as written, an unquoted one is refused as damage), KEYS rows (quoted stub keys,
//! then the heading cells; a row left out is a row of zeros, as the PX format says), the count
//! check, and the preliminary marks of `layout.rs` applied to cells without a marker.
//! Must not: know keywords (`layout.rs` resolved them) or what a marker means in the model.
//!
//! Speed: one pass over the bytes, tokens are slices of the text and numbers are parsed from
//! them in place, so nothing is allocated per cell; values and validity are allocated once,
//! after the layout checked the cell limit.

use std::collections::HashMap;

use arrow_array::Float64Array;
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};

use super::PxError;
use super::layout::Layout;
use super::symbols::{NAMES, Symbol};
use crate::formats::decimal;
use crate::formats::table::CellStatus;

/// The cube's cells, as [`crate::formats::Cube`] holds them.
pub(super) struct Cells {
    pub values: Float64Array,
    pub status: CellStatus,
}

/// Reads `data` (the text after `DATA=`, which is on `line`) into `layout.cells` cells.
pub(super) fn read(
    data: &str,
    line: usize,
    layout: &Layout,
    origin: &str,
) -> Result<Cells, PxError> {
    // Old DOS files end in a Ctrl-Z, and some of PxWeb's own example files without the `;`:
    // the cell count, not the `;`, tells a whole block from a cut one.
    let body = data.trim_end_matches(|c: char| c.is_whitespace() || c == '\u{1a}');
    let body = body.strip_suffix(';').unwrap_or(body);
    let mut cells = Sink::new(layout.cells);
    let mut tokens = Tokens {
        bytes: body.as_bytes(),
        text: body,
        at: 0,
        line,
    };
    match &layout.keys {
        None => read_dense(&mut tokens, &mut cells, layout, origin)?,
        Some(keys) => read_keyed(&mut tokens, &mut cells, keys, layout, origin)?,
    }
    Ok(cells.finish(layout))
}

fn read_dense(
    tokens: &mut Tokens<'_>,
    cells: &mut Sink,
    layout: &Layout,
    origin: &str,
) -> Result<(), PxError> {
    for cell in 0..layout.cells {
        if let Some(value) = tokens.next_number() {
            cells.set(cell, Cell::Number(value));
            continue;
        }
        let Some(token) = tokens.next() else {
            return Err(count_error(origin, tokens.line, cell as u64, layout));
        };
        cells.set(cell, classify(&token, layout, origin)?);
    }
    if tokens.next().is_some() {
        let line = tokens.line;
        let extra = 1 + std::iter::from_fn(|| tokens.next()).count() as u64;
        return Err(count_error(
            origin,
            line,
            layout.cells as u64 + extra,
            layout,
        ));
    }
    Ok(())
}

fn count_error(origin: &str, line: usize, found: u64, layout: &Layout) -> PxError {
    PxError::DataCount {
        origin: origin.to_string(),
        line,
        found,
        cells: layout.cells as u64,
        sizes: layout.dimensions.iter().map(|d| d.codes.len()).collect(),
    }
}

/// KEYS mode: rows of stub keys then one cell per heading combination, in any order.
fn read_keyed(
    tokens: &mut Tokens<'_>,
    cells: &mut Sink,
    keys: &[HashMap<String, usize>],
    layout: &Layout,
    origin: &str,
) -> Result<(), PxError> {
    let sizes: Vec<usize> = layout.dimensions.iter().map(|d| d.codes.len()).collect();
    let row_cells: usize = sizes[layout.stub..].iter().product();
    let rows = layout.cells.checked_div(row_cells).unwrap_or(0);
    let mut seen = vec![false; rows];
    while let Some(first) = tokens.next() {
        let line = first.line;
        let mut row = 0;
        let mut token = Some(first);
        for (d, lookup) in keys.iter().enumerate() {
            let Some(key) = token.take().or_else(|| tokens.next()) else {
                return Err(PxError::ShortRow {
                    origin: origin.to_string(),
                    line,
                    cells: row_cells,
                });
            };
            let Some(&k) = lookup.get(key.text) else {
                return Err(PxError::UnknownKey {
                    origin: origin.to_string(),
                    line: key.line,
                    key: key.text.to_string(),
                    variable: layout.dimensions[d].label.clone().unwrap_or_default(),
                });
            };
            row = row * sizes[d] + k;
        }
        if std::mem::replace(&mut seen[row], true) {
            return Err(PxError::RepeatedRow {
                origin: origin.to_string(),
                line,
            });
        }
        for cell in row * row_cells..(row + 1) * row_cells {
            let Some(token) = tokens.next() else {
                return Err(PxError::ShortRow {
                    origin: origin.to_string(),
                    line,
                    cells: row_cells,
                });
            };
            cells.set(cell, classify(&token, layout, origin)?);
        }
    }
    Ok(())
}

/// A cell as written.
enum Cell<'a> {
    Number(f64),
    /// A symbol the file defines.
    Marked(Symbol),
    /// A quoted token that is neither a number nor a symbol of the file: kept as written, so
    /// `inspect` shows it and a pipeline can give it a meaning under `[map] missing`.
    Raw(&'a str),
}

fn classify<'a>(token: &Token<'a>, layout: &Layout, origin: &str) -> Result<Cell<'a>, PxError> {
    let number = || {
        let bytes = token.text.as_bytes();
        // Nearly every cell is a plain decimal; `+5`, `.5` and `007` take the standard parser.
        if let Some((value, end)) = decimal::number(bytes, 0)
            && end == bytes.len()
        {
            return Some(value);
        }
        let looks_numeric = bytes
            .first()
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.'));
        looks_numeric
            .then(|| token.text.parse::<f64>().ok().filter(|v| v.is_finite()))
            .flatten()
    };
    let symbol = || layout.symbols.resolve(token.text).map(Cell::Marked);
    // Unquoted tokens are nearly always numbers: try that first. A quoted one is nearly always
    // a marker, but a file's own DATASYMBOLNIL may look like a number.
    if token.quoted {
        return Ok(symbol()
            .or_else(|| number().map(Cell::Number))
            .unwrap_or(Cell::Raw(token.text)));
    }
    number()
        .map(Cell::Number)
        .or_else(symbol)
        .ok_or_else(|| PxError::DataToken {
            origin: origin.to_string(),
            line: token.line,
            token: token.text.to_string(),
        })
}

/// The values, validity and markers being filled. Every cell starts as 0 (a KEYS row left out
/// is a row of zeros); dense DATA sets them all.
struct Sink {
    values: Vec<f64>,
    valid: NullBufferBuilder,
    /// (cell, marker id): a [`Symbol::index`], or `NAMES.len()` + the index in `raw`.
    marked: Vec<(u64, usize)>,
    raw: Vec<String>,
    raw_ids: HashMap<String, usize>,
}

impl Sink {
    fn new(cells: usize) -> Self {
        let mut valid = NullBufferBuilder::new(cells);
        valid.append_n_non_nulls(cells);
        Self {
            values: vec![0.0; cells],
            valid,
            marked: Vec::new(),
            raw: Vec::new(),
            raw_ids: HashMap::new(),
        }
    }

    fn set(&mut self, cell: usize, value: Cell<'_>) {
        let id = match value {
            Cell::Number(v) => {
                self.values[cell] = v;
                return;
            }
            Cell::Marked(symbol) => Some(symbol.index()),
            // `""`: no value, and nothing to say why.
            Cell::Raw("") => None,
            Cell::Raw(text) => Some(match self.raw_ids.get(text) {
                Some(&id) => id,
                None => {
                    let id = NAMES.len() + self.raw.len();
                    self.raw.push(text.to_string());
                    self.raw_ids.insert(text.to_string(), id);
                    id
                }
            }),
        };
        self.valid.set_bit(cell, false);
        if let Some(id) = id {
            self.marked.push((cell as u64, id));
        }
    }

    fn finish(mut self, layout: &Layout) -> Cells {
        // KEYS rows may come in any order.
        self.marked.sort_unstable_by_key(|&(cell, _)| cell);
        let preliminary = preliminary_cells(layout, &self.marked);
        let id = Symbol::Preliminary.index();
        self.marked
            .extend(preliminary.into_iter().map(|cell| (cell, id)));
        self.marked.sort_unstable_by_key(|&(cell, _)| cell);
        // The names in use, the file's symbols first, renumbered in that order.
        let names: Vec<&str> = NAMES
            .iter()
            .copied()
            .chain(self.raw.iter().map(String::as_str))
            .collect();
        let mut used = vec![false; names.len()];
        for &(_, id) in &self.marked {
            used[id] = true;
        }
        let mut number = vec![0u32; names.len()];
        let mut markers = Vec::new();
        for (id, name) in names.iter().enumerate().filter(|&(id, _)| used[id]) {
            number[id] = markers.len() as u32;
            markers.push(name.to_string());
        }
        let status = if markers.is_empty() {
            CellStatus::None
        } else {
            let cells = self
                .marked
                .iter()
                .map(|&(cell, id)| (cell, number[id]))
                .collect();
            CellStatus::Sparse { markers, cells }
        };
        Cells {
            values: Float64Array::new(ScalarBuffer::from(self.values), self.valid.finish()),
            status,
        }
    }
}

/// The cells of preliminary periods that DATA left unmarked, ascending. `marked` is sorted.
fn preliminary_cells(layout: &Layout, marked: &[(u64, usize)]) -> Vec<u64> {
    let sizes: Vec<usize> = layout.dimensions.iter().map(|d| d.codes.len()).collect();
    let mut cells = Vec::new();
    for (d, flags) in &layout.preliminary {
        let stride: usize = sizes[d + 1..].iter().product();
        let blocks = layout.cells / (stride * sizes[*d]).max(1);
        for block in 0..blocks {
            for (k, _) in flags.iter().enumerate().filter(|(_, f)| **f) {
                let start = (block * sizes[*d] + k) * stride;
                cells.extend((start..start + stride).map(|c| c as u64));
            }
        }
    }
    cells.sort_unstable();
    cells.dedup();
    cells.retain(|cell| marked.binary_search_by_key(cell, |&(c, _)| c).is_err());
    cells
}

/// A DATA token: a slice of the text, without its quotes.
struct Token<'a> {
    text: &'a str,
    quoted: bool,
    line: usize,
}

struct Tokens<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Tokens<'a> {
    fn skip_separators(&mut self) {
        while let Some(&b) = self.bytes.get(self.at) {
            match b {
                b'\n' => self.line += 1,
                b' ' | b'\t' | b'\r' | b',' | b';' => {}
                _ => break,
            }
            self.at += 1;
        }
    }

    /// The next token if it is a plain unquoted decimal, as nearly every cell is; else `None`
    /// with the token left for [`Tokens::next`]. A token built and classified per cell made
    /// bench/px.sh's decode take 1.6 times as long.
    #[inline]
    fn next_number(&mut self) -> Option<f64> {
        self.skip_separators();
        let (value, end) = decimal::number(self.bytes, self.at)?;
        if self
            .bytes
            .get(end)
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',' | b';'))
        {
            return None;
        }
        self.at = end;
        Some(value)
    }

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_separators();
        let start = self.at;
        if start == self.bytes.len() {
            return None;
        }
        if self.bytes[start] == b'"' {
            // An unclosed quote runs to the end of the block and is reported as a token.
            let end = memchr::memchr(b'"', &self.bytes[start + 1..])
                .map_or(self.bytes.len(), |i| start + 1 + i);
            self.line += memchr::memchr_iter(b'\n', &self.bytes[start + 1..end]).count();
            self.at = (end + 1).min(self.bytes.len());
            return Some(Token {
                text: &self.text[start + 1..end],
                quoted: true,
                line: self.line,
            });
        }
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b',' | b';' | b'"'))
        {
            self.at += 1;
        }
        Some(Token {
            text: &self.text[start..self.at],
            quoted: false,
            line: self.line,
        })
    }
}
