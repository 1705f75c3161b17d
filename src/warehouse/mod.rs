//! The warehouse on disk: partition layout, Parquet settings, staging and the atomic commit.
//!
//! Owns: where every file lives (DESIGN §4), how observations are encoded (`writer_properties`),
//! writing a run's partitions into `.staging/` and publishing them by rename, catalog files,
//! rejects and the compressed raw archive.
//! Must not: decide what the rows are (harmonise does) or remember runs (the ledger does).
//!
//! What a reader sees if the process dies at each step of a run, and what the next run of the
//! pipeline does about it:
//!
//! | step (failpoint)                                      | reader sees                             | next run of the pipeline                                 |
//! |-------------------------------------------------------|-----------------------------------------|----------------------------------------------------------|
//! | a part written in `.staging/<run>/` (`stage.written`) | old partitions                          | run `interrupted`, its staging removed                   |
//! | fsync of every staged part (at commit)                | old partitions                          | run `interrupted`, its staging removed                   |
//! | rename of part k (`commit.rename`, k-th pass)         | new parts 1..k-1, old k..n              | run `interrupted`, its staging removed                   |
//! | fsync of the directories (`commit.dirsync`)           | new partitions                          | run `interrupted`, its staging removed                   |
//! | removal of stale partitions                           | new parts, some stale ones              | run `interrupted`, its staging removed                   |
//! | commit recorded in the ledger (`ledger.finish`)       | new partitions                          | run `interrupted` (its data is in)                       |
//! | catalogs rewritten (`catalog.rename`)                 | new partitions, each catalog old or new | run stays `succeeded`; the next commit rewrites catalogs |
//!
//! The pipeline's commit marker (`.commits/pipeline=<id>`: content hash and years) is removed
//! before the first rename and written after the directory fsyncs, so from the first rename
//! until the commit ends there is none: a run killed anywhere in between is never skipped on.
//!
//! Every file a reader can open is always a complete Parquet file: parts are only ever renamed
//! over their final names, never written in place. Readers glob `observations/**` (dot-files
//! included), so staging lives beside `observations/`, never inside it. Staging is per run
//! (`.staging/<run_id>/`), so that recovery removes what dead runs left and never what a live
//! run of another pipeline, perhaps in another process, is writing.
//!
//! Cancellation: a run's token is checked here, where the writing happens, so that a cancelled
//! run stops at its next partition without the caller checking between partitions, and a run
//! cancelled before its commit publishes nothing. A commit that has started finishes: it is
//! short, and stopping it midway would leave the pipeline half old, half new until the next run.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use tokio_util::sync::CancellationToken;

use crate::{failpoint, model};

pub mod encode;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

/// Where staged files live under the warehouse root, until commit or the next start.
pub const STAGING_DIR: &str = ".staging";
/// Where each pipeline's commit marker lives under the warehouse root: which content its
/// partitions hold, so that a skip is decided by what the warehouse holds, not only by what a
/// ledger remembers (another state directory may write here; an operator may wipe or restore).
pub const COMMITS_DIR: &str = ".commits";
/// Where [`Warehouse::remove_pipeline`] moves a retired pipeline's partitions before removing
/// them, out of the readers' glob.
pub const RETIRED_DIR: &str = ".retired";
/// The one part file of a partition.
pub const PART_FILE: &str = "part-00000.parquet";
/// zstd level of observation and catalog files. Sorted, dictionary-encoded pages compress almost
/// as well at level 1 as at 3 (17.6 against 17.3 MB on the 10-million-cell benchmark) in less
/// than half the time.
pub const ZSTD_LEVEL: i32 = 1;
/// zstd level of the raw archive: written on every run, read only for replay and audit.
pub const RAW_ZSTD_LEVEL: i32 = 1;

/// Errors of the warehouse; each names the file it was working on.
#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode Parquet file {}", .path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: encode::EncodeError,
    },
    #[error("cannot write Parquet file {}", .path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error(
        "year {year} was staged twice in {}; a run must hand each partition over once (a bug \
         in indikator: please report it)",
        .dir.display()
    )]
    StagedTwice { year: i32, dir: PathBuf },
    #[error("run `{run_id}` cannot name a staging directory: a run id is one plain file name")]
    RunId { run_id: String },
    #[error("the run was cancelled; nothing of it was published and {} is removed", .dir.display())]
    Cancelled { dir: PathBuf },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WarehouseError {
    let path = path.to_path_buf();
    move |source| WarehouseError::Io {
        action,
        path,
        source,
    }
}

