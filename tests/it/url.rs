//! `kind = "url"` through the binary: the bundled sample files served by the loopback file
//! server, read as the sample pipelines read them from disk; change detection by ETag, a
//! missing file, the raw archive and `check`.

use indikator::testkit::file_server::FileServer;

use crate::pxweb_bed::{observation_batches, values};
use crate::util::{Project, Served, repo, strings, text};

fn serve() -> Served<FileServer> {
    Served::start(FileServer::start)
}

/// A bundled sample's data file.
fn sample_data(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("pipelines/samples/data").join(name)).unwrap()
}

/// Pipeline `id` reading `source` (the keys after `kind = "url"`) with the `[map]` of the
/// sample pipeline `sample`, written under `pipelines/`.
fn write_pipeline(project: &Project, id: &str, source: &str, sample: &str) {
    let sample_file = std::fs::read_to_string(
        project
            .path()
            .join(format!("pipelines/samples/{sample}.toml")),
    )
    .unwrap();
    let map = &sample_file[sample_file.find("[map]").unwrap()..];
    project.write(
        &format!("pipelines/{id}.toml"),
        format!("id = \"{id}\"\n[source]\nkind = \"url\"\n{source}\n{map}"),
    );
}

/// The id of the run a `run` printed for `pipeline`.
fn run_id(output: &std::process::Output, pipeline: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = (stdout.lines())
        .find(|line| line.starts_with(&format!("{pipeline}: ")))
        .unwrap_or_else(|| panic!("no outcome:\n{}", text(output)));
    let (_, rest) = line.split_once("(run ").expect("a run id");
    rest.split(')').next().unwrap().to_string()
}

