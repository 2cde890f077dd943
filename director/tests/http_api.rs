//! The Director's HTTP API over real HTTP on 127.0.0.1: the server runs in-process on its own
//! tokio runtime, the client is reqwest's blocking one with bounded timeouts. Assignments read
//! a real Image repository (ferry-image-repo's editor and static server, hashed bins) whose
//! root the Director pins. One happy path (register, assign, fetch and verify metadata as a
//! primary would, report) and one test per refusal.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use common::{image, image_repo, ImageRepo};
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::{uptane::DirectorCustom, Signed, TargetFile};
use ferry_core::TrustedSet;
use ferry_director::http::{serve, AppState};
use ferry_director::image_repo::{ImageRepoClient, ImageRepoSettings, TargetSource};
use ferry_director::model::Scope;
use ferry_director::vehicle_metadata::Lifetimes;
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

const OS: &str = "os/rootfs-2.img";
const NAV: &str = "apps/nav-3.tar";
const ML: &str = "apps/ml.tar";
const TCU: &str = "tcu/fw-7.bin";

/// The Image repository most tests assign from: an OS providing python 3.12, an app that
/// depends on it, an app whose depends nothing provides, and TCU firmware.
fn catalogue() -> ImageRepo {
    image_repo(&[
        image(
            OS,
            &["ivi"],
            "os",
            "2",
            &[("rootfs-image.python.version", "3.12")],
            &[],
        ),
        image(
            NAV,
            &["ivi"],
            "app",
            "3",
            &[],
            &[("rootfs-image.python.version", "3.12")],
        ),
        image(
            ML,
            &["ivi"],
            "app",
            "1",
            &[],
            &[("rootfs-image.cuda.version", "11.8")],
        ),
        image(TCU, &["tcu"], "os", "7", &[], &[]),
    ])
}

fn client_of(repo: &ImageRepo) -> Arc<dyn TargetSource> {
    Arc::new(
        ImageRepoClient::new(ImageRepoSettings::with_root(&repo.url, repo.root.clone())).unwrap(),
    )
}

struct Server {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    repo: ImageRepo,
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
        Server::with_repo(catalogue())
    }

    fn with_repo(repo: ImageRepo) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
        let (root, keys, _) = common::director_root(store.as_ref(), Utc::now());
        let (_, write) = store.create_admin_token("ops", Scope::Write).unwrap();
        let (_, read) = store.create_admin_token("dashboard", Scope::Read).unwrap();
        let state = AppState::new(store, keys, Lifetimes::default(), client_of(&repo));
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
            repo,
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

fn assign(server: &Server, vin: &str, targets: Value) -> (StatusCode, String) {
    server.admin(
        Method::POST,
        &format!("/vehicles/{vin}/assignments"),
        Some(&server.write),
        Some(json!({ "campaign": "spring", "targets": targets })),
    )
}

/// `target_name` for ECU `serial`, as the admin names it.
fn named(serial: &str, target_name: &str) -> Value {
    json!({ "ecu_serial": serial, "target_name": target_name })
}

/// The vehicle's current Director targets, fetched and verified as its primary would.
fn director_targets(server: &Server, car: &Car) -> ferry_core::metadata::Targets {
    let fetch = |file: &str| {
        let (status, body) = server.metadata(&car.vin, file, &car.token);
        assert_eq!(status, StatusCode::OK, "{file}");
        body
    };
    let mut set = TrustedSet::new(&server.root, Utc::now()).unwrap();
    set.update_timestamp(&fetch("timestamp.json")).unwrap();
    set.update_snapshot(&fetch("snapshot.json"), false).unwrap();
    set.update_targets(&fetch("targets.json"), "targets", "root")
        .unwrap()
        .signed()
        .clone()
}

#[test]
fn register_assign_fetch_verified_metadata_and_report() {
    let server = Server::start();
    let car = server.register("VIN-HAPPY");
    assert!(car.token.starts_with("VIN-HAPPY."), "{}", car.token);

    let (status, text) = assign(&server, &car.vin, json!([named(&car.p(), OS)]));
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let planned: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(planned[0]["target_name"], OS);
    assert_eq!(planned[0]["status"], "pending");
    assert_eq!(planned[0]["campaign"], "spring");
    // Length, hashes and custom exactly as the Image repository signed them.
    let published = &server.repo.published[OS];
    let stored: TargetFile = serde_json::from_value(planned[0]["target"].clone()).unwrap();
    assert_eq!(&stored, published);
    assert_eq!(
        stored.custom.as_ref().unwrap()["provides"]["rootfs-image.python.version"],
        "3.12"
    );

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
    let entry = &targets.targets[OS];
    assert_eq!(entry.length, published.length);
    assert_eq!(entry.hashes, published.hashes);
    assert_eq!(
        entry.hashes.len(),
        2,
        "sha256 and sha512: {:?}",
        entry.hashes
    );
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
    let (code, text) = assign(&server, &car.vin, json!([named(&car.p(), TCU)]));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("hardware check failed"), "{text}");
    assert_eq!(server.status(&car.vin)["assignments"], json!([]));
}

