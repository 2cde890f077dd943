//! The Director's routes for a relay without an uplink (issue #20): a vehicle packed for a
//! relay (`POST /api/v1/admin/relays/NAME/vehicles/VIN/pack`) and the MAC over a relay's
//! export index checked (`POST /api/v1/admin/relays/NAME/exports/verify`). Write scope,
//! a registered unrevoked relay and a registered vehicle, each refused by name otherwise.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::Server;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn add_relay(server: &Server, name: &str) -> String {
    let (code, text) = server.admin(
        Method::POST,
        "/relays",
        Some(&server.write),
        Some(json!({"name": name})),
    );
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    reply["token"].as_str().unwrap().to_owned()
}

#[test]
fn a_vehicle_is_packed_for_a_registered_relay_with_its_metadata_and_token_hash() {
    let server = Server::start();
    let car = server.register("VIN-P1");
    add_relay(&server, "yard-7");
    let path = format!("/relays/yard-7/vehicles/{}/pack", car.vin);

    let (code, text) = server.admin(Method::POST, &path, Some(&server.read), None);
    assert_eq!(code, StatusCode::FORBIDDEN, "read scope: {text}");
    let (code, text) = server.admin(
        Method::POST,
        "/relays/yard-9/vehicles/VIN-P1/pack",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");
    assert!(text.contains("yard-9"), "{text}");
    let (code, text) = server.admin(
        Method::POST,
        "/relays/yard-7/vehicles/VIN-NOPE/pack",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");

    let (code, text) = server.admin(Method::POST, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    let files = reply["files"].as_object().unwrap();
    // Exactly the bytes the device API serves the vehicle.
    for file in [
        "1.root.json",
        "root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
    ] {
        let packed = hex::decode(files[file].as_str().unwrap()).unwrap();
        let (code, served) = server.metadata(&car.vin, file, &car.token);
        assert_eq!(code, StatusCode::OK, "{file}");
        assert_eq!(packed, served, "{file}");
    }
    let targets: Value =
        serde_json::from_slice(&hex::decode(files["targets.json"].as_str().unwrap()).unwrap())
            .unwrap();
    let version = targets["signed"]["version"].as_u64().unwrap();
    assert!(
        files.contains_key(&format!("{version}.targets.json")),
        "{reply}"
    );
    // The token's secret, hashed as the Director stores it.
    let secret = car
        .token
        .rsplit_once('.')
        .map_or(car.token.as_str(), |(_, s)| s);
    assert_eq!(
        reply["device_token_sha256"],
        hex::encode(Sha256::digest(secret.as_bytes())),
        "{reply}"
    );

    let (code, text) = server.admin(
        Method::POST,
        "/relays/yard-7/revoke",
        Some(&server.write),
        Some(json!({})),
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = server.admin(Method::POST, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::NOT_FOUND, "a revoked relay: {text}");
}

#[test]
fn an_export_index_is_accepted_only_with_its_relays_mac() {
    let server = Server::start();
    let token = add_relay(&server, "yard-7");
    let secret = token.rsplit_once(':').unwrap().1;
    let key = Sha256::digest(secret.as_bytes());
    let index = serde_json::to_vec_pretty(
        &json!({"format": "ferry-relay-export/1", "relay": "yard-7", "manifests": []}),
    )
    .unwrap();
    let mac = |bytes: &[u8]| {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        m.update(bytes);
        hex::encode(m.finalize().into_bytes())
    };
    let verify = |name: &str, mac: &str, body: &[u8], token: &str| {
        let (code, _, body) = server.request(
            Method::POST,
            &format!("/api/v1/admin/relays/{name}/exports/verify?mac={mac}"),
            Some(token),
            Some(body.to_vec()),
        );
        (code, String::from_utf8(body).unwrap())
    };

    let good = mac(&index);
    let (code, text) = verify("yard-7", &good, &index, &server.write);
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = verify("yard-7", &good, &index, &server.read);
    assert_eq!(code, StatusCode::FORBIDDEN, "read scope: {text}");

    // One byte more in the index, or the MAC of another key: refused, naming the check.
    let mut changed = index.clone();
    changed.push(b'\n');
    let (code, text) = verify("yard-7", &good, &changed, &server.write);
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("index MAC check failed"), "{text}");
    let (code, text) = verify("yard-7", &"0".repeat(64), &index, &server.write);
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("index MAC check failed"), "{text}");
    // Another relay's name on the index.
    add_relay(&server, "yard-8");
    let (code, text) = verify("yard-8", &good, &index, &server.write);
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("index check failed"), "{text}");

    let (code, text) = server.admin(
        Method::POST,
        "/relays/yard-7/revoke",
        Some(&server.write),
        Some(json!({})),
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = verify("yard-7", &good, &index, &server.write);
    assert_eq!(code, StatusCode::NOT_FOUND, "a revoked relay: {text}");
}
