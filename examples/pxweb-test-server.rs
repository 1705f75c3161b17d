//! Serves generated PxWeb tables on loopback for manual runs and benchmarks of the client:
//!
//! ```text
//! cargo run --release --example pxweb-test-server -- \
//!     --table "TAB9000:Region=300,Alder=20,Kon=3,ContentsCode=1:content,Tid=40:time" \
//!     --max-cells 150000 --max-calls 5 --window-secs 2 [--port 8080]
//! ```
//!
//! `--population schemas/areas.csv` serves `TAB9001`, the integration tests' two-million-cell
//! population table with the region codes of that file (as `PxTable::population` builds it),
//! before any `--table`; `bench/pxweb.sh` runs it so.
//!
//! Prints the first table's v1 URL and the v2 root, one per line, then serves until killed.
//! `GET /_stats` gives the server's counts as JSON (not counted, not rate limited).
//!
//! Owns: the command line. Must not: serve anything itself (`indikator::testkit::pxweb_server`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use indikator::testkit::pxweb_server::{PxTable, PxWebServer, ServerLimits};

/// The id of the `--population` table, as in `tests/it/pxweb.rs`.
const POPULATION: &str = "TAB9001";

#[derive(Parser)]
#[command(about = "A PxWeb test server (API v1 and PxWebApi 2.0) on 127.0.0.1")]
struct Args {
    /// `ID:Var=N[:elim|:time|:content],…`; repeat for more tables.
    #[arg(long, required_unless_present = "population", value_parser = PxTable::from_spec)]
    table: Vec<PxTable>,
    /// An areas CSV (`schemas/areas.csv`: codes in the first column, a header line): serve
    /// `TAB9001`, population by those regions × 20 ages × 3 sexes × 107 years.
    #[arg(long, value_name = "AREAS_CSV")]
    population: Option<std::path::PathBuf>,
    /// Cells one data request may select.
    #[arg(long, default_value_t = 150_000)]
    max_cells: u64,
    /// Values one v1 data request may select (summed over variables); unchecked when left out.
    #[arg(long)]
    max_values: Option<u64>,
    /// Requests admitted per window.
    #[arg(long, default_value_t = 30)]
    max_calls: u32,
    #[arg(long, default_value_t = 10)]
    window_secs: u64,
    /// Leave out SCB's `X-Rate-Limit-*` headers on v2 answers.
    #[arg(long)]
    no_rate_headers: bool,
    /// 0 lets the system choose.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let limits = ServerLimits {
        max_cells: args.max_cells,
        max_values: args.max_values,
        max_calls: args.max_calls,
        window: Duration::from_secs(args.window_secs),
        rate_headers: !args.no_rate_headers,
    };
    let mut tables = Vec::new();
    if let Some(path) = &args.population {
        let areas = std::fs::read_to_string(path)?;
        let regions: Vec<String> = areas
            .lines()
            .skip(1)
            .filter_map(|line| line.split(',').next())
            .filter(|code| !code.is_empty())
            .map(str::to_owned)
            .collect();
        tables.push(PxTable::population(POPULATION, &regions));
    }
    tables.extend(args.table);
    let first = tables[0].id.clone();
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let server = PxWebServer::start_on(addr, tables, limits)?;
    println!("{}", server.v1_table_url(&first));
    println!("{}", server.v2_root());
    std::future::pending::<()>().await;
    Ok(())
}
