//! Retention: keeping what months of running leave behind within `[retention]` ([`prune`]),
//! and removing a retired pipeline from a warehouse ([`retire`]).
//!
//! Owns: which raw archives and rejects files go, the order a retired pipeline is removed in,
//! and the report of what went and what was left and why.
//! Must not: decide when it runs (`indikator prune`; the daemon at start-up and daily), or
//! know paths beyond the ones `Warehouse` gives.
//!
//! Both are plain blocking functions (file removal, SQLite): the daemon calls them through
//! `blocking`. Each pipeline's lock is held while its files go, so no run of it (a replay
//! reading an archive included) starts meanwhile; a pipeline that is running is left for
//! the next prune.
//!
//! **Raw archives.** The archives of the last `raw_runs` *archived* runs of each pipeline are
//! kept, newest first in the order the ledger recorded them. A run that archived nothing (a
//! skip) does not count: an hourly pipeline whose source rarely changes would otherwise lose
//! every archive it could replay after `raw_runs` skips. A directory of a run the ledger does
//! not know is left and reported: another state directory may write into this warehouse.
//!
//! **Rejects** files older than `rejects_days` go, aged by their run's start in the ledger, or
//! by the file's modification time for a run it does not know.
//!
//! **A retired pipeline** ([`retire`]) goes in this order, so that a reader never finds the
//! catalogue promising data that is gone, and running `prune --pipeline` again finishes what a
//! crash interrupted:
//!
//! | step | if the process dies after it, a reader sees |
//! |---|---|
//! | commit marker removed | everything as before (no run of the id could skip on it now) |
//! | ledger: coverage, table description, validators forgotten | everything as before |
//! | `catalog/` rewritten without it | catalogues without it; its partitions still readable |
//! | partitions moved out of `observations/` (one rename), removed | no partition of it |
//! | rejects and raw archive removed | nothing of it |

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::ledger::locks::RETENTION_HOLDER;
use crate::ledger::retention::Vacuumed;
use crate::ledger::{Ledger, LedgerError, PipelineLock, RunStatus};
use crate::pipeline::RunError;
use crate::pipeline::catalogs::write_catalogs;
use crate::schemas::Schemas;
use crate::warehouse::{Warehouse, WarehouseError, remove_dir_if_there};

/// Whether a prune removes what it finds or only lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Remove,
    /// `--dry-run`: lists what would go; nothing is removed, no lock is taken, no vacuum.
    DryRun,
}

/// What a removed (or, dry, removable) path held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Raw,
    Rejects,
    Partitions,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw archive",
            Self::Rejects => "rejects",
            Self::Partitions => "partitions",
        }
    }
}

/// One removed file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub kind: Kind,
    pub path: PathBuf,
    /// The bytes of its files.
    pub bytes: u64,
}

/// What a prune removed and what it left, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneReport {
    pub mode: Mode,
    pub removed: Vec<Removed>,
    /// Raw directories of runs this ledger does not know: left.
    pub unknown: Vec<PathBuf>,
    /// Pipelines whose lock was held (a run, or a replay reading an archive): their raw
    /// archives are pruned next time.
    pub busy: Vec<String>,
    /// Rows the ledger forgot (a retired pipeline's coverage, description, validators); for a
    /// dry run, its coverage rows.
    pub ledger_rows: usize,
    /// The ledger's size around its vacuum (not on a dry run, nor for a retired pipeline).
    pub vacuumed: Option<Vacuumed>,
}

