#!/usr/bin/env bash
# The Kolada yardstick: the repository's Kolada pipeline set (pipelines/kolada-*.toml, every KPI
# over every municipality and region and year = "*") harvested from the loopback Kolada v3 test
# server (examples/kolada-test-server.rs) serving those KPIs over Kolada's 312 real areas
# (fixtures/real/pykolada/municipality.json) and two groups, 1990 to this year, 5 000 rows a page.
#
#   bash bench/kolada.sh            # 3 runs of the set (first time: a release build)
#   RUNS=1 bash bench/kolada.sh     # quicker
#
# Reported: requests made against the fewest the API allows (every query at Kolada's limit of 25
# ids per path segment, every page full; counted by fetching exactly those queries from the same
# server), and wall time against the floor that indikator's own 5 requests/s throttle sets. Each
# run is a fresh project (schemas/ copied, the pipelines pointed at the server, empty warehouse
# and state), so nothing is skipped as unchanged, timed by /usr/bin/time -v; the server's counts
# (GET /_stats) are read before and after. Everything goes to target/bench-kolada/; the table
# also to target/bench-kolada/report.md. The formulas: bench/kolada_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
areas=$(cd ../shared/fixtures/real/pykolada && pwd)/municipality.json
years=1990-$(date -u +%Y)

cargo build --release --locked --bin indikator --example kolada-test-server
indikator=$target_dir/release/indikator
server_bin=$target_dir/release/examples/kolada-test-server
helper=$root/bench/kolada_bench.py

work=$root/target/bench-kolada
rm -rf "$work" && mkdir -p "$work/runs"
kpis=$(grep -h '^kpi' pipelines/kolada-*.toml | grep -o '[A-Z][0-9]\{5\}' | sort -u | paste -sd, -)

source bench/server.sh
start_server "$work" "$server_bin" --kpi-ids "$kpis" --areas "$areas" --years "$years" \
  --per-page-cap 5000
api=$(sed -n 1p "$work/server.out")
stats_url=$(sed -n 2p "$work/server.out")
echo "server: $api (KPIs $kpis, years $years)"

python3 "$helper" minimum "$api" "$years" pipelines/kolada-*.toml > "$work/minimum.json"

for i in $(seq "$runs"); do
  project=$work/runs/$i
  mkdir -p "$project/pipelines"
  cp -r schemas "$project/schemas"
  for file in pipelines/kolada-*.toml; do
    sed "s|^kind = \"kolada\"|&\nurl = \"$api\"|" "$file" > "$project/pipelines/$(basename "$file")"
  done
  sleep 1.1 # the previous run's requests leave the throttle's window
  python3 "$helper" snap "$stats_url" "$project/stats-before.json"
  (cd "$project" && /usr/bin/time -v -o time.txt "$indikator" run --all > run.out 2> run.err) || true
  python3 "$helper" snap "$stats_url" "$project/stats-after.json"
  echo "run $i: $(grep -o 'Elapsed.*' "$project/time.txt"), $(grep -c succeeded "$project/run.out") succeeded"
  rm -rf "$project/warehouse/raw"
done

python3 "$helper" report "$work" "$runs" | tee "$work/report.md"
