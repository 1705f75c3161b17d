#!/usr/bin/env bash
# Times indikator against Polars on the shared yardstick (../shared/bench, see its BASELINES.md):
# a 10-million-cell JSON-stat table and a 2-million-row Windows-1252 survey CSV, each run by both
# programs in turn, outputs checked, medians of wall time and peak RSS reported.
#
#   bash bench/run.sh            # 3 runs each of jsonstat and csv (first time: venv + ~150 MB of data)
#   RUNS=1 bash bench/run.sh     # quicker
#
# The shared folder is read-only, so it is copied to target/bench/ (with ../shared linked beside
# it, where the generator looks for SCB's region list). Results: target/bench/bench/out/results-*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shared=$(cd ../shared && pwd)
cargo build --release --locked
work=target/bench
if [ ! -d "$work/bench" ]; then
  mkdir -p "$work"
  cp -r "$shared/bench" "$work/bench"
  chmod -R u+w "$work/bench"
fi
ln -sfn "$shared" "$work/shared"
cd "$work/bench"
./setup.sh >/dev/null
[ -f data/manifest.json ] || .venv/bin/python gen.py
export INDIKATOR="$root/target/release/indikator"
for kind in jsonstat csv; do
  .venv/bin/python peers.py --runs "${RUNS:-3}" --small-runs 0 --only "^(polars|indikator)/$kind\$" \
    --add "indikator:$kind:contenders/indikator.sh $kind {input} {out}"
  cp out/results.json "out/results-$kind.json"
done
# The figure that counts: Polars' median wall time over indikator's, and indikator's peak RSS.
.venv/bin/python - <<'PY'
import json
for kind in ("jsonstat", "csv"):
    runs = {r["peer"]: r for r in json.load(open(f"out/results-{kind}.json"))}
    ind, pol = runs["indikator"], runs["polars"]
    print(f"{kind}: indikator {ind['wall_median']:.2f} s, {ind['rss_median_mib']:.0f} MiB, checks {ind['checks']}; "
          f"polars {pol['wall_median']:.2f} s, {pol['rss_median_mib']:.0f} MiB; "
          f"indikator is {pol['wall_median'] / ind['wall_median']:.2f}x faster")
PY
