"""Helper of bench/pxweb.sh: the pxwebpy contender, snapshots of the test server's counts, and
the report. Standard library only, except `pxwebpy` itself (in the bench's venv).

    pxweb_bench.py snap STATS_URL OUT.json              # the server's GET /_stats, saved
    pxweb_bench.py pxwebpy V2_ROOT TABLE OUT.json       # pxwebpy fetches the whole table, rows counted
    pxweb_bench.py report WORK_DIR MAX_CELLS MAX_CALLS WINDOW_SECS CELLS

The rate floor. The server admits at most M calls in any W seconds, counting arrivals, and a
refused call (429) takes no slot. A run whose N admitted requests (config, metadata, data: every
request that reached a handler) arrive as early as that allows has its k-th request (k = 1..N)
at floor((k - 1) / M) * W after its first, so its last one at

    floor = (ceil(N / M) - 1) * W

after its first: the time the server's window forces, plus nothing for latency, decoding or
writing. `wall/floor` puts a run's wall time over that; the issue's target is
wall <= 1.05 * floor + 0.5 s. `span` is what the server saw of the same run (first arrival to
last arrival), which the floor bounds from below without any latency term.
"""

import importlib.metadata
import json
import math
import os
import re
import statistics
import sys
import time
import urllib.request
from datetime import datetime


def snap(url, out):
    with urllib.request.urlopen(url, timeout=10) as answer:
        data = answer.read()
    with open(out, "wb") as f:
        f.write(data)


def run_pxwebpy(root, table, out):
    started = time.monotonic()
    import pxweb  # counted: an import is part of what a user of the library waits for

    api = pxweb.PxApi(root, language="sv")
    rows = 0
    for row in api.get_table_data_iter(
        table,
        value_codes={
            "Region": ["*"],
            "Alder": ["*"],
            "Kon": ["*"],
            "ContentsCode": ["BE0101N1"],
            "Tid": ["*"],
        },
        show="code",
    ):
        rows += 1
    harvest = time.monotonic() - started
    with open(out, "w") as f:
        json.dump({"rows": rows, "harvest_s": harvest, "version": importlib.metadata.version("pxwebpy")}, f)


def gnu_time(path):
    """Wall seconds and peak RSS (MiB) from `/usr/bin/time -v -o path`."""
    text = open(path).read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    status = int(re.search(r"Exit status: (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): (\S+)", text).group(1))
              for kind in ("User", "System"))
    return seconds, rss_kib / 1024, status, cpu


def timestamp(text):
    # tracing-subscriber writes `2026-01-01T10:00:00.123456789Z`; Python reads 6 digits at most.
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "." + (frac + "000000")[:6] + "+00:00").timestamp()


def indikator_phases(log_path):
    """When the run's `fetched`, `decoded` and `committed` events were written (epoch seconds)."""
    found = {}
    for line in open(log_path, errors="replace"):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        message = event.get("fields", {}).get("message")
        if message in ("fetched", "decoded", "committed"):
            found[message] = timestamp(event["timestamp"])
    return found


def indikator_requests(log_path):
    """(start, end, status, method, url) of every attempt in a `--log-format json` debug log:
    the `request` event is written when the answer is read, with `elapsed_ms` since the slot
    was taken."""
    found = []
    for line in open(log_path, errors="replace"):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        fields = event.get("fields", {})
        if fields.get("message") != "request":
            continue
        end = timestamp(event["timestamp"])
        span = event.get("span", {})
        found.append((end - fields["elapsed_ms"] / 1000, end, fields.get("status"),
                      span.get("method"), span.get("url", "")))
    return sorted(found)


def server_window(before, after):
    """What the server saw between two snapshots."""
    log = after["log"][len(before["log"]):]
    admitted = [r for r in log if r["status"] != 429]
    data = [r for r in admitted if r["method"] == "POST"]
    arrivals = [r["at_ms"] / 1000 for r in admitted]
    return {
        "requests": len(admitted),
        "data": after["data_requests"] - before["data_requests"],
        "data_logged": len(data),
        "r429": after["rate_limited"] - before["rate_limited"],
        "too_many": after["too_many_cells"] - before["too_many_cells"],
        "span": max(arrivals) - min(arrivals) if arrivals else 0.0,
        "arrivals": arrivals,
    }


def slot_evidence(requests, max_calls, window):
    """For indikator's attempts in start order: how much later than the server would have allowed
    each one started (start_k - start_{k-M} - W, the server's own rule applied to our starts), and
    the latency of the call whose slot it waited for. The limiter counts a slot until one window
    after the answer was read, so the first should track the second."""
    starts = [r[0] for r in requests]
    late, held = [], []
    for k in range(max_calls, len(requests)):
        gap = starts[k] - starts[k - max_calls] - window
        if gap > -0.001:  # the call waited for the window, not for a piece in flight
            late.append(gap)
            held.append(requests[k - max_calls][1] - requests[k - max_calls][0])
    return late, held


