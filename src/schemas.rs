//! Reading `schemas/`: the indicator catalogue, the area catalogue, named code lists and table
//! schemas — the one place that opens files there.
//!
//! Owns: the file names under the schemas directory, `schemas/indicators.toml` and its checks,
//! and the fingerprint of every file read, so that a run whose catalogue, code list or table
//! schema changed is not skipped as unchanged.
//! Must not: build catalog batches (catalog does) or interpret code lists, areas or table
//! schemas (harmonise and validate parse what this reads).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::harmonise::areas::Areas;
use crate::harmonise::codes::CodeList;
use crate::problem::{Problem, error_chain};
use crate::validate::TableSchema;

/// File name of the indicator catalogue in the schemas directory.
pub const INDICATORS_FILE: &str = "indicators.toml";
/// File name of the area catalogue in the schemas directory.
pub const AREAS_FILE: &str = "areas.csv";
/// Directory of named code lists in the schemas directory (`<name>.toml`).
pub const CODELISTS_DIR: &str = "codelists";

/// `schemas/indicators.toml`: `[indicator.<id>]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorsFile {
    #[serde(default)]
    indicator: BTreeMap<String, Indicator>,
}

/// One catalogued indicator.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    pub title_sv: String,
    pub title_en: Option<String>,
    pub description: Option<String>,
    pub unit: String,
    pub theme: Option<String>,
    /// `higher_is_better`, `lower_is_better` or `neutral`.
    #[serde(default = "neutral")]
    pub polarity: String,
    pub source: Option<String>,
    pub source_table: Option<String>,
    pub license: Option<String>,
    /// Whose pupils a school measure counts: `hemkommun` (by home municipality), `lagekommun`
    /// (by where the school is) or `lan` (by county). A source that repeats one measure in
    /// several scopes gives each its own id; this says which one an id is, so that analysts
    /// compare like with like.
    pub scope: Option<String>,
    /// The id of the indicator that replaced this one (Kolada N02904 → N66077).
    pub successor: Option<String>,
    /// The source no longer publishes it; what the warehouse holds of it is history.
    #[serde(default)]
    pub retired: bool,
}

fn neutral() -> String {
    "neutral".into()
}

const POLARITIES: [&str; 3] = ["higher_is_better", "lower_is_better", "neutral"];

/// The values of an indicator's `scope`.
pub const SCOPES: [&str; 3] = ["hemkommun", "lagekommun", "lan"];

/// Hash of files as they were read; two fingerprints are equal only if every file was.
#[derive(Debug, Clone, Default)]
pub struct Fingerprint(blake3::Hasher);

