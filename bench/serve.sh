#!/usr/bin/env bash
# The daemon's yardstick: `indikator serve` (release build) with 20 pipelines (the three samples
# copied under 20 ids), measured from outside through /proc and the admin API:
#   (a) resident memory (VmRSS) after 10 s idle, target <= 40 MiB;
#   (b) CPU (utime + stime) over 30 s idle, target ~0;
#   (c) API latency p50/p99 of 5 000 GETs (/api/v1/runs, /api/v1/pipelines, /healthz), 50 at
#       once, each on its own connection (examples/admin_load.rs), while a run is held writing
#       by INDIKATOR_FAILPOINT=stage.written@pause, target p99 <= 50 ms;
#   (d) scheduler lag: the daemon's own indikator_scheduler_lag_seconds after LAG_SECS (default
#       120) of real time with one pipeline on a per-second schedule beside 19 per-minute ones;
#       and the same daemon driven over SIM_HOURS (default 1) of simulated time (tokio's paused
#       clock, examples/scheduler_sim.rs), with fires counted against slots.
#
#   bash bench/serve.sh
#   LAG_SECS=300 SIM_HOURS=2 bash bench/serve.sh
#
# Everything goes to target/bench-serve/ (logs, the table in report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
lag_secs=${LAG_SECS:-120}
sim_hours=${SIM_HOURS:-1}
cargo build --release --locked --bin indikator --example admin_load --example scheduler_sim
indikator=$target_dir/release/indikator
work=$root/target/bench-serve
rm -rf "$work" && mkdir -p "$work"
tck=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A project with 20 pipelines: sample i mod 3 under id bench-NN, on schedule $1 for the first
# and $2 for the others.
project() {
  local dir=$1 first=$2 others=$3
  mkdir -p "$dir/pipelines"
  cp -r schemas "$dir/schemas"
  cp -r pipelines/samples/data "$dir/pipelines/data"
  local samples=(pipelines/samples/*.toml)
  for i in $(seq -w 1 20); do
    local sample=${samples[$(( 10#$i % ${#samples[@]} ))]}
    local cron=$others
    [ "$i" = 01 ] && cron=$first
    sed -e "s/^id = .*/id = \"bench-$i\"\nschedule = \"$cron\"\ntimezone = \"UTC\"/" \
      "$sample" > "$dir/pipelines/bench-$i.toml"
  done
}

# Starts serve in $1 on a free port with extra environment; sets pid and port.
start() {
  local dir=$1; shift
  port=$(free_port)
  printf '[serve]\ngrace_secs = 2\n\n[admin]\nbind = "127.0.0.1:%s"\n' "$port" > "$dir/indikator.toml"
  (cd "$dir" && exec env "$@" "$indikator" serve) 2>"$dir/serve.log" &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "serve did not start:"; cat "$dir/serve.log"; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# (a) and (b): monthly schedules, idle.
idle=$work/idle
project "$idle" "0 0 1 * *" "0 0 1 * *"
start "$idle"
sleep 10
rss=$(rss_kib "$pid")
t0=$(cpu_ticks "$pid")
sleep 30
t1=$(cpu_ticks "$pid")
stop
rss_mib=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
cpu_s=$(awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN {printf "%.2f", (b - a) / t}')

# (c): a run held writing, then the load.
held=$work/held
project "$held" "0 0 1 * *" "0 0 1 * *"
start "$held" INDIKATOR_FAILPOINT=stage.written@pause
run=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/pipelines/bench-01/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')
for _ in $(seq 1 300); do
  grep -q "failpoint stage.written: paused" "$held/serve.log" && break
  sleep 0.1
done
grep -q "failpoint stage.written: paused" "$held/serve.log" || { echo "run $run never paused"; exit 1; }
"$target_dir/release/examples/admin_load" "$port" 5000 50 | tee "$work/load.json"
status=$(curl -fsS "http://127.0.0.1:$port/api/v1/runs/$run" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
[ "$status" = running ] || { echo "the held run is $status, not running"; exit 1; }
held_rss=$(awk -v k="$(rss_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}')
stop

# (d) real time: one pipeline every second, the others every minute.
lag=$work/lag
project "$lag" "* * * * * *" "0 * * * * *"
start "$lag"
sleep "$lag_secs"
curl -fsS "http://127.0.0.1:$port/metrics" > "$work/lag-metrics.txt"
lag_rss=$(awk -v k="$(rss_kib "$pid")" 'BEGIN {printf "%.1f", k / 1024}')
stop

# (d) simulated: the same project, a fresh state, SIM_HOURS of paused time.
sim=$work/sim
project "$sim" "* * * * * *" "0 * * * * *"
printf '[serve]\ngrace_secs = 2\n' > "$sim/indikator.toml"
"$target_dir/release/examples/scheduler_sim" "$sim" "$sim_hours" 2>"$sim/sim.log" | tee "$work/sim.txt"

python3 - "$work" "$rss_mib" "$cpu_s" "$held_rss" "$lag_secs" "$lag_rss" "$sim_hours" <<'PY' | tee "$work/report.md"
import json, re, sys
work, rss, cpu, held_rss, lag_secs, lag_rss, sim_hours = sys.argv[1:]
load = json.load(open(f"{work}/load.json"))

def lag_of(text):
    buckets, total, count = [], 0.0, 0
    for line in text.splitlines():
        m = re.match(r'indikator_scheduler_lag_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float(m.group(1)), int(float(m.group(2)))))
        elif line.startswith("indikator_scheduler_lag_seconds_sum"):
            total = float(line.split()[-1])
        elif line.startswith("indikator_scheduler_lag_seconds_count"):
            count = int(float(line.split()[-1]))
    def quantile(q):
        for bound, cumulative in buckets:
            if count and cumulative >= q * count:
                return f"<= {bound * 1000:g} ms"
        return "n/a"
    mean = f"{total / count * 1000:.1f} ms" if count else "n/a"
    return count, mean, quantile(0.5), quantile(0.99)

real = lag_of(open(f"{work}/lag-metrics.txt").read())
sim_text = open(f"{work}/sim.txt").read()
sim = lag_of(sim_text)
fires = [l.split() for l in sim_text.splitlines() if l.startswith("fires ")]
def fired(kind):
    rows = [r for r in fires if (r[1] == "bench-01") == (kind == "second")]
    slots = sum(int(r[r.index("slots") + 1]) for r in rows)
    got = sum(int(r[r.index("fired") + 1]) for r in rows)
    return f"{got}/{slots}"
rows = [
    ("(a) idle RSS, 20 pipelines, after 10 s", f"{rss} MiB", "<= 40 MiB"),
    ("(b) idle CPU over 30 s (utime+stime)", f"{cpu} s", "~0"),
    ("(c) API p50, 5 000 GETs, 50 at once, run held", f"{load['p50_ms']:.2f} ms", ""),
    ("(c) API p99", f"{load['p99_ms']:.2f} ms", "<= 50 ms"),
    ("(c) API max / failures / req/s", f"{load['max_ms']:.1f} ms / {load['failures']} / {load['per_second']:.0f}", "0 failures"),
    ("(c) RSS with a run held, after the load", f"{held_rss} MiB", ""),
    (f"(d) lag, real {lag_secs} s: fires / mean / p50 / p99", f"{real[0]} / {real[1]} / {real[2]} / {real[3]}", "p99 <= 1 s"),
    (f"(d) RSS after {lag_secs} s of per-second runs", f"{lag_rss} MiB", ""),
    (f"(d) lag, simulated {sim_hours} h: fires / mean / p50 / p99", f"{sim[0]} / {sim[1]} / {sim[2]} / {sim[3]}", "p99 <= 1 s"),
    (f"(d) simulated fires/slots: per-second, per-minute", f"{fired('second')}, {fired('minute')}", "all"),
]
print("| figure | got | target |\n|---|---|---|")
for name, got, target in rows:
    print(f"| {name} | {got} | {target} |")
PY