/// The Parquet settings of every file the warehouse writes (DESIGN §4): zstd, dictionary
/// encoding, page-level statistics, which also writes the page index (column + offset index).
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(ZSTD_LEVEL).expect("ZSTD_LEVEL is a valid zstd level"),
        ))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("indikator {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A warehouse directory.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: PathBuf,
}

impl Warehouse {
    /// The warehouse at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `.commits/pipeline=<id>`: the marker of the pipeline's last complete commit.
    fn commit_marker(&self, pipeline: &str) -> PathBuf {
        self.root
            .join(COMMITS_DIR)
            .join(format!("pipeline={pipeline}"))
    }

    /// The content the pipeline's partitions hold, as its last complete commit recorded it;
    /// `None` when no commit recorded one, one died halfway, or a partition it wrote is gone
    /// (wiped by an operator).
    pub fn committed(&self, pipeline: &str) -> Result<Option<String>, WarehouseError> {
        let marker = self.commit_marker(pipeline);
        let text = match fs::read_to_string(&marker) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &marker)(e)),
        };
        let (content, years) = text.split_once('\n').unwrap_or((&text, ""));
        let all_there = years
            .split(',')
            .filter(|year| !year.is_empty())
            .all(|year| {
                year.parse()
                    .is_ok_and(|y| self.partition_file(pipeline, y).is_file())
            });
        Ok(all_there.then(|| content.to_string()))
    }

    /// Removes the pipeline's commit marker (durably), so that no run skips on what its
    /// partitions held; nothing to do when there is none.
    pub fn remove_commit_marker(&self, pipeline: &str) -> Result<(), WarehouseError> {
        let marker = self.commit_marker(pipeline);
        match fs::remove_file(&marker) {
            Ok(()) => sync_dir(marker.parent().expect("markers live in a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &marker)(e)),
        }
    }

    /// Removes every partition of `pipeline` at once: `observations/pipeline=<id>/` is first
    /// renamed to `.retired/pipeline=<id>/` (beside `observations/`, which readers glob), so a
    /// reader sees all of the pipeline's partitions or none, then removed. What a crash left
    /// in `.retired/` is removed first. Returns whether the pipeline had partitions.
    pub fn remove_pipeline(&self, pipeline: &str) -> Result<bool, WarehouseError> {
        let dir = self.pipeline_dir(pipeline);
        let retired = self
            .root
            .join(RETIRED_DIR)
            .join(format!("pipeline={pipeline}"));
        remove_dir_if_there(&retired)?;
        if !dir.exists() {
            return Ok(false);
        }
        let parent = retired
            .parent()
            .expect("retired pipelines live in a directory");
        fs::create_dir_all(parent).map_err(io("create", parent))?;
        fs::rename(&dir, &retired).map_err(io("move out of observations/", &dir))?;
        sync_dir(dir.parent().expect("pipelines live in observations/"))?;
        remove_dir_if_there(&retired)?;
        Ok(true)
    }

    /// Creates the warehouse directory if it is not there.
    pub fn create(&self) -> Result<(), WarehouseError> {
        fs::create_dir_all(&self.root).map_err(io("create", &self.root))
    }

    /// The warehouse as the ledger names it: its canonical path once it exists (symlinks and
    /// `..` resolved), so that one directory named two ways is one warehouse for skips and
    /// coverage.
    pub fn key(&self) -> String {
        fs::canonicalize(&self.root)
            .unwrap_or_else(|_| self.root.clone())
            .display()
            .to_string()
    }

    /// `observations/pipeline=<id>/`.
    pub fn pipeline_dir(&self, pipeline: &str) -> PathBuf {
        self.root
            .join("observations")
            .join(format!("pipeline={pipeline}"))
    }

    /// `observations/pipeline=<id>/year=<yyyy>/part-00000.parquet`.
    pub fn partition_file(&self, pipeline: &str, year: i32) -> PathBuf {
        self.pipeline_dir(pipeline)
            .join(format!("year={year}"))
            .join(PART_FILE)
    }

    /// `rejects/pipeline=<id>/run=<run_id>.parquet`.
    pub fn rejects_file(&self, pipeline: &str, run_id: &str) -> PathBuf {
        self.rejects_dir(pipeline)
            .join(format!("run={run_id}.parquet"))
    }

    /// `rejects/`: one directory per pipeline.
    pub fn rejects_root(&self) -> PathBuf {
        self.root.join("rejects")
    }

    /// `rejects/pipeline=<id>/`: every run's rejects file of the pipeline.
    pub fn rejects_dir(&self, pipeline: &str) -> PathBuf {
        self.rejects_root().join(format!("pipeline={pipeline}"))
    }

    /// `raw/`: one directory per pipeline, one below it per archived run.
    pub fn raw_root(&self) -> PathBuf {
        self.root.join("raw")
    }

    /// `raw/<pipeline>/<run_id>/`: what run `run_id` fetched.
    pub fn raw_dir(&self, pipeline: &str, run_id: &str) -> PathBuf {
        self.raw_root().join(pipeline).join(run_id)
    }

    /// `catalog/<name>.parquet`.
    pub fn catalog_file(&self, name: &str) -> PathBuf {
        self.root.join("catalog").join(format!("{name}.parquet"))
    }

    /// `.staging/<run_id>/`; `Err(RunId)` unless `run_id` is one plain path component, so that
    /// no run id can make [`Warehouse::remove_staging`] remove anything outside `.staging/`.
    fn staging_dir(&self, run_id: &str) -> Result<PathBuf, WarehouseError> {
        let mut components = Path::new(run_id).components();
        match (components.next(), components.next()) {
            (Some(std::path::Component::Normal(name)), None) if name == run_id => {
                Ok(self.root.join(STAGING_DIR).join(run_id))
            }
            _ => Err(WarehouseError::RunId {
                run_id: run_id.to_string(),
            }),
        }
    }

    /// The run ids that have a directory under `.staging/`, sorted: runs staging now, or runs
    /// that died staging or committing. Which are dead is for the caller to know (the ledger and
    /// the pipeline locks do).
    pub fn staged_runs(&self) -> Result<Vec<String>, WarehouseError> {
        let staging = self.root.join(STAGING_DIR);
        let entries = match fs::read_dir(&staging) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &staging)(e)),
        };
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io("read", &staging))?;
            if entry.file_type().map_err(io("read", &staging))?.is_dir() {
                runs.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        runs.sort_unstable();
        Ok(runs)
    }

    /// Removes what run `run_id` left in `.staging/` (call only for a run known to be dead);
    /// returns whether there was anything.
    pub fn remove_staging(&self, run_id: &str) -> Result<bool, WarehouseError> {
        remove_dir_if_there(&self.staging_dir(run_id)?)
    }

    /// Starts staging run `run_id` of `pipeline` in `.staging/<run_id>/`. `cancel` is the run's:
    /// once it is cancelled, staging and commit refuse with `Err(Cancelled)`, and `@pause`
    /// failpoints wait for it.
    pub fn stage(
        &self,
        pipeline: &str,
        run_id: &str,
        cancel: CancellationToken,
    ) -> Result<Stager, WarehouseError> {
        let dir = self.staging_dir(run_id)?;
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Stager {
            warehouse: self.clone(),
            pipeline: pipeline.to_string(),
            dir,
            parts: Default::default(),
            cancel,
        })
    }

    /// Writes `batch` as `catalog/<name>.parquet`, replacing the old file by rename (`cancel`
    /// is for the `catalog.rename` failpoint; a catalog write is not abandoned).
    pub fn write_catalog(
        &self,
        name: &str,
        batch: &RecordBatch,
        cancel: &CancellationToken,
    ) -> Result<(), WarehouseError> {
        let target = self.catalog_file(name);
        let temporary = write_beside(&target, batch)?;
        failpoint::hit("catalog.rename", cancel);
        rename_into_place(&temporary, &target)
    }

    /// Writes the rows a run refused as `rejects/pipeline=<id>/run=<run_id>.parquet`.
    pub fn write_rejects(
        &self,
        pipeline: &str,
        run_id: &str,
        batch: &RecordBatch,
    ) -> Result<PathBuf, WarehouseError> {
        let target = self.rejects_file(pipeline, run_id);
        let temporary = write_beside(&target, batch)?;
        rename_into_place(&temporary, &target)?;
        Ok(target)
    }

    /// Keeps a fetched payload zstd-compressed as `raw/<pipeline>/<run_id>/<name>.zst`.
    pub fn archive_raw(
        &self,
        pipeline: &str,
        run_id: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, WarehouseError> {
        let dir = self.raw_dir(pipeline, run_id);
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(format!("{name}.zst"));
        // Streamed: a one-shot compress would first allocate the worst-case size of the whole
        // payload (another 100 MB for a big export).
        let file = File::create(&path).map_err(io("create", &path))?;
        let mut encoder = zstd::stream::Encoder::new(std::io::BufWriter::new(file), RAW_ZSTD_LEVEL)
            .map_err(io("compress", &path))?;
        encoder.write_all(bytes).map_err(io("write", &path))?;
        encoder
            .finish()
            .and_then(|mut writer| writer.flush())
            .map_err(io("write", &path))?;
        Ok(path)
    }

    /// Keeps a small file of our own (not a payload) uncompressed, whole or not at all, as
    /// `raw/<pipeline>/<run_id>/<name>`: every archived payload ends in `.zst`, so a `name`
    /// without it never collides with one.
    pub fn archive_plain(
        &self,
        pipeline: &str,
        run_id: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, WarehouseError> {
        let path = self.raw_dir(pipeline, run_id).join(name);
        replace_file(&path, bytes)?;
        Ok(path)
    }
}

/// Writes `batch` next to `target` under a dot-name (`.<name>.tmp`) and fsyncs it; returns that
/// name, for [`rename_into_place`].
fn write_beside(target: &Path, batch: &RecordBatch) -> Result<PathBuf, WarehouseError> {
    let dir = target
        .parent()
        .expect("warehouse files live in a directory");
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let name = target.file_name().expect("a file name").to_string_lossy();
    // Unique per process and write: runs of two pipelines (in one daemon, or a daemon and a
    // manual run) rewrite the same catalog at once, and one shared temporary file would be
    // truncated by one writer while the other renames it into place.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let write = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".{name}.{}-{write}.tmp", std::process::id()));
    write_parquet(&temporary, batch)?;
    Ok(temporary)
}

/// Writes `bytes` as `target` through a temporary file beside it, fsynced and renamed over it.
fn replace_file(target: &Path, bytes: &[u8]) -> Result<(), WarehouseError> {
    let dir = target
        .parent()
        .expect("warehouse files live in a directory");
    fs::create_dir_all(dir).map_err(io("create", dir))?;
    let name = target.file_name().expect("a file name").to_string_lossy();
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = File::create(&temporary).map_err(io("create", &temporary))?;
    file.write_all(bytes).map_err(io("write", &temporary))?;
    file.sync_all().map_err(io("fsync", &temporary))?;
    rename_into_place(&temporary, target)
}

/// Renames `temporary` over `target` and fsyncs their directory.
fn rename_into_place(temporary: &Path, target: &Path) -> Result<(), WarehouseError> {
    fs::rename(temporary, target).map_err(io("rename into place", target))?;
    sync_dir(
        target
            .parent()
            .expect("warehouse files live in a directory"),
    )
}

/// Writes one Parquet file with [`writer_properties`] and fsyncs it.
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<(), WarehouseError> {
    let file = File::create(path).map_err(io("create", path))?;
    let parquet = |source| WarehouseError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer =
        ArrowWriter::try_new(file, batch.schema(), Some(writer_properties())).map_err(parquet)?;
    writer.write(batch).map_err(parquet)?;
    let mut file = writer.into_inner().map_err(parquet)?;
    file.flush().map_err(io("write", path))?;
    file.sync_all().map_err(io("fsync", path))
}

/// Writes observations (in [`model::batch_schema`]) as one Parquet file declaring
/// [`model::schema`], through the dictionary-aware encoder, into a file that must not exist yet
/// (`Ok(false)` if it does: nothing is written). Not fsynced: the commit fsyncs every part of a
/// run at once.
fn write_observations(path: &Path, batch: &RecordBatch) -> Result<bool, WarehouseError> {
    // create_new: the file system decides, atomically across staging threads, that a year is
    // written once; a second write of it must never replace the first unnoticed.
    let file = match File::options().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io("create", path)(e)),
    };
    let writer = std::io::BufWriter::new(file);
    let writer = encode::write_batch(writer, &model::schema(), batch, &writer_properties())
        .map_err(|source| WarehouseError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    writer
        .into_inner()
        .map_err(|e| io("write", path)(e.into_error()))?;
    Ok(true)
}

