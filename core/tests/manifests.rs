//! Vehicle manifest checks (Uptane §5.3.2.1): each refusal names its check.
#![allow(clippy::unwrap_used)]

mod common;

use common::{expires_in, key};
use ferry_core::manifest::{
    check_vehicle_manifest, EcuVersionReport, FileInfo, InstalledImage, RegisteredVehicle,
    VehicleManifest,
};
use ferry_core::metadata::{hashes_of, Signed};
use ferry_core::Error;
use ferry_keys::{IdentifiedKey, PrivateKey, Signer};
use std::collections::BTreeMap;

struct Vehicle {
    primary: PrivateKey,
    secondary: PrivateKey,
    registered: RegisteredVehicle,
}

fn identified(key: &PrivateKey) -> IdentifiedKey {
    IdentifiedKey::new(key.public_key().clone()).unwrap()
}

fn vehicle() -> Vehicle {
    let (primary, secondary) = (key(), key());
    let registered = RegisteredVehicle {
        vin: "VIN123".into(),
        primary_ecu_serial: "pri".into(),
        ecu_keys: [
            ("pri".to_string(), identified(&primary)),
            ("sec".to_string(), identified(&secondary)),
        ]
        .into(),
    };
    Vehicle {
        primary,
        secondary,
        registered,
    }
}

fn report(serial: &str, nonce: &str, signer: &PrivateKey) -> Signed<EcuVersionReport> {
    let mut r = Signed::new(EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.into(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(b"fw"),
                length: 2,
                extra: BTreeMap::new(),
            },
            filepath: "fw.bin".into(),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.into(),
        provides: [("rootfs-image.version".to_string(), "1.0".to_string())].into(),
        time: expires_in(0),
        extra: BTreeMap::new(),
    });
    r.sign(signer as &dyn Signer).unwrap();
    r
}

fn manifest(vin: &str, reports: &[Signed<EcuVersionReport>], signer: &PrivateKey) -> Vec<u8> {
    let mut m = Signed::new(VehicleManifest::new(vin, "pri", reports).unwrap());
    m.sign(signer as &dyn Signer).unwrap();
    m.to_bytes().unwrap()
}

#[test]
fn a_well_formed_manifest_is_accepted() {
    let v = vehicle();
    let bytes = manifest(
        "VIN123",
        &[
            report("pri", "n1", &v.primary),
            report("sec", "n1", &v.secondary),
        ],
        &v.primary,
    );
    let checked = check_vehicle_manifest(&bytes, &v.registered).unwrap();
    assert_eq!(checked.nonce, "n1");
    assert_eq!(
        checked.reports["sec"].provides["rootfs-image.version"],
        "1.0"
    );
}

#[test]
fn each_broken_rule_is_refused() {
    let v = vehicle();
    let good = || {
        vec![
            report("pri", "n1", &v.primary),
            report("sec", "n1", &v.secondary),
        ]
    };

    // Primary signature by a key that is not the registered primary key.
    let err = check_vehicle_manifest(&manifest("VIN123", &good(), &v.secondary), &v.registered)
        .unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");

    // An ECU report signed by the wrong key.
    let bad_sec = vec![
        report("pri", "n1", &v.primary),
        report("sec", "n1", &v.primary),
    ];
    let err = check_vehicle_manifest(&manifest("VIN123", &bad_sec, &v.primary), &v.registered)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Threshold { role, .. } if role.contains("sec")),
        "{err}"
    );

    // A missing ECU.
    let err = check_vehicle_manifest(&manifest("VIN123", &good()[..1], &v.primary), &v.registered)
        .unwrap_err();
    assert!(
        matches!(&err, Error::MissingEcu { serial } if serial == "sec"),
        "{err}"
    );

    // An ECU this vehicle does not have.
    let stranger = key();
    let mut extra = good();
    extra.push(report("ghost", "n1", &stranger));
    let err =
        check_vehicle_manifest(&manifest("VIN123", &extra, &v.primary), &v.registered).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownEcu { serial } if serial == "ghost"),
        "{err}"
    );

    // Another vehicle's VIN.
    let err = check_vehicle_manifest(&manifest("VIN999", &good(), &v.primary), &v.registered)
        .unwrap_err();
    assert!(matches!(err, Error::ManifestVin { .. }), "{err}");

    // Reports from different cycles.
    let mixed = vec![
        report("pri", "n1", &v.primary),
        report("sec", "n0", &v.secondary),
    ];
    let err =
        check_vehicle_manifest(&manifest("VIN123", &mixed, &v.primary), &v.registered).unwrap_err();
    assert!(matches!(err, Error::NonceMismatch { .. }), "{err}");

    // A report signed by the primary's key but naming the secondary, filed under the primary.
    let mut m = Signed::new(VehicleManifest::new("VIN123", "pri", &good()).unwrap());
    let misfiled = report("sec", "n1", &v.primary);
    m.signed
        .ecu_version_manifests
        .insert("pri".into(), serde_json::to_value(&misfiled).unwrap());
    m.sign(&v.primary as &dyn Signer).unwrap();
    let err = check_vehicle_manifest(&m.to_bytes().unwrap(), &v.registered).unwrap_err();
    assert!(
        matches!(&err, Error::EcuSerialMismatch { listed, found } if listed == "pri" && found == "sec"),
        "{err}"
    );

    // A report altered after its ECU signed it.
    let mut m = Signed::new(VehicleManifest::new("VIN123", "pri", &good()).unwrap());
    m.signed.ecu_version_manifests.get_mut("sec").unwrap()["signed"]["attacks_detected"] =
        "".into();
    m.signed.ecu_version_manifests.get_mut("sec").unwrap()["signed"]["provides"]
        ["rootfs-image.version"] = "9.9".into();
    m.sign(&v.primary as &dyn Signer).unwrap();
    let err = check_vehicle_manifest(&m.to_bytes().unwrap(), &v.registered).unwrap_err();
    assert!(
        matches!(&err, Error::Threshold { role, .. } if role.contains("sec")),
        "{err}"
    );
}

