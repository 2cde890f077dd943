//! The Secondary's HTTP API over real HTTP on 127.0.0.1: the server runs in-process on its own
//! tokio runtime with a fixed clock, the client is reqwest's blocking one. Plus the daemon
//! binary itself: its first stdout line, `/info`, and a graceful stop on SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::manifest::EcuVersionReport;
use ferry_core::metadata::Signed;
use ferry_core::FixedClock;
use ferry_secondary::http::{serve, AppState};
use ferry_secondary::VerificationMode;
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::sync::Arc;

const APP: &str = "apps/web-1.bin";
const CONTENT: &[u8] = b"web server build 1";

struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(v: &Vehicle, max_metadata: usize) -> Server {
    start_limited(v, max_metadata, v.config.http)
}

fn start_limited(v: &Vehicle, max_metadata: usize, limits: ferry_http::Limits) -> Server {
    let ecu = v.ecu();
    let state = AppState::new(ecu, Arc::new(FixedClock(now())));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, state, max_metadata, limits, async move {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
        });
    });
    Server {
        addr: addr_rx.recv().unwrap(),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

fn json<T: serde::de::DeserializeOwned>(r: reqwest::blocking::Response) -> T {
    assert!(r.status().is_success(), "{}", r.status());
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

fn client() -> Client {
    Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn an_update_over_http() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("web", "1", 1));
    let server = start(&v, 1 << 20);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let c = client();

    let info: Value = json(c.get(url("/info")).send().unwrap());
    assert_eq!(info["serial"], SERIAL);
    assert_eq!(info["hardwareId"], HW);
    assert_eq!(info["verification"], "full");
    assert!(info["publicKey"]["keyval"]["public"].is_string());

    // An image before any metadata is out of order.
    let r = c.put(url("/image")).body(CONTENT.to_vec()).send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let r = c.put(url("/metadata")).body(v.bundle()).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pending: Value = json(r);
    assert_eq!(pending["target"], APP);
    assert_eq!(pending["length"], CONTENT.len());

    // Longer than signed: refused from Content-Length, before the body is read.
    let mut long = CONTENT.to_vec();
    long.push(b'!');
    let r = c.put(url("/image")).body(long).send().unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().unwrap().contains("endless data"));

    // Streamed with no Content-Length (chunked), checked as it arrives.
    let body = reqwest::blocking::Body::new(std::io::Cursor::new(CONTENT.to_vec()));
    let r = c.put(url("/image")).body(body).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text());

    let r = c.post(url("/install")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(v.app_file("web", "web-1.bin").unwrap(), CONTENT);

    let status: Value = json(c.get(url("/status")).send().unwrap());
    assert_eq!(status["installed"]["target"], APP);
    assert_eq!(status["provides"]["data-partition.web.version"], "1");
    assert_eq!(status["pending"], Value::Null);

    let report: Signed<EcuVersionReport> =
        json(c.get(url("/report?nonce=cycle-42")).send().unwrap());
    assert_eq!(report.signed.nonce, "cycle-42");
    assert_eq!(report.signed.installed_image.filepath, APP);
    assert_eq!(report.signatures[0].keyid.as_str(), info["keyid"]);
    let r = c.get(url("/report")).send().unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn refusals_answer_with_the_failed_check() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("web", "1", 1));
    v.director
        .targets
        .targets
        .get_mut(APP)
        .unwrap()
        .hashes
        .insert("sha512".into(), "0".repeat(128));
    let bundle = v.bundle();
    let cap = bundle.len() + 64;
    let server = start(&v, cap);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let c = client();

    let r = c
        .put(url("/metadata"))
        .body(vec![b' '; cap + 1])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let r = c.put(url("/metadata")).body("{not json").send().unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().unwrap().contains("bundle format check failed"));

    let r = c.put(url("/metadata")).body(bundle).send().unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().unwrap().contains("image match hash check failed"));
    // Refusals from the network are listed with the caller, newest first, and never signed.
    let status: Value = json(c.get(url("/status")).send().unwrap());
    assert_eq!(status["attacks_detected"], "", "{status}");
    let refusals = status["network_refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 2, "{status}");
    assert!(refusals[0]["peer"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(refusals[0]["request"], "PUT /metadata");
    assert!(refusals[0]["reason"]
        .as_str()
        .unwrap()
        .contains("image match hash check failed"));
    assert!(refusals[1]["reason"]
        .as_str()
        .unwrap()
        .contains("bundle format check failed"));
    let report: Signed<EcuVersionReport> = json(c.get(url("/report?nonce=n")).send().unwrap());
    assert_eq!(report.signed.attacks_detected, "");
    let r = c.post(url("/install")).send().unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

/// The files in the ECU's staging directory.
fn staged_files(v: &Vehicle) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(v.config.staging_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_refused_request_from_the_network_changes_nothing() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("web", "1", 1));
    let server = start(&v, 1 << 20);
    let url = |p: &str| format!("http://{}{p}", server.addr);
    let c = client();
    let ready = |c: &Client| -> Value { json(c.get(url("/status")).send().unwrap()) };

    let r = c.put(url("/metadata")).body(v.bundle()).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Good, bad, good, bad: one verified image stays staged, nothing else is left behind.
    let mut bad = CONTENT.to_vec();
    bad[0] ^= 1;
    for (body, code) in [
        (CONTENT.to_vec(), StatusCode::OK),
        (bad.clone(), StatusCode::UNPROCESSABLE_ENTITY),
        (CONTENT.to_vec(), StatusCode::OK),
        (bad.clone(), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let r = c.put(url("/image")).body(body).send().unwrap();
        assert_eq!(r.status(), code, "{:?}", r.text());
        let status = ready(&c);
        assert_eq!(status["image_ready"], true, "{status}");
        let files = staged_files(&v);
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0].starts_with(".image-") && files[0].ends_with(".ready"),
            "{files:?}"
        );
    }

    // Between "all ready" and the install: garbage, a hostile text, and a replay of the
    // genuine bundle cancel nothing.
    let hostile = r#"{"director": "\u001b[2J\nforged line"}"#;
    for body in [b"garbage".to_vec(), hostile.as_bytes().to_vec(), v.bundle()] {
        let r = c.put(url("/metadata")).body(body).send().unwrap();
        assert!(r.status() == StatusCode::UNPROCESSABLE_ENTITY || r.status() == StatusCode::OK);
        let status = ready(&c);
        assert_eq!(status["pending"], APP, "{status}");
        assert_eq!(status["image_ready"], true, "{status}");
        assert_eq!(staged_files(&v).len(), 1);
    }
    let status = ready(&c);
    assert_eq!(status["attacks_detected"], "", "{status}");
    assert_eq!(status["last_install"], Value::Null, "{status}");
    let refusals = status["network_refusals"].as_array().unwrap();
    // Newest first: the hostile bundle, garbage, then the two bad images.
    assert_eq!(refusals.len(), 4, "{status}");
    let hostile_reason = refusals[0]["reason"].as_str().unwrap();
    assert!(
        hostile_reason.contains("bundle format check failed"),
        "{hostile_reason}"
    );
    assert!(!hostile_reason.contains('\n') && !hostile_reason.contains('\u{1b}'));
    assert_eq!(refusals[2]["request"], "PUT /image");
    assert!(refusals[2]["reason"]
        .as_str()
        .unwrap()
        .contains("hash check failed"));

    let r = c.post(url("/install")).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text());
    assert_eq!(v.app_file("web", "web-1.bin").unwrap(), CONTENT);
    assert!(staged_files(&v).is_empty());
}

