//! A pipeline's `select`, checked once (`Selection`), and expanded against a table's metadata
//! at each run (`Expanded`): every variable of the query with the concrete codes to send.
//!
//! Owns: the selection grammar (`"*"`, patterns, `top:N`, code lists, v1 `vs:`/`agg:` filters,
//! v2 code lists), matching codes case-insensitively as PxWeb does, elimination, and the
//! errors that name the table, the variable and the first valid choices.
//! Must not: fetch (the caller hands in the metadata and the code lists it fetched) or split
//! the query (`plan.rs`).
//!
//! Everything is expanded to codes before planning: a `top:5` or a `*` sent as such could not
//! be split, and the planner must count cells exactly.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use super::meta::{self, Codelist, TableMeta, Value, Variable};
use super::plan::Role;

/// How many valid choices an error lists before "…".
const CHOICES_SHOWN: usize = 8;

/// Which values of a variable are selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// Every value.
    All,
    /// Codes matching a pattern with `*` (any run) and `?` (one character), case-insensitive.
    Pattern(String),
    /// The last `n` values in the table's order (the latest periods of a time variable).
    Top(usize),
    /// These codes, in this order.
    Codes(Vec<String>),
}

/// Where a variable's values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The variable's own values, as the metadata lists them.
    Table,
    /// A v1 value set or aggregation (`vs:RegionKommun07`, `agg:Ålder5år`), sent as the filter
    /// with the codes listed; v1 metadata does not list their codes, so they are sent as written.
    Filter(String),
    /// A v2 code list, fetched by the source; its codes replace the variable's.
    Codelist(String),
}

/// One variable's checked selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The variable code as the pipeline writes it (matched case-insensitively).
    pub variable: String,
    pub via: Via,
    pub values: Values,
}

/// A pipeline's checked `select`, in the order written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    pub choices: Vec<Choice>,
}

impl Selection {
    /// Every value of every variable of `table`.
    pub fn whole(table: &TableMeta) -> Self {
        Self {
            choices: table
                .variables
                .iter()
                .map(|variable| Choice {
                    variable: variable.code.clone(),
                    via: Via::Table,
                    values: Values::All,
                })
                .collect(),
        }
    }

    /// The v2 code lists the selection names: the source fetches them before expanding.
    pub fn codelists(&self) -> impl Iterator<Item = &str> {
        self.choices.iter().filter_map(|choice| match &choice.via {
            Via::Codelist(id) => Some(id.as_str()),
            _ => None,
        })
    }
}

/// Parses one text value of `select` (`"*"`, `"top:5"`, `"01*"`); anything else is one code.
pub fn parse_text(text: &str) -> Result<Values, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(Values::All);
    }
    if let Some(n) = text.strip_prefix("top:") {
        return match n.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Values::Top(n)),
            _ => Err(format!(
                "`{text}`: top:N needs a whole number of values above 0, e.g. \"top:5\""
            )),
        };
    }
    if text.contains(['*', '?']) {
        return Ok(Values::Pattern(text.to_string()));
    }
    Ok(Values::Codes(vec![text.to_string()]))
}

/// One variable of the query to send: its code as the server spells it, its role for the
/// planner, how it is selected, and its codes (each selected once, in the table's order for
/// `*`, patterns and `top`, else as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub code: String,
    pub role: Role,
    pub via: Via,
    pub values: Vec<Value>,
}

/// The query a selection makes of one table: the selected variables in the table's order.
/// Variables left out are eliminated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    pub variables: Vec<Selected>,
    /// The variables left out, which the server eliminates.
    pub eliminated: Vec<String>,
}

impl Expanded {
    /// The cells the whole query asks for.
    pub fn cells(&self) -> u64 {
        self.variables
            .iter()
            .map(|v| v.values.len() as u64)
            .fold(1, u64::saturating_mul)
    }
}

