//! Full verification end to end in the library: a good update installs an app and shows in the
//! signed report; each attack or unmet condition is refused with nothing installed and the
//! trusted state unchanged, and names its check in the report's attacks_detected.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::manifest::EcuVersionReport;
use ferry_core::manifest::InstallResult;
use ferry_core::metadata::Parsed;
use ferry_core::verify::{verify, Authority};
use ferry_secondary::Repo as R;
use ferry_secondary::{Ecu, Error, VerificationMode};
use serde_json::json;
use std::collections::BTreeMap;

const APP: &str = "apps/analytics-3.0.bin";
const CONTENT: &[u8] = b"#!/bin/sh\necho analytics 3.0\n";

fn vehicle_with_app() -> Vehicle {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut custom = app_custom("analytics", "3.0", 3);
    custom["depends"] = json!({ "rootfs-image.python.version": ["3.12", "3.13"] });
    v.offer(APP, CONTENT, custom);
    v
}

/// Everything a refusal must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    director_targets: Option<Vec<u8>>,
    image_targets: Option<Vec<u8>>,
    verified_time: Option<chrono::DateTime<chrono::Utc>>,
    installed: Option<ferry_secondary::InstalledImage>,
    provides: BTreeMap<String, String>,
}

fn snapshot(ecu: &Ecu) -> Snapshot {
    let status = ecu.status().unwrap();
    Snapshot {
        director_targets: ecu.trusted_metadata(R::Director, "targets").unwrap(),
        image_targets: ecu.trusted_metadata(R::Image, "targets").unwrap(),
        verified_time: ecu.verified_time().unwrap(),
        installed: status.installed,
        provides: status.provides,
    }
}

fn verified_report(ecu: &Ecu, nonce: &str) -> EcuVersionReport {
    let signed = ecu.report(nonce, now()).unwrap();
    let bytes = signed.to_bytes().unwrap();
    let key = ecu.info().public_key;
    let keyid = [key.key_id().unwrap()];
    let keys = BTreeMap::from([(keyid[0].clone(), key)]);
    let authority = Authority::new("ecu", &keyid, 1, &keys).unwrap();
    verify(
        Parsed::<EcuVersionReport>::from_bytes(&bytes).unwrap(),
        &[authority],
    )
    .unwrap()
    .into_inner()
}

#[test]
fn a_good_update_installs_the_app_and_is_reported() {
    let v = vehicle_with_app();
    let mut ecu = v.ecu();
    let pending = ecu.receive_metadata(&v.bundle(), now()).unwrap().unwrap();
    assert_eq!(pending.target_name(), APP);
    ecu.receive_image(&mut &CONTENT[..]).unwrap();
    let installed = ecu.install(now()).unwrap();
    let ferry_secondary::Installed::Done(installed) = installed else {
        panic!("an app needs no reboot: {installed:?}");
    };
    assert_eq!(installed.target, APP);
    assert_eq!(
        v.app_file("analytics", "analytics-3.0.bin").unwrap(),
        CONTENT
    );

    let provides = ecu.status().unwrap().provides;
    assert_eq!(provides["data-partition.analytics.version"], "3.0");
    assert_eq!(provides["rootfs-image.python.version"], "3.12");

    let report = verified_report(&ecu, "nonce-1");
    assert_eq!(report.nonce, "nonce-1");
    assert_eq!(report.ecu_serial, SERIAL);
    assert_eq!(report.installed_image.filepath, APP);
    assert_eq!(report.installed_image.fileinfo.hashes, hashes(CONTENT));
    assert_eq!(report.installed_image.fileinfo.length, CONTENT.len() as u64);
    assert_eq!(report.attacks_detected, "");
    assert_eq!(report.last_install.unwrap().result, InstallResult::Success);
    assert_eq!(report.provides, provides);

    // The same assignment again is nothing to do.
    let mut v = v;
    v.publish();
    assert!(ecu.receive_metadata(&v.bundle(), now()).unwrap().is_none());
    // Each transition was journaled before it ran.
    let steps: Vec<String> = ecu
        .journal_entries()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        steps,
        ["download", "install", "verify", "commit", "cleanup"]
    );
}

/// Send `v`'s bundle and expect a refusal naming `check`; nothing may change.
fn refused_metadata(v: &Vehicle, ecu: &mut Ecu, check: &str) -> Error {
    let before = snapshot(ecu);
    let err = ecu.receive_metadata(&v.bundle(), now()).unwrap_err();
    assert!(err.to_string().contains(check), "{err}");
    assert_eq!(snapshot(ecu), before, "state changed by a refused bundle");
    assert!(ecu.pending().is_none());
    assert!(
        matches!(ecu.receive_image(&mut &CONTENT[..]), Err(Error::Order(_))),
        "an image for a refused target must not be taken"
    );
    assert!(v.app_file("analytics", "analytics-3.0.bin").is_none());
    err
}

