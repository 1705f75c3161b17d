//! Service settings (`indikator.toml`) and finding the pipeline files they point at.
//!
//! Owns: the settings keys and their defaults, resolving the directories they name, and listing
//! the pipeline files under the pipelines directory.
//! Must not: interpret a pipeline (pipeline.rs checks it) or touch the warehouse.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::problem::Problem;

/// The settings file looked for in the working directory when `--config` is not given.
pub const SETTINGS_FILE: &str = "indikator.toml";
/// Default for [`SettingsFile::warehouse_dir`].
pub const DEFAULT_WAREHOUSE_DIR: &str = "warehouse";
/// Default for [`SettingsFile::state_dir`].
pub const DEFAULT_STATE_DIR: &str = "state";
/// Default for [`SettingsFile::pipelines_dir`].
pub const DEFAULT_PIPELINES_DIR: &str = "pipelines";
/// Default for [`SettingsFile::schemas_dir`].
pub const DEFAULT_SCHEMAS_DIR: &str = "schemas";

/// `indikator.toml` as written. Every key is optional; relative paths are relative to the
/// directory of the file (or the working directory when there is no file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SettingsFile {
    /// Where the Parquet warehouse is published.
    pub warehouse_dir: PathBuf,
    /// Where the ledger (SQLite) and the process lock live.
    pub state_dir: PathBuf,
    /// Where pipeline files are found (searched recursively for `*.toml`).
    pub pipelines_dir: PathBuf,
    /// Where `indicators.toml`, `areas.csv`, `codelists/` and table schemas live.
    pub schemas_dir: PathBuf,
    pub serve: ServeSettings,
    pub admin: AdminFile,
    pub retention: RetentionSettings,
    pub alerts: AlertSettings,
}

impl Default for SettingsFile {
    fn default() -> Self {
        Self {
            warehouse_dir: DEFAULT_WAREHOUSE_DIR.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            pipelines_dir: DEFAULT_PIPELINES_DIR.into(),
            schemas_dir: DEFAULT_SCHEMAS_DIR.into(),
            serve: ServeSettings::default(),
            admin: AdminFile::default(),
            retention: RetentionSettings::default(),
            alerts: AlertSettings::default(),
        }
    }
}

/// `[serve]`: how the daemon runs pipelines.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSettings {
    /// Runs at once, all pipelines together; a run waiting for a slot is `queued`.
    pub max_concurrent_runs: usize,
    /// How long a shutdown lets running runs finish before cancelling them.
    pub grace_secs: u64,
    /// At start-up, one run of each pipeline that missed a fire time while the daemon was down.
    pub catch_up: bool,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            max_concurrent_runs: 2,
            grace_secs: 30,
            catch_up: true,
        }
    }
}

/// `[admin]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminFile {
    /// Where the admin API listens (`host:port`).
    pub bind: String,
    /// A file holding the bearer token (used when `INDIKATOR_ADMIN_TOKEN` is not set).
    pub token_file: Option<PathBuf>,
    /// Where `indikator trigger` and `status` find the API (default: `http://` + `bind`).
    pub url: Option<String>,
}

impl Default for AdminFile {
    fn default() -> Self {
        Self {
            bind: DEFAULT_ADMIN_BIND.into(),
            token_file: None,
            url: None,
        }
    }
}

/// Default for [`AdminFile::bind`]: loopback only.
pub const DEFAULT_ADMIN_BIND: &str = "127.0.0.1:8080";

/// `[admin]`, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub bind: std::net::SocketAddr,
    /// Resolved against the settings' root.
    pub token_file: Option<PathBuf>,
    pub url: String,
}

/// `[retention]`: what months of running may leave behind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// The raw payloads of this many last runs per pipeline are kept.
    pub raw_runs: usize,
    /// Rejects files older than this many days are removed.
    pub rejects_days: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            raw_runs: 5,
            rejects_days: 90,
        }
    }
}

