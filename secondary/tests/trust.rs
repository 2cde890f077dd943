//! What the ECU trusts over time: root rotations followed, verified time that never goes
//! backwards, delegations resolved on demand, and partial verification by a pinned key.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::*;
use ferry_core::metadata::Root;
use ferry_secondary::verify::{Bundle, RepoBundle};
use ferry_secondary::Repo as R;
use ferry_secondary::VerificationMode;
use serde_json::json;

const APP: &str = "apps/nav-2.bin";
const CONTENT: &[u8] = b"nav 2";

fn trusted_root_version(ecu: &ferry_secondary::Ecu, repo: R) -> u64 {
    let bytes = ecu.trusted_root(repo).unwrap().unwrap();
    let doc: ferry_core::metadata::Signed<Root> = serde_json::from_slice(&bytes).unwrap();
    doc.signed.version
}

/// Director root v2: a new root key and a new timestamp key. Signed by the old root key too
/// when `cross_signed`.
fn rotate_director_root(v: &mut Vehicle, cross_signed: bool) {
    let new_root = key();
    let new_timestamp = key();
    let d = &mut v.director;
    for k in [&new_root, &new_timestamp] {
        d.root
            .keys
            .insert(k.key_id().clone(), k.public_key().clone());
    }
    d.root.roles.get_mut("root").unwrap().keyids = vec![new_root.key_id().clone()];
    d.root.roles.get_mut("timestamp").unwrap().keyids = vec![new_timestamp.key_id().clone()];
    d.root.version = 2;
    if !cross_signed {
        d.root_keys.clear();
    }
    d.root_keys.push(new_root);
    v.director_roots.push(v.director.root_bytes());
    v.director
        .root_keys
        .retain(|k| v.director.root.roles["root"].keyids.contains(k.key_id()));
    v.director.timestamp_key = new_timestamp;
}

#[test]
fn root_rotations_are_followed() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let mut ecu = v.ecu();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    assert_eq!(trusted_root_version(&ecu, R::Director), 1);

    rotate_director_root(&mut v, true);
    v.publish();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    assert_eq!(trusted_root_version(&ecu, R::Director), 2);

    // From now on the old root is gone: a later bundle need not carry v2 again.
    v.director_roots.clear();
    v.publish();
    let ecu2 = {
        drop(ecu);
        let mut ecu = v.ecu();
        ecu.receive_metadata(&v.bundle(), now()).unwrap();
        ecu
    };
    assert_eq!(trusted_root_version(&ecu2, R::Director), 2);
}

#[test]
fn a_root_not_signed_by_the_trusted_root_is_refused() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    rotate_director_root(&mut v, false);
    let mut ecu = v.ecu();
    let err = ecu.receive_metadata(&v.bundle(), now()).unwrap_err();
    assert!(
        err.to_string()
            .contains("signature threshold check failed: root"),
        "{err}"
    );
    assert!(ecu.trusted_root(R::Director).unwrap().is_none());
    assert!(ecu.verified_time().unwrap().is_none());
}

#[test]
fn verified_time_never_goes_backwards() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.director.timestamp.expires = expires_in(7);
    v.image.timestamp.expires = expires_in(7);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let mut ecu = v.ecu();
    let later = now() + Duration::days(2);
    ecu.receive_metadata(&v.bundle(), later).unwrap();
    assert_eq!(ecu.verified_time().unwrap(), Some(later));

    // Valid at the clock's `now`, expired at the time already verified: refused.
    v.director.timestamp.expires = expires_in(1);
    v.publish();
    let err = ecu.receive_metadata(&v.bundle(), now()).unwrap_err();
    assert!(
        err.to_string().contains("expiry check failed: timestamp"),
        "{err}"
    );
    assert_eq!(ecu.verified_time().unwrap(), Some(later));
}

