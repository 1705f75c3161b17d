//! What `check` and `run` print about pipeline files, line by line: each problem once, at the
//! TOML key it is about, never `error: error:`; `check` takes ids and files as `run` does.

use std::process::Output;

use crate::util::{Project, text};

/// A pipeline over the bundled SCB sample, with `[map]` lines `map` and whatever `after` adds.
fn pipeline(map: &str, after: &str) -> String {
    format!(
        "id = \"x\"\n[source]\nkind = \"file\"\npath = \"samples/data/scb_folkmangd_barn.json\"\n\
         format = \"jsonstat\"\n[map]\nindicator = \"folkmangd_0_17\"\narea = \"Region\"\n\
         period = {{ column = \"Tid\", kind = \"year\" }}\n{map}{after}"
    )
}

/// The bundled samples and `pipelines/x.toml`.
fn project_with(contents: &str) -> Project {
    let project = Project::with_samples();
    project.write("pipelines/x.toml", contents);
    project
}

/// stderr (or stdout) with the project directory written `<dir>`.
fn shown(project: &Project, bytes: &[u8]) -> String {
    let mut shown = String::from_utf8_lossy(bytes).into_owned();
    let canonical = project.path().canonicalize().unwrap();
    for dir in [canonical.as_path(), project.path()] {
        shown = shown.replace(&dir.display().to_string(), "<dir>");
    }
    shown.trim_end().to_string()
}

fn failed(output: &Output) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
}

#[test]
fn an_unknown_top_level_table_is_reported_once_at_its_name() {
    let project = project_with(&pipeline("unit = \"count\"\n", "[extra]\na = 1\n"));
    let output = project.run(&["check"]);
    failed(&output);
    insta::assert_snapshot!(shown(&project, &output.stderr), @"error: <dir>/pipelines/x.toml: extra: unknown field `extra`, expected one of `id`, `schedule`, `timezone`, `retries`, `timeout_secs`, `jitter_secs`, `description`, `max_reject_ratio`, `source`, `validate`, `map`");
    insta::assert_snapshot!(shown(&project, &output.stdout), @"5 pipelines checked: 1 errors, 0 warnings");
}

#[test]
fn a_map_without_unit_is_reported_at_map_unit() {
    let project = project_with(&pipeline("", "[validate]\nschema = \"x.json\"\n"));
    let output = project.run(&["check"]);
    failed(&output);
    insta::assert_snapshot!(shown(&project, &output.stderr), @"error: <dir>/pipelines/x.toml: map.unit: missing field `unit`");
}

#[test]
fn keys_inside_tables_are_reported_with_their_table() {
    for (map, expected) in [
        (
            "unit = \"count\"\n[map.extra]\na = 1\n",
            "error: pipelines/x.toml: map.extra: unknown field `extra`",
        ),
        (
            "unit = \"count\"\nsex = { column = \"Kon\", kodes = {} }\n",
            "error: pipelines/x.toml: map.sex.kodes: unknown field `kodes`",
        ),
    ] {
        let project = project_with(&pipeline(map, ""));
        let output = project.run(&["check", "pipelines/x.toml"]);
        failed(&output);
        let stderr = shown(&project, &output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(expected), "`{expected}` in:\n{stderr}");
    }
}

#[test]
fn a_file_without_id_is_reported_at_id() {
    let without_id = pipeline("unit = \"count\"\n", "").replace("id = \"x\"\n", "");
    let project = project_with(&without_id);
    let output = project.run(&["check", "pipelines/x.toml"]);
    failed(&output);
    insta::assert_snapshot!(shown(&project, &output.stderr), @"error: pipelines/x.toml: id: missing field `id`");
}

#[test]
fn a_file_without_source_is_reported_at_source_after_a_leading_comment() {
    let without_source = "# No source yet.\nid = \"x\"\n[map]\nindicator = \"i\"\narea = \"Region\"\n\
                          period = \"Tid\"\nunit = \"count\"\n";
    let project = project_with(without_source);
    let output = project.run(&["check", "pipelines/x.toml"]);
    failed(&output);
    insta::assert_snapshot!(shown(&project, &output.stderr), @"error: pipelines/x.toml: source: missing field `source`");
}

#[test]
fn running_a_broken_pipeline_file_prints_its_problems_once_without_doubled_error() {
    let project = project_with(&pipeline("unit = \"count\"\n", "[extra]\na = 1\n"));
    let output = project.run(&["run", "pipelines/x.toml"]);
    failed(&output);
    let stderr = shown(&project, &output.stderr);
    assert!(!stderr.contains("error: error:"), "{stderr}");
    insta::assert_snapshot!(stderr, @"error: pipelines/x.toml: extra: unknown field `extra`, expected one of `id`, `schedule`, `timezone`, `retries`, `timeout_secs`, `jitter_secs`, `description`, `max_reject_ratio`, `source`, `validate`, `map`");

    for args in [
        &["run", "no-such-id"][..],
        &["run"],
        &["run", "--all"],
        &["check", "pipelines/x.toml"],
    ] {
        let output = project.run(args);
        failed(&output);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.lines().all(|line| !line.contains("error: error:")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[test]
fn check_takes_a_pipeline_file_or_an_id() {
    let project = Project::with_samples();
    for name in [
        "pipelines/samples/scb-folkmangd-barn.toml",
        "scb-folkmangd-barn",
    ] {
        let output = project.run(&["check", name]);
        assert!(output.status.success(), "{name}: {}", text(&output));
        assert_eq!(
            shown(&project, &output.stdout),
            "1 pipelines checked: 0 errors, 0 warnings",
            "{name}"
        );
        assert_eq!(shown(&project, &output.stderr), "", "{name}");
    }
}

#[test]
fn check_of_an_unknown_id_fails_naming_it() {
    let project = Project::with_samples();
    let output = project.run(&["check", "no-such-id"]);
    failed(&output);
    insta::assert_snapshot!(shown(&project, &output.stderr), @"error: <dir>/pipelines: no pipeline has id `no-such-id`; `indikator pipelines` lists them");
    insta::assert_snapshot!(shown(&project, &output.stdout), @"0 pipelines checked: 1 errors, 0 warnings");
}

#[test]
fn running_an_id_two_files_share_fails_naming_both() {
    let project = Project::with_samples();
    let sample = project.path().join("pipelines/samples/lupp-trygghet.toml");
    project.write(
        "pipelines/samples/copy.toml",
        std::fs::read_to_string(&sample).unwrap(),
    );
    let output = project.run(&["run", "lupp-trygghet"]);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("id `lupp-trygghet` is used by ")
            && stderr.contains("copy.toml")
            && stderr.contains("lupp-trygghet.toml"),
        "{stderr}"
    );
    assert!(!project.warehouse().join("observations").exists());
}
