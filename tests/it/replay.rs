//! `indikator replay`: an earlier run's archive through the pipeline as it is now, with no
//! source read.

use indikator::ledger::{Ledger, RunFilter};

use crate::util::{Project, read_parquet, strings, text};

const ID: &str = "replay-test";
const PIPELINE: &str = "pipelines/replay-test.toml";
const DATA: &str = "pipelines/data/andel.csv";

fn pipeline(unit: &str) -> String {
    format!(
        "id = \"{ID}\"\n[source]\nkind = \"file\"\npath = \"data/andel.csv\"\nformat = \"csv\"\n\
         [map]\nindicator = \"replay_test\"\narea = \"kommun\"\n\
         period = {{ column = \"ar\", kind = \"year\" }}\nvalue = \"andel\"\nunit = \"{unit}\"\n"
    )
}

/// The run id `indikator run|replay` printed for `ID`.
fn run_id(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with(&format!("{ID}: ")))
        .unwrap_or_else(|| panic!("no outcome:\n{}", text(output)));
    let (_, rest) = line.split_once("(run ").expect("a run id");
    rest.split(')').next().unwrap().to_string()
}

fn project() -> Project {
    let project = Project::with_samples();
    project.write(DATA, "kommun,ar,andel\n0180,2022,12.5\n0180,2023,10\n");
    project.write(PIPELINE, pipeline("percent"));
    project
}

#[test]
fn a_replay_writes_the_archived_payloads_through_the_edited_mapping_without_the_source() {
    let project = project();
    let first = project.run(&["run", ID]);
    assert!(first.status.success(), "{}", text(&first));
    let first_run = run_id(&first);
    let index = project
        .warehouse()
        .join(format!("raw/{ID}/{first_run}/payloads.json"));
    assert!(index.is_file(), "every run writes its archive's index");

    let same = project.run(&["replay", &first_run]);
    assert!(same.status.success(), "{}", text(&same));
    assert!(
        String::from_utf8_lossy(&same.stdout).contains(&format!("{ID}: skipped")),
        "the content the warehouse holds, through the same pipeline, is a skip:\n{}",
        text(&same)
    );

    project.write(PIPELINE, pipeline("andel"));
    // Other values: a replay that read the source would write them.
    project.write(DATA, "kommun,ar,andel\n0180,2022,99\n0180,2023,99\n");
    let replayed = project.run(&["replay", &first_run]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(String::from_utf8_lossy(&replayed.stdout).contains(&format!("{ID}: succeeded")));
    let replay_run = run_id(&replayed);
    for year in [2022, 2023] {
        let part = project.warehouse().join(format!(
            "observations/pipeline={ID}/year={year}/part-00000.parquet"
        ));
        let batches = read_parquet(&part);
        assert_eq!(strings(&batches, "unit"), ["andel"], "{year}");
        let value = if year == 2022 { "12.5" } else { "10.0" };
        assert_eq!(strings(&batches, "value"), [value], "the archived value");
        assert_eq!(strings(&batches, "run_id"), [replay_run.as_str()]);
    }
    let ledger = Ledger::open(&project.path().join("state")).unwrap();
    let runs = ledger.runs(&RunFilter::default()).unwrap();
    let triggers: Vec<(&str, &str)> = runs
        .iter()
        .map(|r| (r.trigger.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        triggers,
        [
            ("replay", "succeeded"),
            ("replay", "skipped"),
            ("manual", "succeeded")
        ]
    );
    assert!(
        project
            .warehouse()
            .join(format!("raw/{ID}/{replay_run}/payloads.json"))
            .is_file(),
        "a replay archives what it read, so it can be replayed in its turn"
    );
}

#[test]
fn a_replay_that_cannot_be_says_why_and_what_to_do() {
    let project = project();
    let first = project.run(&["run", ID]);
    assert!(first.status.success(), "{}", text(&first));
    let first_run = run_id(&first);
    let stderr = |args: &[&str]| {
        let output = project.run(args);
        assert!(!output.status.success(), "{}", text(&output));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    let unknown = stderr(&["replay", "20200101T000000-000-nope"]);
    assert!(
        unknown.contains("no run `20200101T000000-000-nope`"),
        "{unknown}"
    );
    assert!(unknown.contains("indikator history"), "{unknown}");

    let raw = project.warehouse().join(format!("raw/{ID}/{first_run}"));
    std::fs::remove_file(raw.join("payloads.json")).unwrap();
    let old = stderr(&["replay", &first_run]);
    assert!(
        old.contains(&format!("run `{first_run}` predates replay")),
        "{old}"
    );
    assert!(old.contains("--force"), "{old}");

    std::fs::remove_dir_all(&raw).unwrap();
    let pruned = stderr(&["replay", &first_run]);
    assert!(pruned.contains("has no raw archive"), "{pruned}");

    std::fs::remove_file(project.path().join(PIPELINE)).unwrap();
    let gone = stderr(&["replay", &first_run]);
    assert!(
        gone.contains(&format!(
            "pipeline `{ID}`, which no pipeline file defines any more"
        )),
        "{gone}"
    );
}
