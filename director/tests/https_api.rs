//! The Director's API over mutual TLS on 127.0.0.1 (common::tls): a device is its certificate
//! here. One happy path, then one test per refusal.
#![allow(clippy::unwrap_used)]

mod common;

use common::car::verified_targets;
use common::server::{assert_returns_after_shutdown, Transport, WAIT};
use common::tls::{
    assert_refused, client, device, fleet_ca, get, get_result, no_images, put, server_cert, start,
    start_with, tls_settings, YEAR,
};
use ferry_core::{Clock, SystemClock};
use ferry_director::fleet_ca::{FleetCa, IssuedCert};
use ferry_director::http::TlsSettings;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_device_fetches_verified_metadata_and_reports_with_its_certificate() {
    let ca = fleet_ca();
    let server = start(&ca);
    let car = server.register("VIN-HAPPY");
    let cert = ca
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();
    let device = client(&ca, Some(&cert));

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
    let targets = verified_targets(&root1, fetch);
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
    let server = start(&ca);
    let a = server.register("VIN-A");
    let b = server.register("VIN-B");
    let b_cert = ca
        .issue_device_cert(&b.vin, SystemClock.now(), YEAR)
        .unwrap();
    let b_client = client(&ca, Some(&b_cert));

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
    let server = start(&ca);
    let car = server.register("VIN-TOKEN");
    let anonymous = client(&ca, None);
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
    let server = start(&ca);
    let car = server.register("VIN-FOREIGN");

    // Same VIN, another CA.
    let other = fleet_ca();
    let foreign = other
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();
    let result = get_result(&server, &client(&ca, Some(&foreign)), &car.vin);
    // Same CA name, another key: the signature does not verify.
    let why = assert_refused(result, "another CA's certificate was accepted");
    assert!(why.contains("fatal alert"), "{why}");

    // The fleet CA's server certificate is for server authentication only.
    let names = [car.vin.clone()];
    let server_cert = ca
        .issue_server_cert(&names, SystemClock.now(), YEAR)
        .unwrap();
    let result = get_result(&server, &client(&ca, Some(&server_cert)), &car.vin);
    let why = assert_refused(result, "a server certificate passed as a device's");
    assert!(why.contains("fatal alert"), "{why}");

    // The fleet CA's own certificate and key are no device certificate either.
    let ca_as_client = IssuedCert {
        cert_pem: ca.cert_pem().to_owned(),
        key_pem: ca.key_pem(),
    };
    let result = get_result(&server, &client(&ca, Some(&ca_as_client)), &car.vin);
    let why = assert_refused(result, "the CA certificate passed as a device's");
    assert!(why.contains("fatal alert"), "{why}");

    // The vehicle's own certificate works.
    let own = ca
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();
    let (status, _) = get_result(&server, &client(&ca, Some(&own)), &car.vin).unwrap();
    assert_eq!(status, StatusCode::OK);
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
    let server = start(&ca);
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

    let device = client(&ca, Some(&san_only));
    let (status, body) = get(&server, &device, &car.vin, "timestamp.json");
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let (status, text) = put(&server, &device, &car.vin, car.manifest("n1"));
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(server.manifests(&car.vin), 1);

    // The loaded CA issues certificates the server accepts too.
    let issued = ca
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();
    let (status, _) = get(
        &server,
        &client(&ca, Some(&issued)),
        &car.vin,
        "targets.json",
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn an_unregistered_vin_is_not_found() {
    let ca = fleet_ca();
    let server = start(&ca);
    let car = server.register("VIN-REAL");
    let cert = ca
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();
    let device = client(&ca, Some(&cert));
    let (status, body) = get(&server, &device, "VIN-NONE", "targets.json");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("no vehicle VIN-NONE is registered"), "{text}");

    // A valid certificate for a VIN never registered: 404 on its own path, nothing stored.
    let ghost = ca
        .issue_device_cert("VIN-GHOST", SystemClock.now(), YEAR)
        .unwrap();
    let ghost_client = client(&ca, Some(&ghost));
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
    let server = start_with(&ca, Duration::from_secs(2));
    let car = server.register("VIN-JUNK");
    let cert = ca
        .issue_device_cert(&car.vin, SystemClock.now(), YEAR)
        .unwrap();

    // One client never says anything (its handshake is pending), one sends junk.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut junk = TcpStream::connect(server.addr).unwrap();
    junk.set_read_timeout(Some(WAIT)).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x16\x03garbage")
        .unwrap();

    let (status, _) = get(
        &server,
        &client(&ca, Some(&cert)),
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
        &client(&ca, Some(&cert)),
        &car.vin,
        "snapshot.json",
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn serve_tls_returns_after_shutdown() {
    let ca = fleet_ca();
    let tls = tls_settings(&ca, &server_cert(&ca, &["localhost"]));
    assert_returns_after_shutdown("serve_tls", Transport::Tls(tls), no_images());
}

#[test]
fn tls_settings_refuse_mismatched_or_missing_material() {
    let ca = fleet_ca();
    let a = server_cert(&ca, &["localhost"]);
    let b = server_cert(&ca, &["localhost"]);
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
