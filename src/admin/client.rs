//! The admin API's client, for `indikator trigger` and `indikator status`.
//!
//! Owns: finding the API (`INDIKATOR_URL`, else `[admin] url`) and the token
//! (`INDIKATOR_ADMIN_TOKEN`, else `[admin] token_file`), the requests, and following a run until
//! it ends.
//! Must not: print (the CLI does) or retry a trigger (a second trigger is a second run).

use std::time::Duration;

use serde_json::Value;

use crate::config::Settings;
use crate::ledger::RunStatus;

/// The environment variable naming the API's base URL.
pub const URL_ENV: &str = "INDIKATOR_URL";
/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "INDIKATOR_ADMIN_TOKEN";
/// How often `--wait` asks after its run.
const POLL: Duration = Duration::from_millis(500);

/// Why a request to the API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the admin API at {url}; is `indikator serve` running? (set {URL_ENV} or [admin] url)"
    )]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {detail}")]
    Status {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url} answered something that is not the API's JSON")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {path} is empty")]
    EmptyToken { path: String },
}

impl ClientError {
    /// The HTTP status of an answer, when the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The admin token: `INDIKATOR_ADMIN_TOKEN` if set and not empty, else the first line of
/// `[admin] token_file`, else none.
pub fn token(settings: &Settings) -> Result<Option<String>, ClientError> {
    if let Ok(token) = std::env::var(TOKEN_ENV)
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_string()));
    }
    let Some(path) = &settings.admin.token_file else {
        return Ok(None);
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::TokenFile {
        path: shown.clone(),
        source,
    })?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(ClientError::EmptyToken { path: shown });
    }
    Ok(Some(token.to_string()))
}

/// A client of one daemon's API.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// The API of `settings` (or `INDIKATOR_URL`), with its token.
    pub fn from_settings(settings: &Settings) -> Result<Self, ClientError> {
        let base = std::env::var(URL_ENV).unwrap_or_else(|_| settings.admin.url.clone());
        Ok(Self::new(&base, token(settings)?))
    }

    pub fn new(base: &str, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let answer = request
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: url.to_string(),
                source,
            })?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(|source| ClientError::Decode {
            url: url.to_string(),
            source,
        })?;
        if !status.is_success() {
            let detail = (body.get("detail").and_then(Value::as_str))
                .unwrap_or("(no detail)")
                .to_string();
            return Err(ClientError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                detail,
            });
        }
        Ok(body)
    }

    /// Queues a run of `pipeline`; its run id.
    pub async fn trigger(&self, pipeline: &str, force: bool) -> Result<String, ClientError> {
        let url = format!(
            "{}/api/v1/pipelines/{pipeline}/runs?force={force}",
            self.base
        );
        let body = self.send(self.http.post(&url), &url).await?;
        Ok(body["run_id"].as_str().unwrap_or_default().to_string())
    }

    /// Run `run_id` as the API shows it.
    pub async fn run(&self, run_id: &str) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1/runs/{run_id}", self.base);
        self.send(self.http.get(&url), &url).await
    }

    /// The pipelines and the configuration's state.
    pub async fn pipelines(&self) -> Result<Value, ClientError> {
        let url = format!("{}/api/v1/pipelines", self.base);
        self.send(self.http.get(&url), &url).await
    }

    /// Follows run `run_id` until it ends; the run as it ended.
    pub async fn wait(&self, run_id: &str) -> Result<Value, ClientError> {
        loop {
            let run = self.run(run_id).await?;
            let ended = (run["status"].as_str())
                .and_then(RunStatus::from_name)
                .is_some_and(RunStatus::is_final);
            if ended {
                return Ok(run);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
