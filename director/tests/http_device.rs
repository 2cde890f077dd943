//! The device API over plain HTTP (common::http): one happy path (register, assign, fetch
//! and verify metadata as a primary would, report), then one test per refusal of a manifest,
//! a token or bad input.
#![allow(clippy::unwrap_used)]

mod common;

use common::car::{verified_targets, Car};
use common::http::{assign, named, Server};
use common::image_repo::OS;
use common::server::{assert_returns_after_shutdown, Transport};
use ferry_core::metadata::{uptane::DirectorCustom, TargetFile};
use ferry_keys::{KeyKind, PrivateKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
    let targets = verified_targets(&root1, fetch);
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

/// Registers `vin`, sends the manifest `body` makes for it and expects `status` with a
/// plain-text body containing `needle`; the vehicle must then show no accepted report.
fn refused(vin: &str, body: impl FnOnce(&Car) -> Vec<u8>, status: StatusCode, needle: &str) {
    let server = Server::start();
    let car = server.register(vin);
    let (code, text) = server.put_manifest(&car.vin, &car.token, body(&car));
    assert_eq!(code, status, "{text}");
    assert!(text.contains(needle), "{text}");
    let vehicle = server.status(&car.vin);
    assert!(vehicle["vehicle"]["last_seen"].is_null(), "{vehicle}");
}

#[test]
fn a_bad_primary_signature_is_refused() {
    let forger = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    refused(
        "VIN-BADPRI",
        |car| car.manifest_signed_by("n1", &forger),
        StatusCode::BAD_REQUEST,
        "signature threshold check failed",
    );
}

#[test]
fn a_bad_ecu_signature_is_refused() {
    let forger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    refused(
        "VIN-BADECU",
        |car| {
            car.manifest_with(
                "n1",
                &[(&car.p(), &car.primary), (&car.s(), &forger)],
                &car.primary,
            )
        },
        StatusCode::BAD_REQUEST,
        "signature threshold check failed",
    );
}

#[test]
fn a_report_from_an_unknown_ecu_is_refused() {
    let ghost = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    refused(
        "VIN-UNK",
        |car| {
            car.manifest_with(
                "n1",
                &[
                    (&car.p(), &car.primary),
                    (&car.s(), &car.secondary),
                    ("ghost", &ghost),
                ],
                &car.primary,
            )
        },
        StatusCode::BAD_REQUEST,
        "ECU \"ghost\" is not registered",
    );
}

#[test]
fn a_manifest_missing_an_ecu_is_refused() {
    refused(
        "VIN-MISS",
        |car| car.manifest_with("n1", &[(&car.p(), &car.primary)], &car.primary),
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
    let repo = common::image_repo::catalogue();
    assert_returns_after_shutdown("serve", Transport::Http, repo.source());
}
