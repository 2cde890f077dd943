#![allow(clippy::unwrap_used)]
//! The Director store's rules, through the `Store` trait, on both backends: every test runs
//! on SQLite, then on PostgreSQL (a fresh database on the harness's server: see
//! `ferry_director::store::postgres::cluster`; skipped with a printed reason only when no
//! server can be had, never in CI).

use chrono::Duration;
use ferry_core::manifest::InstallResult;
use ferry_core::manifest::{
    check_vehicle_manifest, EcuVersionReport, FileInfo, InstalledImage, LastInstall,
    VehicleManifest,
};
use ferry_core::metadata::{hashes_of, Expires, Signed, TargetFile};
use ferry_core::{Clock, SystemClock};
use ferry_director::model::{
    AssignmentStatus, IncomingManifest, ManifestVerdict, MetadataRole, NewAssignment, NewEcu,
    NewVehicle, Scope, Vehicle, VehicleState, Verdict,
};
use ferry_director::{Error, Fault, PgSettings, PgStore, SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, PublicKey, Scheme};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where one run of a test keeps its store.
enum Kind {
    Sqlite,
    Postgres(String),
}

struct Backend {
    dir: tempfile::TempDir,
    kind: Kind,
}

impl Backend {
    fn path(&self) -> PathBuf {
        self.dir.path().join("director.db")
    }

    /// Open (again) this run's store.
    fn open(&self) -> Arc<dyn Store> {
        self.open_with_clock(Arc::new(SystemClock))
    }

    fn open_with_clock(&self, clock: Arc<dyn Clock>) -> Arc<dyn Store> {
        match &self.kind {
            Kind::Sqlite => Arc::new(SqliteStore::open_with_clock(self.path(), clock).unwrap()),
            Kind::Postgres(url) => {
                Arc::new(PgStore::open_with_clock(&PgSettings::new(url.clone()), clock).unwrap())
            }
        }
    }

    /// The stored bytes as they lie on disk, where a test can read them (SQLite's files;
    /// PostgreSQL's are the server's).
    fn stored_bytes(&self) -> Option<Vec<u8>> {
        match self.kind {
            Kind::Sqlite => Some(db_bytes(&self.path())),
            Kind::Postgres(_) => None,
        }
    }
}

/// Run `body` on a fresh SQLite store, then on a fresh PostgreSQL database.
fn for_each_backend(test: &str, body: impl Fn(&Backend)) {
    let sqlite = Backend {
        dir: tempfile::tempdir().unwrap(),
        kind: Kind::Sqlite,
    };
    body(&sqlite);
    if let Some(url) = ferry_director::store::postgres::cluster::test_database(test) {
        eprintln!("{test}: on PostgreSQL");
        body(&Backend {
            dir: tempfile::tempdir().unwrap(),
            kind: Kind::Postgres(url),
        });
    }
}

fn key(seed: u8) -> PublicKey {
    PublicKey::new(Scheme::Ed25519, hex::encode([seed; 32]))
}

fn ecu(serial: &str, primary: bool) -> NewEcu {
    NewEcu {
        serial: serial.into(),
        hardware_id: format!("hw-{serial}"),
        public_key: key(serial.len() as u8),
        primary,
    }
}

/// A vehicle `vin` with primary `{vin}-p` and secondary `{vin}-s`.
fn register(store: &dyn Store, vin: &str) -> Vehicle {
    store
        .register_vehicle(&NewVehicle {
            vin: vin.into(),
            ecus: vec![
                ecu(&format!("{vin}-s"), false),
                ecu(&format!("{vin}-p"), true),
            ],
        })
        .unwrap()
}

fn target(data: &[u8]) -> TargetFile {
    TargetFile {
        custom: None,
        hashes: hashes_of(data),
        length: data.len() as u64,
        extra: BTreeMap::new(),
    }
}

fn report(serial: &str, nonce: &str, image: &str, data: &[u8]) -> EcuVersionReport {
    EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.into(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(data),
                length: data.len() as u64,
                extra: BTreeMap::new(),
            },
            filepath: image.into(),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.into(),
        provides: BTreeMap::from([("rootfs-image.version".into(), image.into())]),
        time: Expires::after(SystemClock.now(), Duration::zero()),
        extra: BTreeMap::new(),
    }
}

fn accepted(vin: &str, nonce: &str, reports: Vec<EcuVersionReport>) -> IncomingManifest {
    IncomingManifest::accepted(
        vin,
        SystemClock.now(),
        format!("manifest {vin} {nonce}").as_bytes(),
        nonce.into(),
        reports
            .into_iter()
            .map(|r| (r.ecu_serial.clone(), r))
            .collect(),
    )
}

/// Both ECUs of `vin` report running `p_image` / `s_image`.
fn both(vin: &str, nonce: &str, p_image: &str, s_image: &str) -> IncomingManifest {
    accepted(
        vin,
        nonce,
        vec![
            report(&format!("{vin}-p"), nonce, p_image, p_image.as_bytes()),
            report(&format!("{vin}-s"), nonce, s_image, s_image.as_bytes()),
        ],
    )
}

/// The database file and its WAL and shared-memory files, concatenated.
fn db_bytes(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn registration_rules() {
    for_each_backend("registration_rules", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        let v = register(store, "VIN1");
        assert_eq!(v.ecus.len(), 2);
        assert_eq!(v.primary().unwrap().serial, "VIN1-p");
        assert!(v.ecus[0].primary, "primary listed first");
        assert_eq!(v.status.state, VehicleState::NeverSeen);
        assert_eq!(v.registered().unwrap().ecu_keys.len(), 2);

        let refuse = |vin: &str, ecus: Vec<NewEcu>| {
            store
                .register_vehicle(&NewVehicle {
                    vin: vin.into(),
                    ecus,
                })
                .unwrap_err()
        };
        let e = refuse("VIN1", vec![ecu("x", true)]);
        assert!(matches!(e, Error::VehicleExists { .. }), "{e}");
        let e = refuse("VIN2", vec![ecu("VIN1-s", false), ecu("new-p", true)]);
        assert!(
            matches!(&e, Error::SerialTaken { serial, owner } if serial == "VIN1-s" && owner == "VIN1"),
            "{e}"
        );
        assert_eq!(e.fault(), Fault::Operator);
        let e = refuse("VIN2", vec![ecu("a", true), ecu("a", false)]);
        assert!(matches!(e, Error::SerialRepeated { .. }), "{e}");
        let e = refuse("VIN2", vec![ecu("a", true), ecu("b", true)]);
        assert!(matches!(e, Error::PrimaryCount { found: 2, .. }), "{e}");
        assert!(e.to_string().contains("expected exactly one"));
        let e = refuse("VIN2", vec![ecu("a", false)]);
        assert!(matches!(e, Error::PrimaryCount { found: 0, .. }), "{e}");
        let e = refuse("", vec![ecu("a", true)]);
        assert!(matches!(e, Error::InvalidVin { .. }), "{e}");
        let e = refuse("../x", vec![ecu("a", true)]);
        assert!(matches!(e, Error::InvalidVin { .. }), "{e}");
        let mut no_hw = ecu("a", true);
        no_hw.hardware_id.clear();
        let e = refuse("VIN2", vec![no_hw]);
        assert!(matches!(e, Error::InvalidEcu { .. }), "{e}");
        let mut bad_key = ecu("a", true);
        bad_key.public_key.scheme = "rsa-md5".into();
        let e = refuse("VIN2", vec![bad_key]);
        assert!(matches!(e, Error::InvalidEcu { .. }), "{e}");

        // Nothing of the refused vehicles was written.
        assert_eq!(store.list_vins().unwrap(), vec!["VIN1".to_owned()]);
        assert!(store.get_vehicle("VIN2").unwrap().is_none());
    });
}