#[test]
fn image_targets_are_found_through_their_delegation_path() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.image.delegate("apps", &["apps/*"], false);
    v.image.delegate("unrelated", &["os/*"], false);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    // Move the target from top-level targets into the delegated role.
    let t = v.image.targets.targets.remove(APP).unwrap();
    v.image
        .delegated
        .get_mut("apps")
        .unwrap()
        .0
        .targets
        .insert(APP.into(), t);
    v.publish();
    let mut bundle: Bundle = serde_json::from_slice(&v.bundle()).unwrap();
    // Only the roles on the target's path are needed.
    bundle
        .image
        .as_mut()
        .unwrap()
        .delegations
        .remove("unrelated");
    let mut ecu = v.ecu();
    let bytes = serde_json::to_vec(&bundle).unwrap();
    assert_eq!(
        ecu.receive_metadata(&bytes, now())
            .unwrap()
            .unwrap()
            .target_name(),
        APP
    );
    assert!(ecu.trusted_metadata(R::Image, "apps").unwrap().is_some());
    assert!(ecu
        .trusted_metadata(R::Image, "unrelated")
        .unwrap()
        .is_none());
}

fn partial_bundle(v: &Vehicle) -> Vec<u8> {
    serde_json::to_vec(&Bundle {
        director: RepoBundle {
            targets: String::from_utf8(v.director.targets_bytes()).unwrap(),
            ..RepoBundle::default()
        },
        image: None,
        offline: None,
    })
    .unwrap()
}

#[test]
fn partial_verification_accepts_the_pinned_key_and_refuses_another() {
    let mut v = Vehicle::new(VerificationMode::Partial);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let mut ecu = v.ecu();
    let pending = ecu
        .receive_metadata(&partial_bundle(&v), now())
        .unwrap()
        .unwrap();
    assert_eq!(pending.target_name(), APP);
    ecu.receive_image(&mut &CONTENT[..]).unwrap();
    ecu.install(now()).unwrap();
    assert_eq!(v.app_file("nav-2", "nav-2.bin").unwrap(), CONTENT);
    assert_eq!(ecu.info().verification, "partial");

    // Signed by a key that is not the pinned one.
    v.director.targets_key = key();
    v.publish();
    let before = ecu
        .trusted_metadata(R::Director, "targets (partial)")
        .unwrap();
    let err = ecu
        .receive_metadata(&partial_bundle(&v), now())
        .unwrap_err();
    assert!(
        err.to_string().contains("signature threshold check failed"),
        "{err}"
    );
    assert_eq!(
        ecu.trusted_metadata(R::Director, "targets (partial)")
            .unwrap(),
        before
    );
}

#[test]
fn partial_verification_checks_hardware_id_release_counter_and_version() {
    let mut v = Vehicle::new(VerificationMode::Partial);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let t = v.director.targets.targets.get_mut(APP).unwrap();
    t.custom = Some(json!({ "ecuIdentifiers": { SERIAL: { "hardwareId": "tcu-m4" } } }));
    let mut ecu = v.ecu();
    let err = ecu
        .receive_metadata(&partial_bundle(&v), now())
        .unwrap_err();
    assert!(err.to_string().contains("hardwareId check failed"), "{err}");

    // A release counter the Director carries is checked against the installed one.
    let t = v.director.targets.targets.get_mut(APP).unwrap();
    t.custom = Some(json!({ "ecuIdentifiers": { SERIAL: { "hardwareId": HW } },
        "releaseCounter": 4, "name": "nav" }));
    v.director.targets.version = 10;
    ecu.receive_metadata(&partial_bundle(&v), now()).unwrap();
    ecu.receive_image(&mut &CONTENT[..]).unwrap();
    ecu.install(now()).unwrap();
    let t = v.director.targets.targets.get_mut(APP).unwrap();
    t.custom.as_mut().unwrap()["releaseCounter"] = json!(3);
    v.director.targets.version = 11;
    let err = ecu
        .receive_metadata(&partial_bundle(&v), now())
        .unwrap_err();
    assert!(
        err.to_string().contains("releaseCounter check failed"),
        "{err}"
    );

    // An older Director targets version is a rollback.
    v.director.targets.version = 9;
    let err = ecu
        .receive_metadata(&partial_bundle(&v), now())
        .unwrap_err();
    assert!(err.to_string().contains("rollback check failed"), "{err}");
}
