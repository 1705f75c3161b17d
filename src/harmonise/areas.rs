//! Areas: SCB region codes → the model's `area_code` and `area_level`, and the dated catalogue of
//! Swedish areas in `schemas/areas.csv` (DESIGN §3, SOURCES §h).
//!
//! Owns: the rule that a code's shape and county prefix give its level, reading the catalogue,
//! and finding a code by an area's Swedish name. Must not: look at Arrow arrays (the batch-level
//! harmoniser calls these once per distinct value), write `catalog/areas.parquet` (`warehouse`
//! does), or move figures between codes when the map changes (Heby 1917 → 0331 is recorded here,
//! not applied).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::model::AreaLevel;

/// The 21 county (län) codes in use since 1998; 02, 11, 15 and 16 were merged away.
pub const COUNTY_CODES: [&str; 21] = [
    "01", "03", "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "17", "18", "19", "20",
    "21", "22", "23", "24", "25",
];

/// The catalogue's header, in order.
pub const AREAS_HEADER: [&str; 6] = [
    "area_code",
    "name",
    "level",
    "county_code",
    "valid_from",
    "valid_to",
];

/// Why a code is not an area of the model, or the catalogue cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AreaError {
    #[error(
        "area `{code}` is not an SCB region code: `00` is Sweden, 2 digits a county, 4 digits a \
         municipality"
    )]
    Shape { code: String },
    #[error(
        "area `{code}`: `{county}` is not a county code (counties are 01, 03–10, 12–14 and 17–25; \
         02, 11, 15 and 16 were merged away in 1997–98)"
    )]
    County { code: String, county: String },
    #[error(
        "area `{code}` looks like a DeSO code; the model has no level below the municipality yet, \
         so aggregate to the municipality (its first four digits) first"
    )]
    Deso { code: String },
    #[error(
        "{}: line 1 must be the header `{}`, found `{found}`",
        .path.display(), AREAS_HEADER.join(",")
    )]
    Header { path: PathBuf, found: String },
    #[error(
        "{}: line {line} has {found} fields; rows have 6 ({})",
        .path.display(), AREAS_HEADER.join(",")
    )]
    Fields {
        path: PathBuf,
        line: usize,
        found: usize,
    },
    #[error("{}: line {line}, `area_code` is not an area of the model", .path.display())]
    Code {
        path: PathBuf,
        line: usize,
        #[source]
        source: Box<AreaError>,
    },
    #[error("{}: line {line}, `{column}` is `{value}`; expected {expected}", .path.display())]
    Value {
        path: PathBuf,
        line: usize,
        column: &'static str,
        value: String,
        expected: String,
    },
    #[error("{}: line {line} repeats area `{code}` (first on line {first})", .path.display())]
    Duplicate {
        path: PathBuf,
        line: usize,
        code: String,
        first: usize,
    },
}

/// The level of the area `code` names: `00` is the country, a county code (see [`COUNTY_CODES`])
/// a county, and four digits starting with a county code a municipality. Codes are strings with
/// their leading zeros; `180` is not Stockholm. Anything else is an error saying why; 9-character
/// DeSO codes (`0114A0010`) are recognised but refused for now.
pub fn area_level(code: &str) -> Result<AreaLevel, AreaError> {
    let digits = |from: usize, to: usize| code.as_bytes()[from..to].iter().all(u8::is_ascii_digit);
    let county = |county: &str| {
        if COUNTY_CODES.contains(&county) {
            Ok(())
        } else {
            Err(AreaError::County {
                code: code.to_owned(),
                county: county.to_owned(),
            })
        }
    };
    match code.len() {
        2 if code == "00" => Ok(AreaLevel::Country),
        2 if digits(0, 2) => county(code).map(|()| AreaLevel::County),
        4 if digits(0, 4) => county(&code[..2]).map(|()| AreaLevel::Municipality),
        9 if digits(0, 4) && matches!(code.as_bytes()[4], b'A' | b'B' | b'C') && digits(5, 9) => {
            Err(AreaError::Deso {
                code: code.to_owned(),
            })
        }
        _ => Err(AreaError::Shape {
            code: code.to_owned(),
        }),
    }
}

