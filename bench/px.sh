#!/usr/bin/env bash
# The PC-Axis yardstick: a generated 1 014 120-cell `.px` (SCB's population shape over the 313
# real region codes of schemas/areas.csv, Windows-1252, CHARSET="ANSI"; bench/px_bench.py says
# how it is made) decoded whole-process by
#   inspect-px        indikator inspect table.px --json   (the PX decoder, nothing else)
#   inspect-jsonstat  indikator inspect table.json --json (the same cells as JSON-stat 2.0)
#   pyaxis            pyaxis.parse (PyPI) plus pandas' to_numeric over its DATA column
#   run-px, run-jsonstat  indikator run of a file pipeline on each: decode, harmonise, validate,
#                     write the partitions, in a fresh project each time
# with every output checked against the generated table (cells, numeric cells, markers,
# dimension sizes; pyaxis and the runs also the sum of the values, the runs read back from the
# warehouse with DuckDB).
#
#   bash bench/px.sh            # 3 runs of each (first time: a release build and a venv)
#   RUNS=1 bash bench/px.sh     # quicker
#
# Wall time from the shell's clock around each process (µs; /usr/bin/time -v rounds to 10 ms),
# peak RSS from /usr/bin/time -v. Everything goes to target/bench-px/; the table
# also to target/bench-px/report.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
runs=${RUNS:-3}

cargo build --release --locked --bin indikator
indikator=$target_dir/release/indikator

work=$root/target/bench-px
mkdir -p "$work"
venv=$work/.venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyaxis, duckdb' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pyaxis==0.4.3 duckdb==2.0.0
fi
py=$venv/bin/python
helper=$root/bench/px_bench.py

[ -f "$work/data/expected.json" ] || "$py" "$helper" gen schemas/areas.csv "$work/data" > /dev/null
rm -rf "$work/runs"
mkdir -p "$work/runs"
: > "$work/runs.jsonl"

pipeline() { # format file → a file pipeline that maps the table as the SCB sample does
  cat <<TOML
id = "folkmangd"
[source]
kind = "file"
path = "$work/data/$2"
format = "$1"
producer = "scb"
table = "BE0101N1"
[map]
indicator = { column = "ContentsCode", codes = { BE0101N1 = "folkmangd_0_17" } }
area = "Region"
period = { column = "Tid", kind = "year" }
sex = { column = "Kon", codes = { "1" = "M", "2" = "F", "1+2" = "T" } }
age = "Alder"
unit = "count"
TOML
}

timed() { # contender run command... → runs/<contender>-<run>/{time.txt,out.json}
  local contender=$1 i=$2
  shift 2
  local dir=runs/$contender-$i
  mkdir -p "$work/$dir"
  local start end
  start=$(date +%s%N)
  (cd "$work/$dir" && /usr/bin/time -v -o time.txt "$@" > out.json 2> err.txt) || {
    echo "$contender run $i failed; see $work/$dir/err.txt" >&2
    exit 1
  }
  end=$(date +%s%N)
  echo $(( (end - start) / 1000 )) > "$work/$dir/wall_us" # time -v rounds to 10 ms
  printf '{"contender":"%s","dir":"%s"}\n' "$contender" "$dir" >> "$work/runs.jsonl"
  echo "$contender run $i: $(( $(cat "$work/$dir/wall_us") / 1000 )) ms"
}

read_back() { # project → JSON: rows and the sum of their values in its warehouse
  "$py" - "$1" <<'PY'
import json, sys, duckdb
rows, total = duckdb.sql(
    f"select count(*), sum(value) from read_parquet('{sys.argv[1]}/warehouse/observations/**/*.parquet')"
).fetchall()[0]
print(json.dumps({"rows": rows, "sum": int(total)}))
PY
}

for i in $(seq "$runs"); do
  timed inspect-px "$i" "$indikator" inspect "$work/data/table.px" --json
  timed inspect-jsonstat "$i" "$indikator" inspect "$work/data/table.json" --json
  timed pyaxis "$i" "$py" "$helper" pyaxis "$work/data/table.px"
  for format in px jsonstat; do
    file=table.px
    [ $format = jsonstat ] && file=table.json
    project=$work/runs/project-$format-$i
    mkdir -p "$project/pipelines"
    cp -r schemas "$project/schemas"
    pipeline $format $file > "$project/pipelines/folkmangd.toml"
    # The run's own stdout is its summary; out.json is the warehouse read back after it.
    timed run-$format "$i" sh -c "cd '$project' && '$indikator' run folkmangd > run.out"
    read_back "$project" > "$work/runs/run-$format-$i/out.json"
    rm -rf "$project"
  done
done

"$py" "$helper" report "$work" "$runs" | tee "$work/report.md"