#[test]
fn device_tokens_are_stored_hashed_and_verified() {
    for_each_backend("device_tokens_are_stored_hashed_and_verified", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        register(store, "VIN1");
        register(store, "VIN2");
        assert!(
            !store.verify_device_token("VIN1", "").unwrap(),
            "no token yet"
        );

        let token = store.issue_device_token("VIN1").unwrap();
        assert!(store.verify_device_token("VIN1", &token).unwrap());
        assert!(!store.verify_device_token("VIN2", &token).unwrap());
        assert!(!store.verify_device_token("NOPE", &token).unwrap());
        let mut wrong = token.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!store
            .verify_device_token("VIN1", std::str::from_utf8(&wrong).unwrap())
            .unwrap());

        // Where the bytes can be read (SQLite's files): the token itself is nowhere in them.
        if let Some(bytes) = b.stored_bytes() {
            assert!(contains(&bytes, b"VIN1"), "sanity: the files hold the data");
            let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
            assert!(contains(&bytes, &digest), "sanity: the hash is stored");
            assert!(
                !contains(&bytes, token.as_bytes()),
                "raw token in the database"
            );
            assert!(!contains(&bytes, &hex::decode(&token).unwrap()));
        }

        let rotated = store.issue_device_token("VIN1").unwrap();
        assert!(store.verify_device_token("VIN1", &rotated).unwrap());
        assert!(!store.verify_device_token("VIN1", &token).unwrap());
        // What a relay pack carries: the current token's SHA-256, none for none.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(rotated.as_bytes()).to_vec();
        assert_eq!(store.device_token_hash("VIN1").unwrap(), Some(digest));
        assert_eq!(store.device_token_hash("VIN2").unwrap(), None);
        assert_eq!(store.device_token_hash("NOPE").unwrap(), None);
        assert!(matches!(
            store.issue_device_token("NOPE"),
            Err(Error::UnknownVehicle { .. })
        ));
    });
}

#[test]
fn a_read_view_sees_what_the_store_methods_see_and_hands_back_its_own_result() {
    for_each_backend(
        "a_read_view_sees_what_the_store_methods_see_and_hands_back_its_own_result",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "VIN1");
            let token = store.issue_device_token("VIN1").unwrap();
            store
                .put_vehicle_metadata(
                    "VIN1",
                    MetadataRole::Timestamp,
                    1,
                    SystemClock.now() + Duration::days(1),
                    b"ts",
                )
                .unwrap();
            store.put_root(1, b"root-1").unwrap();
            let store: &dyn Store = store;
            let seen = ferry_director::store::read(store, "test view", |view| {
                assert!(view.verify_device_token("VIN1", &token).unwrap());
                assert!(!view.verify_device_token("VIN1", "wrong").unwrap());
                assert!(!view.verify_device_token("NOPE", &token).unwrap());
                let keys = view.ecu_keys("VIN1").unwrap().unwrap();
                assert_eq!(keys.primary_ecu_serial, "VIN1-p");
                assert_eq!(
                    keys.ecu_keys.keys().collect::<Vec<_>>(),
                    ["VIN1-p", "VIN1-s"]
                );
                assert!(view.ecu_keys("NOPE").unwrap().is_none());
                assert_eq!(view.get_root(1).unwrap().unwrap(), b"root-1");
                assert_eq!(
                    view.latest_root().unwrap().unwrap(),
                    (1, b"root-1".to_vec())
                );
                assert!(view.active_assignments("VIN1").unwrap().is_empty());
                view.get_vehicle_metadata("VIN1", MetadataRole::Timestamp)
                    .unwrap()
                    .map(|m| m.bytes)
            })
            .unwrap();
            assert_eq!(seen.unwrap(), b"ts");
            // The closure's own error type comes back untouched inside the store's Ok.
            let own: Result<(), &str> =
                ferry_director::store::read(store, "test view", |_| Err("mine")).unwrap();
            assert_eq!(own, Err("mine"));
        },
    );
}