/// Whether `code` can name a network of areas (a Kolada municipality group such as `G33698`):
/// a letter, then letters, digits, `_` or `-`, at most [`MAX_NETWORK_ID`] in all. A letter first
/// keeps network ids apart from every SCB code.
pub fn is_network_id(code: &str) -> bool {
    let bytes = code.as_bytes();
    (2..=MAX_NETWORK_ID).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

/// The longest network id: far above Kolada's (`G` and five or six digits).
pub const MAX_NETWORK_ID: usize = 32;

/// One row of the area catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaEntry {
    /// SCB code with leading zeros: `00`, `01`, `0180`.
    pub code: String,
    /// Swedish name as SCB writes it: `Riket`, `Stockholms län`, `Upplands Väsby` (no "kommun").
    pub name: String,
    pub level: AreaLevel,
    /// The county the area lies in: `None` for the country, the code itself for a county, the
    /// first two digits for a municipality.
    pub county_code: Option<String>,
    /// First day the code was in use; `None` = since before the catalogue's history starts.
    pub valid_from: Option<NaiveDate>,
    /// Last day the code was in use; `None` = still in use.
    pub valid_to: Option<NaiveDate>,
}

impl AreaEntry {
    /// Whether the code is in use today (it has no `valid_to`).
    pub fn is_current(&self) -> bool {
        self.valid_to.is_none()
    }
}

/// The area catalogue, `schemas/areas.csv`: Riket, the 21 counties, the 290 municipalities, and
/// codes no longer in use (Heby's 1917 before it moved to Uppsala län as 0331 in 2007).
#[derive(Debug, Clone)]
pub struct Areas {
    entries: Vec<AreaEntry>,
    /// Code → index into `entries`.
    codes: HashMap<String, usize>,
    /// Normalised name (see [`Areas::code_for_name`]) → indices into `entries`.
    names: HashMap<String, Vec<usize>>,
}

impl Areas {
    /// Parses the catalogue as read from `path` (`schemas` reads it; `path` is for errors): UTF-8 (a byte-order mark is skipped), comma-separated, the header
    /// [`AREAS_HEADER`] first, one area per line; fields may be double-quoted (`""` inside
    /// quotes is a quote). Every row is checked: the code by [`area_level`], `level` equal to the
    /// level the code implies, `county_code` as [`AreaEntry::county_code`] says, dates as
    /// `YYYY-MM-DD` with `valid_from` not after `valid_to`, and each code once. The first
    /// problem is returned with the file and line.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AreaError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.lines().enumerate().map(|(i, line)| (i + 1, line));
        let header = lines.next().map_or("", |(_, line)| line);
        if split_fields(header) != AREAS_HEADER {
            return Err(AreaError::Header {
                path: path.to_path_buf(),
                found: header.to_owned(),
            });
        }
        let (mut entries, mut lines_of) = (Vec::new(), Vec::new());
        let mut codes: HashMap<String, usize> = HashMap::new();
        for (line, row) in lines.filter(|(_, row)| !row.trim().is_empty()) {
            let entry = parse_row(row, path, line)?;
            if let Some(&first) = codes.get(&entry.code) {
                return Err(AreaError::Duplicate {
                    path: path.to_path_buf(),
                    line,
                    code: entry.code,
                    first: lines_of[first],
                });
            }
            codes.insert(entry.code.clone(), entries.len());
            entries.push(entry);
            lines_of.push(line);
        }
        let mut names: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            for key in name_keys(entry) {
                let indices = names.entry(key).or_default();
                if !indices.contains(&index) {
                    indices.push(index);
                }
            }
        }
        Ok(Self {
            entries,
            codes,
            names,
        })
    }

    /// Every area, in file order.
    pub fn entries(&self) -> &[AreaEntry] {
        &self.entries
    }

    /// The area with `code`, if the catalogue lists it.
    pub fn entry(&self, code: &str) -> Option<&AreaEntry> {
        self.codes.get(code).map(|&index| &self.entries[index])
    }

    /// The code of the area called `name`, for exports that name areas instead of coding them
    /// (`area = { column = "kommun", by = "name" }`).
    ///
    /// Case, surrounding spaces and repeated inner spaces do not matter. Understood: the name as
    /// in the catalogue (`Upplands Väsby`, `Stockholms län`, `Riket`); a municipality with
    /// ` kommun` or ` stad` after its name or its genitive (`Stockholms kommun`, `Göteborgs
    /// stad`, `Malmö stad`, `Falu kommun`); `Sverige` and `Hela riket` for the country; and a
    /// label that starts with its own code (`01 Stockholms län`, `0180 Stockholm`, as
    /// Folkhälsodata writes them). A bare county name without `län` is not guessed at:
    /// `Uppsala` is the municipality, `Uppsala län` the county.
    ///
    /// A name several codes share resolves to the one still in use (`Heby` → `0331`, not the
    /// historic `1917`); `None` when no code, or more than one code in use, has that name.
    pub fn code_for_name(&self, name: &str) -> Option<&str> {
        let key = normalise(name);
        if let Some(code) = self.unique(&key) {
            return Some(code);
        }
        // `01 Stockholms län`: the code prefix must agree with the name, or the label is wrong.
        let (code, rest) = key.split_once(' ')?;
        let entry = self.entry(code)?;
        (self.unique(rest) == Some(entry.code.as_str())).then_some(entry.code.as_str())
    }

    /// The one code whose name key is `key`, preferring codes in use.
    fn unique(&self, key: &str) -> Option<&str> {
        let indices = self.names.get(key)?;
        let current: Vec<&AreaEntry> = indices
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|entry| entry.is_current())
            .collect();
        match (current.as_slice(), indices.as_slice()) {
            ([entry], _) => Some(entry.code.as_str()),
            ([], [only]) => Some(self.entries[*only].code.as_str()),
            _ => None,
        }
    }
}

