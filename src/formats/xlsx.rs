//! XLSX: one sheet of an Excel workbook (Office Open XML, via calamine) → [`SourceTable`].
//!
//! Owns: choosing the sheet, finding the header row, turning each cell into text, filling merged
//! regions and skipping blank rows, with each row's own sheet row number.
//! Must not: read files, parse numbers or decide what an empty cell means — every column is text
//! and an empty cell is "", as an empty CSV field (the harmoniser reads numbers with decimal `.`).
//!
//! Cell → text: text as written (`0114` stays `0114`, no trimming); a number as its shortest
//! round-trip form (`1711`, not `1711.0`; `12.5`); a date as ISO 8601 (`2024-03-01`, or
//! `2024-03-01T08:30:00` when it has a time); a boolean as `true`/`false`; an error cell as
//! Excel shows it (`#N/A`, `#DIV/0!`), so validation refuses it as a number rather than reading
//! it as missing.

use std::borrow::Cow;
use std::io::Cursor;

use calamine::{DataRef, Reader, Xlsx};
use encoding_rs::UTF_8;

use super::DecodeLimits;
use super::rows::{self, Column};
use super::table::SourceTable;

/// XLSX options of a pipeline's `[source]` (all have defaults).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XlsxOptions {
    /// The sheet that holds the table; default the first.
    pub sheet: SheetChoice,
    /// The 1-based sheet row that names the columns (at least 1); `None` = detected (see
    /// [`decode`]).
    pub header_row: Option<usize>,
}

/// Which sheet of the workbook holds the table.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SheetChoice {
    /// The first sheet in the workbook's tab order.
    #[default]
    First,
    /// The sheet with this name (exactly as on its tab).
    Name(String),
    /// The sheet at this 1-based position in tab order.
    Index(usize),
}

/// Why a workbook could not be decoded. Every variant names the file (`origin`) and, once one is
/// chosen, the sheet; cells are named as Excel writes them (`C7`).
#[derive(Debug, thiserror::Error)]
pub enum XlsxError {
    #[error(
        "{origin}: not an Excel workbook (.xlsx); an old .xls or an .ods must be saved as .xlsx \
         first, or set `format` in [source] to the file's real format"
    )]
    NotXlsx {
        origin: String,
        #[source]
        source: calamine::XlsxError,
    },
    #[error(
        "{origin}: the workbook has no sheet {wanted}; its sheets are {sheets}; set `sheet` in [source] to one of them"
    )]
    NoSheet {
        origin: String,
        wanted: String,
        sheets: String,
    },
    #[error("{origin}, sheet `{sheet}`: cannot read the sheet")]
    Read {
        origin: String,
        sheet: String,
        #[source]
        source: calamine::XlsxError,
    },
    #[error(
        "{origin}, sheet `{sheet}`: no row has text in every column {columns}, so none is taken \
         as the header; set `header_row` in [source] to the row that names the columns"
    )]
    NoHeader {
        origin: String,
        sheet: String,
        columns: String,
    },
    #[error(
        "{origin}, sheet `{sheet}`: header_row = {row} is outside the used range {range}; set \
         `header_row` in [source] to the row that names the columns"
    )]
    HeaderOutside {
        origin: String,
        sheet: String,
        row: usize,
        range: String,
    },
    #[error(
        "{origin}, sheet `{sheet}`: header cell {cell} is empty; name the column in the file, or \
         set `header_row` in [source] to the row that names the columns"
    )]
    EmptyName {
        origin: String,
        sheet: String,
        cell: String,
    },
    #[error(
        "{origin}, sheet `{sheet}`: the header names column `{name}` twice ({first} and \
         {second}); rename one in the file"
    )]
    DuplicateName {
        origin: String,
        sheet: String,
        name: String,
        first: String,
        second: String,
    },
    #[error(
        "{origin}, sheet `{sheet}`: the used range {range} has more cells than \
         max_table_cells = {limit} allows; if the table really is that big, raise \
         `max_table_cells` in [source]"
    )]
    TooManyCells {
        origin: String,
        sheet: String,
        range: String,
        limit: u64,
    },
    #[error(
        "{origin}, sheet `{sheet}`: more cells hold a value than max_table_cells = {limit} \
         allows; if the table really is that big, raise `max_table_cells` in [source]"
    )]
    TooManyValues {
        origin: String,
        sheet: String,
        limit: u64,
    },
    #[error(
        "{origin}, sheet `{sheet}`: column `{column}` has more than 2 GiB of distinct text, more \
         than one Arrow array holds; split the sheet"
    )]
    TooLarge {
        origin: String,
        sheet: String,
        column: String,
    },
}

