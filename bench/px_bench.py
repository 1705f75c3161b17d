"""Helper of bench/px.sh: the generated table, the pyaxis contender, the checks and the report.

    px_bench.py gen AREAS.csv OUT_DIR           # table.px, table.json (same cells), expected.json
    px_bench.py pyaxis TABLE.px                 # JSON: what pyaxis read (needs pyaxis, pandas)
    px_bench.py report WORK_DIR RUNS            # checks every run's output; the table, as Markdown

The table is SCB's population shape: 313 real region codes (`schemas/areas.csv`, so that a run
harmonises every row) x 20 ages x 3 sexes x 1 content x 54 years = 1 014 120 cells, stub
Region/Alder/Kon and heading ContentsCode/Tid, as SCB writes it: CHARSET="ANSI" in
Windows-1252 (the labels have å, ä, ö, so the decoder's strict UTF-8 attempt fails and it falls
back), VARIABLECODE, CODES and VALUES for every variable, TIMEVAL TLIST(A1). One cell in 97 is
`".."` (DATASYMBOL2) and one in 211 `"-"` (DATASYMBOLNIL); the rest are whole numbers.
`table.json` holds exactly the same cells as JSON-stat 2.0 (markers as `status`, their values
null), for the decode-time comparison with the JSON-stat path. Standard library only, except
`pyaxis`, which runs in the bench's venv.
"""

import csv
import json
import random
import statistics
import sys
from pathlib import Path

AGES = [str(age) for age in range(20)]
SEXES = [("1", "män"), ("2", "kvinnor"), ("1+2", "totalt")]
CONTENT = ("BE0101N1", "Folkmängd")
YEARS = [str(year) for year in range(1970, 2024)]
SUPPRESSED_EVERY, NIL_EVERY = 97, 211


def cells(regions):
    """Every cell in row-major order (last dimension fastest): a number or a marker."""
    rng = random.Random(20261202)
    count = len(regions) * len(AGES) * len(SEXES) * len(YEARS)
    for i in range(count):
        if i % SUPPRESSED_EVERY == 0:
            yield ".."
        elif i % NIL_EVERY == 0:
            yield "-"
        else:
            yield rng.randrange(0, 5000)


def px_list(values):
    """Quoted values, ten to a line, as PX writers wrap long lists after a comma."""
    quoted = [f'"{value}"' for value in values]
    return ",\n".join(",".join(quoted[i:i + 10]) for i in range(0, len(quoted), 10))


def write_px(path, regions, values):
    names = [name for _, name in regions]
    codes = [code for code, _ in regions]
    header = [
        'CHARSET="ANSI";',
        'AXIS-VERSION="2010";',
        'LANGUAGE="sv";',
        'CREATION-DATE="20240101 08:00";',
        'DECIMALS=0;',
        'SHOWDECIMALS=0;',
        'MATRIX="BE0101N1";',
        'SUBJECT-CODE="BE";',
        'SUBJECT-AREA="Befolkning";',
        'TITLE="Folkmängd efter region, ålder, kön, tabellinnehåll och år";',
        'CONTENTS="Folkmängd";',
        'UNITS="antal";',
        'STUB="region","ålder","kön";',
        'HEADING="tabellinnehåll","år";',
        'VARIABLECODE("region")="Region";',
        'VARIABLECODE("ålder")="Alder";',
        'VARIABLECODE("kön")="Kon";',
        'VARIABLECODE("tabellinnehåll")="ContentsCode";',
        'VARIABLECODE("år")="Tid";',
        f'VALUES("region")={px_list(names)};',
        f'VALUES("ålder")={px_list(age + " år" for age in AGES)};',
        f'VALUES("kön")={px_list(name for _, name in SEXES)};',
        f'VALUES("tabellinnehåll")="{CONTENT[1]}";',
        f'VALUES("år")={px_list(YEARS)};',
        f'TIMEVAL("år")=TLIST(A1),{px_list(YEARS)};',
        f'CODES("region")={px_list(codes)};',
        f'CODES("ålder")={px_list(AGES)};',
        f'CODES("kön")={px_list(code for code, _ in SEXES)};',
        f'CODES("tabellinnehåll")="{CONTENT[0]}";',
        'LAST-UPDATED("Folkmängd")="20240221 08:00";',
        'DATASYMBOL2="..";',
        'DATASYMBOLNIL="-";',
        'DATA=',
    ]
    row = len(YEARS)
    with open(path, "w", encoding="windows-1252", newline="\r\n") as out:
        out.write("\n".join(header) + "\n")
        for start in range(0, len(values), row):
            tokens = (f'"{v}"' if isinstance(v, str) else str(v) for v in values[start:start + row])
            out.write(" ".join(tokens) + "\n")
        out.write(";\n")


