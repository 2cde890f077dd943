//! primary.toml: relative paths, defaults, and the configurations refused before any cycle.
#![allow(clippy::unwrap_used)]

use ferry_primary::{Config, Error};
use std::path::Path;
use std::time::Duration;

const BASE: &str = r#"
vin = "WVW1"
data_dir = "state"
[director]
url = "http://127.0.0.1:8000"
root = "director.root.json"
token_file = "device.token"
[image_repo]
url = "http://127.0.0.1:8080"
root = "image.root.json"
[ecu]
serial = "ivi-1"
hardware_id = "ivi-a53"
key = "ecu.key.pem"
[[secondaries]]
serial = "tcu-1"
url = "http://127.0.0.1:9301"
"#;

fn load(dir: &Path, text: &str) -> Result<Config, Error> {
    let path = dir.join("primary.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path)
}

#[test]
fn relative_paths_follow_the_file_and_defaults_apply() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), BASE).unwrap();
    assert_eq!(config.data_dir, dir.path().join("state"));
    assert_eq!(config.ecu.key, dir.path().join("ecu.key.pem"));
    assert_eq!(config.poll_interval, Duration::from_secs(300));
    assert_eq!(
        config.serials(),
        vec!["ivi-1".to_string(), "tcu-1".to_string()]
    );
    let own = config.own_ecu_config().unwrap();
    assert_eq!(own.data_dir, dir.path().join("state/ecu"));
    assert_eq!(own.apps_dir, dir.path().join("state/apps"));
    assert_eq!(
        own.director_root,
        Some(dir.path().join("director.root.json"))
    );

    let text = format!("{BASE}[download]\nspeed_grace = \"2m\"\nmin_bytes_per_sec = 10\n").replace(
        "data_dir = \"state\"",
        "data_dir = \"state\"\npoll_interval = \"30s\"",
    );
    let config = load(dir.path(), &text).unwrap();
    assert_eq!(config.poll_interval, Duration::from_secs(30));
    assert_eq!(config.fetch_policy().speed_grace, Duration::from_secs(120));
    assert_eq!(config.fetch_policy().min_bytes_per_sec, 10);
}

#[test]
fn configurations_that_cannot_work_are_refused_naming_why() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (
            BASE.replace("token_file = \"device.token\"\n", ""),
            "needs token_file",
        ),
        (
            BASE.replace("token_file = \"device.token\"", "cert = \"d.pem\""),
            "needs both cert and key",
        ),
        (BASE.replace("tcu-1", "ivi-1"), "listed twice"),
        (
            BASE.replace("vin = \"WVW1\"", "vin = \"\""),
            "must not be empty",
        ),
        (format!("{BASE}poll = 1\n"), "unknown field"),
        (
            BASE.replace(
                "data_dir = \"state\"",
                "data_dir = \"state\"\npoll_interval = \"soon\"",
            ),
            "expected e.g.",
        ),
    ] {
        let err = load(dir.path(), &text).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in {err}");
    }
}
