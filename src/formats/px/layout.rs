//! From the keyword entries to the shape of the cube: language, variables, categories.
//!
//! Owns: choosing the language, `STUB`/`HEADING` order, each variable's `VALUES`, `CODES`,
//! `VARIABLECODE`, `TIMEVAL` and `KEYS`, preliminary time codes (`2023*`), the file's own
//! `DATASYMBOLNIL`/`DATASYMBOLSUM`, `DECIMALS`/`SHOWDECIMALS`, the title and last update, and
//! the cell limit, checked before anything of the cube's size is allocated.
//! Must not: read text (`grammar.rs`) or the DATA block (`data.rs`).
//!
//! Decisions:
//! - **Language**: the option if given (the file must declare it), else `sv` if the file has
//!   it, else the file's main `LANGUAGE` (without one, the first of `LANGUAGES`). A keyword missing in the chosen language is taken from
//!   the main language (Statistics Finland writes `CODES[sv]` for all but the time variable).
//! - **Variables across languages** are matched by position in `STUB`/`HEADING`, never by the
//!   sub-key's text: the variable name inside the parentheses is translated too
//!   (`VALUES[sv]("ålder")` is `VALUES("age")`).
//! - **Dimension** id = `VARIABLECODE` if given, else the variable's name in the chosen language;
//!   label = that name; codes = `CODES` if given, else `VALUES`; labels = `VALUES`.
//! - **Preliminary**: on a variable with `TIMEVAL`, a code or value ending in `*` is the period
//!   without the `*`, and its cells are marked `PRELIMINARY` (unless DATA marks them otherwise).
//! - **KEYS** rows are keyed in the main language (DATA is written once for all languages).
//! - `DECIMALS`/`SHOWDECIMALS` are checked (an integer 0 to 15) but values stay as written.
//!   Notes (`NOTE`, `VALUENOTE`, `CELLNOTE`, `DATANOTECELL`, …) are parsed and not used.

use std::collections::HashMap;

use super::grammar::{Entry, Value};
use super::symbols::Symbols;
use super::{PxError, PxOptions};
use crate::formats::DecodeLimits;
use crate::formats::table::{Dimension, SourceMeta};

/// The language [`PxOptions::lang`] falls back to when the file has it.
pub const DEFAULT_LANG: &str = "sv";

/// Everything the DATA block needs to be read into a cube.
#[derive(Debug)]
pub(super) struct Layout {
    /// `STUB` then `HEADING` variables: DATA's order, the last heading variable fastest.
    pub dimensions: Vec<Dimension>,
    /// How many of `dimensions` are `STUB` variables.
    pub stub: usize,
    /// KEYS mode: per stub variable, the key written in DATA → category index.
    pub keys: Option<Vec<HashMap<String, usize>>>,
    /// Per time dimension with preliminary periods: its index and which categories are.
    pub preliminary: Vec<(usize, Vec<bool>)>,
    pub symbols: Symbols,
    /// Title and last update (the encoding is set by the caller).
    pub meta: SourceMeta,
    /// The product of the dimension sizes, within the limit.
    pub cells: usize,
}

