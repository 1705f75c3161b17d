//! Blocking work (decoding, Parquet encoding, fsync, SQLite) run off the async runtime.
//!
//! Owns: [`blocking`], the one way async code hands such work to tokio's blocking pool.
//! Must not: know what the work is.

/// Runs CPU-heavy or blocking work on the blocking pool, inside the caller's span so its log
/// lines keep `run_id` and `pipeline`, and lets the runtime go on serving (an admin API, other
/// runs' waits) meanwhile. A panic there is a bug: it is raised again here.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
        Ok(value) => value,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_keeps_running_while_blocking_work_runs() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let work = tokio::spawn(blocking(move || rx.recv().is_ok()));
        // On a current-thread runtime this line runs only because the work is elsewhere.
        tokio::task::yield_now().await;
        tx.send(()).unwrap();
        assert!(work.await.unwrap());
    }
}