/// Decodes one sheet of XLSX bytes into a table of text columns named by its header row.
/// `origin` names the file in errors.
///
/// The table spans the sheet's used range: from the first to the last row and column that hold
/// a value. The header row is `options.header_row`, or else the first row with text in every
/// column of the used range (a title above the table, or a row of numbers, is not a header);
/// rows above it are ignored. Every column is `Dictionary(Int32, Utf8)` with no nulls; cells
/// become text as the module docs say, and an empty cell is "". A merged region's value fills
/// every cell of the region, so a merged area label applies to each row it spans. Rows after
/// the header with every cell empty are skipped; each row's number is its 1-based sheet row.
///
/// Errors: bytes that are not an XLSX workbook, a sheet that is not there (listing those that
/// are), no header row found, empty or duplicate header names (naming the cells), and a used
/// range of more than `limits.max_table_cells` cells (checked before any column is built).
pub fn decode(
    bytes: &[u8],
    origin: &str,
    options: &XlsxOptions,
    limits: &DecodeLimits,
) -> Result<SourceTable, XlsxError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|source| XlsxError::NotXlsx {
        origin: origin.to_owned(),
        source,
    })?;
    let sheet = choose_sheet(&workbook.sheet_names(), &options.sheet).ok_or_else(|| {
        XlsxError::NoSheet {
            origin: origin.to_owned(),
            wanted: match &options.sheet {
                SheetChoice::First => "at all".to_owned(),
                SheetChoice::Name(name) => format!("named `{name}`"),
                SheetChoice::Index(i) => format!("number {i}"),
            },
            sheets: sheet_list(&workbook.sheet_names()),
        }
    })?;
    let read_error = |source| XlsxError::Read {
        origin: origin.to_owned(),
        sheet: sheet.clone(),
        source,
    };
    // `<mergeCells>` follows the cell data in the sheet's XML, so this is a pass of its own.
    let merged = workbook
        .merge_cells_by_sheet_name(&sheet)
        .map_err(read_error)?;
    let cells = read_cells(&mut workbook, &sheet, limits).map_err(|error| match error {
        ReadError::Calamine(source) => read_error(source),
        ReadError::TooMany => XlsxError::TooManyValues {
            origin: origin.to_owned(),
            sheet: sheet.clone(),
            limit: limits.max_table_cells,
        },
    })?;
    let grid = Grid::new(cells, &merged);
    let cx = Context {
        origin,
        sheet: &sheet,
    };
    if grid.cells() > limits.max_table_cells {
        return Err(XlsxError::TooManyCells {
            origin: origin.to_owned(),
            sheet: sheet.clone(),
            range: grid.range(),
            limit: limits.max_table_cells,
        });
    }
    table(&grid, options.header_row, &cx)
}

/// The name of the chosen sheet among `names` (tab order), if there is one.
fn choose_sheet(names: &[String], choice: &SheetChoice) -> Option<String> {
    match choice {
        SheetChoice::First => names.first().cloned(),
        SheetChoice::Name(name) => names.iter().find(|n| *n == name).cloned(),
        SheetChoice::Index(i) => i.checked_sub(1).and_then(|i| names.get(i)).cloned(),
    }
}

/// `names` as "`A`, `B`" (or "none").
fn sheet_list(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    quoted.join(", ")
}

/// What error messages need to know about the input.
struct Context<'a> {
    origin: &'a str,
    sheet: &'a str,
}

