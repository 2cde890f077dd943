//! The director root chain: version 1 self-signed, each rotation cross-signed, imported only
//! in order, and online keys refused unless the latest root authorises them. A vehicle that
//! trusts version 1 walks to the new root and verifies metadata signed with the new keys.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use ferry_core::metadata::Expires;
use ferry_core::TrustedSet;
use ferry_core::{Clock, SystemClock};
use ferry_director::model::{MetadataRole, NewEcu, NewVehicle};
use ferry_director::root::{
    build_root, check_online_keys, import_root, latest_root, sign_root, RoleSpec, RootSpec,
};
use ferry_director::vehicle_metadata::{Lifetimes, OnlineKeys, VehicleSigner};
use ferry_director::{Error, SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::sync::Arc;

fn key() -> Arc<PrivateKey> {
    Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap())
}

fn one(k: &dyn Signer) -> RoleSpec {
    RoleSpec {
        keys: vec![k.public_key().clone()],
        threshold: 1,
    }
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("director.db")).unwrap();
    (dir, store)
}

/// Version 2 with a new root key and new online keys, signed by `signers`.
fn rotated(new_root: &Arc<PrivateKey>, online: &OnlineKeys, signers: &[&dyn Signer]) -> Vec<u8> {
    let spec = RootSpec {
        root: one(new_root.as_ref()),
        targets: RoleSpec {
            keys: online
                .targets
                .iter()
                .map(|k| k.public_key().clone())
                .collect(),
            threshold: 1,
        },
        snapshot: RoleSpec {
            keys: online
                .snapshot
                .iter()
                .map(|k| k.public_key().clone())
                .collect(),
            threshold: 1,
        },
        timestamp: RoleSpec {
            keys: online
                .timestamp
                .iter()
                .map(|k| k.public_key().clone())
                .collect(),
            threshold: 1,
        },
    };
    let root = build_root(
        &spec,
        2,
        Expires::after(SystemClock.now(), Duration::days(365)),
    )
    .unwrap();
    sign_root(root, signers).unwrap()
}

fn new_online() -> OnlineKeys {
    OnlineKeys {
        targets: vec![key()],
        snapshot: vec![key()],
        timestamp: vec![key()],
    }
}

#[test]
fn a_cross_signed_rotation_is_imported_and_a_vehicle_walks_to_it() {
    let (_dir, store) = store();
    let (root1, old_online, old_root_key) = common::director_root(&store, SystemClock.now());
    let new_root_key = key();
    let online = new_online();
    let root2 = rotated(
        &new_root_key,
        &online,
        &[old_root_key.as_ref() as &dyn Signer, new_root_key.as_ref()],
    );
    // Old online keys are no longer authorised once version 2 is in.
    check_online_keys(&store, &old_online, SystemClock.now()).unwrap();
    assert_eq!(import_root(&store, &root2, SystemClock.now()).unwrap(), 2);
    // Importing the same bytes again changes nothing.
    assert_eq!(import_root(&store, &root2, SystemClock.now()).unwrap(), 2);
    assert_eq!(latest_root(&store, SystemClock.now()).unwrap().version, 2);
    let err = check_online_keys(&store, &old_online, SystemClock.now()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OnlineKeys {
                role: "targets",
                root_version: 2,
                ..
            }
        ),
        "{err}"
    );
    check_online_keys(&store, &online, SystemClock.now()).unwrap();

    // A vehicle trusting version 1 walks to version 2 and verifies new-key metadata.
    let p = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    store
        .register_vehicle(&NewVehicle {
            vin: "VIN-ROT".into(),
            ecus: vec![NewEcu {
                serial: "p".into(),
                hardware_id: "ivi".into(),
                public_key: p.public_key().clone(),
                primary: true,
            }],
        })
        .unwrap();
    VehicleSigner::new(&store, &online, Lifetimes::default())
        .sign_vehicle("VIN-ROT", SystemClock.now())
        .unwrap();
    let mut trusted = TrustedSet::new(&root1, SystemClock.now()).unwrap();
    trusted
        .update_root(&store.get_root(2).unwrap().unwrap())
        .unwrap();
    let get = |role| {
        store
            .get_vehicle_metadata("VIN-ROT", role)
            .unwrap()
            .unwrap()
            .bytes
    };
    trusted
        .update_timestamp(&get(MetadataRole::Timestamp))
        .unwrap();
    trusted
        .update_snapshot(&get(MetadataRole::Snapshot), false)
        .unwrap();
    trusted
        .update_targets(&get(MetadataRole::Targets), "targets", "root")
        .unwrap();
}

#[test]
fn a_rotation_not_signed_by_the_previous_root_is_refused() {
    let (_dir, store) = store();
    common::director_root(&store, SystemClock.now());
    let new_root_key = key();
    // Signed only by the new key: an attacker's root.
    let root2 = rotated(
        &new_root_key,
        &new_online(),
        &[new_root_key.as_ref() as &dyn Signer],
    );
    let err = import_root(&store, &root2, SystemClock.now()).unwrap_err();
    assert!(matches!(err, Error::RootChain(_)), "{err}");
    assert!(err.to_string().contains("root chain check failed"), "{err}");
    assert_eq!(store.latest_root().unwrap().unwrap().0, 1);
}

#[test]
fn a_rotation_not_signed_by_the_new_root_key_is_refused() {
    let (_dir, store) = store();
    let (_, _, old_root_key) = common::director_root(&store, SystemClock.now());
    let root2 = rotated(
        &key(),
        &new_online(),
        &[old_root_key.as_ref() as &dyn Signer],
    );
    let err = import_root(&store, &root2, SystemClock.now()).unwrap_err();
    assert!(matches!(err, Error::RootChain(_)), "{err}");
    assert_eq!(store.latest_root().unwrap().unwrap().0, 1);
}

#[test]
fn a_first_root_other_than_version_one_or_not_self_signed_is_refused() {
    let (_dir, store) = store();
    let root_key = key();
    let online = new_online();
    let root2 = rotated(&root_key, &online, &[root_key.as_ref() as &dyn Signer]);
    let err = import_root(&store, &root2, SystemClock.now()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootVersion {
                new: 2,
                expected: 1
            }
        ),
        "{err}"
    );
    let spec = RootSpec {
        root: one(root_key.as_ref()),
        targets: one(online.targets[0].as_ref()),
        snapshot: one(online.snapshot[0].as_ref()),
        timestamp: one(online.timestamp[0].as_ref()),
    };
    let root1 = build_root(
        &spec,
        1,
        Expires::after(SystemClock.now(), Duration::days(1)),
    )
    .unwrap();
    let unsigned = sign_root(root1, &[online.targets[0].as_ref() as &dyn Signer]).unwrap();
    let err = import_root(&store, &unsigned, SystemClock.now()).unwrap_err();
    assert!(matches!(err, Error::RootChain(_)), "{err}");
    assert!(store.latest_root().unwrap().is_none());
    assert!(matches!(
        check_online_keys(&store, &online, SystemClock.now()).unwrap_err(),
        Error::NoRoot
    ));
}

#[test]
fn a_threshold_above_the_keys_is_refused_when_building() {
    let k = key();
    let spec = RootSpec {
        root: RoleSpec {
            keys: vec![k.public_key().clone(), k.public_key().clone()],
            threshold: 2,
        },
        targets: one(k.as_ref()),
        snapshot: one(k.as_ref()),
        timestamp: one(k.as_ref()),
    };
    let err = build_root(
        &spec,
        1,
        Expires::after(SystemClock.now(), Duration::days(1)),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("root threshold 2 with 1 distinct keys"),
        "{err}"
    );
}
