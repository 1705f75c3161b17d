//! Serves a generated Kolada v3 dataset on loopback for manual runs and benchmarks of the client:
//!
//! ```text
//! cargo run --release --example kolada-test-server -- \
//!     --kpis 6000 --areas ../shared/fixtures/real/pykolada/municipality.json \
//!     --years 2010-2023 --per-page-cap 5000 [--kpi-ids N15428,U31803] [--next-page] [--port 8080]
//! ```
//!
//! Serves `Dataset::small()` (three KPIs, seven areas, two groups) plus `--kpis` generated
//! KPIs (`N900000`, …), the KPIs `--kpi-ids` names and the areas of `--areas` (a Kolada
//! `municipality` answer), over the `--years`. Prints the base URL (`http://127.0.0.1:PORT/v3`) and the stats URL, one per line,
//! then serves until killed. `GET /_stats` gives the counts and the request log as JSON.
//!
//! Owns: the command line. Must not: serve anything itself (`indikator::testkit::kolada_server`).

use std::net::SocketAddr;

use clap::Parser;
use indikator::testkit::kolada_server::{Dataset, KoladaServer, PagingNames, ServerConfig};

#[derive(Parser)]
#[command(about = "A Kolada API v3 test server on 127.0.0.1")]
struct Args {
    /// Generated KPIs besides the three of the small set.
    #[arg(long, default_value_t = 0)]
    kpis: usize,
    /// KPIs with these ids (comma-separated) besides the three of the small set: a pipeline
    /// set's, for a benchmark of it.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    kpi_ids: Vec<String>,
    /// A Kolada `municipality` answer (`{values: […]}` or a bare array of `{id, title, type}`).
    #[arg(long, value_name = "JSON")]
    areas: Option<std::path::PathBuf>,
    /// `FROM-TO`, both included.
    #[arg(long, default_value = "2020-2023", value_parser = years)]
    years: (i32, i32),
    /// Items per page at most, whatever `per_page` asks.
    #[arg(long, default_value_t = 5_000)]
    per_page_cap: usize,
    /// Name the paging links `next_page`/`previous_page` (v2) instead of `next_url`/`previous_url`.
    #[arg(long)]
    next_page: bool,
    /// 0 lets the system choose.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn years(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text.split_once('-').unwrap_or((text, text));
    let year = |y: &str| {
        y.trim()
            .parse::<i32>()
            .map_err(|_| format!("`{y}` is not a year"))
    };
    Ok((year(from)?, year(to)?))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut dataset = Dataset::small()
        .with_generated_kpis(args.kpis)
        .with_kpis_named(args.kpi_ids)
        .with_years(args.years.0..=args.years.1);
    if let Some(path) = &args.areas {
        dataset = dataset.with_areas_json(&std::fs::read(path)?)?;
    }
    let paging = match args.next_page {
        true => PagingNames::V2,
        false => PagingNames::V3,
    };
    let config = ServerConfig::default()
        .with_per_page_cap(args.per_page_cap)
        .with_paging(paging);
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = KoladaServer::start_on(addr, dataset, config)?;
    println!("{}", server.url());
    println!("{}", server.stats_url());
    std::future::pending::<()>().await;
    Ok(())
}
