//! The run service beside another process: a run held at a failpoint is a live holder of its
//! pipeline; other pipelines run undisturbed beside it, the same pipeline is refused naming the
//! run that holds it, start-up recovery leaves it alone, and SIGTERM cancels it with nothing
//! committed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use indikator::config::Settings;
use indikator::ledger::RunStatus;
use indikator::pipeline::Pipeline;
use indikator::schemas::Schemas;
use indikator::service::Service;
use indikator::warehouse::Warehouse;

use crate::util::{Project, run_in_service, text};

const HELD: &str = "scb-folkmangd-barn";

/// Every part file of a pipeline with its modification time.
fn parts(warehouse: &Path, pipeline: &str) -> Vec<(PathBuf, SystemTime)> {
    let dir = warehouse.join(format!("observations/pipeline={pipeline}"));
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|year| std::fs::read_dir(year.unwrap().path()).unwrap())
        .map(|file| {
            let path = file.unwrap().path();
            let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
            (path, modified)
        })
        .collect();
    parts.sort();
    parts
}

/// `indikator run HELD --force` held at failpoint `point`, once it says it is paused.
fn paused_run(project: &Project, point: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_indikator"))
        .args(["run", HELD, "--force"])
        .current_dir(project.path())
        .env("INDIKATOR_FAILPOINT", format!("{point}@pause"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained to the end on a thread of its own: a closed pipe would fail the child's writes.
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (paused, waiting) = std::sync::mpsc::channel();
    let expected = format!("failpoint {point}: paused");
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains(&expected) {
                let _ = paused.send(());
            }
        }
    });
    waiting
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the run pauses at {point}"));
    child
}

/// Commits `HELD` once.
fn run_once(project: &Project) {
    let first = project.run(&["run", HELD]);
    assert!(first.status.success(), "{}", text(&first));
}

/// Sends SIGTERM to `child` and waits for it to end.
fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    child.wait().unwrap()
}

/// The status and run id of the latest run of `pipeline`, from `indikator history`.
fn latest(project: &Project, pipeline: &str) -> (String, String) {
    let output = project.run(&["history", pipeline, "--limit", "1"]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let fields: Vec<&str> = stdout.split_whitespace().collect();
    (fields[1].to_string(), fields[2].to_string())
}

#[test]
fn a_paused_run_holds_its_pipeline_only_and_sigterm_cancels_it_with_nothing_committed() {
    let project = Project::with_samples();
    run_once(&project);
    let committed = parts(&project.warehouse(), HELD);

    let mut holder = paused_run(&project, "stage.written");
    let (status, held_by) = latest(&project, HELD);
    assert_eq!(status, "running");

    // Another pipeline runs beside it, and its start-up recovery leaves the live run alone.
    let other = project.run(&["run", "lupp-trygghet"]);
    assert!(other.status.success(), "{}", text(&other));
    assert_eq!(
        latest(&project, HELD),
        ("running".to_string(), held_by.clone())
    );
    assert!(
        project.warehouse().join(".staging").join(&held_by).is_dir(),
        "the live run's staging is kept"
    );

    // The same pipeline is refused, naming the run that holds it.
    let same = project.run(&["run", HELD, "--force"]);
    assert!(!same.status.success(), "{}", text(&same));
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert!(stderr.contains(&held_by), "{stderr}");

    // SIGTERM: the paused run lets go, meets the cancellation and commits nothing.
    let exit = terminate(&mut holder);
    assert_eq!(
        exit.code(),
        Some(1),
        "the run ends by itself, not by the signal"
    );
    assert_eq!(
        latest(&project, HELD),
        ("interrupted".to_string(), held_by.clone())
    );
    let history = project.run(&["history", HELD, "--limit", "1"]);
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("cancelled before it committed"),
        "{}",
        text(&history)
    );
    assert_eq!(
        parts(&project.warehouse(), HELD),
        committed,
        "nothing committed"
    );
    assert!(!project.warehouse().join(".staging").join(&held_by).exists());

    // Free again.
    let after = project.run(&["run", HELD, "--force"]);
    assert!(after.status.success(), "{}", text(&after));
}

