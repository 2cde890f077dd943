//! Gateway relays (issue #20) on the Director's side: registration, a relay speaking for a
//! vehicle (its forwarded device token, or the VIN it vouches for), a relay token worthless on
//! the admin API, and a manifest a relay held while its uplink was down, judged at the
//! relay's receipt time and still refused when replayed.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use common::car::Car;
use common::http::Server;
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::Signed;
use ferry_director::Store;
use ferry_keys::Signer;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

/// A device request made by a relay: its token, and the given extra headers.
fn relayed(
    server: &Server,
    method: Method,
    path: &str,
    relay_token: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> (StatusCode, String) {
    let mut request = server
        .client
        .request(method, server.url(path))
        .bearer_auth(relay_token);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().unwrap();
    let status = response.status();
    (status, response.text().unwrap())
}

/// A manifest of both ECUs whose reports are dated `at`.
fn manifest_at(car: &Car, nonce: &str, at: DateTime<Utc>) -> Vec<u8> {
    let reports = vec![
        common::report(&car.p(), nonce, at, &car.primary),
        common::report(&car.s(), nonce, at, &car.secondary),
    ];
    let mut m = Signed::new(VehicleManifest::new(&car.vin, &car.p(), &reports).unwrap());
    m.sign(&car.primary as &dyn Signer).unwrap();
    m.to_bytes().unwrap()
}

#[test]
fn a_registered_relay_speaks_for_vehicles_and_never_as_an_operator() {
    let server = Server::start();
    let car = server.register("VIN-R1");
    let token = add_relay(&server, "yard-7");
    assert!(token.starts_with("ferry-relay:yard-7:"), "{token}");

    // Registered once; listed without its secret.
    let (code, text) = server.admin(
        Method::POST,
        "/relays",
        Some(&server.write),
        Some(json!({"name": "yard-7"})),
    );
    assert_eq!(code, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("already registered"), "{text}");
    let (code, text) = server.admin(Method::GET, "/relays", Some(&server.read), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    assert!(
        text.contains("yard-7") && !text.contains(&token[20..]),
        "{text}"
    );
    let (code, text) = server.admin(
        Method::POST,
        "/relays",
        Some(&server.write),
        Some(json!({"name": "bad/name"})),
    );
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");

    // Never as an operator.
    for (method, path) in [
        (Method::GET, "/vehicles"),
        (Method::GET, "/relays"),
        (Method::POST, "/relays"),
    ] {
        let (code, text) = server.admin(method, path, Some(&token), Some(json!({"name": "x"})));
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{path}: {text}");
        assert!(text.contains("admin token check failed"), "{text}");
    }

    let path = format!("/api/v1/vehicles/{}/metadata/timestamp.json", car.vin);
    // With the vehicle's own token forwarded.
    let device = |t: &str| ("ferry-device-authorization", format!("Bearer {t}"));
    let (code, text) = relayed(
        &server,
        Method::GET,
        &path,
        &token,
        &[device(&car.token)],
        None,
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    let other = server.register("VIN-R2");
    let (code, text) = relayed(
        &server,
        Method::GET,
        &path,
        &token,
        &[device(&other.token)],
        None,
    );
    assert_eq!(code, StatusCode::FORBIDDEN, "{text}");
    assert!(text.contains("device token check failed"), "{text}");
    // Vouching for the vehicle in the path, and only that one.
    let vin = |v: &str| ("ferry-relayed-vin", v.to_owned());
    let (code, text) = relayed(&server, Method::GET, &path, &token, &[vin("VIN-R1")], None);
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = relayed(&server, Method::GET, &path, &token, &[vin("VIN-R2")], None);
    assert_eq!(code, StatusCode::FORBIDDEN, "{text}");
    assert!(
        text.contains("relay yard-7 speaks for vehicle VIN-R2"),
        "{text}"
    );
    let (code, text) = relayed(&server, Method::GET, &path, &token, &[], None);
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("names no vehicle"), "{text}");
    let unknown = "/api/v1/vehicles/NOPE/metadata/timestamp.json";
    let (code, text) = relayed(&server, Method::GET, unknown, &token, &[vin("NOPE")], None);
    assert_eq!(code, StatusCode::NOT_FOUND, "{text}");

    // A wrong secret, an unregistered name, a revoked relay: 401.
    let forged = format!("{}0", &token[..token.len() - 1]);
    let forged = if forged == token {
        format!("{}1", &token[..token.len() - 1])
    } else {
        forged
    };
    for bad in [forged.as_str(), "ferry-relay:nobody:00"] {
        let (code, text) = relayed(&server, Method::GET, &path, bad, &[vin("VIN-R1")], None);
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{text}");
        assert!(text.contains("relay token check failed"), "{text}");
    }
    let (code, text) = server.admin(
        Method::POST,
        "/relays/yard-7/revoke",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    let (code, text) = relayed(&server, Method::GET, &path, &token, &[vin("VIN-R1")], None);
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{text}");
}

#[test]
fn a_late_manifest_is_judged_at_the_relays_receipt_time_and_replays_are_refused() {
    let server = Server::start();
    let car = server.register("VIN-LATE");
    let token = add_relay(&server, "ship-1");
    let path = format!("/api/v1/vehicles/{}/manifest", car.vin);
    let received = Utc::now() - Duration::hours(50);
    let body = manifest_at(&car, "late-1", received + Duration::seconds(3));

    // Sent straight to the Director now, its reports are two days skewed.
    let (code, text) = server.put_manifest(&car.vin, &car.token, body.clone());
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("time check failed"), "{text}");

    let headers = |at: DateTime<Utc>| {
        [
            ("ferry-relayed-vin", car.vin.clone()),
            ("ferry-relay-received-at", at.to_rfc3339()),
        ]
    };
    let (code, text) = relayed(
        &server,
        Method::PUT,
        &path,
        &token,
        &headers(received),
        Some(body.clone()),
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    // The same manifest forwarded twice is a replay.
    let (code, text) = relayed(
        &server,
        Method::PUT,
        &path,
        &token,
        &headers(received),
        Some(body.clone()),
    );
    assert_eq!(code, StatusCode::CONFLICT, "{text}");
    assert!(text.contains("nonce check failed"), "{text}");

    // A receipt time in the future, or far too old, or not a time: refused, naming the check.
    let fresh = manifest_at(&car, "late-2", Utc::now());
    for at in [
        (Utc::now() + Duration::days(3)).to_rfc3339(),
        (Utc::now() - Duration::days(40)).to_rfc3339(),
        "yesterday".to_owned(),
    ] {
        let h = [
            ("ferry-relayed-vin", car.vin.clone()),
            ("ferry-relay-received-at", at.clone()),
        ];
        let (code, text) = relayed(&server, Method::PUT, &path, &token, &h, Some(fresh.clone()));
        assert_eq!(code, StatusCode::BAD_REQUEST, "{at}: {text}");
        assert!(text.contains("relay receipt time check failed"), "{text}");
    }
    // The report time must still match the receipt time.
    let (code, text) = relayed(
        &server,
        Method::PUT,
        &path,
        &token,
        &headers(received),
        Some(fresh.clone()),
    );
    assert_eq!(code, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("time check failed"), "{text}");

    // One accepted manifest, shown by the admin API.
    let status = server.status(&car.vin);
    assert!(!status["vehicle"]["last_seen"].is_null(), "{status}");
    let accepted = server
        .store
        .count_manifests(&car.vin, Some(ferry_director::model::Verdict::Accepted))
        .unwrap();
    assert_eq!(accepted, 1);
}