#[test]
fn a_director_hash_differing_from_the_image_repository_is_refused() {
    let mut v = vehicle_with_app();
    let t = v.director.targets.targets.get_mut(APP).unwrap();
    t.hashes.insert("sha256".into(), "0".repeat(64));
    let mut ecu = v.ecu();
    refused_metadata(&v, &mut ecu, "image match hash check failed");
    let report = verified_report(&ecu, "n");
    assert!(report
        .attacks_detected
        .contains("image match hash check failed"));
    assert!(report.installed_image.filepath.is_empty());
}

#[test]
fn a_wrong_hardware_id_is_refused() {
    let mut v = vehicle_with_app();
    v.director
        .targets
        .targets
        .insert(APP.into(), director_target(CONTENT, SERIAL, "tcu-m4"));
    let mut ecu = v.ecu();
    refused_metadata(&v, &mut ecu, "hardwareId check failed");
    // And an image built for other hardware, even if the Director says otherwise.
    let mut v = vehicle_with_app();
    v.image.targets.targets.get_mut(APP).unwrap().custom =
        Some(json!({ "hardwareIds": ["tcu-m4"], "domain": "app", "name": "analytics" }));
    let mut ecu = v.ecu();
    refused_metadata(&v, &mut ecu, "Image repository's hardwareIds");
}

#[test]
fn a_lower_release_counter_is_refused() {
    let mut v = Vehicle::new(VerificationMode::Full);
    v.offer(
        "apps/analytics-5.bin",
        b"five",
        app_custom("analytics", "5", 5),
    );
    let mut ecu = v.ecu();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &b"five"[..]).unwrap();
    ecu.install(now()).unwrap();
    // An older build of the same app under a new file name.
    v.offer(APP, CONTENT, app_custom("analytics", "3.0", 3));
    refused_metadata(&v, &mut ecu, "releaseCounter check failed");
    assert_eq!(v.app_file("analytics", "analytics-5.bin").unwrap(), b"five");
}

#[test]
fn a_target_the_image_repository_does_not_list_is_refused() {
    let mut v = vehicle_with_app();
    v.image.targets.targets.clear();
    let mut ecu = v.ecu();
    refused_metadata(&v, &mut ecu, "not listed by the Image repository");
}

#[test]
fn unmet_depends_are_refused_before_download_with_menders_words() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut custom = app_custom("analytics", "3.0", 3);
    custom["depends"] = json!({ "rootfs-image.cuda.version": "11.8" });
    v.offer(APP, CONTENT, custom);
    let mut ecu = v.ecu();
    let err = refused_metadata(
        &v,
        &mut ecu,
        "Missing 'rootfs-image.cuda.version' in provides",
    );
    assert!(err.to_string().contains("System not modified"), "{err}");
    let report = verified_report(&ecu, "n");
    assert_eq!(
        report.attacks_detected, "",
        "unmet depends are not an attack"
    );
    let last = report.last_install.unwrap();
    assert_eq!(last.result, InstallResult::Failure);
    assert!(last.detail.contains("System not modified"));
}

/// A verified target, then a bad image: refused, nothing staged or installed.
fn refused_image(image: &[u8], check: &str) {
    let v = vehicle_with_app();
    let mut ecu = v.ecu();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let before = snapshot(&ecu);
    let err = ecu.receive_image(&mut &image[..]).unwrap_err();
    assert!(err.to_string().contains(check), "{err}");
    assert!(!ecu.status().unwrap().image_ready);
    assert!(matches!(ecu.install(now()), Err(Error::Order(_))));
    assert_eq!(snapshot(&ecu), before);
    assert!(v.app_file("analytics", "analytics-3.0.bin").is_none());
    let staged: Vec<_> = std::fs::read_dir(v.config.staging_dir()).unwrap().collect();
    assert!(staged.is_empty(), "a refused image leaves nothing behind");
    assert!(verified_report(&ecu, "n").attacks_detected.contains(check));
}

#[test]
fn an_image_longer_than_signed_is_refused_as_endless_data() {
    let mut long = CONTENT.to_vec();
    long.extend(std::iter::repeat_n(b'x', 200_000));
    refused_image(&long, "endless data");
}

#[test]
fn an_altered_image_is_refused() {
    let mut altered = CONTENT.to_vec();
    altered[0] ^= 1;
    refused_image(&altered, "hash check failed");
    refused_image(&CONTENT[..CONTENT.len() - 1], "length check failed");
}

#[test]
fn a_refusal_names_the_repository_whose_metadata_failed() {
    for (repo, expected) in [
        ("director", "Director repository metadata: "),
        ("image", "Image repository metadata: "),
    ] {
        let mut v = vehicle_with_app();
        // The repository's timestamp, signed by a key its root does not list.
        let stranger = key();
        match repo {
            "director" => v.director.timestamp_key = stranger,
            _ => v.image.timestamp_key = stranger,
        }
        let mut ecu = v.ecu();
        let err = refused_metadata(&v, &mut ecu, "signature threshold check failed");
        assert!(err.to_string().starts_with(expected), "{repo}: {err}");
    }
}
