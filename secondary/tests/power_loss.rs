//! Power loss at every journaled state of every domain, on the real `ferry-secondary`
//! daemon: the test-only hook (`FERRY_TEST_PAUSE_AT`, debug builds) makes the daemon write a
//! marker and block right after journaling the state; the test waits for the marker, sends
//! SIGKILL, starts the daemon again and checks the ECU is on exactly the old or the new
//! version (the one the restart rules promise), serves, and provides what it runs.
//!
//! The table is per domain (`power_loss/<domain>.rs`): a row is (domain, scenario, the states
//! it reaches and the version a kill there must land on). Every node configures every domain,
//! as one ECU would; only the row's domain is updated.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/oci.rs"]
mod oci;
#[path = "fixtures/module.rs"]
mod shell_module;

// The per-domain rows (a crate root resolves `mod x;` beside itself, hence the paths).
#[path = "power_loss/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../../tests/src/btrfs.rs"]
mod btrfs_fixture;
#[path = "power_loss/container.rs"]
mod container;
#[path = "power_loss/mender.rs"]
mod mender;
#[path = "power_loss/module.rs"]
mod module;
#[path = "power_loss/os.rs"]
mod os;
#[path = "power_loss/ostree.rs"]
mod ostree;
#[allow(dead_code)]
#[path = "../../tests/src/ostree.rs"]
mod ostree_fixture;
#[path = "power_loss/rauc.rs"]
mod rauc;
#[allow(dead_code)]
#[path = "../../tests/src/rauc.rs"]
mod rauc_fixture;
#[path = "power_loss/snapshot.rs"]
mod snapshot;

use common::*;
use ferry_core::metadata::Expires;
use ferry_core::{Clock, SystemClock};
use reqwest::blocking::Client;
use serde_json::Value;
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
    /// The new version fails its domain's check: the rollback states.
    Unhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Old,
    New,
}
use Version::{New, Old};

/// One version of a domain's target, as the repositories sign it.
struct Target {
    name: &'static str,
    content: Vec<u8>,
    custom: Value,
}

/// One domain under test: its two versions and how to read what it runs.
struct Domain {
    name: &'static str,
    target: fn(Version) -> Target,
    /// Whether the files on disk say the ECU runs this version, consistently.
    on_disk: fn(&Node, Version) -> Result<(), String>,
    provides_key: &'static str,
}

struct Row {
    domain: &'static Domain,
    scenario: Scenario,
    /// (state, version a restart must land on)
    kills: &'static [(&'static str, Version)],
}

/// Every domain's rows.
fn table() -> impl Iterator<Item = &'static Row> {
    [
        app::ROWS,
        os::ROWS,
        container::ROWS,
        module::ROWS,
        mender::ROWS,
        ostree::ROWS,
        snapshot::ROWS,
        rauc::ROWS,
    ]
    .into_iter()
    .flatten()
    .filter(|row| available(row.domain))
}

/// Whether the domain's real parts are here (the domains that need a tool or a kernel
/// feature say why not once).
fn available(domain: &Domain) -> bool {
    match domain.name {
        "ostree" => ostree::available(),
        "snapshot" => snapshot::available(),
        "rauc" => rauc::available(),
        "single-file" => mender::available(),
        _ => true,
    }
}

/// An ECU's files and its daemon, when running.
struct Node {
    v: Vehicle,
    root: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    addr: String,
    http: Client,
    /// The snapshot domain's file system, mounted while the node lives.
    btrfs: Option<btrfs_fixture::Btrfs>,
    /// The rauc domain's RAUC system (its D-Bus and `rauc service`), running while the node
    /// lives.
    rauc: Option<rauc_fixture::System>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        // Unmounted before the temporary directory holding it goes.
        drop(self.btrfs.take());
        // OSTree deployments are immutable (chattr +i): let the temporary directory go.
        let _ = Command::new("chattr")
            .args(["-R", "-f", "-i"])
            .arg(&self.root)
            .stderr(Stdio::null())
            .status();
    }
}

