//! Partial verification (Uptane 2.1.0 §5.4.4.1): Director targets only, signed by a key pinned
//! on the ECU, not expired, not older than the kept copy, naming this vehicle, and this ECU's
//! entry checked (hardwareId, releaseCounter, at least one hash it can compute).

use super::checks::{director_assignments, VehicleEcus};
use super::installed::release_floor;
use super::vehicle::check_vehicle;
use super::EcuIdentity;
use crate::metadata::uptane::ImageCustom;
use crate::metadata::{HashCheck, Parsed, Role, TargetFile, Targets};
use crate::verify::{verify, Authority};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_keys::PublicKey;
use std::collections::BTreeMap;

/// This ECU's target, as partial verification accepted it.
#[derive(Debug, Clone)]
pub struct PartialTarget {
    pub target_name: String,
    pub target: TargetFile,
    /// The Image repository's fields as the Director's target carries them; hardwareIds is
    /// this ECU's.
    pub custom: ImageCustom,
}

/// Verify Director `targets` bytes by `pinned` at `at`. `kept` is the copy accepted last time
/// (its version is the rollback floor; it is not re-verified, since the pinned key may have
/// changed since); `counters` the ECU's release counters by identity.
pub fn verify_partial(
    targets: &[u8],
    pinned: &PublicKey,
    kept: Option<&[u8]>,
    vin: &str,
    ecu: EcuIdentity<'_>,
    counters: &BTreeMap<String, u64>,
    at: DateTime<Utc>,
) -> Result<Option<PartialTarget>> {
    let keyid = [pinned.key_id()?];
    let keys = BTreeMap::from([(keyid[0].clone(), pinned.clone())]);
    let authority = Authority::new("director targets (pinned key)", &keyid, 1, &keys)?;
    let targets = verify(Parsed::<Targets>::from_bytes(targets)?, &[authority])?;
    if targets.is_expired(at) {
        return Err(Error::Expired {
            role: "director targets".into(),
            expires: targets.expires.0,
            now: at,
        });
    }
    if let Some(old) = kept {
        let trusted = Parsed::<Targets>::from_bytes(old)?.unverified().version;
        if targets.version < trusted {
            return Err(Error::Rollback {
                role: "director targets".into(),
                trusted,
                new: targets.version,
            });
        }
    }
    check_vehicle(&targets, vin)?;
    let Some(mine) = director_assignments(&targets, VehicleEcus::Unknown)?.remove(ecu.serial)
    else {
        return Ok(None);
    };
    if mine.hardware_id != ecu.hardware_id {
        return Err(Error::HardwareId {
            target: mine.target_name,
            ecu: mine.ecu_serial,
            expected: ecu.hardware_id.to_owned(),
            found: format!("{:?} in the Director's ecuIdentifiers", mine.hardware_id),
        });
    }
    partial_target(mine.target_name, mine.target, ecu.hardware_id, counters).map(Some)
}

/// The checks a partial ECU makes on the one target it found for itself, online (Director
/// targets) or offline (an offline-update targets file): its custom metadata, its
/// releaseCounter against what the ECU ran, and a hash the ECU can compute.
pub(crate) fn partial_target(
    target_name: String,
    target: TargetFile,
    hardware_id: &str,
    counters: &BTreeMap<String, u64>,
) -> Result<PartialTarget> {
    let custom = partial_custom(&target, &target_name, hardware_id)?;
    let floor = release_floor(counters, &target_name, &custom);
    if custom.release_counter < floor {
        return Err(Error::ReleaseCounter {
            target: target_name,
            installed: floor,
            offered: custom.release_counter,
        });
    }
    // Refuse now, not after a download, a target pinned by no hash we can compute.
    HashCheck::new(&target_name, None, Some(&target.hashes))?.require_hashes()?;
    Ok(PartialTarget {
        target_name,
        target,
        custom,
    })
}

/// In partial mode the Director's target is all there is: its custom may carry the Image
/// repository's fields (releaseCounter, domain, provides...); hardwareIds is this ECU's.
pub(crate) fn partial_custom(
    target: &TargetFile,
    name: &str,
    hardware_id: &str,
) -> Result<ImageCustom> {
    let mut custom = match &target.custom {
        Some(serde_json::Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    custom.remove("ecuIdentifiers");
    custom
        .entry("hardwareIds")
        .or_insert_with(|| serde_json::json!([hardware_id]));
    serde_json::from_value(serde_json::Value::Object(custom)).map_err(|e| Error::Malformed {
        role: format!("custom of director target {name}"),
        reason: e.to_string(),
    })
}
