//! `confirm = "app"` through the real `ferry-secondary` daemon and its `confirm` subcommand, a
//! second process: a new container image or app version that its application never confirms
//! is rolled back once the (short, configured) window passes, with `last_install` naming the
//! check; one confirmed with `ferry-secondary confirm` is committed, and the replaced image's
//! blobs are deleted from the content-addressed store with `keep_previous = 0` and kept with
//! `keep_previous = 1` (the replaced app version likewise, under `apps/.NAME.kept/`). A confirmation for another name, domain or version is refused by name
//! and changes nothing; a kill -9 of the daemon during the wait neither loses nor commits it.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/oci.rs"]
mod oci;

use common::*;
use ferry_core::metadata::Expires;
use ferry_core::{Clock, SystemClock};
use oci::Image;
use reqwest::blocking::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous bound on the daemon reaching a state; never asserted as a duration.
const DEADLINE: Duration = Duration::from_secs(120);

const BASE: &[u8] = b"base layer: shared by both versions";

fn image(version: u8) -> Image {
    let app = format!("app layer {version}");
    Image::new(
        &format!("web:{version}"),
        &format!("v{version}"),
        &[BASE, app.as_bytes()],
    )
}

struct Node {
    v: Vehicle,
    root: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    addr: String,
    /// The `[confirm_api]` listener's address.
    confirm_addr: String,
    http: Client,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

impl Node {
    /// A daemon with `confirm = "app"` for both domains, a `window` in seconds and
    /// `keep_previous` for both.
    fn new(window: u64, keep_previous: usize) -> Node {
        let mut v = Vehicle::new(ferry_secondary::VerificationMode::Full);
        // The daemon reads the system clock: metadata valid by it.
        let until = Expires::after(SystemClock.now(), chrono::Duration::days(30));
        for repo in [&mut v.director, &mut v.image] {
            repo.targets.expires = until;
            repo.snapshot.expires = until;
            repo.timestamp.expires = until;
        }
        let root = v.dir.path().to_owned();
        let hook = format!(
            "echo \"$FERRY_CONTAINER_ACTION $FERRY_OCI_REF_NAME\" >> {}",
            root.join("hook.log").display()
        );
        let toml = format!(
            "vin = \"{VIN}\"\nserial = \"{SERIAL}\"\nhardware_id = \"{HW}\"\nkey = \"ecu.key.pem\"\n\
             listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndirector_root = \"director.root.json\"\n\
             image_root = \"image.root.json\"\napps_dir = \"apps\"\n\
             [app]\nconfirm = \"app\"\nconfirm_timeout_secs = {window}\n\
             keep_previous = {keep_previous}\n\
             [container]\nhook = [[\"sh\", \"-c\", {hook:?}]]\nconfirm = \"app\"\n\
             confirm_timeout_secs = {window}\nkeep_previous = {keep_previous}\n\
             [confirm_api]\nlisten = \"127.0.0.1:0\"\ntoken_file = \"confirm.token\"\n"
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
            confirm_addr: String::new(),
            http,
        };
        node.start();
        node
    }

