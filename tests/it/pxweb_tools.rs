//! The operator's PxWeb tools through the binary, against the loopback test server:
//! `inspect URL`, `tables URL --query` and `check --online`.

use std::time::Duration;

use indikator::testkit::pxweb_server::{PxTable, PxWebServer, Role, ServerLimits};

use crate::util::{Project, Served, text};

/// A server of two tables (one discontinued).
fn serve() -> Served<PxWebServer> {
    let mut population = PxTable::generated(
        "TAB9100",
        &[
            ("Region", 300, Role::Eliminable),
            ("Kon", 2, Role::Eliminable),
            ("ContentsCode", 1, Role::Content),
            ("Tid", 40, Role::Time),
        ],
    );
    population.label = "Folkmängd efter region, kön och år".into();
    let mut old = PxTable::generated("TAB9101", &[("Tid", 3, Role::Time)]);
    old.label = "Folkmängd, gammal tabell".into();
    old.discontinued = Some(true);
    let limits = ServerLimits {
        max_cells: 5_000,
        max_values: Some(10_000),
        max_calls: 30,
        window: Duration::from_secs(10),
        rate_headers: true,
    };
    Served::start(|| PxWebServer::start(vec![population, old], limits))
}

#[test]
fn inspect_shows_a_v2_table_its_limits_and_the_requests_a_harvest_sends() {
    let served = serve();
    let project = Project::empty();
    let root = served.server.v2_root();
    let output = project.run(&["inspect", &root, "--table", "TAB9100"]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    for expected in [
        "TAB9100 Folkmängd efter region, kön och år",
        "Region",
        "may be left out",
        "cells: 24000",
        // PxWebApi 2.0 has no value limit.
        "server limits: 5000 cells per request; 30 calls per 10 s",
        // 24 000 cells in pieces of at most 5 000, Tid (40) kept whole: 125 regions a piece.
        "requests for the whole table: 5 (splitting Region in 5)",
    ] {
        assert!(shown.contains(expected), "missing {expected:?}:\n{shown}");
    }
    let output = project.run(&["inspect", &root, "--table", "TAB9100", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["requests"], 5);
    assert_eq!(json["dimensions"][3]["time"], true);
}

#[test]
fn inspect_shows_a_v1_table_by_its_url() {
    let served = serve();
    let project = Project::empty();
    let output = project.run(&["inspect", &served.server.v1_table_url("TAB9100")]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("cells: 24000"), "{shown}");
    assert!(
        shown.contains("server limits: 5000 cells, 10000 values per request"),
        "v1 limits values too: {shown}"
    );
    let output = project.run(&["inspect", &served.server.v2_root()]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("give its root and --table TAB638"),
        "{}",
        text(&output)
    );
}

#[test]
fn tables_lists_matches_with_their_periods_and_marks_discontinued_ones() {
    let served = serve();
    let project = Project::empty();
    let output = project.run(&["tables", &served.server.v2_root(), "--query", "folkmängd"]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("TAB9100"), "{shown}");
    let old = shown.lines().find(|l| l.starts_with("TAB9101")).unwrap();
    assert!(old.ends_with("DISCONTINUED"), "{old}");
    assert!(shown.contains("2 tables"), "{shown}");
}

#[test]
fn check_online_names_an_unknown_code_and_a_discontinued_table() {
    let served = serve();
    let project = Project::with_samples();
    let root = served.server.v2_root();
    let pipeline = |id: &str, table: &str, select: &str| {
        format!(
            "id = \"{id}\"\n[source]\nkind = \"pxweb2\"\nurl = \"{root}\"\ntable = \"{table}\"\n\
             producer = \"scb\"\n[source.select]\n{select}\n\
             [map]\nindicator = \"folkmangd_0_17\"\narea = \"Region\"\nperiod = \"Tid\"\nunit = \"count\"\n"
        )
    };
    project.write(
        "pipelines/typo.toml",
        pipeline("typo", "TAB9100", "ContentsCode = \"*\"\nTid = [\"1850\"]"),
    );
    project.write(
        "pipelines/old.toml",
        pipeline("old", "TAB9101", "Tid = \"*\""),
    );
    let offline = project.run(&["check"]);
    assert!(offline.status.success(), "{}", text(&offline));
    let output = project.run(&["check", "--online"]);
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("typo.toml") && shown.contains("variable `Tid`: no value `1850`"),
        "{shown}"
    );
    assert!(shown.contains("TAB9101 is marked discontinued"), "{shown}");
}
