//! `indikator prune`: a retired pipeline removed whole, the others untouched and readable.

use crate::util::{Project, read_parquet, strings, text};

const RETIRED: &str = "lupp-trygghet";
const KEPT: &str = "scb-folkmangd-barn";

#[test]
fn a_retired_pipeline_goes_whole_and_the_others_stay_readable() {
    let project = Project::with_samples();
    let ran = project.run(&["run", RETIRED, KEPT]);
    assert!(ran.status.success(), "{}", text(&ran));
    let warehouse = project.warehouse();
    let coverage = warehouse.join("catalog/coverage.parquet");
    let pipelines = || strings(&read_parquet(&coverage), "pipeline");
    assert!(pipelines().iter().any(|p| p == RETIRED));
    let retired_dir = warehouse.join(format!("observations/pipeline={RETIRED}"));
    assert!(retired_dir.is_dir());

    let refused = project.run(&["prune", "--pipeline", RETIRED]);
    assert!(!refused.status.success(), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is still defined by") && stderr.contains("lupp-trygghet.toml"),
        "{stderr}"
    );
    assert!(
        stderr.contains("remove or rename the file first"),
        "{stderr}"
    );

    std::fs::remove_file(project.path().join("pipelines/samples/lupp-trygghet.toml")).unwrap();
    let dry = project.run(&["prune", "--pipeline", RETIRED, "--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(stdout.contains("would remove partitions"), "{stdout}");
    assert!(stdout.contains("would remove raw archive"), "{stdout}");
    assert!(retired_dir.is_dir(), "a dry run removes nothing");
    assert!(pipelines().iter().any(|p| p == RETIRED));

    let pruned = project.run(&["prune", "--pipeline", RETIRED]);
    assert!(pruned.status.success(), "{}", text(&pruned));
    let stdout = String::from_utf8_lossy(&pruned.stdout);
    assert!(stdout.contains("removed partitions"), "{stdout}");
    assert!(stdout.contains("bytes freed"), "{stdout}");
    assert!(!retired_dir.exists());
    assert!(!warehouse.join(format!("raw/{RETIRED}")).exists());
    assert!(!warehouse.join(".retired").read_dir().unwrap().any(|_| true));
    let left = pipelines();
    assert!(
        !left.is_empty() && left.iter().all(|p| p == KEPT),
        "{left:?}"
    );
    for catalog in ["indicators", "areas", "coverage", "tables", "codes"] {
        read_parquet(&warehouse.join(format!("catalog/{catalog}.parquet")));
    }
    let part = warehouse.join(format!(
        "observations/pipeline={KEPT}/year=2024/part-00000.parquet"
    ));
    assert!(!read_parquet(&part).is_empty());
    assert!(warehouse.join(format!("raw/{KEPT}")).is_dir());

    let again = project.run(&["run", KEPT]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("skipped"),
        "{}",
        text(&again)
    );
}

#[test]
fn prune_keeps_the_last_raw_archives_the_settings_allow() {
    let project = Project::with_samples();
    project.write("indikator.toml", "[retention]\nraw_runs = 1\n");
    for _ in 0..3 {
        let ran = project.run(&["run", KEPT, "--force"]);
        assert!(ran.status.success(), "{}", text(&ran));
    }
    let raw = project.warehouse().join(format!("raw/{KEPT}"));
    assert_eq!(std::fs::read_dir(&raw).unwrap().count(), 3);
    let pruned = project.run(&["prune"]);
    assert!(pruned.status.success(), "{}", text(&pruned));
    assert!(
        String::from_utf8_lossy(&pruned.stdout).contains("ledger vacuumed"),
        "{}",
        text(&pruned)
    );
    assert_eq!(std::fs::read_dir(&raw).unwrap().count(), 1);
}
