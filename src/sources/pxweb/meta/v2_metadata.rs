//! PxWebApi 2.0 `/tables/{id}/metadata`: a json-stat2 dataset without values, read into a
//! [`TableMeta`].
//!
//! Owns: the dataset's metadata as written (dimensions, categories, roles, PxWeb's
//! `extension`s) and its checks: `size` against the categories, category positions, a table id.
//! Must not: decode data responses (`formats::jsonstat` does, values and all) or know URLs
//! (`origin` is only named in errors).

use std::collections::HashMap;

use serde::Deserialize;

use super::{CodelistRef, MetaError, TableMeta, Value, Variable, bounded, parse, shape, unique};

#[derive(Deserialize)]
struct DatasetRaw {
    class: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    note: Vec<String>,
    // SCB sets `time` and `metric` but never `geo`, which we do not need.
    #[serde(default)]
    role: RoleRaw,
    id: Vec<String>,
    size: Vec<u64>,
    dimension: HashMap<String, DimensionRaw>,
    extension: Option<DatasetExtensionRaw>,
}

#[derive(Deserialize, Default)]
struct RoleRaw {
    #[serde(default)]
    time: Vec<String>,
    #[serde(default)]
    metric: Vec<String>,
}

#[derive(Deserialize)]
struct DimensionRaw {
    #[serde(default)]
    label: String,
    category: CategoryRaw,
    #[serde(default)]
    extension: DimensionExtensionRaw,
}

#[derive(Deserialize)]
struct CategoryRaw {
    index: Option<IndexRaw>,
    #[serde(default)]
    label: HashMap<String, String>,
}

/// JSON-stat allows both: ids in order, or id → position (what SCB sends).
#[derive(Deserialize)]
#[serde(untagged)]
enum IndexRaw {
    Array(Vec<String>),
    Object(HashMap<String, usize>),
}

#[derive(Deserialize, Default)]
struct DimensionExtensionRaw {
    #[serde(default)]
    elimination: bool,
    #[serde(default)]
    codelists: Vec<CodelistRefRaw>,
}

