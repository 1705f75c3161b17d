//! The data requests of a harvest: every piece of the plan POSTed (a few in flight, each
//! waiting for its limiter slot), a piece the server still finds too big split once more, and
//! each answer checked to be the piece asked for.
//!
//! Owns: sending the pieces, the re-plan of a refused piece, and the check of an answer's
//! dimensions against its request.
//! Must not: archive or name anything for the archive (`harvest.rs` does), or decode values.

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde_json::Value as Json;

use super::harvest::Harvest;
use super::meta;
use super::plan::{self, Dimension, Limits, Piece};
use super::select::{Expanded, Selected};
use super::{PxwebError, Survey};
use crate::blocking::blocking;
use crate::sources::http::{Expect, HttpError, Response};

/// Data requests in flight at once: enough to keep a window's calls busy while answers stream
/// in; the limiter decides when each may start.
const PIECES_IN_FLIGHT: usize = 4;

/// One data request and what came of it.
pub(super) struct Answered {
    /// `piece-0003`, or `piece-0003-2` for the second half of a refused piece.
    pub name: String,
    pub url: String,
    pub body: Json,
    pub cells: u64,
    pub response: Result<Response, Refusal>,
}

/// A piece the server refused as too many cells (it was split and sent again).
pub(super) struct Refusal {
    pub status: u16,
    pub body_start: String,
}

/// Every piece of `survey`'s plan, in plan order; a refused piece is followed by its parts.
pub(super) async fn fetch(
    harvest: &Harvest<'_>,
    survey: &Survey,
) -> Result<Vec<Answered>, PxwebError> {
    let dimensions = dimensions(&survey.expanded);
    let url = harvest.source.api.data_url();
    let count = survey.plan.len();
    // Collected first: a lazy `map` inside the stream trips the compiler's proof that this
    // future is `Send` (rust-lang/rust#102211).
    let mut fetches = Vec::with_capacity(count);
    for (i, piece) in survey.plan.iter().enumerate() {
        let request = Request {
            harvest,
            expanded: &survey.expanded,
            dimensions: &dimensions,
            limits: &survey.limits,
            url: &url,
        };
        fetches.push(request.piece(format!("piece-{:04}", i + 1), piece, count));
    }
    let answered: Vec<Vec<Answered>> = futures_util::stream::iter(fetches)
        .buffered(PIECES_IN_FLIGHT)
        .try_collect()
        .await?;
    Ok(answered.into_iter().flatten().collect())
}

/// What every piece of one harvest shares.
#[derive(Clone, Copy)]
struct Request<'a> {
    harvest: &'a Harvest<'a>,
    expanded: &'a Expanded,
    dimensions: &'a [Dimension],
    limits: &'a Limits,
    url: &'a str,
}

impl Request<'_> {
    /// One piece; if the server still finds it too big, its parts (at most half each), each sent
    /// once.
    async fn piece(
        self,
        name: String,
        piece: &Piece,
        count: usize,
    ) -> Result<Vec<Answered>, PxwebError> {
        let api = &self.harvest.source.api;
        match self.send(name.clone(), piece).await? {
            Err((body, error)) if api.too_many_cells(&error) => {
                tracing::warn!(piece = %name, of = count, cells = piece.cells(), "refused as too many cells; split smaller");
                let mut answered = vec![refused(name.clone(), self.url, body, piece, &error)];
                let parts =
                    plan::replan(piece, self.dimensions, self.limits).map_err(|source| {
                        PxwebError::Plan {
                            table: api.table_id().into(),
                            source,
                        }
                    })?;
                for (j, part) in parts.iter().enumerate() {
                    let part_name = format!("{name}-{}", j + 1);
                    match self.send(part_name.clone(), part).await? {
                        Ok(answer) => answered.push(answer),
                        Err((_, error)) if api.too_many_cells(&error) => {
                            return Err(PxwebError::StillTooManyCells {
                                url: self.url.to_string(),
                                piece: part_name,
                                cells: part.cells(),
                            });
                        }
                        Err((_, error)) => return Err(error.into()),
                    }
                }
                Ok(answered)
            }
            Err((_, error)) => Err(error.into()),
            Ok(answer) => Ok(vec![answer]),
        }
    }

    /// POSTs one piece; the server's refusal with the body sent (the caller decides whether a
    /// smaller piece may help), or an error if the answer is not the piece asked for.
    async fn send(
        self,
        name: String,
        piece: &Piece,
    ) -> Result<Result<Answered, (Json, HttpError)>, PxwebError> {
        let variables = piece_variables(self.expanded, piece);
        let body = self.harvest.source.api.body(&variables);
        let http = self.harvest.http;
        let response = match http
            .post_bytes(self.url, &body, Expect::Json, &self.harvest.cx.cancel)
            .await
        {
            Ok(response) => response,
            Err(error) => return Ok(Err((body, error))),
        };
        let asked: Vec<(String, usize)> = variables
            .iter()
            .map(|v| (v.code.clone(), v.values.len()))
            .collect();
        let (response, fits) = blocking(move || {
            let fits = answer_fits(&response.bytes, &asked);
            (response, fits)
        })
        .await;
        if let Err(what) = fits {
            return Err(PxwebError::NotThePiece {
                url: response.url,
                piece: name,
                what,
            });
        }
        Ok(Ok(Answered {
            name,
            url: response.url.clone(),
            body,
            cells: piece.cells(),
            response: Ok(response),
        }))
    }
}

