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
}

impl Default for SettingsFile {
    fn default() -> Self {
        Self {
            warehouse_dir: DEFAULT_WAREHOUSE_DIR.into(),
            state_dir: DEFAULT_STATE_DIR.into(),
            pipelines_dir: DEFAULT_PIPELINES_DIR.into(),
            schemas_dir: DEFAULT_SCHEMAS_DIR.into(),
        }
    }
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
        Ok(Settings {
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
