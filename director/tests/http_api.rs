//! The Director's HTTP API over real HTTP on 127.0.0.1: the server runs in-process on its own
//! tokio runtime, the client is reqwest's blocking one with bounded timeouts. One happy path
//! (register, assign, fetch and verify metadata as a primary would, report) and one test per
//! refusal.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::{hashes_of, uptane::DirectorCustom, Signed, TargetFile};
use ferry_core::TrustedSet;
use ferry_director::http::{serve, AppState};
use ferry_director::model::Scope;
use ferry_director::vehicle_metadata::Lifetimes;
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

struct Server {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
    root: Vec<u8>,
    write: String,
    read: String,
    client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
        let (root, keys, _) = common::director_root(store.as_ref(), Utc::now());
        let (_, write) = store.create_admin_token("ops", Scope::Write).unwrap();
        let (_, read) = store.create_admin_token("dashboard", Scope::Read).unwrap();
        let state = AppState::new(store, keys, Lifetimes::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(serve(listener, state, std::future::pending()));
        Server {
            addr,
            runtime: Some(runtime),
            _dir: dir,
            root,
            write,
            read,
            client: Client::builder().timeout(WAIT).build().unwrap(),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let mut request = self
            .client
            .request(method, format!("http://{}{path}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, response.bytes().unwrap().to_vec())
    }

    /// An admin call: status and body as text.
    fn admin(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let (status, _, body) = self.request(
            method,
            &format!("/api/v1/admin{path}"),
            token,
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        );
        (status, String::from_utf8(body).unwrap())
    }

    fn metadata(&self, vin: &str, file: &str, token: &str) -> (StatusCode, Vec<u8>) {
        let (status, headers, body) = self.request(
            Method::GET,
            &format!("/api/v1/vehicles/{vin}/metadata/{file}"),
            Some(token),
            None,
        );
        if status == StatusCode::OK {
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["cache-control"], "no-store");
        }
        (status, body)
    }

    fn put_manifest(&self, vin: &str, token: &str, body: Vec<u8>) -> (StatusCode, String) {
        let (status, _, body) = self.request(
            Method::PUT,
            &format!("/api/v1/vehicles/{vin}/manifest"),
            Some(token),
            Some(body),
        );
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Register a vehicle with a primary (`{vin}-p`, hardware "ivi") and a secondary
    /// (`{vin}-s`, hardware "tcu").
    fn register(&self, vin: &str) -> Car {
        let primary = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let secondary = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
        let body = json!({
            "vin": vin,
            "ecus": [
                {"serial": format!("{vin}-p"), "hardware_id": "ivi",
                 "public_key": primary.public_key(), "primary": true},
                {"serial": format!("{vin}-s"), "hardware_id": "tcu",
                 "public_key": secondary.public_key(), "primary": false},
            ]
        });
        let (status, text) = self.admin(Method::POST, "/vehicles", Some(&self.write), Some(body));
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reply["vin"], vin);
        Car {
            vin: vin.into(),
            token: reply["device_token"].as_str().unwrap().to_owned(),
            primary,
            secondary,
        }
    }

    fn status(&self, vin: &str) -> Value {
        let (status, text) = self.admin(
            Method::GET,
            &format!("/vehicles/{vin}/status"),
            Some(&self.read),
            None,
        );
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).unwrap()
    }
}

struct Car {
    vin: String,
    token: String,
    primary: PrivateKey,
    secondary: PrivateKey,
}

impl Car {
    fn p(&self) -> String {
        format!("{}-p", self.vin)
    }

    fn s(&self) -> String {
        format!("{}-s", self.vin)
    }

    /// A manifest of both ECUs, each report signed by its own key, signed by the primary.
    fn manifest(&self, nonce: &str) -> Vec<u8> {
        self.manifest_with(
            nonce,
            &[(&self.p(), &self.primary), (&self.s(), &self.secondary)],
            &self.primary,
        )
    }