/// `[alerts]`: who hears of failed runs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Gets a JSON POST for every failed run.
    pub webhook_url: Option<String>,
}

/// Checked settings: absolute-or-resolved directories.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The settings file, when there was one.
    pub file: Option<PathBuf>,
    /// The directory relative paths in pipelines and settings are resolved against.
    pub root: PathBuf,
    pub warehouse_dir: PathBuf,
    pub state_dir: PathBuf,
    pub pipelines_dir: PathBuf,
    pub schemas_dir: PathBuf,
    pub serve: ServeSettings,
    pub admin: AdminSettings,
    pub retention: RetentionSettings,
    pub alerts: AlertSettings,
}

impl Settings {
    /// Loads `path`, or `indikator.toml` in `cwd` when `path` is `None` (the defaults when that
    /// does not exist either). Problems name the file and key.
    pub fn load(path: Option<&Path>, cwd: &Path) -> Result<Settings, Vec<Problem>> {
        let (file, parsed) = match path {
            Some(path) => (Some(path.to_path_buf()), read_settings(path)?),
            None => {
                let default = cwd.join(SETTINGS_FILE);
                if default.is_file() {
                    (Some(default.clone()), read_settings(&default)?)
                } else {
                    (None, SettingsFile::default())
                }
            }
        };
        let root = file
            .as_ref()
            .and_then(|f| f.parent())
            .map(|p| cwd.join(p))
            .unwrap_or_else(|| cwd.to_path_buf());
        let problem = |key: &str, message: String| {
            let file = file.clone().unwrap_or_else(|| cwd.join(SETTINGS_FILE));
            vec![Problem::error(&file, key, message)]
        };
        let bind: std::net::SocketAddr = parsed.admin.bind.parse().map_err(|_| {
            problem(
                "admin.bind",
                format!(
                    "`{}` is not an address and port such as {DEFAULT_ADMIN_BIND}",
                    parsed.admin.bind
                ),
            )
        })?;
        if parsed.serve.max_concurrent_runs == 0 {
            return Err(problem(
                "serve.max_concurrent_runs",
                "must be at least 1 (runs at once)".into(),
            ));
        }
        if let Some(url) = &parsed.alerts.webhook_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(problem(
                "alerts.webhook_url",
                format!("`{url}` is not an http:// or https:// URL"),
            ));
        }
        let admin = AdminSettings {
            bind,
            token_file: parsed.admin.token_file.map(|f| resolve(&root, &f)),
            url: parsed.admin.url.unwrap_or_else(|| format!("http://{bind}")),
        };
        Ok(Settings {
            serve: parsed.serve,
            admin,
            retention: parsed.retention,
            alerts: parsed.alerts,
            warehouse_dir: resolve(&root, &parsed.warehouse_dir),
            state_dir: resolve(&root, &parsed.state_dir),
            pipelines_dir: resolve(&root, &parsed.pipelines_dir),
            schemas_dir: resolve(&root, &parsed.schemas_dir),
            file,
            root,
        })
    }

    /// Every `*.toml` file under the pipelines directory, sorted; none when it does not exist.
    pub fn pipeline_files(&self) -> Result<Vec<PathBuf>, Problem> {
        let mut files = Vec::new();
        if self.pipelines_dir.is_dir() {
            collect_toml(&self.pipelines_dir, &mut files).map_err(|e| {
                Problem::error(
                    &self.pipelines_dir,
                    "",
                    format!("cannot list pipelines: {e}"),
                )
            })?;
        }
        files.sort();
        Ok(files)
    }
}

/// `path` against `root`, without `.` components (`..` stays: through a symlink it is not the
/// lexical parent). Logs and messages then show one spelling; the ledger names a warehouse by
/// its canonical path (`Warehouse::key`).
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    root.join(path)
        .components()
        .filter(|c| *c != std::path::Component::CurDir)
        .collect()
}