impl Fingerprint {
    /// Adds one file (its name too, so moving bytes between files changes the hash).
    pub fn add(&mut self, name: &Path, bytes: &[u8]) {
        let name = name.as_os_str().as_encoded_bytes();
        self.0.update(&(name.len() as u64).to_le_bytes());
        self.0.update(name);
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The hash as hex.
    pub fn finish(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// The catalogues of a schemas directory, and where to find its code lists.
#[derive(Debug, Default)]
pub struct Schemas {
    dir: PathBuf,
    pub indicators: BTreeMap<String, Indicator>,
    /// `None` when the schemas directory has no `areas.csv`.
    pub areas: Option<Areas>,
    /// Of `indicators.toml` and `areas.csv` as read: every run's output depends on both.
    pub fingerprint: String,
    /// What is worth knowing but does not stop a run (a `successor` the catalogue lacks);
    /// `check` lists them.
    pub warnings: Vec<Problem>,
}

impl Schemas {
    /// Loads both catalogues; a missing file is an empty catalogue, a broken one a problem. Only
    /// errors refuse the load; warnings come back in [`Schemas::warnings`].
    pub fn load(dir: &Path) -> Result<Schemas, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut fingerprint = Fingerprint::default();
        let path = dir.join(INDICATORS_FILE);
        let indicators = match read_optional(&path) {
            Err(problem) => {
                problems.push(problem);
                BTreeMap::new()
            }
            Ok(None) => BTreeMap::new(),
            Ok(Some(bytes)) => {
                fingerprint.add(Path::new(INDICATORS_FILE), &bytes);
                indicators(&path, &bytes, &mut problems)
            }
        };
        let path = dir.join(AREAS_FILE);
        let areas = match read_optional(&path) {
            Err(problem) => {
                problems.push(problem);
                None
            }
            Ok(None) => None,
            Ok(Some(bytes)) => {
                fingerprint.add(Path::new(AREAS_FILE), &bytes);
                match Areas::parse(&String::from_utf8_lossy(&bytes), &path) {
                    Ok(areas) => Some(areas),
                    Err(e) => {
                        problems.push(Problem::error(&path, "", e.to_string()));
                        None
                    }
                }
            }
        };
        if !problems.iter().any(Problem::is_error) {
            Ok(Schemas {
                dir: dir.to_path_buf(),
                indicators,
                areas,
                fingerprint: fingerprint.finish(),
                warnings: problems,
            })
        } else {
            Err(problems)
        }
    }

    /// The catalogued indicator ids.
    pub fn indicator_ids(&self) -> BTreeSet<String> {
        self.indicators.keys().cloned().collect()
    }

    /// `codelists/<name>.toml`.
    pub fn code_list_file(&self, name: &str) -> PathBuf {
        self.dir.join(CODELISTS_DIR).join(format!("{name}.toml"))
    }

    /// Reads the named code list and adds it to `fingerprint`; the error says what is wrong.
    pub fn code_list(&self, name: &str, fingerprint: &mut Fingerprint) -> Result<CodeList, String> {
        let path = self.code_list_file(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {} ({e})", path.display()))?;
        fingerprint.add(&path, text.as_bytes());
        CodeList::parse(&text, &path).map_err(|e| error_chain(&e))
    }
}

/// Why a table schema could not be had.
#[derive(Debug)]
pub enum TableSchemaError {
    /// The file cannot be read (the pipeline's `[validate] schema` is wrong).
    Unreadable(std::io::Error),
    /// The file was read and holds these problems.
    Invalid(Vec<Problem>),
}

/// Reads a Frictionless Table Schema (any path; pipelines name it relative to the project root)
/// and adds it to `fingerprint`.
pub fn table_schema(
    path: &Path,
    fingerprint: &mut Fingerprint,
) -> Result<TableSchema, TableSchemaError> {
    let text = std::fs::read_to_string(path).map_err(TableSchemaError::Unreadable)?;
    fingerprint.add(path, text.as_bytes());
    TableSchema::from_json(&text, path).map_err(TableSchemaError::Invalid)
}

/// The file's bytes, `None` if it does not exist, a problem if it cannot be read.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, Problem> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Problem::error(path, "", format!("cannot read: {e}"))),
    }
}

fn indicators(
    path: &Path,
    bytes: &[u8],
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, Indicator> {
    let file = std::str::from_utf8(bytes)
        .map_err(|e| Problem::error(path, "", format!("not UTF-8: {e}")))
        .and_then(|text| {
            toml::from_str::<IndicatorsFile>(text)
                .map_err(|e| crate::config::toml_problem(path, &e))
        });
    let indicators = match file {
        Ok(file) => file.indicator,
        Err(problem) => {
            problems.push(problem);
            return BTreeMap::new();
        }
    };
    for (id, indicator) in &indicators {
        if !POLARITIES.contains(&indicator.polarity.as_str()) {
            problems.push(Problem::error(
                path,
                format!("indicator.{id}.polarity"),
                format!(
                    "`{}` is not one of {}",
                    indicator.polarity,
                    POLARITIES.join(", ")
                ),
            ));
        }
        if let Some(scope) = &indicator.scope
            && !SCOPES.contains(&scope.as_str())
        {
            problems.push(Problem::error(
                path,
                format!("indicator.{id}.scope"),
                format!("`{scope}` is not one of {}", SCOPES.join(", ")),
            ));
        }
        if let Some(successor) = &indicator.successor {
            let key = format!("indicator.{id}.successor");
            if successor == id {
                problems.push(Problem::error(
                    path,
                    key,
                    "an indicator cannot succeed itself",
                ));
            } else if !indicators.contains_key(successor) {
                problems.push(Problem::warning(
                    path,
                    key,
                    format!("`{successor}` is not an indicator in the catalogue"),
                ));
            } else if !indicator.retired {
                problems.push(Problem::warning(
                    path,
                    key,
                    "a successor is given but `retired` is not true",
                ));
            }
        }
    }
    indicators
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_schemas() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
    }

    #[test]
    fn the_bundled_schemas_load() {
        let schemas = Schemas::load(&repo_schemas()).unwrap();
        assert!(schemas.indicators.contains_key("folkmangd_0_17"));
        assert!(schemas.areas.is_some());
    }

    #[test]
    fn an_edited_catalogue_changes_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let write = |polarity: &str| {
            std::fs::write(
                dir.path().join(INDICATORS_FILE),
                format!(
                    "[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\npolarity = \"{polarity}\"\n"
                ),
            )
            .unwrap();
            Schemas::load(dir.path()).unwrap().fingerprint
        };
        let empty = Schemas::load(dir.path()).unwrap().fingerprint;
        let (a, b) = (write("neutral"), write("higher_is_better"));
        assert_ne!(a, b);
        assert_ne!(a, empty);
        assert_eq!(write("neutral"), a);
    }

