//! The admin API over plain HTTP (common::http): tokens and scopes, the inventory a page at
//! a time, and stored manifests with their verdicts.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::Server;
use ferry_keys::{KeyKind, PrivateKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
    let forged = car.manifest_signed_by("n2", &forger);
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
fn a_revoked_device_token_is_refused_at_once_and_a_removed_vehicle_is_served_nothing() {
    let server = Server::start();
    let car = server.register("VIN-R");
    let fetch = |token: &str| {
        server
            .request(
                Method::GET,
                "/api/v1/vehicles/VIN-R/metadata/timestamp.json",
                Some(token),
                None,
            )
            .0
    };
    assert_eq!(fetch(&car.token), StatusCode::OK);

    // A new token: the old one is refused on the very next request.
    let (code, text) = server.admin(
        Method::POST,
        "/vehicles/VIN-R/device-token",
        Some(&server.read),
        None,
    );
    assert_eq!(code, StatusCode::FORBIDDEN, "read scope cannot: {text}");
    let (code, text) = server.admin(
        Method::POST,
        "/vehicles/VIN-R/device-token",
        Some(&server.write),
        None,
    );
    assert_eq!(code, StatusCode::OK, "{text}");
    let new = serde_json::from_str::<Value>(&text).unwrap()["device_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fetch(&car.token), StatusCode::UNAUTHORIZED);
    assert_eq!(fetch(&new), StatusCode::OK);
    let manifest = car.manifest("n1");
    let put = |token: &str| {
        server.request(
            Method::PUT,
            "/api/v1/vehicles/VIN-R/manifest",
            Some(token),
            Some(manifest.clone()),
        )
    };
    assert_eq!(put(&car.token).0, StatusCode::UNAUTHORIZED);

    // Removed: nothing served, nothing taken, its history still readable by the admin.
    let (code, text) = server.admin(Method::DELETE, "/vehicles/VIN-R", Some(&server.write), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(fetch(&new), StatusCode::NOT_FOUND);
    let (code, _, body) = put(&new);
    assert_eq!(
        code,
        StatusCode::NOT_FOUND,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (code, text) = server.admin(Method::GET, "/vehicles/VIN-R", Some(&server.read), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    assert!(serde_json::from_str::<Value>(&text).unwrap()["removed_at"].is_string());
    for (method, path) in [
        (Method::POST, "/vehicles/VIN-R/device-token"),
        (Method::DELETE, "/vehicles/VIN-R"),
    ] {
        let (code, text) = server.admin(method, path, Some(&server.write), None);
        assert_eq!(code, StatusCode::CONFLICT, "{text}");
        assert!(text.contains("vehicle VIN-R was removed"), "{text}");
    }
}
