//! Partial verification (Uptane 2.1.0 §5.4.4.1): Director targets only, signed by a pinned
//! key, not expired, not older than the kept one, and this ECU's entry checked.

use super::{counter_keys, Assignment, Bundle, Ecu, Verification};
use crate::error::Result;
use crate::state::{MetadataChanges, Repo, State};
use chrono::{DateTime, Utc};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::metadata::{HashCheck, Parsed, Role, TargetFile, Targets};
use ferry_core::uptane_checks::{director_assignments, VehicleEcus};
use ferry_core::verify::{verify, Authority};
use ferry_keys::PublicKey;
use std::collections::BTreeMap;

/// The role partial verification keeps: Director targets, under its own name so a later
/// switch to full verification never mistakes it for snapshot-checked metadata.
pub const PARTIAL_ROLE: &str = "targets (partial)";

pub(super) fn partial(
    bundle: &Bundle,
    state: &State,
    key: &PublicKey,
    ecu: Ecu<'_>,
    at: DateTime<Utc>,
) -> Result<Verification> {
    let bytes = bundle.director.targets.as_bytes();
    let keyid = [key.key_id().map_err(ferry_core::Error::from)?];
    let keys = BTreeMap::from([(keyid[0].clone(), key.clone())]);
    let authority = Authority {
        role: "director targets (pinned key)".into(),
        keyids: &keyid,
        threshold: 1,
        keys: &keys,
    };
    let targets = verify(Parsed::<Targets>::from_bytes(bytes)?, &[authority])?;
    if targets.is_expired(at) {
        return Err(ferry_core::Error::Expired {
            role: "director targets".into(),
            expires: targets.expires.0,
            now: at,
        }
        .into());
    }
    if let Some(old) = state.metadata(Repo::Director, PARTIAL_ROLE)? {
        // Kept bytes were verified when accepted; only their version matters now (and the
        // pinned key may since have changed, so they are not re-checked against it).
        let trusted = verify(Parsed::<Targets>::from_bytes(&old)?, &[])?.version;
        if targets.version < trusted {
            return Err(ferry_core::Error::Rollback {
                role: "director targets".into(),
                trusted,
                new: targets.version,
            }
            .into());
        }
    }
    let mine = director_assignments(&targets, VehicleEcus::Unknown)?.remove(ecu.serial);
    let assignment = match mine {
        None => None,
        Some(mine) => {
            if mine.hardware_id != ecu.hardware_id {
                return Err(ferry_core::Error::HardwareId {
                    target: mine.target_name,
                    ecu: mine.ecu_serial,
                    expected: ecu.hardware_id.to_owned(),
                    found: format!("{:?} in the Director's ecuIdentifiers", mine.hardware_id),
                }
                .into());
            }
            let custom = partial_custom(&mine.target, &mine.target_name, ecu.hardware_id)?;
            let floor = state.release_counter(&counter_keys(&mine.target_name, &custom))?;
            if custom.release_counter < floor {
                return Err(ferry_core::Error::ReleaseCounter {
                    target: mine.target_name,
                    installed: floor,
                    offered: custom.release_counter,
                }
                .into());
            }
            // Refuse now, not after a download, a target pinned by no hash we can compute.
            HashCheck::new(&mine.target_name, None, Some(&mine.target.hashes))?.require_hashes()?;
            Some(Assignment {
                target_name: mine.target_name,
                target: mine.target,
                custom,
            })
        }
    };
    let mut changes = MetadataChanges::default();
    changes.put.insert(PARTIAL_ROLE.into(), bytes.to_vec());
    Ok(Verification {
        changes: vec![(Repo::Director, changes)],
        assignment,
        verified_at: at,
    })
}

/// In partial mode the Director's target is all there is: its custom may carry the Image
/// repository's fields (releaseCounter, domain, provides...); hardwareIds is this ECU's.
fn partial_custom(target: &TargetFile, name: &str, hardware_id: &str) -> Result<ImageCustom> {
    let mut custom = match &target.custom {
        Some(serde_json::Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    custom.remove("ecuIdentifiers");
    custom
        .entry("hardwareIds")
        .or_insert_with(|| serde_json::json!([hardware_id]));
    serde_json::from_value(serde_json::Value::Object(custom)).map_err(|e| {
        ferry_core::Error::Malformed {
            role: format!("custom of director target {name}"),
            reason: e.to_string(),
        }
        .into()
    })
}