    #[test]
    fn a_bad_polarity_names_the_indicator() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(INDICATORS_FILE),
            "[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\npolarity = \"up\"\n",
        )
        .unwrap();
        let problems = Schemas::load(dir.path()).unwrap_err();
        assert_eq!(problems[0].key, "indicator.x.polarity");
    }

    /// `indicators.toml` holding `text`, loaded.
    fn load_catalogue(text: &str) -> Result<Schemas, Vec<Problem>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(INDICATORS_FILE), text).unwrap();
        Schemas::load(dir.path())
    }

    #[test]
    fn scope_successor_and_retired_are_read() {
        let schemas = load_catalogue(
            "[indicator.N02904]\ntitle_sv = \"Old\"\nunit = \"percent\"\nretired = true\n\
             successor = \"N66077\"\n\
             [indicator.N66077]\ntitle_sv = \"New\"\nunit = \"percent\"\n\
             [indicator.N15428]\ntitle_sv = \"School\"\nunit = \"percent\"\nscope = \"hemkommun\"\n",
        )
        .unwrap();
        assert_eq!(schemas.warnings, Vec::new());
        let old = &schemas.indicators["N02904"];
        assert!(old.retired);
        assert_eq!(old.successor.as_deref(), Some("N66077"));
        assert_eq!(old.scope, None);
        let new = &schemas.indicators["N66077"];
        assert!(!new.retired, "retired defaults to false");
        assert_eq!(new.successor, None);
        assert_eq!(
            schemas.indicators["N15428"].scope.as_deref(),
            Some("hemkommun")
        );
        for scope in SCOPES {
            let text =
                format!("[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\nscope = \"{scope}\"\n");
            assert!(load_catalogue(&text).is_ok(), "{scope}");
        }
    }

    #[test]
    fn an_unknown_scope_is_refused_naming_the_key() {
        let problems = load_catalogue(
            "[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\nscope = \"kommunala skolor\"\n",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "indicator.x.scope");
        assert!(problems[0].is_error());
        assert!(
            problems[0].message.contains("`kommunala skolor`")
                && problems[0].message.contains("hemkommun, lagekommun, lan"),
            "{}",
            problems[0].message
        );
    }

    #[test]
    fn a_successor_outside_the_catalogue_is_a_warning() {
        let schemas = load_catalogue(
            "[indicator.old]\ntitle_sv = \"X\"\nunit = \"count\"\nretired = true\nsuccessor = \"new\"\n",
        )
        .unwrap();
        assert_eq!(schemas.warnings.len(), 1, "{:?}", schemas.warnings);
        let warning = &schemas.warnings[0];
        assert!(!warning.is_error());
        assert_eq!(warning.key, "indicator.old.successor");
        assert!(warning.message.contains("`new`"), "{}", warning.message);
    }

    #[test]
    fn a_successor_of_an_indicator_not_retired_is_a_warning() {
        let schemas = load_catalogue(
            "[indicator.old]\ntitle_sv = \"X\"\nunit = \"count\"\nsuccessor = \"new\"\n\
             [indicator.new]\ntitle_sv = \"Y\"\nunit = \"count\"\n",
        )
        .unwrap();
        assert_eq!(schemas.warnings.len(), 1, "{:?}", schemas.warnings);
        assert_eq!(schemas.warnings[0].key, "indicator.old.successor");
        assert!(schemas.warnings[0].message.contains("`retired`"));
    }

    #[test]
    fn an_indicator_succeeding_itself_is_refused() {
        let problems = load_catalogue(
            "[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\nretired = true\nsuccessor = \"x\"\n",
        )
        .unwrap_err();
        assert_eq!(problems[0].key, "indicator.x.successor");
        assert!(problems[0].is_error());
    }

    #[test]
    fn retired_must_be_a_boolean() {
        let problems = load_catalogue(
            "[indicator.x]\ntitle_sv = \"X\"\nunit = \"count\"\nretired = \"yes\"\n",
        )
        .unwrap_err();
        assert!(problems[0].is_error());
        assert!(problems[0].message.contains("boolean"), "{:?}", problems[0]);
    }

    #[test]
    fn the_bundled_catalogue_has_no_warnings() {
        let schemas = Schemas::load(&repo_schemas()).unwrap();
        assert_eq!(schemas.warnings, Vec::new());
    }

    #[test]
    fn a_code_list_is_read_into_the_fingerprint() {
        let schemas = Schemas::load(&repo_schemas()).unwrap();
        let mut fingerprint = Fingerprint::default();
        let before = fingerprint.finish();
        let list = schemas.code_list("grades", &mut fingerprint).unwrap();
        assert_eq!(list.map("år 8"), "ak8");
        assert_ne!(fingerprint.finish(), before);
        let missing = schemas
            .code_list("no-such-list", &mut fingerprint)
            .unwrap_err();
        assert!(missing.starts_with("cannot read "), "{missing}");
        assert!(missing.contains("codelists/no-such-list.toml"), "{missing}");
    }
}
