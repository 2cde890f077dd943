//! PURE-2 offline-update bundles on the vehicle (core): the Director's offline snapshot and
//! targets (steps 2-5) and the Image repository's metadata without a timestamp (steps 6-8),
//! each refusal naming its check.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::{expires_in, key, key_map, now, role_keys, sign, target_file, Repo};
use ferry_core::metadata::{MetaFile, OfflineSnapshot, OfflineTargets, Root, SPEC_VERSION};
use ferry_core::refresh::{Limits, MetadataFile, MetadataSource, Workflow};
use ferry_core::uptane::offline::{verify_offline_director, OFFLINE_SNAPSHOT};
use ferry_core::uptane::{EcuIdentity, Staged};
use ferry_core::Error;
use ferry_keys::PrivateKey;
use std::collections::BTreeMap;

#[derive(Debug)]
enum E {
    Core(Error),
    NotFound,
}
impl From<Error> for E {
    fn from(e: Error) -> E {
        E::Core(e)
    }
}

/// A bundle directory in memory (files by name) and what the vehicle kept.
#[derive(Default)]
struct Stick {
    files: BTreeMap<String, Vec<u8>>,
    kept: BTreeMap<String, Vec<u8>>,
}

impl MetadataSource for Stick {
    type Error = E;
    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>, E> {
        // A bundle names roots N.root.json and everything else ROLE.json (PURE-2 layout).
        let name = if file.role == "root" {
            file.file_name()
        } else {
            format!("{}.json", file.role)
        };
        let bytes = self.files.get(&name).cloned().ok_or(E::NotFound)?;
        assert!(bytes.len() as u64 <= max_len);
        Ok(bytes)
    }
    fn is_not_found(e: &E) -> bool {
        matches!(e, E::NotFound)
    }
    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>, E> {
        Ok(self.kept.get(role).cloned())
    }
    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), E> {
        self.kept.insert(role.into(), bytes.to_vec());
        Ok(())
    }
    fn remove(&mut self, role: &str) -> Result<(), E> {
        self.kept.remove(role);
        Ok(())
    }
}

struct Director {
    root_key: PrivateKey,
    online: PrivateKey,
    offline: PrivateKey,
    root: Root,
}

