//! The `indikator` command line: parse, set up logging, dispatch. Nothing else lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indikator::catalog::Catalogue;
use indikator::config::Settings;
use indikator::inspect::{self, InspectOptions};
use indikator::ledger::{Ledger, PipelineLock, RunStatus};
use indikator::pipeline::{self, Pipeline, RunContext, RunOutcome, Step};
use indikator::problem::Problem;
use indikator::warehouse::Warehouse;

// Each partition allocates and frees column buffers of a few hundred kilobytes; glibc's malloc
// hands those back to the kernel and faults them in again every time (a quarter of the CPU time
// on the 10-million-cell benchmark was the kernel clearing pages). mimalloc keeps them for reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "indikator",
    version,
    about = "Harvests, validates and harmonises statistics on children's and young people's living conditions into a Parquet warehouse"
)]
struct Cli {
    /// Settings file (default: indikator.toml in the working directory, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Runs pipelines now: by id, or by path to a pipeline file.
    Run {
        pipelines: Vec<String>,
        /// Every pipeline under the pipelines directory.
        #[arg(long, conflicts_with = "pipelines")]
        all: bool,
        /// Warehouse directory (overrides the settings).
        #[arg(long)]
        warehouse: Option<PathBuf>,
        /// Rewrite even when the source content is unchanged.
        #[arg(long)]
        force: bool,
    },
    /// Loads every pipeline, schema and code list and reports all problems.
    Check,
    /// Decodes a file and shows its dimensions, sizes, cells and statuses.
    Inspect {
        file: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Format (default: from the file extension).
        #[arg(long, value_enum)]
        format: Option<inspect::FormatChoice>,
        /// CSV delimiter.
        #[arg(long)]
        delimiter: Option<char>,
        /// CSV encoding (utf-8, windows-1252, iso-8859-1).
        #[arg(long)]
        encoding: Option<String>,
    },
    /// Lists the pipelines.
    Pipelines,
    /// Shows recent runs.
    History {
        pipeline: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INDIKATOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("indikator=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let settings = Settings::load(cli.config.as_deref(), &cwd).map_err(problems_error)?;
    match cli.command {
        Command::Run {
            pipelines,
            all,
            warehouse,
            force,
        } => {
            let mut settings = settings;
            if let Some(dir) = warehouse {
                settings.warehouse_dir = cwd.join(dir);
            }
            run(&settings, &pipelines, all, force)
        }
        Command::Check => check(&settings),
        Command::Inspect {
            file,
            json,
            format,
            delimiter,
            encoding,
        } => {
            let options = InspectOptions {
                format,
                delimiter,
                encoding,
            };
            let report = inspect::inspect(&file, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Pipelines => {
            let catalogue = Catalogue::load(&settings.schemas_dir).map_err(problems_error)?;
            let loaded = pipeline::load_all(&settings, &catalogue);
            for pipeline in &loaded.pipelines {
                println!(
                    "{:<32} {:<14} {}",
                    pipeline.id,
                    pipeline.schedule.as_deref().unwrap_or("manual"),
                    relative(&pipeline.file, &settings.root).display()
                );
            }
            report_problems(&loaded.problems);
            Ok(exit_for(&loaded.problems))
        }
        Command::History { pipeline, limit } => {
            let ledger = Ledger::open(&settings.state_dir)?;
            for run in ledger.history(pipeline.as_deref(), limit)? {
                println!(
                    "{}  {:<11} {}  read {:>9}  written {:>9}  rejected {:>7}{}",
                    run.started,
                    run.status.as_str(),
                    run.run_id,
                    run.rows_read,
                    run.rows_written,
                    run.rows_rejected,
                    run.error.map(|e| format!("\n    {e}")).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn relative<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

fn problems_error(problems: Vec<Problem>) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn report_problems(problems: &[Problem]) {
    for problem in problems {
        eprintln!("{problem}");
    }
}

fn exit_for(problems: &[Problem]) -> ExitCode {
    if problems.iter().any(Problem::is_error) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn check(settings: &Settings) -> anyhow::Result<ExitCode> {
    let (catalogue, mut problems) = match Catalogue::load(&settings.schemas_dir) {
        Ok(catalogue) => (catalogue, Vec::new()),
        Err(problems) => (Catalogue::default(), problems),
    };
    let loaded = pipeline::load_all(settings, &catalogue);
    problems.extend(loaded.problems);
    report_problems(&problems);
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    println!(
        "{} pipelines checked: {errors} errors, {warnings} warnings",
        loaded.pipelines.len()
    );
    Ok(exit_for(&problems))
}

/// Resolves the named pipelines: a path to a file is checked on its own, an id is looked up
/// among the pipelines directory's.
fn select(
    settings: &Settings,
    catalogue: &Catalogue,
    names: &[String],
    all: bool,
) -> anyhow::Result<Vec<Pipeline>> {
    if all {
        let loaded = pipeline::load_all(settings, catalogue);
        report_problems(&loaded.problems);
        if loaded.problems.iter().any(Problem::is_error) {
            bail!("some pipelines have errors (see above); fix them or run the others by id");
        }
        return Ok(loaded.pipelines);
    }
    if names.is_empty() {
        bail!("name the pipelines to run (ids or files), or give --all");
    }
    let mut by_id: Option<Vec<Pipeline>> = None;
    let mut selected = Vec::new();
    for name in names {
        let path = Path::new(name);
        if path.is_file() || name.ends_with(".toml") {
            let (pipeline, warnings) =
                pipeline::check_file(path, settings, catalogue).map_err(problems_error)?;
            report_problems(&warnings);
            selected.push(pipeline);
            continue;
        }
        let pipelines = by_id.get_or_insert_with(|| {
            let loaded = pipeline::load_all(settings, catalogue);
            report_problems(&loaded.problems);
            loaded.pipelines
        });
        let index = pipelines
            .iter()
            .position(|p| &p.id == name)
            .with_context(|| {
                format!(
                    "no pipeline has id `{name}` in {}; `indikator pipelines` lists them",
                    settings.pipelines_dir.display()
                )
            })?;
        selected.push(pipelines.remove(index));
    }
    Ok(selected)
}

fn run(settings: &Settings, names: &[String], all: bool, force: bool) -> anyhow::Result<ExitCode> {
    let catalogue = Catalogue::load(&settings.schemas_dir).map_err(problems_error)?;
    let pipelines = select(settings, &catalogue, names, all)?;
    let ledger = Ledger::open(&settings.state_dir)?;
    let warehouse = Warehouse::new(&settings.warehouse_dir);
    let cancel = tokio_util::sync::CancellationToken::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut all_ok = true;
    for pipeline in &pipelines {
        let run_id = pipeline::run::new_run_id(chrono::Utc::now(), &pipeline.id);
        let _lock = PipelineLock::try_acquire(&settings.state_dir, &pipeline.id, &run_id)?;
        // Holding the pipeline's lock, its runs left `running` are dead: no live process has them.
        for dead in ledger.running()? {
            if dead.pipeline != pipeline.id {
                continue;
            }
            ledger.mark_interrupted(&dead.run_id, &chrono::Utc::now().to_rfc3339())?;
            let dead_warehouse = dead
                .warehouse
                .map_or_else(|| warehouse.clone(), Warehouse::new);
            let staging = dead_warehouse.remove_staging(&dead.run_id)?;
            tracing::warn!(run_id = %dead.run_id, staging, "marked a run left running by a stopped process as interrupted");
        }
        let bar = progress_bar(&pipeline.id);
        let progress = |step: Step| {
            if let Some(bar) = &bar {
                match step {
                    Step::Fetched { bytes } => bar.set_message(format!("fetched {bytes} bytes")),
                    Step::Decoded { partitions, .. } => {
                        bar.set_length(partitions as u64);
                        bar.set_message("writing partitions");
                    }
                    Step::PartitionDone => bar.inc(1),
                    Step::Committing => bar.set_message("committing"),
                }
            }
        };
        let cx = RunContext {
            warehouse: &warehouse,
            ledger: &ledger,
            catalogue: &catalogue,
            trigger: "manual",
            force,
            progress: &progress,
            cancel: &cancel,
        };
        let outcome = runtime.block_on(pipeline::run(pipeline, &run_id, &cx))?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        print_outcome(&outcome);
        all_ok &= matches!(outcome.status, RunStatus::Succeeded | RunStatus::Skipped);
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn progress_bar(pipeline: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0).with_prefix(pipeline.to_string());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    Some(bar)
}

fn print_outcome(outcome: &RunOutcome) {
    println!(
        "{}: {} in {} ms (run {}): {} rows read, {} written, {} rejected",
        outcome.pipeline,
        outcome.status,
        outcome.elapsed_ms,
        outcome.run_id,
        outcome.rows_read,
        outcome.rows_written,
        outcome.rows_rejected
    );
    if outcome.status == RunStatus::Skipped {
        println!(
            "  source unchanged since the last commit; nothing written (use --force to rewrite)"
        );
    }
    if outcome.report.rows_rejected > 0 {
        for line in outcome.report.to_string().lines().skip(1) {
            println!("  {line}");
        }
    }
    if let Some(file) = &outcome.rejects_file {
        println!("  refused rows: {}", file.display());
    }
    if !outcome.uncatalogued.is_empty() {
        println!(
            "  warning: uncatalogued indicators (not in schemas/indicators.toml): {}",
            outcome
                .uncatalogued
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(error) = &outcome.error {
        println!("  error: {error}");
    }
}