impl PruneReport {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            removed: Vec::new(),
            unknown: Vec::new(),
            busy: Vec::new(),
            ledger_rows: 0,
            vacuumed: None,
        }
    }

    /// The bytes of every removed path.
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.bytes).sum()
    }

    /// Measures `path` and, unless dry, removes it; nothing when it is not there.
    fn remove(&mut self, kind: Kind, path: PathBuf) -> Result<(), PruneError> {
        let Some(bytes) = bytes_under(&path)? else {
            return Ok(());
        };
        if self.mode == Mode::Remove {
            if path.is_dir() {
                remove_dir_if_there(&path)?;
            } else {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        self.removed.push(Removed { kind, path, bytes });
        Ok(())
    }
}

impl std::fmt::Display for PruneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (verb, freed) = match self.mode {
            Mode::Remove => ("removed", "freed"),
            Mode::DryRun => ("would remove", "would be freed"),
        };
        for removed in &self.removed {
            writeln!(
                f,
                "{verb} {} {} ({} bytes)",
                removed.kind.as_str(),
                removed.path.display(),
                removed.bytes
            )?;
        }
        for dir in &self.unknown {
            writeln!(
                f,
                "left {}: not a run of this ledger (another state directory's?)",
                dir.display()
            )?;
        }
        for pipeline in &self.busy {
            writeln!(
                f,
                "left the raw archives of `{pipeline}`: it is running; the next prune takes them"
            )?;
        }
        if self.ledger_rows > 0 {
            let verb = match self.mode {
                Mode::Remove => "forgot",
                Mode::DryRun => "would forget",
            };
            writeln!(
                f,
                "ledger: {verb} {} coverage and other rows",
                self.ledger_rows
            )?;
        }
        if let Some(v) = &self.vacuumed {
            writeln!(
                f,
                "ledger vacuumed: {} -> {} bytes",
                v.bytes_before, v.bytes_after
            )?;
        }
        writeln!(
            f,
            "{} paths, {} bytes {freed}",
            self.removed.len(),
            self.bytes()
        )
    }
}

/// Errors of pruning; each names the file, pipeline or run, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cannot read or remove {}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(
        "the catalogs could not be rewritten; the pipeline's partitions were left: run `prune \
         --pipeline` again once the cause is fixed"
    )]
    Catalogs(#[source] RunError),
    #[error(
        "pipeline `{pipeline}` is still defined by {}: remove or rename the file first (the id \
         in it is what counts, not its name)",
        .file.display()
    )]
    StillDefined { pipeline: String, file: PathBuf },
    #[error(
        "cannot tell whether {} defines pipeline `{pipeline}`: it is not TOML; fix or remove \
         it first",
        .file.display()
    )]
    Unreadable {
        pipeline: String,
        file: PathBuf,
        // Boxed: the parser's error is large, and every other variant small.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The pipelines directory cannot be listed (`message` is the listing's own problem).
    #[error("{}: {message}", .dir.display())]
    Pipelines { dir: PathBuf, message: String },
    #[error("`{pipeline}` is not a pipeline id: an id is one plain file name")]
    NotAnId { pipeline: String },
    #[error(
        "run `{run_id}` of pipeline `{pipeline}` is queued; cancel it first (a daemon that \
         still has the pipeline loaded would run it)"
    )]
    Queued { pipeline: String, run_id: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PruneError {
    let path = path.to_path_buf();
    move |source| PruneError::Io { path, source }
}

/// Keeps `warehouse` within the settings' `[retention]`: removes the raw archives of every
/// pipeline's runs but the last `raw_runs` archived ones (never a live run's), rejects files
/// older than `rejects_days` (at `now`), and vacuums the ledger. Blocking.
pub fn prune(
    settings: &Settings,
    ledger: &Ledger,
    warehouse: &Warehouse,
    now: DateTime<Utc>,
    mode: Mode,
) -> Result<PruneReport, PruneError> {
    let mut report = PruneReport::new(mode);
    for pipeline in subdirs(&warehouse.raw_root())? {
        prune_raw(settings, ledger, warehouse, &pipeline, &mut report)?;
    }
    prune_rejects(settings, ledger, warehouse, now, &mut report)?;
    if mode == Mode::Remove {
        report.vacuumed = Some(ledger.vacuum()?);
    }
    Ok(report)
}

fn prune_raw(
    settings: &Settings,
    ledger: &Ledger,
    warehouse: &Warehouse,
    pipeline: &str,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    // A dry run takes no lock: it removes nothing.
    let _lock = match report.mode {
        Mode::DryRun => None,
        Mode::Remove => {
            match PipelineLock::try_acquire(&settings.state_dir, pipeline, RETENTION_HOLDER) {
                Ok(lock) => Some(lock),
                Err(LedgerError::Held { .. }) => {
                    report.busy.push(pipeline.to_string());
                    return Ok(());
                }
                Err(other) => return Err(other.into()),
            }
        }
    };
    let dir = warehouse.raw_root().join(pipeline);
    let archived: BTreeSet<String> = subdirs(&dir)?.into_iter().collect();
    let runs = ledger.runs_by_age(pipeline)?;
    let known: HashSet<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    let old = runs
        .iter()
        .filter(|run| archived.contains(&run.run_id))
        .skip(settings.retention.raw_runs);
    for run in old {
        // Under the lock a `running` row is a dead process's, but dry runs take no lock, and
        // a queued run may be given this id's archive yet: neither is touched.
        if run.status.is_final() {
            report.remove(Kind::Raw, dir.join(&run.run_id))?;
        }
    }
    report.unknown.extend(
        (archived.iter())
            .filter(|run| !known.contains(run.as_str()))
            .map(|run| dir.join(run)),
    );
    Ok(())
}

fn prune_rejects(
    settings: &Settings,
    ledger: &Ledger,
    warehouse: &Warehouse,
    now: DateTime<Utc>,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    let oldest = now - chrono::Duration::days(settings.retention.rejects_days as i64);
    let root = warehouse.rejects_root();
    for pipeline_dir in subdirs(&root)? {
        let dir = root.join(pipeline_dir);
        for file in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = file.map_err(io(&dir))?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            // Only rejects files: a `.run=….tmp` may be a write in progress.
            let Some(run_id) = name
                .strip_prefix("run=")
                .and_then(|n| n.strip_suffix(".parquet"))
            else {
                continue;
            };
            let started = match ledger.run_age(run_id)? {
                Some(run) if !run.status.is_final() => continue,
                Some(run) => DateTime::parse_from_rfc3339(&run.started)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                None => None,
            };
            let started = match started {
                Some(started) => started,
                None => DateTime::<Utc>::from(
                    std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .map_err(io(&path))?,
                ),
            };
            if started < oldest {
                report.remove(Kind::Rejects, path)?;
            }
        }
    }
    Ok(())
}

