"""Makes the bundled sample files in the shapes of the real sources (invented numbers, seeded).

    python3 pipelines/samples/data/generate.py    # rewrites the files beside this script

- scb_folkmangd_barn.json: JSON-stat 2.0 as SCB's PxWeb answers (population 0-17 by region,
  age group, sex and year; `..` for a few missing cells, one `-` for a true zero).
- lupp_fritid.csv: a Lupp-like survey export: Windows-1252, `;`, decimal comma, CRLF, empty
  `andel` when fewer than 5 answered and "för få svar" in one row.
- skolverket_behorighet.csv: a Skolverket-like export: UTF-8 with BOM, `,`, areas by NAME,
  school years `2022/23`, `.` for values not shown.
- scb_trangboddhet_barn.px: a PC-Axis file as SCB writes one (CHARSET="ANSI", Windows-1252,
  Swedish with an English translation, CODES and VARIABLECODE, TIMEVAL, wrapped lists): children
  in overcrowded households and all children by region, region of birth and year; `".."` for a
  few suppressed cells (DATASYMBOL2) and `"-"` for true zeros (DATASYMBOLNIL).
- liv_halsa_ung.xlsx: a Liv & hälsa ung-like Excel export (needs `pip install xlsxwriter`): a
  sheet about the survey, then `Resultat` with a title above the header, municipality codes
  stored as text (`0305`) and merged over each municipality's rows, a blank row between
  municipalities, `*` where fewer than 5 answered.
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(8)

REGIONS = {"00": "Riket", "01": "Stockholms län", "0114": "Upplands Väsby", "0180": "Stockholm",
           "03": "Uppsala län", "0330": "Knivsta", "0380": "Uppsala", "12": "Skåne län",
           "1280": "Malmö", "14": "Västra Götalands län", "1480": "Göteborg", "25": "Norrbottens län",
           "2584": "Kiruna"}
AGES = {"0-5": "0-5 år", "6-12": "6-12 år", "13-15": "13-15 år", "16-17": "16-17 år"}
SEXES = {"1": "män", "2": "kvinnor", "1+2": "totalt"}
YEARS = [str(y) for y in range(2020, 2025)]


def scb():
    dims = [("Region", REGIONS), ("Alder", AGES), ("Kon", SEXES), ("ContentsCode", {"BE0101N1": "Folkmängd"}),
            ("Tid", {y: y for y in YEARS})]
    values, status = [], {}
    base = {"00": 2_200_000, "01": 530_000, "03": 90_000, "12": 300_000, "14": 390_000, "25": 45_000}
    for region in REGIONS:
        size = base.get(region, 12_000 if region not in ("0180", "1280", "1480") else 150_000)
        for age in AGES:
            for sex in SEXES:
                for year in YEARS:
                    n = size * (0.3 if age == "0-5" else 0.35 if age == "6-12" else 0.2 if age == "13-15" else 0.15)
                    n = n * (1.0 if sex == "1+2" else 0.51 if sex == "1" else 0.49) * (1 + 0.01 * (int(year) - 2020))
                    values.append(round(n + rng.randint(-50, 50)))
    for cell in (7, 123, 444):  # not available
        values[cell] = None
        status[str(cell)] = ".."
    values[600] = None  # a true zero, as PxWeb writes it
    status["600"] = "-"
    dataset = {
        "version": "2.0", "class": "dataset", "label": "Folkmängd 0-17 år efter region, ålder, kön och år",
        "source": "SCB (exempeldata)", "updated": "2025-02-21T08:00:00Z",
        "id": [d for d, _ in dims], "size": [len(c) for _, c in dims],
        "dimension": {d: {"label": d, "category": {"index": {k: i for i, k in enumerate(c)}, "label": c}}
                      for d, c in dims},
        "value": values, "status": status,
        "role": {"time": ["Tid"], "metric": ["ContentsCode"]},
    }
    with open(os.path.join(HERE, "scb_folkmangd_barn.json"), "w", encoding="utf-8") as f:
        json.dump(dataset, f, ensure_ascii=False, indent=1)


QUESTIONS = {"F12": ["Mycket trygg", "Ganska trygg", "Ganska otrygg", "Mycket otrygg"],
             "F31": ["Ja", "Nej", "Vet inte – har inte provat"]}


def lupp():
    lines = ["kommun_kod;kommun;ar;arskurs;kon;fraga_id;svarsalternativ;andel;antal_svar"]
    for code, name in (("0114", "Upplands Väsby"), ("0330", "Knivsta"), ("2584", "Kiruna")):
        for year in ("2021", "2024"):
            for grade in ("åk 8", "gy 2"):
                for sex in ("Flicka", "Pojke", "Totalt"):
                    n = rng.randint(3, 160) if sex != "Totalt" else rng.randint(150, 320)
                    for q, answers in QUESTIONS.items():
                        shares = [rng.random() for _ in answers]
                        total = sum(shares)
                        for answer, share in zip(answers, shares):
                            andel = "" if n < 5 else f"{100 * share / total:.1f}".replace(".", ",")
                            lines.append(f"{code};{name};{year};{grade};{sex};{q};{answer};{andel};{n}")
    lines.append("2584;Kiruna;2024;gy 2;Pojke;F40;Ja;för få svar;2")
    with open(os.path.join(HERE, "lupp_fritid.csv"), "w", encoding="windows-1252", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")


def skolverket():
    lines = ["Kommun,Läsår,Kön,Andel behöriga (%),Antal elever"]
    for name in ("Stockholm", "Uppsala", "Knivsta", "Malmö", "Kiruna", "Riket"):
        for year in ("2021/22", "2022/23", "2023/24"):
            for sex in ("Flickor", "Pojkar", "Totalt"):
                pupils = rng.randint(9, 9000)
                share = "." if pupils < 10 else f"{rng.uniform(70, 95):.1f}"
                lines.append(f"{name},{year},{sex},{share},{pupils}")
    with open(os.path.join(HERE, "skolverket_behorighet.csv"), "w", encoding="utf-8-sig", newline="") as f:
        f.write("\n".join(lines) + "\n")


def px_list(values):
    quoted = [f'"{v}"' for v in values]
    return ",\n".join(",".join(quoted[i:i + 6]) for i in range(0, len(quoted), 6))


def trangboddhet():
    crowding = {"TOT": ("totalt", "total"), "TRÅNGB N2": ("trångbodda enligt norm 2", "overcrowded, norm 2")}
    birth = {"010": ("Sverige", "Sweden"), "020": ("Norden utom Sverige", "Nordic countries except Sweden"),
             "100": ("Övriga världen", "Rest of the world")}
    variables = [  # (sv name, en name, code, {code: (sv, en)})
        ("region", "region", "Region", {c: (n, n) for c, n in REGIONS.items()}),
        ("trångboddhet", "overcrowding", "Trangboddhet", crowding),
        ("födelseregion", "region of birth", "Fodelseregion", birth),
        ("år", "year", "Tid", {y: (y, y) for y in YEARS}),
    ]
    cells = []
    for region in REGIONS:
        children = 400_000 if len(region) == 2 else 6_000
        for crowded in crowding:
            for born in birth:
                for year in YEARS:
                    n = children * (0.85 if born == "010" else 0.03 if born == "020" else 0.12)
                    n *= 0.11 if crowded == "TOT" else 0.11 * (0.1 if born == "010" else 0.4)
                    n = round(n + rng.randint(-20, 20))
                    if (region, crowded, born, year) == ("2584", "TRÅNGB N2", "100", "2020"):
                        n = 0  # a true zero, as SCB writes it
                    cells.append('".."' if n < 10 and born == "020" else '"-"' if n == 0 else str(max(n, 1)))
    lines = ['CHARSET="ANSI";', 'AXIS-VERSION="2010";', 'LANGUAGE="sv";', 'LANGUAGES="sv","en";',
             'DECIMALS=0;', 'MATRIX="LE0105Boende02";', 'SUBJECT-CODE="LE";',
             'SUBJECT-AREA="Levnadsförhållanden";', 'SUBJECT-AREA[en]="Living conditions";',
             'TITLE="Personer 0-17 år efter region, trångboddhet, födelseregion och år (exempeldata)";',
             'TITLE[en]="Persons aged 0-17 by region, overcrowding, region of birth and year (sample data)";',
             'CONTENTS="Personer 0-17 år";', 'CONTENTS[en]="Persons aged 0-17";',
             'UNITS="antal";', 'UNITS[en]="number";',
             'STUB="region","trångboddhet","födelseregion";', 'STUB[en]="region","overcrowding","region of birth";',
             'HEADING="år";', 'HEADING[en]="year";']
    for sv, en, code, values in variables:
        lines.append(f'VARIABLECODE("{sv}")="{code}";')
        lines.append(f'VALUES("{sv}")={px_list(v[0] for v in values.values())};')
        lines.append(f'VALUES[en]("{en}")={px_list(v[1] for v in values.values())};')
        lines.append(f'CODES("{sv}")={px_list(values)};')
        lines.append(f'CODES[en]("{en}")={px_list(values)};')
    lines += [f'TIMEVAL("år")=TLIST(A1),{px_list(YEARS)};', f'TIMEVAL[en]("year")=TLIST(A1),{px_list(YEARS)};',
              'LAST-UPDATED="20250224 08:00";', 'SOURCE="SCB (exempeldata)";',
              'DATASYMBOL2="..";', 'DATASYMBOLNIL="-";', 'DATA=']
    lines += [" ".join(cells[i:i + len(YEARS)]) for i in range(0, len(cells), len(YEARS))]
    with open(os.path.join(HERE, "scb_trangboddhet_barn.px"), "w", encoding="windows-1252", newline="") as f:
        f.write("\r\n".join(lines) + ";\r\n")


def liv_halsa():
    import datetime
    import xlsxwriter  # imported here: only this file needs it

    indicators = {"LHU01": "Mår bra eller mycket bra", "LHU14": "Har blivit mobbad i skolan"}
    areas = {"03": "Uppsala län", "0305": "Håbo", "0330": "Knivsta", "0380": "Uppsala"}
    book = xlsxwriter.Workbook(os.path.join(HERE, "liv_halsa_ung.xlsx"))
    book.set_properties({"created": datetime.datetime(2025, 3, 1)})  # the same bytes every time
    about = book.add_worksheet("Om undersökningen")
    about.write_string(0, 0, "Liv & hälsa ung (exempeldata): andel elever per kommun, årskurs och kön.")
    sheet = book.add_worksheet("Resultat")
    sheet.write_string(0, 0, "Liv & hälsa ung – resultat per kommun (exempeldata)")
    header = ["Kommunkod", "Kommun", "Indikator", "Årskurs", "Kön", "År", "Andel (%)", "Antal svar"]
    for column, name in enumerate(header):
        sheet.write_string(2, column, name)
    row = 3
    for code, name in areas.items():
        first = row
        for indicator in indicators:
            for grade in ("åk 7", "åk 9", "gy 2"):
                for sex in ("Flickor", "Pojkar", "Alla"):
                    for year in (2022, 2024):
                        n = rng.randint(2, 40) if len(code) == 4 and code != "0380" else rng.randint(300, 1500)
                        sheet.write_string(row, 2, indicator)
                        sheet.write_string(row, 3, grade)
                        sheet.write_string(row, 4, sex)
                        sheet.write_number(row, 5, year)
                        if n < 5:
                            sheet.write_string(row, 6, "*")
                        else:
                            sheet.write_number(row, 6, round(rng.uniform(10, 85), 1))
                        sheet.write_number(row, 7, n)
                        row += 1
        # The code as text (a number cell would lose its leading zero), merged down its rows.
        sheet.merge_range(first, 0, row - 1, 0, code)
        sheet.merge_range(first, 1, row - 1, 1, name)
        row += 1  # a blank row between municipalities
    book.close()


scb()
lupp()
skolverket()
trangboddhet()
liv_halsa()
