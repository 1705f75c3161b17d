//! Load on a running daemon's admin API, for `bench/serve.sh`: N GET requests over loopback,
//! C at once, each on its own connection, with the latency of each; prints one JSON line.
//!
//! `cargo run --release --example admin_load -- PORT [REQUESTS] [CONCURRENCY]`; the token, if
//! the daemon has one, comes from `INDIKATOR_ADMIN_TOKEN`. Paths rotate over `/api/v1/runs`,
//! `/api/v1/pipelines` and `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATHS: [&str; 3] = ["/api/v1/runs", "/api/v1/pipelines", "/healthz"];

async fn get(port: u16, path: &str, token: Option<&str>) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    Ok((text.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = args.first().and_then(|p| p.parse().ok()).expect("PORT");
    let total: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(50);
    let token: Option<Arc<str>> = std::env::var("INDIKATOR_ADMIN_TOKEN").ok().map(Into::into);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let (latencies, failures) = runtime.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (next, token) = (next.clone(), token.clone());
                tokio::spawn(async move {
                    let (mut latencies, mut failures) = (Vec::new(), 0usize);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return (latencies, failures);
                        }
                        let at = Instant::now();
                        match get(port, PATHS[i % PATHS.len()], token.as_deref()).await {
                            Ok(200) => latencies.push(at.elapsed()),
                            _ => failures += 1,
                        }
                    }
                })
            })
            .collect();
        let (mut all, mut failed) = (Vec::with_capacity(total), 0);
        for worker in workers {
            let (latencies, failures) = worker.await.expect("a worker ends");
            all.extend(latencies);
            failed += failures;
        }
        (all, failed)
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut sorted = latencies;
    sorted.sort_unstable();
    if sorted.is_empty() {
        println!("{{\"requests\":{total},\"failures\":{failures}}}");
        std::process::exit(1);
    }
    println!(
        "{{\"requests\":{total},\"concurrency\":{concurrency},\"failures\":{failures},\"seconds\":{elapsed:.3},\"per_second\":{:.0},\"p50_ms\":{:.2},\"p90_ms\":{:.2},\"p99_ms\":{:.2},\"max_ms\":{:.2}}}",
        total as f64 / elapsed,
        percentile(&sorted, 0.50),
        percentile(&sorted, 0.90),
        percentile(&sorted, 0.99),
        percentile(&sorted, 1.0),
    );
}
