//! A registered vehicle as its primary sees it: its ECU keys, the manifests it signs and the
//! Director metadata it verifies.
#![allow(dead_code, clippy::unwrap_used)]

use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::{Signed, Targets};
use ferry_core::TrustedSet;
use ferry_core::{Clock, SystemClock};
use ferry_keys::{PrivateKey, Signer};

/// A vehicle with a primary (`{vin}-p`) and a secondary (`{vin}-s`) ECU, and the device
/// token registration gave it.
pub struct Car {
    pub vin: String,
    pub token: String,
    pub primary: PrivateKey,
    pub secondary: PrivateKey,
}

impl Car {
    /// The primary's serial.
    pub fn p(&self) -> String {
        format!("{}-p", self.vin)
    }

    /// The secondary's serial.
    pub fn s(&self) -> String {
        format!("{}-s", self.vin)
    }

    /// A manifest of both ECUs, each report signed by its own key, signed by the primary.
    pub fn manifest(&self, nonce: &str) -> Vec<u8> {
        self.manifest_signed_by(nonce, &self.primary)
    }

    /// A manifest of both ECUs, each report signed by its own key, signed by `signer`.
    pub fn manifest_signed_by(&self, nonce: &str, signer: &PrivateKey) -> Vec<u8> {
        self.manifest_with(
            nonce,
            &[(&self.p(), &self.primary), (&self.s(), &self.secondary)],
            signer,
        )
    }

    /// A manifest of the primary `{vin}-p` with a report of each `(serial, key)`, signed by
    /// `signer`.
    pub fn manifest_with(
        &self,
        nonce: &str,
        reports: &[(&str, &PrivateKey)],
        signer: &PrivateKey,
    ) -> Vec<u8> {
        let reports: Vec<_> = reports
            .iter()
            .map(|(serial, key)| super::report(serial, nonce, SystemClock.now(), key))
            .collect();
        let mut m = Signed::new(VehicleManifest::new(&self.vin, &self.p(), &reports).unwrap());
        m.sign(signer as &dyn Signer).unwrap();
        m.to_bytes().unwrap()
    }
}

/// Director metadata verified from `root` as a primary does: timestamp, snapshot, then
/// targets, each read with `fetch`. The verified targets.
pub fn verified_targets(root: &[u8], fetch: impl Fn(&str) -> Vec<u8>) -> Targets {
    let mut set = TrustedSet::new(root, SystemClock.now()).unwrap();
    set.update_timestamp(&fetch("timestamp.json")).unwrap();
    set.update_snapshot(&fetch("snapshot.json"), false).unwrap();
    set.update_targets(&fetch("targets.json"), "targets", "root")
        .unwrap()
        .signed()
        .clone()
}