def report(work, max_cells, max_calls, window, cells):
    minimum = math.ceil(cells / max_cells)
    runs = [json.loads(line) for line in open(os.path.join(work, "runs.jsonl")) if line.strip()]
    rows = []
    evidence = []
    for client, api in [("indikator", "v1"), ("indikator", "v2"), ("pxwebpy", "v2")]:
        mine = [r for r in runs if r["client"] == client and r["api"] == api]
        if not mine:
            continue
        per = []
        for r in mine:
            d = os.path.join(work, r["dir"])
            wall, rss, status, cpu = gnu_time(os.path.join(d, "time.txt"))
            seen = server_window(json.load(open(os.path.join(d, "stats-before.json"))),
                                 json.load(open(os.path.join(d, "stats-after.json"))))
            floor = (math.ceil(seen["requests"] / max_calls) - 1) * window
            one = {"wall": wall, "rss": rss, "status": status, "cpu": cpu, "floor": floor, **seen}
            if client == "indikator":
                requests = indikator_requests(os.path.join(d, "log.jsonl"))
                if requests:
                    one["harvest"] = requests[-1][1] - requests[0][0]
                    late, held = slot_evidence(requests, max_calls, window)
                    one["late"], one["held"] = late, held
                    phases = indikator_phases(os.path.join(d, "log.jsonl"))
                    if len(phases) == 3:
                        one["decode"] = phases["decoded"] - phases["fetched"]
                        one["commit"] = phases["committed"] - phases["decoded"]
                one["rows"] = r.get("rows")
            else:
                contender = json.load(open(os.path.join(d, "pxwebpy.json")))
                one["harvest"] = contender["harvest_s"]
                one["rows"] = contender["rows"]
            per.append(one)
        med = lambda key: statistics.median(p[key] for p in per if key in p)
        rows.append({
            "client": client, "api": api, "runs": len(per),
            "data": "/".join(sorted({str(p["data"]) for p in per})),
            "r429": "/".join(str(p["r429"]) for p in per),
            "too_many": sum(p["too_many"] for p in per),
            "requests": "/".join(sorted({str(p["requests"]) for p in per})),
            "wall": med("wall"), "best": min(p["wall"] for p in per), "harvest": med("harvest"), "span": med("span"),
            "floor": med("floor"), "rss": med("rss"), "cpu": med("cpu"),
            "walls": "/".join(f"{p['wall']:.2f}" for p in per),
            "failed": sum(p["status"] != 0 for p in per),
            "rows": "/".join(sorted({str(p.get("rows")) for p in per})),
        })
        if client == "indikator":
            late = [g for p in per for g in p.get("late", [])]
            held = [h for p in per for h in p.get("held", [])]
            if late:
                evidence.append((api, late, held, per))

    print(f"\n{cells} cells, {max_cells} cells per request, {max_calls} calls per {window:g} s; "
          f"minimum data requests ceil(cells/maxCells) = {minimum}")
    print("floor = (ceil(N/M) - 1) * W over the N admitted requests of a run; "
          "target wall <= 1.05 * floor + 0.5 s\n")
    head = ("client", "API", "data req", "min", "429s", "N req", "wall med", "best", "harvest", "span",
            "floor", "wall/floor", "harvest/floor", "target", "peak RSS", "CPU")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        target = 1.05 * r["floor"] + 0.5
        ok = "ok" if r["wall"] <= target else "OVER"
        print(f"| {r['client']} | {r['api']} | {r['data']} | {minimum} | {r['r429']} | "
              f"{r['requests']} | {r['wall']:.2f} s | {r['best']:.2f} s | {r['harvest']:.2f} s | {r['span']:.2f} s | "
              f"{r['floor']:.0f} s | {r['wall'] / r['floor']:.2f} | {r['harvest'] / r['floor']:.2f} | "
              f"{target:.2f} s {ok} | "
              f"{r['rss']:.0f} MiB | {r['cpu']:.2f} s |")
    print("\nwall = process wall time (indikator: harvest + decode + Parquet; pxwebpy: import + "
          "harvest + rows as dicts); harvest = first request start to last answer read "
          "(indikator: its debug log; pxwebpy: import to last row, timed in-process); span = server's first to last "
          "arrival; CPU = user + system. Median of the runs; 429s per run.")
    for r in rows:
        extra = []
        if r["failed"]:
            extra.append(f"{r['failed']} runs FAILED")
        if r["too_many"]:
            extra.append(f"{r['too_many']} too-many-cells refusals")
        print(f"{r['client']} {r['api']}: {r['runs']} runs, rows {r['rows']}, walls {r['walls']} s"
              + (", " + ", ".join(extra) if extra else ""))
    for api, late, held, per in evidence:
        print(f"\nindikator {api}: a call that waited for the window started "
              f"{statistics.mean(late) * 1000:.0f} ms (median {statistics.median(late) * 1000:.0f},"
              f" max {max(late) * 1000:.0f}) later than the server allowed (start_k - start_(k-M) - W);"
              f" the call holding its slot took {statistics.mean(held) * 1000:.0f} ms "
              f"(median {statistics.median(held) * 1000:.0f}) from start to answer read "
              f"[{len(late)} calls over {len(per)} runs]")
        lost = [p["harvest"] - p["floor"] for p in per if "harvest" in p]
        tail = [p["wall"] - p["harvest"] for p in per if "harvest" in p]
        print(f"  harvest - floor: median {statistics.median(lost):.2f} s; "
              f"wall - harvest (start-up, decode, Parquet): median {statistics.median(tail):.2f} s")
        decode = [p["decode"] for p in per if "decode" in p]
        commit = [p["commit"] for p in per if "commit" in p]
        if decode:
            print(f"  after the last answer: `fetched` -> `decoded` median {statistics.median(decode):.2f} s,"
                  f" `decoded` -> `committed` (harmonise, Parquet, raw archive, fsync) median "
                  f"{statistics.median(commit):.2f} s")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "snap":
        snap(*args)
    elif command == "pxwebpy":
        run_pxwebpy(*args)
    elif command == "report":
        work, max_cells, max_calls, window, cells = args
        report(work, int(max_cells), int(max_calls), float(window), int(cells))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
