//! Uptane manifests (DESIGN.md "Wire formats"): each ECU signs a version report; the primary
//! signs the vehicle version manifest that carries them. Both are signed like metadata, and
//! each ECU report is verified over the canonical form of its `signed` part exactly as received.

use crate::metadata::{Document, Expires, Hashes, Parsed, Signed};
use crate::verify::{verify, Authority};
use crate::{Error, Result};
use ferry_keys::{IdentifiedKey, KeyId, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Length and hashes of an installed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub hashes: Hashes,
    pub length: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The image an ECU runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledImage {
    pub fileinfo: FileInfo,
    pub filepath: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// How an install ended, on the wire (`last_install.result`) and in code: `success`,
/// `failure` (refused, or failed with nothing changed) or `rolled-back` (failed after it
/// began changing the ECU, which was restored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstallResult {
    Success,
    Failure,
    RolledBack,
}

impl InstallResult {
    pub fn as_str(self) -> &'static str {
        match self {
            InstallResult::Success => "success",
            InstallResult::Failure => "failure",
            InstallResult::RolledBack => "rolled-back",
        }
    }

    /// The word as stored or sent; `None` for anything else.
    pub fn parse(s: &str) -> Option<InstallResult> {
        [Self::Success, Self::Failure, Self::RolledBack]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Whether the install did not leave its target running.
    pub fn failed(self) -> bool {
        self != InstallResult::Success
    }
}

impl std::fmt::Display for InstallResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the last install on this ECU ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastInstall {
    /// Which check or step failed, or what was installed.
    pub detail: String,
    pub result: InstallResult,
    pub target: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One ECU's signed statement of what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcuVersionReport {
    /// Empty when none; otherwise the checks that refused an attack, e.g.
    /// "hash check failed: ...".
    pub attacks_detected: String,
    pub ecu_serial: String,
    pub installed_image: InstalledImage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_install: Option<LastInstall>,
    /// The primary's nonce for this update cycle.
    pub nonce: String,
    #[serde(default)]
    pub provides: BTreeMap<String, String>,
    /// When the report was made (same format as metadata expiry times).
    #[serde(deserialize_with = "report_time")]
    pub time: Expires,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An ECU report's `time`, refused in its own name (not as an `expires`).
fn report_time<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Expires, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    Expires::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "report time {s:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
        ))
    })
}

impl Document for EcuVersionReport {
    fn kind() -> &'static str {
        "ECU version report"
    }
    fn check(&self) -> Result<()> {
        if self.ecu_serial.is_empty() || self.nonce.is_empty() {
            return Err(Error::malformed(
                Self::kind(),
                "ecu_serial and nonce must not be empty",
            ));
        }
        Ok(())
    }
}

/// The primary's signed bundle of every ECU's report. The reports stay raw JSON so each is
/// verified over exactly the bytes its ECU signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleManifest {
    pub ecu_version_manifests: BTreeMap<String, serde_json::Value>,
    pub primary_ecu_serial: String,
    pub vin: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Document for VehicleManifest {
    fn kind() -> &'static str {
        "vehicle manifest"
    }

    /// Moves each ECU report's JSON out of the parsed manifest (serde would rebuild every
    /// report node by node). Anything but the expected shape takes serde's own path, for
    /// serde's own error.
    fn from_signed(value: serde_json::Value) -> serde_json::Result<Self> {
        use serde_json::Value;
        let expected = |map: &serde_json::Map<String, Value>| {
            matches!(map.get("ecu_version_manifests"), Some(Value::Object(_)))
                && matches!(map.get("primary_ecu_serial"), Some(Value::String(_)))
                && matches!(map.get("vin"), Some(Value::String(_)))
        };
        match value {
            Value::Object(mut map) if expected(&map) => {
                let string = |v: Option<Value>| match v {
                    Some(Value::String(s)) => s,
                    _ => String::new(),
                };
                let reports = match map.remove("ecu_version_manifests") {
                    Some(Value::Object(reports)) => reports.into_iter().collect(),
                    _ => BTreeMap::new(),
                };
                Ok(VehicleManifest {
                    ecu_version_manifests: reports,
                    primary_ecu_serial: string(map.remove("primary_ecu_serial")),
                    vin: string(map.remove("vin")),
                    extra: map.into_iter().collect(),
                })
            }
            other => serde_json::from_value(other),
        }
    }
}

impl VehicleManifest {
    /// Bundle signed ECU reports (keyed by serial) for `vin`.
    pub fn new(
        vin: &str,
        primary_ecu_serial: &str,
        reports: &[Signed<EcuVersionReport>],
    ) -> Result<Self> {
        let mut manifests = BTreeMap::new();
        for report in reports {
            let value = serde_json::to_value(report)
                .map_err(|e| Error::malformed(EcuVersionReport::kind(), e))?;
            manifests.insert(report.signed.ecu_serial.clone(), value);
        }
        Ok(VehicleManifest {
            ecu_version_manifests: manifests,
            primary_ecu_serial: primary_ecu_serial.to_owned(),
            vin: vin.to_owned(),
            extra: BTreeMap::new(),
        })
    }
}

