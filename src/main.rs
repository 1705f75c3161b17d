//! The `indikator` command line: parse, set up logging, dispatch. Nothing else lives here.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indikator::config::Settings;
use indikator::inspect::{self, InspectOptions};
use indikator::ledger::{Ledger, RunStatus};
use indikator::pipeline::{self, Pipeline, RunOutcome, Step, Trigger};
use indikator::problem::Problem;
use indikator::schemas::Schemas;
use indikator::service::{RunRequest, Service, ServiceError};
use indikator::warehouse::Warehouse;
use tokio_util::sync::CancellationToken;

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
    /// Loads pipelines (all, or those named: ids or files), their schemas and code lists, and
    /// reports every problem.
    Check {
        pipelines: Vec<String>,
        /// Also ask each network pipeline's table for its metadata (no data) and check its
        /// `select` against it.
        #[arg(long)]
        online: bool,
    },
    /// Shows a file (decoded), a PxWeb table (its metadata, the host's limits and the requests
    /// a harvest would send: a v1 table URL, or a v2 API root with --table), or Kolada KPIs
    /// (`https://api.kolada.se/v3/kpi/N15428,…`).
    Inspect {
        /// A file, a PxWeb v1 table URL, or a PxWebApi 2.0 root.
        target: String,
        /// The PxWebApi 2.0 table id (`TAB638`), with the API root as target.
        #[arg(long)]
        table: Option<String>,
        /// The PxWebApi 2.0 or PX file language (default sv).
        #[arg(long)]
        lang: Option<String>,
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
        /// XLSX sheet: its name, or its 1-based number (default: the first sheet).
        #[arg(long, value_name = "NAME|N")]
        sheet: Option<String>,
        /// XLSX: the 1-based row that names the columns (default: detected).
        #[arg(long, value_name = "N")]
        header_row: Option<usize>,
    },
    /// Lists the tables of a PxWebApi 2.0 host whose text matches a query.
    Tables {
        /// The API root, e.g. https://statistikdatabasen.scb.se/api/v2
        url: String,
        #[arg(long)]
        query: String,
        /// Language of the labels (default sv).
        #[arg(long, default_value = "sv")]
        lang: String,
    },
    /// Processes the raw payloads an earlier run archived again, through the pipeline as it is
    /// defined now, as a new run (trigger `replay`): a fixed mapping needs no new download.
    Replay {
        /// The run to replay (`indikator history` lists them).
        run_id: String,
        /// Warehouse directory to write to (overrides the settings).
        #[arg(long)]
        warehouse: Option<PathBuf>,
        /// Rewrite even when the warehouse already holds this content.
        #[arg(long)]
        force: bool,
    },
    /// Removes what `[retention]` lets go (raw archives beyond the last runs, old rejects
    /// files) and vacuums the ledger; with --pipeline, everything of a retired pipeline.
    Prune {
        /// A retired pipeline (no file has its id any more): its partitions, rejects, raw
        /// archive and catalogue rows go.
        #[arg(long)]
        pipeline: Option<String>,
        /// Lists what would go; removes nothing.
        #[arg(long)]
        dry_run: bool,
        /// Warehouse directory (overrides the settings).
        #[arg(long)]
        warehouse: Option<PathBuf>,
    },
    /// Lists the Kolada KPIs whose title matches a query.
    Kpis {
        #[arg(long)]
        query: String,
        /// The Kolada API root.
        #[arg(long, default_value = indikator::sources::kolada::DEFAULT_URL)]
        url: String,
    },
    /// Lists the pipelines.
    Pipelines,
    /// Runs the daemon: every pipeline on its schedule, and the admin API.
    Serve,
    /// Asks a running daemon to run a pipeline now.
    Trigger {
        pipeline: String,
        /// Follow the run until it ends; exit 0 when it succeeded or was skipped, 1 when it
        /// failed, was interrupted or cancelled.
        #[arg(long)]
        wait: bool,
        /// Rewrite even when the source content is unchanged.
        #[arg(long)]
        force: bool,
    },
    /// Shows a running daemon's pipelines: schedule, next fire, active and last run.
    Status,
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
    // rustls's process-wide provider (ring; the build carries no aws-lc), before any client.
    indikator::sources::http::install_crypto_provider();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            // Problems print their own severity, file and key, one per line.
            match error.downcast_ref::<Problems>() {
                Some(problems) => eprintln!("{problems}"),
                None => eprintln!("error: {error:#}"),
            }
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
    let settings = Settings::load(cli.config.as_deref(), &cwd).map_err(Problems)?;
    match cli.command {
        Command::Run {
            pipelines,
            all,
            warehouse,
            force,
        } => run(
            &with_warehouse(settings, &cwd, warehouse),
            &pipelines,
            all,
            force,
        ),
        Command::Replay {
            run_id,
            warehouse,
            force,
        } => replay(&with_warehouse(settings, &cwd, warehouse), &run_id, force),
        Command::Prune {
            pipeline,
            dry_run,
            warehouse,
        } => {
            let mut settings = settings;
            if let Some(dir) = warehouse {
                settings.warehouse_dir = indikator::config::resolve(&cwd, &dir);
            }
            prune(&settings, pipeline.as_deref(), dry_run)
        }
        Command::Check { pipelines, online } => check(&settings, &pipelines, online),
        Command::Inspect {
            target,
            table,
            lang,
            json,
            format,
            delimiter,
            encoding,
            sheet,
            header_row,
        } => {
            if let Some(source) = inspect::kolada::locate(&target) {
                let report =
                    online(|cx| async move { inspect::kolada::inspect(&source, &cx).await })?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report.to_json())?);
                } else {
                    print!("{}", report.render());
                }
                return Ok(ExitCode::SUCCESS);
            }
            if target.starts_with("http://") || target.starts_with("https://") {
                let api = inspect::remote::locate(&target, table.as_deref(), lang.as_deref())?;
                let survey =
                    online(|cx| async move { inspect::remote::inspect_table(api, &cx).await })?;
                if json {
                    let json = inspect::remote::to_json(&survey);
                    println!("{}", serde_json::to_string_pretty(&json)?);
                } else {
                    print!("{}", inspect::remote::render(&survey));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if table.is_some() {
                bail!("--table is for a PxWebApi 2.0 URL, not a file");
            }
            let file = PathBuf::from(target);
            let options = InspectOptions {
                format,
                delimiter,
                encoding,
                lang,
                sheet,
                header_row,
            };
            let report = inspect::inspect(&file, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            } else {
                print!("{report}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tables { url, query, lang } => {
            let tables = online(|cx| async move {
                inspect::remote::find_tables(&url, &query, &lang, &cx).await
            })?;
            print!("{}", inspect::remote::render_tables(&tables));
            Ok(ExitCode::SUCCESS)
        }
        Command::Kpis { query, url } => {
            let kpis = online(|cx| async move {
                indikator::sources::kolada::find_kpis(&url, &query, &cx).await
            })?;
            for kpi in &kpis {
                println!(
                    "{}  {:<70}  {:<30}  {}",
                    kpi.id,
                    kpi.title,
                    kpi.operating_area.as_deref().unwrap_or("-"),
                    kpi.split()
                );
            }
            println!("{} KPIs", kpis.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Pipelines => {
            let schemas = Schemas::load(&settings.schemas_dir).map_err(Problems)?;
            let loaded = pipeline::load_all(&settings, &schemas);
            let now = chrono::Utc::now();
            for pipeline in &loaded.pipelines {
                println!(
                    "{:<40} {}",
                    pipeline.id,
                    relative(&pipeline.file, &settings.root).display()
                );
                match &pipeline.schedule {
                    None => println!("    manual"),
                    Some(schedule) => {
                        let zone = schedule.timezone();
                        let next: Vec<String> = schedule
                            .upcoming(now, 3)
                            .iter()
                            .map(|t| {
                                t.with_timezone(&zone)
                                    .format("%Y-%m-%d %H:%M:%S")
                                    .to_string()
                            })
                            .collect();
                        println!("    {schedule}; next {}", next.join(", "));
                    }
                }
            }
            report_problems(&loaded.problems);
            Ok(exit_for(&loaded.problems))
        }
        Command::Serve => {
            let runtime =
                tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
            runtime.block_on(indikator::serve::serve(settings))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trigger {
            pipeline,
            wait,
            force,
        } => Ok(admin_call(|| trigger(&settings, &pipeline, wait, force))),
        Command::Status => Ok(admin_call(|| status(&settings))),
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

/// `settings` with `--warehouse DIR` (relative to the working directory), when given.
fn with_warehouse(mut settings: Settings, cwd: &Path, warehouse: Option<PathBuf>) -> Settings {
    if let Some(dir) = warehouse {
        settings.warehouse_dir = indikator::config::resolve(cwd, &dir);
    }
    settings
}

/// Exit code of `trigger --wait` for a run that ended `status`.
fn exit_for_status(status: &str) -> ExitCode {
    match status {
        "succeeded" | "skipped" => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Runs a client command of the admin API: its exit code, or 2 (printed) when the API could
/// not be asked or refused the request.
fn admin_call(
    call: impl FnOnce() -> Result<ExitCode, indikator::admin::client::ClientError>,
) -> ExitCode {
    match call() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
}

fn trigger(
    settings: &Settings,
    pipeline: &str,
    wait: bool,
    force: bool,
) -> Result<ExitCode, indikator::admin::client::ClientError> {
    let client = indikator::admin::client::Client::from_settings(settings)?;
    client_runtime().block_on(async {
        let run_id = client.trigger(pipeline, force).await?;
        println!("{pipeline}: run {run_id} queued");
        if !wait {
            return Ok(ExitCode::SUCCESS);
        }
        let run = client.wait(&run_id).await?;
        let status = run["status"].as_str().unwrap_or("unknown");
        println!(
            "{pipeline}: {status} (run {run_id}): {} rows read, {} written, {} rejected",
            run["rows_read"], run["rows_written"], run["rows_rejected"]
        );
        for key in ["reason", "error"] {
            if let Some(text) = run[key].as_str() {
                println!("  {key}: {text}");
            }
        }
        Ok(exit_for_status(status))
    })
}

fn status(settings: &Settings) -> Result<ExitCode, indikator::admin::client::ClientError> {
    let client = indikator::admin::client::Client::from_settings(settings)?;
    let answer = client_runtime().block_on(client.pipelines())?;
    if let Some(problem) = answer["config"]["problem"].as_str() {
        println!("configuration: {problem}");
    }
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_string();
    for pipeline in answer["pipelines"].as_array().into_iter().flatten() {
        let last = &pipeline["last_run"];
        println!(
            "{:<40} next {:<25} active {:<40} last {} {}",
            text(&pipeline["id"]),
            text(&pipeline["next_fire"]),
            text(&pipeline["active_run"]),
            text(&last["status"]),
            text(&last["finished"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn relative<'a>(path: &'a Path, root: &Path) -> &'a Path {
    path.strip_prefix(root).unwrap_or(path)
}

/// Problems that stop a command, printed as they are (each names its severity, file and key).
#[derive(Debug)]
struct Problems(Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Problem::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Problems {}

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

/// Runs one network request (or a few) of a command on a runtime of its own, stopping at
/// Ctrl-C.
fn online<T, E, F>(work: impl FnOnce(indikator::sources::FetchContext) -> F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let cx = indikator::sources::FetchContext::default();
        let cancel = cx.cancel.clone();
        tokio::select! {
            result = work(cx) => Ok(result?),
            _ = tokio::signal::ctrl_c() => {
                cancel.cancel();
                bail!("interrupted")
            }
        }
    })
}

fn check(settings: &Settings, names: &[String], online_too: bool) -> anyhow::Result<ExitCode> {
    let (schemas, mut problems) = match Schemas::load(&settings.schemas_dir) {
        Ok(schemas) => {
            let warnings = schemas.warnings.clone();
            (schemas, warnings)
        }
        Err(problems) => (Schemas::default(), problems),
    };
    let mut pipelines = Vec::new();
    if names.is_empty() {
        let loaded = pipeline::load_all(settings, &schemas);
        problems.extend(loaded.problems);
        pipelines = loaded.pipelines;
    } else {
        let mut directory = None;
        for name in names {
            let found = match find(settings, &schemas, name, &mut directory) {
                Ok((pipeline, warnings)) => {
                    pipelines.push(pipeline);
                    warnings
                }
                Err(found) => found,
            };
            // Each name not found brings the broken files' problems: list those once.
            for problem in found {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if online_too {
        let pipelines = &pipelines;
        let found = online(|cx| async move {
            Ok::<_, std::convert::Infallible>(
                pipeline::online::check_online(pipelines, &schemas, &cx.http, &cx.cancel).await,
            )
        })?;
        problems.extend(found);
    }
    let checked = pipelines.len();
    report_problems(&problems);
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    println!("{checked} pipelines checked: {errors} errors, {warnings} warnings");
    Ok(exit_for(&problems))
}

/// One pipeline named by a path to its file or by its id among the pipelines directory's, with
/// its warnings; or every problem that keeps it from being used.
fn find(
    settings: &Settings,
    schemas: &Schemas,
    name: &str,
    directory: &mut Option<pipeline::Loaded>,
) -> Result<(Pipeline, Vec<Problem>), Vec<Problem>> {
    let path = Path::new(name);
    if path.is_file() || name.ends_with(".toml") {
        return pipeline::check_file(path, settings, schemas);
    }
    // The pipelines directory is read once for all the ids named.
    let loaded = directory.get_or_insert_with(|| pipeline::load_all(settings, schemas));
    let files: Vec<String> = (loaded.pipelines.iter())
        .filter(|p| p.id == name)
        .map(|p| p.file.display().to_string())
        .collect();
    if files.len() > 1 {
        return Err(vec![Problem::error(
            &settings.pipelines_dir,
            "",
            format!(
                "id `{name}` is used by {}; ids name warehouse partitions and must be unique",
                files.join(" and ")
            ),
        )]);
    }
    match loaded.pipelines.iter().position(|p| p.id == name) {
        Some(index) => {
            let id_problems = (loaded.problems.iter())
                .filter(|p| !p.is_error() && p.file == loaded.pipelines[index].file)
                .cloned()
                .collect();
            Ok((loaded.pipelines.swap_remove(index), id_problems))
        }
        // The pipeline may be one whose file is broken: its problems say so.
        None => Err((loaded.problems.iter())
            .filter(|p| p.is_error())
            .cloned()
            .chain([Problem::error(
                &settings.pipelines_dir,
                "",
                format!("no pipeline has id `{name}`; `indikator pipelines` lists them"),
            )])
            .collect()),
    }
}

/// Resolves the named pipelines: a path to a file is checked on its own, an id is looked up
/// among the pipelines directory's.
fn select(
    settings: &Settings,
    schemas: &Schemas,
    names: &[String],
    all: bool,
) -> anyhow::Result<Vec<Pipeline>> {
    if all {
        let loaded = pipeline::load_all(settings, schemas);
        report_problems(&loaded.problems);
        if loaded.problems.iter().any(Problem::is_error) {
            bail!("some pipelines have errors (see above); fix them or run the others by id");
        }
        return Ok(loaded.pipelines);
    }
    if names.is_empty() {
        bail!("name the pipelines to run (ids or files), or give --all");
    }
    let (mut selected, mut directory) = (Vec::new(), None);
    for name in names {
        let (pipeline, warnings) =
            find(settings, schemas, name, &mut directory).map_err(Problems)?;
        report_problems(&warnings);
        selected.push(pipeline);
    }
    Ok(selected)
}

/// The service of the settings' state directory, after recovering what dead runs left in the
/// settings' warehouse.
fn open_service(settings: &Settings, schemas: Schemas) -> anyhow::Result<(Service, Warehouse)> {
    let service = Service::open(settings.clone(), schemas)?;
    let warehouse = Warehouse::new(&settings.warehouse_dir);
    let recovered = service.recover(&warehouse)?;
    if !recovered.interrupted.is_empty() {
        tracing::warn!(runs = ?recovered.interrupted, "marked runs left running by a stopped process as interrupted");
    }
    if !recovered.staging_removed.is_empty() {
        tracing::warn!(runs = ?recovered.staging_removed, "removed staging leftovers of stopped runs");
    }
    Ok((service, warehouse))
}

/// A runtime for runs, and the token its signal handlers cancel (see [`cancel_on_signals`]).
fn run_runtime() -> anyhow::Result<(tokio::runtime::Runtime, CancellationToken)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let shutdown = CancellationToken::new();
    {
        // Listening starts here, before any run: a signal between two runs cancels the rest too.
        let _entered = runtime.enter();
        runtime.spawn(cancel_on_signals(shutdown.clone()));
    }
    Ok((runtime, shutdown))
}

fn replay(settings: &Settings, run_id: &str, force: bool) -> anyhow::Result<ExitCode> {
    let schemas = Schemas::load(&settings.schemas_dir).map_err(Problems)?;
    let loaded = pipeline::load_all(settings, &schemas);
    let (service, warehouse) = open_service(settings, schemas)?;
    let replay = indikator::replay::prepare(service.ledger(), loaded.pipelines, &warehouse, run_id)
        .inspect_err(|error| {
            // The run's pipeline may be one whose file is broken: its problems say so.
            if matches!(error, indikator::replay::ReplayError::NoPipeline { .. }) {
                let errors: Vec<Problem> = loaded
                    .problems
                    .iter()
                    .filter(|p| p.is_error())
                    .cloned()
                    .collect();
                report_problems(&errors);
            }
        })?;
    let (runtime, shutdown) = run_runtime()?;
    let bar = progress_bar(&replay.pipeline.id);
    let request = RunRequest {
        run_id: None,
        trigger: Trigger::Replay,
        force,
        warehouse,
        cancel: shutdown.child_token(),
        stop: Default::default(),
        progress: std::sync::Arc::new(progress_of(bar.clone())),
    };
    let pipeline = std::sync::Arc::new(replay.pipeline);
    let outcome = runtime.block_on(service.replay(pipeline, replay.archived, request));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    println!("replay of run {run_id}:");
    print_outcome(&outcome);
    Ok(
        if matches!(outcome.status, RunStatus::Succeeded | RunStatus::Skipped) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

fn prune(settings: &Settings, pipeline: Option<&str>, dry_run: bool) -> anyhow::Result<ExitCode> {
    use indikator::retention::{self, Mode};
    let mode = if dry_run { Mode::DryRun } else { Mode::Remove };
    // Shared with runs of this version, refused beside an older one (which knows no locks).
    let _share = indikator::ledger::StateShare::take(&settings.state_dir)?;
    let ledger = Ledger::open(&settings.state_dir)?;
    let warehouse = Warehouse::new(&settings.warehouse_dir);
    let report = match pipeline {
        Some(id) => {
            let schemas = Schemas::load(&settings.schemas_dir).map_err(Problems)?;
            retention::retire(settings, &ledger, &warehouse, &schemas, id, mode)?
        }
        None => retention::prune(settings, &ledger, &warehouse, chrono::Utc::now(), mode)?,
    };
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn run(settings: &Settings, names: &[String], all: bool, force: bool) -> anyhow::Result<ExitCode> {
    let schemas = Schemas::load(&settings.schemas_dir).map_err(Problems)?;
    let pipelines = select(settings, &schemas, names, all)?;
    let (service, warehouse) = open_service(settings, schemas)?;
    let (runtime, shutdown) = run_runtime()?;
    let all_ok = runtime.block_on(async {
        let mut all_ok = true;
        for pipeline in pipelines {
            if shutdown.is_cancelled() {
                return Ok(false);
            }
            let bar = progress_bar(&pipeline.id);
            let request = RunRequest {
                run_id: None,
                trigger: Trigger::Manual,
                force,
                warehouse: warehouse.clone(),
                cancel: shutdown.child_token(),
                stop: Default::default(),
                progress: std::sync::Arc::new(progress_of(bar.clone())),
            };
            let id = pipeline.id.clone();
            let result = service.run(std::sync::Arc::new(pipeline), request).await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            match result {
                Ok(outcome) => {
                    print_outcome(&outcome);
                    all_ok &= matches!(outcome.status, RunStatus::Succeeded | RunStatus::Skipped);
                }
                Err(ServiceError::Ledger(held @ indikator::ledger::LedgerError::Held { .. })) => {
                    eprintln!("error: {id}: {held}");
                    all_ok = false;
                }
                Err(other) => return Err(anyhow::Error::from(other)),
            }
        }
        Ok(all_ok)
    })?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Shows a run's steps on `bar` (none when stderr is not a terminal).
fn progress_of(bar: Option<indicatif::ProgressBar>) -> impl Fn(Step) + Send + Sync {
    move |step| {
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
    }
}

/// Cancels `shutdown` at the first SIGTERM or Ctrl-C (the run stops at its next stage and
/// commits nothing); a second one ends the process at once, with the shell's code for it. The
/// handlers are installed when this is called (inside the runtime), not when it is first polled.
fn cancel_on_signals(shutdown: CancellationToken) -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = signal(SignalKind::terminate()).and_then(|terminate| {
        signal(SignalKind::interrupt()).map(|interrupt| (terminate, interrupt))
    });
    async move {
        let Ok((mut terminate, mut interrupt)) = signals else {
            tracing::warn!("cannot listen for SIGTERM and Ctrl-C; they will kill runs outright");
            return;
        };
        loop {
            // 128 + the signal's number, as a shell reports a process the signal ended.
            let code = tokio::select! {
                _ = terminate.recv() => 143,
                _ = interrupt.recv() => 130,
            };
            if shutdown.is_cancelled() {
                eprintln!("stopped at once by a second signal");
                std::process::exit(code);
            }
            tracing::warn!(
                "signal received: stopping the run at its next step, nothing of it committed"
            );
            shutdown.cancel();
        }
    }
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
        let reason = outcome.reason.as_deref().unwrap_or("unchanged");
        println!("  skipped ({reason}); nothing written (use --force to rewrite)");
    }
    for notice in &outcome.notices {
        println!("  notice: {notice}");
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