    fn manifest_with(
        &self,
        nonce: &str,
        reports: &[(&str, &PrivateKey)],
        signer: &PrivateKey,
    ) -> Vec<u8> {
        let reports: Vec<_> = reports
            .iter()
            .map(|(serial, key)| common::report(serial, nonce, Utc::now(), key))
            .collect();
        let mut m = Signed::new(VehicleManifest::new(&self.vin, &self.p(), &reports).unwrap());
        m.sign(signer as &dyn Signer).unwrap();
        m.to_bytes().unwrap()
    }
}

fn target(custom: Value) -> Value {
    serde_json::to_value(TargetFile {
        custom: Some(custom),
        hashes: hashes_of(b"os image 2"),
        length: 10,
        extra: BTreeMap::new(),
    })
    .unwrap()
}

fn assign(server: &Server, vin: &str, targets: Value) -> (StatusCode, String) {
    server.admin(
        Method::POST,
        &format!("/vehicles/{vin}/assignments"),
        Some(&server.write),
        Some(json!({ "campaign": "spring", "targets": targets })),
    )
}

#[test]
fn register_assign_fetch_verified_metadata_and_report() {
    let server = Server::start();
    let car = server.register("VIN-HAPPY");
    assert!(car.token.starts_with("VIN-HAPPY."), "{}", car.token);

    let (status, text) = assign(
        &server,
        &car.vin,
        json!([{ "ecu_serial": car.p(), "target_name": "os/rootfs-2.img",
                 "target": target(json!({"hardwareIds": ["ivi"], "domain": "os",
                                         "name": "rootfs", "version": "2"})) }]),
    );
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let planned: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(planned[0]["target_name"], "os/rootfs-2.img");
    assert_eq!(planned[0]["status"], "pending");
    assert_eq!(planned[0]["campaign"], "spring");

    // The device walks the roots until 404, then fetches and verifies its metadata.
    let (status, root1) = server.metadata(&car.vin, "1.root.json", &car.token);
    assert_eq!(status, StatusCode::OK);
    assert_eq!(root1, server.root);
    let (status, _) = server.metadata(&car.vin, "2.root.json", &car.token);
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, latest) = server.metadata(&car.vin, "root.json", &car.token);
    assert_eq!((status, latest), (StatusCode::OK, server.root.clone()));
    let fetch = |file: &str| {
        let (status, body) = server.metadata(&car.vin, file, &car.token);
        assert_eq!(status, StatusCode::OK, "{file}");
        body
    };
    let mut set = TrustedSet::new(&root1, Utc::now()).unwrap();
    set.update_timestamp(&fetch("timestamp.json")).unwrap();
    set.update_snapshot(&fetch("snapshot.json"), false).unwrap();
    let targets = set
        .update_targets(&fetch("targets.json"), "targets", "root")
        .unwrap()
        .signed()
        .clone();
    assert_eq!(targets.extra["custom"]["vin"], "VIN-HAPPY");
    let entry = &targets.targets["os/rootfs-2.img"];
    let custom: DirectorCustom = serde_json::from_value(entry.custom.clone().unwrap()).unwrap();
    assert_eq!(custom.ecu_identifiers[&car.p()].hardware_id, "ivi");

    // Serving targets.json put the assignment in flight.
    let status = server.status(&car.vin);
    assert_eq!(status["assignments"][0]["status"], "in_flight", "{status}");
    assert_eq!(status["vehicle"]["status"]["in_flight"], 1, "{status}");