/// Builds the layout from `entries` (everything before `DATA=`, which is on `data_line`).
pub(super) fn build(
    entries: &[Entry],
    data_line: usize,
    options: &PxOptions,
    origin: &str,
    limits: &DecodeLimits,
) -> Result<Layout, PxError> {
    let mut file = Keywords {
        entries,
        origin,
        data_line,
        main: None,
        chosen: None,
    };
    // Without LANGUAGE, the first of LANGUAGES is the main language (the untagged keywords).
    let first_listed = match file.main_entry("LANGUAGES") {
        Some(entry) => file.texts(entry)?.first().map(|l| l.to_string()),
        None => None,
    };
    file.main = file.text_of(file.main_entry("LANGUAGE"))?.or(first_listed);
    file.chosen = file.language(options)?;
    check_decimals(&file)?;

    let stub = file.variables("STUB")?;
    let heading = file.variables("HEADING")?;
    if stub.is_empty() && heading.is_empty() {
        return Err(file.missing("STUB` or `HEADING".to_string()));
    }
    let mut dimensions = Vec::with_capacity(stub.len() + heading.len());
    let mut preliminary = Vec::new();
    let mut key_modes = Vec::new();
    let mut first_values_line = data_line;
    for (position, variable) in stub.iter().chain(&heading).enumerate() {
        let category = file.categories(variable)?;
        if dimensions
            .iter()
            .any(|d: &Dimension| d.id == category.dimension.id)
        {
            return Err(file.duplicate(category.id_from, &category.dimension.id));
        }
        if position == 0 {
            first_values_line = category.values_line;
        }
        if let Some(marks) = category.preliminary {
            preliminary.push((position, marks));
        }
        if position < stub.len() {
            key_modes.push(category.keys);
        }
        dimensions.push(category.dimension);
    }
    let keys = if key_modes.iter().any(Option::is_some) {
        let mut keys = Vec::with_capacity(key_modes.len());
        for (variable, mode) in stub.iter().zip(key_modes) {
            keys.push(mode.ok_or_else(|| file.missing(format!("KEYS(\"{}\")", variable.main)))?);
        }
        Some(keys)
    } else {
        None
    };
    let cells = dimensions
        .iter()
        .try_fold(1u128, |n, d| n.checked_mul(d.codes.len() as u128));
    let cells = match cells.and_then(|c| u64::try_from(c).ok()) {
        Some(c) if c <= limits.max_table_cells => c as usize,
        _ => {
            return Err(PxError::TooManyCells {
                origin: origin.to_string(),
                line: first_values_line,
                cells,
                limit: limits.max_table_cells,
            });
        }
    };
    Ok(Layout {
        dimensions,
        stub: stub.len(),
        keys,
        preliminary,
        symbols: Symbols {
            nil: file.text_of(file.main_entry("DATASYMBOLNIL"))?,
            sum: file.text_of(file.main_entry("DATASYMBOLSUM"))?,
        },
        meta: SourceMeta {
            label: match file.chosen_entry("TITLE") {
                Some(title) => file.text_of(Some(title))?,
                None => file.text_of(file.chosen_entry("DESCRIPTION"))?,
            },
            updated: file.updated(),
            encoding: None,
        },
        cells,
    })
}

/// A variable's name in the main and in the chosen language.
struct Variable<'a> {
    main: &'a str,
    name: &'a str,
}

/// What one variable contributes.
struct Categories<'a> {
    dimension: Dimension,
    /// The entry the dimension id comes from (`VARIABLECODE`, else `VALUES`).
    id_from: &'a Entry,
    values_line: usize,
    preliminary: Option<Vec<bool>>,
    keys: Option<HashMap<String, usize>>,
}

/// The entries, with the main and the chosen language once known.
struct Keywords<'a> {
    entries: &'a [Entry],
    origin: &'a str,
    data_line: usize,
    /// The main `LANGUAGE`, if declared.
    main: Option<String>,
    /// The chosen language; `None` = the main language (untagged keywords).
    chosen: Option<String>,
}

