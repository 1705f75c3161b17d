#!/usr/bin/env bash
# The PxWeb yardstick: the two-million-cell harvest (tests/it/pxweb.rs's population table, 313
# real region codes × 20 ages × 3 sexes × 107 years = 2 009 460 cells) against the loopback test
# server (examples/pxweb-test-server.rs) at 150 000 cells per request and 5 calls per 2 s, by
# indikator over API v1 and PxWebApi 2.0 and by pxwebpy (PyPI, v2 only) over the same server.
#
#   bash bench/pxweb.sh            # 3 runs of each (first time: a release build and a venv)
#   RUNS=1 bash bench/pxweb.sh     # quicker
#
# Each indikator run is a fresh project (schemas/ copied, one pipeline file, empty warehouse and
# state), so nothing is skipped as unchanged; each is timed by /usr/bin/time -v (wall, peak RSS)
# with INDIKATOR_LOG=indikator=debug (a JSON line per request: when it started and ended). The
# server's counts (GET /_stats: admitted requests with arrival times, data requests, 429s,
# too-many-cells refusals) are read before and after every run, and the runs are a window apart
# so that none inherits another's calls. The rate floor and the table: bench/pxweb_bench.py (its header
# explains the formula). Everything goes to target/bench-pxweb/; the table also to
# target/bench-pxweb/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}
max_cells=150000 max_calls=5 window=2
cells=$(( ($(wc -l < schemas/areas.csv) - 1) * 20 * 3 * 107 ))

cargo build --release --locked --bin indikator --example pxweb-test-server
indikator=$target_dir/release/indikator
server_bin=$target_dir/release/examples/pxweb-test-server

work=$root/target/bench-pxweb
mkdir -p "$work"
venv=$work/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pxweb' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pxwebpy==0.6.0
fi
py=$venv/bin/python
helper=$root/bench/pxweb_bench.py

rm -rf "$work/runs"
mkdir -p "$work/runs"
: > "$work/runs.jsonl"

source bench/server.sh
start_server "$work" "$server_bin" --population schemas/areas.csv --max-cells $max_cells \
  --max-calls $max_calls --window-secs $window
v1_url=$(sed -n 1p "$work/server.out")
v2_root=$(sed -n 2p "$work/server.out")
stats_url=${v2_root%/api/v2}/_stats
echo "server: $v1_url, $v2_root ($cells cells)"

pipeline() { # API → the pipeline file of tests/it/pxweb.rs
  case $1 in
    v1) printf 'kind = "pxweb"\nurl = "%s"\n' "$v1_url" ;;
    v2) printf 'kind = "pxweb2"\nurl = "%s"\ntable = "TAB9001"\n' "$v2_root" ;;
  esac | {
    printf 'id = "pxweb-folkmangd"\n[source]\n'
    cat
    cat <<'TOML'
producer = "scb"
[source.select]
Region = "*"
Alder = "*"
Kon = "*"
ContentsCode = ["BE0101N1"]
Tid = "*"
[map]
indicator = { column = "ContentsCode", codes = { BE0101N1 = "folkmangd_0_17" } }
area = "Region"
period = { column = "Tid", kind = "year" }
sex = { column = "Kon", codes = { "1" = "M", "2" = "F", "1+2" = "T" } }
age = "Alder"
unit = "count"
TOML
  }
}

quiet_window() { sleep $((window + 1)); } # the previous run's calls leave the server's window

for api in v1 v2; do
  for i in $(seq "$runs"); do
    dir=runs/indikator-$api-$i
    project=$work/$dir
    mkdir -p "$project/pipelines"
    cp -r schemas "$project/schemas"
    pipeline $api > "$project/pipelines/pxweb-folkmangd.toml"
    quiet_window
    "$py" "$helper" snap "$stats_url" "$project/stats-before.json"
    (cd "$project" && INDIKATOR_LOG=indikator=debug /usr/bin/time -v -o time.txt \
      "$indikator" --log-format json run pxweb-folkmangd > run.out 2> log.jsonl) || true
    "$py" "$helper" snap "$stats_url" "$project/stats-after.json"
    rows=$(cd "$project" && "$indikator" history pxweb-folkmangd 2>/dev/null \
      | sed -n 's/.* written *\([0-9]*\).*/\1/p' | head -1)
    printf '{"client":"indikator","api":"%s","dir":"%s","rows":%s}\n' $api $dir "${rows:-null}" \
      >> "$work/runs.jsonl"
    echo "indikator $api run $i: $(grep -o 'Elapsed.*' "$project/time.txt"), rows ${rows:-?}"
    rm -rf "$project/warehouse" "$project/state" "$project/schemas" # Parquet and raw pieces: ~100 MB a run
  done
done

for i in $(seq "$runs"); do
  dir=runs/pxwebpy-v2-$i
  mkdir -p "$work/$dir"
  quiet_window
  "$py" "$helper" snap "$stats_url" "$work/$dir/stats-before.json"
  (cd "$work/$dir" && /usr/bin/time -v -o time.txt "$py" "$helper" pxwebpy "$v2_root" TAB9001 \
    pxwebpy.json > run.out 2> run.err) || true
  "$py" "$helper" snap "$stats_url" "$work/$dir/stats-after.json"
  printf '{"client":"pxwebpy","api":"v2","dir":"%s"}\n' $dir >> "$work/runs.jsonl"
  echo "pxwebpy v2 run $i: $(grep -o 'Elapsed.*' "$work/$dir/time.txt")"
done

"$py" "$helper" report "$work" $max_cells $max_calls $window $cells | tee "$work/report.md"
