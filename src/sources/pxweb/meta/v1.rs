//! PxWeb API v1 metadata: a table's variables (`GET <table-url>`) and a level's nodes
//! (`GET <level-url>`).
//!
//! Owns: the v1 shapes as written and their reading into [`TableMeta`] and [`Node`]s.
//! Must not: know URLs (the caller passes `origin` for errors and the table's `id`).

use serde::Deserialize;

use super::{
    MetaError, Node, NodeKind, TableMeta, Value, Variable, bounded, parse, same_code, shape,
};

/// v1 has no roles: SCB names its content variable `ContentsCode` and every v1 host we read
/// copies it.
const CONTENT_CODE: &str = "ContentsCode";

#[derive(Deserialize)]
struct TableRaw {
    title: String,
    variables: Vec<VariableRaw>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariableRaw {
    code: String,
    text: String,
    values: Vec<String>,
    value_texts: Vec<String>,
    // v1 omits both keys when false.
    #[serde(default)]
    elimination: bool,
    #[serde(default)]
    time: bool,
}

/// A v1 table's metadata (`GET <table-url>`, `{title, variables[…]}`); `id` is the table's
/// id (its URL's last segment), `origin` the URL for errors. Variables and values keep the
/// server's order; the variable coded `ContentsCode` (any case) is the content.
///
/// Errors: [`MetaError::NotJson`] when the body is not this shape (an error page, a node
/// list), [`MetaError::Shape`] when `values` and `valueTexts` differ in length or a variable
/// has none, [`MetaError::TooLarge`] and [`MetaError::DuplicateCode`] as the module says.
pub fn v1_table(bytes: &[u8], id: &str, origin: &str) -> Result<TableMeta, MetaError> {
    let raw: TableRaw = parse(bytes, origin, "PxWeb v1 table metadata")?;
    bounded(origin, raw.variables.iter().map(|v| v.values.len()))?;
    let variables = raw
        .variables
        .into_iter()
        .map(|raw| variable(raw, origin))
        .collect::<Result<_, _>>()?;
    TableMeta {
        id: id.to_string(),
        label: raw.title,
        variables,
        notes: Vec::new(),
    }
    .checked(origin)
}

fn variable(raw: VariableRaw, origin: &str) -> Result<Variable, MetaError> {
    if raw.values.len() != raw.value_texts.len() {
        return Err(shape(
            origin,
            format!(
                "variable `{}`: {} values but {} valueTexts",
                raw.code,
                raw.values.len(),
                raw.value_texts.len()
            ),
        ));
    }
    let values = raw
        .values
        .into_iter()
        .zip(raw.value_texts)
        .map(|(code, label)| Value { code, label })
        .collect();
    Ok(Variable {
        content: same_code(&raw.code, CONTENT_CODE),
        code: raw.code,
        label: raw.text,
        values,
        elimination: raw.elimination,
        time: raw.time,
        codelists: Vec::new(),
    })
}

/// A node of a level (`{id, type, text, updated?}`) or a database of the language level
/// (`{dbid, text}`): one struct for both, so that an entry fitting neither gets an error that
/// says which key it lacks.
#[derive(Deserialize)]
struct NodeRaw {
    id: Option<String>,
    dbid: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: String,
    updated: Option<String>,
}

/// The nodes of a v1 level (`GET <level-url>`), in the server's order. The language level's
/// database list (`[{dbid, text}]`) reads as levels: a database is descended into like one.
///
/// Errors: [`MetaError::NotJson`] when the body is not a list of nodes,
/// [`MetaError::Shape`] for an entry with neither `id` nor `dbid`, or a `type` other than
/// `l`, `t` or `h`.
pub fn v1_nodes(bytes: &[u8], origin: &str) -> Result<Vec<Node>, MetaError> {
    let raw: Vec<NodeRaw> = parse(bytes, origin, "a PxWeb v1 node list")?;
    raw.into_iter()
        .enumerate()
        .map(|(position, raw)| node(raw, position, origin))
        .collect()
}

fn node(raw: NodeRaw, position: usize, origin: &str) -> Result<Node, MetaError> {
    let (id, kind) = match (raw.id, raw.dbid) {
        (Some(id), _) => {
            let kind = match raw.kind.as_deref() {
                Some("l") => NodeKind::Level,
                Some("t") => NodeKind::Table,
                Some("h") => NodeKind::Heading,
                other => {
                    return Err(shape(
                        origin,
                        format!(
                            "node `{id}` has type {}, not `l`, `t` or `h`",
                            other.map_or("none".to_string(), |kind| format!("`{kind}`"))
                        ),
                    ));
                }
            };
            (id, kind)
        }
        (None, Some(dbid)) => (dbid, NodeKind::Level),
        (None, None) => {
            return Err(shape(
                origin,
                format!(
                    "node {} of the list has neither `id` nor `dbid`",
                    position + 1
                ),
            ));
        }
    };
    Ok(Node {
        id,
        kind,
        text: raw.text,
        updated: raw.updated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::real;

    const ORIGIN: &str = "https://example.org/api/v1/sv/db/T1";

    #[test]
    fn scb_table_reads_every_variable_with_flags_as_written() {
        let Some(bytes) = real("pxwebpy/response_table_variables.json") else {
            return;
        };
        let meta = v1_table(&bytes, "T1", ORIGIN).unwrap();
        assert_eq!(meta.id, "T1");
        assert!(meta.label.starts_with("Sammanräknad förvärvsinkomst"));
        let summary = crate::sources::pxweb::meta::tests::summary(&meta);
        assert_eq!(
            summary,
            [
                ("Region", 312, true, false, false),
                ("Kon", 3, true, false, false),
                ("Alder", 19, false, false, false),
                ("Inkomstklass", 27, true, false, false),
                ("ContentsCode", 4, false, false, true),
                ("Tid", 24, false, true, false),
            ]
        );
        let region = meta.variable("region").unwrap();
        assert_eq!(
            region.values[0],
            Value {
                code: "00".into(),
                label: "Riket".into()
            }
        );
        assert_eq!(region.values.last().unwrap().code, "2584");
        assert_eq!(meta.variable("Tid").unwrap().values[0].code, "1999");
        assert!(meta.notes.is_empty() && region.codelists.is_empty());
    }

    #[test]
    fn fohm_table_keeps_codes_with_spaces_and_swedish_letters() {
        let Some(bytes) = real("fuzzy-MCP/fohm_metadata_mobbning.json") else {
            return;
        };
        let meta = v1_table(&bytes, "MobbningReg.px", ORIGIN).unwrap();
        let codes: Vec<_> = meta.variables.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(
            codes,
            ["Region", "Kategori", "Hur ofta", "Ålder", "Kön", "År"]
        );
        assert_eq!(meta.variable("ålder").unwrap().code, "Ålder");
        let hur_ofta = meta.variable("hur ofta").unwrap();
        assert_eq!(
            hur_ofta.value("2-3 GGR/MÅNAD").unwrap().code,
            "2-3 ggr/månad"
        );
        let year = meta.variable("År").unwrap();
        assert!(year.time && !year.elimination);
        assert_eq!(year.values.last().unwrap().code, "2021-2022");
        assert_eq!(meta.variable("Region").unwrap().values[0].label, "00 Riket");
        // FoHM has no ContentsCode: nothing is marked content rather than guessing.
        assert!(meta.variables.iter().all(|v| !v.content));
    }

    #[test]
    fn values_and_texts_of_different_lengths_name_the_variable() {
        let bytes = br#"{"title":"t","variables":[
            {"code":"Region","text":"region","values":["00","01"],"valueTexts":["Riket"]}]}"#;
        insta::assert_snapshot!(v1_table(bytes, "T1", ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: variable `Region`: 2 values but 1 valueTexts; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }

    #[test]
    fn values_repeated_in_another_case_are_refused_naming_variable_and_code() {
        let bytes = br#"{"title":"t","variables":[
            {"code":"Kon","text":"k","values":["tot","TOT"],"valueTexts":["a","b"]}]}"#;
        insta::assert_snapshot!(v1_table(bytes, "T1", ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: variable `Kon` lists `TOT` twice (PxWeb compares codes ignoring case), so a query for it is ambiguous; report the table to its producer and leave it out meanwhile");
    }

    #[test]
    fn no_variables_is_refused() {
        insta::assert_snapshot!(v1_table(br#"{"title":"t","variables":[]}"#, "T1", ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: the metadata lists no variables; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }

    #[test]
    fn an_error_page_is_not_json_and_says_what_was_expected() {
        // SCB answers a bad v1 request with the plain text `Bad Request`.
        let error = v1_table(b"Bad Request", "T1", ORIGIN).unwrap_err();
        insta::assert_snapshot!(error, @"https://example.org/api/v1/sv/db/T1: not the JSON of PxWeb v1 table metadata; check `url`/`table` in [source]; the server may have sent an error page");
        assert!(matches!(error, MetaError::NotJson { .. }));
    }

    #[test]
    fn scb_level_lists_tables_with_zone_less_updated() {
        let Some(bytes) = real("pxweb/ME0104C.json") else {
            return;
        };
        let nodes = v1_nodes(&bytes, ORIGIN).unwrap();
        assert_eq!(nodes.len(), 8);
        assert!(nodes.iter().all(|n| n.kind == NodeKind::Table));
        assert_eq!(nodes[0].id, "Riksdagsmandat");
        assert_eq!(nodes[0].updated.as_deref(), Some("2022-11-21T08:00:00"));
        assert_eq!(nodes[7].id, "ME0104T23");
        assert_eq!(nodes[7].updated.as_deref(), Some("2023-02-27T08:00:00"));
    }

    #[test]
    fn levels_headings_and_databases_are_told_apart() {
        let bytes = r#"[{"id":"BE","type":"l","text":"Befolkning"},
            {"id":"H1","type":"h","text":"Rubrik"},
            {"dbid":"ssd","text":"Statistikdatabasen"}]"#;
        let nodes = v1_nodes(bytes.as_bytes(), ORIGIN).unwrap();
        let kinds: Vec<_> = nodes.iter().map(|n| (n.id.as_str(), n.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("BE", NodeKind::Level),
                ("H1", NodeKind::Heading),
                ("ssd", NodeKind::Level)
            ]
        );
        assert_eq!(nodes[2].updated, None);
    }

    #[test]
    fn unknown_node_type_and_missing_id_are_named() {
        let bytes = br#"[{"id":"X","type":"q","text":"x"}]"#;
        insta::assert_snapshot!(v1_nodes(bytes, ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: node `X` has type `q`, not `l`, `t` or `h`; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
        let bytes = br#"[{"id":"A","type":"l","text":"a"},{"text":"x"}]"#;
        insta::assert_snapshot!(v1_nodes(bytes, ORIGIN).unwrap_err(), @"https://example.org/api/v1/sv/db/T1: node 2 of the list has neither `id` nor `dbid`; check `url`/`table` in [source]; the server may have sent an error page or changed its format");
    }
}
