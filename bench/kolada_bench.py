"""Helper of bench/kolada.sh: the fewest requests the API allows, snapshots of the test server's
counts, and the report. Standard library only.

    kolada_bench.py minimum API_URL FROM-TO PIPELINE.toml...   # JSON: requests per pipeline
    kolada_bench.py snap STATS_URL OUT.json                    # the server's GET /_stats, saved
    kolada_bench.py report WORK_DIR RUNS

The minimum. Kolada takes at most 25 ids in a path segment and answers at most 5 000 rows a
page, so a pipeline needs at least one KPI metadata page per 25 KPIs and, for every query of
25 KPIs × 25 years (every municipality), as many data pages as the server has rows for it over
5 000. `minimum` asks exactly those queries of the same server, following `next_url`, and
counts the pages: the floor whatever indikator's `batch_ids` (default 20) is.

The rate floor. indikator throttles Kolada to 5 requests in any 1 s, so N requests (the whole
set in one process, one limiter) arrive no earlier than floor = (ceil(N / 5) - 1) s from the
first to the last: `wall/floor` is the run's wall time over that, and `span` the server's view
of the same run (first to last arrival).
"""

import json
import math
import os
import re
import statistics
import sys
import tomllib
import urllib.request

PER_PAGE = 5000
MAX_IDS = 25
RATE = 5  # requests per second


def get_json(url):
    with urllib.request.urlopen(url, timeout=60) as answer:
        return json.load(answer)


def pages(url):
    """How many pages the list at `url` has, following next_url (or v2's next_page)."""
    count = 0
    while url:
        page = get_json(url)
        count += 1
        url = (page.get("next_url") or page.get("next_page")) if page.get("values") else None
    return count


def chunks(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def minimum(api, years, files):
    first, last = (int(y) for y in years.split("-"))
    every_year = [str(y) for y in range(first, last + 1)]
    out = {}
    for path in files:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
        source = spec["source"]
        kpis = source["kpi"]
        wanted = source.get("year", "*")
        years_of = every_year if wanted == "*" else [str(y) for y in wanted]
        assert source.get("municipality", "*") == "*", f"{path}: the bench counts '*' pipelines"
        requests = 0
        for batch in chunks(kpis, MAX_IDS):
            requests += pages(f"{api}/kpi/{','.join(batch)}?per_page={PER_PAGE}")
            for span in chunks(years_of, MAX_IDS):
                requests += pages(
                    f"{api}/data/kpi/{','.join(batch)}/year/{','.join(span)}?per_page={PER_PAGE}")
        out[spec["id"]] = {"kpis": len(kpis), "years": len(years_of), "minimum": requests}
    json.dump(out, sys.stdout, indent=1)


def snap(url, out):
    with urllib.request.urlopen(url, timeout=10) as answer:
        data = answer.read()
    with open(out, "wb") as f:
        f.write(data)


def gnu_time(path):
    """Wall seconds and peak RSS (MiB) from `/usr/bin/time -v`."""
    text = open(path).read()
    clock = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    hours, minutes, seconds = clock.groups()
    wall = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)) / 1024
    return wall, rss


def seen(before, after):
    """What the server saw between two snapshots: requests by kind, faults, arrival span."""
    log = after["log"][len(before["log"]):]
    arrivals = [entry["at_ms"] / 1000 for entry in log]
    return {
        "requests": len(log),
        "kpi": after["kpi_pages"] - before["kpi_pages"],
        "data": after["data_pages"] - before["data_pages"],
        "other": len(log) - (after["kpi_pages"] - before["kpi_pages"])
        - (after["data_pages"] - before["data_pages"]),
        "refused": after["refused"] - before["refused"],
        "span": max(arrivals) - min(arrivals) if arrivals else 0.0,
    }


def report(work, runs):
    floor_of = json.load(open(os.path.join(work, "minimum.json")))
    least = sum(p["minimum"] for p in floor_of.values())
    per = []
    for i in range(1, int(runs) + 1):
        run = os.path.join(work, "runs", str(i))
        load = lambda name: json.load(open(os.path.join(run, name)))
        counts = seen(load("stats-before.json"), load("stats-after.json"))
        wall, rss = gnu_time(os.path.join(run, "time.txt"))
        out = open(os.path.join(run, "run.out")).read()
        written = sum(int(n) for n in re.findall(r"(\d+) written", out))
        succeeded = out.count(": succeeded")
        floor = (math.ceil(counts["requests"] / RATE) - 1) * 1.0
        per.append({"wall": wall, "rss": rss, "floor": floor, "written": written,
                    "succeeded": succeeded, **counts})
    med = lambda key: statistics.median(p[key] for p in per)
    lines = [
        f"Kolada pipeline set: {len(floor_of)} pipelines, "
        f"{sum(p['kpis'] for p in floor_of.values())} KPIs, "
        f"{next(iter(floor_of.values()))['years']} years; {runs} runs (medians)",
        "",
        "| figure | value |",
        "|---|---|",
        f"| requests made (KPI metadata + data pages) | {med('requests'):.0f} "
        f"({med('kpi'):.0f} + {med('data'):.0f}; other {med('other'):.0f}, refused {med('refused'):.0f}) |",
        f"| fewest the API allows (25 ids a segment, full pages) | {least} |",
        f"| made / fewest | {med('requests') / least:.2f} |",
        f"| wall time of `indikator run --all` | {med('wall'):.2f} s (best {min(p['wall'] for p in per):.2f} s) |",
        f"| 5 requests/s floor, (ceil(N/5) - 1) s | {med('floor'):.2f} s |",
        f"| wall / floor | {med('wall') / med('floor'):.2f} |",
        f"| server's span, first to last arrival | {med('span'):.2f} s |",
        f"| rows written | {med('written'):.0f} ({med('succeeded'):.0f} pipelines succeeded) |",
        f"| peak RSS | {med('rss'):.1f} MiB |",
        "",
        "| pipeline | KPIs | fewest requests |",
        "|---|---|---|",
    ]
    lines += [f"| {pid} | {p['kpis']} | {p['minimum']} |" for pid, p in sorted(floor_of.items())]
    print("\n".join(lines))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"minimum": lambda: minimum(args[0], args[1], args[2:]),
     "snap": lambda: snap(*args),
     "report": lambda: report(*args)}[command]()
