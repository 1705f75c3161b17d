//! Selections: what a v1 query or a v2 selection asks of a table, resolved against it into
//! the categories each answered dimension holds, and the cells those categories mean.
//!
//! Owns: v1 filters (`item`, `all`, `top`, `vs:`, `agg:`), v2 value expressions (codes, `*`
//! and `?` wildcards, `TOP(n[,offset])`) and code lists, elimination, and the cell values of an
//! answer (an aggregation's cell is the sum of its parts).
//! Must not: know HTTP, status codes or error bodies (each API's file maps `SelectError`).

use serde::Deserialize;

use super::table::{CodelistKind, PxCodelist, PxTable, PxUnit, PxVariable, cell};

/// One category of an answered dimension.
#[derive(Debug, Clone)]
pub(super) struct Category {
    pub code: String,
    pub label: String,
    pub unit: Option<PxUnit>,
    /// The positions in the variable's values this category adds up (one unless it is an
    /// aggregation's).
    pub parts: Vec<usize>,
}

/// What one variable of the table contributes to an answer.
#[derive(Debug, Clone)]
pub(super) enum Pick {
    /// Left out: every cell is at this position of the variable; not in the answer's `id`.
    Eliminated(usize),
    /// In the answer, with these categories in this order.
    Kept(Vec<Category>),
}

/// A resolved selection: one `Pick` per variable, in table order.
#[derive(Debug, Clone)]
pub(super) struct Selection {
    pub picks: Vec<Pick>,
}

/// Why a selection cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SelectError {
    UnknownVariable(String),
    UnknownValue {
        variable: String,
        code: String,
    },
    UnknownCodelist {
        variable: String,
        id: String,
    },
    /// A variable that cannot be eliminated was left out (v2 only: v1 answers all values).
    Mandatory(String),
    /// A filter or expression that does not parse (`top` without a number, `TOP(x)`).
    Illegal(String),
}

impl Selection {
    /// Every value of every variable: the selection v2 metadata describes.
    pub fn everything(table: &PxTable) -> Selection {
        let picks = table.variables.iter().map(|v| Pick::Kept(all(v))).collect();
        Selection { picks }
    }

    /// The answered dimensions: (variable, categories), in table order.
    pub fn kept<'t>(
        &'t self,
        table: &'t PxTable,
    ) -> impl Iterator<Item = (&'t PxVariable, &'t [Category])> {
        table
            .variables
            .iter()
            .zip(&self.picks)
            .filter_map(|(v, pick)| match pick {
                Pick::Kept(categories) => Some((v, categories.as_slice())),
                Pick::Eliminated(_) => None,
            })
    }

    /// Cells in the answer (the product of the kept sizes).
    pub fn cells(&self) -> u64 {
        self.sizes().iter().map(|&n| n as u64).product()
    }

    /// Values selected, summed over the kept dimensions (what v1's `maxValues` bounds).
    pub fn values(&self) -> u64 {
        self.sizes().iter().map(|&n| n as u64).sum()
    }

    fn sizes(&self) -> Vec<usize> {
        self.picks
            .iter()
            .filter_map(|pick| match pick {
                Pick::Kept(categories) => Some(categories.len()),
                Pick::Eliminated(_) => None,
            })
            .collect()
    }

    /// The answer's cells in row-major order over the kept dimensions (last fastest).
    pub fn cell_values(&self, table: &PxTable) -> Vec<Option<f64>> {
        let parts: Vec<Vec<&[usize]>> = self
            .picks
            .iter()
            .map(|pick| match pick {
                Pick::Eliminated(p) => vec![std::slice::from_ref(p)],
                Pick::Kept(categories) => categories.iter().map(|c| c.parts.as_slice()).collect(),
            })
            .collect();
        let mut values = Vec::with_capacity(self.cells() as usize);
        let mut at = vec![0usize; parts.len()];
        if parts.iter().any(|p| p.is_empty()) {
            return values;
        }
        loop {
            let chosen: Vec<&[usize]> = at.iter().zip(&parts).map(|(&i, p)| p[i]).collect();
            values.push(sum_of_parts(table, &chosen));
            // An odometer over the categories, the last variable turning fastest.
            let Some(k) = (0..at.len()).rev().find(|&k| at[k] + 1 < parts[k].len()) else {
                return values;
            };
            at[k] += 1;
            at[k + 1..].iter_mut().for_each(|i| *i = 0);
        }
    }
}

