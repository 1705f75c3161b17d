//! `indikator serve`: start-up, the life of the daemon, and its shutdown.
//!
//! Owns: refusing an unsafe start (a non-loopback admin address without a token, pipelines that
//! fail `check`, a second daemon on one state directory), recovery of what a dead process left,
//! the order things start and stop in, and the signals: SIGHUP reloads, SIGTERM or SIGINT stop
//! new runs and give running ones `grace_secs` before they are cancelled (committing nothing,
//! recorded `interrupted`).
//! Must not: decide when pipelines run (the scheduler) or how (the service).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Token};
use crate::blocking::blocking;
use crate::config::Settings;
use crate::daemon::scheduler::Clock;
use crate::daemon::{self, Daemon};
use crate::ledger::{LedgerError, PipelineLock};
use crate::pipeline::run::rfc3339;
use crate::schemas::Schemas;
use crate::service::{Service, ServiceError};
use crate::warehouse::Warehouse;

/// The lock a daemon holds on its state directory (`state/locks/<this>.lock`): a name no
/// pipeline id can take (ids have no dots).
const DAEMON_LOCK: &str = "indikator.serve";

/// How often retention runs (first at start-up).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

/// How long a shutdown waits for queued alerts to be sent.
const ALERT_FLUSH: Duration = Duration::from_secs(5);

/// Why the daemon would not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "the admin API would listen on {bind}, which is not a loopback address, without a \
         token: set INDIKATOR_ADMIN_TOKEN or [admin] token_file, or bind to 127.0.0.1"
    )]
    OpenWithoutToken { bind: SocketAddr },
    #[error(transparent)]
    Token(#[from] admin::client::ClientError),
    #[error("the pipelines or schemas have errors; fix them (`indikator check` lists them): {0}")]
    Check(String),
    #[error(
        "another `indikator serve` (pid {pid}, since {since}) uses the state directory {}; \
         stop it first, or give this one its own state_dir", .state_dir.display()
    )]
    AlreadyServing {
        pid: u32,
        since: String,
        state_dir: std::path::PathBuf,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot listen on {bind} for the admin API")]
    Bind {
        bind: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for signals")]
    Signals(#[source] std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT, and then until its runs have ended.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let token = admin::client::token(&settings)?;
    let bind = settings.admin.bind;
    if token.is_none() && !bind.ip().is_loopback() {
        return Err(ServeError::OpenWithoutToken { bind });
    }
    let (daemon, _serving) = start(settings).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| ServeError::Bind { bind, source })?;
    if token.is_none() {
        tracing::warn!(%bind, "the admin API has no token: anyone on this machine can trigger and cancel runs");
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;

    // The scheduler stops first (no fire is claimed for a run that would be refused), the API
    // last (operators can watch the shutdown).
    let stopping = CancellationToken::new();
    let scheduling = CancellationToken::new();
    let api = {
        let router = admin::router(daemon.clone(), token.as_deref().map(Token::new));
        let stopped = stopping.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        })
    };
    let scheduler = tokio::spawn(
        (daemon.scheduler(Clock::wall())).run(daemon.settings().serve.catch_up, scheduling.clone()),
    );
    let pruning = {
        let (daemon, stopped) = (daemon.clone(), stopping.clone());
        tokio::spawn(async move {
            let mut daily = tokio::time::interval(RETENTION_EVERY);
            loop {
                tokio::select! {
                    _ = daily.tick() => daemon.prune().await,
                    () = stopped.cancelled() => return,
                }
            }
        })
    };
    tracing::info!(%bind, pipelines = daemon.pipelines().len(), scheduled = daemon.pipelines().scheduled().count(), "serving");

    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration and pipelines");
                let _kept_on_error = daemon.reload().await;
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    let grace = Duration::from_secs(daemon.settings().serve.grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: no new runs; running ones get the grace period"
    );
    scheduling.cancel();
    let _ = scheduler.await;
    // A second signal while waiting ends the process at once.
    let shutdown = daemon.runner().shutdown(grace);
    tokio::select! {
        () = shutdown => {}
        _ = terminate.recv() => exit_now(143),
        _ = interrupt.recv() => exit_now(130),
    }
    daemon.flush_alerts(ALERT_FLUSH).await;
    stopping.cancel();
    let _ = pruning.await;
    if let Ok(Err(error)) = api.await {
        tracing::warn!(%error, "the admin API ended with an error");
    }
    tracing::info!("stopped");
    Ok(())
}

fn exit_now(code: i32) -> ! {
    eprintln!(
        "stopped at once by a second signal; the next start marks unfinished runs interrupted"
    );
    std::process::exit(code)
}

/// Loads and checks everything, takes the state directory for this daemon and recovers what a
/// dead process left: the daemon, ready to serve, and its lock on the state directory (held
/// for as long as it serves).
pub async fn start(settings: Settings) -> Result<(Arc<Daemon>, PipelineLock), ServeError> {
    let daemon = {
        blocking(move || -> Result<_, ServeError> {
            // The schemas come with the pipeline set (`load_set`), read once; recovery needs none.
            let service = Service::open(settings.clone(), Schemas::default())?;
            let lock = take_daemon_lock(&settings)?;
            let warehouse = Warehouse::new(&settings.warehouse_dir);
            let recovered = service.recover(&warehouse)?;
            if !recovered.interrupted.is_empty() {
                tracing::warn!(runs = ?recovered.interrupted, "marked runs left running by a stopped process as interrupted");
            }
            let queued = service.ledger().interrupt_queued(&rfc3339(Utc::now()))?;
            if !queued.is_empty() {
                tracing::warn!(runs = ?queued, "marked runs left queued by a stopped daemon as interrupted");
            }
            let set = daemon::load_set(&settings, &service).map_err(ServeError::Check)?;
            Ok((settings, service, set, lock))
        })
        .await?
    };
    // On the runtime's thread: the daemon spawns its alert sender.
    let (settings, service, set, lock) = daemon;
    let daemon = Daemon::new(settings, service, set);
    daemon.load_last_successes().await;
    Ok((daemon, lock))
}

fn take_daemon_lock(settings: &Settings) -> Result<PipelineLock, ServeError> {
    match PipelineLock::try_acquire(&settings.state_dir, DAEMON_LOCK, "serve") {
        Ok(lock) => Ok(lock),
        Err(LedgerError::Held { holder, .. }) => Err(ServeError::AlreadyServing {
            pid: holder.as_ref().map_or(0, |h| h.pid),
            since: holder.map_or_else(|| "unknown".into(), |h| h.started),
            state_dir: settings.state_dir.clone(),
        }),
        Err(other) => Err(other.into()),
    }
}