#[test]
fn announced_reads_answer_as_unannounced_ones_from_the_views_snapshot() {
    use ferry_director::store::Prefetch;
    for_each_backend(
        "announced_reads_answer_as_unannounced_ones_from_the_views_snapshot",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "VIN1");
            register(store, "VIN2");
            let token = store.issue_device_token("VIN1").unwrap();
            let expires = SystemClock.now() + Duration::days(1);
            store
                .put_vehicle_metadata("VIN1", MetadataRole::Timestamp, 1, expires, b"ts-1")
                .unwrap();
            let queued = assign(store, "VIN1", "VIN1-s", "fw-1");
            let store: &dyn Store = store;
            ferry_director::store::read(store, "test view", |view| {
                view.prefetch(&[
                    Prefetch::DeviceToken("VIN1"),
                    Prefetch::EcuKeys("VIN1"),
                    Prefetch::Metadata("VIN1", MetadataRole::Timestamp),
                    Prefetch::ActiveAssignments("VIN1"),
                ])
                .unwrap();
                assert!(view.verify_device_token("VIN1", &token).unwrap());
                // Written by others once the view has read: not seen by it, announced or not.
                let newer = store.issue_device_token("VIN1").unwrap();
                store
                    .put_vehicle_metadata("VIN1", MetadataRole::Timestamp, 2, expires, b"ts-2")
                    .unwrap();
                store.cancel_assignments("VIN1", "test").unwrap();
                // Asked again (its answer was handed out): read again, in the same snapshot.
                assert!(view.verify_device_token("VIN1", &token).unwrap());
                assert!(!view.verify_device_token("VIN1", &newer).unwrap());
                let keys = view.ecu_keys("VIN1").unwrap().unwrap();
                assert_eq!(keys.primary_ecu_serial, "VIN1-p");
                let stored = view
                    .get_vehicle_metadata("VIN1", MetadataRole::Timestamp)
                    .unwrap()
                    .unwrap();
                assert_eq!((stored.version, stored.bytes), (1, b"ts-1".to_vec()));
                let active = view.active_assignments("VIN1").unwrap();
                assert_eq!(active.iter().map(|a| a.id).collect::<Vec<_>>(), [queued]);
                // Reads that were not announced, or announced for another vehicle or role.
                assert!(view
                    .get_vehicle_metadata("VIN1", MetadataRole::Targets)
                    .unwrap()
                    .is_none());
                assert!(view.ecu_keys("VIN2").unwrap().is_some());
                assert!(view.ecu_keys("NOPE").unwrap().is_none());
                assert!(view.active_assignments("VIN2").unwrap().is_empty());
            })
            .unwrap();
            // A later view sees the writes.
            ferry_director::store::read(store, "test view", |view| {
                view.prefetch(&[
                    Prefetch::DeviceToken("VIN1"),
                    Prefetch::Metadata("VIN1", MetadataRole::Timestamp),
                ])
                .unwrap();
                assert!(!view.verify_device_token("VIN1", &token).unwrap());
                let stored = view
                    .get_vehicle_metadata("VIN1", MetadataRole::Timestamp)
                    .unwrap()
                    .unwrap();
                assert_eq!(stored.version, 2);
                assert!(view.active_assignments("VIN1").unwrap().is_empty());
            })
            .unwrap();
        },
    );
}

/// What a device request announces (a token with a metadata file, or with the ECU keys) is
/// what the same reads answer unannounced: for a vehicle with and without the file, a
/// removed vehicle and an unknown VIN.
#[test]
fn reads_announced_in_pairs_answer_as_unannounced_ones() {
    use ferry_director::store::{Prefetch, View};
    type Answers = (bool, bool, Option<(u64, Vec<u8>)>, Option<String>);
    fn answers(view: &dyn View, vin: &str, token: &str) -> Answers {
        let stored = view
            .get_vehicle_metadata(vin, MetadataRole::Timestamp)
            .unwrap()
            .map(|m| (m.version, m.bytes));
        let keys = view.ecu_keys(vin).unwrap();
        (
            view.verify_device_token(vin, token).unwrap(),
            keys.is_some(),
            stored,
            keys.map(|k| k.primary_ecu_serial),
        )
    }
    for_each_backend("reads_announced_in_pairs_answer_as_unannounced_ones", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        let expires = SystemClock.now() + Duration::days(1);
        let mut tokens = Vec::new();
        for vin in ["WITH-FILE", "NO-FILE", "REMOVED"] {
            register(store, vin);
            tokens.push((vin, store.issue_device_token(vin).unwrap()));
        }
        tokens.push(("UNKNOWN", "UNKNOWN.secret".to_owned()));
        store
            .put_vehicle_metadata("WITH-FILE", MetadataRole::Timestamp, 3, expires, b"ts-3")
            .unwrap();
        store.remove_vehicle("REMOVED").unwrap();
        let store: &dyn Store = store;
        for (vin, token) in &tokens {
            let plain =
                ferry_director::store::read(store, "test view", |view| answers(view, vin, token))
                    .unwrap();
            for pair in [
                [
                    Prefetch::DeviceToken(vin),
                    Prefetch::Metadata(vin, MetadataRole::Timestamp),
                ],
                [Prefetch::DeviceToken(vin), Prefetch::EcuKeys(vin)],
            ] {
                let announced = ferry_director::store::read(store, "test view", |view| {
                    view.prefetch(&pair).unwrap();
                    answers(view, vin, token)
                })
                .unwrap();
                assert_eq!(announced, plain, "{vin}, announced {pair:?}");
            }
        }
        let with_file = ferry_director::store::read(store, "test view", |view| {
            answers(view, "WITH-FILE", &tokens[0].1)
        })
        .unwrap();
        assert_eq!(
            with_file,
            (
                true,
                true,
                Some((3, b"ts-3".to_vec())),
                Some("WITH-FILE-p".to_owned())
            )
        );
    });
}

#[test]
fn manifests_are_append_only_and_a_nonce_is_accepted_once() {
    for_each_backend(
        "manifests_are_append_only_and_a_nonce_is_accepted_once",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "VIN1");
            register(store, "VIN2");
            let os2 = target(b"os-2");
            store
                .add_assignments(
                    "VIN1",
                    &[NewAssignment {
                        ecu_serial: "VIN1-p".into(),
                        target_name: "os-2".into(),
                        target: os2,
                        campaign: None,
                    }],
                )
                .unwrap();

            let first = both("VIN1", "n1", "os-1", "app-1");
            let id = store.record_manifest(&first).unwrap().id;
            let after_first = store.get_vehicle("VIN1").unwrap().unwrap();
            assert!(after_first.last_seen.is_some());
            assert_eq!(after_first.status.state, VehicleState::Updating);
            let p = after_first.primary().unwrap().reported.clone().unwrap();
            assert_eq!(p.installed_image.filepath, "os-1");
            assert_eq!(p.provides["rootfs-image.version"], "os-1");

            // Replay with the same nonce, now claiming the assigned image: refused, nothing changes.
            let replay = both("VIN1", "n1", "os-2", "app-1");
            let e = store.record_manifest(&replay).unwrap_err();
            assert!(
                matches!(&e, Error::NonceReused { nonce, .. } if nonce == "n1"),
                "{e}"
            );
            assert_eq!(e.fault(), Fault::Device);
            assert_eq!(store.count_manifests("VIN1", None).unwrap(), 1);
            assert_eq!(store.get_vehicle("VIN1").unwrap().unwrap(), after_first);
            assert_eq!(
                store.active_assignments("VIN1").unwrap()[0].status,
                AssignmentStatus::Pending
            );

            // The same nonce from another vehicle is its own business.
            store
                .record_manifest(&both("VIN2", "n1", "os-1", "app-1"))
                .unwrap();

            // A refused manifest is stored and changes nothing else, whatever its nonce.
            let refused = IncomingManifest::refused(
                "VIN1",
                SystemClock.now(),
                b"forged",
                Some("n1".into()),
                "signature check failed",
                &ferry_director::manifests::ManifestPolicy::DEFAULT,
            );
            let refused_id = store.record_manifest(&refused).unwrap().id;
            assert!(refused_id > id);
            assert_eq!(store.get_vehicle("VIN1").unwrap().unwrap(), after_first);
            assert_eq!(
                store
                    .count_manifests("VIN1", Some(Verdict::Refused))
                    .unwrap(),
                1
            );
            assert_eq!(
                store
                    .count_manifests("VIN1", Some(Verdict::Accepted))
                    .unwrap(),
                1
            );

            // A report from another vehicle's ECU: refused, nothing written.
            let mut stray = both("VIN1", "n2", "os-1", "app-1");
            if let ManifestVerdict::Accepted { reports, .. } = &mut stray.verdict {
                reports.insert("VIN2-p".into(), report("VIN2-p", "n2", "x", b"x"));
            }
            let e = store.record_manifest(&stray).unwrap_err();
            assert!(matches!(e, Error::ReportFromUnknownEcu { .. }), "{e}");
            assert_eq!(store.count_manifests("VIN1", None).unwrap(), 2);
            assert!(matches!(
                store.record_manifest(&both("NOPE", "n1", "a", "b")),
                Err(Error::UnknownVehicle { .. })
            ));

            // Listed newest first, bodies as received; still there after reopening.
            drop(opened);
            let opened = b.open();
            let store = opened.as_ref();
            let log = store.list_manifests("VIN1", 10).unwrap();
            assert_eq!(log.len(), 2);
            assert_eq!((log[0].id, log[0].verdict), (refused_id, Verdict::Refused));
            assert_eq!(log[0].reason, "signature check failed");
            assert_eq!(log[0].body, b"forged");
            assert_eq!((log[1].id, log[1].verdict), (id, Verdict::Accepted));
            assert_eq!(log[1].body, first.body);
            assert_eq!(log[1].nonce.as_deref(), Some("n1"));
            assert!(matches!(
                store.record_manifest(&replay),
                Err(Error::NonceReused { .. })
            ));
        },
    );
}