fn read_settings(path: &Path) -> Result<SettingsFile, Vec<Problem>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Problem::error(
            path,
            "",
            format!("cannot read the settings file: {e}"),
        )]
    })?;
    toml::from_str(&text).map_err(|e| vec![toml_problem(path, &e)])
}

/// A TOML parse or shape error as a problem with the key path serde reports.
pub fn toml_problem(path: &Path, error: &toml::de::Error) -> Problem {
    let message = error.message().trim_end_matches('.').to_string();
    let key = error_key(error);
    Problem::error(path, key, message)
}

/// The dotted key path of a TOML error, as far as the message and span tell it.
fn error_key(error: &toml::de::Error) -> String {
    // toml's errors carry a span but not the key path; the message names the key for unknown
    // and missing fields, which is what operators need.
    let message = error.message();
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1)
            && let Some(key) = rest.split('`').next()
        {
            return key.to_string();
        }
    }
    String::new()
}

fn collect_toml(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        assert_eq!(settings.warehouse_dir, dir.path().join("warehouse"));
        assert_eq!(settings.state_dir, dir.path().join("state"));
        assert_eq!(settings.file, None);
    }

    #[test]
    fn paths_are_relative_to_the_settings_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let file = dir.path().join("etc/indikator.toml");
        std::fs::write(&file, "warehouse_dir = \"/srv/wh\"\nstate_dir = \"st\"\n").unwrap();
        let settings = Settings::load(Some(&file), dir.path()).unwrap();
        assert_eq!(settings.warehouse_dir, PathBuf::from("/srv/wh"));
        assert_eq!(settings.state_dir, dir.path().join("etc/st"));
    }

    #[test]
    fn service_sections_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("indikator.toml");
        std::fs::write(
            &file,
            "[serve]\nmax_concurrent_runs = 4\ncatch_up = false\n[admin]\nbind = \"0.0.0.0:9000\"\n\
             token_file = \"secret/token\"\n[retention]\nraw_runs = 2\n\
             [alerts]\nwebhook_url = \"http://127.0.0.1:9/hook\"\n",
        )
        .unwrap();
        let settings = Settings::load(None, dir.path()).unwrap();
        assert_eq!(settings.serve.max_concurrent_runs, 4);
        assert!(!settings.serve.catch_up);
        assert_eq!(settings.serve.grace_secs, 30);
        assert_eq!(settings.admin.bind.port(), 9000);
        assert_eq!(settings.admin.url, "http://0.0.0.0:9000");
        assert_eq!(
            settings.admin.token_file,
            Some(dir.path().join("secret/token"))
        );
        assert_eq!(settings.retention.raw_runs, 2);
        assert_eq!(settings.retention.rejects_days, 90);
        std::fs::write(&file, "[admin]\nbind = \"localhost\"\n").unwrap();
        let problems = Settings::load(None, dir.path()).unwrap_err();
        assert_eq!(problems[0].key, "admin.bind", "{}", problems[0]);
        std::fs::write(&file, "[serve]\nmax_concurrent_runs = 0\n").unwrap();
        let problems = Settings::load(None, dir.path()).unwrap_err();
        assert_eq!(problems[0].key, "serve.max_concurrent_runs");
    }

    #[test]
    fn dots_are_left_out_of_resolved_paths() {
        let root = Path::new("/srv/indikator");
        assert_eq!(
            resolve(root, Path::new("./warehouse")),
            Path::new("/srv/indikator/warehouse")
        );
        assert_eq!(
            resolve(root, Path::new("a/../wh/")),
            Path::new("/srv/indikator/a/../wh")
        );
        assert_eq!(
            resolve(root, Path::new("/data/./wh")),
            Path::new("/data/wh")
        );
    }

    #[test]
    fn unknown_settings_key_is_a_problem_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("indikator.toml");
        std::fs::write(&file, "warehouse = \"x\"\n").unwrap();
        let problems = Settings::load(None, dir.path()).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "warehouse");
        assert!(
            problems[0].message.contains("unknown field"),
            "{}",
            problems[0]
        );
    }
}