    let (code, text) = server.put_manifest(&car.vin, &car.token, car.manifest("nonce-1"));
    assert_eq!(code, StatusCode::OK, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert!(reply["id"].as_i64().unwrap() > 0, "{reply}");
    let status = server.status(&car.vin);
    assert!(!status["vehicle"]["last_seen"].is_null(), "{status}");

    // The inventory reads.
    let (code, text) = server.admin(Method::GET, "/vehicles", Some(&server.read), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list[0]["vin"], "VIN-HAPPY");
    let (code, text) = server.admin(Method::GET, "/vehicles/VIN-HAPPY", Some(&server.read), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, _) = server.admin(Method::GET, "/vehicles/NOPE", Some(&server.read), None);
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Cancelling re-signs targets without the image.
    let (code, text) = server.admin(
        Method::DELETE,
        "/vehicles/VIN-HAPPY/assignments",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["cancelled"],
        1
    );
    let signed: Value = serde_json::from_slice(&fetch("targets.json")).unwrap();
    assert_eq!(signed["signed"]["targets"], json!({}), "{signed}");
    // Version 1 at registration, 2 with the assignment, 3 after cancelling.
    assert_eq!(signed["signed"]["version"], 3);
}

/// Sends `body` and expects `status` with a plain-text body containing `needle`; the vehicle
/// must then show no accepted report.
fn refused(server: &Server, car: &Car, body: Vec<u8>, status: StatusCode, needle: &str) {
    let (code, text) = server.put_manifest(&car.vin, &car.token, body);
    assert_eq!(code, status, "{text}");
    assert!(text.contains(needle), "{text}");
    let vehicle = server.status(&car.vin);
    assert!(vehicle["vehicle"]["last_seen"].is_null(), "{vehicle}");
}

#[test]
fn a_bad_primary_signature_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-BADPRI");
    let forger = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let body = car.manifest_with(
        "n1",
        &[(&car.p(), &car.primary), (&car.s(), &car.secondary)],
        &forger,
    );
    refused(
        &server,
        &car,
        body,
        StatusCode::BAD_REQUEST,
        "signature threshold check failed",
    );
}

#[test]
fn a_bad_ecu_signature_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-BADECU");
    let forger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let body = car.manifest_with(
        "n1",
        &[(&car.p(), &car.primary), (&car.s(), &forger)],
        &car.primary,
    );
    refused(
        &server,
        &car,
        body,
        StatusCode::BAD_REQUEST,
        "signature threshold check failed",
    );
}

#[test]
fn a_report_from_an_unknown_ecu_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-UNK");
    let ghost = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let body = car.manifest_with(
        "n1",
        &[
            (&car.p(), &car.primary),
            (&car.s(), &car.secondary),
            ("ghost", &ghost),
        ],
        &car.primary,
    );
    refused(
        &server,
        &car,
        body,
        StatusCode::BAD_REQUEST,
        "ECU \"ghost\" is not registered",
    );
}

#[test]
fn a_manifest_missing_an_ecu_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-MISS");
    let body = car.manifest_with("n1", &[(&car.p(), &car.primary)], &car.primary);
    refused(
        &server,
        &car,
        body,
        StatusCode::BAD_REQUEST,
        "no version report from registered ECU",
    );
}

#[test]
fn a_replayed_nonce_is_a_conflict() {
    let server = Server::start();
    let car = server.register("VIN-REPLAY");
    let body = car.manifest("n1");
    let (code, text) = server.put_manifest(&car.vin, &car.token, body.clone());
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = server.put_manifest(&car.vin, &car.token, body);
    assert_eq!(code, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("nonce check failed"), "{text}");
}

#[test]
fn another_vehicles_token_is_forbidden_and_a_wrong_one_unauthorized() {
    let server = Server::start();
    let a = server.register("VIN-A");
    let b = server.register("VIN-B");
    let (code, body) = server.metadata(&a.vin, "targets.json", &b.token);
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(!body.starts_with(b"{"), "served another vehicle's metadata");
    let (code, text) = server.put_manifest(&a.vin, &b.token, a.manifest("n1"));
    assert_eq!(code, StatusCode::FORBIDDEN, "{text}");
    assert!(server.status(&a.vin)["vehicle"]["last_seen"].is_null());

    // A guessed token, a bare secret of the wrong vehicle, and no token at all: 401.
    let (code, _) = server.metadata(&a.vin, "targets.json", "VIN-B.0123");
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let bare = b.token.rsplit_once('.').unwrap().1;
    let (code, _) = server.metadata(&a.vin, "targets.json", bare);
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _, _) = server.request(
        Method::GET,
        "/api/v1/vehicles/VIN-A/metadata/timestamp.json",
        None,
        None,
    );
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // An unregistered VIN is a 404, whatever the token (but still 401 without one).
    let (code, _) = server.metadata("VIN-NONE", "targets.json", &b.token);
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, text) = server.put_manifest("VIN-NONE", &b.token, b.manifest("n1"));
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("no vehicle VIN-NONE"), "{text}");
    let (code, _, _) = server.request(
        Method::PUT,
        "/api/v1/vehicles/VIN-NONE/manifest",
        None,
        None,
    );
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // The vehicle's own token, bare or prefixed, works.
    let (code, _) = server.metadata(&a.vin, "timestamp.json", &a.token);
    assert_eq!(code, StatusCode::OK);
    let (code, _) = server.metadata(
        &a.vin,
        "timestamp.json",
        a.token.rsplit_once('.').unwrap().1,
    );
    assert_eq!(code, StatusCode::OK);
}