#[test]
fn a_manifest_moved_out_of_its_json_equals_what_serde_makes_of_it() {
    use ferry_core::metadata::Document;
    use serde_json::json;
    let shapes = [
        json!({"ecu_version_manifests": {"pri": {"signatures": [], "signed": {"a": [1, {"b": null}]}}},
               "primary_ecu_serial": "pri", "vin": "VIN123", "x-extra": {"k": "v"}}),
        json!({"ecu_version_manifests": {}, "primary_ecu_serial": "", "vin": "V"}),
        // Shapes serde refuses (or reads its own way) must get serde's answer.
        json!({"ecu_version_manifests": [], "primary_ecu_serial": "pri", "vin": "V"}),
        json!({"ecu_version_manifests": {}, "primary_ecu_serial": 7, "vin": "V"}),
        json!({"ecu_version_manifests": {}, "vin": "V"}),
        json!({"ecu_version_manifests": {}, "primary_ecu_serial": "pri", "vin": null}),
        json!(["not", "an", "object"]),
        json!(null),
    ];
    for shape in shapes {
        let ours = VehicleManifest::from_signed(shape.clone()).map_err(|e| e.to_string());
        let serde =
            serde_json::from_value::<VehicleManifest>(shape.clone()).map_err(|e| e.to_string());
        assert_eq!(ours, serde, "{shape}");
    }
}

#[test]
fn a_malformed_report_envelope_is_refused_by_name() {
    let v = vehicle();
    let good = report("sec", "n1", &v.secondary);
    for broken in [
        serde_json::json!({"signed": serde_json::to_value(&good.signed).unwrap()}),
        serde_json::json!({"signatures": "none", "signed": {}}),
        serde_json::json!("a string"),
    ] {
        let mut reports = BTreeMap::new();
        reports.insert(
            "pri".to_string(),
            serde_json::to_value(report("pri", "n1", &v.primary)).unwrap(),
        );
        reports.insert("sec".to_string(), broken.clone());
        let mut m = Signed::new(VehicleManifest {
            ecu_version_manifests: reports,
            primary_ecu_serial: "pri".into(),
            vin: "VIN123".into(),
            extra: BTreeMap::new(),
        });
        m.sign(&v.primary as &dyn Signer).unwrap();
        let err = check_vehicle_manifest(&m.to_bytes().unwrap(), &v.registered).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{broken}: {err}");
    }
}

#[test]
fn a_manifest_or_report_naming_a_key_twice_is_refused() {
    let v = vehicle();
    let bytes = manifest(
        "VIN123",
        &[
            report("pri", "n1", &v.primary),
            report("sec", "n1", &v.secondary),
        ],
        &v.primary,
    );
    let genuine = String::from_utf8(bytes).unwrap();
    check_vehicle_manifest(genuine.as_bytes(), &v.registered).unwrap();
    // In the manifest's own signed part, and inside an ECU report it carries: both signatures
    // still verify over what a last-wins parser keeps.
    for (what, from, to) in [
        ("manifest", "\"signed\":{", "\"signed\":{\"vin\":\"OTHER\","),
        (
            "report",
            "\"nonce\":\"n1\"",
            "\"nonce\":\"replayed\",\"nonce\":\"n1\"",
        ),
    ] {
        let forged = genuine.replacen(from, to, 1);
        assert_ne!(forged, genuine, "{what}: the test edits the document");
        let err = check_vehicle_manifest(forged.as_bytes(), &v.registered).unwrap_err();
        assert!(
            err.to_string().contains("duplicate key check failed"),
            "{what}: {err}"
        );
    }
}

#[test]
fn a_bad_report_time_is_named_as_the_report_time() {
    let v = vehicle();
    let mut sec = serde_json::to_value(report("sec", "n1", &v.secondary)).unwrap();
    sec["signed"]["time"] = serde_json::json!("yesterday");
    let mut reports = BTreeMap::new();
    reports.insert(
        "pri".to_string(),
        serde_json::to_value(report("pri", "n1", &v.primary)).unwrap(),
    );
    reports.insert("sec".to_string(), sec);
    let mut m = Signed::new(VehicleManifest {
        ecu_version_manifests: reports,
        primary_ecu_serial: "pri".into(),
        vin: "VIN123".into(),
        extra: BTreeMap::new(),
    });
    m.sign(&v.primary as &dyn Signer).unwrap();
    let err = check_vehicle_manifest(&m.to_bytes().unwrap(), &v.registered).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("report time \"yesterday\""), "{text}");
    assert!(!text.contains("expires"), "{text}");
}
