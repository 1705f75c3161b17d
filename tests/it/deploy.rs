//! `deploy/`: the example config parses, and the unit, the config and install.sh agree on the
//! paths they name, so that none drifts from the keys or from the others.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use indikator::config::Settings;

use crate::util::repo;

fn deploy(file: &str) -> PathBuf {
    repo().join("deploy").join(file)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in a unit file or a shell script (the first such line).
fn value_of(text: &str, key: &str) -> String {
    let prefix = format!("{key}=");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= line"))
        .trim()
        .to_string()
}

fn example() -> Settings {
    Settings::load(Some(&deploy("indikator.toml")), &repo())
        .unwrap_or_else(|problems| panic!("deploy/indikator.toml: {problems:?}"))
}

#[test]
fn the_example_config_parses_with_the_service_layout() {
    let settings = example();
    let path = PathBuf::from;
    assert_eq!(settings.warehouse_dir, path("/var/lib/indikator/warehouse"));
    assert_eq!(settings.state_dir, path("/var/lib/indikator/state"));
    assert_eq!(settings.pipelines_dir, path("/etc/indikator/pipelines"));
    assert_eq!(settings.schemas_dir, path("/etc/indikator/schemas"));
    let serve = &settings.serve;
    assert_eq!(
        (serve.max_concurrent_runs, serve.grace_secs, serve.catch_up),
        (2, 30, true)
    );
    assert!(settings.admin.bind.ip().is_loopback());
    assert_eq!(settings.admin.bind.port(), 8080);
    assert_eq!(
        (settings.retention.raw_runs, settings.retention.rejects_days),
        (5, 90)
    );
    assert_eq!(settings.alerts.webhook_url, None);
}

#[test]
fn the_unit_serves_the_config_where_install_sh_puts_it() {
    let unit = read(&deploy("indikator.service"));
    let script = read(&deploy("install.sh"));
    let etc = value_of(&script, "ETC_DIR");
    let exec = value_of(&unit, "ExecStart");
    assert_eq!(
        exec,
        format!(
            "{} --config {etc}/indikator.toml serve",
            value_of(&script, "BIN_PATH")
        )
    );
    assert_eq!(value_of(&unit, "EnvironmentFile"), format!("{etc}/env"));
    assert_eq!(value_of(&unit, "User"), value_of(&script, "SERVICE_USER"));

    // The example's directories are where the unit lets the daemon read and write.
    let settings = example();
    let state = format!("/var/lib/{}", value_of(&unit, "StateDirectory"));
    assert!(
        value_of(&unit, "ReadWritePaths")
            .split(' ')
            .any(|p| p == state)
    );
    assert!(settings.warehouse_dir.starts_with(&state) && settings.state_dir.starts_with(&state));
    assert!(settings.pipelines_dir.starts_with(&etc) && settings.schemas_dir.starts_with(&etc));

    // systemd's SIGKILL must not cut the daemon's own grace period short.
    let stop: u64 = value_of(&unit, "TimeoutStopSec").parse().unwrap();
    assert!(stop > settings.serve.grace_secs, "TimeoutStopSec={stop}");
}

#[test]
fn install_sh_run_twice_keeps_the_config_and_the_token() {
    let root = tempfile::tempdir().unwrap();
    let install = || {
        let output = Command::new("bash")
            .arg(deploy("install.sh"))
            .env("ROOT", root.path())
            .env("BIN", env!("CARGO_BIN_EXE_indikator"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let etc = root.path().join("etc/indikator");
    install();
    let env = read(&etc.join("env"));
    let token = value_of(&env, "INDIKATOR_ADMIN_TOKEN");
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let mode = std::fs::metadata(etc.join("env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    std::fs::write(etc.join("indikator.toml"), "[serve]\ngrace_secs = 10\n").unwrap();
    let again = install();
    assert!(again.contains("kept /etc/indikator/env"), "{again}");
    assert_eq!(read(&etc.join("env")), env);
    assert_eq!(
        read(&etc.join("indikator.toml")),
        "[serve]\ngrace_secs = 10\n"
    );
    assert!(etc.join("schemas/indicators.toml").is_file());
    assert!(etc.join("pipelines/scb-folkmangd-0-19.toml").is_file());
    assert!(!etc.join("pipelines/samples").exists());
    assert!(root.path().join("usr/local/bin/indikator").is_file());
    assert_eq!(
        read(&root.path().join("etc/systemd/system/indikator.service")),
        read(&deploy("indikator.service"))
    );
}