/// Removes `dir` and everything in it; `Ok(false)` when it was not there.
pub fn remove_dir_if_there(dir: &Path) -> Result<bool, WarehouseError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove", dir)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), WarehouseError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

/// Fsyncs every file or directory of `paths`, several at a time: each fsync mostly waits for the
/// disk (about a millisecond here), and a run of 157 partitions has as many files and
/// directories, which one after another would add a third of a second to the commit.
fn sync_all<'a>(
    paths: impl Iterator<Item = &'a Path> + Send,
    action: &'static str,
) -> Result<(), WarehouseError> {
    const AT_ONCE: usize = 8;
    let paths = std::sync::Mutex::new(paths);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = paths.lock().expect("no panic holds the lock").next();
                        let Some(path) = next else { return Ok(()) };
                        File::open(path)
                            .and_then(|f| f.sync_all())
                            .map_err(io(action, path))?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("fsync does not panic"))
    })
}

/// A run's partitions being written under `.staging/`. Dropping it removes them.
#[derive(Debug)]
pub struct Stager {
    warehouse: Warehouse,
    pipeline: String,
    dir: PathBuf,
    parts: std::sync::Mutex<Vec<(i32, PathBuf)>>,
    cancel: CancellationToken,
}

impl Stager {
    /// Writes one partition's rows (in [`model::batch_schema`], sorted by the key) to staging,
    /// declaring [`model::schema`]. Partitions may be written from several threads at once.
    /// `Err(StagedTwice)` if `year` was already written in this run (a bug in the caller; the
    /// first write stays), `Err(Cancelled)` once the run's token is cancelled (checked before
    /// and after the write).
    pub fn write_partition(&self, year: i32, batch: &RecordBatch) -> Result<(), WarehouseError> {
        self.check_cancelled()?;
        let dir = self.dir.join(format!("year={year}"));
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(PART_FILE);
        if !write_observations(&path, batch)? {
            return Err(WarehouseError::StagedTwice {
                year,
                dir: self.dir.clone(),
            });
        }
        self.parts
            .lock()
            .expect("a panic while staging is a bug")
            .push((year, path));
        failpoint::hit("stage.written", &self.cancel);
        self.check_cancelled()
    }