#[test]
fn the_daemon_prints_its_address_serves_and_stops_on_sigterm() {
    let v = Vehicle::new(VerificationMode::Full);
    let c = &v.config;
    let toml = format!(
        "vin = \"{VIN}\"\nserial = \"{SERIAL}\"\nhardware_id = \"{HW}\"\nkey = \"ecu.key.pem\"\n\
         listen = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndirector_root = \"director.root.json\"\n\
         image_root = \"image.root.json\"\napps_dir = \"apps\"\n"
    );
    let path = v.dir.path().join("secondary.toml");
    std::fs::write(&path, toml).unwrap();
    assert!(c.key.exists());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferry-secondary"))
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let line: Value = serde_json::from_str(&first).unwrap();
    let addr: SocketAddr = line["listening"].as_str().unwrap().parse().unwrap();
    let info: Value = json(client().get(format!("http://{addr}/info")).send().unwrap());
    assert_eq!(info["serial"], SERIAL);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success(), "graceful stop exits 0");
}

#[test]
fn a_readable_key_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let v = Vehicle::new(VerificationMode::Full);
    std::fs::set_permissions(&v.config.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = ferry_secondary::Ecu::open(v.config.clone()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("expected 600"), "{text}");
    // The path once, not once per layer of the error.
    let path = v.config.key.display().to_string();
    assert_eq!(text.matches(&path).count(), 1, "{text}");
}
