//! `indikator serve` as a child process on loopback: the admin API over real HTTP (token, 409 for
//! a busy pipeline, cancel), `trigger --wait`, `/metrics` read by Prometheus' own parser, the
//! refusals at start-up, SIGTERM while a run writes and the one catch-up after a downtime, many
//! requests at once while a run is held, and the `status`/`trigger` client.
//!
//! A run is held mid-write by `INDIKATOR_FAILPOINT=<point>@pause` (it waits for its cancellation
//! token). Everything waits by polling with generous deadlines: these tests share two cores with
//! the rest of the suite.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use arrow_array::{Array, Float64Array};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{Project, python, read_parquet, run_python, text};

const SCB: &str = "scb-folkmangd-barn";
const SAMPLE_IDS: [&str; 3] = ["lupp-trygghet", SCB, "skolverket-behorighet"];
/// How long anything may take to happen before a test gives up (CI runs ~80 tests on 2 cores).
const PATIENCE: Duration = Duration::from_secs(90);
const TOKEN: &str = "s3cret-token-for-tests";

/// Environment variables of ours that a child must not inherit from whoever runs the tests.
const OURS: [&str; 4] = [
    "INDIKATOR_FAILPOINT",
    "INDIKATOR_ADMIN_TOKEN",
    "INDIKATOR_URL",
    "INDIKATOR_LOG",
];

/// An HTTP answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), read to its end.
fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let bad = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string());
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| bad("no head"))?;
    let status = (head.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunks"))?
    } else {
        body.to_string()
    };
    Ok(Answer { status, body })
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// A port nobody listens on now (the OS's choice, released at once; the daemon may lose it to
/// another process, so starting retries).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("an address").port()
}

/// Polls `check` until it gives a value, panicking with `what` after [`PATIENCE`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `indikator.toml` for a daemon on `port`: grace 2 s, `extra` appended (more keys).
fn write_settings(project: &Project, bind: &str, extra: &str) {
    project.write(
        "indikator.toml",
        format!("[serve]\ngrace_secs = 2\n\n[admin]\nbind = \"{bind}\"\n{extra}"),
    );
}

/// Adds a schedule (UTC) to a sample pipeline of the project.
fn schedule(project: &Project, id: &str, cron: &str) {
    let path = project.path().join(format!("pipelines/samples/{id}.toml"));
    let toml = std::fs::read_to_string(&path).unwrap();
    let toml = toml.replacen(
        "\n[source]",
        &format!("schedule = \"{cron}\"\ntimezone = \"UTC\"\n\n[source]"),
        1,
    );
    std::fs::write(&path, toml).unwrap();
}

/// `indikator ARGS` in the project, with only the environment `env` of ours.
fn command(project: &Project, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_indikator"));
    command.args(args).current_dir(project.path());
    for name in OURS {
        command.env_remove(name);
    }
    command.env("INDIKATOR_LOG", "indikator=info");
    command.envs(env.iter().copied());
    command
}

/// A running `indikator serve`, killed when dropped.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
    token: Option<String>,
}

impl Served {
    /// Starts `serve` in `project` on a free port (with `extra` settings and `env`), and waits
    /// until it answers `/healthz`; a lost port is retried on another.
    fn start(project: &Project, extra: &str, env: &[(&str, &str)]) -> Self {
        let token = (env.iter())
            .find(|(name, _)| *name == "INDIKATOR_ADMIN_TOKEN")
            .map(|(_, value)| value.to_string());
        for attempt in 0.. {
            let port = free_port();
            write_settings(project, &format!("127.0.0.1:{port}"), extra);
            let log = log_file(project);
            let mut child = command(project, &["serve"], env)
                .stdout(Stdio::null())
                .stderr(File::create(&log).unwrap())
                .spawn()
                .expect("serve starts");
            // "serving" is logged once the listener is bound: from then on the port is ours.
            let up = wait_for("the daemon to serve or exit", || {
                if let Some(status) = child.try_wait().unwrap() {
                    return Some(Err(status));
                }
                let serving = read(&log).contains(" serving ");
                (serving && request(port, "GET", "/healthz", None).is_ok_and(|a| a.status == 200))
                    .then_some(Ok(()))
            });
            let served = Self {
                child,
                port,
                log,
                token: token.clone(),
            };
            match up {
                Ok(()) => return served,
                Err(_) if attempt < 5 && served.log().contains("cannot listen on") => continue,
                Err(status) => panic!("serve exited at start ({status}):\n{}", served.log()),
            }
        }
        unreachable!()
    }