/// Removes retired `pipeline` from `warehouse`: its partitions, rejects and raw archive, its
/// coverage rows and table description in the ledger, and rewrites `catalog/` (in the order
/// the module's table gives). Refused while a pipeline file still has that id, while it is
/// running (its lock is held throughout) or while a run of it is queued. Blocking.
pub fn retire(
    settings: &Settings,
    ledger: &Ledger,
    warehouse: &Warehouse,
    schemas: &Schemas,
    pipeline: &str,
    mode: Mode,
) -> Result<PruneReport, PruneError> {
    let mut components = Path::new(pipeline).components();
    if !matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(name)), None) if name == pipeline && !pipeline.starts_with('.')
    ) {
        return Err(PruneError::NotAnId {
            pipeline: pipeline.into(),
        });
    }
    refuse_if_defined(settings, pipeline)?;
    // Held (not in a dry run too): the refusal names the run that holds it.
    let _lock = PipelineLock::try_acquire(&settings.state_dir, pipeline, RETENTION_HOLDER)?;
    if let Some(run) =
        (ledger.runs_by_age(pipeline)?.into_iter()).find(|r| r.status == RunStatus::Queued)
    {
        return Err(PruneError::Queued {
            pipeline: pipeline.into(),
            run_id: run.run_id,
        });
    }
    let mut report = PruneReport::new(mode);
    let key = warehouse.key();
    if mode == Mode::DryRun {
        report.ledger_rows = (ledger.coverage(&key)?.iter())
            .filter(|(p, _)| p == pipeline)
            .count();
        report.remove(Kind::Partitions, warehouse.pipeline_dir(pipeline))?;
    } else {
        warehouse.remove_commit_marker(pipeline)?;
        report.ledger_rows = ledger.forget_pipeline(pipeline, &key)?;
        write_catalogs(warehouse, ledger, schemas, &CancellationToken::new())
            .map_err(PruneError::Catalogs)?;
        let partitions = warehouse.pipeline_dir(pipeline);
        let bytes = bytes_under(&partitions)?;
        if warehouse.remove_pipeline(pipeline)? {
            report.removed.push(Removed {
                kind: Kind::Partitions,
                path: partitions,
                bytes: bytes.unwrap_or(0),
            });
        }
    }
    report.remove(Kind::Rejects, warehouse.rejects_dir(pipeline))?;
    report.remove(Kind::Raw, warehouse.raw_root().join(pipeline))?;
    Ok(report)
}