impl<'a> Keywords<'a> {
    /// The first `keyword` in language `lang` (`None` = main) with sub-key `subkey`.
    fn find(&self, keyword: &str, lang: Option<&str>, subkey: Option<&str>) -> Option<&'a Entry> {
        self.entries.iter().find(|e| {
            let in_lang = match (&e.lang, lang) {
                (None, None) => true,
                (Some(l), None) => self.main.as_deref() == Some(l.as_str()),
                (Some(l), Some(lang)) => l == lang,
                (None, Some(_)) => false,
            };
            in_lang && e.keyword == keyword && e.subkeys.first().map(String::as_str) == subkey
        })
    }

    fn main_entry(&self, keyword: &str) -> Option<&'a Entry> {
        self.find(keyword, None, None)
    }

    fn chosen_entry(&self, keyword: &str) -> Option<&'a Entry> {
        self.translated(keyword, None)
    }

    /// `keyword` in the chosen language, else in the main language (sub-keys being the variable's
    /// name in each).
    fn translated(&self, keyword: &str, variable: Option<&Variable<'_>>) -> Option<&'a Entry> {
        let chosen = self.chosen.as_deref();
        chosen
            .and_then(|lang| self.find(keyword, Some(lang), variable.map(|v| v.name)))
            .or_else(|| self.find(keyword, None, variable.map(|v| v.main)))
    }

    fn missing(&self, keyword: String) -> PxError {
        PxError::Missing {
            origin: self.origin.to_string(),
            keyword,
            line: self.data_line,
        }
    }

    fn bad(&self, entry: &Entry, value: String, expected: &'static str) -> PxError {
        PxError::BadValue {
            origin: self.origin.to_string(),
            keyword: entry.name(),
            line: entry.line,
            value,
            expected,
        }
    }

    /// Every value of `entry` as text (a TLIST where text belongs is an error).
    fn texts(&self, entry: &'a Entry) -> Result<Vec<&'a str>, PxError> {
        entry
            .values
            .iter()
            .map(|v| {
                v.text()
                    .ok_or_else(|| self.bad(entry, "TLIST(…)".into(), "quoted texts"))
            })
            .collect()
    }

    fn text_of(&self, entry: Option<&'a Entry>) -> Result<Option<String>, PxError> {
        Ok(match entry {
            Some(entry) => self.texts(entry)?.first().map(|t| t.to_string()),
            None => None,
        })
    }

    fn language(&self, options: &PxOptions) -> Result<Option<String>, PxError> {
        let languages = self.main_entry("LANGUAGES");
        let listed = match languages {
            Some(entry) => self.texts(entry)?,
            None => Vec::new(),
        };
        let has = |lang: &str| self.main.as_deref() == Some(lang) || listed.contains(&lang);
        let chosen = match &options.lang {
            Some(lang) if has(lang) => lang.as_str(),
            Some(lang) => {
                let mut available: Vec<String> = self.main.iter().cloned().collect();
                available.extend(listed.iter().map(|l| l.to_string()));
                available.dedup();
                return Err(PxError::Language {
                    origin: self.origin.to_string(),
                    lang: lang.clone(),
                    line: languages
                        .or(self.main_entry("LANGUAGE"))
                        .map_or(1, |e| e.line),
                    available,
                });
            }
            None if has(DEFAULT_LANG) => DEFAULT_LANG,
            None => return Ok(None),
        };
        Ok((self.main.as_deref() != Some(chosen)).then(|| chosen.to_string()))
    }

    /// The variables of `STUB` or `HEADING`, by position in both languages.
    fn variables(&self, keyword: &str) -> Result<Vec<Variable<'a>>, PxError> {
        let Some(main) = self.main_entry(keyword) else {
            return Ok(Vec::new());
        };
        let main_names = self.texts(main)?;
        let chosen = self.translated(keyword, None).unwrap_or(main);
        let names = self.texts(chosen)?;
        if names.len() != main_names.len() {
            return Err(self.count(chosen, names.len(), main_names.len(), keyword.to_string()));
        }
        Ok(main_names
            .into_iter()
            .zip(names)
            .map(|(main, name)| Variable { main, name })
            .collect())
    }

    fn duplicate(&self, entry: &Entry, text: &str) -> PxError {
        PxError::Duplicate {
            origin: self.origin.to_string(),
            keyword: entry.name(),
            line: entry.line,
            text: text.to_string(),
        }
    }

    fn count(&self, entry: &Entry, found: usize, expected: usize, of: String) -> PxError {
        PxError::Count {
            origin: self.origin.to_string(),
            keyword: entry.name(),
            line: entry.line,
            found,
            expected,
            of,
        }
    }

    fn categories(&self, variable: &Variable<'_>) -> Result<Categories<'a>, PxError> {
        let main_values = self
            .find("VALUES", None, Some(variable.main))
            .ok_or_else(|| self.missing(format!("VALUES(\"{}\")", variable.main)))?;
        let values_entry = self
            .translated("VALUES", Some(variable))
            .unwrap_or(main_values);
        let labels = self.texts(values_entry)?;
        let main_labels = self.texts(main_values)?;
        if labels.len() != main_labels.len() {
            let of = format!("VALUES(\"{}\")", variable.main);
            return Err(self.count(values_entry, labels.len(), main_labels.len(), of));
        }
        let of_values = || format!("VALUES(\"{}\")", variable.name);
        let codes_entry = self.translated("CODES", Some(variable));
        let codes = match codes_entry {
            Some(entry) => self.texts(entry)?,
            None => labels.clone(),
        };
        if let Some(entry) = codes_entry.filter(|_| codes.len() != labels.len()) {
            return Err(self.count(entry, codes.len(), labels.len(), of_values()));
        }
        let (id, id_from) = match self.translated("VARIABLECODE", Some(variable)) {
            Some(entry) => (self.text_of(Some(entry))?.unwrap_or_default(), entry),
            None => (variable.name.to_string(), values_entry),
        };
        let timeval = self.translated("TIMEVAL", Some(variable));
        if let Some(entry) = timeval {
            self.check_timeval(entry, labels.len(), of_values())?;
        }
        let marked: Vec<bool> = codes
            .iter()
            .zip(&labels)
            .map(|(code, label)| timeval.is_some() && (code.ends_with('*') || label.ends_with('*')))
            .collect();
        let keys = self.keys(variable, &main_labels, &codes)?;
        let codes: Vec<String> = codes
            .iter()
            .zip(&marked)
            .map(|(code, &marked)| match marked {
                true => code.strip_suffix('*').unwrap_or(code).to_string(),
                false => code.to_string(),
            })
            .collect();
        // `2023` and `2023*` are one period twice.
        let mut seen = std::collections::HashSet::new();
        if let Some(code) = codes.iter().find(|code| !seen.insert(code.as_str())) {
            return Err(self.duplicate(codes_entry.unwrap_or(values_entry), code));
        }
        Ok(Categories {
            id_from,
            dimension: Dimension {
                id,
                label: Some(variable.name.to_string()),
                codes,
                labels: labels.iter().map(|l| l.to_string()).collect(),
            },
            values_line: values_entry.line,
            preliminary: marked.contains(&true).then_some(marked),
            keys,
        })
    }

    /// KEYS mode: the key DATA writes for each category (`KEYS("var")=VALUES` or `=CODES`).
    fn keys(
        &self,
        variable: &Variable<'_>,
        main_labels: &[&str],
        codes: &[&str],
    ) -> Result<Option<HashMap<String, usize>>, PxError> {
        let Some(entry) = self.translated("KEYS", Some(variable)) else {
            return Ok(None);
        };
        let written = match self.text_of(Some(entry))?.as_deref() {
            Some("VALUES") => main_labels,
            Some("CODES") => codes,
            other => {
                let found = other.unwrap_or_default().to_string();
                return Err(self.bad(entry, found, "`VALUES` or `CODES`"));
            }
        };
        let keys = written.iter().enumerate().map(|(i, k)| (k.to_string(), i));
        Ok(Some(keys.collect()))
    }

    /// `TIMEVAL(...)=TLIST(unit),"p1",...` must list as many periods as the variable has
    /// values; the range form `TLIST(A1, "1990-2014")` is not counted.
    fn check_timeval(&self, entry: &Entry, values: usize, of: String) -> Result<(), PxError> {
        match entry.values.first() {
            Some(Value::Tlist { range, .. }) => {
                let listed = entry.values.len() - 1;
                if (listed > 0 || range.is_none()) && listed != values {
                    return Err(self.count(entry, listed, values, of));
                }
                Ok(())
            }
            first => Err(self.bad(
                entry,
                first.and_then(Value::text).unwrap_or_default().to_string(),
                "`TLIST(unit)` first, as in `TLIST(A1),\"2023\"`",
            )),
        }
    }

    /// The latest `LAST-UPDATED` of the file or of any of its contents, as written
    /// (`20230525 15:42` sorts as text).
    fn updated(&self) -> Option<String> {
        self.entries
            .iter()
            .filter(|e| e.keyword == "LAST-UPDATED" && e.lang.is_none())
            .filter_map(|e| e.values.first().and_then(Value::text))
            .max()
            .map(str::to_string)
    }
}

/// `DECIMALS` and `SHOWDECIMALS` must be integers 0 to 15.
fn check_decimals(file: &Keywords<'_>) -> Result<(), PxError> {
    for keyword in ["DECIMALS", "SHOWDECIMALS"] {
        if let Some(entry) = file.main_entry(keyword) {
            let text = file.text_of(Some(entry))?.unwrap_or_default();
            if !text.parse::<u8>().is_ok_and(|d| d <= 15) {
                return Err(file.bad(entry, text, "an integer from 0 to 15"));
            }
        }
    }
    Ok(())
}