def write_jsonstat(path, regions, values):
    def category(pairs):
        return {"index": [code for code, _ in pairs], "label": dict(pairs)}

    status = {str(i): v for i, v in enumerate(values) if isinstance(v, str)}
    dataset = {
        "version": "2.0",
        "class": "dataset",
        "label": "Folkmängd efter region, ålder, kön, tabellinnehåll och år",
        "updated": "2024-02-21T08:00:00Z",
        "id": ["Region", "Alder", "Kon", "ContentsCode", "Tid"],
        "size": [len(regions), len(AGES), len(SEXES), 1, len(YEARS)],
        "dimension": {
            "Region": {"label": "region", "category": category(regions)},
            "Alder": {"label": "ålder", "category": category([(a, a + " år") for a in AGES])},
            "Kon": {"label": "kön", "category": category(SEXES)},
            "ContentsCode": {"label": "tabellinnehåll", "category": category([CONTENT])},
            "Tid": {"label": "år", "category": category([(y, y) for y in YEARS])},
        },
        "value": [None if isinstance(v, str) else v for v in values],
        "status": status,
        "role": {"time": ["Tid"], "geo": ["Region"], "metric": ["ContentsCode"]},
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(dataset, out, ensure_ascii=False, separators=(",", ":"))


def gen(areas_csv, out_dir):
    with open(areas_csv, encoding="utf-8") as f:
        regions = [(row["area_code"], row["name"]) for row in csv.DictReader(f)]
    values = list(cells(regions))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_px(out / "table.px", regions, values)
    write_jsonstat(out / "table.json", regions, values)
    numbers = [v for v in values if not isinstance(v, str)]
    expected = {
        "cells": len(values),
        "non_null": len(numbers),
        "marked": len(values) - len(numbers),
        "sum": sum(numbers),
        "sizes": [len(regions), len(AGES), len(SEXES), 1, len(YEARS)],
    }
    (out / "expected.json").write_text(json.dumps(expected))
    print(json.dumps(expected))


def read_with_pyaxis(path):
    """What pyaxis parsed, in the figures the check compares: cells, numeric cells and their sum."""
    from pandas import to_numeric
    from pyaxis import pyaxis

    frame = pyaxis.parse(path, encoding="windows-1252")["DATA"]
    numbers = to_numeric(frame["DATA"], errors="coerce").dropna()
    print(json.dumps({
        "cells": len(frame),
        "non_null": len(numbers),
        "sum": int(numbers.sum()),
        "columns": list(frame.columns),
    }))


def measured(run_dir):
    """Wall seconds (the shell's clock) and peak RSS in MiB (/usr/bin/time -v) of one run."""
    wall = int((run_dir / "wall_us").read_text()) / 1e6
    for line in (run_dir / "time.txt").read_text().splitlines():
        if line.strip().startswith("Maximum resident set size"):
            return wall, int(line.rsplit(" ", 1)[1]) / 1024
    raise ValueError(f"no peak RSS in {run_dir / 'time.txt'}")


def check(contender, output, expected):
    """Why `output` (the contender's stdout) disagrees with the generated table, or None."""
    got = json.loads(output)
    if contender == "pyaxis":
        want = {k: expected[k] for k in ("cells", "non_null", "sum")}
        have = {k: got[k] for k in want}
    elif contender.startswith("inspect"):
        want = {k: expected[k] for k in ("cells", "non_null", "marked", "sizes")}
        have = {
            "cells": got["cells"],
            "non_null": got["non_null"],
            "marked": sum(got["status_counts"].values()),
            "sizes": [d["size"] for d in got["dimensions"]],
        }
    else:  # run-*: rows written and the sum of their values, read back from the warehouse
        want = {"rows": expected["cells"], "sum": expected["sum"]}
        have = {"rows": got["rows"], "sum": got["sum"]}
    return None if have == want else f"expected {want}, got {have}"


def report(work, runs):
    work = Path(work)
    expected = json.loads((work / "data" / "expected.json").read_text())
    rows = {}
    failures = []
    for line in (work / "runs.jsonl").read_text().splitlines():
        run = json.loads(line)
        wall, rss = measured(work / run["dir"])
        problem = check(run["contender"], (work / run["dir"] / "out.json").read_text(), expected)
        if problem:
            failures.append(f"{run['dir']}: {problem}")
        rows.setdefault(run["contender"], []).append((wall, rss))
    median = {name: (statistics.median(w for w, _ in r), statistics.median(m for _, m in r))
              for name, r in rows.items()}
    mb = (work / "data" / "table.px").stat().st_size / 1e6
    lines = [
        f"PX bench: {expected['cells']:,} cells ({mb:.1f} MB .px), {runs} runs each, medians",
        "",
        "| contender | wall s | peak RSS MiB | Mcells/s |",
        "|---|---|---|---|",
    ]
    for name, (wall, rss) in median.items():
        lines.append(f"| {name} | {wall:.3f} | {rss:.1f} | {expected['cells'] / wall / 1e6:.1f} |")
    px, js, pyaxis = (median[k][0] for k in ("inspect-px", "inspect-jsonstat", "pyaxis"))
    lines += [
        "",
        f"- PX decode vs pyaxis: {pyaxis / px:.1f}x faster (target >= 10x)",
        f"- PX decode / JSON-stat decode, same cells: {px / js:.2f} (target <= 2)",
        f"- run px / run jsonstat: {median['run-px'][0] / median['run-jsonstat'][0]:.2f}",
        f"- outputs checked: {'all agree with the generated table' if not failures else 'FAILED'}",
    ]
    lines += [f"  - {failure}" for failure in failures]
    print("\n".join(lines))
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "gen":
        gen(*args)
    elif command == "pyaxis":
        read_with_pyaxis(*args)
    elif command == "report":
        report(args[0], int(args[1]))
    else:
        sys.exit(f"unknown command {command}")
