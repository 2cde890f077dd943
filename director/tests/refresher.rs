//! The metadata refresher: what expires within the window is re-signed (the timestamp alone
//! when only it is due, everything when targets or snapshot are), nothing else is touched, and
//! a vehicle registered without metadata is healed by the daemon's pass.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use ferry_core::metadata::Expires;
use ferry_core::{Clock, SystemClock};
use ferry_director::config::DirectorConfig;
use ferry_director::daemon::Director;
use ferry_director::model::{MetadataRole, NewEcu, NewVehicle};
use ferry_director::refresher::{refresh_once, resign_all, RefreshReport};
use ferry_director::root::{build_root, import_root, sign_root, RoleSpec, RootSpec};
use ferry_director::vehicle_metadata::{Lifetimes, VehicleSigner};
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn register(store: &dyn Store, vin: &str) {
    store
        .register_vehicle(&NewVehicle {
            vin: vin.into(),
            ecus: vec![NewEcu {
                serial: format!("{vin}-p"),
                hardware_id: "ivi".into(),
                public_key: PrivateKey::generate(KeyKind::Ed25519)
                    .unwrap()
                    .public_key()
                    .clone(),
                primary: true,
            }],
        })
        .unwrap();
}

fn version(store: &dyn Store, vin: &str, role: MetadataRole) -> u64 {
    store
        .get_vehicle_metadata(vin, role)
        .unwrap()
        .unwrap()
        .version
}

#[test]
fn only_what_expires_within_the_window_is_re_signed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("director.db")).unwrap();
    let (_, keys, _) = common::director_root(&store, t0());
    // Timestamp 1 day, snapshot 7 days, targets 30 days (the defaults).
    let lifetimes = Lifetimes::default();
    for vin in ["R1", "R2"] {
        register(&store, vin);
        VehicleSigner::new(&store, &keys, lifetimes)
            .sign_vehicle(vin, t0())
            .unwrap();
    }

    // 10 hours in, with a 6-hour window: nothing is due.
    let report = refresh_once(
        &store,
        &keys,
        lifetimes,
        t0() + Duration::hours(10),
        Duration::hours(6),
    )
    .unwrap();
    assert_eq!(report, RefreshReport::default());
    assert_eq!(version(&store, "R1", MetadataRole::Timestamp), 1);

    // 20 hours in: both timestamps expire within 6 hours; only they are re-signed.
    let report = refresh_once(
        &store,
        &keys,
        lifetimes,
        t0() + Duration::hours(20),
        Duration::hours(6),
    )
    .unwrap();
    assert_eq!(
        report,
        RefreshReport {
            timestamps: 2,
            full: 0,
            failed: 0
        }
    );
    for vin in ["R1", "R2"] {
        assert_eq!(version(&store, vin, MetadataRole::Timestamp), 2);
        assert_eq!(version(&store, vin, MetadataRole::Snapshot), 1);
        assert_eq!(version(&store, vin, MetadataRole::Targets), 1);
    }
    let expires = store
        .get_vehicle_metadata("R1", MetadataRole::Timestamp)
        .unwrap()
        .unwrap()
        .expires;
    assert_eq!(expires, t0() + Duration::hours(20) + Duration::days(1));

    // Six and a half days in: the snapshots are due too, so everything is re-signed.
    let at = t0() + Duration::hours(6 * 24 + 12);
    let report = refresh_once(&store, &keys, lifetimes, at, Duration::hours(16)).unwrap();
    assert_eq!(
        report,
        RefreshReport {
            timestamps: 0,
            full: 2,
            failed: 0
        }
    );
    assert_eq!(version(&store, "R2", MetadataRole::Snapshot), 2);
    assert_eq!(version(&store, "R2", MetadataRole::Targets), 2);

    // Re-signing everything (after a key change) bumps every vehicle once.
    assert_eq!(resign_all(&store, &keys, lifetimes, at).unwrap(), 2);
    assert_eq!(version(&store, "R1", MetadataRole::Targets), 3);
}

#[test]
fn a_vehicle_registered_without_metadata_is_signed_when_the_director_starts() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    std::fs::create_dir_all(base.join("keys")).unwrap();
    let keyfile = |role: &str| {
        let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        key.write_file(base.join(format!("keys/{role}.pem")), None)
            .unwrap();
        RoleSpec {
            keys: vec![key.public_key().clone()],
            threshold: 1,
        }
    };
    let root_key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let spec = RootSpec {
        root: RoleSpec {
            keys: vec![root_key.public_key().clone()],
            threshold: 1,
        },
        targets: keyfile("targets"),
        snapshot: keyfile("snapshot"),
        timestamp: keyfile("timestamp"),
    };
    let root = build_root(
        &spec,
        1,
        Expires::after(SystemClock.now(), Duration::days(30)),
    )
    .unwrap();
    let root = sign_root(root, &[&root_key as &dyn Signer]).unwrap();
    let store = SqliteStore::open(base.join("director.db")).unwrap();
    import_root(&store, &root, SystemClock.now()).unwrap();
    // Registered, but the signing that should have followed never happened (a crash).
    register(&store, "HEAL1");
    assert_eq!(
        store.vins_without_metadata().unwrap(),
        vec!["HEAL1".to_string()]
    );
    drop(store);

    std::fs::write(
        base.join("director.toml"),
        "listen = \"127.0.0.1:0\"\ndata_dir = \".\"\nroots_dir = \"roots\"\n\
         [keys]\ntargets = [\"keys/targets.pem\"]\nsnapshot = [\"keys/snapshot.pem\"]\n\
         timestamp = [\"keys/timestamp.pem\"]\n",
    )
    .unwrap();
    let config = DirectorConfig::load(&base.join("director.toml")).unwrap();
    let director = Director::open(config).unwrap();
    let store = director.state.store.clone();
    assert!(store.vins_without_metadata().unwrap().is_empty());
    assert_eq!(version(store.as_ref(), "HEAL1", MetadataRole::Targets), 1);
}
