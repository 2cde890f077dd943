//! The ECU version report (DESIGN.md "Wire formats"): what this ECU runs, its provides, the
//! failed check of the last refused update and how the last install ended, carrying the
//! Primary's nonce for this cycle and signed with the ECU key.
//!
//! Beside Uptane's `installed_image` (the latest target installed), the report carries
//! `installed_domains: {domain: {target, version, length, hashes}}`, what each update domain
//! runs. It travels in the report's extra fields, so a Director that does not know it
//! verifies and stores the report all the same.

use crate::error::Result;
use crate::state::State;
use chrono::{DateTime, Utc};
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage, LastInstall};
use ferry_core::metadata::{Expires, Hashes, Signed};
use ferry_keys::Signer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What one domain runs, as reports and `/status` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainImage {
    pub target: String,
    /// The target's `custom.version`, when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub length: u64,
    pub hashes: Hashes,
}

impl From<&crate::state::InstalledImage> for DomainImage {
    fn from(i: &crate::state::InstalledImage) -> Self {
        DomainImage {
            target: i.target.clone(),
            version: i.custom["version"].as_str().map(str::to_owned),
            length: i.length,
            hashes: i.hashes.clone(),
        }
    }
}

/// Build and sign this ECU's report. With nothing installed yet, the image is empty: no path,
/// length 0, no hashes.
pub(crate) fn version_report(
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
        extra: installed_domains(state)?,
    };
    let mut signed = Signed::new(report);
    signed.sign(key)?;
    Ok(signed)
}

fn installed_domains(state: &State) -> Result<BTreeMap<String, serde_json::Value>> {
    let domains: BTreeMap<String, DomainImage> = state
        .installed_domains()?
        .iter()
        .map(|(d, i)| (d.clone(), DomainImage::from(i)))
        .collect();
    let mut extra = BTreeMap::new();
    if !domains.is_empty() {
        let value = serde_json::to_value(&domains).map_err(|e| crate::Error::StateCorrupt {
            path: "state.db".into(),
            what: "installed domains",
            reason: e.to_string(),
        })?;
        extra.insert("installed_domains".to_owned(), value);
    }
    Ok(extra)
}