#[test]
fn an_unmet_depends_is_unprocessable_in_menders_words() {
    let server = Server::start();
    let car = server.register("VIN-DEP");
    let (code, text) = assign(&server, &car.vin, json!([named(&car.p(), ML)]));
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
    let (code, text) = assign(&server, &car.vin, json!([named("ghost", OS)]));
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");
    // Unsafe target names are refused before anything is fetched.
    let (code, text) = assign(&server, &car.vin, json!([named(&car.p(), "../x")]));
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("target path check failed"), "{text}");
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
    let repo = catalogue();
    let state = AppState::new(store, keys, Lifetimes::default(), client_of(&repo));
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

/// The vehicle's assignments as the status route lists them.
fn assignments(server: &Server, vin: &str) -> Vec<Value> {
    server.status(vin)["assignments"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn an_admin_supplied_target_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-FORGE");
    // The admin may not say what a target is, even repeating the Image repository's words.
    let forged = serde_json::to_value(&server.repo.published[OS]).unwrap();
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([{ "ecu_serial": car.p(), "target_name": OS, "target": forged }]),
    );
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("unknown field `target`"), "{text}");
    assert_eq!(assignments(&server, &car.vin), Vec::<Value>::new());
}

#[test]
fn a_target_the_image_repository_did_not_publish_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-ABSENT");
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([named(&car.p(), OS), named(&car.p(), "os/rootfs-9.img")]),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(text.contains("image repository check failed"), "{text}");
    assert!(
        text.contains("target os/rootfs-9.img is not in the Image repository's signed metadata"),
        "{text}"
    );
    // All or nothing: the published one was not assigned either.
    assert_eq!(assignments(&server, &car.vin), Vec::<Value>::new());
}

#[test]
fn an_os_and_an_app_depending_on_it_are_ordered_os_first() {
    let server = Server::start();
    let car = server.register("VIN-ORDER");
    // The app is named first; it depends on what the OS provides.
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([named(&car.p(), NAV), named(&car.p(), OS)]),
    );
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let planned: Vec<Value> = serde_json::from_str(&text).unwrap();
    let order: Vec<&str> = planned
        .iter()
        .map(|a| a["target_name"].as_str().unwrap())
        .collect();
    assert_eq!(order, [OS, NAV]);
    assert!(planned[0]["position"].as_i64() < planned[1]["position"].as_i64());
    let signed = director_targets(&server, &car);
    assert_eq!(signed.targets.len(), 2);
    assert_eq!(
        signed.targets[NAV].hashes,
        server.repo.published[NAV].hashes
    );
}

/// Register a vehicle whose only ECU is a gateway (hardware "gw").
fn register_gateway(server: &Server, vin: &str) {
    let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let body = json!({"vin": vin, "ecus": [
        {"serial": format!("{vin}-gw"), "hardware_id": "gw",
         "public_key": key.public_key(), "primary": true}]});
    let (status, text) = server.admin(Method::POST, "/vehicles", Some(&server.write), Some(body));
    assert_eq!(status, StatusCode::CREATED, "{text}");
}

fn campaign(server: &Server, body: Value) -> (StatusCode, Value) {
    let (code, text) = server.admin(Method::POST, "/campaigns", Some(&server.write), Some(body));
    let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (code, reply)
}