/// The sum of the table's cells over every combination of `parts`; `None` when any is `None`
/// (a total over a suppressed cell is suppressed).
fn sum_of_parts(table: &PxTable, parts: &[&[usize]]) -> Option<f64> {
    let mut at = vec![0usize; parts.len()];
    let mut positions = vec![0usize; parts.len()];
    let mut sum = 0.0;
    loop {
        for (k, p) in positions.iter_mut().enumerate() {
            *p = parts[k][at[k]];
        }
        sum += cell(table.flat(&positions))?;
        let Some(k) = (0..at.len()).rev().find(|&k| at[k] + 1 < parts[k].len()) else {
            return Some(sum);
        };
        at[k] += 1;
        at[k + 1..].iter_mut().for_each(|i| *i = 0);
    }
}

fn all(variable: &PxVariable) -> Vec<Category> {
    (0..variable.values.len())
        .map(|p| own(variable, p))
        .collect()
}

fn own(variable: &PxVariable, p: usize) -> Category {
    let value = &variable.values[p];
    Category {
        code: value.code.clone(),
        label: value.label.clone(),
        unit: value.unit.clone(),
        parts: vec![p],
    }
}

/// Positions in table order, each once: both APIs answer in the table's order, whatever
/// order the query lists codes in.
fn in_table_order(variable: &PxVariable, mut positions: Vec<usize>) -> Vec<Category> {
    positions.sort_unstable();
    positions.dedup();
    positions.into_iter().map(|p| own(variable, p)).collect()
}

fn unknown_value(variable: &PxVariable, code: &str) -> SelectError {
    SelectError::UnknownValue {
        variable: variable.code.clone(),
        code: code.to_owned(),
    }
}

