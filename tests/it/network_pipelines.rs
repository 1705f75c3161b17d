//! The real network pipelines (`pipelines/*.toml`, not the samples) against the loopback PxWeb
//! test server. They cannot reach their hosts here, so each runs against a served table of the
//! shape its header comment describes: the same id (v1: the same path), variables in the same
//! order with the same codes and elimination, and values covering what the file selects. Only
//! the file's `url` is changed (and the `producer` its real host implied is written out when the
//! file sets none); every other key is the file's own. Each must pass `check` as written and as
//! pointed at the server, run, refuse no row, and write the model values its `[map]` promises.
//!
//! One [`Case`] per pipeline file; a file without a case fails [`every_pipeline_file_has_a_case`].
//! Kolada files (`[source] kind = "kolada"`) are not here: they run against the Kolada test
//! server in `tests/it/kolada.rs`.
//! Where the real shape is unproven the table says so: elimination unknown is served as not
//! eliminable (the strictest: the file must select the variable), and codes no source shows
//! (SCB's eligibility contents and backgrounds, HBSC answers) are stand-ins, which the files
//! select with `*`. Not reproduced: Folkhälsodata's data answers carry a `ContentsCode`
//! (`EliminatedValue`) that its metadata does not list; the test server cannot add one (the
//! json-stat decoder's test reads that fixture).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use indikator::ledger::RunStatus;
use indikator::pipeline::Pipeline;
use indikator::testkit::pxweb_server::{PxTable, PxUnit, PxValue, PxVariable, Role, ServerLimits};

use crate::pxweb_bed::{Bed, observation_batches, values};
use crate::util::{repo, strings};

/// A real pipeline, the table it is run against, and what the run must write.
struct Case {
    /// `pipelines/<pipeline>.toml`, whose `id` this is.
    pipeline: &'static str,
    /// The table as its host serves it. A v1 table is served at the path of the file's URL.
    table: fn() -> PxTable,
    /// The host's limits, as its config states them.
    limits: fn() -> ServerLimits,
    /// Rows written: one per selected cell.
    rows: u64,
    /// A few of the rows, each with the cell it comes from.
    expect: &'static [Expect],
}

/// One row the `[map]` promises.
struct Expect {
    /// The cell's codes, one per variable in table order; an eliminated variable at the value
    /// the server reduces it to (its elimination value, else its first).
    cell: &'static [&'static str],
    indicator: &'static str,
    area: &'static str,
    level: &'static str,
    period: &'static str,
    sex: &'static str,
    age: &'static str,
    breakdown: &'static str,
}

