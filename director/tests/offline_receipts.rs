//! Receipts of offline installs (PURE-2 bundles, #19): a vehicle's signed manifest naming the
//! bundle it installed, brought back by a technician. Recorded once, as applied offline and
//! reported late; refused when altered, replayed, signed by another key, or naming a bundle
//! the Director never signed.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Utc;
use common::server::Server;
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::Signed;
use ferry_director::model::OfflineBundle;
use ferry_director::offline::import_receipt;
use ferry_director::store::Store;
use ferry_director::Error;
use ferry_keys::{PrivateKey, Signer};
use serde_json::json;

fn receipt(car: &common::car::Car, outcome: serde_json::Value, signer: &PrivateKey) -> Vec<u8> {
    let now = Utc::now();
    let reports = [
        common::report(&car.p(), "offline-1", now, &car.primary),
        common::report(&car.s(), "offline-1", now, &car.secondary),
    ];
    let mut m = VehicleManifest::new(&car.vin, &car.p(), &reports).unwrap();
    m.extra.insert("offline_bundle".into(), outcome);
    let mut signed = Signed::new(m);
    signed.sign(signer as &dyn Signer).unwrap();
    signed.to_bytes().unwrap()
}

#[test]
fn a_receipt_is_recorded_once_and_shown_as_applied_offline() {
    let server = Server::start();
    let car = server.register("VIN-OFFLINE");
    let store = server.store.as_ref();
    let body = br#"{"signed":{"_type":"offline-update-targets"},"signatures":[]}"#.to_vec();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
    let bundle = OfflineBundle {
        name: "workshop".into(),
        version: 1,
        expires: Utc::now() + chrono::Duration::days(30),
        body,
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.put_offline_bundle(&bundle, (1, b"{}")).unwrap();
    let outcome = json!({
        "name": "workshop", "version": 1, "digest": {"sha256": digest}, "result": "success",
        "detail": "", "verified_time": Utc::now().to_rfc3339(),
        "ecus": {car.p(): {"target": "apps/a.tar", "result": "success"}},
    });
    let good = receipt(&car, outcome.clone(), &car.primary);

    // Over the admin API, with the write scope.
    let (status, text) = server.admin(
        reqwest::Method::POST,
        "/receipts",
        Some(&server.write),
        Some(serde_json::from_slice(&good).unwrap()),
    );
    assert_eq!(status, reqwest::StatusCode::CREATED, "{text}");
    let shown = server.status(&car.vin);
    let receipts = shown["offline_receipts"].as_array().unwrap();
    assert_eq!(receipts.len(), 1, "{shown}");
    assert_eq!(receipts[0]["bundle"], "workshop");
    assert_eq!(receipts[0]["result"], "success");

    // The same receipt again: refused, nothing recorded.
    let err = import_receipt(store, &good, Utc::now()).unwrap_err();
    assert!(matches!(err, Error::ReceiptRecorded { .. }), "{err}");
    // Altered after signing (the result changed): the Primary's signature no longer verifies.
    let altered = String::from_utf8(good.clone())
        .unwrap()
        .replace("\"success\"", "\"failure\"");
    let err = import_receipt(store, altered.as_bytes(), Utc::now()).unwrap_err();
    assert!(err.to_string().contains("receipt check failed"), "{err}");
    // Signed by a key that is not the vehicle's Primary.
    let stranger = PrivateKey::generate(ferry_keys::KeyKind::Ed25519).unwrap();
    let err = import_receipt(
        store,
        &receipt(&car, outcome.clone(), &stranger),
        Utc::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("receipt check failed"), "{err}");
    // A digest other than the one the Director signed for that version.
    let mut wrong = outcome.clone();
    wrong["digest"]["sha256"] = json!("00".repeat(32));
    let err = import_receipt(store, &receipt(&car, wrong, &car.primary), Utc::now()).unwrap_err();
    assert!(err.to_string().contains("the Director signed"), "{err}");
    // A bundle it never signed.
    let mut other = outcome;
    other["name"] = json!("elsewhere");
    let err = import_receipt(store, &receipt(&car, other, &car.primary), Utc::now()).unwrap_err();
    assert!(err.to_string().contains("never signed"), "{err}");
    assert_eq!(store.offline_receipts(&car.vin).unwrap().len(), 1);
}

/// A Primary that goes online again sends the receipts it kept inside its next manifest; the
/// Director records each once (a copy brought by a technician later is refused as recorded).
#[test]
fn receipts_carried_by_an_online_manifest_are_recorded_once() {
    let server = Server::start();
    let car = server.register("VIN-CARRIED");
    let store = server.store.as_ref();
    let body = br#"{"signed":{},"signatures":[]}"#.to_vec();
    let bundle = OfflineBundle {
        name: "depot".into(),
        version: 1,
        expires: Utc::now() + chrono::Duration::days(30),
        body,
        created_at: Utc::now(),
        revoked_at: None,
    };
    store.put_offline_bundle(&bundle, (1, b"{}")).unwrap();
    // The receipt names no digest for a version the Director no longer holds: recorded as is.
    let outcome = json!({"name": "depot", "version": 0, "result": "success", "ecus": {}});
    let kept = receipt(&car, outcome, &car.primary);
    let now = Utc::now();
    let reports = [
        common::report(&car.p(), "online-2", now, &car.primary),
        common::report(&car.s(), "online-2", now, &car.secondary),
    ];
    let mut m = VehicleManifest::new(&car.vin, &car.p(), &reports).unwrap();
    m.extra.insert(
        "offline_receipts".into(),
        json!([serde_json::from_slice::<serde_json::Value>(&kept).unwrap()]),
    );
    let mut signed = Signed::new(m);
    signed.sign(&car.primary as &dyn Signer).unwrap();
    let (status, text) = server.put_manifest(&car.vin, &car.token, signed.to_bytes().unwrap());
    assert_eq!(status, reqwest::StatusCode::OK, "{text}");
    let recorded = store.offline_receipts(&car.vin).unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].bundle, "depot");
    let err = import_receipt(store, &kept, Utc::now()).unwrap_err();
    assert!(matches!(err, Error::ReceiptRecorded { .. }), "{err}");
}