/// `Err` if a file under the pipelines directory has `id = pipeline`, or might have (it is not
/// TOML): the checked pipelines alone would miss a file with errors.
fn refuse_if_defined(settings: &Settings, pipeline: &str) -> Result<(), PruneError> {
    let files = settings
        .pipeline_files()
        .map_err(|problem| PruneError::Pipelines {
            dir: problem.file,
            message: problem.message,
        })?;
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let table: toml::Table =
            toml::from_str(&text).map_err(|source| PruneError::Unreadable {
                pipeline: pipeline.into(),
                file: file.clone(),
                source: Box::new(source),
            })?;
        if table.get("id").and_then(|id| id.as_str()) == Some(pipeline) {
            return Err(PruneError::StillDefined {
                pipeline: pipeline.into(),
                file,
            });
        }
    }
    Ok(())
}

/// The names of the directories in `dir`, sorted, dot-names left out; none when `dir` is not
/// there.
fn subdirs(dir: &Path) -> Result<Vec<String>, PruneError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.file_type().map_err(io(dir))?.is_dir() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// The bytes of the files at or under `path`; `None` when it is not there.
fn bytes_under(path: &Path) -> Result<Option<u64>, PruneError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    if !meta.is_dir() {
        return Ok(Some(meta.len()));
    }
    let mut bytes = 0;
    for entry in std::fs::read_dir(path).map_err(io(path))? {
        let entry = entry.map_err(io(path))?;
        bytes += bytes_under(&entry.path())?.unwrap_or(0);
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RunEnd;
    use crate::pipeline::run::rfc3339;

    struct Setup {
        _dir: tempfile::TempDir,
        settings: Settings,
        ledger: Ledger,
        warehouse: Warehouse,
    }

    fn setup(raw_runs: usize) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::load(None, dir.path()).unwrap();
        settings.retention.raw_runs = raw_runs;
        let ledger = Ledger::open(&settings.state_dir).unwrap();
        let warehouse = Warehouse::new(&settings.warehouse_dir);
        Setup {
            _dir: dir,
            settings,
            ledger,
            warehouse,
        }
    }

    impl Setup {
        /// Records run `run_id` of `pipeline`, started `days_ago`, ended as `status` (left
        /// running for `Running`), with a raw archive when `archived`.
        fn ran(
            &self,
            pipeline: &str,
            run_id: &str,
            days_ago: i64,
            status: RunStatus,
            archived: bool,
        ) {
            let started = rfc3339(Utc::now() - chrono::Duration::days(days_ago));
            (self.ledger)
                .start_run(run_id, pipeline, "manual", &started, &self.warehouse.key())
                .unwrap();
            if status != RunStatus::Running {
                let end = RunEnd {
                    status,
                    finished: started,
                    rows_read: 0,
                    rows_written: 0,
                    rows_rejected: 0,
                    content_hash: None,
                    reason: None,
                    error: None,
                    report: None,
                };
                self.ledger.finish_run(run_id, &end, None).unwrap();
            }
            if archived {
                (self.warehouse)
                    .archive_raw(pipeline, run_id, "data.csv", b"a,b\n1,2\n")
                    .unwrap();
            }
        }

        fn archived(&self, pipeline: &str) -> Vec<String> {
            subdirs(&self.warehouse.raw_root().join(pipeline)).unwrap()
        }

        fn prune(&self, mode: Mode) -> PruneReport {
            prune(
                &self.settings,
                &self.ledger,
                &self.warehouse,
                Utc::now(),
                mode,
            )
            .unwrap()
        }
    }

    #[test]
    fn the_last_archived_runs_of_each_pipeline_are_kept_and_never_a_live_runs() {
        let s = setup(2);
        s.ran("p", "r1", 9, RunStatus::Running, true); // left running: not removed
        s.ran("p", "r2", 8, RunStatus::Succeeded, true);
        s.ran("p", "r3", 7, RunStatus::Failed, true);
        s.ran("p", "r4", 6, RunStatus::Succeeded, true);
        s.ran("p", "r5", 5, RunStatus::Succeeded, true);
        s.ran("p", "r6", 4, RunStatus::Skipped, false); // archived nothing: does not count
        s.ran("q", "q1", 9, RunStatus::Succeeded, true);
        (s.warehouse)
            .archive_raw("p", "elsewhere", "data.csv", b"x")
            .unwrap();

        let dry = s.prune(Mode::DryRun);
        assert_eq!(s.archived("p").len(), 6, "a dry run removes nothing");
        let report = s.prune(Mode::Remove);
        assert_eq!(s.archived("p"), ["elsewhere", "r1", "r4", "r5"]);
        assert_eq!(s.archived("q"), ["q1"]);
        let removed: Vec<&Path> = report.removed.iter().map(|r| r.path.as_path()).collect();
        let raw = s.warehouse.raw_root();
        assert_eq!(removed, [raw.join("p/r3"), raw.join("p/r2")]);
        assert_eq!(dry.removed, report.removed, "a dry run lists what goes");
        assert_eq!(report.unknown, [raw.join("p/elsewhere")]);
        assert!(report.removed.iter().all(|r| r.bytes > 0));
        assert!(report.vacuumed.is_some() && dry.vacuumed.is_none());
        let text = report.to_string();
        assert!(text.contains("left "), "{text}");
        assert!(
            text.ends_with(&format!("2 paths, {} bytes freed\n", report.bytes())),
            "{text}"
        );
    }

    #[test]
    fn a_pipeline_being_run_keeps_its_archives_until_the_next_prune() {
        let s = setup(0);
        s.ran("p", "r1", 9, RunStatus::Succeeded, true);
        let held = PipelineLock::try_acquire(&s.settings.state_dir, "p", "r2").unwrap();
        let report = s.prune(Mode::Remove);
        assert_eq!(report.busy, ["p"]);
        assert_eq!(s.archived("p"), ["r1"]);
        drop(held);
        s.prune(Mode::Remove);
        assert!(s.archived("p").is_empty());
    }

    #[test]
    fn rejects_older_than_the_setting_go_and_newer_stay() {
        let s = setup(5);
        assert_eq!(s.settings.retention.rejects_days, 90);
        s.ran("p", "old", 91, RunStatus::Failed, false);
        s.ran("p", "new", 89, RunStatus::Failed, false);
        for run in ["old", "new", "unknown"] {
            let file = s.warehouse.rejects_file("p", run);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, b"PAR1").unwrap();
        }
        let report = s.prune(Mode::Remove);
        let removed: Vec<&Path> = report.removed.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(removed, [s.warehouse.rejects_file("p", "old")]);
        assert!(s.warehouse.rejects_file("p", "new").is_file());
        assert!(
            s.warehouse.rejects_file("p", "unknown").is_file(),
            "a run this ledger does not know is aged by its file: new"
        );
    }

    #[test]
    fn a_pipeline_with_a_file_or_a_run_is_not_retired() {
        let s = setup(5);
        let schemas = Schemas::default();
        let file = s.settings.pipelines_dir.join("sub/renamed.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "id = \"p\"\n").unwrap();
        let retire = |id| {
            retire(
                &s.settings,
                &s.ledger,
                &s.warehouse,
                &schemas,
                id,
                Mode::Remove,
            )
        };
        let err = retire("p").unwrap_err().to_string();
        assert!(
            err.contains("is still defined by") && err.contains("renamed.toml"),
            "{err}"
        );
        std::fs::remove_file(&file).unwrap();

        let held = PipelineLock::try_acquire(&s.settings.state_dir, "p", "r9").unwrap();
        let err = retire("p").unwrap_err().to_string();
        assert!(err.contains("is being run by run r9"), "{err}");
        drop(held);
        assert!(matches!(retire("../p"), Err(PruneError::NotAnId { .. })));
        let report = retire("p").unwrap();
        assert!(report.removed.is_empty());
    }
}
