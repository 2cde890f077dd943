//! Power loss at every journaled state of every domain, on the real `ferry-secondary`
//! daemon: the test-only hook (`FERRY_TEST_PAUSE_AT`, debug builds) makes the daemon write a
//! marker and block right after journaling the state; the test waits for the marker, sends
//! SIGKILL, starts the daemon again and checks the ECU is on exactly the old or the new
//! version (the one the restart rules promise), serves, and provides what it runs.
//!
//! The table is per domain: a row is (domain, scenario, the states it reaches). The container
//! and module domains are one more row each, with their own `Domain` entry.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::metadata::Expires;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous: the daemon reaches any state within milliseconds; a slow CI machine may not.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Everything passes.
    Success,
    /// The new version fails its health check: the rollback states.
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Old,
    New,
}

/// One domain under test: its two versions and how to read what it runs.
struct Domain {
    name: &'static str,
    target: fn(Version) -> (&'static str, &'static [u8], Value),
    /// The version the files on disk say the ECU runs, and whether they are consistent.
    on_disk: fn(&Node, Version) -> Result<(), String>,
    provides_key: &'static str,
}

struct Row {
    domain: &'static Domain,
    scenario: Scenario,
    /// (state, version a restart must land on)
    kills: &'static [(&'static str, Version)],
}

fn app_target(v: Version) -> (&'static str, &'static [u8], Value) {
    match v {
        Version::Old => ("apps/demo-1.bin", b"demo 1", app_custom("demo", "1", 1)),
        Version::New => (
            "apps/demo-2.bin",
            b"demo 2, new",
            app_custom("demo", "2", 2),
        ),
    }
}

fn os_target(v: Version) -> (&'static str, &'static [u8], Value) {
    let (name, content, version, counter): (&str, &[u8], &str, u64) = match v {
        Version::Old => ("os/poky-1.img", b"rootfs one", "1", 1),
        Version::New => ("os/poky-2.img", b"rootfs two, longer", "2", 2),
    };
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "os",
                         "name": "poky", "version": version });
    (name, content, custom)
}

fn app_on_disk(n: &Node, v: Version) -> Result<(), String> {
    let apps = n.root.join("apps");
    let mut entries: Vec<String> = std::fs::read_dir(&apps)
        .map_err(|e| e.to_string())?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    if entries != ["demo"] {
        return Err(format!("apps dir holds {entries:?}, expected only demo"));
    }
    let (name, content, _) = app_target(v);
    let file = apps.join("demo").join(name.trim_start_matches("apps/"));
    match std::fs::read(&file) {
        Ok(c) if c == content => Ok(()),
        other => Err(format!("{}: {other:?}", file.display())),
    }
}

fn os_on_disk(n: &Node, v: Version) -> Result<(), String> {
    let env = ferry_secondary::install::boot::parse_lines(
        &std::fs::read_to_string(n.root.join("bootenv")).map_err(|e| e.to_string())?,
    );
    // The old image went to slot b at first boot, the new one to slot a.
    let slot = if v == Version::Old { "b" } else { "a" };
    if env.get("boot_slot").map(String::as_str) != Some(slot)
        || env.get("upgrade_available").map(String::as_str) != Some("0")
    {
        return Err(format!(
            "boot env {env:?}, expected slot {slot} and no upgrade on trial"
        ));
    }
    let (_, content, _) = os_target(v);
    let booted =
        std::fs::read(n.root.join(format!("slot-{slot}.img"))).map_err(|e| e.to_string())?;
    if booted != content {
        return Err(format!("slot {slot} does not hold the {v:?} image"));
    }
    Ok(())
}

static APP: Domain = Domain {
    name: "app",
    target: app_target,
    on_disk: app_on_disk,
    provides_key: "data-partition.demo.version",
};
static OS: Domain = Domain {
    name: "os",
    target: os_target,
    on_disk: os_on_disk,
    provides_key: "rootfs-image.version",
};