/// Why a selection does not fit a table. Each names the table, the variable and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "table {table} has no variable `{variable}`; its variables are {choices}. Fix \
         `select.{variable}` in [source]"
    )]
    UnknownVariable {
        table: String,
        variable: String,
        choices: String,
    },
    #[error(
        "table {table}, variable `{variable}`: no value `{code}`; valid codes include {choices}. \
         Fix `select.{variable}` in [source] (`indikator inspect` lists every code)"
    )]
    UnknownCode {
        table: String,
        variable: String,
        code: String,
        choices: String,
    },
    #[error(
        "table {table}, variable `{variable}`: `{selection}` selects no value; valid codes \
         include {choices}"
    )]
    NothingSelected {
        table: String,
        variable: String,
        selection: String,
        choices: String,
    },
    #[error(
        "table {table}: variable `{variable}` cannot be eliminated and must be selected; add \
         `select.{variable} = \"*\"` (or the codes you need) to [source]"
    )]
    Mandatory { table: String, variable: String },
    #[error(
        "table {table}, variable `{variable}` has no code list `{codelist}`; it offers \
         {choices} (code list ids are case-sensitive). Fix `select.{variable}` in [source]"
    )]
    UnknownCodelist {
        table: String,
        variable: String,
        codelist: String,
        choices: String,
    },
}

/// Expands `selection` against `table`; `codelists` holds the v2 code lists it names, by id.
pub fn expand(
    table: &TableMeta,
    selection: &Selection,
    codelists: &HashMap<String, Codelist>,
) -> Result<Expanded, SelectError> {
    let mut chosen: Vec<Option<&Choice>> = vec![None; table.variables.len()];
    for choice in &selection.choices {
        let position = table
            .variables
            .iter()
            .position(|v| meta::same_code(&v.code, &choice.variable))
            .ok_or_else(|| SelectError::UnknownVariable {
                table: table.id.clone(),
                variable: choice.variable.clone(),
                choices: list(table.variables.iter().map(|v| v.code.as_str())),
            })?;
        // Check refuses two keys for one variable; a second one here would be silently lost.
        debug_assert!(chosen[position].is_none(), "two choices for one variable");
        chosen[position] = Some(choice);
    }
    let mut expanded = Expanded {
        variables: Vec::new(),
        eliminated: Vec::new(),
    };
    for (variable, choice) in table.variables.iter().zip(chosen) {
        let Some(choice) = choice else {
            if !variable.elimination {
                return Err(SelectError::Mandatory {
                    table: table.id.clone(),
                    variable: variable.code.clone(),
                });
            }
            expanded.eliminated.push(variable.code.clone());
            continue;
        };
        let values = select_values(table, variable, choice, codelists)?;
        expanded.variables.push(Selected {
            code: variable.code.clone(),
            role: role(variable),
            via: choice.via.clone(),
            values,
        });
    }
    Ok(expanded)
}

fn role(variable: &Variable) -> Role {
    if variable.time {
        Role::Time
    } else if variable.content {
        Role::Content
    } else {
        Role::Other
    }
}

fn select_values(
    table: &TableMeta,
    variable: &Variable,
    choice: &Choice,
    codelists: &HashMap<String, Codelist>,
) -> Result<Vec<Value>, SelectError> {
    let offered: &[Value] = match &choice.via {
        Via::Table => &variable.values,
        Via::Codelist(id) => match codelists.get(id) {
            Some(codelist) if variable.codelists.iter().any(|c| c.id == *id) => &codelist.values,
            _ => {
                return Err(SelectError::UnknownCodelist {
                    table: table.id.clone(),
                    variable: variable.code.clone(),
                    codelist: id.clone(),
                    choices: list(variable.codelists.iter().map(|c| c.id.as_str())),
                });
            }
        },
        // A v1 value set's codes are not in the metadata: sent as written, checked by the server.
        Via::Filter(_) => {
            let Values::Codes(codes) = &choice.values else {
                unreachable!("check admits only listed codes with a v1 filter")
            };
            return Ok(distinct(codes.iter().map(|code| Value {
                code: code.clone(),
                label: code.clone(),
            })));
        }
    };
    let choices = || list(offered.iter().map(|v| v.code.as_str()));
    let selected: Vec<Value> = match &choice.values {
        Values::All => offered.to_vec(),
        Values::Top(n) => offered[offered.len().saturating_sub(*n)..].to_vec(),
        Values::Pattern(pattern) => offered
            .iter()
            .filter(|v| matches(pattern, &v.code))
            .cloned()
            .collect(),
        Values::Codes(codes) => {
            let by_code: HashMap<String, &Value> =
                offered.iter().map(|v| (meta::folded(&v.code), v)).collect();
            let found = codes.iter().map(|code| {
                by_code
                    .get(&meta::folded(code))
                    .map(|v| (*v).clone())
                    .ok_or_else(|| SelectError::UnknownCode {
                        table: table.id.clone(),
                        variable: variable.code.clone(),
                        code: code.clone(),
                        choices: choices(),
                    })
            });
            distinct(found.collect::<Result<Vec<_>, _>>()?.into_iter())
        }
    };
    if selected.is_empty() {
        return Err(SelectError::NothingSelected {
            table: table.id.clone(),
            variable: variable.code.clone(),
            selection: describe(&choice.values),
            choices: choices(),
        });
    }
    Ok(selected)
}

