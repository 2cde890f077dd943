//! Per-vehicle Director metadata, verified by ferry-core's client trusted set as a primary
//! would: signed by the root's online keys, versions going up, targets naming each ECU.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use ferry_core::metadata::{hashes_of, uptane::DirectorCustom, TargetFile};
use ferry_core::TrustedSet;
use ferry_director::model::{MetadataRole, NewAssignment, NewEcu, NewVehicle};
use ferry_director::vehicle_metadata::{Lifetimes, OnlineKeys, VehicleSigner};
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey};
use std::collections::BTreeMap;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

struct Director {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    keys: OnlineKeys,
    root: Vec<u8>,
}

fn director() -> Director {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("director.db")).unwrap();
    let (root, keys, _) = common::director_root(&store, now());
    Director {
        _dir: dir,
        store,
        keys,
        root,
    }
}

fn register(store: &dyn Store, vin: &str) {
    let ecu = |serial: &str, primary| NewEcu {
        serial: serial.into(),
        hardware_id: format!("hw-{serial}"),
        public_key: PrivateKey::generate(KeyKind::Ed25519)
            .unwrap()
            .public_key()
            .clone(),
        primary,
    };
    store
        .register_vehicle(&NewVehicle {
            vin: vin.into(),
            ecus: vec![
                ecu(&format!("{vin}-p"), true),
                ecu(&format!("{vin}-s"), false),
            ],
        })
        .unwrap();
}

/// Verify the stored metadata of `vin` with a trusted set starting from the director root.
fn verify(d: &Director, vin: &str, at: DateTime<Utc>) -> ferry_core::metadata::Targets {
    let get = |role| {
        d.store
            .get_vehicle_metadata(vin, role)
            .unwrap()
            .unwrap()
            .bytes
    };
    let mut set = TrustedSet::new(&d.root, at).unwrap();
    set.update_timestamp(&get(MetadataRole::Timestamp)).unwrap();
    set.update_snapshot(&get(MetadataRole::Snapshot), false)
        .unwrap();
    set.update_targets(&get(MetadataRole::Targets), "targets", "root")
        .unwrap()
        .signed()
        .clone()
}

#[test]
fn assignments_become_signed_targets_naming_each_ecu() {
    let d = director();
    register(&d.store, "VIN1");
    let image = TargetFile {
        custom: None,
        hashes: hashes_of(b"os image"),
        length: 8,
        extra: BTreeMap::new(),
    };
    let assign = |serial: &str| NewAssignment {
        ecu_serial: serial.into(),
        target_name: "os/rootfs-4.0.img".into(),
        target: image.clone(),
        campaign: None,
    };
    d.store
        .add_assignments("VIN1", &[assign("VIN1-p"), assign("VIN1-s")])
        .unwrap();
    let signer = VehicleSigner::new(&d.store, &d.keys, Lifetimes::default());
    let versions = signer.sign_vehicle("VIN1", now()).unwrap();
    assert_eq!(
        (versions.targets, versions.snapshot, versions.timestamp),
        (Some(1), Some(1), 1)
    );

    let targets = verify(&d, "VIN1", now());
    let entry = &targets.targets["os/rootfs-4.0.img"];
    assert_eq!(entry.hashes, image.hashes);
    let custom: DirectorCustom = serde_json::from_value(entry.custom.clone().unwrap()).unwrap();
    assert_eq!(custom.ecu_identifiers["VIN1-s"].hardware_id, "hw-VIN1-s");
    assert_eq!(custom.ecu_identifiers.len(), 2);
    assert_eq!(targets.extra["custom"]["vin"], "VIN1");
}

#[test]
fn a_vehicle_with_no_assignments_still_gets_targets_that_name_it() {
    let d = director();
    register(&d.store, "VIN2");
    VehicleSigner::new(&d.store, &d.keys, Lifetimes::default())
        .sign_vehicle("VIN2", now())
        .unwrap();
    let targets = verify(&d, "VIN2", now());
    assert!(targets.targets.is_empty());
    assert_eq!(targets.extra["custom"]["vin"], "VIN2");
}

#[test]
fn re_signing_bumps_versions_and_refresh_touches_only_the_timestamp() {
    let d = director();
    register(&d.store, "VIN3");
    let signer = VehicleSigner::new(&d.store, &d.keys, Lifetimes::default());
    signer.sign_vehicle("VIN3", now()).unwrap();
    let second = signer.sign_vehicle("VIN3", now()).unwrap();
    assert_eq!(
        (second.targets, second.snapshot, second.timestamp),
        (Some(2), Some(2), 2)
    );

    // A day later the timestamp has expired; the refresher re-signs it alone.
    let later = now() + Duration::hours(25);
    let version = signer.refresh_timestamp("VIN3", later).unwrap();
    assert_eq!(version, 3);
    assert_eq!(
        d.store
            .get_vehicle_metadata("VIN3", MetadataRole::Snapshot)
            .unwrap()
            .unwrap()
            .version,
        2
    );
    verify(&d, "VIN3", later);
}

#[test]
fn signings_of_one_vehicle_at_once_all_succeed_one_after_another() {
    // A manifest that settled an assignment, an admin's cancel and the refresher may sign one
    // vehicle at the same moment; each reads the current versions and writes the next.
    let d = director();
    register(&d.store, "VIN4");
    let signer = VehicleSigner::new(&d.store, &d.keys, Lifetimes::default());
    signer.sign_vehicle("VIN4", now()).unwrap();
    const THREADS: u64 = 6;
    const EACH: u64 = 8;
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let signer = &signer;
                s.spawn(move || {
                    (0..EACH)
                        .filter_map(|i| {
                            let at = now() + Duration::seconds((t * EACH + i) as i64);
                            let result = if i % 2 == 0 {
                                signer.sign_vehicle("VIN4", at).map(|_| ())
                            } else {
                                signer.refresh_timestamp("VIN4", at).map(|_| ())
                            };
                            result.err().map(|e| e.to_string())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    let version = |role| {
        d.store
            .get_vehicle_metadata("VIN4", role)
            .unwrap()
            .unwrap()
            .version
    };
    let full = THREADS * EACH / 2;
    assert_eq!(version(MetadataRole::Targets), 1 + full);
    assert_eq!(version(MetadataRole::Timestamp), 1 + THREADS * EACH);
    verify(&d, "VIN4", now() + Duration::seconds(100));
}
