//! The ECU version report (DESIGN.md "Wire formats"): what this ECU runs, its provides, the
//! failed check of the last refused update and how the last install ended, carrying the
//! Primary's nonce for this cycle and signed with the ECU key.

use crate::error::Result;
use crate::state::State;
use chrono::{DateTime, Utc};
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage, LastInstall};
use ferry_core::metadata::{Expires, Hashes, Signed};
use ferry_keys::Signer;
use std::collections::BTreeMap;

/// Build and sign this ECU's report. With nothing installed yet, the image is empty: no path,
/// length 0, no hashes.
pub fn version_report(
    serial: &str,
    state: &State,
    nonce: &str,
    now: DateTime<Utc>,
    key: &dyn Signer,
) -> Result<Signed<EcuVersionReport>> {
    let installed = state.installed()?;
    let (outcome, attacks_detected) = state.outcome()?;
    let installed_image = match installed {
        Some(image) => InstalledImage {
            fileinfo: FileInfo {
                hashes: image.hashes,
                length: image.length,
                extra: BTreeMap::new(),
            },
            filepath: image.target,
            extra: BTreeMap::new(),
        },
        None => InstalledImage {
            fileinfo: FileInfo {
                hashes: Hashes::new(),
                length: 0,
                extra: BTreeMap::new(),
            },
            filepath: String::new(),
            extra: BTreeMap::new(),
        },
    };
    let report = EcuVersionReport {
        attacks_detected,
        ecu_serial: serial.to_owned(),
        installed_image,
        last_install: outcome.map(|o| LastInstall {
            detail: o.detail,
            result: o.result,
            target: o.target,
            extra: BTreeMap::new(),
        }),
        nonce: nonce.to_owned(),
        provides: state.provides()?,
        time: Expires::after(now, chrono::Duration::zero()),
        extra: BTreeMap::new(),
    };
    let mut signed = Signed::new(report);
    signed.sign(key)?;
    Ok(signed)
}