fn assign(store: &dyn Store, vin: &str, serial: &str, name: &str) -> i64 {
    store
        .add_assignments(
            vin,
            &[NewAssignment {
                ecu_serial: serial.into(),
                target_name: name.into(),
                target: target(name.as_bytes()),
                campaign: Some("c1".into()),
            }],
        )
        .unwrap()[0]
        .id
}

#[test]
fn assignments_move_with_reports_and_can_be_cancelled() {
    for_each_backend("assignments_move_with_reports_and_can_be_cancelled", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        register(store, "VIN1");
        register(store, "VIN2");
        let new = |serial: &str, name: &str| NewAssignment {
            ecu_serial: serial.into(),
            target_name: name.into(),
            target: target(name.as_bytes()),
            campaign: Some("c1".into()),
        };
        let added = store
            .add_assignments("VIN1", &[new("VIN1-p", "os-2"), new("VIN1-s", "app-2")])
            .unwrap();
        assert_eq!(added.len(), 2);
        assert!(added[0].position < added[1].position);
        assert!(added.iter().all(|a| a.status == AssignmentStatus::Pending));
        let (os, app) = (added[0].id, added[1].id);

        // Refused additions write nothing, even the valid entries of the batch.
        let e = store
            .add_assignments("VIN1", &[new("VIN1-s", "app-9"), new("VIN1-p", "os-2")])
            .unwrap_err();
        assert!(matches!(e, Error::AssignmentExists { .. }), "{e}");
        let e = store
            .add_assignments("VIN1", &[new("VIN1-s", "app-9"), new("VIN2-p", "os-2")])
            .unwrap_err();
        assert!(matches!(e, Error::UnknownEcu { .. }), "{e}");
        let mut unhashed = new("VIN1-s", "app-9");
        unhashed.target.hashes.clear();
        let e = store.add_assignments("VIN1", &[unhashed]).unwrap_err();
        assert!(matches!(e, Error::InvalidAssignment { .. }), "{e}");
        assert_eq!(store.assignments("VIN1").unwrap().len(), 2);

        // Right name, wrong content: not installed.
        let mut wrong = both("VIN1", "n1", "os-1", "app-1");
        if let ManifestVerdict::Accepted { reports, .. } = &mut wrong.verdict {
            reports.insert("VIN1-p".into(), report("VIN1-p", "n1", "os-2", b"evil"));
        }
        store.record_manifest(&wrong).unwrap();
        assert_eq!(store.active_assignments("VIN1").unwrap().len(), 2);

        // A failure reported for a pending assignment is from an earlier attempt: ignored.
        let failed_app = |nonce: &str| {
            let mut m = both("VIN1", nonce, "os-2", "app-1");
            if let ManifestVerdict::Accepted { reports, .. } = &mut m.verdict {
                let s = reports.get_mut("VIN1-s").unwrap();
                s.last_install = Some(LastInstall {
                    target: "app-2".into(),
                    result: InstallResult::Failure,
                    detail: "hash check failed".into(),
                    extra: BTreeMap::new(),
                });
            }
            m
        };
        store.record_manifest(&failed_app("n2")).unwrap();
        let now = store.assignments("VIN1").unwrap();
        assert_eq!(now[0].status, AssignmentStatus::Installed, "os-2 now runs");
        assert_eq!(now[1].status, AssignmentStatus::Pending);

        assert_eq!(
            store.mark_in_flight(&[os, app]).unwrap(),
            1,
            "only pending ones move"
        );
        store.record_manifest(&failed_app("n3")).unwrap();
        let now = store.assignments("VIN1").unwrap();
        assert_eq!(now[1].status, AssignmentStatus::Failed);
        assert!(
            now[1].detail.contains("hash check failed"),
            "{}",
            now[1].detail
        );
        let v = store.get_vehicle("VIN1").unwrap().unwrap();
        assert_eq!((v.status.installed, v.status.failed), (1, 1));
        assert_eq!(v.status.state, VehicleState::UpdateFailed);

        // Cancel one, then all of a vehicle.
        let retry = assign(store, "VIN1", "VIN1-s", "app-2");
        let c = store.cancel_assignment(retry, "operator").unwrap();
        assert_eq!(
            (c.status, c.detail.as_str()),
            (AssignmentStatus::Cancelled, "operator")
        );
        assert!(matches!(
            store.cancel_assignment(retry, "again"),
            Err(Error::AssignmentNotActive { .. })
        ));
        assert!(matches!(
            store.cancel_assignment(9999, "x"),
            Err(Error::UnknownAssignment { id: 9999 })
        ));
        let a = assign(store, "VIN1", "VIN1-s", "app-3");
        let b = assign(store, "VIN1", "VIN1-p", "os-3");
        let active = store.active_assignments("VIN1").unwrap();
        assert_eq!(active.iter().map(|x| x.id).collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(store.mark_in_flight(&[a]).unwrap(), 1);
        assert_eq!(
            store
                .cancel_assignments("VIN1", "campaign stopped")
                .unwrap(),
            2
        );
        assert!(store.active_assignments("VIN1").unwrap().is_empty());
        assert_eq!(store.assignments("VIN1").unwrap().len(), 5);
        assert_eq!(store.mark_in_flight(&[a, b]).unwrap(), 0);
    });
}

