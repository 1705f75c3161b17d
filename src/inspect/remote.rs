//! `indikator inspect URL`: a PxWeb table as the harvest would see it, before any pipeline
//! reads it: its variables, cells, the host's limits and the requests the planner would send.
//! Also `indikator tables URL --query TEXT`, the tables of a PxWebApi 2.0 host.
//!
//! Owns: choosing the API from what the operator typed and rendering the survey.
//! Must not: fetch data (a survey asks for config and metadata only).

use std::collections::BTreeSet;

use serde_json::json;

use crate::sources::FetchContext;
use crate::sources::http::{HostLimits, LimitHints};
use crate::sources::pxweb::meta::TableInfo;
use crate::sources::pxweb::select::Selection;
use crate::sources::pxweb::v1::V1Table;
use crate::sources::pxweb::v2::V2Table;
use crate::sources::pxweb::{Api, PxwebError, PxwebSource, Scope, Survey, listing};

/// How many codes of each variable the text shows.
const FIRST_CODES: usize = 5;

/// Errors of inspecting a URL.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Url(String),
    #[error(transparent)]
    Pxweb(#[from] PxwebError),
}

/// Where the table is: a v1 table URL, or a v2 root with `--table`.
pub fn locate(url: &str, table: Option<&str>, lang: Option<&str>) -> Result<Api, RemoteError> {
    match table {
        Some(table) => V2Table::new(url, table, lang.unwrap_or("sv")).map(Api::V2),
        None if lang.is_some() => Err("--lang is for a PxWebApi 2.0 root with --table; a v1 \
             table URL carries its language"
            .to_string()),
        None => V1Table::parse(url, None)
            .map(Api::V1)
            .map_err(|e| format!("{e}; for a PxWebApi 2.0 host give its root and --table TAB638")),
    }
    .map_err(RemoteError::Url)
}

/// Surveys the whole table at `api`.
pub async fn inspect_table(api: Api, cx: &FetchContext) -> Result<Survey, RemoteError> {
    let source = PxwebSource {
        api,
        selection: Selection::default(),
        overrides: LimitHints::default(),
        max_table_cells: u64::MAX,
    };
    Ok(source.survey(cx, Scope::WholeTable).await?)
}

/// The tables of the v2 host at `root` matching `query`.
pub async fn find_tables(
    root: &str,
    query: &str,
    lang: &str,
    cx: &FetchContext,
) -> Result<Vec<TableInfo>, RemoteError> {
    Ok(listing::find_tables(&cx.http, root, query, lang, &cx.cancel).await?)
}

/// The variables a plan splits, with how many chunks each.
fn splits(survey: &Survey) -> Vec<(String, usize)> {
    survey
        .expanded
        .variables
        .iter()
        .enumerate()
        .filter_map(|(i, variable)| {
            let chunks: BTreeSet<_> = survey
                .plan
                .iter()
                .map(|piece| (piece.ranges[i].start, piece.ranges[i].end))
                .collect();
            (chunks.len() > 1).then(|| (variable.code.clone(), chunks.len()))
        })
        .collect()
}

fn limits_text(host: &HostLimits, planned_cells: u64) -> String {
    let values = host
        .max_values
        .map_or(String::new(), |v| format!(", {v} values"));
    let stated = if host.max_cells.is_some() {
        ""
    } else {
        " (not stated by the host: the planner's default)"
    };
    format!(
        "{planned_cells} cells{stated}{values} per request; {} calls per {} s",
        host.max_calls,
        host.window.as_secs()
    )
}