/// Metadata valid by the daemon's (system) clock.
fn fresh(v: &mut Vehicle) {
    let until = Expires::after(SystemClock.now(), chrono::Duration::days(30));
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
        let (snapshot_toml, btrfs) = snapshot::config(&root, scenario, bootlimit);
        let (rauc_toml, rauc) = rauc::config(&root, scenario, bootlimit);
        // The app settings are top-level keys: they go before the first table.
        let toml = format!(
            "vin = \"{VIN}\"\nserial = \"{SERIAL}\"\nhardware_id = \"{HW}\"\nkey = \"ecu.key.pem\"\n\
             listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndirector_root = \"director.root.json\"\n\
             image_root = \"image.root.json\"\n{}\
             [initial_provides]\n\"rootfs-image.python.version\" = \"3.12\"\n{}{}{}{}{}{}",
            app::config(scenario),
            os::config(&root, scenario, bootlimit),
            container::config(&root, scenario),
            module::config(&root, scenario),
            ostree::config(&root, scenario, bootlimit),
            snapshot_toml,
            rauc_toml,
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
            btrfs,
            rauc,
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
        let t = (domain.target)(version);
        self.v.offer(t.name, &t.content, t.custom);
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
            .body(t.content)
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
        let t = (domain.target)(version);
        let installed = &status["installed_domains"][domain.name];
        assert_eq!(installed["target"], t.name, "{context}: {status}");
        assert_eq!(installed["length"], t.content.len(), "{context}");
        assert_eq!(
            status["provides"][domain.provides_key], t.custom["version"],
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
    for row in table() {
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
    assert_eq!(total, table().map(|r| r.kills.len()).sum::<usize>());
    // Every domain an ECU can update has rows: a domain left out would pass silently.
    let mut domains = vec!["app", shell_module::DOMAIN, "container", "os"];
    if ostree::available() {
        domains.push("ostree");
    }
    if snapshot::available() {
        domains.push("snapshot");
    }
    if rauc::available() {
        domains.push("rauc");
    }
    if mender::available() {
        domains.push("single-file");
    }
    domains.sort_unstable();
    assert_eq!(
        covered.keys().map(String::as_str).collect::<Vec<_>>(),
        domains
    );
}

/// The other side of "every state": the states a domain's rows leave out are never journaled
/// for it, in either scenario (a pause there never happens), so the rows are its whole
/// sequence.
#[test]
fn a_domain_never_journals_a_state_its_rows_leave_out() {
    let mut checked = 0;
    for domain in [
        &app::APP,
        &os::OS,
        &container::CONTAINER,
        &module::MODULE,
        &ostree::OSTREE,
        &snapshot::SNAPSHOT,
        &rauc::RAUC,
    ]
    .into_iter()
    .filter(|d| available(d))
    {
        let rows: Vec<&Row> = table().filter(|r| r.domain.name == domain.name).collect();
        let listed = |state: &str| rows.iter().any(|r| r.kills.iter().any(|k| k.0 == state));
        let left_out = ferry_secondary::install::Step::ALL.map(|s| s.as_str());
        for state in left_out.into_iter().filter(|s| !listed(s)) {
            for scenario in [Scenario::Success, Scenario::Unhealthy] {
                let at = format!("{}:{state}", domain.name);
                let mut node = Node::new(scenario, 3);
                install_old(&mut node, domain);
                node.start(Some(&at));
                node.offer(domain, New);
                // Answers only if the daemon never paused (else the client's deadline fails it).
                node.http.post(node.url("/install")).send().unwrap();
                assert!(!node.marker().exists(), "{at} ({scenario:?}) was journaled");
                let lands_on = if scenario == Scenario::Success {
                    New
                } else {
                    Old
                };
                node.assert_runs(domain, lands_on, &format!("{at} ({scenario:?})"), true);
                checked += 1;
            }
        }
    }
    println!("power loss: {checked} (domain, state, scenario) never journaled, as the rows say");
    assert!(checked > 0);
}

/// A new OS that keeps dying while it verifies: every restart is a boot, the boot counter
/// passes `bootlimit`, the bootloader falls back, and the ECU rolls back to the old slot.
#[test]
fn a_boot_loop_past_the_boot_limit_rolls_back_to_the_old_slot() {
    let mut node = Node::new(Scenario::Success, 1);
    install_old(&mut node, &os::OS);
    node.start(Some("os:verify-reboot"));
    node.offer(&os::OS, New);
    let request = node.install_in_background();
    node.wait_paused("os:verify-reboot");
    node.kill9();
    request.join().unwrap();
    // Second boot on trial (bootcount 2 > bootlimit 1): dies again while verifying.
    node.start(Some("resume os:verify-reboot"));
    node.wait_paused("os:verify-reboot");
    node.kill9();
    node.start(None);
    node.assert_runs(&os::OS, Old, "after the boot loop", true);
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