#[test]
fn metadata_versions_only_go_up() {
    for_each_backend("metadata_versions_only_go_up", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        register(store, "VIN1");
        register(store, "VIN2");
        let t0 = SystemClock.now();
        let put = |vin: &str, role, v, days: i64, body: &str| {
            store.put_vehicle_metadata(vin, role, v, t0 + Duration::days(days), body.as_bytes())
        };
        assert!(store
            .get_vehicle_metadata("VIN1", MetadataRole::Targets)
            .unwrap()
            .is_none());
        put("VIN1", MetadataRole::Targets, 1, 30, "t1").unwrap();
        let e = put("VIN1", MetadataRole::Targets, 1, 30, "t1b").unwrap_err();
        assert!(
            matches!(
                e,
                Error::MetadataVersion {
                    stored: 1,
                    new: 1,
                    ..
                }
            ),
            "{e}"
        );
        put("VIN1", MetadataRole::Targets, 3, 30, "t3").unwrap();
        let e = put("VIN1", MetadataRole::Targets, 2, 30, "t2").unwrap_err();
        assert!(
            matches!(
                e,
                Error::MetadataVersion {
                    stored: 3,
                    new: 2,
                    ..
                }
            ),
            "{e}"
        );
        let got = store
            .get_vehicle_metadata("VIN1", MetadataRole::Targets)
            .unwrap()
            .unwrap();
        assert_eq!((got.version, got.bytes.as_slice()), (3, &b"t3"[..]));
        assert!(matches!(
            put("VIN1", MetadataRole::Snapshot, 0, 30, "s0"),
            Err(Error::VersionOutOfRange { .. })
        ));
        assert!(matches!(
            put("VIN1", MetadataRole::Snapshot, u64::MAX, 30, "s"),
            Err(Error::VersionOutOfRange { .. })
        ));
        assert!(matches!(
            put("NOPE", MetadataRole::Snapshot, 1, 30, "s"),
            Err(Error::UnknownVehicle { .. })
        ));

        put("VIN1", MetadataRole::Timestamp, 1, 1, "ts").unwrap();
        put("VIN2", MetadataRole::Timestamp, 1, 2, "ts").unwrap();
        let soon = store
            .vehicles_with_metadata_expiring_before(t0 + Duration::days(3))
            .unwrap();
        let soon: Vec<_> = soon.iter().map(|e| (e.vin.as_str(), e.role)).collect();
        assert_eq!(
            soon,
            vec![
                ("VIN1", MetadataRole::Timestamp),
                ("VIN2", MetadataRole::Timestamp)
            ]
        );

        assert!(store.latest_root().unwrap().is_none());
        let e = store.put_root(2, b"r2").unwrap_err();
        assert!(
            matches!(
                e,
                Error::RootVersion {
                    new: 2,
                    expected: 1
                }
            ),
            "{e}"
        );
        store.put_root(1, b"r1").unwrap();
        assert!(matches!(
            store.put_root(1, b"r1b"),
            Err(Error::RootVersion { expected: 2, .. })
        ));
        store.put_root(2, b"r2").unwrap();
        assert_eq!(store.latest_root().unwrap(), Some((2, b"r2".to_vec())));
        assert_eq!(store.get_root(1).unwrap(), Some(b"r1".to_vec()));
        assert_eq!(store.get_root(3).unwrap(), None);
    });
}

#[test]
fn admin_tokens_have_scopes_and_can_be_revoked() {
    for_each_backend("admin_tokens_have_scopes_and_can_be_revoked", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        let (reader_id, reader) = store
            .create_admin_token("dashboard", Scope::Read, None)
            .unwrap();
        let (_, writer) = store.create_admin_token("ci", Scope::Write, None).unwrap();
        assert_eq!(store.check_admin_token(&reader).unwrap(), Some(Scope::Read));
        assert_eq!(
            store.check_admin_token(&writer).unwrap(),
            Some(Scope::Write)
        );
        assert_eq!(store.check_admin_token("guess").unwrap(), None);
        assert!(Scope::Write.allows(Scope::Read) && !Scope::Read.allows(Scope::Write));
        if let Some(bytes) = b.stored_bytes() {
            assert!(!contains(&bytes, reader.as_bytes()));
        }

        store.revoke_admin_token(reader_id).unwrap();
        assert_eq!(store.check_admin_token(&reader).unwrap(), None);
        assert_eq!(
            store.check_admin_token(&writer).unwrap(),
            Some(Scope::Write)
        );
        let listed = store.list_admin_tokens().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].revoked_at.is_some() && listed[1].revoked_at.is_none());
        assert!(matches!(
            store.revoke_admin_token(42),
            Err(Error::UnknownAdminToken { id: 42 })
        ));
        assert!(matches!(
            store.create_admin_token(" ", Scope::Read, None),
            Err(Error::InvalidTokenName { .. })
        ));
    });
}

#[test]
fn signed_manifests_checked_by_core_then_recorded() {
    for_each_backend("signed_manifests_checked_by_core_then_recorded", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        let primary = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let secondary = PrivateKey::generate(KeyKind::Ed25519).unwrap();
        let vehicle = store
            .register_vehicle(&NewVehicle {
                vin: "VIN1".into(),
                ecus: vec![
                    NewEcu {
                        public_key: primary.public_key().clone(),
                        ..ecu("p", true)
                    },
                    NewEcu {
                        public_key: secondary.public_key().clone(),
                        ..ecu("s", false)
                    },
                ],
            })
            .unwrap();
        let signed = |nonce: &str| {
            let mut rp = Signed::new(report("p", nonce, "os-1", b"os-1"));
            rp.sign(&primary).unwrap();
            let mut rs = Signed::new(report("s", nonce, "app-1", b"app-1"));
            rs.sign(&secondary).unwrap();
            let mut m = Signed::new(VehicleManifest::new("VIN1", "p", &[rp, rs]).unwrap());
            m.sign(&primary).unwrap();
            m.to_bytes().unwrap()
        };
        let record = |body: Vec<u8>| {
            let checked = check_vehicle_manifest(&body, &vehicle.registered().unwrap()).unwrap();
            store.record_manifest(&IncomingManifest::accepted(
                "VIN1",
                SystemClock.now(),
                &body,
                checked.nonce,
                checked.reports,
            ))
        };
        let body = signed("cycle-1");
        record(body.clone()).unwrap();
        assert!(matches!(record(body), Err(Error::NonceReused { .. })));
        record(signed("cycle-2")).unwrap();
        let v = store.get_vehicle("VIN1").unwrap().unwrap();
        assert_eq!(v.status.state, VehicleState::UpToDate);
        assert_eq!(
            v.ecus[1]
                .reported
                .as_ref()
                .unwrap()
                .installed_image
                .filepath,
            "app-1"
        );
    });
}