#[test]
fn sigterm_after_the_commit_lets_the_run_record_it() {
    let project = Project::with_samples();
    run_once(&project);
    let before = parts(&project.warehouse(), HELD);

    let mut held = paused_run(&project, "ledger.finish");
    let (status, run_id) = latest(&project, HELD);
    assert_eq!(status, "running");
    let exit = terminate(&mut held);
    assert!(exit.success(), "a committed run stays committed: {exit}");
    assert_eq!(latest(&project, HELD), ("succeeded".to_string(), run_id));
    let after = parts(&project.warehouse(), HELD);
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().zip(&before).all(|(a, b)| a.1 > b.1),
        "every part rewritten"
    );
}

/// The sample pipeline `HELD` checked in `project`, and a service over its state directory.
fn library_service(project: &Project) -> (Service, Arc<Pipeline>, Warehouse) {
    let settings = Settings::load(None, project.path()).unwrap();
    let schemas = Schemas::load(&settings.schemas_dir).unwrap();
    let file = project
        .path()
        .join(format!("pipelines/samples/{HELD}.toml"));
    let (pipeline, _) = indikator::pipeline::check_file(&file, &settings, &schemas).unwrap();
    let warehouse = Warehouse::new(&settings.warehouse_dir);
    (
        Service::open(settings, schemas).unwrap(),
        Arc::new(pipeline),
        warehouse,
    )
}

#[test]
fn a_run_left_running_is_interrupted_by_the_next_run_of_its_pipeline() {
    // A manual run killed while a daemon held on: no start-up recovery will see it, the
    // pipeline's next run must.
    let project = Project::with_samples();
    let (service, pipeline, warehouse) = library_service(&project);
    let root = warehouse.root().display().to_string();
    service
        .ledger()
        .start_run(
            "20261201T000000-000-dead",
            HELD,
            "manual",
            "2026-12-01T00:00:00Z",
            &root,
        )
        .unwrap();
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Succeeded
    );
    assert_eq!(
        service.ledger().status("20261201T000000-000-dead").unwrap(),
        Some(RunStatus::Interrupted)
    );
}

#[test]
fn recovery_leaves_the_staging_of_runs_its_ledger_does_not_know() {
    // Another state directory's live run writing into the same warehouse.
    let project = Project::with_samples();
    let (service, pipeline, warehouse) = library_service(&project);
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Succeeded
    );
    let ended = service.ledger().history(Some(HELD), 1).unwrap()[0]
        .run_id
        .clone();
    let staging = warehouse.root().join(".staging");
    for run in [&ended, "20261201T000000-000-elsewhere"] {
        std::fs::create_dir_all(staging.join(run).join("year=2020")).unwrap();
    }
    let recovered = service.recover(&warehouse).unwrap();
    assert_eq!(recovered.staging_removed, std::slice::from_ref(&ended));
    assert!(!staging.join(&ended).exists());
    assert!(staging.join("20261201T000000-000-elsewhere").exists());
}

/// Takes `HELD`'s lock as another holder would, with `note` in it, until the file is dropped.
fn hold_with_note(project: &Project, note: &str) -> std::fs::File {
    let settings = Settings::load(None, project.path()).unwrap();
    let dir = settings.state_dir.join("locks");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{HELD}.lock"));
    std::fs::write(&path, note).unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.try_lock().unwrap();
    file
}

#[test]
fn a_run_waits_for_a_holder_that_has_not_yet_said_who_it_is_and_not_for_one_that_has() {
    let project = Project::with_samples();
    let (service, pipeline, warehouse) = library_service(&project);
    // A holder that took the lock a moment ago (a start-up recovery, say) and has not yet
    // replaced the note a killed holder left behind: the note names a process that is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let stale = format!(
        "run_id=20261201T000000-000-killed\npid={}\nstarted=2026-12-01T00:00:00.000Z\n",
        gone.id()
    );
    let holder = hold_with_note(&project, &stale);
    let released = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(holder);
    });
    assert_eq!(
        run_in_service(&service, &pipeline, &warehouse),
        RunStatus::Succeeded
    );
    released.join().unwrap();

    // A live run's note is believed: refused at once, naming it.
    let live = format!(
        "run_id=20261201T000000-000-live\npid={}\nstarted=2026-12-01T00:00:00.000Z\n",
        std::process::id()
    );
    let _holder = hold_with_note(&project, &live);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = crate::util::manual_request(&warehouse, false);
    let started = std::time::Instant::now();
    let refused = runtime
        .block_on(service.run(pipeline.clone(), request))
        .unwrap_err();
    assert!(
        refused.to_string().contains("run 20261201T000000-000-live"),
        "{refused}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}