const CASES: &[Case] = &[
    Case {
        pipeline: "scb-folkmangd-0-19",
        table: tab638,
        limits: ServerLimits::scb,
        rows: 8 * 21 * 2 * 4,
        expect: &[
            Expect {
                cell: &["0180", "OG", "7", "2", "BE0101N1", "2024"],
                indicator: "folkmangd",
                area: "0180",
                level: "municipality",
                period: "2024",
                sex: "F",
                age: "7",
                breakdown: "",
            },
            Expect {
                cell: &["00", "OG", "tot", "1", "BE0101N1", "2021"],
                indicator: "folkmangd",
                area: "00",
                level: "country",
                period: "2021",
                sex: "M",
                age: "total",
                breakdown: "",
            },
        ],
    },
    Case {
        pipeline: "scb-folkmangd-0-19-ckm",
        table: tab5557,
        limits: ServerLimits::scb,
        rows: 8 * 27 * 3,
        expect: &[
            Expect {
                cell: &["0114", "SC", "-4", "TotSa", "000007ME", "2025"],
                indicator: "folkmangd",
                area: "0114",
                level: "municipality",
                period: "2025",
                sex: "T",
                age: "0-4",
                breakdown: "",
            },
            Expect {
                cell: &["21", "SC", "TotSA", "1", "000007ME", "2025"],
                indicator: "folkmangd",
                area: "21",
                level: "county",
                period: "2025",
                sex: "M",
                age: "total",
                breakdown: "",
            },
            Expect {
                cell: &["00", "SC", "10-19", "2", "000007ME", "2025"],
                indicator: "folkmangd",
                area: "00",
                level: "country",
                period: "2025",
                sex: "F",
                age: "10-19",
                breakdown: "",
            },
        ],
    },
    Case {
        pipeline: "scb-utlandsk-bakgrund-0-19",
        table: utl_sv_bakg_fin,
        limits: ServerLimits::scb,
        rows: 8 * 4 * 20 * 2 * 3,
        expect: &[
            Expect {
                cell: &["2180", "08", "0", "1", "000001NT", "2024"],
                indicator: "utrikes_fodda_antal",
                area: "2180",
                level: "municipality",
                period: "2024",
                sex: "M",
                age: "0",
                breakdown: "",
            },
            Expect {
                cell: &["00", "6", "19", "2", "000001NT", "2022"],
                indicator: "inrikes_fodda_tva_inrikes_foraldrar_antal",
                area: "00",
                level: "country",
                period: "2022",
                sex: "F",
                age: "19",
                breakdown: "",
            },
        ],
    },
    Case {
        pipeline: "scb-utlandsk-bakgrund-0-19-ckm",
        table: utl_sv_bakg_fin_ckm,
        limits: ServerLimits::scb,
        rows: 8 * 4 * 21 * 3,
        expect: &[
            Expect {
                cell: &["03", "4", "tot", "TotSa", "C1", "2025"],
                indicator: "inrikes_fodda_tva_utrikes_foraldrar_antal",
                area: "03",
                level: "county",
                period: "2025",
                sex: "T",
                age: "total",
                breakdown: "",
            },
            Expect {
                cell: &["0331", "5", "12", "2", "C1", "2025"],
                indicator: "inrikes_fodda_en_utrikes_foralder_antal",
                area: "0331",
                level: "municipality",
                period: "2025",
                sex: "F",
                age: "12",
                breakdown: "",
            },
        ],
    },
    Case {
        pipeline: "scb-trangboddhet-0-17",
        table: tab5089,
        limits: ServerLimits::scb,
        rows: 8 * 2 * 6 * 4,
        expect: &[
            Expect {
                cell: &[
                    "00",
                    "TRÅNGB N2",
                    "010",
                    "totalt",
                    "TOT2",
                    "000004ST",
                    "2024",
                ],
                indicator: "trangbodda_0_17_antal",
                area: "00",
                level: "country",
                period: "2024",
                sex: "T",
                age: "0-17",
                breakdown: "fodelseregion=010",
            },
            Expect {
                cell: &["0331", "TOT", "100", "totalt", "TOT2", "000004ST", "2021"],
                indicator: "boende_0_17_antal",
                area: "0331",
                level: "municipality",
                period: "2021",
                sex: "T",
                age: "0-17",
                breakdown: "fodelseregion=100",
            },
        ],
    },
    Case {
        pipeline: "scb-behorighet-kommun",
        table: tab1804,
        limits: ServerLimits::scb,
        rows: 8 * 3 * 2 * 3,
        expect: &[
            Expect {
                cell: &["0180", "1+2", "C1", "2024"],
                indicator: "behorighet_scb_andel",
                area: "0180",
                level: "municipality",
                period: "2024",
                sex: "T",
                age: "total",
                breakdown: "matt=C1",
            },
            Expect {
                cell: &["21", "2", "C2", "2022"],
                indicator: "behorighet_scb_andel",
                area: "21",
                level: "county",
                period: "2022",
                sex: "F",
                age: "total",
                breakdown: "matt=C2",
            },
        ],
    },
    Case {
        pipeline: "scb-behorighet-lan-bakgrund",
        table: tab1807,
        limits: ServerLimits::scb,
        rows: 5 * 3 * 4 * 2 * 3,
        expect: &[
            Expect {
                cell: &["25", "1", "B2", "C1", "2023"],
                indicator: "behorighet_scb_andel",
                area: "25",
                level: "county",
                period: "2023",
                sex: "M",
                age: "total",
                breakdown: "bakgrund=B2;matt=C1",
            },
            Expect {
                cell: &["00", "1+2", "B1", "C2", "2024"],
                indicator: "behorighet_scb_andel",
                area: "00",
                level: "country",
                period: "2024",
                sex: "T",
                age: "total",
                breakdown: "bakgrund=B1;matt=C2",
            },
        ],
    },
    Case {
        pipeline: "scb-behorighet-riket-bakgrund",
        table: tab1813,
        limits: ServerLimits::scb,
        rows: 3 * 4 * 2 * 3,
        expect: &[Expect {
            cell: &["00", "2", "B4", "C1", "2022"],
            indicator: "behorighet_scb_andel",
            area: "00",
            level: "country",
            period: "2022",
            sex: "F",
            age: "total",
            breakdown: "bakgrund=B4;matt=C1",
        }],
    },
    Case {
        pipeline: "fohm-hbsc-mobbning",
        table: mobbning_reg,
        limits: folkhalsodata,
        rows: 5 * 2 * 3 * 2 * 2,
        expect: &[
            Expect {
                cell: &[
                    "21",
                    "Mobbad i skolan senaste månaderna",
                    "Minst 1 gång/vecka",
                    "13",
                    "2",
                    "2021-2022",
                ],
                indicator: "hbsc_mobbad_andel",
                area: "21",
                level: "county",
                period: "2021/22",
                sex: "F",
                age: "13",
                breakdown: "hur_ofta=Minst 1 gång/vecka",
            },
            Expect {
                cell: &[
                    "00",
                    "Mobbad i skolan senaste månaderna",
                    "2-3 ggr/månad",
                    "11",
                    "1",
                    "2017-2018",
                ],
                indicator: "hbsc_mobbad_andel",
                area: "00",
                level: "country",
                period: "2017/18",
                sex: "M",
                age: "11",
                breakdown: "hur_ofta=2-3 ggr/månad",
            },
        ],
    },
    Case {
        pipeline: "fohm-hbsc-halsobesvar",
        table: halsobesvar_reg,
        limits: folkhalsodata,
        rows: 5 * 2 * 2 * 3 * 2,
        expect: &[Expect {
            cell: &[
                "01",
                "Känt sig nere",
                "> 1 gång/vecka",
                "15",
                "1",
                "2021-2022",
            ],
            indicator: "hbsc_halsobesvar_andel",
            area: "01",
            level: "county",
            period: "2021/22",
            sex: "M",
            age: "15",
            breakdown: "besvar=Känt sig nere;frekvens=> 1 gång/vecka",
        }],
    },
    Case {
        pipeline: "fohm-hbsc-rokvanor",
        table: rokvanor_reg,
        limits: folkhalsodata,
        rows: 5 * 2 * 3 * 2 * 2,
        expect: &[Expect {
            cell: &["03", "R2", "15", "2", "2021-2022"],
            indicator: "hbsc_rokvanor_andel",
            area: "03",
            level: "county",
            period: "2021/22",
            sex: "F",
            age: "15",
            breakdown: "rokvanor=R2",
        }],
    },
    Case {
        pipeline: "skolverket-kjt-grundskola-elever",
        table: grundskola_skolor_elever,
        limits: skolverket,
        rows: 312 * 3,
        expect: &[
            Expect {
                cell: &["2", "2180", "2024"],
                indicator: "skolverket_grundskola_elever_antal",
                area: "2180",
                level: "municipality",
                // Not 2024/25: see the file's known gap.
                period: "2024",
                sex: "T",
                age: "total",
                breakdown: "",
            },
            Expect {
                cell: &["2", "00", "2022"],
                indicator: "skolverket_grundskola_elever_antal",
                area: "00",
                level: "country",
                period: "2022",
                sex: "T",
                age: "total",
                breakdown: "",
            },
        ],
    },
    Case {
        pipeline: "skolverket-kjt-grundskola-annan-kommun",
        table: grundskola_skolor_elever,
        limits: skolverket,
        rows: 312 * 3,
        expect: &[Expect {
            cell: &["3", "21", "2023"],
            indicator: "skolverket_grundskola_elever_annan_kommun_andel",
            area: "21",
            level: "county",
            period: "2023",
            sex: "T",
            age: "total",
            breakdown: "",
        }],
    },
];

