//! Director metadata is bound to its vehicle (DESIGN.md "Vehicle binding"): another vehicle's
//! metadata, genuinely signed by the fleet's Director keys and with higher versions, is refused
//! by the VIN check and changes nothing the ECU keeps; so is a set whose parts do not belong
//! together. The vehicle's own next metadata is then accepted as usual.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_secondary::verify::PARTIAL_ROLE;
use ferry_secondary::Repo as R;
use ferry_secondary::VerificationMode;
use serde_json::json;

const APP: &str = "apps/nav-2.bin";
const CONTENT: &[u8] = b"nav 2";
const OTHER_VIN: &str = "WVW-SOMEONE-ELSE";

/// Every Director role the ECU keeps, as bytes.
fn kept(ecu: &ferry_secondary::Ecu) -> Vec<Option<Vec<u8>>> {
    ["timestamp", "snapshot", "targets", PARTIAL_ROLE]
        .iter()
        .map(|role| ecu.trusted_metadata(R::Director, role).unwrap())
        .collect()
}

/// Another vehicle's Director metadata: same keys, `bumps` versions ahead, naming `OTHER_VIN`.
/// `v.director` is left as it was.
fn foreign_bundle(v: &mut Vehicle, bumps: usize) -> Vec<u8> {
    let saved = (
        v.director.timestamp.clone(),
        v.director.snapshot.clone(),
        v.director.targets.clone(),
    );
    v.director
        .targets
        .extra
        .insert("custom".into(), json!({ "vin": OTHER_VIN }));
    for _ in 0..bumps {
        publish(&mut v.director);
    }
    let bundle = v.bundle();
    (
        v.director.timestamp,
        v.director.snapshot,
        v.director.targets,
    ) = saved;
    bundle
}

fn refused_by_the_vin_check(mode: VerificationMode) {
    let mut v = Vehicle::new(mode);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let mut ecu = v.ecu();
    assert_eq!(
        ecu.receive_metadata(&v.bundle(), now())
            .unwrap()
            .unwrap()
            .target_name(),
        APP
    );
    let before = kept(&ecu);

    let err = ecu
        .receive_metadata(&foreign_bundle(&mut v, 5), now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("vehicle binding check failed"), "{err}");
    assert!(err.contains(OTHER_VIN) && err.contains(VIN), "{err}");
    assert_eq!(kept(&ecu), before, "a refused set must change nothing kept");
    assert!(ecu
        .status()
        .unwrap()
        .attacks_detected
        .contains("vehicle binding"));

    // The vehicle's own next metadata (versions below the foreign ones) is accepted.
    v.publish();
    let pending = ecu.receive_metadata(&v.bundle(), now()).unwrap();
    assert_eq!(pending.unwrap().target_name(), APP);
    assert_ne!(kept(&ecu), before);
}

#[test]
fn another_vehicles_metadata_is_refused_in_full_verification() {
    refused_by_the_vin_check(VerificationMode::Full);
}

#[test]
fn another_vehicles_targets_are_refused_in_partial_verification() {
    refused_by_the_vin_check(VerificationMode::Partial);
}

#[test]
fn a_set_whose_snapshot_is_not_this_vehicles_is_refused_and_nothing_is_kept() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(APP, CONTENT, app_custom("nav", "2", 1));
    let mut ecu = v.ecu();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let before = kept(&ecu);

    // Timestamp and snapshot of another vehicle (genuine, newer), this vehicle's own targets.
    let foreign: serde_json::Value = serde_json::from_slice(&foreign_bundle(&mut v, 5)).unwrap();
    v.publish();
    let mut mixed: serde_json::Value = serde_json::from_slice(&v.bundle()).unwrap();
    mixed["director"]["timestamp"] = foreign["director"]["timestamp"].clone();
    mixed["director"]["snapshot"] = foreign["director"]["snapshot"].clone();
    let err = ecu
        .receive_metadata(&serde_json::to_vec(&mixed).unwrap(), now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("check failed"), "{err}");
    assert_eq!(
        kept(&ecu),
        before,
        "not even the newer timestamp may be kept"
    );

    // The genuine set of the same cycle is accepted.
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    assert_ne!(kept(&ecu), before);
}