impl Director {
    fn new() -> Director {
        let (root_key, online, offline) = (key(), key(), key());
        let root = Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: expires_in(365),
            keys: key_map(&[&root_key, &online, &offline]),
            roles: [
                ("root", &root_key),
                ("targets", &online),
                ("snapshot", &online),
                ("timestamp", &online),
                ("offline-update-snapshot", &offline),
                ("offline-update-targets", &offline),
            ]
            .into_iter()
            .map(|(r, k)| (r.to_owned(), role_keys(&[k], 1)))
            .collect(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        Director {
            root_key,
            online,
            offline,
            root,
        }
    }
    fn root_bytes(&self) -> Vec<u8> {
        sign(&self.root, &[&self.root_key])
    }
}

fn snapshot(version: u64, bundles: &[(&str, u64)], days: i64) -> OfflineSnapshot {
    OfflineSnapshot {
        type_: "offline-update-snapshot".into(),
        expires: expires_in(days),
        meta: bundles
            .iter()
            .map(|(n, v)| (format!("{n}.json"), MetaFile::new(*v)))
            .collect(),
        spec_version: SPEC_VERSION.into(),
        version,
        extra: BTreeMap::new(),
    }
}

fn targets(version: u64, images: &[(&str, &[&str])], days: i64) -> OfflineTargets {
    OfflineTargets {
        type_: "offline-update-targets".into(),
        expires: expires_in(days),
        spec_version: SPEC_VERSION.into(),
        targets: images
            .iter()
            .map(|(name, hw)| {
                let mut file = target_file(name.as_bytes());
                file.custom = Some(serde_json::json!({ "hardwareIds": hw }));
                (name.to_string(), file)
            })
            .collect(),
        version,
        extra: BTreeMap::new(),
    }
}

const ECUS: [EcuIdentity<'static>; 3] = [
    EcuIdentity {
        serial: "ivi-1",
        hardware_id: "ivi",
    },
    EcuIdentity {
        serial: "tcu-1",
        hardware_id: "tcu",
    },
    EcuIdentity {
        serial: "brake-1",
        hardware_id: "brake",
    },
];

/// A stick for bundle "workshop" (v1) with the app for the IVI and firmware for the TCU.
fn stick(d: &Director) -> Stick {
    let mut s = Stick::default();
    s.files.insert("1.root.json".into(), d.root_bytes());
    s.files.insert(
        "offline-update-snapshot.json".into(),
        sign(&snapshot(1, &[("workshop", 1)], 30), &[&d.offline]),
    );
    s.files.insert(
        "workshop.json".into(),
        sign(
            &targets(
                1,
                &[("apps/app-2.tar", &["ivi"]), ("tcu/fw-3.bin", &["tcu"])],
                30,
            ),
            &[&d.offline],
        ),
    );
    s
}

fn verify(s: &mut Stick, d: &Director, days_later: i64) -> Result<Vec<(String, String)>, E> {
    let mut staged = Staged::new(s);
    let at = now() + Duration::days(days_later);
    let v = verify_offline_director(
        &mut staged,
        &d.root_bytes(),
        "workshop",
        &ECUS,
        &Limits::default(),
        at,
    )?;
    staged.commit()?;
    Ok(v.assignments
        .into_iter()
        .map(|a| (a.ecu_serial, a.target_name))
        .collect())
}

fn refused(r: Result<Vec<(String, String)>, E>) -> Error {
    match r {
        Err(E::Core(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_bundle_assigns_one_image_per_hardware_id_and_its_snapshot_is_kept() {
    let d = Director::new();
    let mut s = stick(&d);
    let got = verify(&mut s, &d, 0).unwrap();
    assert_eq!(
        got,
        [
            ("ivi-1".to_string(), "apps/app-2.tar".to_string()),
            ("tcu-1".into(), "tcu/fw-3.bin".into())
        ]
    );
    assert!(s.kept.contains_key(OFFLINE_SNAPSHOT));
}

#[test]
fn an_expired_bundle_is_refused_at_the_verified_time() {
    let d = Director::new();
    let err = refused(verify(&mut stick(&d), &d, 31));
    assert!(matches!(err, Error::Expired { .. }), "{err}");
    assert!(err.to_string().contains("offline-update-snapshot"), "{err}");
}

#[test]
fn a_bundle_signed_with_the_online_targets_key_is_refused() {
    let d = Director::new();
    let mut s = stick(&d);
    s.files.insert(
        "workshop.json".into(),
        sign(
            &targets(1, &[("apps/app-2.tar", &["ivi"])], 30),
            &[&d.online],
        ),
    );
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
    assert!(err.to_string().contains("offline-update-targets"), "{err}");
}

#[test]
fn two_images_for_one_hardware_id_are_refused() {
    let d = Director::new();
    let mut s = stick(&d);
    s.files.insert(
        "workshop.json".into(),
        sign(
            &targets(
                1,
                &[("tcu/fw-3.bin", &["tcu"]), ("tcu/fw-4.bin", &["tcu"])],
                30,
            ),
            &[&d.offline],
        ),
    );
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::OfflineHardwareTwice { .. }), "{err}");
}

#[test]
fn an_older_signed_targets_file_or_a_superseded_bundle_is_refused() {
    let d = Director::new();
    // The vehicle was online: its offline snapshot (v3) lists workshop v2.
    let mut s = stick(&d);
    s.kept.insert(
        OFFLINE_SNAPSHOT.into(),
        sign(&snapshot(3, &[("workshop", 2)], 30), &[&d.offline]),
    );
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::VersionMismatch { .. }), "{err}");
    // A newer snapshot on the stick that lists an older workshop than the kept one.
    s.files.insert(
        "offline-update-snapshot.json".into(),
        sign(&snapshot(4, &[("workshop", 1)], 30), &[&d.offline]),
    );
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::Rollback { .. }), "{err}");
    // Revoked: the kept snapshot no longer lists the bundle.
    let mut s = stick(&d);
    s.kept.insert(
        OFFLINE_SNAPSHOT.into(),
        sign(&snapshot(2, &[("other", 1)], 30), &[&d.offline]),
    );
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::NotInOfflineSnapshot { .. }), "{err}");
    assert!(!s.kept.contains_key("workshop"));
}