    fn start(&mut self) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-secondary"))
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.root.join("daemon.log")).unwrap())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let line: Value = serde_json::from_str(&first)
            .unwrap_or_else(|_| panic!("daemon did not start: {first:?}\n{}", self.log()));
        self.addr = line["listening"].as_str().unwrap().to_owned();
        self.confirm_addr = line["confirm_api"].as_str().unwrap().to_owned();
        self.child = Some(child);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
    }

    /// SIGKILL: no handler runs, as in a power cut.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().unwrap();
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Metadata, image and install of `content` as `name`: the install answers 202, waiting
    /// for the application.
    fn install(&mut self, name: &str, content: &[u8], custom: Value) {
        self.v.offer(name, content, custom);
        for (path, body) in [("/metadata", self.v.bundle()), ("/image", content.to_vec())] {
            let r = self.http.put(self.url(path)).body(body).send().unwrap();
            assert!(r.status().is_success(), "{path}: {:?}", r.text());
        }
        let r = self.http.post(self.url("/install")).send().unwrap();
        assert_eq!(r.status().as_u16(), 202, "{:?}", r.text());
        let answer: Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
        assert_eq!(answer["confirmPending"], true, "{answer}");
        assert_eq!(self.status()["in_flight"], "confirm");
    }

    fn status(&self) -> Value {
        let r = self.http.get(self.url("/status")).send().unwrap();
        assert!(r.status().is_success());
        serde_json::from_slice(&r.bytes().unwrap()).unwrap()
    }

    /// `ferry-secondary confirm ARGS...`, as the application runs it.
    fn confirm(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ferry-secondary"))
            .arg("--config")
            .arg(&self.config)
            .arg("confirm")
            .args(args)
            .output()
            .unwrap()
    }

    /// `POST /confirm/PATH` on the confirm API, as an application calls it, with `token`.
    fn confirm_over_http(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self
            .http
            .post(format!("http://{}/confirm/{path}", self.confirm_addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// The token the daemon wrote into `token_file`.
    fn confirm_token(&self) -> String {
        let path = self.root.join("confirm.token");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token file is its owner's alone");
        std::fs::read_to_string(path).unwrap().trim().to_owned()
    }

    fn confirmed(&self, args: &[&str]) {
        let out = self.confirm(args);
        assert!(
            out.status.success(),
            "confirm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The status once nothing is in flight (the daemon committed or rolled back).
    fn settled(&self) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status();
            if status["in_flight"].is_null() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "never settled: {status}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn store(&self) -> PathBuf {
        self.root.join("data/containers")
    }

    fn current(&self) -> String {
        std::fs::read_to_string(self.store().join("refs/current/web"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn names(&self, dir: &str) -> Vec<String> {
        names(&self.store().join(dir))
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn container(version: u8) -> (String, Vec<u8>, Value) {
    (
        format!("containers/web-{version}.tar"),
        image(version).tar(),
        json!({ "hardwareIds": [HW], "releaseCounter": version, "domain": "container",
                "name": "web", "version": version.to_string() }),
    )
}

/// v1 installed and confirmed; v2 installed, waiting for its confirmation.
fn container_v2_waiting(window: u64, keep_previous: usize) -> Node {
    let mut node = Node::new(window, keep_previous);
    let (name, content, custom) = container(1);
    node.install(&name, &content, custom);
    node.confirmed(&["container", "web"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    let (name, content, custom) = container(2);
    node.install(&name, &content, custom);
    assert_eq!(node.current(), image(2).id, "v2 runs while it waits");
    node
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut all: Vec<String> = a.iter().chain(b).cloned().collect();
    all.sort();
    all.dedup();
    all
}

fn assert_rolled_back_by_the_window(status: &Value, window: u64) {
    assert_eq!(status["last_install"]["result"], "rolled-back", "{status}");
    let detail = status["last_install"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("application confirmation: none within {window} s")),
        "{detail}"
    );
}

#[test]
fn a_container_never_confirmed_is_rolled_back_after_the_window() {
    let node = container_v2_waiting(1, 1);
    let status = node.settled();
    assert_rolled_back_by_the_window(&status, 1);
    assert_eq!(node.current(), image(1).id);
    assert_eq!(
        status["installed_domains"]["container"]["target"],
        "containers/web-1.tar"
    );
    assert_eq!(status["provides"]["data-partition.web.version"], "1");
    let hooks = std::fs::read_to_string(node.root.join("hook.log")).unwrap();
    assert!(hooks.ends_with("rollback web:1\n"), "{hooks}");
    // A confirmation after the window changes nothing.
    let late = node.confirm(&["container", "web"]);
    assert!(!late.status.success());
    assert_eq!(node.current(), image(1).id);
}

#[test]
fn a_confirmed_container_is_committed_and_the_old_image_deleted_with_keep_previous_0() {
    let node = container_v2_waiting(600, 0);
    node.confirmed(&["container", "web", "--version", "2"]);
    let status = node.settled();
    assert_eq!(status["last_install"]["result"], "success", "{status}");
    assert_eq!(status["provides"]["data-partition.web.version"], "2");
    assert_eq!(node.current(), image(2).id);
    assert_eq!(node.names("images/web"), [image(2).id]);
    assert_eq!(node.names("blobs/sha256"), image(2).blobs());
}

#[test]
fn an_application_confirms_over_the_local_http_api_with_its_token() {
    let node = container_v2_waiting(600, 1);
    let token = node.confirm_token();
    // No token, or another: refused, naming the check; nothing confirmed.
    for wrong in [None, Some("not-the-token")] {
        let (status, body) = node.confirm_over_http("container/web", wrong);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("confirm token check failed"), "{body}");
    }
    // Another name or version: 409 naming what waits.
    let (status, body) = node.confirm_over_http("container/other", Some(&token));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("application confirmation"), "{body}");
    let (status, body) = node.confirm_over_http("container/web?version=9", Some(&token));
    assert_eq!(status, 409, "{body}");
    assert_eq!(node.status()["in_flight"], "confirm", "still waiting");
    // The right one commits v2, as `ferry-secondary confirm` would.
    let (status, body) = node.confirm_over_http("container/web?version=2", Some(&token));
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["target"], "containers/web-2.tar");
    let status = node.settled();
    assert_eq!(status["last_install"]["result"], "success", "{status}");
    assert_eq!(node.current(), image(2).id);
}

#[test]
fn a_confirmed_container_keeps_the_old_image_with_keep_previous_1() {
    let node = container_v2_waiting(600, 1);
    node.confirmed(&["container", "web"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    assert_eq!(node.current(), image(2).id);
    let mut both = vec![image(1).id, image(2).id];
    both.sort();
    assert_eq!(node.names("images/web"), both);
    assert_eq!(
        node.names("blobs/sha256"),
        union(&image(1).blobs(), &image(2).blobs())
    );
}

#[test]
fn a_confirmation_for_another_name_domain_or_version_is_refused_and_changes_nothing() {
    let node = container_v2_waiting(600, 1);
    for args in [
        &["container", "db"][..],
        &["app", "web"],
        &["container", "web", "--version", "3"],
    ] {
        let out = node.confirm(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains("application confirmation")
                && stderr.contains("container web version 2"),
            "{args:?}: {stderr}"
        );
        assert_eq!(node.status()["in_flight"], "confirm", "{args:?}");
    }
    node.confirmed(&["container", "web"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
}

#[test]
fn a_restart_during_the_wait_neither_loses_nor_commits_it() {
    let mut node = container_v2_waiting(600, 1);
    node.kill9();
    node.start();
    assert_eq!(node.status()["in_flight"], "confirm");
    assert_eq!(node.current(), image(2).id);
    node.confirmed(&["container", "web"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    assert_eq!(node.current(), image(2).id);
}

fn app(version: u8) -> (String, Vec<u8>, Value) {
    (
        format!("apps/demo-{version}.bin"),
        format!("demo app v{version}").into_bytes(),
        app_custom("demo", &version.to_string(), u64::from(version)),
    )
}

/// App v1 installed and confirmed; v2 installed, waiting.
fn app_v2_waiting(window: u64) -> Node {
    app_v2_waiting_keeping(window, 1)
}

fn app_v2_waiting_keeping(window: u64, keep_previous: usize) -> Node {
    let mut node = Node::new(window, keep_previous);
    let (name, content, custom) = app(1);
    node.install(&name, &content, custom);
    node.confirmed(&["app", "demo"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    let (name, content, custom) = app(2);
    node.install(&name, &content, custom);
    assert_eq!(
        node.v.app_file("demo", "demo-2.bin").as_deref(),
        Some(&b"demo app v2"[..])
    );
    node
}

#[test]
fn an_app_never_confirmed_is_rolled_back_after_the_window() {
    let node = app_v2_waiting(1);
    let status = node.settled();
    assert_rolled_back_by_the_window(&status, 1);
    assert_eq!(
        node.v.app_file("demo", "demo-1.bin").as_deref(),
        Some(&b"demo app v1"[..])
    );
    assert_eq!(node.v.app_file("demo", "demo-2.bin"), None);
    assert_eq!(
        status["installed_domains"]["app"]["target"],
        "apps/demo-1.bin"
    );
}

#[test]
fn a_confirmed_app_is_committed_and_the_old_version_deleted_with_keep_previous_0() {
    let node = app_v2_waiting_keeping(600, 0);
    let refused = node.confirm(&["app", "other"]);
    assert!(!refused.status.success());
    node.confirmed(&["app", "demo", "--version", "2", "--json"]);
    let status = node.settled();
    assert_eq!(status["last_install"]["result"], "success", "{status}");
    assert_eq!(
        status["installed_domains"]["app"]["target"],
        "apps/demo-2.bin"
    );
    let apps = node.v.config.apps_dir.clone();
    assert_eq!(
        names(&apps),
        ["demo"],
        "the old version's backup is deleted"
    );
    assert_eq!(names(&apps.join("demo")), ["demo-2.bin"]);
}

#[test]
fn a_confirmed_app_keeps_the_replaced_versions_up_to_keep_previous() {
    let mut node = app_v2_waiting_keeping(600, 1);
    node.confirmed(&["app", "demo", "--version", "2"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    let apps = node.v.config.apps_dir.clone();
    assert_eq!(names(&apps), [".demo.kept", "demo"]);
    let kept = apps.join(".demo.kept");
    assert_eq!(names(&kept), ["1"]);
    assert_eq!(
        std::fs::read(kept.join("1/demo-1.bin")).unwrap(),
        b"demo app v1",
        "v1 is kept as it ran"
    );
    // v3: v2 is kept in its turn and v1, beyond keep_previous = 1, deleted.
    let (name, content, custom) = app(3);
    node.install(&name, &content, custom);
    node.confirmed(&["app", "demo", "--version", "3"]);
    assert_eq!(node.settled()["last_install"]["result"], "success");
    assert_eq!(names(&kept), ["2"]);
    assert_eq!(
        std::fs::read(kept.join("2/demo-2.bin")).unwrap(),
        b"demo app v2"
    );
    assert_eq!(names(&apps.join("demo")), ["demo-3.bin"]);
}

/// In process, with the time injected: the window counts from the journaled `confirm`, also
/// across a restart (the ECU reopened later), and `settle` rolls back only once it passed.
mod injected_time {
    use super::*;
    use ferry_secondary::install::confirm::ConfirmMode;
    use ferry_secondary::{Ecu, Installed};

    fn vehicle() -> Vehicle {
        let mut v = Vehicle::new(ferry_secondary::VerificationMode::Full);
        v.config.container.confirm = ConfirmMode::App;
        v.config.container.confirm_timeout_secs = Some(600);
        v
    }

    fn install(v: &mut Vehicle, ecu: &mut Ecu, version: u8) -> Installed {
        let (name, content, custom) = container(version);
        v.offer(&name, &content, custom);
        ecu.receive_metadata(&v.bundle(), now()).unwrap();
        ecu.receive_image(&mut &content[..]).unwrap();
        ecu.install(now()).unwrap()
    }

    fn secs(s: i64) -> chrono::DateTime<chrono::Utc> {
        now() + chrono::Duration::seconds(s)
    }

    #[test]
    fn the_window_survives_a_restart_and_settle_rolls_back_only_after_it() {
        let mut v = vehicle();
        let mut ecu = v.ecu();
        let answer = install(&mut v, &mut ecu, 1);
        assert!(
            matches!(answer, Installed::ConfirmPending { .. }),
            "{answer:?}"
        );
        drop(ecu);
        // Restarted within the window: still waiting, not committed.
        let mut ecu = Ecu::open_at(v.config.clone(), secs(300)).unwrap();
        assert_eq!(ecu.status().unwrap().in_flight.as_deref(), Some("confirm"));
        assert!(ecu.settle(secs(599)).unwrap(), "still waiting");
        assert!(!ecu.settle(secs(600)).unwrap(), "settled at the deadline");
        let status = ecu.status().unwrap();
        let outcome = status.last_install.unwrap();
        assert_eq!(outcome.result.as_str(), "rolled-back");
        assert!(
            outcome.detail.contains("none within 600 s"),
            "{}",
            outcome.detail
        );
        assert!(!status.installed_domains.contains_key("container"));
    }

    #[test]
    fn the_window_starts_when_confirm_is_journaled_by_the_ecus_clock() {
        let mut v = vehicle();
        let mut ecu = v.ecu();
        // The install request came at now(); its steps ran until now() + 100 s.
        ecu.use_clock(std::sync::Arc::new(ferry_core::FixedClock(secs(100))));
        install(&mut v, &mut ecu, 1);
        assert!(
            ecu.settle(secs(650)).unwrap(),
            "still within 600 s of confirm"
        );
        assert!(
            !ecu.settle(secs(700)).unwrap(),
            "rolled back at confirm + 600 s"
        );
    }

    #[test]
    fn a_restart_after_the_window_rolls_back_at_start() {
        let mut v = vehicle();
        let mut ecu = v.ecu();
        install(&mut v, &mut ecu, 1);
        drop(ecu);
        let ecu = Ecu::open_at(v.config.clone(), secs(3600)).unwrap();
        let status = ecu.status().unwrap();
        assert_eq!(status.in_flight, None);
        let outcome = status.last_install.unwrap();
        assert_eq!(outcome.result.as_str(), "rolled-back");
        assert!(
            outcome.detail.contains("application confirmation"),
            "{}",
            outcome.detail
        );
    }
}
