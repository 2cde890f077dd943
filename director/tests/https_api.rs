//! The Director's API over mutual TLS on 127.0.0.1: the server runs in-process on its own tokio
//! runtime with a fleet CA made per test; clients are reqwest's blocking one, each with its own
//! certificate. A device is its certificate here: one happy path, then one test per refusal.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::Signed;
use ferry_core::TrustedSet;
use ferry_director::fleet_ca::{FleetCa, IssuedCert};
use ferry_director::http::{serve_tls, AppState, TlsSettings, HANDSHAKE_TIMEOUT};
use ferry_director::image_repo::{TargetSource, Unconfigured};
use ferry_director::model::Scope;
use ferry_director::vehicle_metadata::Lifetimes;
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// No assignments are made here, so no Image repository is needed.
fn no_images() -> Arc<dyn TargetSource> {
    Arc::new(Unconfigured)
}

fn fleet_ca() -> FleetCa {
    FleetCa::generate("Ferry test fleet CA", Utc::now(), 10 * YEAR).unwrap()
}

struct Server {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    root: Vec<u8>,
    /// The CA clients trust for the server certificate (the fleet CA).
    ca_pem: String,
    write: String,
    /// A client with an operator certificate (it names no vehicle), for the admin API.
    admin: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Server {
    /// A Director whose device certificates and server certificate come from `ca`.
    fn start(ca: &FleetCa) -> Server {
        Self::start_with(ca, HANDSHAKE_TIMEOUT)
    }

    fn start_with(ca: &FleetCa, handshake_timeout: Duration) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
        let (root, keys, _) = common::director_root(store.as_ref(), Utc::now());
        let (_, write) = store.create_admin_token("ops", Scope::Write).unwrap();
        let state = AppState::new(store.clone(), keys, Lifetimes::default(), no_images());
        let names = ["localhost".to_string(), "127.0.0.1".to_string()];
        let server_cert = ca.issue_server_cert(&names, Utc::now(), YEAR).unwrap();
        let tls = TlsSettings::from_pem(
            server_cert.cert_pem.as_bytes(),
            server_cert.key_pem.as_bytes(),
            ca.cert_pem().as_bytes(),
        )
        .unwrap()
        .with_handshake_timeout(handshake_timeout);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(serve_tls(listener, state, tls, std::future::pending()));
        let ca_pem = ca.cert_pem().to_owned();
        let ops = ca
            .issue_operator_cert("ops-console", Utc::now(), YEAR)
            .unwrap();
        Server {
            addr,
            runtime: Some(runtime),
            _dir: dir,
            store,
            root,
            admin: client(&ca_pem, Some(&ops)),
            ca_pem,
            write,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    fn client(&self, identity: Option<&IssuedCert>) -> Client {
        client(&self.ca_pem, identity)
    }

    /// Register a vehicle with a primary (`{vin}-p`) and a secondary (`{vin}-s`).
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
        let response = self
            .admin
            .post(self.url("/api/v1/admin/vehicles"))
            .bearer_auth(&self.write)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .send()
            .unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let reply: Value = serde_json::from_str(&text).unwrap();
        Car {
            vin: vin.into(),
            token: reply["device_token"].as_str().unwrap().to_owned(),
            primary,
            secondary,
        }
    }

    fn manifests(&self, vin: &str) -> u64 {
        self.store.count_manifests(vin, None).unwrap()
    }
}

fn client(ca_pem: &str, identity: Option<&IssuedCert>) -> Client {
    let mut builder = Client::builder()
        .timeout(WAIT)
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if let Some(issued) = identity {
        let pem = format!("{}{}", issued.cert_pem, issued.key_pem.as_str());
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// A device request: method, path under `/api/v1/vehicles/{vin}/`, optional bearer token
/// and body. The response's status and body, or the transport error (a refused handshake).
fn device(
    server: &Server,
    client: &Client,
    method: Method,
    vin: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let mut request = client.request(
        method,
        server.url(&format!("/api/v1/vehicles/{vin}/{path}")),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let response = request.send()?;
    let status = response.status();
    Ok((status, response.bytes()?.to_vec()))
}

fn get(server: &Server, client: &Client, vin: &str, file: &str) -> (StatusCode, Vec<u8>) {
    let path = format!("metadata/{file}");
    device(server, client, Method::GET, vin, &path, None, None).unwrap()
}

fn put(server: &Server, client: &Client, vin: &str, body: Vec<u8>) -> (StatusCode, String) {
    let (status, body) = device(
        server,
        client,
        Method::PUT,
        vin,
        "manifest",
        None,
        Some(body),
    )
    .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

struct Car {
    vin: String,
    token: String,
    primary: PrivateKey,
    secondary: PrivateKey,
}

impl Car {
    /// A manifest of both ECUs, each report signed by its own key, signed by the primary.
    fn manifest(&self, nonce: &str) -> Vec<u8> {
        let p = format!("{}-p", self.vin);
        let s = format!("{}-s", self.vin);
        let reports = [
            common::report(&p, nonce, Utc::now(), &self.primary),
            common::report(&s, nonce, Utc::now(), &self.secondary),
        ];
        let mut m = Signed::new(VehicleManifest::new(&self.vin, &p, &reports).unwrap());
        m.sign(&self.primary as &dyn Signer).unwrap();
        m.to_bytes().unwrap()
    }
}

#[test]
fn a_device_fetches_verified_metadata_and_reports_with_its_certificate() {
    let ca = fleet_ca();
    let server = Server::start(&ca);
    let car = server.register("VIN-HAPPY");
    let cert = ca.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();
    let device = server.client(Some(&cert));

    // No bearer token anywhere: the certificate is the device's credential.
    let (status, root1) = get(&server, &device, &car.vin, "1.root.json");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(root1, server.root);
    let fetch = |file: &str| {
        let (status, body) = get(&server, &device, &car.vin, file);
        assert_eq!(
            status,
            StatusCode::OK,
            "{file}: {}",
            String::from_utf8_lossy(&body)
        );
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

    let (status, text) = put(&server, &device, &car.vin, car.manifest("nonce-1"));
    assert_eq!(status, StatusCode::OK, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert!(reply["id"].as_i64().unwrap() > 0, "{reply}");
    assert_eq!(server.manifests(&car.vin), 1);
}

#[test]
fn another_vehicles_certificate_is_forbidden_and_writes_nothing() {
    let ca = fleet_ca();
    let server = Server::start(&ca);
    let a = server.register("VIN-A");
    let b = server.register("VIN-B");
    let b_cert = ca.issue_device_cert(&b.vin, Utc::now(), YEAR).unwrap();
    let b_client = server.client(Some(&b_cert));

    let (status, body) = get(&server, &b_client, &a.vin, "targets.json");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains("device certificate check failed: the certificate is vehicle VIN-B's"),
        "{text}"
    );
    assert!(
        text.contains("expected the certificate of vehicle VIN-A"),
        "{text}"
    );

    let (status, text) = put(&server, &b_client, &a.vin, a.manifest("n1"));
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("device certificate check failed"), "{text}");
    assert_eq!(server.manifests(&a.vin), 0);

    // A's own bearer token does not help B's certificate: tokens are ignored over TLS.
    let (status, body) = device(
        &server,
        &b_client,
        Method::PUT,
        &a.vin,
        "manifest",
        Some(&a.token),
        Some(a.manifest("n2")),
    )
    .unwrap();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(server.manifests(&a.vin), 0);
    assert_eq!(server.manifests(&b.vin), 0);

    // B's certificate still works for B.
    let (status, _) = get(&server, &b_client, &b.vin, "timestamp.json");
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn a_device_token_without_a_certificate_is_refused_at_the_handshake() {
    let ca = fleet_ca();
    let server = Server::start(&ca);
    let car = server.register("VIN-TOKEN");
    let anonymous = server.client(None);
    let path = "metadata/timestamp.json";
    let result = device(
        &server,
        &anonymous,
        Method::GET,
        &car.vin,
        path,
        Some(&car.token),
        None,
    );
    let why = assert_refused(result, "served without a client certificate");
    assert!(why.contains("CertificateRequired"), "{why}");
    let body = car.manifest("n1");
    let result = device(
        &server,
        &anonymous,
        Method::PUT,
        &car.vin,
        "manifest",
        Some(&car.token),
        Some(body),
    );
    let why = assert_refused(result, "accepted without a client certificate");
    assert!(why.contains("CertificateRequired"), "{why}");
    assert_eq!(server.manifests(&car.vin), 0);
}

#[test]
fn certificates_the_fleet_ca_did_not_issue_for_devices_are_refused() {
    let ca = fleet_ca();
    let server = Server::start(&ca);
    let car = server.register("VIN-FOREIGN");

    // Same VIN, another CA.
    let other = fleet_ca();
    let foreign = other.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();
    let result = get_result(&server, &server.client(Some(&foreign)), &car.vin);
    // Same CA name, another key: the signature does not verify.
    let why = assert_refused(result, "another CA's certificate was accepted");
    assert!(why.contains("fatal alert"), "{why}");

    // The fleet CA's server certificate is for server authentication only.
    let names = [car.vin.clone()];
    let server_cert = ca.issue_server_cert(&names, Utc::now(), YEAR).unwrap();
    let result = get_result(&server, &server.client(Some(&server_cert)), &car.vin);
    let why = assert_refused(result, "a server certificate passed as a device's");
    assert!(why.contains("fatal alert"), "{why}");

    // The fleet CA's own certificate and key are no device certificate either.
    let ca_as_client = IssuedCert {
        cert_pem: ca.cert_pem().to_owned(),
        key_pem: ca.key_pem(),
    };
    let result = get_result(&server, &server.client(Some(&ca_as_client)), &car.vin);
    let why = assert_refused(result, "the CA certificate passed as a device's");
    assert!(why.contains("fatal alert"), "{why}");

    // The vehicle's own certificate works.
    let own = ca.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();
    let (status, _) = get_result(&server, &server.client(Some(&own)), &car.vin).unwrap();
    assert_eq!(status, StatusCode::OK);
}

/// The request got no HTTP answer: the TLS layer refused the client. Returns the error chain.
fn assert_refused(result: Result<(StatusCode, Vec<u8>), reqwest::Error>, what: &str) -> String {
    match result {
        Ok((status, body)) => panic!(
            "{what}: answered {status}: {}",
            String::from_utf8_lossy(&body)
        ),
        Err(e) => {
            assert!(!e.is_timeout(), "{what}: timed out, not refused: {e:?}");
            let mut chain = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                chain.push_str(&format!(": {s}"));
                source = s.source();
            }
            chain
        }
    }
}

fn get_result(
    server: &Server,
    client: &Client,
    vin: &str,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    device(
        server,
        client,
        Method::GET,
        vin,
        "metadata/timestamp.json",
        None,
        None,
    )
}

#[test]
fn a_vin_only_in_the_san_is_accepted() {
    // A CA made by another tool (rcgen directly here), loaded as the fleet CA.
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example Motors");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example fleet CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = FleetCa::from_pem(&ca_cert.pem(), &ca_key.serialize_pem(), None).unwrap();
    let server = Server::start(&ca);
    let car = server.register("VIN-SAN");

    // CN is an ECU serial; the VIN is only in the URI SAN.
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "tcu-serial-42");
    params.subject_alt_names = vec![rcgen::SanType::URI(
        "urn:ferry:vin:VIN-SAN".try_into().unwrap(),
    )];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let san_only = IssuedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem().into(),
    };
    let info = ferry_keys::certificate_info(san_only.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.subject_cn.as_deref(), Some("tcu-serial-42"));

    let device = server.client(Some(&san_only));
    let (status, body) = get(&server, &device, &car.vin, "timestamp.json");
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, text) = put(&server, &device, &car.vin, car.manifest("n1"));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(server.manifests(&car.vin), 1);

    // The loaded CA issues certificates the server accepts too.
    let issued = ca.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();
    let (status, _) = get(
        &server,
        &server.client(Some(&issued)),
        &car.vin,
        "targets.json",
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn an_unregistered_vin_is_not_found() {
    let ca = fleet_ca();
    let server = Server::start(&ca);
    let car = server.register("VIN-REAL");
    let cert = ca.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();
    let device = server.client(Some(&cert));
    let (status, body) = get(&server, &device, "VIN-NONE", "targets.json");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("no vehicle VIN-NONE is registered"), "{text}");

    // A valid certificate for a VIN never registered: 404 on its own path, nothing stored.
    let ghost = ca.issue_device_cert("VIN-GHOST", Utc::now(), YEAR).unwrap();
    let ghost_client = server.client(Some(&ghost));
    let (status, text) = put(&server, &ghost_client, "VIN-GHOST", car.manifest("n1"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(
        text.contains("no vehicle VIN-GHOST is registered"),
        "{text}"
    );
    assert_eq!(server.manifests("VIN-GHOST"), 0);
}

#[test]
fn garbage_and_silent_clients_do_not_stop_the_server() {
    let ca = fleet_ca();
    // Short enough to see the silent client dropped, long enough for any real handshake.
    let server = Server::start_with(&ca, Duration::from_secs(2));
    let car = server.register("VIN-JUNK");
    let cert = ca.issue_device_cert(&car.vin, Utc::now(), YEAR).unwrap();

    // One client never says anything (its handshake is pending), one sends junk.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut junk = TcpStream::connect(server.addr).unwrap();
    junk.set_read_timeout(Some(WAIT)).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03garbage")
        .unwrap();

    let (status, _) = get(
        &server,
        &server.client(Some(&cert)),
        &car.vin,
        "timestamp.json",
    );
    assert_eq!(status, StatusCode::OK);

    // The junk connection is answered (a TLS alert at most) and closed, not served.
    let mut reply = Vec::new();
    match junk.read_to_end(&mut reply) {
        Ok(_) => assert!(!reply.windows(4).any(|w| w == b"HTTP"), "{reply:?}"),
        // Closing with our junk still unread makes the kernel reset the connection.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the junk connection was not closed: {e}"),
    }
    // The silent one is dropped once its handshake time is up.
    let mut nothing = Vec::new();
    let read = silent.read_to_end(&mut nothing);
    assert!(
        matches!(read, Ok(0)),
        "the silent connection was not closed: {read:?} {nothing:?}"
    );

    // And the server keeps serving.
    let (status, _) = get(
        &server,
        &server.client(Some(&cert)),
        &car.vin,
        "snapshot.json",
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn serve_tls_returns_after_shutdown() {
    let ca = fleet_ca();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
    let (_, keys, _) = common::director_root(store.as_ref(), Utc::now());
    let server_cert = ca
        .issue_server_cert(&["localhost".into()], Utc::now(), YEAR)
        .unwrap();
    let tls = TlsSettings::from_pem(
        server_cert.cert_pem.as_bytes(),
        server_cert.key_pem.as_bytes(),
        ca.cert_pem().as_bytes(),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let state = AppState::new(store, keys, Lifetimes::default(), no_images());
    let task = runtime.spawn(serve_tls(listener, state, tls, async {
        let _ = stopped.await;
    }));
    stop.send(()).unwrap();
    let result = runtime
        .block_on(async { tokio::time::timeout(WAIT, task).await })
        .expect("serve_tls did not return after shutdown")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn tls_settings_refuse_mismatched_or_missing_material() {
    let ca = fleet_ca();
    let a = ca
        .issue_server_cert(&["localhost".into()], Utc::now(), YEAR)
        .unwrap();
    let b = ca
        .issue_server_cert(&["localhost".into()], Utc::now(), YEAR)
        .unwrap();
    let ca_pem = ca.cert_pem().as_bytes();
    let err = TlsSettings::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes(), ca_pem)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server certificate and key are refused"),
        "{err}"
    );
    let err = TlsSettings::from_pem(a.cert_pem.as_bytes(), a.key_pem.as_bytes(), b"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fleet CA certificate PEM has no certificate"),
        "{err}"
    );
    let err = TlsSettings::from_pem(b"", a.key_pem.as_bytes(), ca_pem)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server certificate PEM has no certificate"),
        "{err}"
    );
    let err = TlsSettings::from_pem(a.cert_pem.as_bytes(), b"", ca_pem)
        .unwrap_err()
        .to_string();
    assert!(err.contains("server key does not load"), "{err}");
    assert!(!err.contains("PRIVATE KEY-----"), "{err}");
}
