//! A Secondary given a PURE-2 offline bundle by its Primary verifies it itself: a full ECU runs
//! the offline procedure (offline-update snapshot and targets from its Director root, the
//! Image repository without a timestamp, its own image matched), a partial ECU checks its entry
//! by the offline-update-targets key it pins, and one that pins none refuses.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::{app_custom, expires_in, image_target, key, now, repo_bundle, sign, Vehicle, HW};
use ferry_core::metadata::{MetaFile, OfflineSnapshot, OfflineTargets, RoleKeys, SPEC_VERSION};
use ferry_keys::PrivateKey;
use ferry_secondary::{Bundle, OfflineBundle, Repo, VerificationMode};
use std::collections::BTreeMap;

const APP: &str = "apps/nav-2.tar";
const CONTENT: &[u8] = b"navigation app, version 2";

/// A vehicle whose Director root (shipped with the ECU) has the offline-update roles, signed
/// by `offline`, and whose Image repository lists the app.
fn vehicle(mode: VerificationMode) -> (Vehicle, PrivateKey) {
    let mut v = Vehicle::new(mode);
    let offline = key();
    v.director
        .root
        .keys
        .insert(offline.key_id().clone(), offline.public_key().clone());
    for role in ["offline-update-snapshot", "offline-update-targets"] {
        v.director.root.roles.insert(
            role.into(),
            RoleKeys {
                keyids: vec![offline.key_id().clone()],
                threshold: 1,
                extra: BTreeMap::new(),
            },
        );
    }
    let dir = v.dir.path();
    std::fs::write(dir.join("director.root.json"), v.director.root_bytes()).unwrap();
    std::fs::write(
        dir.join("offline-targets.pub.json"),
        serde_json::to_vec(offline.public_key()).unwrap(),
    )
    .unwrap();
    v.config.offline_targets_key = Some(dir.join("offline-targets.pub.json"));
    v.image
        .targets
        .targets
        .insert(APP.into(), image_target(CONTENT, app_custom("nav", "2", 2)));
    common::publish(&mut v.image);
    (v, offline)
}

fn offline_bundle(
    v: &Vehicle,
    snapshot: (u64, u64),
    targets_version: u64,
    signer: &PrivateKey,
    offline: &PrivateKey,
) -> Vec<u8> {
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let mut target = common::tuf::target_file(CONTENT);
    // As PURE-2's sample: the Image repository's fields a partial ECU has nothing else for.
    target.custom = Some(
        serde_json::json!({ "hardwareIds": [HW], "releaseCounter": 2,
        "name": "nav", "version": "2" }),
    );
    let targets = OfflineTargets {
        type_: "offline-update-targets".into(),
        expires: expires_in(30),
        spec_version: SPEC_VERSION.into(),
        targets: [(APP.to_owned(), target)].into(),
        version: targets_version,
        extra: BTreeMap::new(),
    };
    let (snapshot_version, listed) = snapshot;
    let snapshot = OfflineSnapshot {
        type_: "offline-update-snapshot".into(),
        expires: expires_in(30),
        meta: [("workshop.json".to_owned(), MetaFile::new(listed))].into(),
        spec_version: SPEC_VERSION.into(),
        version: snapshot_version,
        extra: BTreeMap::new(),
    };
    let mut image = repo_bundle(&v.image, &[]);
    image.timestamp = None;
    serde_json::to_vec(&Bundle {
        director: ferry_secondary::RepoBundle::default(),
        image: Some(image),
        offline: Some(OfflineBundle {
            name: "workshop".into(),
            snapshot: text(sign(&snapshot, &[offline])),
            targets: text(sign(&targets, &[signer])),
        }),
    })
    .unwrap()
}

#[test]
fn a_full_ecu_runs_the_offline_procedure_itself() {
    let (v, offline) = vehicle(VerificationMode::Full);
    let mut ecu = v.ecu();
    // Signed with the Director's online targets key: refused, nothing kept.
    let forged = offline_bundle(&v, (1, 1), 1, &v.director.targets_key, &offline);
    let err = ecu.receive_metadata(&forged, now()).unwrap_err();
    assert!(err.to_string().contains("offline-update-targets"), "{err}");
    assert!(ecu
        .trusted_metadata(Repo::Director, "offline-update-snapshot")
        .unwrap()
        .is_none());

    let good = offline_bundle(&v, (1, 2), 2, &offline, &offline);
    let pending = ecu.receive_metadata(&good, now()).unwrap().unwrap();
    assert_eq!(pending.target_name(), APP);
    ecu.receive_image(&mut &CONTENT[..]).unwrap();
    ecu.install(now()).unwrap();
    assert_eq!(v.app_file("nav", "nav-2.tar").unwrap(), CONTENT);
    assert!(ecu
        .trusted_metadata(Repo::Director, "offline-update-snapshot")
        .unwrap()
        .is_some());

    // A newer offline snapshot listing an older targets file is a rollback.
    let older = offline_bundle(&v, (2, 1), 1, &offline, &offline);
    let err = ecu.receive_metadata(&older, now()).unwrap_err();
    assert!(err.to_string().contains("rollback check failed"), "{err}");
    // Expired at the ECU's time.
    let err = ecu
        .receive_metadata(&good, now() + Duration::days(31))
        .unwrap_err();
    assert!(err.to_string().contains("expiry check failed"), "{err}");
}

#[test]
fn a_full_ecu_matches_its_image_with_the_image_repository() {
    let (mut v, offline) = vehicle(VerificationMode::Full);
    // The Image repository signs other bytes under the name.
    v.image.targets.targets.insert(
        APP.into(),
        image_target(b"other bytes", app_custom("nav", "2", 2)),
    );
    common::publish(&mut v.image);
    let bundle = offline_bundle(&v, (1, 1), 1, &offline, &offline);
    let err = v.ecu().receive_metadata(&bundle, now()).unwrap_err();
    assert!(err.to_string().contains("image match"), "{err}");
}

#[test]
fn a_partial_ecu_checks_its_entry_by_the_pinned_offline_key_or_refuses() {
    let (v, offline) = vehicle(VerificationMode::Partial);
    let mut ecu = v.ecu();
    let forged = offline_bundle(&v, (1, 1), 1, &v.director.targets_key, &offline);
    let err = ecu.receive_metadata(&forged, now()).unwrap_err();
    assert!(
        err.to_string().contains("signature threshold check failed"),
        "{err}"
    );
    let good = offline_bundle(&v, (1, 2), 2, &offline, &offline);
    let pending = ecu.receive_metadata(&good, now()).unwrap().unwrap();
    assert_eq!(pending.target_name(), APP);
    ecu.receive_image(&mut &CONTENT[..]).unwrap();
    ecu.install(now()).unwrap();
    assert_eq!(v.app_file("nav", "nav-2.tar").unwrap(), CONTENT);
    // An older version of the same bundle, later: refused.
    let older = offline_bundle(&v, (1, 1), 1, &offline, &offline);
    let err = ecu.receive_metadata(&older, now()).unwrap_err();
    assert!(err.to_string().contains("rollback check failed"), "{err}");

    // A partial ECU that pins no offline-update key takes no offline bundle.
    let (mut v, offline) = vehicle(VerificationMode::Partial);
    v.config.offline_targets_key = None;
    let err = v
        .ecu()
        .receive_metadata(&offline_bundle(&v, (1, 1), 1, &offline, &offline), now())
        .unwrap_err();
    assert!(err.to_string().contains("offline_targets_key"), "{err}");
}
