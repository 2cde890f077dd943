//! Director-vs-Image checks: one test per refusal, each naming the check in its message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::metadata::{hashes_of, Delegations, TargetFile, Targets};
use ferry_core::uptane::{director_assignments, match_image_target, VehicleEcus};
use ferry_core::{Error, FoundTarget};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const IMAGE: &[u8] = b"analytics engine 3.0";
const NAME: &str = "apps/analytics-3.0.bin";

fn director_target(ecus: &[(&str, &str)]) -> TargetFile {
    let ids: BTreeMap<_, _> = ecus
        .iter()
        .map(|(s, h)| (s.to_string(), json!({ "hardwareId": h })))
        .collect();
    let mut t = target_file(IMAGE);
    t.custom = Some(json!({ "ecuIdentifiers": ids }));
    t
}

fn image_target(release_counter: u64) -> FoundTarget {
    let mut t = target_file(IMAGE);
    t.custom = Some(
        json!({ "hardwareIds": ["ivi-a53"], "releaseCounter": release_counter,
        "domain": "app", "name": "analytics", "version": "3.0" }),
    );
    FoundTarget {
        role: "targets".into(),
        target: t,
    }
}

fn director(targets: &[(&str, TargetFile)]) -> Targets {
    let mut repo = Repo::new();
    for (name, t) in targets {
        repo.targets.targets.insert(name.to_string(), t.clone());
    }
    repo.targets
}

fn vehicle() -> BTreeSet<String> {
    ["ivi-1".to_string(), "tcu-1".to_string()].into()
}

#[test]
fn a_matching_target_passes_and_keeps_every_hash() {
    let d = director(&[(NAME, director_target(&[("ivi-1", "ivi-a53")]))]);
    let known = vehicle();
    let assignments = director_assignments(&d, VehicleEcus::Known(&known)).unwrap();
    let a = &assignments["ivi-1"];
    assert_eq!(a.target_name, NAME);
    let matched = match_image_target(a, &image_target(7), "ivi-a53", 7).unwrap();
    assert_eq!(matched.target.hashes, hashes_of(IMAGE));
    assert_eq!(matched.custom.release_counter, 7);
    // A Director listing only one of the Image repository's hashes is fine.
    let mut one = a.clone();
    one.target.hashes.remove("sha512");
    let matched = match_image_target(&one, &image_target(7), "ivi-a53", 0).unwrap();
    assert_eq!(
        matched.target.hashes.len(),
        2,
        "the Image's sha512 is still checked"
    );
}

#[test]
fn director_targets_that_delegate_are_refused() {
    let mut d = director(&[]);
    let k = key();
    d.delegations = Some(Delegations {
        keys: key_map(&[&k]),
        roles: Some(vec![delegated_role("evil", &[&k], &["*"], false)]),
        succinct_roles: None,
        extra: BTreeMap::new(),
    });
    let err = director_assignments(&d, VehicleEcus::Unknown).unwrap_err();
    assert!(matches!(err, Error::DirectorDelegates { .. }), "{err}");
    assert!(err.to_string().contains("never delegate"), "{err}");
    // An empty delegations object delegates nothing.
    d.delegations.as_mut().unwrap().roles = Some(Vec::new());
    assert!(director_assignments(&d, VehicleEcus::Unknown).is_ok());
}

#[test]
fn an_ecu_named_by_two_targets_is_refused() {
    let d = director(&[
        ("a.bin", director_target(&[("ivi-1", "ivi-a53")])),
        ("b.bin", director_target(&[("ivi-1", "ivi-a53")])),
    ]);
    let err = director_assignments(&d, VehicleEcus::Unknown).unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateEcu { serial, .. } if serial == "ivi-1"),
        "{err}"
    );
}

#[test]
fn an_ecu_outside_the_vehicle_is_refused_when_the_vehicle_is_known() {
    let d = director(&[(NAME, director_target(&[("stranger-9", "ivi-a53")]))]);
    let known = vehicle();
    let err = director_assignments(&d, VehicleEcus::Known(&known)).unwrap_err();
    assert!(matches!(err, Error::EcuNotInVehicle { .. }), "{err}");
    assert!(err.to_string().contains("not part of this vehicle"));
    // A secondary knows only itself: it cannot make this check.
    assert!(director_assignments(&d, VehicleEcus::Unknown).is_ok());
}

fn assignment() -> ferry_core::uptane::EcuAssignment {
    let d = director(&[(NAME, director_target(&[("ivi-1", "ivi-a53")]))]);
    director_assignments(&d, VehicleEcus::Unknown).unwrap()["ivi-1"].clone()
}

#[test]
fn a_director_hash_differing_from_the_image_repository_is_refused() {
    let mut a = assignment();
    a.target.hashes.insert("sha256".into(), "ab".repeat(32));
    let err = match_image_target(&a, &image_target(1), "ivi-a53", 0).unwrap_err();
    assert!(
        matches!(&err, Error::DirectorImageHash { algorithm, .. } if algorithm == "sha256"),
        "{err}"
    );
    // A hash only the Director lists cannot be vouched for by the Image repository.
    let mut image = image_target(1);
    image.target.hashes.remove("sha512");
    let err = match_image_target(&assignment(), &image, "ivi-a53", 0).unwrap_err();
    assert!(err.to_string().contains("(not listed)"), "{err}");
    // No hashes at all is refused.
    let mut a = assignment();
    a.target.hashes.clear();
    let err = match_image_target(&a, &image_target(1), "ivi-a53", 0).unwrap_err();
    assert!(matches!(err, Error::NoHashes { .. }), "{err}");
}

#[test]
fn a_different_length_is_refused() {
    let mut a = assignment();
    a.target.length += 1;
    let err = match_image_target(&a, &image_target(1), "ivi-a53", 0).unwrap_err();
    assert!(matches!(err, Error::DirectorImageLength { .. }), "{err}");
}

#[test]
fn a_wrong_hardware_id_is_refused_on_either_side() {
    // The ECU is not what the Director thinks it is.
    let err = match_image_target(&assignment(), &image_target(1), "tcu-m4", 0).unwrap_err();
    assert!(
        err.to_string().contains("in the Director's ecuIdentifiers"),
        "{err}"
    );
    // The Director names the right hardware, but the image is not built for it.
    let mut image = image_target(1);
    image.target.custom = Some(json!({ "hardwareIds": ["tcu-m4"], "releaseCounter": 1 }));
    let err = match_image_target(&assignment(), &image, "ivi-a53", 0).unwrap_err();
    assert!(matches!(err, Error::HardwareId { .. }), "{err}");
    assert!(err.to_string().contains("Image repository's hardwareIds"));
}

#[test]
fn a_lower_release_counter_is_refused() {
    let err = match_image_target(&assignment(), &image_target(4), "ivi-a53", 5).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReleaseCounter {
                installed: 5,
                offered: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(match_image_target(&assignment(), &image_target(5), "ivi-a53", 5).is_ok());
}