/// What the Director knows of a vehicle: its VIN, its primary's serial and every ECU's key
/// (with its key id, which every signature is matched against).
#[derive(Debug, Clone)]
pub struct RegisteredVehicle {
    pub vin: String,
    pub primary_ecu_serial: String,
    pub ecu_keys: BTreeMap<String, IdentifiedKey>,
}

/// What a vehicle manifest whose primary and ECU signatures all verified says. (The manifest's
/// own fields are the registered vehicle's, checked equal; its raw reports are moved into
/// their verification, not copied.)
#[derive(Debug, Clone)]
pub struct CheckedManifest {
    /// Every registered ECU's verified report, by serial.
    pub reports: BTreeMap<String, EcuVersionReport>,
    /// The cycle nonce all reports carry.
    pub nonce: String,
}

fn single_key_authority<'a>(
    role: String,
    keyid: &'a [KeyId],
    keys: &'a BTreeMap<KeyId, PublicKey>,
) -> Result<Authority<'a>> {
    Authority::new(role, keyid, 1, keys)
}

/// Uptane §5.3.2.1 for one manifest: signed by the registered primary key; for this VIN and
/// primary; a report from every registered ECU and from no other, each signed by its ECU's
/// key, all carrying one nonce. Freshness of that nonce is the Director's store's check.
pub fn check_vehicle_manifest(
    bytes: &[u8],
    vehicle: &RegisteredVehicle,
) -> Result<CheckedManifest> {
    let parsed = Parsed::<VehicleManifest>::from_bytes(bytes)?;
    let primary_key = vehicle
        .ecu_keys
        .get(&vehicle.primary_ecu_serial)
        .ok_or_else(|| Error::UnknownEcu {
            serial: vehicle.primary_ecu_serial.clone(),
        })?;
    let keyid = [primary_key.id().clone()];
    let keys: BTreeMap<KeyId, PublicKey> = [(keyid[0].clone(), primary_key.key().clone())].into();
    let authority = single_key_authority(
        format!("vehicle manifest of primary {}", vehicle.primary_ecu_serial),
        &keyid,
        &keys,
    )?;
    let manifest = verify(parsed, &[authority])?.into_inner();
    if manifest.vin != vehicle.vin {
        return Err(Error::ManifestVin {
            expected: vehicle.vin.clone(),
            found: manifest.vin.clone(),
        });
    }
    if manifest.primary_ecu_serial != vehicle.primary_ecu_serial {
        return Err(Error::ManifestPrimary {
            expected: vehicle.primary_ecu_serial.clone(),
            found: manifest.primary_ecu_serial.clone(),
        });
    }
    for serial in manifest.ecu_version_manifests.keys() {
        if !vehicle.ecu_keys.contains_key(serial) {
            return Err(Error::UnknownEcu {
                serial: serial.clone(),
            });
        }
    }
    let mut raw_reports = manifest.ecu_version_manifests;
    let mut reports = BTreeMap::new();
    let mut nonce: Option<String> = None;
    for (serial, key) in &vehicle.ecu_keys {
        let raw = raw_reports
            .remove(serial)
            .ok_or_else(|| Error::MissingEcu {
                serial: serial.clone(),
            })?;
        // Parsed once, with the manifest: its signed part is canonicalised from the parsed
        // value, which is what the ECU's canonical bytes are made of.
        let parsed = Parsed::<EcuVersionReport>::from_value(raw)?;
        let keyid = [key.id().clone()];
        let keys: BTreeMap<KeyId, PublicKey> = [(keyid[0].clone(), key.key().clone())].into();
        let report = verify(
            parsed,
            &[single_key_authority(
                format!("version report of ECU {serial}"),
                &keyid,
                &keys,
            )?],
        )?;
        if &report.ecu_serial != serial {
            return Err(Error::EcuSerialMismatch {
                listed: serial.clone(),
                found: report.ecu_serial.clone(),
            });
        }
        match &nonce {
            None => nonce = Some(report.nonce.clone()),
            Some(expected) if *expected != report.nonce => {
                return Err(Error::NonceMismatch {
                    serial: serial.clone(),
                    expected: expected.clone(),
                    found: report.nonce.clone(),
                })
            }
            Some(_) => {}
        }
        reports.insert(serial.clone(), report.into_inner());
    }
    Ok(CheckedManifest {
        reports,
        nonce: nonce.unwrap_or_default(),
    })
}