#[test]
fn a_campaign_assigns_each_vehicle_on_its_own() {
    let server = Server::start();
    let a = server.register("VIN-CA");
    let b = server.register("VIN-CB");
    register_gateway(&server, "VIN-CC");
    // B already has the OS pending: its part of the campaign is refused.
    let (code, text) = assign(&server, &b.vin, json!([named(&b.p(), OS)]));
    assert_eq!(code, StatusCode::CREATED, "{text}");

    let (code, reply) = campaign(
        &server,
        json!({"name": "os-2", "target_name": OS, "hardware_id": "ivi",
               "vins": ["VIN-CA", "VIN-CB", "VIN-CC"]}),
    );
    assert_eq!(code, StatusCode::CREATED, "{reply}");
    assert_eq!(reply["assigned"], 1, "{reply}");
    assert_eq!(reply["refused"], 2, "{reply}");
    let results = reply["vehicles"].as_array().unwrap();
    let by_vin = |vin: &str| results.iter().find(|r| r["vin"] == vin).unwrap().clone();
    let ra = by_vin("VIN-CA");
    assert_eq!(ra["result"], "assigned", "{ra}");
    let id = ra["assignments"][0].as_i64().unwrap();
    let rb = by_vin("VIN-CB");
    assert_eq!(rb["result"], "refused", "{rb}");
    assert!(
        rb["reason"]
            .as_str()
            .unwrap()
            .contains("already has an active assignment"),
        "{rb}"
    );
    let rc = by_vin("VIN-CC");
    assert_eq!(rc["result"], "refused", "{rc}");
    assert!(
        rc["reason"]
            .as_str()
            .unwrap()
            .contains("has no ECU with hardware id ivi"),
        "{rc}"
    );

    // A's assignment is stored under the campaign and signed into its targets.
    let listed = assignments(&server, &a.vin);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["campaign"], "os-2");
    assert_eq!(listed[0]["ecu_serial"], a.p());
    let signed = director_targets(&server, &a);
    assert_eq!(signed.targets[OS].length, server.repo.published[OS].length);
    // B still has just its own assignment.
    assert_eq!(assignments(&server, &b.vin).len(), 1);

    // Fleet-wide, every vehicle refused (nothing provides cuda): 422, each reason in
    // Mender's words; a target the Image repository lacks refuses the whole campaign.
    let (code, reply) = campaign(
        &server,
        json!({"name": "ml", "target_name": ML, "hardware_id": "ivi"}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["assigned"], 0, "{reply}");
    assert_eq!(reply["vehicles"].as_array().unwrap().len(), 2, "{reply}");
    for r in reply["vehicles"].as_array().unwrap() {
        assert!(r["reason"].as_str().unwrap().contains("Missing '"), "{r}");
    }
    let (code, reply) = campaign(
        &server,
        json!({"name": "x", "target_name": "nope.bin", "hardware_id": "ivi"}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply
        .as_str()
        .unwrap()
        .contains("image repository check failed"));
    // A target for other hardware is refused ECU by ECU with the hardware check.
    let (code, reply) = campaign(
        &server,
        json!({"name": "t", "target_name": TCU, "hardware_id": "ivi", "vins": ["VIN-CA"]}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(
        reply["vehicles"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("hardware check failed"),
        "{reply}"
    );
}

#[test]
fn one_assignment_is_cancelled_and_the_vehicle_resigned() {
    let server = Server::start();
    let car = server.register("VIN-CANCEL");
    let (code, text) = assign(
        &server,
        &car.vin,
        json!([named(&car.p(), OS), named(&car.s(), TCU)]),
    );
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let planned: Vec<Value> = serde_json::from_str(&text).unwrap();
    let os_id = planned.iter().find(|a| a["target_name"] == OS).unwrap()["id"]
        .as_i64()
        .unwrap();
    let version = director_targets(&server, &car).version;

    let path = format!("/assignments/{os_id}");
    let (code, _) = server.admin(Method::DELETE, &path, Some(&server.read), None);
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, text) = server.admin(Method::DELETE, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let cancelled: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let signed = director_targets(&server, &car);
    assert_eq!(signed.version, version + 1);
    assert!(!signed.targets.contains_key(OS));
    assert!(signed.targets.contains_key(TCU));

    let (code, text) = server.admin(Method::DELETE, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("expected pending or in_flight"), "{text}");
    let (code, _) = server.admin(
        Method::DELETE,
        "/assignments/999999",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, text) = server.admin(
        Method::DELETE,
        "/assignments/abc",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
}

#[test]
fn vehicles_are_listed_a_page_at_a_time() {
    let server = Server::start();
    for vin in ["VIN-P3", "VIN-P1", "VIN-P5", "VIN-P2", "VIN-P4"] {
        server.register(vin);
    }
    let page = |query: &str| {
        let (code, headers, body) = server.request(
            Method::GET,
            &format!("/api/v1/admin/vehicles{query}"),
            Some(&server.read),
            None,
        );
        let text = String::from_utf8(body).unwrap();
        let link = headers.get("link").map(|l| l.to_str().unwrap().to_owned());
        (code, text, link)
    };
    let vins = |text: &str| -> Vec<String> {
        serde_json::from_str::<Vec<Value>>(text)
            .unwrap()
            .iter()
            .map(|v| v["vin"].as_str().unwrap().to_owned())
            .collect()
    };
    let (code, text, link) = page("?limit=2");
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(vins(&text), ["VIN-P1", "VIN-P2"]);
    let link = link.unwrap();
    assert_eq!(
        link,
        "</api/v1/admin/vehicles?after=VIN-P2&limit=2>; rel=\"next\""
    );
    // Each vehicle comes with its ECUs.
    let first: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(first[0]["ecus"].as_array().unwrap().len(), 2);
    let (_, text, link) = page("?after=VIN-P2&limit=2");
    assert_eq!(vins(&text), ["VIN-P3", "VIN-P4"]);
    assert!(link.is_some());
    let (_, text, link) = page("?after=VIN-P4&limit=2");
    assert_eq!(vins(&text), ["VIN-P5"]);
    assert_eq!(link, None, "a short page is the last");
    let (_, text, _) = page("");
    assert_eq!(vins(&text).len(), 5, "default page size covers them");

    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?page=2"] {
        let (code, text, _) = page(bad);
        assert_eq!(code, StatusCode::BAD_REQUEST, "{bad}: {text}");
        assert!(text.contains("check failed"), "{bad}: {text}");
    }
    let (code, _, _) = page("?limit=1000");
    assert_eq!(code, StatusCode::OK);
}

#[test]
fn stored_manifests_are_listed_newest_first_with_their_verdict() {
    let server = Server::start();
    let car = server.register("VIN-MAN");
    let (code, text) = server.put_manifest(&car.vin, &car.token, car.manifest("n1"));
    assert_eq!(code, StatusCode::OK, "{text}");
    let forger = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let forged = car.manifest_with(
        "n2",
        &[(&car.p(), &car.primary), (&car.s(), &car.secondary)],
        &forger,
    );
    let (code, _) = server.put_manifest(&car.vin, &car.token, forged);
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let path = format!("/vehicles/{}/manifests?limit=10", car.vin);
    let (code, text) = server.admin(Method::GET, &path, Some(&server.read), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let listed: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed.len(), 2, "{text}");
    assert_eq!(listed[0]["verdict"], "refused");
    assert!(
        listed[0]["reason"]
            .as_str()
            .unwrap()
            .contains("signature threshold check failed"),
        "{text}"
    );
    assert!(listed[0]["received_at"].is_string());
    assert_eq!(listed[1]["verdict"], "accepted");
    assert_eq!(listed[1]["nonce"], "n1");
    assert!(listed[1]["size"].as_u64().unwrap() > 0);
    assert!(listed[0].get("body").is_none(), "bodies are not listed");

    let path = format!("/vehicles/{}/manifests?limit=1", car.vin);
    let (_, text) = server.admin(Method::GET, &path, Some(&server.read), None);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&text).unwrap().len(), 1);
    let (code, _) = server.admin(
        Method::GET,
        "/vehicles/NOPE/manifests",
        Some(&server.read),
        None,
    );
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[test]
fn a_tampered_image_repository_fails_closed() {
    let repo = catalogue();
    // Someone with write access to the file server, but no keys, makes every image look
    // one byte longer.
    repo.tamper_targets(|doc| {
        if let Some(targets) = doc["signed"]["targets"].as_object_mut() {
            for target in targets.values_mut() {
                let length = target["length"].as_u64().unwrap();
                target["length"] = json!(length + 1);
            }
        }
    });
    let server = Server::with_repo(repo);
    let car = server.register("VIN-TAMPER");
    let (code, text) = assign(&server, &car.vin, json!([named(&car.p(), OS)]));
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains("image repository check failed"), "{text}");
    assert!(text.contains("signature threshold check failed"), "{text}");
    assert_eq!(assignments(&server, &car.vin), Vec::<Value>::new());
    assert!(director_targets(&server, &car).targets.is_empty());
}

#[test]
fn a_director_pinning_another_root_trusts_nothing_from_the_repository() {
    let repo = catalogue();
    let other = image_repo(&[]);
    // The Director was given another repository's root.
    let source =
        ImageRepoClient::new(ImageRepoSettings::with_root(&repo.url, other.root.clone())).unwrap();
    let err = source.target(OS).unwrap_err();
    assert!(
        err.to_string().contains("image repository check failed"),
        "{err}"
    );
    // And the right root finds it, through its hashed bin.
    let source =
        ImageRepoClient::new(ImageRepoSettings::with_root(&repo.url, repo.root.clone())).unwrap();
    assert_eq!(&source.target(OS).unwrap(), &repo.published[OS]);
    // A root that does not verify is refused up front.
    let err =
        ImageRepoClient::new(ImageRepoSettings::with_root(&repo.url, b"{}".to_vec())).unwrap_err();
    assert!(
        err.to_string().contains("pinned root does not verify"),
        "{err}"
    );
}