#[test]
fn admin_calls_need_a_token_and_writes_need_write_scope() {
    let server = Server::start();
    let body = json!({"vin": "VIN-X", "ecus": []});
    let (code, _) = server.admin(Method::POST, "/vehicles", None, Some(body.clone()));
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = server.admin(Method::GET, "/vehicles", None, None);
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = server.admin(Method::GET, "/vehicles", Some("not-a-token"), None);
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, text) = server.admin(Method::POST, "/vehicles", Some(&server.read), Some(body));
    assert_eq!(code, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("scope read"), "{text}");
    let (code, _) = server.admin(
        Method::DELETE,
        "/vehicles/VIN-X/assignments",
        Some(&server.read),
        None,
    );
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Read scope does read.
    let (code, text) = server.admin(Method::GET, "/vehicles", Some(&server.read), None);
    assert_eq!((code, text.as_str()), (StatusCode::OK, "[]"));
}

#[test]
fn a_target_for_other_hardware_is_unprocessable() {
    let server = Server::start();
    let car = server.register("VIN-HW");
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([{ "ecu_serial": car.p(), "target_name": "tcu-fw.bin",
                 "target": target(json!({"hardwareIds": ["tcu"]})) }]),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("hardware check failed"), "{text}");
    assert_eq!(server.status(&car.vin)["assignments"], json!([]));
}

#[test]
fn an_unmet_depends_is_unprocessable_in_menders_words() {
    let server = Server::start();
    let car = server.register("VIN-DEP");
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([{ "ecu_serial": car.p(), "target_name": "apps/ml.tar",
                 "target": target(json!({"hardwareIds": ["ivi"], "domain": "app", "name": "ml",
                                         "depends": {"rootfs-image.cuda.version": "11.8"}})) }]),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("Missing '"), "{text}");
    assert!(text.contains("System not modified"), "{text}");
    assert_eq!(server.status(&car.vin)["assignments"], json!([]));
}

#[test]
fn bad_input_is_refused_without_harm() {
    let server = Server::start();
    let car = server.register("VIN-BAD");
    // Malformed JSON names the problem.
    let (code, _, body) = server.request(
        Method::POST,
        "/api/v1/admin/vehicles",
        Some(&server.write),
        Some(b"{\"vin\": ".to_vec()),
    );
    let text = String::from_utf8(body).unwrap();
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("request body check failed"), "{text}");
    // An unknown ECU in an assignment is a 404.
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([{ "ecu_serial": "ghost", "target_name": "x",
                 "target": target(json!({"hardwareIds": ["ivi"]})) }]),
    );
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");
    // Garbage and oversized manifests.
    let (code, text) = server.put_manifest(&car.vin, &car.token, b"not json".to_vec());
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    let (code, _) = server.put_manifest(&car.vin, &car.token, vec![b' '; (1 << 20) + 1]);
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown metadata files.
    for file in ["0.root.json", "x.json", "..%2Fdirector.db"] {
        let (code, _) = server.metadata(&car.vin, file, &car.token);
        assert_eq!(code, StatusCode::NOT_FOUND, "{file}");
    }
    // The server still answers.
    let (code, _) = server.metadata(&car.vin, "timestamp.json", &car.token);
    assert_eq!(code, StatusCode::OK);
}

#[test]
fn serve_returns_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
    let (_, keys, _) = common::director_root(store.as_ref(), Utc::now());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(store, keys, Lifetimes::default());
    let task = runtime.spawn(serve(listener, state, async {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    let result = runtime
        .block_on(async { tokio::time::timeout(WAIT, task).await })
        .expect("serve did not return after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