use Version::{New, Old};
static TABLE: &[Row] = &[
    Row {
        domain: &APP,
        scenario: Scenario::Success,
        kills: &[
            ("download", Old),
            ("install", Old),
            ("verify", New),
            ("commit", New),
            ("cleanup", New),
        ],
    },
    Row {
        domain: &APP,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("verify", Old),
            ("rollback", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
    Row {
        domain: &OS,
        scenario: Scenario::Success,
        kills: &[
            ("download", Old),
            ("install", Old),
            ("reboot", New),
            ("verify-reboot", New),
            ("commit", New),
            ("cleanup", New),
        ],
    },
    Row {
        domain: &OS,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("verify-reboot", Old),
            ("rollback", Old),
            ("rollback-reboot", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
    // container and module: one row each here, with their Domain (their installers' helper).
];

/// An ECU's files and its daemon, when running.
struct Node {
    v: Vehicle,
    root: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    addr: String,
    http: Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Metadata valid by the daemon's (system) clock.
fn fresh(v: &mut Vehicle) {
    let until = Expires::after(chrono::Utc::now(), chrono::Duration::days(30));
    for repo in [&mut v.director, &mut v.image] {
        repo.targets.expires = until;
        repo.snapshot.expires = until;
        repo.timestamp.expires = until;
    }
}

impl Node {
    fn new(scenario: Scenario, bootlimit: u32) -> Node {
        let v = Vehicle::new(ferry_secondary::VerificationMode::Full);
        let root = v.dir.path().to_owned();
        std::fs::write(root.join("slot-a.img"), b"factory").unwrap();
        let (app_check, os_check) = match scenario {
            Scenario::Success => ("true".to_owned(), "true".to_owned()),
            Scenario::Unhealthy => (
                "test ! -f \"$FERRY_APP_DIR/demo-2.bin\"".to_owned(),
                "test \"$FERRY_OS_SLOT\" = b".to_owned(),
            ),
        };
        let toml = format!(
            "serial = \"{SERIAL}\"\nhardware_id = \"{HW}\"\nkey = \"ecu.key.pem\"\n\
             listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndirector_root = \"director.root.json\"\n\
             image_root = \"image.root.json\"\napps_dir = \"apps\"\n\
             app_health_check = [\"sh\", \"-c\", {app_check:?}]\n\
             [initial_provides]\n\"rootfs-image.python.version\" = \"3.12\"\n\
             [os]\nslots = [\"slot-a.img\", \"slot-b.img\"]\nboot_env = \"bootenv\"\n\
             bootlimit = {bootlimit}\nhealth_check = [\"sh\", \"-c\", {os_check:?}]\n"
        );
        let config = root.join("secondary.toml");
        std::fs::write(&config, toml).unwrap();
        let http = Client::builder().timeout(DEADLINE).build().unwrap();
        let mut node = Node {
            v,
            root,
            config,
            child: None,
            addr: String::new(),
            http,
        };
        fresh(&mut node.v);
        node
    }

    fn marker(&self) -> PathBuf {
        self.root.join("paused")
    }

    /// Start the daemon; with `pause`, it blocks after journaling that state (`resume STATE`:
    /// while resuming at start, before it listens).
    fn start(&mut self, pause: Option<&str>) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry-secondary"));
        cmd.arg("--config")
            .arg(&self.config)
            .env_remove("FERRY_TEST_PAUSE_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.root.join("daemon.log")).unwrap());
        if let Some(at) = pause {
            cmd.env("FERRY_TEST_PAUSE_AT", at.trim_start_matches("resume "))
                .env("FERRY_TEST_PAUSE_MARKER", self.marker());
        }
        let mut child = cmd.spawn().unwrap();
        if pause.is_some_and(|at| at.starts_with("resume ")) {
            // Pausing while it resumes, before it listens: nothing to read yet.
            self.child = Some(child);
            return;
        }
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
        let line: Value = serde_json::from_str(&first)
            .unwrap_or_else(|_| panic!("daemon did not start: {first:?}\n{}", self.log()));
        self.addr = line["listening"].as_str().unwrap().to_owned();
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: no handler runs, as in a power cut.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            child.wait().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Send metadata and image of `version`; the install request is the caller's.
    fn offer(&mut self, domain: &Domain, version: Version) {
        let (name, content, custom) = (domain.target)(version);
        self.v.offer(name, content, custom);
        let r = self
            .http
            .put(self.url("/metadata"))
            .body(self.v.bundle())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text());
        let r = self
            .http
            .put(self.url("/image"))
            .body(content.to_vec())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text());
    }

    fn status(&self) -> Value {
        let r = self.http.get(self.url("/status")).send().unwrap();
        assert!(r.status().is_success());
        serde_json::from_slice(&r.bytes().unwrap()).unwrap()
    }

    /// Wait for the pause marker (the daemon blocks there for good).
    fn wait_paused(&mut self, at: &str) {
        let start = Instant::now();
        while !self.marker().exists() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none(),
                "daemon exited before {at}: {exited:?}\n{}",
                self.log()
            );
            assert!(
                start.elapsed() < DEADLINE,
                "daemon never paused at {at}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(self.marker()).unwrap(), at);
        std::fs::remove_file(self.marker()).unwrap();
    }

    /// POST /install in the background: it never answers when the daemon pauses.
    fn install_in_background(&self) -> std::thread::JoinHandle<()> {
        let (http, url) = (self.http.clone(), self.url("/install"));
        std::thread::spawn(move || {
            let _ = http.post(url).send();
        })
    }

    /// The ECU runs `version` of `domain`, on disk and in its state, and nothing is in flight.
    fn assert_runs(&self, domain: &Domain, version: Version, context: &str, updated: bool) {
        (domain.on_disk)(self, version)
            .unwrap_or_else(|e| panic!("{context}: {e}\n{}", self.log()));
        let status = self.status();
        let (name, content, custom) = (domain.target)(version);
        let installed = &status["installed_domains"][domain.name];
        assert_eq!(installed["target"], name, "{context}: {status}");
        assert_eq!(installed["length"], content.len(), "{context}");
        assert_eq!(
            status["provides"][domain.provides_key], custom["version"],
            "{context}: {status}"
        );
        assert_eq!(status["in_flight"], Value::Null, "{context}: {status}");
        let result = status["last_install"]["result"]
            .as_str()
            .unwrap_or_default();
        match (version, updated) {
            (New, _) | (Old, false) => assert_eq!(result, "success", "{context}: {status}"),
            (Old, true) => {
                assert!(
                    result == "rolled-back" || result == "failure",
                    "{context}: {status}"
                )
            }
        }
    }
}

fn install_old(node: &mut Node, domain: &Domain) {
    node.start(None);
    node.offer(domain, Old);
    let r = node.http.post(node.url("/install")).send().unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    node.assert_runs(domain, Old, "before the update", false);
    node.kill9();
}

#[test]
fn a_power_loss_at_any_state_leaves_the_old_or_the_new_version() {
    let mut covered: BTreeMap<String, usize> = BTreeMap::new();
    for row in TABLE {
        for &(state, lands_on) in row.kills {
            let at = format!("{}:{state}", row.domain.name);
            let context = format!("{at} ({:?})", row.scenario);
            let mut node = Node::new(row.scenario, 3);
            install_old(&mut node, row.domain);
            node.start(Some(&at));
            node.offer(row.domain, New);
            let request = node.install_in_background();
            node.wait_paused(&at);
            node.kill9();
            request.join().unwrap();
            node.start(None);
            node.assert_runs(row.domain, lands_on, &context, true);
            *covered.entry(row.domain.name.to_owned()).or_default() += 1;
        }
    }
    let total: usize = covered.values().sum();
    println!("power loss: covered {total} kill points {covered:?}");
    assert_eq!(total, TABLE.iter().map(|r| r.kills.len()).sum::<usize>());
}

/// A new OS that keeps dying while it verifies: every restart is a boot, the boot counter
/// passes `bootlimit`, the bootloader falls back, and the ECU rolls back to the old slot.
#[test]
fn a_boot_loop_past_the_boot_limit_rolls_back_to_the_old_slot() {
    let mut node = Node::new(Scenario::Success, 1);
    install_old(&mut node, &OS);
    node.start(Some("os:verify-reboot"));
    node.offer(&OS, New);
    let request = node.install_in_background();
    node.wait_paused("os:verify-reboot");
    node.kill9();
    request.join().unwrap();
    // Second boot on trial (bootcount 2 > bootlimit 1): dies again while verifying.
    node.start(Some("resume os:verify-reboot"));
    node.wait_paused("os:verify-reboot");
    node.kill9();
    node.start(None);
    node.assert_runs(&OS, Old, "after the boot loop", true);
    let detail = node.status()["last_install"]["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains(
            "boot slot check failed: the bootloader boots slot b (bootcount 2, bootlimit 1)"
        ),
        "{detail}"
    );
}