/// One cell with a value: 0-based (row, column), its text, and whether it was written as text
/// (a header row must be all text).
struct Cell<'a> {
    row: u32,
    column: u32,
    text: Cow<'a, str>,
    is_text: bool,
}

enum ReadError {
    Calamine(calamine::XlsxError),
    /// More cells with a value than the limit allows cells at all.
    TooMany,
}

/// The sheet's cells that hold a value, in sheet order. Stops past `limits.max_table_cells`
/// values, so a compressed sheet cannot make us hold more than the limit's worth of cells.
fn read_cells<'a>(
    workbook: &'a mut Xlsx<Cursor<&[u8]>>,
    sheet: &str,
    limits: &DecodeLimits,
) -> Result<Vec<Cell<'a>>, ReadError> {
    let mut reader = workbook
        .worksheet_cells_reader(sheet)
        .map_err(ReadError::Calamine)?;
    let mut cells = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(ReadError::Calamine)? {
        let (row, column) = cell.get_position();
        let Some((text, is_text)) = text_of(cell.get_value()) else {
            continue;
        };
        if cells.len() as u64 == limits.max_table_cells {
            return Err(ReadError::TooMany);
        }
        cells.push(Cell {
            row,
            column,
            text,
            is_text,
        });
    }
    // Sheets are written row by row; a writer that does otherwise still gets sheet order.
    cells.sort_by_key(|c| (c.row, c.column));
    Ok(cells)
}

/// A cell's value as text and whether it was text; `None` for an empty cell.
fn text_of<'a>(value: &DataRef<'a>) -> Option<(Cow<'a, str>, bool)> {
    let text = match value {
        DataRef::Empty | DataRef::SharedString("") => return None,
        DataRef::String(text) if text.is_empty() => return None,
        DataRef::String(text) => return Some((Cow::Owned(text.clone()), true)),
        DataRef::SharedString(text) => return Some((Cow::Borrowed(*text), true)),
        DataRef::Int(n) => n.to_string(),
        // Rust's `Display` for f64 is the shortest text that reads back as the same number,
        // without exponent and without `.0` for whole numbers.
        DataRef::Float(x) => x.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(datetime) if datetime.is_datetime() => {
            let (y, mo, d, h, mi, s, ms) = datetime.to_ymd_hms_milli();
            match (h, mi, s, ms) {
                (0, 0, 0, 0) => format!("{y:04}-{mo:02}-{d:02}"),
                (_, _, _, 0) => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"),
                _ => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}"),
            }
        }
        // A duration (`[h]:mm` format) has no calendar date: its number of days, as stored.
        DataRef::DateTime(duration) => duration.as_f64().to_string(),
        DataRef::DateTimeIso(text) | DataRef::DurationIso(text) => text.clone(),
        DataRef::Error(error) => error.to_string(),
    };
    Some((Cow::Owned(text), false))
}

/// The used range of a sheet, with merged regions clipped to it.
struct Grid<'a> {
    cells: Vec<Cell<'a>>,
    /// 0-based first and last row and column of the used range (`None`: no cell has a value).
    bounds: Option<((u32, u32), (u32, u32))>,
    /// Merged regions (0-based (row, column) of their corners) with the index in `cells` of
    /// their top-left cell, whose value fills them; sorted by first row.
    merged: Vec<(calamine::Dimensions, usize)>,
}

impl<'a> Grid<'a> {
    fn new(cells: Vec<Cell<'a>>, merged: &[calamine::Dimensions]) -> Self {
        let bounds = cells.first().map(|first| {
            let last = cells.last().expect("a first cell");
            let (left, right) = cells.iter().fold((u32::MAX, 0), |(l, r), c| {
                (l.min(c.column), r.max(c.column))
            });
            ((first.row, left), (last.row, right))
        });
        // A region whose top-left cell is empty has nothing to fill in.
        let mut merged: Vec<_> = merged
            .iter()
            .filter_map(|region| {
                let top_left = cells
                    .binary_search_by_key(&region.start, |c| (c.row, c.column))
                    .ok()?;
                Some((*region, top_left))
            })
            .collect();
        merged.sort_unstable_by_key(|(region, _)| region.start.0);
        Self {
            cells,
            bounds,
            merged,
        }
    }