#[test]
fn a_director_root_without_offline_roles_takes_no_bundle() {
    let mut d = Director::new();
    d.root.roles.remove("offline-update-snapshot");
    d.root.roles.remove("offline-update-targets");
    let mut s = stick(&d);
    s.files.insert("1.root.json".into(), d.root_bytes());
    let err = refused(verify(&mut s, &d, 0));
    assert!(matches!(err, Error::OfflineRoles { .. }), "{err}");
    // One PURE-2 role alone is malformed.
    d.root.roles.insert(
        "offline-update-snapshot".into(),
        role_keys(&[&d.offline], 1),
    );
    let bytes = d.root_bytes();
    assert!(ferry_core::TrustedSet::new(&bytes, now()).is_err());
}

/// Steps 6-8: the Image repository's snapshot is used although expired (pure2.md 7.4), a
/// kept newer one wins, and targets must match its listing and be unexpired.
#[test]
fn the_image_repository_side_needs_no_timestamp_and_no_fresh_snapshot() {
    let mut repo = Repo::new();
    repo.targets
        .targets
        .insert("apps/app-2.tar".into(), target_file(b"apps/app-2.tar"));
    let mut s = Stick::default();
    s.files.insert("1.root.json".into(), repo.root_bytes());
    s.files
        .insert("snapshot.json".into(), repo.snapshot_bytes());
    s.files.insert("targets.json".into(), repo.targets_bytes());
    // A week past the snapshot's expiry: still accepted offline.
    let at = now() + Duration::days(14);
    let limits = Limits::default();
    let mut set = Workflow::new(&mut s, &limits)
        .refresh_offline(&repo.root_bytes(), at)
        .unwrap();
    let found = Workflow::new(&mut s, &limits)
        .find_target(&mut set, "apps/app-2.tar")
        .unwrap();
    assert!(found.is_some());
    // No timestamp is ever taken in this mode.
    assert!(set.update_timestamp(&repo.timestamp_bytes()).is_err());

    // Targets expired: refused (freeze).
    let late = now() + Duration::days(91);
    let err = Workflow::new(
        &mut Stick {
            kept: BTreeMap::new(),
            ..clone_files(&s)
        },
        &limits,
    )
    .refresh_offline(&repo.root_bytes(), late)
    .unwrap_err();
    assert!(matches!(err, E::Core(Error::Expired { .. })), "{err:?}");

    // The vehicle kept snapshot v2 (listing targets v2): the stick's v1 is not used, and the
    // stick's targets v1 does not match it.
    let mut newer = repo.snapshot.clone();
    newer.version = 2;
    newer.meta.insert("targets.json".into(), MetaFile::new(2));
    let mut s2 = clone_files(&s);
    s2.kept
        .insert("snapshot".into(), sign(&newer, &[&repo.snapshot_key]));
    let err = Workflow::new(&mut s2, &limits)
        .refresh_offline(&repo.root_bytes(), at)
        .unwrap_err();
    assert!(
        matches!(err, E::Core(Error::VersionMismatch { .. })),
        "{err:?}"
    );
}

fn clone_files(s: &Stick) -> Stick {
    Stick {
        files: s.files.clone(),
        kept: BTreeMap::new(),
    }
}