/// Each observation of `pipeline` as (area, period, sex, value), sorted.
fn rows(project: &Project, pipeline: &str) -> Vec<(String, String, String, Option<u64>)> {
    let batches = observation_batches(&project.warehouse(), pipeline);
    let [areas, periods, sexes] = ["area_code", "period", "sex"].map(|c| strings(&batches, c));
    let mut rows: Vec<_> = (values(&batches).into_iter().enumerate())
        .map(|(i, value)| {
            let value = value.map(f64::to_bits);
            (
                areas[i].clone(),
                periods[i].clone(),
                sexes[i].clone(),
                value,
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_csv_at_a_url_is_written_then_skipped_while_unchanged_and_written_again_once_changed() {
    let served = serve();
    let csv = sample_data("skolverket_behorighet.csv");
    served.server.put("/statistik/behorighet.csv", csv.clone());
    let url = served.server.url("/statistik/behorighet.csv");
    let project = Project::with_samples();
    write_pipeline(
        &project,
        "url-csv",
        &format!("url = \"{url}\"\nformat = \"csv\"\nproducer = \"skolverket\""),
        "skolverket-behorighet",
    );
    let check = project.run(&["check"]);
    assert!(check.status.success(), "{}", text(&check));

    let first = project.run(&["run", "url-csv", "skolverket-behorighet"]);
    assert!(first.status.success(), "{}", text(&first));
    let from_file = rows(&project, "skolverket-behorighet");
    assert!(!from_file.is_empty());
    assert_eq!(rows(&project, "url-csv"), from_file, "as read from disk");
    let batches = observation_batches(&project.warehouse(), "url-csv");
    assert!(strings(&batches, "source_url").iter().all(|u| *u == url));
    assert!(
        strings(&batches, "source_table")
            .iter()
            .all(|t| t == "behorighet.csv")
    );
    assert!(
        strings(&batches, "source")
            .iter()
            .all(|s| s == "skolverket")
    );

    // The payload is archived under its file name, with the URL it came from.
    let raw = (project.warehouse()).join(format!("raw/url-csv/{}", run_id(&first, "url-csv")));
    assert!(raw.join("behorighet.csv.zst").is_file());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(raw.join("payloads.json")).unwrap()).unwrap();
    assert_eq!(index["payloads"][0]["origin"], url.as_str());
    assert_eq!(index["payloads"][0]["bytes"], csv.len());

    let second = project.run(&["run", "url-csv"]);
    let shown = text(&second);
    assert!(second.status.success(), "{shown}");
    assert!(shown.contains("url-csv: skipped"), "{shown}");
    assert!(
        shown.contains("unchanged: the source"),
        "by its ETag: {shown}"
    );
    let asked = served.server.requests().pop().unwrap();
    assert_eq!(
        (asked.if_none_match.as_deref(), asked.status),
        (Some("\"v1\""), 304)
    );

    // One municipality fewer: the run writes again.
    let text_csv = String::from_utf8(csv).unwrap();
    let fewer: String = (text_csv.lines())
        .filter(|line| !line.starts_with("Stockholm,"))
        .map(|line| format!("{line}\n"))
        .collect();
    served.server.put("/statistik/behorighet.csv", fewer);
    let third = project.run(&["run", "url-csv"]);
    let shown = text(&third);
    assert!(shown.contains("url-csv: succeeded"), "{shown}");
    let now = rows(&project, "url-csv");
    assert!(!now.is_empty() && now.len() < from_file.len(), "{shown}");
    assert!(now.iter().all(|(area, ..)| area != "0180"), "{shown}");
}

#[test]
fn a_json_stat_at_a_url_reads_as_the_file_does_and_is_named_by_its_url() {
    let served = serve();
    served
        .server
        .put("/px/BE0101N1.json", sample_data("scb_folkmangd_barn.json"));
    let url = served.server.url("/px/BE0101N1.json");
    let project = Project::with_samples();
    write_pipeline(
        &project,
        "url-jsonstat",
        &format!("url = [\"{url}\"]\nformat = \"jsonstat\""),
        "scb-folkmangd-barn",
    );
    let output = project.run(&["run", "url-jsonstat", "scb-folkmangd-barn"]);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(
        rows(&project, "url-jsonstat"),
        rows(&project, "scb-folkmangd-barn")
    );
    let batches = observation_batches(&project.warehouse(), "url-jsonstat");
    let tables = strings(&batches, "source_table");
    assert!(tables.iter().all(|t| t == "BE0101N1.json"), "{tables:?}");
    // A known host's producer would be taken from the URL; a loopback one is no producer.
    assert!(strings(&batches, "source").iter().all(|s| s == "file"));
}

#[test]
fn a_missing_file_fails_the_run_naming_the_url_and_commits_nothing() {
    let served = serve();
    let url = served.server.url("/statistik/flyttad.csv");
    let project = Project::with_samples();
    write_pipeline(
        &project,
        "url-missing",
        &format!("url = \"{url}\"\nformat = \"csv\""),
        "skolverket-behorighet",
    );
    let output = project.run(&["run", "url-missing"]);
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("url-missing: failed"), "{shown}");
    assert!(
        shown.contains(&format!(
            "{url} answered HTTP 404 (\"no such file\"); no file is there; check `url` in [source]"
        )),
        "{shown}"
    );
    let warehouse = project.warehouse();
    assert!(!warehouse.join("observations/pipeline=url-missing").exists());
}

#[test]
fn check_refuses_a_url_that_is_not_http_and_an_unknown_key() {
    let project = Project::with_samples();
    write_pipeline(
        &project,
        "url-ftp",
        "url = [\"ftp://example.org/a.csv\", \"https://example.org/b.csv\"]\nformat = \"csv\"",
        "skolverket-behorighet",
    );
    write_pipeline(
        &project,
        "url-typo",
        "url = \"https://example.org/b.csv\"\nformat = \"csv\"\ndelimitor = \";\"",
        "skolverket-behorighet",
    );
    let output = project.run(&["check"]);
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("source.url: `ftp://example.org/a.csv` is not an http(s) URL"),
        "{shown}"
    );
    assert!(shown.contains("delimitor"), "{shown}");
}
