//! Shared helpers: a temporary project with the bundled samples, running the binary, and the
//! Python readers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch, StringArray};
use arrow_schema::DataType;
use indikator::ledger::RunStatus;
use indikator::pipeline::{Pipeline, Trigger};
use indikator::service::{RunRequest, Service};
use indikator::warehouse::Warehouse;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio_util::sync::CancellationToken;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary project: the repository's `schemas/` and `pipelines/samples/` copied in, so
/// that the warehouse and state land in the temporary directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn with_samples() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        copy_dir(&repo().join("schemas"), &dir.path().join("schemas"));
        copy_dir(
            &repo().join("pipelines/samples"),
            &dir.path().join("pipelines/samples"),
        );
        Self { dir }
    }

    /// An empty project (no schemas, no pipelines).
    pub fn empty() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn warehouse(&self) -> PathBuf {
        self.path().join("warehouse")
    }

    /// Runs `indikator ARGS` in the project directory.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_indikator"))
            .args(args)
            .current_dir(self.path())
            .env("INDIKATOR_LOG", "indikator=info")
            .output()
            .expect("the binary runs")
    }

    /// Writes a file under the project (creating directories).
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        path
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("a name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

/// stdout and stderr of a run, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `../shared/fixtures/real`, the real public files read in place. `None` (the test skips,
/// saying why) when it is not there; on CI its absence is a failure.
pub fn real_dir() -> Option<PathBuf> {
    let dir = repo().join("../shared/fixtures/real");
    match dir.is_dir() {
        true => Some(dir),
        false if std::env::var_os("CI").is_some() => {
            panic!(
                "{} is missing on CI; ../shared must be beside the repository",
                dir.display()
            )
        }
        false => {
            eprintln!("skipped: {} is not there", dir.display());
            None
        }
    }
}

/// The Python with pyarrow, duckdb and polars that `tests/run.sh` prepares. `None` (the test
/// skips, saying why) when it is not there; on CI its absence is a failure.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("INDIKATOR_PYTHON") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("INDIKATOR_PYTHON is not set on CI; run the tests through tests/run.sh")
        }
        None => {
            eprintln!("skipped: INDIKATOR_PYTHON is not set (tests/run.sh sets it up)");
            None
        }
    }
}

/// Runs a Python script with `args`; returns its stdout, panicking with its stderr on failure.
pub fn run_python(python: &Path, script: &str, args: &[&Path]) -> String {
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A manual run into `warehouse`, unhurried and silent.
pub fn manual_request(warehouse: &Warehouse, force: bool) -> RunRequest {
    RunRequest {
        run_id: None,
        stop: Default::default(),
        trigger: Trigger::Manual,
        force,
        warehouse: warehouse.clone(),
        cancel: CancellationToken::new(),
        progress: Arc::new(|_| {}),
    }
}

/// Runs `pipeline` once through `service` (the library, not the binary), as `indikator run`
/// would; panics if the run reports an error.
pub fn run_in_service(
    service: &Service,
    pipeline: &Arc<Pipeline>,
    warehouse: &Warehouse,
) -> RunStatus {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime
        .block_on(service.run(pipeline.clone(), manual_request(warehouse, false)))
        .unwrap();
    assert_eq!(outcome.error, None);
    outcome.status
}

/// Every batch of a Parquet file; panics if it is not readable Parquet.
pub fn read_parquet(file: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap())
        .unwrap_or_else(|e| panic!("{} is not readable Parquet: {e}", file.display()))
        .build()
        .unwrap()
        .map(|batch| batch.unwrap_or_else(|e| panic!("{}: {e}", file.display())))
        .collect()
}

/// A column of every batch as text (nulls as `""`).
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in batches {
        let array = batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column `{column}`"));
        let text = arrow_cast::cast(array, &DataType::Utf8).unwrap();
        let text = text.as_any().downcast_ref::<StringArray>().unwrap();
        out.extend((0..text.len()).map(|i| {
            if text.is_valid(i) {
                text.value(i).to_string()
            } else {
                String::new()
            }
        }));
    }
    out
}

/// A loopback test server kept alive, with the runtime its tasks run on, until dropped.
pub struct Served<S> {
    _runtime: tokio::runtime::Runtime,
    pub server: S,
}

impl<S> Served<S> {
    /// Starts a server (`start` runs inside the runtime) on a runtime of its own, one worker, so
    /// that the test itself can run the binary synchronously.
    pub fn start(start: impl FnOnce() -> S) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(async { start() });
        Self {
            _runtime: runtime,
            server,
        }
    }
}