    /// Rows × columns of the used range.
    fn cells(&self) -> u64 {
        self.bounds.map_or(0, |((top, left), (bottom, right))| {
            u64::from(bottom - top + 1) * u64::from(right - left + 1)
        })
    }

    /// The used range as Excel writes it (`A1:E18011`).
    fn range(&self) -> String {
        match self.bounds {
            Some(((top, left), (bottom, right))) => {
                format!("{}:{}", cell_name(top, left), cell_name(bottom, right))
            }
            None => "(empty)".to_owned(),
        }
    }

    /// Every row of the used range that has a cell of its own (a row that only a merged region
    /// spans is blank): its 0-based row and its fields (text, was text), one per column of the
    /// used range, merged regions filled in.
    fn rows(&self) -> impl Iterator<Item = (u32, Vec<(&str, bool)>)> + '_ {
        // An empty sheet: top > bottom, so no rows.
        let ((top, left), (bottom, right)) = self.bounds.unwrap_or(((1, 0), (0, 0)));
        let width = (right + 1).saturating_sub(left) as usize;
        let mut next = 0;
        // The regions that span `row`: those that start by then and have not ended, so a sheet of
        // many merged labels costs per row only the regions at that row.
        let (mut next_region, mut active) = (0, Vec::new());
        (top..=bottom).filter_map(move |row| {
            while let Some((region, _)) = self.merged.get(next_region) {
                if region.start.0 > row {
                    break;
                }
                active.push(next_region);
                next_region += 1;
            }
            active.retain(|&i| self.merged[i].0.end.0 >= row);
            let mut fields = vec![("", false); width];
            let start = next;
            while let Some(cell) = self.cells.get(next).filter(|c| c.row == row) {
                fields[(cell.column - left) as usize] = (&cell.text, cell.is_text);
                next += 1;
            }
            if next == start {
                return None;
            }
            for &i in &active {
                let (region, top_left) = self.merged[i];
                let value = &self.cells[top_left];
                for column in region.start.1.max(left)..=region.end.1.min(right) {
                    fields[(column - left) as usize] = (&value.text, value.is_text);
                }
            }
            Some((row, fields))
        })
    }

    /// 0-based first column of the used range.
    fn left(&self) -> u32 {
        self.bounds.map_or(0, |((_, left), _)| left)
    }

    /// The columns of the used range as Excel writes them (`(A to E)`).
    fn columns(&self) -> String {
        match self.bounds {
            Some(((_, left), (_, right))) => {
                format!("({} to {})", column_name(left), column_name(right))
            }
            None => "(the sheet is empty)".to_owned(),
        }
    }
}

/// The table of `grid` with its header at the 1-based `header_row`, or detected.
fn table(
    grid: &Grid<'_>,
    header_row: Option<usize>,
    cx: &Context<'_>,
) -> Result<SourceTable, XlsxError> {
    let mut rows = grid.rows();
    let header = match header_row {
        Some(wanted) => {
            let outside = || XlsxError::HeaderOutside {
                origin: cx.origin.to_owned(),
                sheet: cx.sheet.to_owned(),
                row: wanted,
                range: grid.range(),
            };
            let wanted = wanted
                .checked_sub(1)
                .and_then(|row| u32::try_from(row).ok())
                .ok_or_else(outside)?;
            match grid.bounds {
                Some(((top, _), (bottom, _))) if (top..=bottom).contains(&wanted) => {}
                _ => return Err(outside()),
            }
            // A blank row: its first cell is the empty name.
            match rows.find(|(row, _)| *row >= wanted) {
                Some(row) if row.0 == wanted => row,
                _ => (wanted, vec![("", false); 1]),
            }
        }
        None => rows
            .find(|(_, fields)| {
                fields
                    .iter()
                    .all(|(text, is_text)| *is_text && !text.is_empty())
            })
            .ok_or_else(|| XlsxError::NoHeader {
                origin: cx.origin.to_owned(),
                sheet: cx.sheet.to_owned(),
                columns: grid.columns(),
            })?,
    };
    let names = header_names(&header, grid.left(), cx)?;
    let mut columns: Vec<Column> = names.iter().map(|_| Column::default()).collect();
    let mut numbers = Vec::new();
    for (row, fields) in rows {
        for (column, (text, _)) in columns.iter_mut().zip(&fields) {
            column
                .push(text.as_bytes(), UTF_8)
                .expect("cell text is a str, so valid UTF-8");
        }
        numbers.push(u64::from(row) + 1);
    }
    rows::finish(names, columns, numbers).map_err(|rows::TooLarge { column }| XlsxError::TooLarge {
        origin: cx.origin.to_owned(),
        sheet: cx.sheet.to_owned(),
        column,
    })
}

