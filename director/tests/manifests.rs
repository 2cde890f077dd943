//! Manifest processing end to end through the store: accepted manifests update the vehicle;
//! replays, bad signatures and insane times are refused, named, and kept for audit.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::Signed;
use ferry_director::manifests::{process_manifest, DEFAULT_MAX_SKEW};
use ferry_director::model::{NewEcu, NewVehicle, Verdict};
use ferry_director::{Error, SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

struct Car {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    primary: PrivateKey,
    secondary: PrivateKey,
}

fn car() -> Car {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("d.db")).unwrap();
    let primary = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let secondary = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    store
        .register_vehicle(&NewVehicle {
            vin: "VIN".into(),
            ecus: vec![
                NewEcu {
                    serial: "pri".into(),
                    hardware_id: "ivi".into(),
                    public_key: primary.public_key().clone(),
                    primary: true,
                },
                NewEcu {
                    serial: "sec".into(),
                    hardware_id: "tcu".into(),
                    public_key: secondary.public_key().clone(),
                    primary: false,
                },
            ],
        })
        .unwrap();
    Car {
        _dir: dir,
        store,
        primary,
        secondary,
    }
}

use common::report;

fn manifest(c: &Car, nonce: &str, at: DateTime<Utc>, secondary_key: &PrivateKey) -> Vec<u8> {
    let reports = [
        report("pri", nonce, at, &c.primary),
        report("sec", nonce, at, secondary_key),
    ];
    let mut m = Signed::new(VehicleManifest::new("VIN", "pri", &reports).unwrap());
    m.sign(&c.primary as &dyn Signer).unwrap();
    m.to_bytes().unwrap()
}

#[test]
fn an_accepted_manifest_updates_the_vehicle_and_a_replay_is_refused_and_logged() {
    let c = car();
    let body = manifest(&c, "n1", now(), &c.secondary);
    process_manifest(&c.store, "VIN", &body, now(), DEFAULT_MAX_SKEW).unwrap();
    let v = c.store.get_vehicle("VIN").unwrap().unwrap();
    let sec = v.ecus.iter().find(|e| e.serial == "sec").unwrap();
    assert_eq!(
        sec.reported.as_ref().unwrap().provides["rootfs-image.version"],
        "1"
    );

    let err = process_manifest(&c.store, "VIN", &body, now(), DEFAULT_MAX_SKEW).unwrap_err();
    assert!(matches!(err, Error::NonceReused { .. }), "{err}");
    assert_eq!(
        c.store
            .count_manifests("VIN", Some(Verdict::Accepted))
            .unwrap(),
        1
    );
    assert_eq!(
        c.store
            .count_manifests("VIN", Some(Verdict::Refused))
            .unwrap(),
        1
    );
}

#[test]
fn a_bad_ecu_signature_is_refused_and_changes_nothing() {
    let c = car();
    let forger = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let body = manifest(&c, "n1", now(), &forger);
    let err = process_manifest(&c.store, "VIN", &body, now(), DEFAULT_MAX_SKEW).unwrap_err();
    assert!(
        err.to_string().contains("signature threshold check failed"),
        "{err}"
    );
    let v = c.store.get_vehicle("VIN").unwrap().unwrap();
    assert!(v.ecus.iter().all(|e| e.reported.is_none()));
    assert_eq!(
        c.store
            .count_manifests("VIN", Some(Verdict::Refused))
            .unwrap(),
        1
    );
}

#[test]
fn a_report_from_far_in_the_past_is_refused() {
    let c = car();
    let body = manifest(&c, "n1", now() - Duration::days(30), &c.secondary);
    let err = process_manifest(&c.store, "VIN", &body, now(), DEFAULT_MAX_SKEW).unwrap_err();
    assert!(matches!(err, Error::ReportTime { .. }), "{err}");
}
