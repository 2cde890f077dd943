//! Assignment planning: hardware ids and provides/depends are checked before anything is
//! stored, and targets that satisfy each other are ordered.
#![allow(clippy::unwrap_used)]

use ferry_core::metadata::{hashes_of, TargetFile};
use ferry_director::model::{NewEcu, NewVehicle, Vehicle};
use ferry_director::plan::{plan, Requested};
use ferry_director::{Error, SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey};
use std::collections::BTreeMap;

fn vehicle() -> (tempfile::TempDir, Vehicle) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("d.db")).unwrap();
    let ecu = |serial: &str, hw: &str, primary| NewEcu {
        serial: serial.into(),
        hardware_id: hw.into(),
        public_key: PrivateKey::generate(KeyKind::Ed25519)
            .unwrap()
            .public_key()
            .clone(),
        primary,
    };
    let v = store
        .register_vehicle(&NewVehicle {
            vin: "VIN".into(),
            ecus: vec![ecu("ivi", "ivi-a53", true), ecu("tcu", "tcu-m4", false)],
        })
        .unwrap();
    (dir, v)
}

fn image(custom: serde_json::Value) -> TargetFile {
    TargetFile {
        custom: Some(custom),
        hashes: hashes_of(b"x"),
        length: 1,
        extra: BTreeMap::new(),
    }
}

fn req(serial: &str, name: &str, custom: serde_json::Value) -> Requested {
    Requested {
        ecu_serial: serial.into(),
        target_name: name.into(),
        target: image(custom),
    }
}

#[test]
fn a_target_for_other_hardware_is_refused() {
    let (_d, v) = vehicle();
    let err = plan(
        &v,
        &[req(
            "tcu",
            "os.img",
            serde_json::json!({"hardwareIds": ["ivi-a53"]}),
        )],
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::HardwareMismatch { .. }), "{err}");
}

#[test]
fn an_os_that_provides_what_an_app_depends_on_goes_first() {
    let (_d, v) = vehicle();
    let app = req(
        "ivi",
        "apps/analytics.tar",
        serde_json::json!({"hardwareIds": ["ivi-a53"], "domain": "app", "name": "analytics", "version": "3.0",
            "depends": {"rootfs-image.python.version": ["3.12", "3.13"]}}),
    );
    let os = req(
        "ivi",
        "os/rootfs.img",
        serde_json::json!({"hardwareIds": ["ivi-a53"], "domain": "os", "name": "rootfs", "version": "4.0",
            "provides": {"rootfs-image.python.version": "3.13"}}),
    );
    let planned = plan(&v, &[app, os], Some("spring")).unwrap();
    let order: Vec<&str> = planned.iter().map(|a| a.target_name.as_str()).collect();
    assert_eq!(order, ["os/rootfs.img", "apps/analytics.tar"]);
    assert_eq!(planned[0].campaign.as_deref(), Some("spring"));
}

#[test]
fn an_unmet_depends_is_refused_in_menders_words() {
    let (_d, v) = vehicle();
    let ml = req(
        "ivi",
        "apps/ml.tar",
        serde_json::json!({"hardwareIds": ["ivi-a53"], "domain": "app", "name": "ml",
            "depends": {"rootfs-image.cuda.version": "11.8"}}),
    );
    let err = plan(&v, &[ml], None).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(
            "Missing 'rootfs-image.cuda.version' in provides, required by target depends"
        ),
        "{text}"
    );
    assert!(text.contains("System not modified"), "{text}");
}