#[test]
fn a_bundle_name_that_could_be_another_metadata_file_is_refused() {
    use ferry_core::uptane::offline::check_bundle_name;
    for good in ["workshop", "EMEA-standard", "fleet_2.1"] {
        check_bundle_name(good).unwrap();
    }
    for bad in [
        "",
        "root",
        "snapshot",
        "targets",
        "timestamp",
        "offline-update-snapshot",
        "3.root",
        "../x",
        "a/b",
        ".hidden",
        "sp ace",
    ] {
        let err = check_bundle_name(bad).unwrap_err();
        assert!(
            matches!(err, Error::OfflineBundleName { .. }),
            "{bad}: {err}"
        );
    }
    let d = Director::new();
    let mut s = stick(&d);
    let mut staged = Staged::new(&mut s);
    let err = verify_offline_director(
        &mut staged,
        &d.root_bytes(),
        "snapshot",
        &ECUS,
        &Limits::default(),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, E::Core(Error::OfflineBundleName { .. })),
        "{err:?}"
    );
}

/// A partial-verification ECU checks only the targets file, by the pinned offline key.
#[test]
fn a_partial_ecu_checks_its_entry_by_the_pinned_offline_targets_key() {
    use ferry_core::uptane::offline::verify_offline_partial;
    let d = Director::new();
    let tcu = ECUS[1];
    let counters = BTreeMap::new();
    let offline_key = d.offline.public_key().clone();
    let signed = |t: &OfflineTargets, k: &PrivateKey| sign(t, &[k]);
    let two = targets(
        2,
        &[("apps/app-2.tar", &["ivi"]), ("tcu/fw-3.bin", &["tcu"])],
        30,
    );
    let bytes = signed(&two, &d.offline);
    let got = verify_offline_partial(
        &bytes,
        "workshop",
        &offline_key,
        None,
        tcu,
        &counters,
        now(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(got.target_name, "tcu/fw-3.bin");
    assert_eq!(got.custom.hardware_ids, ["tcu"]);
    // Nothing for a hardwareId the bundle does not name.
    let brake = ECUS[2];
    assert!(verify_offline_partial(
        &bytes,
        "workshop",
        &offline_key,
        None,
        brake,
        &counters,
        now()
    )
    .unwrap()
    .is_none());
    // Signed with the online targets key: refused by the pinned key.
    let err = verify_offline_partial(
        &signed(&two, &d.online),
        "workshop",
        &offline_key,
        None,
        tcu,
        &counters,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
    // Older than the copy accepted before.
    let one = signed(&targets(1, &[("tcu/fw-3.bin", &["tcu"])], 30), &d.offline);
    let err = verify_offline_partial(
        &one,
        "workshop",
        &offline_key,
        Some(&bytes),
        tcu,
        &counters,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Rollback { .. }), "{err}");
    // Expired at the verified time.
    let err = verify_offline_partial(
        &bytes,
        "workshop",
        &offline_key,
        None,
        tcu,
        &counters,
        now() + Duration::days(31),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err}");
    // Two images for its hardwareId.
    let twice = signed(
        &targets(
            3,
            &[("tcu/fw-3.bin", &["tcu"]), ("tcu/fw-4.bin", &["tcu"])],
            30,
        ),
        &d.offline,
    );
    let err = verify_offline_partial(
        &twice,
        "workshop",
        &offline_key,
        None,
        tcu,
        &counters,
        now(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::OfflineHardwareTwice { .. }), "{err}");
}

/// pure2.md "Additional step": the offline snapshot fetched in an online cycle.
#[test]
fn an_online_cycle_keeps_a_newer_offline_snapshot_and_refuses_a_rollback() {
    use ferry_core::uptane::offline::{check_fetched_offline_snapshot, FetchedOfflineSnapshot};
    let d = Director::new();
    let kept = sign(&snapshot(3, &[("workshop", 2)], 30), &[&d.offline]);
    let check = |offered: &[u8]| check_fetched_offline_snapshot(&d.root, Some(&kept), offered);
    let newer = sign(&snapshot(4, &[("workshop", 3)], 30), &[&d.offline]);
    assert!(matches!(
        check(&newer).unwrap(),
        FetchedOfflineSnapshot::Newer(s) if s.version == 4
    ));
    // Nothing kept yet: taken.
    assert!(matches!(
        check_fetched_offline_snapshot(&d.root, None, &newer).unwrap(),
        FetchedOfflineSnapshot::Newer(_)
    ));
    assert!(matches!(
        check(&kept).unwrap(),
        FetchedOfflineSnapshot::Unchanged
    ));
    // Even expired, a newer one revokes what it no longer lists: kept.
    let expired = sign(&snapshot(5, &[], -1), &[&d.offline]);
    assert!(matches!(
        check(&expired).unwrap(),
        FetchedOfflineSnapshot::Newer(_)
    ));
    // Not signed by the offline-update-snapshot role: discarded, the cycle goes on.
    let forged = sign(&snapshot(6, &[("workshop", 9)], 30), &[&d.online]);
    assert!(matches!(
        check(&forged).unwrap(),
        FetchedOfflineSnapshot::Discarded(Error::Threshold { .. })
    ));
    assert!(matches!(
        check(b"{").unwrap(),
        FetchedOfflineSnapshot::Discarded(_)
    ));
    // Rollbacks abort the cycle: an older snapshot, or an older targets file.
    let older = sign(&snapshot(2, &[("workshop", 2)], 30), &[&d.offline]);
    assert!(matches!(check(&older), Err(Error::Rollback { .. })));
    let lower = sign(&snapshot(7, &[("workshop", 1)], 30), &[&d.offline]);
    assert!(matches!(check(&lower), Err(Error::Rollback { .. })));
    // A Director root without offline roles: nothing to check.
    let mut plain = Director::new();
    plain.root.roles.remove("offline-update-snapshot");
    plain.root.roles.remove("offline-update-targets");
    assert!(matches!(
        check_fetched_offline_snapshot(&plain.root, None, &newer).unwrap(),
        FetchedOfflineSnapshot::Discarded(Error::OfflineRoles { .. })
    ));
}

/// Step 9 for every image of the bundle, whichever ECU it is for.
#[test]
fn every_image_of_the_bundle_must_match_the_image_repository() {
    use ferry_core::uptane::offline::match_offline_image;
    use ferry_core::FoundTarget;
    let t = targets(1, &[("tcu/fw-3.bin", &["tcu"])], 30);
    let mut image = target_file(b"tcu/fw-3.bin");
    image.custom = Some(serde_json::json!({ "hardwareIds": ["tcu", "tcu2"] }));
    let found = FoundTarget {
        role: "targets".into(),
        target: image.clone(),
    };
    match_offline_image(&t, "tcu/fw-3.bin", Some(&found)).unwrap();
    let err = match_offline_image(&t, "tcu/fw-3.bin", None).unwrap_err();
    assert!(matches!(err, Error::NotInImageRepo { .. }), "{err}");
    let mut other = found.clone();
    other.target = target_file(b"other bytes, same name");
    other.target.custom = image.custom.clone();
    let err = match_offline_image(&t, "tcu/fw-3.bin", Some(&other)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DirectorImageLength { .. } | Error::DirectorImageHash { .. }
        ),
        "{err}"
    );
    let mut elsewhere = found.clone();
    elsewhere.target.custom = Some(serde_json::json!({ "hardwareIds": ["ivi"] }));
    let err = match_offline_image(&t, "tcu/fw-3.bin", Some(&elsewhere)).unwrap_err();
    assert!(matches!(err, Error::HardwareId { .. }), "{err}");
}