/// `*` for any run of characters and `?` for one, case-insensitively.
fn wildcard(pattern: &str, code: &str) -> bool {
    fn go(p: &[char], c: &[char]) -> bool {
        match p.split_first() {
            None => c.is_empty(),
            Some(('*', rest)) => (0..=c.len()).any(|skip| go(rest, &c[skip..])),
            Some((&want, rest)) => c
                .split_first()
                .is_some_and(|(&got, tail)| (want == '?' || want == got) && go(rest, tail)),
        }
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let c: Vec<char> = code.to_lowercase().chars().collect();
    go(&p, &c)
}

/// The last `n` values after skipping `offset` from the end: SCB lists time ascending, so
/// this is "the latest `n` periods".
fn top(variable: &PxVariable, n: usize, offset: usize) -> Vec<Category> {
    let end = variable.values.len().saturating_sub(offset);
    in_table_order(variable, (end.saturating_sub(n)..end).collect())
}

/// A code list's values as categories of `variable`: a value set's codes are the variable's
/// own; an aggregation's add up their `valueMap`.
fn from_codelist(
    variable: &PxVariable,
    list: &PxCodelist,
    codes: &[String],
) -> Result<Vec<Category>, SelectError> {
    let mut picked = Vec::new();
    for (i, value) in list.values.iter().enumerate() {
        if codes
            .iter()
            .any(|c| c == "*" || c.to_lowercase() == value.code.to_lowercase())
        {
            picked.push(i);
        }
    }
    if let Some(code) = codes.iter().find(|c| {
        *c != "*"
            && !list
                .values
                .iter()
                .any(|v| v.code.to_lowercase() == c.to_lowercase())
    }) {
        return Err(unknown_value(variable, code));
    }
    picked
        .into_iter()
        .map(|i| {
            let value = &list.values[i];
            let parts: Vec<usize> = value
                .value_map
                .iter()
                .filter_map(|c| variable.position(c))
                .collect();
            match list.kind {
                CodelistKind::Valueset if parts.len() == 1 => Ok(own(variable, parts[0])),
                CodelistKind::Valueset => Err(unknown_value(variable, &value.code)),
                CodelistKind::Aggregation => Ok(Category {
                    code: value.code.clone(),
                    label: value.label.clone(),
                    unit: None,
                    parts,
                }),
            }
        })
        .collect()
}

/// A v1 POST body (`{"query":[…],"response":{"format":…}}`).
#[derive(Debug, Deserialize)]
pub(super) struct V1Query {
    pub query: Vec<V1Item>,
    pub response: Option<V1Response>,
}

#[derive(Debug, Deserialize)]
pub(super) struct V1Item {
    pub code: String,
    pub selection: V1Filter,
}

#[derive(Debug, Deserialize)]
pub(super) struct V1Filter {
    pub filter: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct V1Response {
    pub format: String,
}

/// Resolves a v1 query. A variable left out is eliminated when it may be and answered with
/// all its values when not (real v1 behaviour); so is one given `vs:`/`agg:` with no values
/// (`pxwebpy/response_se.json`: `vs:RegionRiket99` with `[]` left Region out of the answer).
pub(super) fn v1(table: &PxTable, query: &V1Query) -> Result<Selection, SelectError> {
    let mut chosen: Vec<Option<Vec<Category>>> = vec![None; table.variables.len()];
    for item in &query.query {
        let (k, variable) = table
            .variable(&item.code)
            .ok_or_else(|| SelectError::UnknownVariable(item.code.clone()))?;
        let values = &item.selection.values;
        let filter = item.selection.filter.as_str();
        let categories = match filter.to_lowercase().as_str() {
            "item" => {
                let positions = values
                    .iter()
                    .map(|code| {
                        variable
                            .position(code)
                            .ok_or_else(|| unknown_value(variable, code))
                    })
                    .collect::<Result<_, _>>()?;
                in_table_order(variable, positions)
            }
            "all" => {
                let positions: Vec<usize> = (0..variable.values.len())
                    .filter(|&p| {
                        values
                            .iter()
                            .any(|pattern| wildcard(pattern, &variable.values[p].code))
                    })
                    .collect();
                if positions.is_empty() {
                    return Err(unknown_value(variable, &values.join(",")));
                }
                in_table_order(variable, positions)
            }
            "top" => match values.as_slice() {
                [n] => match n.parse::<usize>() {
                    Ok(n) if n > 0 => top(variable, n, 0),
                    _ => return Err(SelectError::Illegal(format!("top {n}"))),
                },
                _ => return Err(SelectError::Illegal("top wants one number".to_owned())),
            },
            _ => {
                let Some((prefix, id)) = filter
                    .split_once(':')
                    .filter(|(p, _)| matches!(*p, "vs" | "agg"))
                else {
                    return Err(SelectError::Illegal(format!("filter {filter}")));
                };
                let prefixed = format!("{prefix}_{id}");
                let list = variable
                    .codelists
                    .iter()
                    .find(|l| l.id == id || l.id == prefixed)
                    .ok_or_else(|| SelectError::UnknownCodelist {
                        variable: variable.code.clone(),
                        id: id.to_owned(),
                    })?;
                if values.is_empty() {
                    continue;
                }
                if prefix == "agg" && values.iter().any(|v| v.contains('*')) {
                    return Err(SelectError::Illegal("no wildcards with agg:".to_owned()));
                }
                from_codelist(variable, list, values)?
            }
        };
        chosen[k] = Some(categories);
    }
    let picks = table
        .variables
        .iter()
        .zip(chosen)
        .map(|(variable, chosen)| match chosen {
            Some(categories) => Pick::Kept(categories),
            None if variable.elimination => Pick::Eliminated(variable.elimination_index()),
            None => Pick::Kept(all(variable)),
        })
        .collect();
    Ok(Selection { picks })
}

/// A v2 POST body (`{"selection":[…],"placement":…}`; placement is ignored: json-stat2 has
/// no stub and heading).
#[derive(Debug, Deserialize)]
pub(super) struct V2Query {
    pub selection: Vec<V2Item>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct V2Item {
    pub variable_code: String,
    pub codelist: Option<String>,
    #[serde(default)]
    pub value_codes: Vec<String>,
}

/// Resolves a v2 selection: a variable left out (or with no codes) is eliminated when it may
/// be, and refused when not.
pub(super) fn v2(table: &PxTable, query: &V2Query) -> Result<Selection, SelectError> {
    let mut chosen: Vec<Option<Vec<Category>>> = vec![None; table.variables.len()];
    for item in &query.selection {
        let (k, variable) = table
            .variable(&item.variable_code)
            .ok_or_else(|| SelectError::UnknownVariable(item.variable_code.clone()))?;
        if item.value_codes.is_empty() {
            continue;
        }
        let categories = match &item.codelist {
            Some(id) => {
                let list = variable
                    .codelists
                    .iter()
                    .find(|l| &l.id == id)
                    .ok_or_else(|| SelectError::UnknownCodelist {
                        variable: variable.code.clone(),
                        id: id.clone(),
                    })?;
                from_codelist(variable, list, &item.value_codes)?
            }
            None => {
                let mut positions = Vec::new();
                for expression in &item.value_codes {
                    positions.extend(v2_expression(variable, expression)?);
                }
                in_table_order(variable, positions)
            }
        };
        chosen[k] = Some(categories);
    }
    let picks = table
        .variables
        .iter()
        .zip(chosen)
        .map(|(variable, chosen)| match chosen {
            Some(categories) => Ok(Pick::Kept(categories)),
            None if variable.elimination => Ok(Pick::Eliminated(variable.elimination_index())),
            None => Err(SelectError::Mandatory(variable.code.clone())),
        })
        .collect::<Result<_, _>>()?;
    Ok(Selection { picks })
}

/// One entry of `valueCodes`: `TOP(n)`, `TOP(n,offset)`, a wildcard pattern or a code.
fn v2_expression(variable: &PxVariable, expression: &str) -> Result<Vec<usize>, SelectError> {
    let upper = expression.to_uppercase();
    if let Some(args) = upper
        .strip_prefix("TOP(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        let numbers: Result<Vec<usize>, _> = args.split(',').map(|a| a.trim().parse()).collect();
        let illegal = || SelectError::Illegal(expression.to_owned());
        let (n, offset) = match numbers.map_err(|_| illegal())?.as_slice() {
            [n] => (*n, 0),
            [n, offset] => (*n, *offset),
            _ => return Err(illegal()),
        };
        return Ok(top(variable, n, offset)
            .iter()
            .map(|c| c.parts[0])
            .collect());
    }
    if expression.contains(['*', '?']) {
        if expression.matches('*').count() > 2 {
            return Err(SelectError::Illegal(expression.to_owned()));
        }
        let positions: Vec<usize> = (0..variable.values.len())
            .filter(|&p| wildcard(expression, &variable.values[p].code))
            .collect();
        return Ok(positions);
    }
    variable
        .position(expression)
        .map(|p| vec![p])
        .ok_or_else(|| unknown_value(variable, expression))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::pxweb_server::table::{CodelistValue, Role};

    fn table() -> PxTable {
        let mut table = PxTable::generated(
            "TAB1",
            &[
                ("Region", 4, Role::Eliminable),
                ("Alder", 3, Role::Plain),
                ("Tid", 5, Role::Time),
            ],
        );
        table.variables[1].codelists.push(PxCodelist {
            id: "agg_Ålder2".to_owned(),
            label: "två grupper".to_owned(),
            kind: CodelistKind::Aggregation,
            values: vec![CodelistValue {
                code: "0-1".to_owned(),
                label: "0-1 år".to_owned(),
                value_map: vec!["1".to_owned(), "0".to_owned()],
            }],
        });
        table
    }

    fn codes(selection: &Selection, table: &PxTable) -> Vec<Vec<String>> {
        selection
            .kept(table)
            .map(|(_, cs)| cs.iter().map(|c| c.code.clone()).collect())
            .collect()
    }

    #[test]
    fn wildcards_match_runs_and_single_characters_in_any_case() {
        assert!(wildcard("01*", "0114") && wildcard("*", "") && wildcard("?1", "01"));
        assert!(wildcard("tot*", "TOT16+") && !wildcard("?1", "011"));
    }

    #[test]
    fn v2_top_takes_the_latest_periods_and_wildcards_expand() {
        let table = table();
        let query: V2Query = serde_json::from_str(
            r#"{"selection":[{"variableCode":"alder","valueCodes":["*"]},
                             {"variableCode":"TID","valueCodes":["TOP(2)"]}]}"#,
        )
        .unwrap();
        let selection = v2(&table, &query).unwrap();
        assert_eq!(
            codes(&selection, &table),
            [vec!["0", "1", "2"], vec!["2023", "2024"]]
        );
        assert!(matches!(selection.picks[0], Pick::Eliminated(0)));
    }

    #[test]
    fn v2_refuses_a_mandatory_variable_left_out() {
        let query: V2Query =
            serde_json::from_str(r#"{"selection":[{"variableCode":"Tid","valueCodes":["2024"]}]}"#)
                .unwrap();
        assert_eq!(
            v2(&table(), &query).unwrap_err(),
            SelectError::Mandatory("Alder".to_owned())
        );
    }

    #[test]
    fn v1_answers_all_values_of_a_mandatory_variable_left_out() {
        let table = table();
        let query: V1Query = serde_json::from_str(
            r#"{"query":[{"code":"Tid","selection":{"filter":"top","values":["1"]}}]}"#,
        )
        .unwrap();
        let selection = v1(&table, &query).unwrap();
        assert_eq!(
            codes(&selection, &table),
            [vec!["0", "1", "2"], vec!["2024"]]
        );
    }

    #[test]
    fn an_aggregation_cell_is_the_sum_of_its_parts() {
        let table = table();
        let query: V1Query = serde_json::from_str(
            r#"{"query":[{"code":"Alder","selection":{"filter":"agg:Ålder2","values":["0-1"]}},
                         {"code":"Tid","selection":{"filter":"item","values":["2021"]}}]}"#,
        )
        .unwrap();
        let selection = v1(&table, &query).unwrap();
        let expected = table.value_at(&["0", "0", "2021"]).unwrap()
            + table.value_at(&["0", "1", "2021"]).unwrap();
        assert_eq!(selection.cell_values(&table), [Some(expected)]);
    }
}