/// The header's names, trimmed of surrounding whitespace; refuses empty and repeated ones.
fn header_names(
    (row, fields): &(u32, Vec<(&str, bool)>),
    left: u32,
    cx: &Context<'_>,
) -> Result<Vec<String>, XlsxError> {
    let cell = |i: usize| cell_name(*row, left + i as u32);
    let mut names: Vec<String> = Vec::with_capacity(fields.len());
    for (i, (text, _)) in fields.iter().enumerate() {
        let name = text.trim();
        if name.is_empty() {
            return Err(XlsxError::EmptyName {
                origin: cx.origin.to_owned(),
                sheet: cx.sheet.to_owned(),
                cell: cell(i),
            });
        }
        if let Some(earlier) = names.iter().position(|n| n == name) {
            return Err(XlsxError::DuplicateName {
                origin: cx.origin.to_owned(),
                sheet: cx.sheet.to_owned(),
                name: name.to_owned(),
                first: cell(earlier),
                second: cell(i),
            });
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// A 0-based cell position as Excel writes it: `(6, 2)` → `C7`.
fn cell_name(row: u32, column: u32) -> String {
    format!("{}{}", column_name(column), u64::from(row) + 1)
}

/// A 0-based column as Excel's letters: 0 → `A`, 25 → `Z`, 26 → `AA`.
fn column_name(column: u32) -> String {
    let mut letters = Vec::new();
    let mut n = column + 1;
    while n > 0 {
        n -= 1;
        letters.push(b'A' + (n % 26) as u8);
        n /= 26;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::rows::testing::{names, rows};
    use arrow_array::Array;
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet};

    /// Writes the cells of one sheet.
    type Fill<'a> = &'a dyn Fn(&mut Worksheet);

    /// A workbook of the given sheets, each filled by its function.
    fn workbook(sheets: &[(&str, Fill<'_>)]) -> Vec<u8> {
        let mut book = Workbook::new();
        for (name, fill) in sheets {
            let sheet = book.add_worksheet();
            sheet.set_name(*name).unwrap();
            fill(sheet);
        }
        book.save_to_buffer().unwrap()
    }

    /// Writes `rows` from A1 on: numbers for `f64` cells, text for the rest ("" = no cell).
    fn fill(sheet: &mut Worksheet, rows: &[&[Value]]) {
        for (r, row) in rows.iter().enumerate() {
            for (c, value) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match value {
                    Value::Text("") => {}
                    Value::Text(text) => drop(sheet.write_string(r, c, *text).unwrap()),
                    Value::Number(x) => drop(sheet.write_number(r, c, *x).unwrap()),
                }
            }
        }
    }

    enum Value {
        Text(&'static str),
        Number(f64),
    }
    use Value::{Number as N, Text as T};

    fn decode_with(bytes: &[u8], options: &XlsxOptions) -> Result<SourceTable, XlsxError> {
        decode(bytes, "enkat.xlsx", options, &DecodeLimits::default())
    }

    fn decode_ok(bytes: &[u8]) -> SourceTable {
        decode_with(bytes, &XlsxOptions::default()).unwrap()
    }

    fn err(bytes: &[u8], options: &XlsxOptions) -> String {
        decode_with(bytes, options).unwrap_err().to_string()
    }

    /// A title, a blank row, then a table with area codes as text and a merged area label.
    fn survey(sheet: &mut Worksheet) {
        fill(
            sheet,
            &[
                &[T("Enkät 2024, andel som svarat ja")],
                &[],
                &[T("län"), T("kommun"), T("år"), T("andel")],
                &[T(""), T("0114"), N(2024.0), N(12.5)],
                &[T(""), T("0115"), N(2024.0), N(7.0)],
                &[],
                &[T(""), T("0180"), N(2024.0), N(0.1)],
            ],
        );
        sheet
            .merge_range(3, 0, 6, 0, "Stockholms län", &Format::new())
            .unwrap();
    }

    #[test]
    fn header_is_the_first_row_of_text_in_every_column() {
        let table = decode_ok(&workbook(&[("Data", &survey)]));
        assert_eq!(names(&table), ["län", "kommun", "år", "andel"]);
    }

    #[test]
    fn merged_cells_fill_their_region_and_blank_rows_are_skipped_with_numbers_kept() {
        let (rows, numbers) = rows(&decode_ok(&workbook(&[("Data", &survey)])));
        assert_eq!(
            rows,
            [
                ["Stockholms län", "0114", "2024", "12.5"],
                ["Stockholms län", "0115", "2024", "7"],
                ["Stockholms län", "0180", "2024", "0.1"],
            ]
        );
        // Row 6 is blank in the file; that the merged label spans it does not make it a row.
        assert_eq!(numbers, [4, 5, 7]);
    }

    #[test]
    fn a_given_header_row_wins_over_detection() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(
                s,
                &[
                    &[T("kod"), T("namn")],
                    &[N(114.0), T("Upplands Väsby")],
                    &[N(115.0), T("Vallentuna")],
                ],
            )
        })]);
        let options = XlsxOptions {
            header_row: Some(2),
            ..XlsxOptions::default()
        };
        let table = decode_with(&bytes, &options).unwrap();
        assert_eq!(names(&table), ["114", "Upplands Väsby"]);
        assert_eq!(
            rows(&table),
            (vec![vec!["115".into(), "Vallentuna".into()]], vec![3])
        );
    }

    #[test]
    fn text_codes_keep_leading_zeros_and_numbers_are_shortest_text() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(
                s,
                &[
                    &[T("kod"), T("heltal"), T("decimal"), T("stor"), T("negativ")],
                    &[T("0114"), N(1711.0), N(0.1 + 0.2), N(1e16), N(-362.0)],
                    &[T(" 01 "), N(0.0), N(12.5), N(123456789012.0), N(-0.25)],
                ],
            )
        })]);
        let (rows, _) = rows(&decode_ok(&bytes));
        assert_eq!(
            rows,
            [
                [
                    "0114",
                    "1711",
                    "0.30000000000000004",
                    "10000000000000000",
                    "-362"
                ],
                [" 01 ", "0", "12.5", "123456789012", "-0.25"],
            ]
        );
    }

    #[test]
    fn dates_booleans_and_error_cells_become_text() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(s, &[&[T("dag"), T("tid"), T("sant"), T("fel")]]);
            let date = Format::new().set_num_format("yyyy-mm-dd");
            let time = Format::new().set_num_format("yyyy-mm-dd hh:mm");
            let day = ExcelDateTime::from_ymd(2024, 3, 1).unwrap();
            let moment = ExcelDateTime::parse_from_str("2024-03-01T08:30:00").unwrap();
            s.write_datetime_with_format(1, 0, &day, &date).unwrap();
            s.write_datetime_with_format(1, 1, &moment, &time).unwrap();
            s.write_boolean(1, 2, true).unwrap();
            let na = rust_xlsxwriter::Formula::new("=NA()").set_result("#N/A");
            s.write_formula(1, 3, na).unwrap();
        })]);
        let (rows, _) = rows(&decode_ok(&bytes));
        assert_eq!(
            rows,
            [["2024-03-01", "2024-03-01T08:30:00", "true", "#N/A"]]
        );
    }

    #[test]
    fn a_sheet_is_chosen_by_name_or_by_1_based_index() {
        let second = |s: &mut Worksheet| fill(s, &[&[T("b")], &[T("andra")]]);
        let bytes = workbook(&[("Data", &survey), ("Andra", &second)]);
        for sheet in [SheetChoice::Name("Andra".into()), SheetChoice::Index(2)] {
            let options = XlsxOptions {
                sheet,
                header_row: None,
            };
            let table = decode_with(&bytes, &options).unwrap();
            assert_eq!(rows(&table), (vec![vec!["andra".to_owned()]], vec![2]));
        }
        let first = decode_with(
            &bytes,
            &XlsxOptions {
                sheet: SheetChoice::Index(1),
                header_row: None,
            },
        );
        assert_eq!(names(&first.unwrap())[0], "län");
    }

    #[test]
    fn a_missing_sheet_lists_the_sheets_there_are() {
        let second = |s: &mut Worksheet| fill(s, &[&[T("b")]]);
        let bytes = workbook(&[("Data", &survey), ("Andra", &second)]);
        let named = XlsxOptions {
            sheet: SheetChoice::Name("data".into()),
            header_row: None,
        };
        insta::assert_snapshot!(err(&bytes, &named), @"enkat.xlsx: the workbook has no sheet named `data`; its sheets are `Data`, `Andra`; set `sheet` in [source] to one of them");
        let numbered = XlsxOptions {
            sheet: SheetChoice::Index(3),
            header_row: None,
        };
        insta::assert_snapshot!(err(&bytes, &numbered), @"enkat.xlsx: the workbook has no sheet number 3; its sheets are `Data`, `Andra`; set `sheet` in [source] to one of them");
    }

    #[test]
    fn without_a_header_row_the_error_says_to_set_header_row() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(
                s,
                &[&[T("titel")], &[T(""), T("år")], &[T("0114"), N(2024.0)]],
            )
        })]);
        insta::assert_snapshot!(err(&bytes, &XlsxOptions::default()), @"enkat.xlsx, sheet `Data`: no row has text in every column (A to B), so none is taken as the header; set `header_row` in [source] to the row that names the columns");
    }

    #[test]
    fn empty_and_duplicate_header_names_name_their_cells() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(
                s,
                &[
                    &[T("titel")],
                    &[T(""), T("år"), T("ÅR ")],
                    &[T("0114"), N(2024.0), N(1.0)],
                ],
            )
        })]);
        let row = |n| XlsxOptions {
            header_row: Some(n),
            ..XlsxOptions::default()
        };
        insta::assert_snapshot!(err(&bytes, &row(2)), @"enkat.xlsx, sheet `Data`: header cell A2 is empty; name the column in the file, or set `header_row` in [source] to the row that names the columns");
        let duplicate = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(
                s,
                &[
                    &[T("kod"), T("år"), T("år ")],
                    &[T("0114"), N(2024.0), N(1.0)],
                ],
            )
        })]);
        insta::assert_snapshot!(err(&duplicate, &XlsxOptions::default()), @"enkat.xlsx, sheet `Data`: the header names column `år` twice (B1 and C1); rename one in the file");
        insta::assert_snapshot!(err(&bytes, &row(9)), @"enkat.xlsx, sheet `Data`: header_row = 9 is outside the used range A1:C3; set `header_row` in [source] to the row that names the columns");
    }

    #[test]
    fn a_header_merged_across_columns_names_them_twice() {
        let bytes = workbook(&[("Data", &|s: &mut Worksheet| {
            fill(s, &[&[T("kod")], &[T("0114"), N(1.0), N(2.0)]]);
            s.merge_range(0, 1, 0, 2, "andel", &Format::new()).unwrap();
        })]);
        insta::assert_snapshot!(err(&bytes, &XlsxOptions::default()), @"enkat.xlsx, sheet `Data`: the header names column `andel` twice (B1 and C1); rename one in the file");
    }

    #[test]
    fn a_used_range_bigger_than_the_limit_is_refused() {
        let bytes = workbook(&[("Data", &survey)]);
        let limited = |max_table_cells| {
            decode(
                &bytes,
                "enkat.xlsx",
                &XlsxOptions::default(),
                &DecodeLimits { max_table_cells },
            )
        };
        // A1:D7 is 28 cells, though only 14 hold a value (the merge fills 4 more).
        insta::assert_snapshot!(limited(27).unwrap_err(), @"enkat.xlsx, sheet `Data`: the used range A1:D7 has more cells than max_table_cells = 27 allows; if the table really is that big, raise `max_table_cells` in [source]");
        insta::assert_snapshot!(limited(10).unwrap_err(), @"enkat.xlsx, sheet `Data`: more cells hold a value than max_table_cells = 10 allows; if the table really is that big, raise `max_table_cells` in [source]");
        assert_eq!(limited(28).unwrap().num_rows(), 3);
    }

    #[test]
    fn bytes_that_are_no_workbook_are_refused() {
        insta::assert_snapshot!(err(b"kommun;ar\n0114;2024\n", &XlsxOptions::default()), @"enkat.xlsx: not an Excel workbook (.xlsx); an old .xls or an .ods must be saved as .xlsx first, or set `format` in [source] to the file's real format");
    }

    use crate::fixtures::real as fixture;

    #[test]
    fn real_pxweb_excel_export_has_nameless_stub_columns_and_decodes_from_row_4() {
        // PxWeb's ExcelSerializer: a title in A1, the heading (C3:E3) over the values, and the stub
        // columns A and B without names, each stub label written once where it changes, then
        // footnotes in column A. What is asserted was read independently from the file's
        // xl/worksheets/sheet1.xml and xl/sharedStrings.xml (unzip -p), not from this decoder.
        let Some(bytes) = fixture("PCAxis.Serializers/TestExcel.xlsx") else {
            return;
        };
        let with = |sheet, header_row| XlsxOptions { sheet, header_row };
        let decode = |options: &XlsxOptions| {
            decode(&bytes, "TestExcel.xlsx", options, &DecodeLimits::default())
        };
        let missing = with(SheetChoice::Name("Utvandring".into()), None);
        insta::assert_snapshot!(decode(&missing).unwrap_err(), @"TestExcel.xlsx: the workbook has no sheet named `Utvandring`; its sheets are `Innvandring`; set `sheet` in [source] to one of them");
        insta::assert_snapshot!(decode(&XlsxOptions::default()).unwrap_err(), @"TestExcel.xlsx, sheet `Innvandring`: no row has text in every column (A to E), so none is taken as the header; set `header_row` in [source] to the row that names the columns");
        insta::assert_snapshot!(decode(&with(SheetChoice::First, Some(3))).unwrap_err(), @"TestExcel.xlsx, sheet `Innvandring`: header cell A3 is empty; name the column in the file, or set `header_row` in [source] to the row that names the columns");

        // Row 4 is the first with all five cells (Norge, 2007K1, 1711, 2073, -362): as a header
        // it is no table a pipeline wants, but every later row decodes.
        let table = decode(&with(SheetChoice::Index(1), Some(4))).unwrap();
        assert_eq!(names(&table), ["Norge", "2007K1", "1711", "2073", "-362"]);
        let (rows, numbers) = rows(&table);
        // 18011 rows, of which rows 5 to 18011 hold 17988 that are not blank.
        assert_eq!(rows.len(), 17988);
        assert_eq!(rows[0], ["", "2007K2", "2071", "1650", "421"]);
        assert_eq!(numbers[0], 5);
        let belarus = numbers.iter().position(|&n| n == 589).unwrap();
        assert_eq!(rows[belarus], ["Belarus", "2007K1", "9", "5", "4"]);
        assert_eq!(*numbers.last().unwrap(), 18011);
        assert_eq!(rows.last().unwrap(), &["Innvandring", "", "", "", ""]);
        assert_eq!(table.categories("Norge").unwrap().len(), 308);
    }

    #[test]
    fn column_names_are_excel_letters() {
        let names: Vec<String> = [0, 25, 26, 51, 701, 702, 16383].map(column_name).into();
        assert_eq!(names, ["A", "Z", "AA", "AZ", "ZZ", "AAA", "XFD"]);
        assert_eq!(cell_name(6, 2), "C7");
    }
}