    fn log(&self) -> String {
        read(&self.log)
    }

    /// A request with this daemon's token (if any); panics when the API cannot be reached.
    fn call(&self, method: &str, path: &str) -> Answer {
        request(self.port, method, path, self.token.as_deref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    fn get(&self, path: &str) -> Answer {
        self.call("GET", path)
    }

    fn run(&self, run_id: &str) -> Value {
        let answer = self.get(&format!("/api/v1/runs/{run_id}"));
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.json()
    }

    /// Triggers `pipeline`; its run id.
    fn trigger(&self, pipeline: &str) -> String {
        let answer = self.call("POST", &format!("/api/v1/pipelines/{pipeline}/runs"));
        assert_eq!(answer.status, 202, "{answer:?}\n{}", self.log());
        answer.json()["run_id"].as_str().unwrap().to_string()
    }

    /// Waits until run `run_id` has ended; its final state.
    fn wait_until_ended(&self, run_id: &str) -> Value {
        wait_for(&format!("run {run_id} to end"), || {
            let run = self.run(run_id);
            (!matches!(run["status"].as_str(), Some("queued" | "running"))).then_some(run)
        })
    }

    /// Waits until run `run_id` is running and held at the paused failpoint `point`.
    fn wait_until_paused(&self, run_id: &str, point: &str) {
        let paused = format!("failpoint {point}: paused");
        wait_for(&format!("run {run_id} to pause at {point}"), || {
            let running = self.run(run_id)["status"] == "running";
            (running && self.log().contains(&paused)).then_some(())
        });
    }

    /// Sends SIGTERM and waits at most `limit` for the process to end.
    fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let pid = self.child.id().to_string();
        let sent = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(kill.success(), "kill -TERM {pid}");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, sent.elapsed());
            }
            assert!(
                sent.elapsed() < limit,
                "serve did not stop within {limit:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A new log file name in the project, one per process started.
fn log_file(project: &Project) -> PathBuf {
    (0..)
        .map(|n| project.path().join(format!("serve-{n}.log")))
        .find(|path| !path.exists())
        .unwrap()
}

/// Runs a command to its end within [`PATIENCE`]; stdout and stderr.
fn finish(mut command: Command) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        stdout.read_to_end(&mut text).map(|_| text)
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        stderr.read_to_end(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("{command:?} did not end within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// The partition files of `pipeline` in the project's warehouse.
fn partition_files(project: &Project, pipeline: &str) -> Vec<PathBuf> {
    let dir = project
        .warehouse()
        .join(format!("observations/pipeline={pipeline}"));
    let Ok(years) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = years
        .flat_map(|year| std::fs::read_dir(year.unwrap().path()).unwrap())
        .map(|file| file.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Rows and the sum of `value` over files, each read whole (panics if one is not Parquet).
fn rows_and_sum(files: &[PathBuf]) -> (usize, f64) {
    let (mut rows, mut sum) = (0, 0.0);
    for file in files {
        for batch in read_parquet(file) {
            rows += batch.num_rows();
            let values = batch.column_by_name("value").expect("a value column");
            let values = values.as_any().downcast_ref::<Float64Array>().unwrap();
            sum += (0..values.len())
                .filter(|&i| values.is_valid(i))
                .map(|i| values.value(i))
                .sum::<f64>();
        }
    }
    (rows, sum)
}

/// The ledger of the project, read-only beside the daemon.
fn ledger(project: &Project) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open_with_flags(
        project.path().join("state/ledger.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("the ledger opens");
    connection.busy_timeout(Duration::from_secs(30)).unwrap();
    connection
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}`: {e}"))
        .to_utc()
}

/// Every fire time claimed for `pipeline`, in order: (scheduled, fired, run id).
fn fires(project: &Project, pipeline: &str) -> Vec<(DateTime<Utc>, DateTime<Utc>, Option<String>)> {
    let ledger = ledger(project);
    let mut query = ledger
        .prepare(
            "SELECT scheduled_utc, fired, run_id FROM fires WHERE pipeline = ?1 ORDER BY scheduled_utc",
        )
        .unwrap();
    query
        .query_map([pipeline], |row| {
            Ok((
                utc(&row.get::<_, String>(0)?),
                utc(&row.get::<_, String>(1)?),
                row.get(2)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Status and rows written of a run, from the ledger.
fn ledger_run(project: &Project, run_id: &str) -> (String, i64) {
    ledger(project)
        .query_row(
            "SELECT status, rows_written FROM runs WHERE run_id = ?1",
            [run_id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("run {run_id} in the ledger: {e}"))
}

/// The SCB sample's values, multiplied by `factor`, written over the project's copy; the sum.
fn scale_scb(project: &Project, factor: f64) -> f64 {
    let path = project
        .path()
        .join("pipelines/samples/data/scb_folkmangd_barn.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut sum = 0.0;
    for value in json["value"].as_array_mut().unwrap() {
        if let Some(number) = value.as_f64() {
            sum += number * factor;
            *value = Value::from((number * factor).round() as i64);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    sum
}

#[test]
fn the_admin_api_asks_for_the_token_holds_one_run_per_pipeline_and_cancels() {
    let project = Project::with_samples();
    let daemon = Served::start(
        &project,
        "",
        &[
            ("INDIKATOR_ADMIN_TOKEN", TOKEN),
            ("INDIKATOR_FAILPOINT", "stage.written@pause"),
        ],
    );
    let port = daemon.port;
    for probe in ["/healthz", "/readyz"] {
        let answer = request(port, "GET", probe, None).unwrap();
        assert_eq!(answer.status, 200, "{probe}: {answer:?}");
    }
    for path in ["/api/v1/pipelines", "/api/v1/runs", "/metrics"] {
        for token in [None, Some("wrong")] {
            let answer = request(port, "GET", path, token).unwrap();
            assert_eq!(answer.status, 401, "{path} with {token:?}: {answer:?}");
            assert_eq!(answer.json()["error"], "unauthorized");
        }
        assert_eq!(daemon.get(path).status, 200, "{path} with the token");
    }
    let refused = request(port, "POST", &format!("/api/v1/pipelines/{SCB}/runs"), None).unwrap();
    assert_eq!(refused.status, 401, "{refused:?}");

    let first = daemon.trigger(SCB);
    let second = daemon.call("POST", &format!("/api/v1/pipelines/{SCB}/runs"));
    assert_eq!(second.status, 409, "{second:?}");
    let busy = second.json();
    assert_eq!(busy["error"], "busy");
    assert!(busy["detail"].as_str().unwrap().contains(&first), "{busy}");

    daemon.wait_until_paused(&first, "stage.written");
    let cancel = daemon.call("POST", &format!("/api/v1/runs/{first}/cancel"));
    assert_eq!(cancel.status, 202, "{cancel:?}");
    let ended = daemon.wait_until_ended(&first);
    assert_eq!(ended["status"], "cancelled", "{ended}");
    assert!(
        partition_files(&project, SCB).is_empty(),
        "a cancelled run committed {:?}",
        partition_files(&project, SCB)
    );
    assert!(!project.warehouse().join(".staging").join(&first).exists());

    let again = daemon.call("POST", &format!("/api/v1/runs/{first}/cancel"));
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(again.json()["error"], "not_active");
    for (method, path) in [
        ("GET", "/api/v1/runs/no-such-run"),
        ("POST", "/api/v1/runs/no-such-run/cancel"),
    ] {
        let answer = daemon.call(method, path);
        assert_eq!(answer.status, 404, "{method} {path}: {answer:?}");
        assert_eq!(answer.json()["error"], "unknown_run");
    }
}

/// Reads Prometheus text with prometheus_client's parser; every sample as [name, labels, value].
const PARSE_METRICS: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
print(json.dumps(samples))
"#;

#[test]
fn trigger_wait_succeeds_and_the_metrics_parse_as_prometheus_text() {
    let project = Project::with_samples();
    let daemon = Served::start(&project, "", &[]);
    let output = finish(command(&project, &["trigger", SCB, "--wait"], &[]));
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let run_id = (stdout.lines())
        .find_map(|line| {
            line.strip_prefix(&format!("{SCB}: run "))?
                .strip_suffix(" queued")
        })
        .unwrap_or_else(|| panic!("no run id in {stdout}"));
    let run = daemon.run(run_id);
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(run["rows_written"].as_u64().unwrap() > 0, "{run}");

    // The ledger says `succeeded` once the run's end is recorded; the runner counts it a little
    // later (after the catalogs are rewritten), so the scrape waits for the count to appear.
    let counted = format!("indikator_runs_total{{pipeline=\"{SCB}\",status=\"succeeded\"}}");
    let metrics = wait_for("the run to be counted", || {
        let metrics = daemon.get("/metrics");
        assert_eq!(metrics.status, 200, "{metrics:?}");
        metrics.body.contains(&counted).then_some(metrics)
    });
    let Some(python) = python() else { return };
    let file = project.write("metrics.txt", &metrics.body);
    let parsed: Value =
        serde_json::from_str(&run_python(&python, PARSE_METRICS, &[&file])).unwrap();
    let succeeded = (parsed.as_array().unwrap().iter())
        .find(|s| {
            s[0] == "indikator_runs_total"
                && s[1]["pipeline"] == SCB
                && s[1]["status"] == "succeeded"
        })
        .unwrap_or_else(|| panic!("no succeeded count for {SCB} in\n{}", metrics.body));
    assert_eq!(succeeded[2], 1.0, "{succeeded}");
}

#[test]
fn an_open_admin_address_without_a_token_is_refused_at_once() {
    let project = Project::with_samples();
    write_settings(&project, &format!("0.0.0.0:{}", free_port()), "");
    let started = Instant::now();
    let output = finish(command(&project, &["serve"], &[]));
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("without a token") && stderr.contains("INDIKATOR_ADMIN_TOKEN"),
        "{stderr}"
    );
}

#[test]
fn beside_a_daemon_holding_a_run_a_second_daemon_and_a_manual_run_are_refused() {
    let project = Project::with_samples();
    let daemon = Served::start(
        &project,
        "",
        &[("INDIKATOR_FAILPOINT", "stage.written@pause")],
    );
    let held = daemon.trigger(SCB);
    daemon.wait_until_paused(&held, "stage.written");

    // Its own settings file and port: refused for the state directory, not for the address.
    project.write(
        "second.toml",
        format!("[admin]\nbind = \"127.0.0.1:{}\"\n", free_port()),
    );
    let second = finish(command(
        &project,
        &["--config", "second.toml", "serve"],
        &[],
    ));
    assert!(!second.status.success(), "{}", text(&second));
    let stderr = String::from_utf8_lossy(&second.stderr);
    let first_pid = format!("pid {}", daemon.child.id());
    assert!(
        stderr.contains("another `indikator serve`") && stderr.contains(&first_pid),
        "{stderr}"
    );

    let manual = finish(command(&project, &["run", SCB], &[]));
    assert!(!manual.status.success(), "{}", text(&manual));
    let stderr = String::from_utf8_lossy(&manual.stderr);
    assert!(stderr.contains(&format!("run {held}")), "{stderr}");
    assert_eq!(daemon.run(&held)["status"], "running");
}

/// SIGTERM while a scheduled run is held at `point`; the run ends `expected`, every partition
/// file is whole and holds what the ledger says; after a downtime of more than three fire times
/// the next start fires once for all of them.
fn sigterm_while_writing(point: &str, expected: &str) {
    let project = Project::with_samples();
    // A first commit, then new content for the scheduled run to write over it.
    let first = crate::util::text(&command(&project, &["run", SCB], &[]).output().unwrap());
    assert!(first.contains(&format!("{SCB}: succeeded")), "{first}");
    let old_sum = {
        let path = project
            .path()
            .join("pipelines/samples/data/scb_folkmangd_barn.json");
        let json: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        json["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .sum::<f64>()
    };
    let new_sum = scale_scb(&project, 2.0);
    schedule(&project, SCB, "*/2 * * * * *");

    let pause = format!("{point}@pause");
    let mut daemon = Served::start(&project, "", &[("INDIKATOR_FAILPOINT", &pause)]);
    let held = wait_for("a scheduled run", || {
        let runs = daemon.get(&format!("/api/v1/runs?pipeline={SCB}&status=running"));
        (runs.json()["runs"].as_array()?.first()?["run_id"].as_str()).map(str::to_string)
    });
    daemon.wait_until_paused(&held, point);

    let grace = Duration::from_secs(2);
    let (status, took) = daemon.terminate(grace + Duration::from_secs(15));
    assert!(status.success(), "{status}:\n{}", daemon.log());
    assert!(
        took >= grace,
        "stopped after {took:?}, before the grace period"
    );
    let stopped = Utc::now();
    drop(daemon);

    let (status, rows_written) = ledger_run(&project, &held);
    assert_eq!(status, expected, "run {held}");
    let files = partition_files(&project, SCB);
    assert_eq!(files.len(), 5, "{files:?}");
    let (rows, sum) = rows_and_sum(&files);
    // What the ledger says was last committed is what the files hold: the held run's rows and
    // new values if its commit finished, else the first run's.
    let committed_sum = if expected == "succeeded" {
        new_sum
    } else {
        old_sum
    };
    assert_eq!(rows as i64, last_succeeded_rows(&project, SCB));
    if expected == "succeeded" {
        assert_eq!(rows as i64, rows_written);
    }
    assert_eq!(sum, committed_sum);

    // A downtime of at least three fire times, then a start without the failpoint.
    let last_fire = fires(&project, SCB)
        .last()
        .expect("fires before the stop")
        .0;
    let downtime = Duration::from_secs(7);
    let waited = (Utc::now() - stopped).to_std().unwrap_or_default();
    std::thread::sleep(downtime.saturating_sub(waited));
    let restarted_at = Utc::now();
    let daemon = Served::start(&project, "", &[]);
    let catch_up = wait_for("the catch-up fire", || {
        let log = daemon.log();
        let line = log.lines().find(|line| line.contains("catching up"))?;
        let slot = line.split("slot=").nth(1)?.split_whitespace().next()?;
        Some(utc(slot))
    });
    assert!(catch_up > last_fire, "{catch_up} after {last_fire}");
    assert!(
        catch_up > restarted_at - chrono::Duration::seconds(2),
        "the catch-up {catch_up} is the latest missed slot (restart at {restarted_at})"
    );
    let missed = (catch_up - last_fire).num_seconds() / 2;
    assert!(missed >= 3, "{missed} slots missed");
    // The line is logged just before the slot is claimed in the ledger.
    let in_downtime = wait_for("the catch-up's fire row", || {
        let fires = fires(&project, SCB);
        (fires.iter().any(|(slot, ..)| *slot == catch_up)).then_some(())?;
        let in_downtime: Vec<_> = (fires.into_iter())
            .filter(|(slot, ..)| *slot > last_fire && *slot <= catch_up)
            .collect();
        Some(in_downtime)
    });
    assert_eq!(
        in_downtime.len(),
        1,
        "{missed} missed slots fired {in_downtime:?}"
    );

    // The catch-up runs; the interrupted run's staging is gone.
    let run_id = wait_for("the catch-up's run", || {
        let (_, _, run_id) = fires(&project, SCB)
            .into_iter()
            .find(|(slot, ..)| *slot == catch_up)?;
        run_id
    });
    let ended = daemon.wait_until_ended(&run_id);
    assert!(
        matches!(ended["status"].as_str(), Some("succeeded" | "skipped")),
        "{ended}"
    );
    assert!(!project.warehouse().join(".staging").join(&held).exists());
    let (rows, sum) = rows_and_sum(&partition_files(&project, SCB));
    assert_eq!(
        (rows as i64, sum),
        (last_succeeded_rows(&project, SCB), new_sum)
    );
    assert_eq!(ledger_run(&project, &held).0, expected);
}

/// Rows written by the last succeeded run of `pipeline`.
fn last_succeeded_rows(project: &Project, pipeline: &str) -> i64 {
    ledger(project)
        .query_row(
            "SELECT rows_written FROM runs WHERE pipeline = ?1 AND status = 'succeeded' \
             ORDER BY started DESC LIMIT 1",
            [pipeline],
            |row| row.get(0),
        )
        .unwrap()
}

#[test]
fn sigterm_while_staging_interrupts_the_run_and_the_next_start_catches_up_once() {
    sigterm_while_writing("stage.written", "interrupted");
}

#[test]
fn sigterm_during_the_commit_lets_it_finish_and_the_next_start_catches_up_once() {
    sigterm_while_writing("commit.rename", "succeeded");
}

#[test]
fn five_thousand_requests_fifty_at_once_all_answer_while_a_run_is_held() {
    let project = Project::with_samples();
    let daemon = Served::start(
        &project,
        "",
        &[
            ("INDIKATOR_ADMIN_TOKEN", TOKEN),
            ("INDIKATOR_FAILPOINT", "stage.written@pause"),
        ],
    );
    let held = daemon.trigger(SCB);
    daemon.wait_until_paused(&held, "stage.written");
    const PATHS: [&str; 3] = ["/api/v1/runs", "/api/v1/pipelines", "/healthz"];
    let (clients, each) = (50, 100);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|client| {
                let daemon = &daemon;
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for i in 0..each {
                        let path = PATHS[(client + i) % PATHS.len()];
                        match request(daemon.port, "GET", path, Some(TOKEN)) {
                            Ok(answer) if answer.status == 200 => {}
                            Ok(answer) => failures.push(format!("{path}: {}", answer.status)),
                            Err(error) => failures.push(format!("{path}: {error}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} failed, first: {:?}",
        failures.len(),
        clients * each,
        &failures[..failures.len().min(5)]
    );
    assert_eq!(daemon.run(&held)["status"], "running");
}

#[test]
fn status_lists_the_pipelines_and_trigger_says_what_went_wrong() {
    let project = Project::with_samples();
    let _daemon = Served::start(&project, "", &[]);
    let status = finish(command(&project, &["status"], &[]));
    assert!(status.status.success(), "{}", text(&status));
    let stdout = String::from_utf8_lossy(&status.stdout);
    for id in SAMPLE_IDS {
        assert!(
            stdout.lines().any(|l| l.starts_with(id)),
            "{id} in\n{stdout}"
        );
    }

    let unknown = finish(command(&project, &["trigger", "nope"], &[]));
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("no pipeline has id `nope`"),
        "{stderr}"
    );

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let unreachable = finish(command(
        &project,
        &["trigger", SCB],
        &[("INDIKATOR_URL", &nobody)],
    ));
    assert_eq!(unreachable.status.code(), Some(2), "{}", text(&unreachable));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("cannot reach the admin API"), "{stderr}");
}
