//! The key columns of the model and how each is fed: from a fixed value or a source column, and
//! how a source category becomes a model value (code lists, canonical sex, age and grade, area
//! codes or names, periods).
//!
//! Owns: the per-category rule of every key column, so that the row path (mod.rs) and the cube
//! path (cube.rs) map categories the same way and differ only in how categories reach rows.
//! Must not: look at rows.

use std::collections::HashMap;

use arrow_array::{Array, StringArray};
use chrono::NaiveDate;

use super::{AreaNaming, Context, Field, HarmoniseError, Mapping, areas, codes, periods};
use crate::model::AreaLevel;

/// The key columns of the model that come from the source, in key order (DESIGN §3; `reference`
/// follows from the area: empty, or `network:<id>` on a network row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyField {
    Indicator,
    Area,
    Period,
    Sex,
    Age,
    Grade,
    Breakdown,
}

impl KeyField {
    pub(super) const ALL: [KeyField; 7] = [
        KeyField::Indicator,
        KeyField::Area,
        KeyField::Period,
        KeyField::Sex,
        KeyField::Age,
        KeyField::Grade,
        KeyField::Breakdown,
    ];

    /// The field's position in [`Self::ALL`] (its declaration order).
    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// The `[map]` key, which is also the rule named in reasons.
    pub(super) fn key(self) -> &'static str {
        match self {
            KeyField::Indicator => "indicator",
            KeyField::Area => "area",
            KeyField::Period => "period",
            KeyField::Sex => "sex",
            KeyField::Age => "age",
            KeyField::Grade => "grade",
            KeyField::Breakdown => "breakdown",
        }
    }
}