/// `values` with each code once, first place kept: a code written twice would be sent twice,
/// and every cell of it doubled.
fn distinct(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(v.code.clone())).collect()
}

fn describe(values: &Values) -> String {
    match values {
        Values::All => "*".into(),
        Values::Pattern(pattern) => pattern.clone(),
        Values::Top(n) => format!("top:{n}"),
        Values::Codes(codes) => codes.join(", "),
    }
}

/// `*` matches any run of characters and `?` one, case-insensitively, over the whole code.
fn matches(pattern: &str, code: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let code: Vec<char> = code.to_lowercase().chars().collect();
    // Greedy with backtracking to the last `*`: linear in practice, never exponential.
    let (mut p, mut c) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while c < code.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, c));
                p += 1;
            }
            Some(&x) if x == '?' || x == code[c] => {
                p += 1;
                c += 1;
            }
            _ => match star {
                Some((star_p, star_c)) => {
                    p = star_p + 1;
                    c = star_c + 1;
                    star = Some((star_p, star_c + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&x| x == '*')
}

/// The first few of `items` as `` `a`, `b`, … `` for a message.
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    let mut items = items.peekable();
    if items.peek().is_none() {
        return "none".into();
    }
    for (i, item) in items.enumerate() {
        if i == CHOICES_SHOWN {
            text.push_str(", …");
            break;
        }
        if i > 0 {
            text.push_str(", ");
        }
        let _ = write!(text, "`{item}`");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::pxweb::meta::CodelistRef;

    fn value(code: &str) -> Value {
        Value {
            code: code.into(),
            label: format!("label {code}"),
        }
    }

    fn variable(code: &str, codes: &[&str], elimination: bool) -> Variable {
        Variable {
            code: code.into(),
            label: code.to_lowercase(),
            values: codes.iter().map(|c| value(c)).collect(),
            elimination,
            time: code == "Tid",
            content: code == "ContentsCode",
            codelists: Vec::new(),
        }
    }

    fn table() -> TableMeta {
        TableMeta {
            id: "TAB638".into(),
            label: "Folkmängd".into(),
            variables: vec![
                variable("Region", &["00", "01", "0114", "0115", "0180"], true),
                variable("Kon", &["1", "2"], true),
                variable("ContentsCode", &["BE0101N1", "BE0101N2"], false),
                variable("Tid", &["2020", "2021", "2022", "2023", "2024"], false),
            ],
            notes: Vec::new(),
        }
    }

    fn choice(variable: &str, text: &str) -> Choice {
        Choice {
            variable: variable.into(),
            via: Via::Table,
            values: parse_text(text).unwrap(),
        }
    }

    fn codes(selected: &Selected) -> Vec<&str> {
        selected.values.iter().map(|v| v.code.as_str()).collect()
    }

    #[test]
    fn every_form_expands_to_codes_in_the_tables_spelling() {
        let selection = Selection {
            choices: vec![
                choice("region", "01*"),
                choice("TID", "top:2"),
                Choice {
                    variable: "ContentsCode".into(),
                    via: Via::Table,
                    values: Values::Codes(vec!["be0101n2".into(), "BE0101N2".into()]),
                },
            ],
        };
        let expanded = expand(&table(), &selection, &HashMap::new()).unwrap();
        let variables: Vec<(&str, Vec<&str>)> = expanded
            .variables
            .iter()
            .map(|v| (v.code.as_str(), codes(v)))
            .collect();
        assert_eq!(
            variables,
            [
                ("Region", vec!["01", "0114", "0115", "0180"]),
                ("ContentsCode", vec!["BE0101N2"]),
                ("Tid", vec!["2023", "2024"]),
            ]
        );
        assert_eq!(expanded.eliminated, ["Kon"]);
        assert_eq!(expanded.cells(), 8);
        assert_eq!(expanded.variables[2].role, Role::Time);
        assert_eq!(expanded.variables[1].role, Role::Content);
    }

    #[test]
    fn a_mandatory_variable_left_out_is_named() {
        let selection = Selection {
            choices: vec![choice("Tid", "*")],
        };
        let err = expand(&table(), &selection, &HashMap::new()).unwrap_err();
        insta::assert_snapshot!(err, @r#"table TAB638: variable `ContentsCode` cannot be eliminated and must be selected; add `select.ContentsCode = "*"` (or the codes you need) to [source]"#);
    }

    #[test]
    fn unknown_variables_and_codes_name_the_first_valid_choices() {
        let selection = Selection {
            choices: vec![choice("Alder", "*")],
        };
        let err = expand(&table(), &selection, &HashMap::new()).unwrap_err();
        insta::assert_snapshot!(err, @"table TAB638 has no variable `Alder`; its variables are `Region`, `Kon`, `ContentsCode`, `Tid`. Fix `select.Alder` in [source]");
        let selection = Selection {
            choices: vec![choice("ContentsCode", "*"), choice("Tid", "2019")],
        };
        let err = expand(&table(), &selection, &HashMap::new()).unwrap_err();
        insta::assert_snapshot!(err, @"table TAB638, variable `Tid`: no value `2019`; valid codes include `2020`, `2021`, `2022`, `2023`, `2024`. Fix `select.Tid` in [source] (`indikator inspect` lists every code)");
        let selection = Selection {
            choices: vec![choice("ContentsCode", "*"), choice("Tid", "19*")],
        };
        let err = expand(&table(), &selection, &HashMap::new()).unwrap_err();
        assert!(matches!(err, SelectError::NothingSelected { .. }), "{err}");
    }

    #[test]
    fn a_v2_code_list_replaces_the_variables_values() {
        let kommuner = Codelist {
            id: "vs_RegionKommun07".into(),
            label: "kommuner".into(),
            kind: "Valueset".into(),
            values: vec![value("0114"), value("0115"), value("0180")],
            elimination: false,
            elimination_value_code: None,
        };
        let selection = Selection {
            choices: vec![
                Choice {
                    variable: "Region".into(),
                    via: Via::Codelist("vs_RegionKommun07".into()),
                    values: Values::All,
                },
                choice("ContentsCode", "BE0101N1"),
                choice("Tid", "*"),
            ],
        };
        assert_eq!(
            selection.codelists().collect::<Vec<_>>(),
            ["vs_RegionKommun07"]
        );
        let lists = HashMap::from([(kommuner.id.clone(), kommuner)]);
        let err = expand(&table(), &selection, &lists).unwrap_err();
        insta::assert_snapshot!(err, @"table TAB638, variable `Region` has no code list `vs_RegionKommun07`; it offers none (code list ids are case-sensitive). Fix `select.Region` in [source]");
        let mut table = table();
        table.variables[0].codelists.push(CodelistRef {
            id: "vs_RegionKommun07".into(),
            label: "kommuner".into(),
            kind: "Valueset".into(),
        });
        let expanded = expand(&table, &selection, &lists).unwrap();
        assert_eq!(codes(&expanded.variables[0]), ["0114", "0115", "0180"]);
        assert_eq!(expanded.cells(), 15);
        let err = expand(&table, &selection, &HashMap::new()).unwrap_err();
        assert!(matches!(err, SelectError::UnknownCodelist { .. }), "{err}");
    }

    #[test]
    fn variables_and_codes_match_in_any_script_case() {
        let mut table = table();
        table.variables[1].code = "Ålder".into();
        table.variables[1].values = vec![value("Ö1"), value("Ö2")];
        let selection = Selection {
            choices: vec![
                choice("ålder", "ö2"),
                choice("ContentsCode", "*"),
                choice("Tid", "*"),
            ],
        };
        let expanded = expand(&table, &selection, &HashMap::new()).unwrap();
        assert_eq!(expanded.variables[0].code, "Ålder");
        assert_eq!(codes(&expanded.variables[0]), ["Ö2"]);
    }

    #[test]
    fn text_forms_parse_and_bad_tops_are_refused() {
        assert_eq!(parse_text(" * "), Ok(Values::All));
        assert_eq!(parse_text("top:3"), Ok(Values::Top(3)));
        assert_eq!(parse_text("01?4"), Ok(Values::Pattern("01?4".into())));
        assert_eq!(parse_text("0180"), Ok(Values::Codes(vec!["0180".into()])));
        assert!(parse_text("top:0").is_err());
        assert!(parse_text("top:x").is_err());
    }

    #[test]
    fn patterns_match_whole_codes_case_insensitively() {
        assert!(matches("01*", "0114"));
        assert!(matches("*", ""));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("?1", "01"));
        assert!(!matches("01", "0114"));
        assert!(matches("TOT*", "tot16+"));
        assert!(matches("å*", "Ålder"));
    }
}
