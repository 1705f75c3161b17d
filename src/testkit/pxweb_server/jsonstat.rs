//! json-stat2 datasets as SCB writes them: v1 data answers, v2 data answers and v2 metadata
//! (a dataset with `value: []`), one writer for all three.
//!
//! Owns: the dataset's keys and their order (`class`, `label`, `source`, `updated`, `id`,
//! `size`, `dimension` with `category.index` as an object, `value`, `status`, `role`,
//! `extension.px.tableid`), and which per-dimension `extension` each answer carries.
//! Must not: resolve selections (`select.rs`) or know HTTP.

use serde::Serialize;
use serde::ser::Serializer;
use serde_json::json;

use super::select::{Category, Selection};
use super::table::{PxTable, PxVariable};

/// Which answer a dataset is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape<'a> {
    /// v1 POST: dimensions carry `extension.show` only.
    V1Data,
    /// v2 POST data: dimensions carry `extension.elimination` and `eliminationValueCode`.
    V2Data,
    /// v2 metadata: every value, no cells, dimensions carry `extension.codelists` (and never
    /// `eliminationValueCode`, which SCB sends only with data). `base` makes the code list links.
    V2Metadata { base: &'a str, lang: &'a str },
}

/// The dataset as bytes.
pub(super) fn dataset(table: &PxTable, selection: &Selection, shape: Shape<'_>) -> Vec<u8> {
    let kept: Vec<(&PxVariable, &[Category])> = selection.kept(table).collect();
    let values = match shape {
        Shape::V2Metadata { .. } => Vec::new(),
        Shape::V1Data | Shape::V2Data => selection.cell_values(table),
    };
    let status = Ordered(
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_none())
            .map(|(i, _)| (i.to_string(), ".."))
            .collect(),
    );
    let codes = |pick: fn(&PxVariable) -> bool| -> Vec<&str> {
        kept.iter()
            .filter(|(v, _)| pick(v))
            .map(|(v, _)| v.code.as_str())
            .collect()
    };
    let dataset = Dataset {
        version: "2.0",
        class: "dataset",
        label: &table.label,
        source: &table.source,
        updated: &table.updated,
        note: match shape {
            Shape::V2Metadata { .. } | Shape::V2Data => &table.notes,
            // v1 json-stat2 answers carry no root notes (`pxwebpy/response_se.json`).
            Shape::V1Data => &[],
        },
        role: RoleJson {
            time: codes(|v| v.time),
            metric: codes(|v| v.content),
        },
        id: kept.iter().map(|(v, _)| v.code.as_str()).collect(),
        size: kept.iter().map(|(_, c)| c.len()).collect(),
        dimension: Ordered(
            kept.iter()
                .map(|(v, categories)| (v.code.as_str(), dimension(v, categories, shape)))
                .collect(),
        ),
        value: values.into_iter().map(Cell).collect(),
        status,
        extension: json!({"px": {"tableid": table.id, "matrix": table.id, "decimals": 0}}),
    };
    serde_json::to_vec(&dataset).expect("a dataset of strings and numbers serialises")
}

fn dimension<'a>(
    variable: &'a PxVariable,
    categories: &'a [Category],
    shape: Shape<'_>,
) -> Dimension<'a> {
    let show = if variable.time { "code" } else { "value" };
    let extension = match shape {
        Shape::V1Data => json!({"show": show}),
        Shape::V2Data => {
            let mut extension = json!({"elimination": variable.elimination, "show": show});
            if let Some(code) = variable
                .elimination_value
                .as_deref()
                .filter(|_| variable.elimination)
            {
                extension["eliminationValueCode"] = json!(code);
            }
            extension
        }
        Shape::V2Metadata { base, lang } => {
            let codelists: Vec<_> = variable
                .codelists
                .iter()
                .map(|list| {
                    json!({"id": list.id, "label": list.label, "type": list.kind.as_str(), "links": [{
                        "rel": "metadata", "hreflang": lang,
                        "href": format!("{base}/api/v2/codeLists/{}?lang={lang}", list.id),
                    }]})
                })
                .collect();
            json!({"elimination": variable.elimination, "show": show, "codelists": codelists})
        }
    };
    let units: Vec<(&str, UnitJson)> = categories
        .iter()
        .filter_map(|c| {
            let unit = c.unit.as_ref()?;
            Some((
                c.code.as_str(),
                UnitJson {
                    base: &unit.base,
                    decimals: unit.decimals,
                },
            ))
        })
        .collect();
    Dimension {
        label: &variable.label,
        category: CategoryJson {
            index: Ordered(
                categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.code.as_str(), i))
                    .collect(),
            ),
            label: Ordered(
                categories
                    .iter()
                    .map(|c| (c.code.as_str(), c.label.as_str()))
                    .collect(),
            ),
            unit: (!units.is_empty()).then_some(Ordered(units)),
        },
        extension,
    }
}

#[derive(Serialize)]
struct Dataset<'a> {
    version: &'static str,
    class: &'static str,
    label: &'a str,
    source: &'a str,
    updated: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    note: &'a [String],
    role: RoleJson<'a>,
    id: Vec<&'a str>,
    size: Vec<usize>,
    dimension: Ordered<&'a str, Dimension<'a>>,
    value: Vec<Cell>,
    #[serde(skip_serializing_if = "Ordered::is_empty")]
    status: Ordered<String, &'static str>,
    extension: serde_json::Value,
}

#[derive(Serialize)]
struct RoleJson<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    time: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metric: Vec<&'a str>,
}

#[derive(Serialize)]
struct Dimension<'a> {
    label: &'a str,
    category: CategoryJson<'a>,
    extension: serde_json::Value,
}

#[derive(Serialize)]
struct CategoryJson<'a> {
    index: Ordered<&'a str, usize>,
    label: Ordered<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<Ordered<&'a str, UnitJson<'a>>>,
}

#[derive(Serialize)]
struct UnitJson<'a> {
    base: &'a str,
    decimals: u32,
}

/// A JSON object in this order: `category.index` and `label` follow the table's order, as
/// SCB's do (serde_json's own map would sort the keys).
struct Ordered<K, V>(Vec<(K, V)>);

impl<K, V> Ordered<K, V> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// A cell: `null`, or a number written as SCB writes it (`245284`, not `245284.0`).
struct Cell(Option<f64>);

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => serializer.serialize_none(),
            Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => serializer.serialize_i64(v as i64),
            Some(v) => serializer.serialize_f64(v),
        }
    }
}