    fn check_cancelled(&self) -> Result<(), WarehouseError> {
        if self.cancel.is_cancelled() {
            return Err(WarehouseError::Cancelled {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Ends staging: every part is written; nothing is visible yet.
    pub fn finish(mut self) -> Staged {
        let mut parts = std::mem::take(
            self.parts
                .get_mut()
                .expect("a panic while staging is a bug"),
        );
        parts.sort_unstable_by_key(|(year, _)| *year);
        Staged {
            warehouse: self.warehouse.clone(),
            pipeline: std::mem::take(&mut self.pipeline),
            dir: std::mem::take(&mut self.dir),
            parts,
            cancel: self.cancel.clone(),
            content: None,
        }
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A fully written run waiting to be published. Dropping it without [`Staged::commit`] removes
/// the staged files, so a failed or abandoned run leaves the warehouse as it was.
#[must_use = "a staged run is published only by commit()"]
#[derive(Debug)]
pub struct Staged {
    warehouse: Warehouse,
    pipeline: String,
    dir: PathBuf,
    parts: Vec<(i32, PathBuf)>,
    cancel: CancellationToken,
    /// What the partitions hold, recorded in the commit marker.
    content: Option<String>,
}

/// What a commit published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    /// Years whose partition was written.
    pub years: Vec<i32>,
    /// Years whose old partition was removed because the run had no rows for them.
    pub removed_years: Vec<i32>,
}

impl Staged {
    /// Names the content (a hash) this run's partitions hold: the commit records it in the
    /// pipeline's marker, which [`Warehouse::committed`] reads back.
    pub fn with_content(mut self, content: &str) -> Self {
        self.content = Some(content.to_string());
        self
    }

    /// Publishes the run: fsyncs every staged part, renames each over its final name (in year
    /// order), removes partitions of this pipeline the run no longer has, and fsyncs the
    /// directories. `Err(Cancelled)`, publishing nothing, if the run's token is cancelled
    /// before the commit starts; once started, a commit finishes.
    pub fn commit(mut self) -> Result<Commit, WarehouseError> {
        if self.cancel.is_cancelled() {
            return Err(WarehouseError::Cancelled {
                dir: self.dir.clone(),
            });
        }
        let pipeline_dir = self.warehouse.pipeline_dir(&self.pipeline);
        let parts = std::mem::take(&mut self.parts);
        sync_all(parts.iter().map(|(_, staged)| staged.as_path()), "fsync")?;
        // The marker goes before the first rename and comes back after the last: a commit that
        // dies between leaves the pipeline half old, half new, and no marker to skip on.
        self.warehouse.remove_commit_marker(&self.pipeline)?;
        let mut commit = Commit::default();
        let mut dirs = Vec::with_capacity(parts.len());
        for (year, staged) in parts {
            let target = self.warehouse.partition_file(&self.pipeline, year);
            let dir = target.parent().expect("partition directory");
            fs::create_dir_all(dir).map_err(io("create", dir))?;
            failpoint::hit("commit.rename", &self.cancel);
            // Rename over the old part instead of delete-then-write: a reader must see the old
            // file or the new one, and a delete first opens a window where it sees neither.
            fs::rename(&staged, &target).map_err(io("rename into place", &target))?;
            dirs.push(dir.to_path_buf());
            commit.years.push(year);
        }
        failpoint::hit("commit.dirsync", &self.cancel);
        sync_all(dirs.iter().map(PathBuf::as_path), "fsync directory")?;
        commit.removed_years = remove_stale(&pipeline_dir, &commit.years)?;
        sync_dir(&pipeline_dir)?;
        if let Some(observations) = pipeline_dir.parent() {
            sync_dir(observations)?;
        }
        if let Some(content) = &self.content {
            let years: Vec<String> = commit.years.iter().map(i32::to_string).collect();
            replace_file(
                &self.warehouse.commit_marker(&self.pipeline),
                format!("{content}\n{}", years.join(",")).as_bytes(),
            )?;
        }
        Ok(commit)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes, under one pipeline's directory, every partition not in `years` and every file of a
/// kept partition other than its part file. Returns the removed years.
fn remove_stale(pipeline_dir: &Path, years: &[i32]) -> Result<Vec<i32>, WarehouseError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(pipeline_dir).map_err(io("read", pipeline_dir))? {
        let dir = entry.map_err(io("read", pipeline_dir))?.path();
        let Some(year) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("year="))
            .and_then(|y| y.parse::<i32>().ok())
        else {
            continue;
        };
        if years.contains(&year) {
            for file in fs::read_dir(&dir).map_err(io("read", &dir))? {
                let file = file.map_err(io("read", &dir))?.path();
                if file.file_name().is_some_and(|n| n != PART_FILE) {
                    fs::remove_file(&file).map_err(io("remove", &file))?;
                }
            }
        } else {
            fs::remove_dir_all(&dir).map_err(io("remove", &dir))?;
            removed.push(year);
        }
    }
    removed.sort_unstable();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    fn batch(values: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(values.to_vec())) as ArrayRef)])
            .unwrap()
    }

    /// Observations whose `sample_size` is `values` and every other column a placeholder.
    fn observations(values: &[i64]) -> RecordBatch {
        use arrow_array::{Date32Array, DictionaryArray, StringArray, TimestampMicrosecondArray};
        use arrow_schema::DataType;
        let n = values.len();
        let columns: Vec<ArrayRef> = model::batch_schema()
            .fields()
            .iter()
            .map(|field| -> ArrayRef {
                match field.data_type() {
                    DataType::Dictionary(..) => Arc::new(
                        DictionaryArray::<arrow_array::types::Int32Type>::try_new(
                            vec![0; n].into(),
                            Arc::new(StringArray::from(vec!["x"])),
                        )
                        .unwrap(),
                    ),
                    DataType::Date32 => Arc::new(Date32Array::from(vec![0; n])),
                    DataType::Int64 => Arc::new(Int64Array::from(values.to_vec())),
                    DataType::Timestamp(..) => {
                        Arc::new(TimestampMicrosecondArray::from(vec![0; n]).with_timezone("UTC"))
                    }
                    _ => arrow_array::new_null_array(field.data_type(), n),
                }
            })
            .collect();
        RecordBatch::try_new(model::batch_schema(), columns).unwrap()
    }

    /// Run `run_id` of pipeline `p` with one partition per (year, sample size), staged.
    fn staged(warehouse: &Warehouse, run_id: &str, parts: &[(i32, i64)]) -> Staged {
        let stager = warehouse
            .stage("p", run_id, CancellationToken::new())
            .unwrap();
        for &(year, value) in parts {
            stager
                .write_partition(year, &observations(&[value]))
                .unwrap();
        }
        stager.finish()
    }

    fn read(path: &Path) -> Vec<i64> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        reader
            .flat_map(|b| {
                let b = b.unwrap();
                let v = b
                    .column_by_name(model::col::SAMPLE_SIZE)
                    .unwrap_or(b.column(0))
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone();
                v.values().to_vec()
            })
            .collect()
    }