#[derive(Deserialize)]
struct CodelistRefRaw {
    id: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct DatasetExtensionRaw {
    px: Option<PxRaw>,
}

#[derive(Deserialize)]
struct PxRaw {
    tableid: Option<String>,
    matrix: Option<String>,
}

impl CategoryRaw {
    fn len(&self) -> usize {
        match &self.index {
            Some(IndexRaw::Array(codes)) => codes.len(),
            Some(IndexRaw::Object(positions)) => positions.len(),
            None => self.label.len(),
        }
    }
}

/// A table's metadata (`GET /tables/{id}/metadata`, a json-stat2 dataset whose `value` is
/// empty). Variables follow `id` (not the order of `dimension`'s keys), values their category
/// positions; elimination and code lists come from each dimension's `extension`, time and
/// content from `role.time` and `role.metric`, the id from `extension.px.tableid` (or
/// `matrix`).
///
/// Errors: [`MetaError::NotJson`] when the body is not a dataset (a problem document, the
/// pre-2.0 draft shape), [`MetaError::Shape`] when it is not self-consistent (`class` not
/// `dataset`, an `id` without its dimension, `size` disagreeing with the categories, category
/// positions not 0 to n−1 each once) or has no table id, [`MetaError::TooLarge`] and
/// [`MetaError::DuplicateCode`] as the module says.
pub fn v2_table(bytes: &[u8], origin: &str) -> Result<TableMeta, MetaError> {
    let mut raw: DatasetRaw = parse(bytes, origin, "PxWebApi 2.0 table metadata (json-stat2)")?;
    if raw.class != "dataset" {
        return Err(shape(
            origin,
            format!("class is `{}`, not `dataset`", raw.class),
        ));
    }
    if raw.size.len() != raw.id.len() {
        return Err(shape(
            origin,
            format!(
                "`id` names {} dimensions but `size` has {}",
                raw.id.len(),
                raw.size.len()
            ),
        ));
    }
    // Before the dimensions are taken out of `dimension` by id, where a repeated id would
    // find nothing the second time.
    unique(origin, "the table's variables", raw.id.iter())?;
    let sizes = raw
        .id
        .iter()
        .map(|id| match raw.dimension.get(id) {
            Some(dimension) => Ok(dimension.category.len()),
            None => Err(shape(
                origin,
                format!("dimension `{id}` is in `id` but not in `dimension`"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    bounded(origin, sizes.iter().copied())?;
    if let Some((id, (&size, &categories))) = raw
        .id
        .iter()
        .zip(raw.size.iter().zip(&sizes))
        .find(|(_, (size, categories))| **size != **categories as u64)
    {
        return Err(shape(
            origin,
            format!("dimension `{id}`: `size` says {size} but it has {categories} categories"),
        ));
    }
    let px = raw.extension.and_then(|extension| extension.px);
    let Some(table_id) = px.and_then(|px| px.tableid.or(px.matrix)) else {
        return Err(shape(
            origin,
            "no table id in `extension.px` (`tableid` or `matrix`)",
        ));
    };
    let variables = raw
        .id
        .iter()
        .map(|id| {
            let dimension = raw
                .dimension
                .remove(id)
                .expect("every id is in `dimension` and named once, as checked above");
            variable(id, dimension, &raw.role, origin)
        })
        .collect::<Result<_, _>>()?;
    TableMeta {
        id: table_id,
        label: raw.label,
        variables,
        notes: raw.note,
    }
    .checked(origin)
}

fn variable(
    id: &str,
    dimension: DimensionRaw,
    role: &RoleRaw,
    origin: &str,
) -> Result<Variable, MetaError> {
    let mut labels = dimension.category.label;
    let codes = match dimension.category.index {
        Some(IndexRaw::Array(codes)) => codes,
        Some(IndexRaw::Object(positions)) => in_position_order(id, positions, origin)?,
        // JSON-stat lets a one-category dimension leave out `index`: its label's key is the id.
        None if labels.len() == 1 => labels.keys().cloned().collect(),
        None => {
            return Err(shape(
                origin,
                format!(
                    "dimension `{id}` has no `category.index` and {} labels; only a dimension \
                     of one category may leave out its index",
                    labels.len()
                ),
            ));
        }
    };
    let values = codes
        .into_iter()
        .map(|code| {
            // JSON-stat makes labels optional; the code then stands for itself.
            let label = labels.remove(&code).unwrap_or_else(|| code.clone());
            Value { code, label }
        })
        .collect();
    Ok(Variable {
        code: id.to_string(),
        label: dimension.label,
        values,
        elimination: dimension.extension.elimination,
        time: role.time.iter().any(|time| time == id),
        content: role.metric.iter().any(|metric| metric == id),
        codelists: dimension
            .extension
            .codelists
            .into_iter()
            .map(|raw| CodelistRef {
                id: raw.id,
                label: raw.label,
                kind: raw.kind,
            })
            .collect(),
    })
}

/// `{code: position}` as codes in position order; the positions must be 0 to n−1, each once.
fn in_position_order(
    id: &str,
    positions: HashMap<String, usize>,
    origin: &str,
) -> Result<Vec<String>, MetaError> {
    let mut slots = vec![None; positions.len()];
    for (code, position) in positions {
        match slots.get_mut(position) {
            Some(slot @ None) => *slot = Some(code),
            _ => {
                return Err(shape(
                    origin,
                    format!(
                        "dimension `{id}`: category `{code}` has position {position}, but the \
                         {} positions must be 0 to {}, each once",
                        slots.len(),
                        slots.len() - 1
                    ),
                ));
            }
        }
    }
    Ok(slots
        .into_iter()
        .map(|slot| slot.expect("n distinct positions below n fill n slots"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::real;

    const ORIGIN: &str = "https://example.org/api/v2/tables/TAB1/metadata";

    /// A one-dimension metadata dataset around `dimension` (its id `Region`).
    fn dataset(size: u64, dimension: &str) -> Vec<u8> {
        format!(
            r#"{{"class":"dataset","id":["Region"],"size":[{size}],"value":[],
                "extension":{{"px":{{"matrix":"TAB1"}}}},
                "dimension":{{"Region":{dimension}}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn scb_tab6471_reads_dimensions_in_id_order_with_codelists_and_roles() {
        let Some(bytes) = real("pxwebpy/TAB6471_metadata.json") else {
            return;
        };
        let meta = v2_table(&bytes, ORIGIN).unwrap();
        assert_eq!(meta.id, "TAB6471");
        assert!(meta.label.starts_with("Folkmängden per månad"));
        assert_eq!(meta.notes.len(), 4);
        let summary = crate::sources::pxweb::meta::tests::summary(&meta);
        assert_eq!(
            summary,
            [
                ("Region", 312, true, false, false),
                ("Alder", 134, false, false, false),
                ("Kon", 3, true, false, false),
                ("ContentsCode", 1, false, false, true),
                ("Tid", 16, false, true, false),
            ]
        );
        let region = meta.variable("REGION").unwrap();
        assert_eq!(
            region.values[0],
            Value {
                code: "00".into(),
                label: "Riket".into()
            }
        );
        assert_eq!(region.values.last().unwrap().code, "2584");
        let lists: Vec<_> = region
            .codelists
            .iter()
            .map(|c| (c.id.as_str(), c.kind.as_str()))
            .collect();
        assert_eq!(
            lists,
            [
                ("vs_CKM01Riket", "Valueset"),
                ("vs_CKM02Län", "Valueset"),
                ("vs_CKM03Kommun", "Valueset")
            ]
        );
        assert_eq!(meta.variable("Alder").unwrap().codelists.len(), 4);
        let age = meta.variable("Alder").unwrap();
        assert_eq!(
            (
                age.values[0].label.as_str(),
                age.values.last().unwrap().code.as_str()
            ),
            ("0 år", "100+5")
        );
        let time = meta.variable("tid").unwrap();
        assert_eq!(
            (time.values[0].code.as_str(), time.values[15].code.as_str()),
            ("2025M01", "2026M04")
        );
    }

    #[test]
    fn reference_server_tab004_reads_like_scb() {
        let Some(bytes) = real("PxWebApi/MetadataById_tab004_js2.json") else {
            return;
        };
        let meta = v2_table(&bytes, ORIGIN).unwrap();
        assert_eq!(meta.id, "TAB004");
        assert_eq!(meta.notes, ["Footnote text", ".. = Data not available"]);
        let summary = crate::sources::pxweb::meta::tests::summary(&meta);
        assert_eq!(
            summary,
            [
                ("SECTOR", 14, false, false, false),
                ("GREENHOUSEGAS", 11, false, false, false),
                ("ContentsCode", 1, false, false, true),
                ("TIME", 28, false, true, false),
            ]
        );
        let sector = meta.variable("sector").unwrap();
        assert_eq!(
            (
                sector.values[0].code.as_str(),
                sector.values[13].code.as_str()
            ),
            ("0.1", "9.0")
        );
        assert_eq!(
            meta.variable("GREENHOUSEGAS")
                .unwrap()
                .value("sf6_co2-EKV.")
                .unwrap()
                .code,
            "SF6_CO2-ekv."
        );
    }

    #[test]
    fn the_pre_2_0_draft_shapes_are_refused_as_not_json_stat() {
        // An archived design draft of table metadata: `id` is a string, no `dimension`.
        if let Some(bytes) = real("PxApiSpecs/table-metadata-example.json") {
            assert!(matches!(
                v2_table(&bytes, ORIGIN),
                Err(MetaError::NotJson { .. })
            ));
        }
        // A draft JSON-stat metadata with `//` comments: not JSON at all.
        if let Some(bytes) = real("PxApiSpecs/response-scb-all-region.json") {
            assert!(matches!(
                v2_table(&bytes, ORIGIN),
                Err(MetaError::NotJson { .. })
            ));
        }
    }

    #[test]
    fn an_array_index_and_missing_labels_read_in_order() {
        let bytes = dataset(
            2,
            r#"{"label":"region","category":{"index":["01","00"],"label":{"00":"Riket"}}}"#,
        );
        let meta = v2_table(&bytes, ORIGIN).unwrap();
        let region = &meta.variables[0];
        assert_eq!(
            region.values[0],
            Value {
                code: "01".into(),
                label: "01".into()
            }
        );
        assert_eq!(
            region.values[1],
            Value {
                code: "00".into(),
                label: "Riket".into()
            }
        );
        assert!(
            !region.elimination && !region.time && !region.content && region.codelists.is_empty()
        );
    }

    #[test]
    fn a_one_category_dimension_may_leave_out_its_index() {
        let bytes = dataset(
            1,
            r#"{"label":"region","category":{"label":{"00":"Riket"}}}"#,
        );
        let meta = v2_table(&bytes, ORIGIN).unwrap();
        assert_eq!(
            meta.variables[0].values,
            [Value {
                code: "00".into(),
                label: "Riket".into()
            }]
        );
        let bytes = dataset(
            2,
            r#"{"category":{"label":{"00":"Riket","01":"Stockholm"}}}"#,
        );
        insta::assert_snapshot!(v2_table(&bytes, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: dimension `Region` has no `category.index` and 2 labels; only a dimension of one category may leave out its index; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }

    #[test]
    fn inconsistent_datasets_say_what_disagrees() {
        let region = r#"{"category":{"index":{"00":0,"01":1}}}"#;
        insta::assert_snapshot!(v2_table(&dataset(3, region), ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: dimension `Region`: `size` says 3 but it has 2 categories; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
        let repeated = r#"{"category":{"index":{"00":0,"01":0}}}"#;
        let error = v2_table(&dataset(2, repeated), ORIGIN)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("has position 0, but the 2 positions must be 0 to 1, each once"),
            "{error}"
        );
        let missing = br#"{"class":"dataset","id":["Tid"],"size":[1],"dimension":{},"value":[]}"#;
        insta::assert_snapshot!(v2_table(missing, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: dimension `Tid` is in `id` but not in `dimension`; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
        let twice = br#"{"class":"dataset","id":["R","R"],"size":[1,1],"dimension":{"R":{"category":{"index":["0"]}}}}"#;
        insta::assert_snapshot!(v2_table(twice, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: the table's variables lists `R` twice (PxWeb compares codes ignoring case), so a query for it is ambiguous; report the table to its producer and leave it out meanwhile");
        let bundle = br#"{"class":"collection","id":[],"size":[],"dimension":{}}"#;
        insta::assert_snapshot!(v2_table(bundle, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: class is `collection`, not `dataset`; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
        let anonymous = br#"{"class":"dataset","id":["R"],"size":[1],"dimension":{"R":{"category":{"index":["0"]}}}}"#;
        insta::assert_snapshot!(v2_table(anonymous, ORIGIN).unwrap_err(), @"https://example.org/api/v2/tables/TAB1/metadata: no table id in `extension.px` (`tableid` or `matrix`); check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }
}