#[test]
fn concurrent_writers_and_readers_keep_exact_counts() {
    for_each_backend("concurrent_writers_and_readers_keep_exact_counts", |b| {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 200;
        let opened = b.open();
        let store = opened.as_ref();
        for t in 0..THREADS {
            register(store, &format!("VIN{t}"));
        }
        let writers: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = Arc::clone(&opened);
                std::thread::spawn(move || {
                    let vin = format!("VIN{t}");
                    for i in 0..PER_THREAD {
                        let nonce = format!("{vin}-{i}");
                        store
                            .record_manifest(&both(&vin, &nonce, &format!("os-{i}"), "app"))
                            .unwrap();
                    }
                    // A replay in the middle of the crowd is still refused.
                    let again = both(&vin, &format!("{vin}-0"), "os-x", "app");
                    assert!(matches!(
                        store.record_manifest(&again),
                        Err(Error::NonceReused { .. })
                    ));
                })
            })
            .collect();
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let store = Arc::clone(&opened);
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let vin = format!("VIN{}", (i + r) % THREADS);
                        let v = store.get_vehicle(&vin).unwrap().unwrap();
                        assert_eq!(v.ecus.len(), 2);
                        store.count_manifests(&vin, None).unwrap();
                    }
                })
            })
            .collect();
        for h in writers.into_iter().chain(readers) {
            h.join().unwrap();
        }
        for t in 0..THREADS {
            let vin = format!("VIN{t}");
            assert_eq!(
                store.count_manifests(&vin, None).unwrap(),
                PER_THREAD as u64
            );
            assert_eq!(
                store
                    .count_manifests(&vin, Some(Verdict::Accepted))
                    .unwrap(),
                PER_THREAD as u64
            );
            let v = store.get_vehicle(&vin).unwrap().unwrap();
            let last = format!("os-{}", PER_THREAD - 1);
            assert_eq!(
                v.primary()
                    .unwrap()
                    .reported
                    .as_ref()
                    .unwrap()
                    .installed_image
                    .filepath,
                last
            );
        }
        store.integrity_check().unwrap();
    });
}

#[test]
fn vehicles_page_by_vin_with_their_ecus_and_status() {
    for_each_backend("vehicles_page_by_vin_with_their_ecus_and_status", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        for vin in ["V3", "V1", "V5", "V2", "V4"] {
            register(store, vin);
        }
        assign(store, "V2", "V2-s", "fw.bin");
        store.record_manifest(&both("V4", "n1", "a", "b")).unwrap();

        let first = store.list_vehicles(None, 2).unwrap();
        let vins: Vec<&str> = first.iter().map(|v| v.vin.as_str()).collect();
        assert_eq!(vins, ["V1", "V2"]);
        let second = store.list_vehicles(Some("V2"), 2).unwrap();
        let vins: Vec<&str> = second.iter().map(|v| v.vin.as_str()).collect();
        assert_eq!(vins, ["V3", "V4"]);
        let last = store.list_vehicles(Some("V4"), 2).unwrap();
        assert_eq!(last.len(), 1);
        assert!(store.list_vehicles(Some("V5"), 2).unwrap().is_empty());
        // Between two VINs, and before the first.
        assert_eq!(store.list_vehicles(Some("V0"), 1).unwrap()[0].vin, "V1");
        assert_eq!(store.list_vehicles(Some("V25"), 1).unwrap()[0].vin, "V3");

        // Each listed vehicle is exactly what get_vehicle shows: its own ECUs, primary first,
        // reports and status counts.
        for v in first.iter().chain(&second).chain(&last) {
            assert_eq!(
                Some(v),
                store.get_vehicle(&v.vin).unwrap().as_ref(),
                "{}",
                v.vin
            );
            assert_eq!(v.ecus.len(), 2, "{}", v.vin);
            assert!(v.ecus[0].primary);
            assert!(v.ecus.iter().all(|e| e.serial.starts_with(&v.vin)));
        }
        assert_eq!(first[1].status.pending, 1);
        assert_eq!(first[1].status.state, VehicleState::NeverSeen);
        assert!(second[1].ecus.iter().all(|e| e.reported.is_some()));
        assert_eq!(second[1].status.state, VehicleState::UpToDate);
    });
}

#[test]
fn ecus_are_selected_by_hardware_id_fleet_wide_or_in_listed_vehicles() {
    for_each_backend(
        "ecus_are_selected_by_hardware_id_fleet_wide_or_in_listed_vehicles",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            let car = |vin: &str, ecus: &[(&str, &str, bool)]| {
                store
                    .register_vehicle(&NewVehicle {
                        vin: vin.into(),
                        ecus: ecus
                            .iter()
                            .map(|(serial, hw, primary)| NewEcu {
                                serial: (*serial).into(),
                                hardware_id: (*hw).into(),
                                public_key: key(serial.len() as u8),
                                primary: *primary,
                            })
                            .collect(),
                    })
                    .unwrap();
            };
            car(
                "B",
                &[
                    ("b-1", "ivi", true),
                    ("b-2", "tcu", false),
                    ("b-0", "ivi", false),
                ],
            );
            car("A", &[("a-1", "ivi", true)]);
            car("C", &[("c-1", "tcu", true)]);
            let refs = |hw: &str, vins: Option<&[String]>| -> Vec<(String, String)> {
                store
                    .ecus_with_hardware_id(hw, vins)
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.vin, e.serial))
                    .collect()
            };
            let pair = |v: &str, s: &str| (v.to_owned(), s.to_owned());
            assert_eq!(
                refs("ivi", None),
                [pair("A", "a-1"), pair("B", "b-0"), pair("B", "b-1")]
            );
            let only = ["B".to_owned(), "C".to_owned(), "NOPE".to_owned()];
            assert_eq!(
                refs("ivi", Some(&only)),
                [pair("B", "b-0"), pair("B", "b-1")]
            );
            assert_eq!(
                refs("tcu", Some(&only)),
                [pair("B", "b-2"), pair("C", "c-1")]
            );
            assert!(refs("ivi", Some(&[])).is_empty());
            assert!(refs("none", None).is_empty());
            // A VIN that looks like SQL or JSON is just a value.
            assert!(refs("ivi", Some(&["A' OR 1=1 --".to_owned(), "\"]".to_owned()])).is_empty());
        },
    );
}