fn refused(name: String, url: &str, body: Json, piece: &Piece, error: &HttpError) -> Answered {
    let (status, body_start) = match error {
        HttpError::Status {
            status, body_start, ..
        } => (*status, body_start.clone()),
        other => (other.status().unwrap_or(0), String::new()),
    };
    Answered {
        name,
        url: url.to_string(),
        body,
        cells: piece.cells(),
        response: Err(Refusal { status, body_start }),
    }
}

/// Whether a json-stat2 answer has the dimensions asked for, in order, each with as many
/// categories as asked (a proxy's cached answer, or a server's default selection, does not).
fn answer_fits(bytes: &[u8], asked: &[(String, usize)]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: Vec<String>,
        size: Vec<Json>,
    }
    // Not JSON-stat at all is the decoder's to report, with line and column.
    let Ok(head) = serde_json::from_slice::<Head>(bytes) else {
        return Ok(());
    };
    let sizes: Vec<Option<u64>> = head
        .size
        .iter()
        .map(|s| s.as_u64().or_else(|| s.as_str()?.parse().ok()))
        .collect();
    let got: Vec<String> = head
        .id
        .iter()
        .zip(&sizes)
        .map(|(id, size)| format!("{id} {}", size.map_or("?".into(), |s| s.to_string())))
        .collect();
    let wanted: Vec<String> = asked.iter().map(|(id, n)| format!("{id} {n}")).collect();
    let same = head.id.len() == asked.len()
        && head
            .id
            .iter()
            .zip(&sizes)
            .zip(asked)
            .all(|((id, size), (code, n))| meta::same_code(id, code) && *size == Some(*n as u64));
    if same {
        Ok(())
    } else {
        Err(format!(
            "asked for {}, got {}",
            wanted.join(" × "),
            got.join(" × ")
        ))
    }
}

/// The planner's view of an expanded query.
pub(super) fn dimensions(expanded: &Expanded) -> Vec<Dimension> {
    expanded
        .variables
        .iter()
        .map(|v| Dimension {
            code: v.code.clone(),
            size: v.values.len(),
            role: v.role,
        })
        .collect()
}

/// The variables of one piece: each with the codes of its range.
fn piece_variables(expanded: &Expanded, piece: &Piece) -> Vec<Selected> {
    expanded
        .variables
        .iter()
        .zip(&piece.ranges)
        .map(|(variable, range)| Selected {
            values: variable.values[range.clone()].to_vec(),
            ..variable.clone()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_must_have_the_dimensions_and_sizes_asked_for() {
        let asked = [("Region".to_string(), 2), ("Tid".to_string(), 3)];
        let answer = |id: &str, size: &str| {
            format!(r#"{{"class":"dataset","id":{id},"size":{size},"value":[]}}"#).into_bytes()
        };
        assert_eq!(
            answer_fits(&answer(r#"["region","Tid"]"#, "[2,3]"), &asked),
            Ok(())
        );
        assert_eq!(
            answer_fits(&answer(r#"["Region","Tid"]"#, r#"["2","3"]"#), &asked),
            Ok(())
        );
        assert_eq!(
            answer_fits(&answer(r#"["Region","Tid"]"#, "[312,3]"), &asked),
            Err("asked for Region 2 × Tid 3, got Region 312 × Tid 3".into())
        );
        assert_eq!(
            answer_fits(&answer(r#"["Tid"]"#, "[3]"), &asked),
            Err("asked for Region 2 × Tid 3, got Tid 3".into())
        );
        assert_eq!(
            answer_fits(b"<html>", &asked),
            Ok(()),
            "the decoder's to report"
        );
    }
}
