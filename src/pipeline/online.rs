//! `indikator check --online`: each network pipeline's table asked for its metadata (no data),
//! and its `select` expanded and planned against it, so that a renamed variable, a retired code
//! or a frozen table is found before the scheduled run.
//!
//! Owns: turning each survey into problems of the pipeline's file.
//! Must not: fetch data, or check what `check` checks offline.

use tokio_util::sync::CancellationToken;

use super::{Pipeline, SourceKind};
use crate::problem::{Problem, error_chain};
use crate::schemas::Schemas;
use crate::sources::FetchContext;
use crate::sources::http::HttpClient;
use crate::sources::kolada::{KoladaSource, unit_of_title};
use crate::sources::pxweb::{PxwebError, Scope};

/// The problems found online, for every pipeline with a network source (one after the other:
/// the host's rate limit is shared anyway). A pipeline reading files, local or
/// at a URL, has none.
pub async fn check_online(
    pipelines: &[Pipeline],
    schemas: &Schemas,
    http: &HttpClient,
    cancel: &CancellationToken,
) -> Vec<Problem> {
    let cx = FetchContext {
        cancel: cancel.clone(),
        validators: Vec::new(),
        http: http.clone(),
    };
    let mut problems = Vec::new();
    for pipeline in pipelines {
        let source = match &pipeline.source {
            SourceKind::Pxweb(source) => source,
            SourceKind::Kolada(source) => {
                problems.extend(kolada(pipeline, source, schemas, &cx).await);
                continue;
            }
            SourceKind::File(_) | SourceKind::Url(_) => continue,
        };
        match source.survey(&cx, Scope::Selection).await {
            Ok(survey) => {
                tracing::info!(
                    pipeline = %pipeline.id,
                    cells = survey.expanded.cells(),
                    requests = survey.plan.len(),
                    "online check passed"
                );
                for notice in survey.notices {
                    problems.push(Problem::warning(&pipeline.file, "source", notice));
                }
            }
            Err(error) => {
                let key = match &error {
                    PxwebError::Select(_) => "source.select",
                    _ => "source",
                };
                problems.push(Problem::error(&pipeline.file, key, error_chain(&error)));
            }
        }
    }
    problems
}

/// A Kolada pipeline's KPIs as Kolada has them now beside the catalogue: a KPI Kolada no longer
/// knows is an error (naming the successor the catalogue records), a title or unit that moved
/// since the catalogue was written is a warning.
async fn kolada(
    pipeline: &Pipeline,
    source: &KoladaSource,
    schemas: &Schemas,
    cx: &FetchContext,
) -> Vec<Problem> {
    let (kpis, missing) = match source.survey(cx).await {
        Ok(found) => found,
        Err(error) => {
            return vec![Problem::error(
                &pipeline.file,
                "source",
                error_chain(&error),
            )];
        }
    };
    let mut problems = Vec::new();
    for id in missing {
        let successor = (schemas.indicators.get(&id))
            .and_then(|i| i.successor.as_deref())
            .map_or(String::new(), |s| {
                format!("; the catalogue names its successor {s}")
            });
        problems.push(Problem::error(
            &pipeline.file,
            "source.kpi",
            format!("Kolada no longer has KPI {id} (retired or renamed){successor}; `indikator kpis --query …` finds its replacement"),
        ));
    }
    for kpi in kpis {
        let Some(entry) = schemas.indicators.get(&kpi.id) else {
            continue;
        };
        if entry.title_sv.trim() != kpi.title.trim() {
            problems.push(Problem::warning(
                &pipeline.file,
                "source.kpi",
                format!(
                    "Kolada's title of {} is now {:?}, the catalogue says {:?}: check that it still measures the same, then update schemas/indicators.toml",
                    kpi.id, kpi.title, entry.title_sv
                ),
            ));
        }
        if let Some(unit) = unit_of_title(&kpi.title)
            && unit != entry.unit
        {
            problems.push(Problem::warning(
                &pipeline.file,
                "source.kpi",
                format!(
                    "{}'s title says {unit} ({:?}); the catalogue's unit is {}",
                    kpi.id, kpi.title, entry.unit
                ),
            ));
        }
    }
    problems
}