#[test]
fn vehicles_missing_signed_metadata_are_listed_until_all_roles_are_stored() {
    for_each_backend(
        "vehicles_missing_signed_metadata_are_listed_until_all_roles_are_stored",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "V1");
            register(store, "V2");
            assert_eq!(store.vins_without_metadata().unwrap(), ["V1", "V2"]);
            let expires = SystemClock.now() + Duration::days(1);
            store
                .put_vehicle_metadata("V1", MetadataRole::Targets, 1, expires, b"t")
                .unwrap();
            // Targets alone (signing stopped half way) still needs healing.
            assert_eq!(store.vins_without_metadata().unwrap(), ["V1", "V2"]);
            for role in [MetadataRole::Snapshot, MetadataRole::Timestamp] {
                store
                    .put_vehicle_metadata("V1", role, 1, expires, b"x")
                    .unwrap();
            }
            assert_eq!(store.vins_without_metadata().unwrap(), ["V2"]);
        },
    );
}

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().unwrap()
    }
}

#[test]
fn an_admin_token_is_refused_from_its_expiry_on() {
    for_each_backend("an_admin_token_is_refused_from_its_expiry_on", |b| {
        let start = SystemClock.now();
        let clock = Arc::new(TestClock(std::sync::Mutex::new(start)));
        let opened = b.open_with_clock(clock.clone());
        let store = opened.as_ref();
        let expiry = start + Duration::days(90);
        let (_, token) = store
            .create_admin_token("dashboard", Scope::Read, Some(expiry))
            .unwrap();
        let (_, forever) = store.create_admin_token("ops", Scope::Write, None).unwrap();
        assert_eq!(store.check_admin_token(&token).unwrap(), Some(Scope::Read));
        *clock.0.lock().unwrap() = expiry - Duration::seconds(1);
        assert_eq!(store.check_admin_token(&token).unwrap(), Some(Scope::Read));
        *clock.0.lock().unwrap() = expiry;
        assert_eq!(store.check_admin_token(&token).unwrap(), None, "expired");
        assert_eq!(
            store.check_admin_token(&forever).unwrap(),
            Some(Scope::Write)
        );
        let listed = store.list_admin_tokens().unwrap();
        assert_eq!(
            listed[0].expires_at.map(|t| t.timestamp_millis()),
            Some(expiry.timestamp_millis())
        );
        let err = store
            .create_admin_token("late", Scope::Read, Some(expiry))
            .unwrap_err();
        assert!(matches!(err, Error::TokenExpiry { .. }), "{err}");
        assert!(
            err.to_string().contains("expected a time in the future"),
            "{err}"
        );
    });
}

#[test]
fn a_removed_vehicle_is_unknown_to_devices_and_keeps_its_history() {
    for_each_backend(
        "a_removed_vehicle_is_unknown_to_devices_and_keeps_its_history",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "GONE");
            register(store, "STAY");
            let token = store.issue_device_token("GONE").unwrap();
            assert!(store.verify_device_token("GONE", &token).unwrap());
            store
                .record_manifest(&both("GONE", "n1", "a", "b"))
                .unwrap();
            let id = assign(store, "GONE", "GONE-s", "fw-2.bin");

            let cancelled = store.remove_vehicle("GONE").unwrap();
            assert_eq!(cancelled, 1);
            assert!(!store.verify_device_token("GONE", &token).unwrap());
            assert!(
                store.ecu_keys("GONE").unwrap().is_none(),
                "devices see no vehicle"
            );
            assert_eq!(store.list_vins().unwrap(), vec!["STAY".to_owned()]);
            assert!(!store
                .vins_without_metadata()
                .unwrap()
                .contains(&"GONE".to_owned()));
            assert!(store
                .ecus_with_hardware_id("hw-GONE-s", None)
                .unwrap()
                .is_empty());
            // History stays readable.
            let vehicle = store.get_vehicle("GONE").unwrap().unwrap();
            assert!(vehicle.removed_at.is_some());
            assert_eq!(store.count_manifests("GONE", None).unwrap(), 1);
            let assignments = store.assignments("GONE").unwrap();
            assert_eq!(assignments[0].id, id);
            assert_eq!(assignments[0].detail, "vehicle removed");
            // Nothing new for it.
            for err in [
                store.issue_device_token("GONE").unwrap_err(),
                store.remove_vehicle("GONE").unwrap_err(),
                store
                    .add_assignments(
                        "GONE",
                        &[NewAssignment {
                            ecu_serial: "GONE-s".into(),
                            target_name: "fw-3.bin".into(),
                            target: target(b"fw-3.bin"),
                            campaign: None,
                        }],
                    )
                    .unwrap_err(),
            ] {
                assert!(matches!(err, Error::VehicleRemoved { .. }), "{err}");
            }
            assert!(store
                .record_manifest(&both("GONE", "n2", "a", "b"))
                .is_err());
            assert!(matches!(
                store.remove_vehicle("NEVER").unwrap_err(),
                Error::UnknownVehicle { .. }
            ));
        },
    );
}

#[test]
fn a_new_device_token_replaces_the_old_one_at_once() {
    for_each_backend("a_new_device_token_replaces_the_old_one_at_once", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        register(store, "VIN1");
        let old = store.issue_device_token("VIN1").unwrap();
        let new = store.issue_device_token("VIN1").unwrap();
        assert!(!store.verify_device_token("VIN1", &old).unwrap());
        assert!(store.verify_device_token("VIN1", &new).unwrap());
    });
}