    #[test]
    fn a_complete_commit_records_its_content_and_a_wiped_partition_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        assert_eq!(warehouse.committed("p").unwrap(), None);
        staged(&warehouse, "r1", &[(2022, 1), (2023, 2)])
            .with_content("h1")
            .commit()
            .unwrap();
        assert_eq!(warehouse.committed("p").unwrap().as_deref(), Some("h1"));

        // A commit that names no content leaves none recorded.
        staged(&warehouse, "r2", &[(2022, 1), (2023, 2)])
            .commit()
            .unwrap();
        assert_eq!(warehouse.committed("p").unwrap(), None);

        staged(&warehouse, "r3", &[(2022, 1), (2023, 2)])
            .with_content("h3")
            .commit()
            .unwrap();
        fs::remove_dir_all(warehouse.partition_file("p", 2023).parent().unwrap()).unwrap();
        assert_eq!(
            warehouse.committed("p").unwrap(),
            None,
            "a partition is gone"
        );
    }

    #[test]
    fn written_files_use_zstd_dictionaries_and_the_page_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.parquet");
        write_parquet(&path, &batch(&[1, 1, 2])).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let column = builder.metadata().row_group(0).column(0);
        assert!(matches!(column.compression(), Compression::ZSTD(_)));
        assert!(column.dictionary_page_offset().is_some());
        assert!(column.statistics().is_some());
        assert!(
            column.column_index_offset().is_some(),
            "page index: column index"
        );
        assert!(
            column.offset_index_offset().is_some(),
            "page index: offset index"
        );
    }

    #[test]
    fn commit_replaces_partitions_and_removes_stale_years() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        staged(&warehouse, "run1", &[(2022, 1), (2023, 2)])
            .commit()
            .unwrap();

        let commit = staged(&warehouse, "run2", &[(2023, 3)]).commit().unwrap();
        assert_eq!(commit.removed_years, vec![2022]);
        assert_eq!(read(&warehouse.partition_file("p", 2023)), vec![3]);
        assert!(!warehouse.partition_file("p", 2022).exists());
        assert!(!dir.path().join(STAGING_DIR).join("run2").exists());
    }

    #[test]
    fn dropping_a_staged_run_leaves_the_warehouse_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        staged(&warehouse, "run1", &[(2023, 1)]).commit().unwrap();

        drop(staged(&warehouse, "run2", &[(2023, 9)]));
        assert_eq!(read(&warehouse.partition_file("p", 2023)), vec![1]);
        assert!(!dir.path().join(STAGING_DIR).join("run2").exists());
    }

    #[test]
    fn staging_is_listed_and_removed_run_by_run() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        assert!(
            warehouse.staged_runs().unwrap().is_empty(),
            "no .staging/ yet"
        );
        fs::create_dir_all(dir.path().join(STAGING_DIR).join("killed-run/year=2023")).unwrap();
        let live = warehouse
            .stage("p", "live-run", CancellationToken::new())
            .unwrap();
        live.write_partition(2023, &observations(&[1])).unwrap();
        assert_eq!(warehouse.staged_runs().unwrap(), ["killed-run", "live-run"]);

        assert!(warehouse.remove_staging("killed-run").unwrap());
        assert!(!warehouse.remove_staging("killed-run").unwrap());
        assert_eq!(warehouse.staged_runs().unwrap(), ["live-run"]);
        live.finish().commit().unwrap();
        assert_eq!(read(&warehouse.partition_file("p", 2023)), vec![1]);
    }

    #[test]
    fn a_run_id_that_is_not_one_file_name_names_no_staging() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path().join("warehouse"));
        for run_id in ["", "..", "a/b", "/tmp", "."] {
            assert!(
                matches!(
                    warehouse.remove_staging(run_id),
                    Err(WarehouseError::RunId { .. })
                ),
                "{run_id:?}"
            );
        }
        assert!(dir.path().exists());
    }

    #[test]
    fn a_year_staged_twice_is_refused_and_the_first_write_kept() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let stager = warehouse
            .stage("p", "run1", CancellationToken::new())
            .unwrap();
        stager.write_partition(2023, &observations(&[1])).unwrap();
        let err = stager
            .write_partition(2023, &observations(&[2]))
            .unwrap_err();
        let message = err
            .to_string()
            .replace(dir.path().to_str().unwrap(), "<warehouse>");
        insta::assert_snapshot!(message, @"year 2023 was staged twice in <warehouse>/.staging/run1; a run must hand each partition over once (a bug in indikator: please report it)");
        stager.finish().commit().unwrap();
        assert_eq!(read(&warehouse.partition_file("p", 2023)), vec![1]);
    }

    #[test]
    fn a_cancelled_run_stages_no_more_and_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        staged(&warehouse, "run1", &[(2023, 1)]).commit().unwrap();

        let cancel = CancellationToken::new();
        let second = warehouse.stage("p", "run2", cancel.clone()).unwrap();
        second.write_partition(2023, &observations(&[2])).unwrap();
        cancel.cancel();
        assert!(matches!(
            second.write_partition(2024, &observations(&[2])),
            Err(WarehouseError::Cancelled { .. })
        ));
        assert!(matches!(
            second.finish().commit(),
            Err(WarehouseError::Cancelled { .. })
        ));
        assert_eq!(read(&warehouse.partition_file("p", 2023)), vec![1]);
        assert!(!warehouse.partition_file("p", 2024).exists());
        assert!(warehouse.staged_runs().unwrap().is_empty());
    }

    #[test]
    fn catalogs_are_replaced_by_rename() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let cancel = CancellationToken::new();
        warehouse
            .write_catalog("areas", &batch(&[1]), &cancel)
            .unwrap();
        warehouse
            .write_catalog("areas", &batch(&[2]), &cancel)
            .unwrap();
        assert_eq!(read(&warehouse.catalog_file("areas")), vec![2]);
        let names: Vec<_> = fs::read_dir(dir.path().join("catalog"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["areas.parquet"], "no temporary file is left");
    }

    #[test]
    fn raw_payloads_are_kept_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path());
        let path = warehouse
            .archive_raw("p", "run1", "data.csv", b"a;b\n1;2\n")
            .unwrap();
        let back = zstd::decode_all(File::open(path).unwrap()).unwrap();
        assert_eq!(back, b"a;b\n1;2\n");
    }
}
