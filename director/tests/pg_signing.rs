//! Several Directors on one PostgreSQL database signing for the same vehicle at once: an
//! admin's assignments through one, the vehicle's manifests through the other, the refresher
//! on both. Every signing must succeed and the versions must count them exactly: none signed
//! twice with the same number (two signers that read the same current version), none skipped.
//! Each "Director" is a store of its own (its own pool, its own PostgreSQL sessions), as a
//! process is; the per-VIN advisory lock is what makes them take turns (without it this test
//! fails: two signers pick the same next version and one is refused).
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{DateTime, Duration, Utc};
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage};
use ferry_core::metadata::{hashes_of, Expires, TargetFile};
use ferry_director::model::{IncomingManifest, MetadataRole, NewAssignment, NewEcu, NewVehicle};
use ferry_director::store::postgres::cluster::test_database;
use ferry_director::vehicle_metadata::{Lifetimes, VehicleSigner};
use ferry_director::{PgSettings, PgStore, Store};
use ferry_keys::{KeyKind, PrivateKey};
use std::collections::BTreeMap;
use std::sync::Arc;

const ROUNDS: u64 = 25;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn report(serial: &str, nonce: &str, image: &str) -> EcuVersionReport {
    EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.into(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(image.as_bytes()),
                length: image.len() as u64,
                extra: BTreeMap::new(),
            },
            filepath: image.into(),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.into(),
        provides: BTreeMap::new(),
        time: Expires::after(now(), Duration::zero()),
        extra: BTreeMap::new(),
    }
}

fn open(url: &str) -> Arc<dyn Store> {
    Arc::new(PgStore::open(&PgSettings::new(url)).unwrap())
}

#[test]
fn two_directors_signing_one_vehicle_never_repeat_or_skip_a_version() {
    let Some(url) = test_database("pg_signing") else {
        return;
    };
    let (a, b) = (open(&url), open(&url));
    let (_, keys, _) = common::director_root(a.as_ref(), now());
    let key = |_| {
        PrivateKey::generate(KeyKind::Ed25519)
            .unwrap()
            .public_key()
            .clone()
    };
    a.register_vehicle(&NewVehicle {
        vin: "VIN1".into(),
        ecus: vec![NewEcu {
            serial: "VIN1-p".into(),
            hardware_id: "hw".into(),
            public_key: key(0),
            primary: true,
        }],
    })
    .unwrap();
    let lifetimes = Lifetimes::default();
    VehicleSigner::new(a.as_ref(), &keys, lifetimes)
        .sign_vehicle("VIN1", now())
        .unwrap();

    std::thread::scope(|s| {
        // Director A: an admin assigns, one target after another, each followed by a signing.
        s.spawn(|| {
            let signer = VehicleSigner::new(a.as_ref(), &keys, lifetimes);
            for i in 0..ROUNDS {
                let name = format!("fw-{i}");
                a.add_assignments(
                    "VIN1",
                    &[NewAssignment {
                        ecu_serial: "VIN1-p".into(),
                        target_name: name.clone(),
                        target: TargetFile {
                            custom: None,
                            hashes: hashes_of(name.as_bytes()),
                            length: name.len() as u64,
                            extra: BTreeMap::new(),
                        },
                        campaign: None,
                    }],
                )
                .unwrap();
                signer.sign_vehicle("VIN1", now()).unwrap();
            }
        });
        // Director B: the vehicle reports each image installed, and B signs after each.
        s.spawn(|| {
            let signer = VehicleSigner::new(b.as_ref(), &keys, lifetimes);
            for i in 0..ROUNDS {
                let nonce = format!("n{i}");
                let image = format!("fw-{i}");
                let m = IncomingManifest::accepted(
                    "VIN1",
                    now(),
                    nonce.as_bytes(),
                    nonce.clone(),
                    [("VIN1-p".to_string(), report("VIN1-p", &nonce, &image))].into(),
                );
                b.record_manifest(&m).unwrap();
                signer.sign_vehicle("VIN1", now()).unwrap();
            }
        });
        // The refresher on both, re-signing the timestamp.
        for store in [&a, &b] {
            let keys = &keys;
            s.spawn(move || {
                let signer = VehicleSigner::new(store.as_ref(), keys, lifetimes);
                for _ in 0..ROUNDS {
                    signer.refresh_timestamp("VIN1", now()).unwrap();
                }
            });
        }
    });

    let version = |role| {
        a.get_vehicle_metadata("VIN1", role)
            .unwrap()
            .unwrap()
            .version
    };
    // One signing at registration, then one per round on each of A and B.
    assert_eq!(version(MetadataRole::Targets), 1 + 2 * ROUNDS);
    assert_eq!(version(MetadataRole::Snapshot), 1 + 2 * ROUNDS);
    // Each full signing signs a timestamp too, and the two refreshers one per round each.
    assert_eq!(
        version(MetadataRole::Timestamp),
        1 + 2 * ROUNDS + 2 * ROUNDS
    );
    // What B reads is what A wrote: no stale copy anywhere.
    assert_eq!(
        b.get_vehicle_metadata("VIN1", MetadataRole::Targets)
            .unwrap()
            .unwrap()
            .version,
        1 + 2 * ROUNDS
    );
}

/// A manifest replayed through another Director at the same moment: the database's unique
/// index lets exactly one of them record it.
#[test]
fn a_nonce_is_accepted_once_across_directors_even_at_the_same_moment() {
    let Some(url) = test_database("pg_nonce") else {
        return;
    };
    let (a, b) = (open(&url), open(&url));
    a.register_vehicle(&NewVehicle {
        vin: "VIN1".into(),
        ecus: vec![NewEcu {
            serial: "VIN1-p".into(),
            hardware_id: "hw".into(),
            public_key: PrivateKey::generate(KeyKind::Ed25519)
                .unwrap()
                .public_key()
                .clone(),
            primary: true,
        }],
    })
    .unwrap();
    for round in 0..20 {
        let nonce = format!("n{round}");
        let m = IncomingManifest::accepted(
            "VIN1",
            now(),
            nonce.as_bytes(),
            nonce.clone(),
            [("VIN1-p".to_string(), report("VIN1-p", &nonce, "fw"))].into(),
        );
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = [&a, &b, &a, &b]
                .into_iter()
                .map(|store| {
                    let m = &m;
                    s.spawn(move || store.record_manifest(m))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(accepted, 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(r, Err(ferry_director::Error::NonceReused { .. })),
                "{r:?}"
            );
        }
    }
    assert_eq!(a.count_manifests("VIN1", None).unwrap(), 20);
}

/// The refresher's leadership: one Director at a time holds it; one that dies without letting
/// go (its connections cut, as a SIGKILL does) loses it, and another takes over.
#[test]
fn the_refresher_is_led_by_one_director_and_a_dead_leader_is_replaced() {
    let Some(url) = test_database("pg_lead") else {
        return;
    };
    let (a, b) = (open(&url), open(&url));
    let lead = a.try_lead("refresher").unwrap();
    assert!(lead.is_some(), "the first asks, the first leads");
    assert!(
        b.try_lead("refresher").unwrap().is_none(),
        "one leader at a time"
    );
    drop(lead);
    // Let go in order: the next one to ask leads.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let b_lead = loop {
        if let Some(l) = b.try_lead("refresher").unwrap() {
            break l;
        }
        assert!(std::time::Instant::now() < deadline, "B never led");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // B dies holding the lead: its guard never runs, its store's connections are cut.
    std::mem::forget(b_lead);
    drop(b);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.try_lead("refresher").unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead leader was never replaced"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