/// Where a key column's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed<'a> {
    /// The same value on every row, taken as written.
    Fixed(&'a str),
    /// One source column, mapped per category.
    Column(&'a str),
    /// Several source columns, one `key=value` part each (breakdowns only).
    Columns(&'a [(String, String)]),
}

/// One key column's source categories mapped to model values.
#[derive(Debug)]
pub(super) struct Lookup {
    /// Source column, for reasons ("" for a fixed value).
    pub column: String,
    /// Rule name, for reasons.
    pub rule: &'static str,
    /// Per source category: index into `values`, or -1 when the category cannot be mapped.
    pub of_category: Vec<i32>,
    /// Per source category: why it cannot be mapped, when it cannot.
    pub errors: Vec<Option<String>>,
    /// Distinct model values, in order of first mapping.
    pub values: Vec<String>,
}

impl Lookup {
    pub(super) fn fixed(value: &str) -> Self {
        Self {
            column: String::new(),
            rule: "",
            of_category: Vec::new(),
            errors: Vec::new(),
            values: vec![value.to_string()],
        }
    }

    /// Whether every category maps, each to a value of its own: then a key column keeps apart
    /// exactly the rows its source column keeps apart.
    pub(super) fn is_one_to_one(&self) -> bool {
        self.errors.iter().all(Option::is_none) && self.values.len() == self.of_category.len()
    }
}

/// The rules of one pipeline's `[map]`, and what mapping categories has learnt about areas and
/// periods along the way.
pub(super) struct Rules<'a> {
    mapping: &'a Mapping,
    /// The area catalogue, when areas are named rather than coded.
    areas: Option<&'a areas::Areas>,
    levels: HashMap<String, AreaLevel>,
    spans: HashMap<String, (NaiveDate, NaiveDate)>,
}

impl<'a> Rules<'a> {
    pub(super) fn new(mapping: &'a Mapping, cx: &Context<'a>) -> Result<Self, HarmoniseError> {
        let areas = match mapping.area_naming {
            AreaNaming::Name => Some(cx.areas.ok_or(HarmoniseError::NoAreaCatalogue)?),
            AreaNaming::Code => None,
        };
        Ok(Self {
            mapping,
            areas,
            levels: HashMap::new(),
            spans: HashMap::new(),
        })
    }

    pub(super) fn feed(&self, field: KeyField) -> Feed<'a> {
        let of = |f: &'a Field| match f {
            Field::Fixed(value) => Feed::Fixed(value),
            Field::Column { column, .. } => Feed::Column(column),
        };
        let mapping = self.mapping;
        match field {
            KeyField::Indicator => of(&mapping.indicator),
            KeyField::Area => Feed::Column(&mapping.area_column),
            KeyField::Period => Feed::Column(&mapping.period_column),
            KeyField::Sex => of(&mapping.sex),
            KeyField::Age => of(&mapping.age),
            KeyField::Grade => of(&mapping.grade),
            KeyField::Breakdown => match mapping.breakdown.as_slice() {
                [] => Feed::Fixed(""),
                [(_, column)] => Feed::Column(column),
                several => Feed::Columns(several),
            },
        }
    }

    /// Maps each of `categories` (the distinct values of `field`'s source column `column`),
    /// deduplicating model values.
    pub(super) fn map(
        &mut self,
        field: KeyField,
        column: &str,
        categories: &StringArray,
    ) -> Lookup {
        let mut index: HashMap<String, i32> = HashMap::new();
        let mut values = Vec::new();
        let mut errors = Vec::with_capacity(categories.len());
        let of_category = categories
            .iter()
            .map(
                |category| match self.category(field, category.unwrap_or("")) {
                    Ok(value) => {
                        errors.push(None);
                        *index.entry(value.clone()).or_insert_with(|| {
                            values.push(value);
                            values.len() as i32 - 1
                        })
                    }
                    Err(message) => {
                        errors.push(Some(message));
                        -1
                    }
                },
            )
            .collect();
        Lookup {
            column: column.to_string(),
            rule: field.key(),
            of_category,
            errors,
            values,
        }
    }

    /// The model value of one source category of `field`.
    fn category(&mut self, field: KeyField, text: &str) -> Result<String, String> {
        let mapping = self.mapping;
        match field {
            KeyField::Indicator => {
                let id = through(&mapping.indicator, text);
                if id.trim().is_empty() {
                    Err("the indicator id is empty".to_string())
                } else {
                    Ok(id.to_string())
                }
            }
            KeyField::Area => {
                let text = mapping.area_codes.as_ref().map_or(text, |c| c.map(text));
                let code = match self.areas {
                    Some(areas) => areas
                        .code_for_name(text)
                        .ok_or_else(|| format!("no area is named `{text}` in schemas/areas.csv"))?
                        .to_string(),
                    None => text.trim().to_string(),
                };
                let level = match areas::area_level(&code) {
                    Ok(level) => level,
                    Err(_) if mapping.area_networks && areas::is_network_id(&code) => {
                        AreaLevel::Network
                    }
                    Err(error) if areas::is_network_id(&code) => {
                        return Err(format!(
                            "{error}; if it is a network's id (a Kolada group), keep it as a \
                             network row with `area = {{ column = \"{}\", networks = true }}`",
                            mapping.area_column
                        ));
                    }
                    Err(error) => return Err(error.to_string()),
                };
                self.levels.insert(code.clone(), level);
                Ok(code)
            }
            KeyField::Period => {
                let period =
                    periods::parse_period(text, mapping.period_kind).map_err(|e| e.to_string())?;
                self.spans
                    .insert(period.label.clone(), (period.start, period.end));
                Ok(period.label)
            }
            KeyField::Sex => codes::canonical_sex(through(&mapping.sex, text))
                .map(|s| s.as_str().to_string())
                .map_err(|e| e.to_string()),
            KeyField::Age => {
                codes::canonical_age(through(&mapping.age, text)).map_err(|e| e.to_string())
            }
            KeyField::Grade => {
                codes::canonical_grade(through(&mapping.grade, text)).map_err(|e| e.to_string())
            }
            KeyField::Breakdown => {
                let key = mapping
                    .breakdown
                    .first()
                    .map_or("", |(key, _)| key.as_str());
                Ok(format!("{key}={text}"))
            }
        }
    }

    /// The level of an area code this value has mapped.
    pub(super) fn level(&self, code: &str) -> AreaLevel {
        self.levels[code]
    }

    /// First and last day of a period label this value has mapped, as Date32 counts days.
    pub(super) fn span(&self, label: &str) -> (i32, i32) {
        let (start, end) = self.spans[label];
        (days(start), days(end))
    }
}

/// `text` through `field`'s code list, if it has one.
fn through<'t>(field: &'t Field, text: &'t str) -> &'t str {
    match field {
        Field::Column {
            codes: Some(codes), ..
        } => codes.map(text),
        _ => text,
    }
}

/// Days since the Unix epoch, as Date32 counts them.
fn days(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as i32
}