/// Regions of the SCB tables that select `Region = "*"`: Sweden, three counties, and
/// municipalities of them (Heby 0331 with its code since 2007).
const SCB_REGIONS: &[&str] = &["00", "01", "0114", "0180", "03", "0331", "21", "2180"];
/// HBSC's regional tables: Sweden and counties only.
const HBSC_REGIONS: &[&str] = &["00", "01", "03", "21", "25"];
/// Ages `0` … `19` as SCB codes them, then older ones no pipeline selects.
const AGES_0_24: &[&str] = &[
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24",
];

#[test]
fn every_pipeline_file_has_a_case() {
    let files: BTreeSet<String> = std::fs::read_dir(repo().join("pipelines"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        // Kolada pipelines are run against the Kolada test server in tests/it/kolada.rs.
        .filter(|path| source_kind(path) != "kolada")
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let cases: BTreeSet<String> = CASES.iter().map(|c| c.pipeline.to_owned()).collect();
    assert_eq!(cases.len(), CASES.len(), "a pipeline with two cases");
    let without_case: Vec<_> = files.difference(&cases).collect();
    let without_file: Vec<_> = cases.difference(&files).collect();
    assert!(
        without_case.is_empty() && without_file.is_empty(),
        "pipelines/*.toml without a case in CASES: {without_case:?}; cases without a file: \
         {without_file:?}"
    );
}

/// The `[source] kind` of a pipeline file.
fn source_kind(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parsed["source"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn every_network_pipeline_runs_against_a_table_of_its_shape() {
    let failed: Vec<&str> = CASES
        .iter()
        .filter(|case| {
            let result = catch_unwind(AssertUnwindSafe(|| run_case(case)));
            result.is_err()
        })
        .map(|case| case.pipeline)
        .collect();
    assert!(
        failed.is_empty(),
        "failed (see each panic above): {failed:?}"
    );
}

/// `Rökvanor` is a guess: a table whose answer variable is called otherwise must fail the run
/// naming the variables it has, as the file's comment promises.
#[test]
fn rokvanor_against_another_answer_variable_names_the_tables_variables() {
    let mut table = rokvanor_reg();
    table.variables[1].code = "Rökning".into();
    let served = serve("fohm-hbsc-rokvanor", table, folkhalsodata());
    let outcome = served.bed.run(&served.pipeline, false);
    assert_eq!(outcome.status, RunStatus::Failed);
    let error = outcome.error.unwrap();
    assert!(
        error.contains("has no variable `Rökvanor`") && error.contains("Rökning"),
        "{error}"
    );
}

/// A real pipeline file served from the test server: the bed, the file as written and as
/// pointed at the server (both checked), and the table served.
struct Served {
    bed: Bed,
    /// `pipelines/<id>.toml` as written, parsed.
    parsed: toml::Table,
    /// The file as written, checked: what it says of its origin.
    real: Arc<Pipeline>,
    /// The file with its `url` pointed at the server.
    pipeline: Arc<Pipeline>,
    table: PxTable,
}

/// Serves `table` with `limits` and points the real file `pipelines/<id>.toml` at it, changing
/// only its `url` (and adding the `producer` its real host implied, if it sets none).
fn serve(id: &str, mut table: PxTable, limits: ServerLimits) -> Served {
    let text = std::fs::read_to_string(repo().join(format!("pipelines/{id}.toml"))).unwrap();
    let parsed: toml::Table = toml::from_str(&text).unwrap();
    let source = parsed["source"].as_table().unwrap();
    let real_url = source["url"].as_str().unwrap().to_owned();
    let v1 = source["kind"].as_str() == Some("pxweb");
    if v1 {
        table.v1_path = v1_path(&real_url);
        assert_eq!(
            table.v1_path.rsplit('/').next(),
            Some(table.id.as_str()),
            "{id}: the case's table is not the one the URL names"
        );
    } else {
        assert_eq!(
            source["table"].as_str(),
            Some(table.id.as_str()),
            "{id}: the case's table is not the file's `table`"
        );
    }
    let table_for_server = table.clone();
    let bed = Bed::new(|_| vec![table_for_server], limits);

    // The file as written passes `check`; what it says of its origin must survive the new URL.
    let (real, warnings) = bed.check(id, &text);
    assert_eq!(real.id, id, "the file's id is its name");
    assert!(warnings.is_empty(), "{id}: warnings {warnings:?}");
    let url = match v1 {
        true => bed.server.v1_table_url(&table.id),
        false => bed.server.v2_root(),
    };
    let written = format!("url = \"{real_url}\"");
    assert_eq!(text.matches(&written).count(), 1, "{id}: one `{written}`");
    let mut served = format!("url = \"{url}\"");
    if !source.contains_key("producer") {
        // The real host implied it (scb.se → scb); loopback implies nothing.
        served.push_str(&format!("\nproducer = \"{}\"", real.origin.producer));
    }
    let (pipeline, warnings) = bed.check(id, &text.replace(&written, &served));
    assert!(warnings.is_empty(), "{id}: warnings {warnings:?}");
    Served {
        bed,
        parsed,
        real,
        pipeline,
        table,
    }
}

/// Serves the case's table, runs the real file against it, and compares what it wrote with the
/// case.
fn run_case(case: &Case) {
    let id = case.pipeline;
    let Served {
        bed,
        parsed,
        real,
        pipeline,
        table,
    } = serve(id, (case.table)(), (case.limits)());
    let outcome = bed.run(&pipeline, false);
    assert_eq!(outcome.error, None, "{id}");
    assert_eq!(outcome.status, RunStatus::Succeeded, "{id}");
    assert_eq!(outcome.rows_rejected, 0, "{id}: {:?}", outcome.report);
    assert_eq!(outcome.rows_written, case.rows, "{id}: rows written");
    assert!(
        outcome.uncatalogued.is_empty(),
        "{id}: {:?}",
        outcome.uncatalogued
    );

    let batches = observation_batches(bed.warehouse.root(), id);
    let columns = [
        "indicator_id",
        "area_code",
        "area_level",
        "period",
        "sex",
        "age",
        "breakdown",
        "unit",
    ]
    .map(|column| strings(&batches, column));
    let values = values(&batches);
    assert_eq!(values.len() as u64, case.rows, "{id}: rows in the files");
    for (column, expected) in [
        ("source", &real.origin.producer),
        ("source_table", &real.origin.table),
    ] {
        let found: BTreeSet<String> = strings(&batches, column).into_iter().collect();
        assert_eq!(found, BTreeSet::from([expected.clone()]), "{id}: {column}");
    }
    let unit = parsed["map"]["unit"].as_str().unwrap();
    assert!(
        columns[7].iter().all(|u| u == unit),
        "{id}: every row in {unit}"
    );
    for expect in case.expect {
        let key = [
            expect.indicator,
            expect.area,
            expect.level,
            expect.period,
            expect.sex,
            expect.age,
            expect.breakdown,
        ];
        let found: Vec<usize> = (0..values.len())
            .filter(|&i| (0..key.len()).all(|c| columns[c][i] == key[c]))
            .collect();
        assert_eq!(found.len(), 1, "{id}: one row {key:?}");
        assert_eq!(
            values[found[0]],
            table.value_at(expect.cell),
            "{id}: {key:?} holds cell {:?}",
            expect.cell
        );
    }
}

/// The part of a v1 table URL after its language segment: database, levels, table.
fn v1_path(url: &str) -> String {
    let path = url.split_once("://").unwrap().1.split_once('/').unwrap().1;
    let segments: Vec<&str> = path.split('/').collect();
    let v1 = segments.iter().position(|s| *s == "v1").unwrap();
    let language = (v1 + 1..segments.len())
        .find(|&i| segments[i].len() == 2)
        .unwrap();
    segments[language + 1..].join("/")
}

fn folkhalsodata() -> ServerLimits {
    // Folkhälsodata's ?config: 100 000 cells, 1000 calls per 10 s (fohm-hbsc-mobbning.toml).
    ServerLimits {
        max_cells: 100_000,
        max_values: None,
        max_calls: 1000,
        window: Duration::from_secs(10),
        rate_headers: false,
    }
}

fn skolverket() -> ServerLimits {
    // Skolverket's ?config: 1 250 000 cells, 1000 values, 10 calls per 10 s.
    ServerLimits {
        max_cells: 1_250_000,
        max_values: Some(1000),
        max_calls: 10,
        window: Duration::from_secs(10),
        rate_headers: false,
    }
}

/// A table `id` with `variables` in this order.
fn table(id: &str, variables: Vec<PxVariable>) -> PxTable {
    let mut table = PxTable::generated(id, &[]);
    table.variables = variables;
    table
}

/// A variable whose values are `codes`, each its own label (a content value's unit `antal`).
fn variable<S: AsRef<str>>(code: &str, role: Role, codes: &[S]) -> PxVariable {
    let unit = (role == Role::Content).then(|| PxUnit {
        base: "antal".to_owned(),
        decimals: 0,
    });
    PxVariable {
        code: code.to_owned(),
        label: code.to_lowercase(),
        values: codes
            .iter()
            .map(|code| PxValue {
                code: code.as_ref().to_owned(),
                label: code.as_ref().to_owned(),
                unit: unit.clone(),
            })
            .collect(),
        elimination: role == Role::Eliminable,
        elimination_value: None,
        time: role == Role::Time,
        content: role == Role::Content,
        codelists: Vec::new(),
    }
}

/// An eliminable variable reduced to `total` when left out.
fn eliminable<S: AsRef<str>>(code: &str, codes: &[S], total: &str) -> PxVariable {
    let mut variable = variable(code, Role::Eliminable, codes);
    variable.elimination_value = Some(total.to_owned());
    variable
}

/// `codes`, then `more`.
fn with<'a>(codes: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
    codes.iter().chain(more).copied().collect()
}

/// TAB638 as PxApiSpecs' table-metadata-example.json has it: Region, Civilstand, Alder and Kon
/// eliminable (Region to `00`, Alder to `tot`), Civilstand without a total.
fn tab638() -> PxTable {
    table(
        "TAB638",
        vec![
            eliminable("Region", SCB_REGIONS, "00"),
            variable("Civilstand", Role::Eliminable, &["OG", "G", "SK", "ÄNKL"]),
            eliminable("Alder", &with(AGES_0_24, &["100+", "tot"]), "tot"),
            variable("Kon", Role::Eliminable, &["1", "2"]),
            variable("ContentsCode", Role::Content, &["BE0101N1", "BE0101N2"]),
            variable("Tid", Role::Time, &["2021", "2022", "2023", "2024"]),
        ],
    )
}

/// TAB5557 (CKM): nothing eliminable, other totals, five- and ten-year groups beside the ages.
fn tab5557() -> PxTable {
    let ages = with(
        AGES_0_24,
        &[
            "100+1", "-4", "5-9", "10-14", "15-19", "20-24", "-9", "10-19", "20-29", "TOT1",
            "TOT5", "TOT10", "TotSA",
        ],
    );
    table(
        "TAB5557",
        vec![
            variable("Region", Role::Plain, SCB_REGIONS),
            variable("Civilstand", Role::Plain, &["OG", "G", "SK", "ÄNKL", "SC"]),
            variable("Alder", Role::Plain, &ages),
            variable("Kon", Role::Plain, &["1", "2", "TotSa"]),
            variable("ContentsCode", Role::Content, &["000007ME"]),
            variable("Tid", Role::Time, &["2025"]),
        ],
    )
}

/// BE0101Q/UtlSvBakgFin (v1 only). Elimination is not in evidence: every variable is served as
/// one to select.
fn utl_sv_bakg_fin() -> PxTable {
    table(
        "UtlSvBakgFin",
        vec![
            variable("Region", Role::Plain, SCB_REGIONS),
            variable("UtlBakgrund", Role::Plain, &["08", "4", "5", "6"]),
            variable("Alder", Role::Plain, AGES_0_24),
            variable("Kon", Role::Plain, &["1", "2"]),
            variable("ContentsCode", Role::Content, &["000001NT"]),
            variable("Tid", Role::Time, &["2022", "2023", "2024"]),
        ],
    )
}

/// BE0101Q/UtlSvBakgFinCKM: as its twin, with `TotUI`, `tot` and `TotSa` totals; the content's
/// code is not seen (`C1` is a stand-in).
fn utl_sv_bakg_fin_ckm() -> PxTable {
    table(
        "UtlSvBakgFinCKM",
        vec![
            variable("Region", Role::Plain, SCB_REGIONS),
            variable("UtlBakgrund", Role::Plain, &["TotUI", "08", "4", "5", "6"]),
            variable("Alder", Role::Plain, &with(AGES_0_24, &["tot"])),
            variable("Kon", Role::Plain, &["1", "2", "TotSa"]),
            variable("ContentsCode", Role::Content, &["C1"]),
            variable("Tid", Role::Time, &["2025"]),
        ],
    )
}

/// TAB5089 (LE0105Boende02) with the codes CI:59785737904 shows; its third content ("Personer
/// minst 18 år") is left out, its code is not seen.
fn tab5089() -> PxTable {
    table(
        "TAB5089",
        vec![
            variable("Region", Role::Plain, SCB_REGIONS),
            variable("Trangboddhet", Role::Plain, &["TOT", "TRÅNGB N2"]),
            variable(
                "Fodelseregion",
                Role::Plain,
                &["010", "020", "030", "040", "050", "100"],
            ),
            variable("Alder", Role::Plain, &["totalt"]),
            variable("Kon", Role::Plain, &["TOT2"]),
            variable("ContentsCode", Role::Content, &["000004SS", "000004ST"]),
            variable("Tid", Role::Time, &["2021", "2022", "2023", "2024"]),
        ],
    )
}

/// The two contents of the eligibility tables ("Andel behöriga till gymnasium, procent", "…
/// högskola, procent"), whose codes are not seen: stand-ins.
const ELIGIBILITY: &[&str] = &["C1", "C2"];
/// Four of the thirteen backgrounds ("samtliga", "födelseregion: Sverige", …): stand-in codes.
const BACKGROUNDS: &[&str] = &["B1", "B2", "B3", "B4"];
const ELIGIBILITY_YEARS: &[&str] = &["2022", "2023", "2024"];

/// TAB1804 (IntGr8Kom2): `Bakgrund` carries sex.
fn tab1804() -> PxTable {
    table(
        "TAB1804",
        vec![
            variable("Region", Role::Plain, SCB_REGIONS),
            variable("Bakgrund", Role::Plain, &["1+2", "1", "2"]),
            variable("ContentsCode", Role::Content, ELIGIBILITY),
            variable("Tid", Role::Time, ELIGIBILITY_YEARS),
        ],
    )
}

/// TAB1807 (IntGr8LanKON2) and TAB1813 (IntGr8RikKON2): Region/Kon/Bakgrund/ContentsCode/Tid.
fn eligibility_by_background(id: &str, regions: &[&str]) -> PxTable {
    table(
        id,
        vec![
            variable("Region", Role::Plain, regions),
            variable("Kon", Role::Plain, &["1+2", "1", "2"]),
            variable("Bakgrund", Role::Plain, BACKGROUNDS),
            variable("ContentsCode", Role::Content, ELIGIBILITY),
            variable("Tid", Role::Time, ELIGIBILITY_YEARS),
        ],
    )
}

fn tab1807() -> PxTable {
    eligibility_by_background("TAB1807", HBSC_REGIONS)
}

fn tab1813() -> PxTable {
    eligibility_by_background("TAB1813", &["00"])
}

/// HBSC's regional tables: Region, the question's variables, Ålder, Kön, År (survey rounds).
fn hbsc(id: &str, questions: Vec<PxVariable>, rounds: &[&str]) -> PxTable {
    let mut variables = vec![variable("Region", Role::Eliminable, HBSC_REGIONS)];
    variables.extend(questions);
    variables.extend([
        variable("Ålder", Role::Plain, &["11", "13", "15"]),
        variable("Kön", Role::Eliminable, &["1", "2"]),
        variable("År", Role::Time, rounds),
    ]);
    table(id, variables)
}

/// MobbningReg.px as fuzzy-MCP's metadata fixture has it (abridged as it is).
fn mobbning_reg() -> PxTable {
    hbsc(
        "MobbningReg.px",
        vec![
            variable(
                "Kategori",
                Role::Plain,
                &["Mobbad i skolan senaste månaderna"],
            ),
            variable(
                "Hur ofta",
                Role::Plain,
                &["2-3 ggr/månad", "Minst 1 gång/vecka"],
            ),
        ],
        &["2017-2018", "2021-2022"],
    )
}

/// HalsobesvarReg.px as CI:59763977876 reads it; `Ont i magen` stands in for the seven
/// complaints not quoted.
fn halsobesvar_reg() -> PxTable {
    hbsc(
        "HalsobesvarReg.px",
        vec![
            variable("Besvär", Role::Plain, &["Känt sig nere", "Ont i magen"]),
            variable(
                "Antal ggr senaste halvåret",
                Role::Plain,
                &["Ung. varje dag", "> 1 gång/vecka"],
            ),
        ],
        &["2021-2022"],
    )
}

/// A_RokvanorReg.px as the file assumes it: the HBSC shape with an answer variable named like
/// its placeholder `Rökvanor` (answers `R1`, `R2` are stand-ins).
fn rokvanor_reg() -> PxTable {
    hbsc(
        "A_RokvanorReg.px",
        vec![variable("Rökvanor", Role::Plain, &["R1", "R2"])],
        &["2017-2018", "2021-2022"],
    )
}

/// Skolverket's KJT table: `variable` (measures), `level` (Sweden, every county and
/// municipality in use, and the municipality group `A1`), `time`; nothing eliminable.
fn grundskola_skolor_elever() -> PxTable {
    let areas = std::fs::read_to_string(repo().join("schemas/areas.csv")).unwrap();
    let mut levels: Vec<&str> = areas
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect::<Vec<_>>())
        .filter(|fields| fields[5].is_empty())
        .map(|fields| fields[0])
        .collect();
    levels.push("A1");
    table(
        "Grundskola_skolor_elever.px",
        vec![
            variable("variable", Role::Plain, &["2", "3"]),
            variable("level", Role::Plain, &levels),
            variable("time", Role::Time, &["2022", "2023", "2024"]),
        ],
    )
}