/// Lowercase, trimmed, inner whitespace collapsed to one space.
fn normalise(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Every normalised spelling that names `entry`.
fn name_keys(entry: &AreaEntry) -> Vec<String> {
    let name = normalise(&entry.name);
    match entry.level {
        AreaLevel::Country => vec![name, "sverige".to_owned(), "hela riket".to_owned()],
        AreaLevel::County | AreaLevel::Network => vec![name],
        AreaLevel::Municipality => {
            // Swedish genitive adds -s unless the name already ends in s, x or z (`Vännäs
            // kommun`); Falun's is the one irregular form among the 290 (`Falu kommun`).
            let genitive = if name == "falun" {
                "falu".to_owned()
            } else if name.ends_with(['s', 'x', 'z']) {
                name.clone()
            } else {
                format!("{name}s")
            };
            let mut keys = vec![name.clone()];
            for base in [&name, &genitive] {
                for suffix in ["kommun", "stad"] {
                    keys.push(format!("{base} {suffix}"));
                }
            }
            keys
        }
    }
}

/// The fields of one CSV line: comma-separated, optionally double-quoted with `""` for a quote.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("fields starts with one field");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    fields
}

/// One data row of the catalogue, checked.
fn parse_row(row: &str, path: &Path, line: usize) -> Result<AreaEntry, AreaError> {
    let fields = split_fields(row);
    let [code, name, level, county_code, valid_from, valid_to] = <[String; 6]>::try_from(fields)
        .map_err(|fields| AreaError::Fields {
            path: path.to_path_buf(),
            line,
            found: fields.len(),
        })?;
    let invalid = |column: &'static str, value: &str, expected: String| AreaError::Value {
        path: path.to_path_buf(),
        line,
        column,
        value: value.to_owned(),
        expected,
    };
    let implied = area_level(&code).map_err(|source| AreaError::Code {
        path: path.to_path_buf(),
        line,
        source: Box::new(source),
    })?;
    if AreaLevel::parse(&level) != Some(implied) {
        return Err(invalid(
            "level",
            &level,
            format!("`{implied}`, the level code `{code}` implies"),
        ));
    }
    let expected_county = match implied {
        AreaLevel::Country | AreaLevel::Network => "",
        AreaLevel::County => code.as_str(),
        AreaLevel::Municipality => &code[..2],
    };
    if county_code != expected_county {
        return Err(invalid(
            "county_code",
            &county_code,
            format!("`{expected_county}` for area `{code}`"),
        ));
    }
    if name.trim().is_empty() {
        return Err(invalid("name", &name, "the area's Swedish name".to_owned()));
    }
    let date = |column: &'static str, value: &str| -> Result<Option<NaiveDate>, AreaError> {
        if value.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| invalid(column, value, "a date `YYYY-MM-DD` or empty".to_owned()))
    };
    let (from, to) = (
        date("valid_from", &valid_from)?,
        date("valid_to", &valid_to)?,
    );
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(invalid(
            "valid_to",
            &valid_to,
            format!("a day on or after valid_from {from}"),
        ));
    }
    Ok(AreaEntry {
        code,
        name,
        level: implied,
        county_code: (!county_code.is_empty()).then_some(county_code),
        valid_from: from,
        valid_to: to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Areas {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/areas.csv");
        Areas::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn parse(text: &str) -> Result<Areas, AreaError> {
        Areas::parse(text, Path::new("schemas/areas.csv"))
    }

    const HEADER: &str = "area_code,name,level,county_code,valid_from,valid_to\n";

    #[test]
    fn code_shape_and_county_prefix_give_the_level() {
        assert_eq!(area_level("00").unwrap(), AreaLevel::Country);
        assert!(area_level("G33698").is_err(), "a network is no SCB area");
        assert_eq!(area_level("01").unwrap(), AreaLevel::County);
        assert_eq!(area_level("25").unwrap(), AreaLevel::County);
        assert_eq!(area_level("0180").unwrap(), AreaLevel::Municipality);
        assert_eq!(area_level("2584").unwrap(), AreaLevel::Municipality);
        for county in COUNTY_CODES {
            assert_eq!(area_level(county).unwrap(), AreaLevel::County);
        }
    }

    #[test]
    fn codes_of_other_shapes_say_what_codes_look_like() {
        insta::assert_snapshot!(area_level("180").unwrap_err(),
            @"area `180` is not an SCB region code: `00` is Sweden, 2 digits a county, 4 digits a municipality");
        insta::assert_snapshot!(area_level("0000").unwrap_err(),
            @"area `0000`: `00` is not a county code (counties are 01, 03–10, 12–14 and 17–25; 02, 11, 15 and 16 were merged away in 1997–98)");
        for code in [
            "",
            "0",
            "O1",
            "01 ",
            "018O",
            "01801",
            "Stockholm",
            "SE11",
            "+01",
        ] {
            assert!(
                matches!(area_level(code), Err(AreaError::Shape { .. })),
                "{code}"
            );
        }
    }

    #[test]
    fn network_ids_start_with_a_letter_and_are_short() {
        for id in ["G33698", "G2", "barnnatverket_gr", "Lupp-syd"] {
            assert!(is_network_id(id), "{id}");
        }
        let long = format!("G{}", "1".repeat(MAX_NETWORK_ID));
        for id in [
            "",
            "G",
            "0180",
            "00",
            "1G",
            "G 1",
            "G/1",
            "Gö",
            long.as_str(),
        ] {
            assert!(!is_network_id(id), "{id}");
        }
    }

    #[test]
    fn merged_away_counties_are_not_counties() {
        insta::assert_snapshot!(area_level("11").unwrap_err(),
            @"area `11`: `11` is not a county code (counties are 01, 03–10, 12–14 and 17–25; 02, 11, 15 and 16 were merged away in 1997–98)");
        insta::assert_snapshot!(area_level("1537").unwrap_err(),
            @"area `1537`: `15` is not a county code (counties are 01, 03–10, 12–14 and 17–25; 02, 11, 15 and 16 were merged away in 1997–98)");
        for code in ["02", "16", "26", "99", "0214"] {
            assert!(area_level(code).is_err(), "{code}");
        }
    }

    #[test]
    fn deso_codes_are_recognised_but_not_yet_accepted() {
        insta::assert_snapshot!(area_level("0114A0010").unwrap_err(),
            @"area `0114A0010` looks like a DeSO code; the model has no level below the municipality yet, so aggregate to the municipality (its first four digits) first");
    }

    #[test]
    fn the_catalogue_lists_the_country_21_counties_and_290_municipalities() {
        let areas = catalogue();
        let current = |level| {
            areas
                .entries()
                .iter()
                .filter(|e| e.level == level && e.is_current())
                .count()
        };
        assert_eq!(current(AreaLevel::Country), 1);
        assert_eq!(current(AreaLevel::County), 21);
        assert_eq!(current(AreaLevel::Municipality), 290);
        assert_eq!(areas.entries().len(), 1 + 21 + 290 + 1);
        let riket = areas.entry("00").unwrap();
        assert_eq!(
            (riket.name.as_str(), riket.county_code.as_deref()),
            ("Riket", None)
        );
        let county = areas.entry("14").unwrap();
        assert_eq!(county.name, "Västra Götalands län");
        assert_eq!(county.county_code.as_deref(), Some("14"));
        assert_eq!(areas.entry("0980").unwrap().name, "Gotland");
    }

    #[test]
    fn the_catalogue_records_heby_knivsta_and_nykvarn() {
        let areas = catalogue();
        let old_heby = areas.entry("1917").unwrap();
        assert_eq!(old_heby.name, "Heby");
        assert_eq!(old_heby.county_code.as_deref(), Some("19"));
        assert_eq!(old_heby.valid_to, Some(date(2006, 12, 31)));
        let heby = areas.entry("0331").unwrap();
        assert_eq!(
            (heby.valid_from, heby.valid_to),
            (Some(date(2007, 1, 1)), None)
        );
        assert_eq!(
            areas.entry("0330").unwrap().valid_from,
            Some(date(2003, 1, 1))
        );
        assert_eq!(
            areas.entry("0140").unwrap().valid_from,
            Some(date(1999, 1, 1))
        );
        assert_eq!(areas.entry("0180").unwrap().valid_from, None);
    }

    #[test]
    fn names_find_codes_in_any_case_and_with_kommun_or_lan() {
        let areas = catalogue();
        for (name, code) in [
            ("Stockholm", "0180"),
            ("  stockholm ", "0180"),
            ("Stockholms kommun", "0180"),
            ("Stockholms stad", "0180"),
            ("Göteborgs Stad", "1480"),
            ("Malmö stad", "1280"),
            ("Upplands  Väsby kommun", "0114"),
            ("Vännäs kommun", "2460"),
            ("Falu kommun", "2080"),
            ("Falun", "2080"),
            ("Stockholms län", "01"),
            ("UPPSALA LÄN", "03"),
            ("Uppsala", "0380"),
            ("Riket", "00"),
            ("Sverige", "00"),
            ("01 Stockholms län", "01"),
            ("0180 Stockholm", "0180"),
        ] {
            assert_eq!(areas.code_for_name(name), Some(code), "{name}");
        }
    }

    #[test]
    fn a_name_shared_with_a_historic_code_finds_the_code_in_use() {
        assert_eq!(catalogue().code_for_name("Heby kommun"), Some("0331"));
    }

    #[test]
    fn unknown_ambiguous_or_contradicting_names_find_nothing() {
        let areas = catalogue();
        for name in [
            "Storholmen",
            "Stockholms",
            "Uppsala kommun län",
            "0181 Stockholm",
            "",
        ] {
            assert_eq!(areas.code_for_name(name), None, "{name}");
        }
        let twins = parse(&format!(
            "{HEADER}0114,Tvilling,municipality,01,,\n0115,Tvilling,municipality,01,,\n"
        ))
        .unwrap();
        assert_eq!(twins.code_for_name("Tvilling"), None);
    }

    #[test]
    fn quoted_fields_and_a_byte_order_mark_are_read() {
        let areas = parse(&format!(
            "\u{feff}{HEADER}\"0114\",\"Upplands \"\"Väsby\"\", norra\",municipality,01,,\n"
        ))
        .unwrap();
        assert_eq!(areas.entries()[0].name, "Upplands \"Väsby\", norra");
    }

    #[test]
    fn catalogue_rows_that_break_a_rule_name_the_line_and_column() {
        let message = |rows: &str| parse(&format!("{HEADER}{rows}")).unwrap_err().to_string();
        insta::assert_snapshot!(message("00,Riket,country,,,\n0180,Stockholm,county,01,,\n"),
            @"schemas/areas.csv: line 3, `level` is `county`; expected `municipality`, the level code `0180` implies");
        insta::assert_snapshot!(message("0180,Stockholm,municipality,03,,\n"),
            @"schemas/areas.csv: line 2, `county_code` is `03`; expected `01` for area `0180`");
        let err = parse(&format!("{HEADER}1537,X,municipality,15,,\n")).unwrap_err();
        let cause = std::error::Error::source(&err).unwrap();
        insta::assert_snapshot!(format!("{err}: {cause}"),
            @"schemas/areas.csv: line 2, `area_code` is not an area of the model: area `1537`: `15` is not a county code (counties are 01, 03–10, 12–14 and 17–25; 02, 11, 15 and 16 were merged away in 1997–98)");
        insta::assert_snapshot!(message("0331,Heby,municipality,03,2007-01-01,2006-12-31\n"),
            @"schemas/areas.csv: line 2, `valid_to` is `2006-12-31`; expected a day on or after valid_from 2007-01-01");
        insta::assert_snapshot!(message("0331,Heby,municipality,03,1/1/2007,\n"),
            @"schemas/areas.csv: line 2, `valid_from` is `1/1/2007`; expected a date `YYYY-MM-DD` or empty");
        insta::assert_snapshot!(message("0331,Heby,municipality,03\n"),
            @"schemas/areas.csv: line 2 has 4 fields; rows have 6 (area_code,name,level,county_code,valid_from,valid_to)");
        insta::assert_snapshot!(message("0331,Heby,municipality,03,,\n\n0331,Heby,municipality,03,,\n"),
            @"schemas/areas.csv: line 4 repeats area `0331` (first on line 2)");
        insta::assert_snapshot!(parse("code,name\n").unwrap_err(),
            @"schemas/areas.csv: line 1 must be the header `area_code,name,level,county_code,valid_from,valid_to`, found `code,name`");
    }
}