/// The survey as text.
pub fn render(survey: &Survey) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    let table = &survey.table;
    let _ = writeln!(text, "{} {}", table.id, table.label);
    let info = &survey.info;
    let mut about = Vec::new();
    if let Some(updated) = &info.updated {
        about.push(format!("updated {updated}"));
    }
    if let (Some(first), Some(last)) = (&info.first_period, &info.last_period) {
        about.push(format!("periods {first}–{last}"));
    }
    if let Some(unit) = &info.time_unit {
        about.push(unit.clone());
    }
    if info.discontinued == Some(true) {
        about.push("DISCONTINUED".into());
    }
    if !about.is_empty() {
        let _ = writeln!(text, "  {}", about.join("; "));
    }
    let width = table
        .variables
        .iter()
        .map(|v| v.code.len())
        .max()
        .unwrap_or(0);
    for variable in &table.variables {
        let first: Vec<&str> = variable
            .values
            .iter()
            .take(FIRST_CODES)
            .map(|v| v.code.as_str())
            .collect();
        let more = if variable.values.len() > FIRST_CODES {
            ", …"
        } else {
            ""
        };
        let mut marks = Vec::new();
        if variable.time {
            marks.push("time".to_string());
        }
        if variable.content {
            marks.push("content".to_string());
        }
        if variable.elimination {
            marks.push("may be left out".to_string());
        }
        if !variable.codelists.is_empty() {
            let ids: Vec<&str> = variable.codelists.iter().map(|c| c.id.as_str()).collect();
            marks.push(format!("code lists {}", ids.join(", ")));
        }
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!("  ({})", marks.join("; "))
        };
        let _ = writeln!(
            text,
            "  {:<width$}  {:>6}  {}{more}{marks}",
            variable.code,
            variable.values.len(),
            first.join(", ")
        );
    }
    let _ = writeln!(text, "cells: {}", survey.expanded.cells());
    let _ = writeln!(
        text,
        "server limits: {}",
        limits_text(&survey.host, survey.limits.max_cells)
    );
    let split: Vec<String> = splits(survey)
        .into_iter()
        .map(|(code, chunks)| format!("{code} in {chunks}"))
        .collect();
    let split = if split.is_empty() {
        String::new()
    } else {
        format!(" (splitting {})", split.join(", "))
    };
    let _ = writeln!(
        text,
        "requests for the whole table: {}{split}",
        survey.plan.len()
    );
    for notice in &survey.notices {
        let _ = writeln!(text, "notice: {notice}");
    }
    text
}

/// The survey as one JSON object.
pub fn to_json(survey: &Survey) -> serde_json::Value {
    let info = &survey.info;
    json!({
        "table": survey.table.id,
        "label": survey.table.label,
        "updated": info.updated,
        "first_period": info.first_period,
        "last_period": info.last_period,
        "time_unit": info.time_unit,
        "discontinued": info.discontinued,
        "dimensions": survey.table.variables.iter().map(|v| json!({
            "id": v.code,
            "label": v.label,
            "size": v.values.len(),
            "elimination": v.elimination,
            "time": v.time,
            "content": v.content,
            "codelists": v.codelists.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "cells": survey.expanded.cells(),
        "limits": {
            "max_cells": survey.host.max_cells,
            "planned_max_cells": survey.limits.max_cells,
            "max_values": survey.host.max_values,
            "max_calls": survey.host.max_calls,
            "window_secs": survey.host.window.as_secs(),
        },
        "requests": survey.plan.len(),
        "splits": splits(survey).into_iter().map(|(code, chunks)| json!({"id": code, "chunks": chunks})).collect::<Vec<_>>(),
        "notices": survey.notices,
    })
}

/// Found tables as text, one per line.
pub fn render_tables(tables: &[TableInfo]) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for table in tables {
        let periods = match (&table.first_period, &table.last_period) {
            (Some(first), Some(last)) => format!("{first}–{last}"),
            _ => String::new(),
        };
        let discontinued = if table.discontinued == Some(true) {
            "  DISCONTINUED"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "{:<9} {:<11} {:<22} {}{discontinued}",
            table.id,
            periods,
            table.updated.as_deref().unwrap_or(""),
            table.label
        );
    }
    let _ = writeln!(text, "{} tables", tables.len());
    text
}
