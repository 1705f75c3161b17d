//! `indikator check --online`: each network pipeline's table asked for its metadata (no data),
//! and its `select` expanded and planned against it, so that a renamed variable, a retired code
//! or a frozen table is found before the scheduled run.
//!
//! Owns: turning each survey into problems of the pipeline's file.
//! Must not: fetch data, or check what `check` checks offline.

use tokio_util::sync::CancellationToken;

use super::{Pipeline, SourceKind};
use crate::problem::{Problem, error_chain};
use crate::sources::FetchContext;
use crate::sources::http::HttpClient;
use crate::sources::pxweb::{PxwebError, Scope};

/// The problems found online, for every pipeline with a network source (one after the other:
/// the host's rate limit is shared anyway). A pipeline reading files has none.
pub async fn check_online(
    pipelines: &[Pipeline],
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
        let SourceKind::Pxweb(source) = &pipeline.source else {
            continue;
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