#[test]
fn pruning_drops_old_manifests_but_never_an_ecus_latest_report() {
    for_each_backend(
        "pruning_drops_old_manifests_but_never_an_ecus_latest_report",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "VIN1");
            let now = SystemClock.now();
            let at = |days: i64, mut m: IncomingManifest| {
                m.received_at = now - Duration::days(days);
                store.record_manifest(&m).unwrap().id
            };
            let old = at(100, both("VIN1", "n1", "os-1", "app-1"));
            let refused = at(
                90,
                IncomingManifest::refused(
                    "VIN1",
                    now,
                    b"garbage",
                    None,
                    "manifest check failed",
                    &ferry_director::manifests::ManifestPolicy::DEFAULT,
                ),
            );
            // The latest report of both ECUs, though older than the cut-off.
            let latest = at(50, both("VIN1", "n2", "os-2", "app-2"));
            assert!(old < refused && refused < latest);
            let deleted = store.prune_manifests(now - Duration::days(30)).unwrap();
            assert_eq!(deleted, 2);
            let left: Vec<i64> = store
                .list_manifests("VIN1", 10)
                .unwrap()
                .iter()
                .map(|m| m.id)
                .collect();
            assert_eq!(left, vec![latest]);
            let v = store.get_vehicle("VIN1").unwrap().unwrap();
            assert!(v.ecus.iter().all(|e| e.reported.is_some()), "reports stay");
            // A newer report frees the older one for the next prune.
            at(0, both("VIN1", "n3", "os-3", "app-3"));
            assert_eq!(store.prune_manifests(now - Duration::days(30)).unwrap(), 1);
            assert_eq!(store.count_manifests("VIN1", None).unwrap(), 1);
        },
    );
}

#[test]
fn only_the_newest_refused_manifests_are_kept_and_only_an_excerpt_of_each() {
    for_each_backend(
        "only_the_newest_refused_manifests_are_kept_and_only_an_excerpt_of_each",
        |b| {
            let opened = b.open();
            let store = opened.as_ref();
            register(store, "VIN1");
            let policy = ferry_director::manifests::ManifestPolicy {
                refused_kept: 3,
                refused_excerpt_bytes: 10,
                ..ferry_director::manifests::ManifestPolicy::DEFAULT
            };
            store
                .record_manifest(&both("VIN1", "n1", "os-1", "app-1"))
                .unwrap();
            let long_reason = "r".repeat(5000);
            let mut ids = Vec::new();
            for i in 0..7 {
                let body = format!("refused body number {i}, longer than ten bytes");
                let m = IncomingManifest::refused(
                    "VIN1",
                    SystemClock.now(),
                    body.as_bytes(),
                    None,
                    &long_reason,
                    &policy,
                );
                assert_eq!(m.body_length, body.len() as u64);
                ids.push(store.record_manifest(&m).unwrap().id);
            }
            let kept = store.list_manifests("VIN1", 100).unwrap();
            let refused: Vec<_> = kept
                .iter()
                .filter(|m| m.verdict == Verdict::Refused)
                .collect();
            assert_eq!(
                refused.iter().map(|m| m.id).collect::<Vec<_>>(),
                vec![ids[6], ids[5], ids[4]]
            );
            assert_eq!(refused[0].body, b"refused bo");
            assert_eq!(refused[0].body_length, Some(44));
            assert_eq!(refused[0].body_sha256.as_deref().map(str::len), Some(64));
            assert!(
                refused[0].reason.chars().count() < 1100,
                "the reason is bounded"
            );
            assert_eq!(
                kept.iter()
                    .filter(|m| m.verdict == Verdict::Accepted)
                    .count(),
                1
            );
        },
    );
}

#[test]
fn relays_are_registered_verified_listed_and_revoked_on_both_backends() {
    for_each_backend("relays_are_registered_verified_listed_and_revoked", |b| {
        let opened = b.open();
        let store = opened.as_ref();
        let secret = store.add_relay("depot-7", None).unwrap();
        assert!(store.verify_relay_token("depot-7", &secret).unwrap());
        assert!(!store
            .verify_relay_token("depot-7", "not the token")
            .unwrap());
        assert!(!store.verify_relay_token("depot-8", &secret).unwrap());
        // The export MAC key: the secret's SHA-256, for an unrevoked relay only.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()).to_vec();
        assert_eq!(store.relay_secret_hash("depot-7").unwrap(), Some(digest));
        assert_eq!(store.relay_secret_hash("depot-8").unwrap(), None);
        let e = store.add_relay("depot-7", None).unwrap_err().to_string();
        assert!(e.contains("depot-7"), "{e}");
        assert!(store.add_relay("bad/name", None).is_err());
        // A relay on mutual TLS: the SHA-256 of its one certificate, checked by name.
        let (cert, other) = ([7u8; 32], [8u8; 32]);
        store.add_relay("ship-1", Some(&cert)).unwrap();
        assert!(store.verify_relay_cert("ship-1", &cert).unwrap());
        assert!(!store.verify_relay_cert("ship-1", &other).unwrap());
        assert!(!store.verify_relay_cert("depot-7", &cert).unwrap());
        assert!(!store.verify_relay_cert("depot-8", &cert).unwrap());
        let listed = store.list_relays().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].name, "depot-7");
        assert!(listed[0].revoked_at.is_none());
        assert_eq!(listed[0].cert_sha256, None);
        assert_eq!(listed[1].cert_sha256, Some(hex::encode(cert)));
        store.revoke_relay("ship-1").unwrap();
        assert!(!store.verify_relay_cert("ship-1", &cert).unwrap());
        // A relay's site: vehicles whose last relayed manifest came through it, unless one
        // came straight to the Director after.
        register(store, "VIN-R1");
        register(store, "VIN-R2");
        let now = SystemClock.now();
        store.record_relay_vehicle("VIN-R1", "ship-1", now).unwrap();
        store
            .record_relay_vehicle("VIN-R2", "depot-7", now)
            .unwrap();
        assert_eq!(store.relay_vehicles("ship-1").unwrap(), ["VIN-R1"]);
        store.record_relay_vehicle("VIN-R2", "ship-1", now).unwrap();
        assert_eq!(
            store.relay_vehicles("ship-1").unwrap(),
            ["VIN-R1", "VIN-R2"]
        );
        assert!(store.relay_vehicles("depot-7").unwrap().is_empty());
        let mut direct = both("VIN-R2", "direct-1", "os-1", "app-1");
        direct.received_at = now + Duration::seconds(5);
        store.record_manifest(&direct).unwrap();
        assert_eq!(store.relay_vehicles("ship-1").unwrap(), ["VIN-R1"]);
        store.revoke_relay("depot-7").unwrap();
        assert!(!store.verify_relay_token("depot-7", &secret).unwrap());
        assert_eq!(store.relay_secret_hash("depot-7").unwrap(), None);
        assert!(store.list_relays().unwrap()[0].revoked_at.is_some());
        assert!(store.revoke_relay("nobody").is_err());
    });
}
