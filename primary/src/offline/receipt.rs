//! Receipts of offline installs: the signed vehicle version manifest an online cycle would
//! send (every ECU's signed version report, signed by the Primary's key), with the bundle's
//! name, the digest of its offline-update targets file and each ECU's result under
//! [`RECEIPT_FIELD`]. One is written to the stick for the technician to bring back, and one
//! is kept in the Primary's state: the next online cycle sends every kept receipt inside its
//! vehicle manifest, under [`MANIFEST_FIELD`], and forgets them once the Director accepted
//! that manifest.

use crate::config::Config;
use crate::cycle::CycleResult;
use crate::error::{io_at, Error, Result};
use crate::store::write_atomic;
use ferry_core::manifest::{EcuVersionReport, VehicleManifest};
use ferry_core::metadata::Signed;
use ferry_keys::Signer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The vehicle manifest field that carries the bundle and its results in a receipt.
pub const RECEIPT_FIELD: &str = "offline_bundle";
/// The vehicle manifest field under which an online cycle sends kept receipts.
pub const MANIFEST_FIELD: &str = "offline_receipts";
/// Receipts kept for the next online cycle at most (the oldest go first).
pub const MAX_PENDING: usize = 16;

/// What the bundle did on this vehicle (a receipt's [`RECEIPT_FIELD`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleOutcome {
    /// The bundle's name (its offline-update targets file is `NAME.json`).
    pub name: String,
    /// The offline-update targets file's hashes, as verified (sha256).
    pub digest: BTreeMap<String, String>,
    /// Its version, as verified (absent when it was refused before that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    pub result: CycleResult,
    /// The refusal or failure, naming its check; empty on success.
    pub detail: String,
    /// The time the vehicle verified the bundle at (RFC 3339).
    pub verified_time: String,
    /// Each ECU's result, by serial.
    pub ecus: BTreeMap<String, EcuOutcome>,
}

/// One ECU's part of an offline install.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EcuOutcome {
    /// The image the bundle names for this ECU's hardwareId, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `success` (installed now), `up-to-date` (it already ran it), `no-image` (the bundle
    /// has none for its hardwareId), or `not-installed` (the bundle was refused or an ECU
    /// failed, so nothing was installed anywhere).
    pub result: String,
}

/// The signed receipt: the vehicle manifest of `reports` with `outcome`, signed by `signer`
/// (the Primary's ECU key, as an online manifest is).
pub fn sign(
    config: &Config,
    primary_serial: &str,
    signer: &dyn Signer,
    reports: &[Signed<EcuVersionReport>],
    outcome: &BundleOutcome,
) -> Result<Vec<u8>> {
    let mut manifest = VehicleManifest::new(&config.vin, primary_serial, reports)?;
    let value = serde_json::to_value(outcome).map_err(|e| Error::Config(e.to_string()))?;
    manifest.extra.insert(RECEIPT_FIELD.to_owned(), value);
    let mut signed = Signed::new(manifest);
    signed.sign(signer)?;
    Ok(signed.to_bytes()?)
}

/// The file stem of receipts: the VIN, made safe for a file name.
pub fn stem(vin: &str) -> String {
    vin.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn pending_dir(config: &Config) -> PathBuf {
    config.data_dir.join("offline-receipts")
}

/// Keep `receipt` for the next online cycle; the oldest beyond [`MAX_PENDING`] are dropped.
pub fn keep(config: &Config, receipt: &[u8]) -> Result<PathBuf> {
    let dir = pending_dir(config);
    std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    let mut kept = numbered(&dir)?;
    let next = kept.last().map_or(1, |(n, _)| n + 1);
    let path = dir.join(format!("{next}.json"));
    write_atomic(&path, receipt)?;
    kept.push((next, path.clone()));
    while kept.len() > MAX_PENDING {
        let (_, old) = kept.remove(0);
        tracing::warn!(receipt = %old.display(), "too many offline receipts kept; dropping the oldest");
        std::fs::remove_file(&old).map_err(io_at(&old))?;
    }
    Ok(path)
}

/// A kept receipt.
#[derive(Debug)]
pub struct Pending {
    pub path: PathBuf,
    pub value: serde_json::Value,
}

/// Every kept receipt, oldest first (one that is not JSON is skipped with a warning).
pub fn pending(config: &Config) -> Result<Vec<Pending>> {
    let dir = pending_dir(config);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (_, path) in numbered(&dir)? {
        let bytes = std::fs::read(&path).map_err(io_at(&path))?;
        match serde_json::from_slice(&bytes) {
            Ok(value) => out.push(Pending { path, value }),
            Err(e) => {
                tracing::warn!(receipt = %path.display(), error = %e, "unreadable offline receipt skipped")
            }
        }
    }
    Ok(out)
}

/// The most bytes of receipts one vehicle manifest carries (the Director takes manifests of
/// up to 1 MiB).
pub const MAX_SENT_BYTES: usize = 512 << 10;

/// The kept receipts the next manifest carries: the oldest first, as many as fit in
/// [`MAX_SENT_BYTES`].
pub fn to_send(config: &Config) -> Result<Vec<Pending>> {
    let mut total = 0;
    let mut out = Vec::new();
    for receipt in pending(config)? {
        total += receipt.value.to_string().len();
        if total > MAX_SENT_BYTES {
            break;
        }
        out.push(receipt);
    }
    Ok(out)
}

/// The Director accepted the manifest that carried `receipt`: forget it.
pub fn delivered(receipt: &Pending) -> Result<()> {
    match std::fs::remove_file(&receipt.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_at(&receipt.path)(e)),
    }
}

/// `N.json` files of `dir`, by N.
fn numbered(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_at(dir))? {
        let entry = entry.map_err(io_at(dir))?;
        let name = entry.file_name();
        let n = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_vin_makes_a_safe_file_stem() {
        assert_eq!(super::stem("WVW-1_a"), "WVW-1_a");
        assert_eq!(super::stem("../x y"), "___x_y");
    }
}
