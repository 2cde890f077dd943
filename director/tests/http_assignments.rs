//! Assignments over the admin API (common::http): what the Image repository the Director
//! pins says a target is, hardware and depends checks, ordering, campaigns and cancelling;
//! and a repository that is tampered with or not the pinned one.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::{assign, assignments, director_targets, named, Server};
use common::image_repo::{catalogue, image_repo, ML, NAV, OS, TCU};
use ferry_core::SystemClock;
use ferry_director::image_repo::{ImageRepoClient, ImageRepoSettings, TargetSource};
use ferry_keys::{KeyKind, PrivateKey};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

#[test]
fn a_target_for_other_hardware_is_unprocessable() {
    let server = Server::start();
    let car = server.register("VIN-HW");
    let targets = json!([named(&car.p(), TCU)]);
    let needles = ["hardware check failed"];
    server.assign_refused(&car, targets, StatusCode::UNPROCESSABLE_ENTITY, &needles);
}

#[test]
fn an_unmet_depends_is_unprocessable_in_menders_words() {
    let server = Server::start();
    let car = server.register("VIN-DEP");
    let targets = json!([named(&car.p(), ML)]);
    let needles = ["Missing '", "System not modified"];
    server.assign_refused(&car, targets, StatusCode::UNPROCESSABLE_ENTITY, &needles);
}

#[test]
fn an_admin_supplied_target_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-FORGE");
    // The admin may not say what a target is, even repeating the Image repository's words.
    let forged = serde_json::to_value(&server.repo.published[OS]).unwrap();
    let targets = json!([{ "ecu_serial": car.p(), "target_name": OS, "target": forged }]);
    let needles = ["unknown field `target`"];
    server.assign_refused(&car, targets, StatusCode::BAD_REQUEST, &needles);
}

#[test]
fn a_target_the_image_repository_did_not_publish_is_refused() {
    let server = Server::start();
    let car = server.register("VIN-ABSENT");
    // All or nothing: the published one is not assigned either.
    let targets = json!([named(&car.p(), OS), named(&car.p(), "os/rootfs-9.img")]);
    let needles = [
        "image repository check failed",
        "target os/rootfs-9.img is not in the Image repository's signed metadata",
    ];
    server.assign_refused(&car, targets, StatusCode::UNPROCESSABLE_ENTITY, &needles);
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
    // One target per ECU in the Director's targets: the app waits behind the OS (queue.rs
    // follows the queue through to the end).
    let signed = director_targets(&server, &car);
    assert_eq!(signed.targets.len(), 1, "{:?}", signed.targets.keys());
    assert_eq!(signed.targets[OS].hashes, server.repo.published[OS].hashes);
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
    let targets = json!([named(&car.p(), OS)]);
    let needles = [
        "image repository check failed",
        "signature threshold check failed",
    ];
    server.assign_refused(&car, targets, StatusCode::BAD_GATEWAY, &needles);
    assert!(director_targets(&server, &car).targets.is_empty());
}

#[test]
fn a_director_pinning_another_root_trusts_nothing_from_the_repository() {
    let repo = catalogue();
    let other = image_repo(&[]);
    // The Director was given another repository's root.
    let source = ImageRepoClient::new(
        ImageRepoSettings::with_root(&repo.url, other.root.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    let err = source.target(OS).unwrap_err();
    assert!(
        err.to_string().contains("image repository check failed"),
        "{err}"
    );
    // And the right root finds it, through its hashed bin.
    let source = repo.client();
    assert_eq!(&source.target(OS).unwrap(), &repo.published[OS]);
    // A root that does not verify is refused up front.
    let err = ImageRepoClient::new(
        ImageRepoSettings::with_root(&repo.url, b"{}".to_vec()),
        Arc::new(SystemClock),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("pinned root does not verify"),
        "{err}"
    );
}
