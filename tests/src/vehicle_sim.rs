//! A simulated vehicle for Director tests: ECU keys, signed version reports and the signed
//! vehicle manifest, built the way a Primary builds them (DESIGN.md "Manifests").

use chrono::Duration;
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage, VehicleManifest};
use ferry_core::metadata::{hashes_of, Expires, Signed};
use ferry_core::{Clock, SystemClock};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::collections::BTreeMap;

/// One ECU: serial, hardware id and signing key.
#[derive(Debug)]
pub struct SimEcu {
    pub serial: String,
    pub hardware_id: String,
    pub key: PrivateKey,
    pub primary: bool,
}

#[derive(Debug)]
pub struct SimVehicle {
    pub vin: String,
    /// The primary first.
    pub ecus: Vec<SimEcu>,
}

impl SimVehicle {
    /// A vehicle with a primary (`{vin}-p`, hardware `ivi`) and `secondaries` secondaries
    /// (`{vin}-s{i}`, hardware `tcu`), all ed25519.
    pub fn new(vin: &str, secondaries: usize) -> SimVehicle {
        let key = || PrivateKey::generate(KeyKind::Ed25519).expect("generate key");
        let mut ecus = vec![SimEcu {
            serial: format!("{vin}-p"),
            hardware_id: "ivi".into(),
            key: key(),
            primary: true,
        }];
        for i in 0..secondaries {
            ecus.push(SimEcu {
                serial: format!("{vin}-s{i}"),
                hardware_id: "tcu".into(),
                key: key(),
                primary: false,
            });
        }
        SimVehicle {
            vin: vin.into(),
            ecus,
        }
    }

    /// The registration body of the admin API (`POST /api/v1/admin/vehicles`).
    pub fn registration(&self) -> serde_json::Value {
        let ecus: Vec<_> = self
            .ecus
            .iter()
            .map(|e| {
                serde_json::json!({
                    "serial": e.serial, "hardware_id": e.hardware_id,
                    "public_key": e.key.public_key(), "primary": e.primary,
                })
            })
            .collect();
        serde_json::json!({ "vin": self.vin, "ecus": ecus })
    }

    /// A manifest of every ECU for `nonce`, each report signed by its ECU, the whole signed
    /// by the primary.
    pub fn manifest(&self, nonce: &str) -> Vec<u8> {
        let reports: Vec<_> = self.ecus.iter().map(|e| report(e, nonce)).collect();
        let mut m = Signed::new(
            VehicleManifest::new(&self.vin, &self.ecus[0].serial, &reports).expect("manifest"),
        );
        m.sign(&self.ecus[0].key as &dyn Signer)
            .expect("sign manifest");
        m.to_bytes().expect("manifest bytes")
    }
}

fn report(ecu: &SimEcu, nonce: &str) -> Signed<EcuVersionReport> {
    let mut r = Signed::new(EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: ecu.serial.clone(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(b"factory image"),
                length: 13,
                extra: BTreeMap::new(),
            },
            filepath: "factory.img".into(),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.into(),
        provides: [("rootfs-image.version".to_string(), "1.0".to_string())].into(),
        time: Expires::after(SystemClock.now(), Duration::zero()),
        extra: BTreeMap::new(),
    });
    r.sign(&ecu.key as &dyn Signer).expect("sign report");
    r
}
