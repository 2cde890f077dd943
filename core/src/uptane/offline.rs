//! PURE-2 ("Offline Updates", uptane/pures pure2.md) on the vehicle: the Director's side of
//! an offline-update bundle, steps 2-5. Steps 6-9 (the Image repository's metadata and the
//! Director-vs-Image match) are the ordinary rules: [`crate::refresh::Workflow::refresh_offline`]
//! and [`super::match_assignment`].
//!
//! What makes a stick safe to leave lying around: the offline-update snapshot it carries must
//! be signed by the Director root's offline-update-snapshot role, not older than the one the
//! vehicle already holds (an online cycle fetches the newest every time), and not expired at
//! the vehicle's verified time; the offline-update targets file must be the version that
//! snapshot lists, signed by the offline-update-targets role, unexpired, with at most one
//! image per hardwareId.

use super::checks::EcuAssignment;
use super::EcuIdentity;
use crate::metadata::{
    verify_length_and_hashes, OfflineSnapshot, OfflineTargets, Parsed, Role, RoleType,
};
use crate::refresh::{Limits, MetadataFile, MetadataSource, Workflow};
use crate::verify::{verify, Verified};
use crate::{Error, Result, TrustedSet};
use chrono::{DateTime, Utc};

/// Where a bundle keeps its offline snapshot, and the name the vehicle keeps it under.
pub const OFFLINE_SNAPSHOT: &str = "offline-update-snapshot";

/// The Director's side of a bundle, verified.
#[derive(Debug)]
pub struct OfflineDirector {
    pub set: TrustedSet,
    pub snapshot: Verified<OfflineSnapshot>,
    /// The offline-update targets file's name without `.json` (the bundle's name).
    pub name: String,
    pub targets: Verified<OfflineTargets>,
    /// What each of the vehicle's ECUs is to install (ECUs the bundle names no image for are
    /// absent).
    pub assignments: Vec<EcuAssignment>,
}

/// PURE-2 steps 2-4 for the bundle `name` (its offline-update targets file `name.json`),
/// from the Director `root` the vehicle trusts, at the verified time `at`. `source` reads the
/// bundle's `.well-known/metadata/director/` and keeps what the vehicle trusts; a newer
/// offline snapshot is persisted (through [`super::Staged`], only once everything passed).
pub fn verify_offline_director<S: MetadataSource>(
    source: &mut S,
    root: &[u8],
    name: &str,
    ecus: &[EcuIdentity<'_>],
    limits: &Limits,
    at: DateTime<Utc>,
) -> std::result::Result<OfflineDirector, S::Error> {
    let set = Workflow::new(source, limits).root_chain(root, at)?;
    if !set.root().has_offline_roles() {
        return Err(Error::OfflineRoles {
            version: set.root().version,
        }
        .into());
    }
    let snapshot = offline_snapshot(source, &set, limits, at)?;
    let file = format!("{name}.json");
    let meta = snapshot
        .meta
        .get(&file)
        .ok_or_else(|| Error::NotInOfflineSnapshot {
            name: name.to_owned(),
            version: snapshot.version,
        })?
        .clone();
    let bytes = source.fetch(
        MetadataFile {
            role: name,
            version: None,
        },
        meta.length
            .unwrap_or(limits.targets_max)
            .min(limits.targets_max),
    )?;
    verify_length_and_hashes(&file, &bytes, meta.length, meta.hashes.as_ref())?;
    let parsed = Parsed::<OfflineTargets>::from_bytes(&bytes)?;
    let targets = verify(
        parsed,
        &[set.root().authority(RoleType::OfflineUpdateTargets)?],
    )?;
    if targets.version != meta.version {
        return Err(Error::VersionMismatch {
            role: format!("offline-update targets {name}"),
            expected: meta.version,
            found: targets.version,
            listed_in: "offline-update snapshot",
        }
        .into());
    }
    if targets.is_expired(at) {
        return Err(Error::Expired {
            role: format!("offline-update targets {name}"),
            expires: targets.expires().0,
            now: at,
        }
        .into());
    }
    targets.check_no_delegations()?;
    let assignments = assignments(&targets, ecus)?;
    Ok(OfflineDirector {
        set,
        snapshot,
        name: name.to_owned(),
        targets,
        assignments,
    })
}

/// Step 3: the newer of the kept offline snapshot and the bundle's, checked for rollback
/// against the kept one and for freeze at `at`.
fn offline_snapshot<S: MetadataSource>(
    source: &mut S,
    set: &TrustedSet,
    limits: &Limits,
    at: DateTime<Utc>,
) -> std::result::Result<Verified<OfflineSnapshot>, S::Error> {
    let authority = set.root().authority(RoleType::OfflineUpdateSnapshot)?;
    // A kept snapshot that no longer verifies (its keys were rotated away) protects nothing.
    let kept = match source.load(OFFLINE_SNAPSHOT)? {
        Some(bytes) => Parsed::<OfflineSnapshot>::from_bytes(&bytes)
            .and_then(|p| verify(p, std::slice::from_ref(&authority)))
            .ok(),
        None => None,
    };
    let bytes = source.fetch(
        MetadataFile {
            role: OFFLINE_SNAPSHOT,
            version: None,
        },
        limits.snapshot_max,
    )?;
    let offered = verify(Parsed::<OfflineSnapshot>::from_bytes(&bytes)?, &[authority])?;
    let chosen = match kept {
        Some(kept) if kept.version >= offered.version => kept,
        kept => {
            if let Some(kept) = &kept {
                check_rollback(kept, &offered)?;
            }
            source.persist(OFFLINE_SNAPSHOT, &bytes)?;
            offered
        }
    };
    if chosen.is_expired(at) {
        return Err(Error::Expired {
            role: OFFLINE_SNAPSHOT.into(),
            expires: chosen.expires().0,
            now: at,
        }
        .into());
    }
    Ok(chosen)
}

/// pure2.md 3.3: no offline-update targets file goes back in version. One the new snapshot no
/// longer lists is revoked, which is allowed (that is how a bundle is withdrawn).
fn check_rollback(kept: &OfflineSnapshot, offered: &OfflineSnapshot) -> Result<()> {
    for (file, old) in &kept.meta {
        if let Some(new) = offered.meta.get(file) {
            if new.version < old.version {
                return Err(Error::Rollback {
                    role: format!("{file} (as listed in the offline-update snapshot)"),
                    trusted: old.version,
                    new: new.version,
                });
            }
        }
    }
    Ok(())
}

/// Step 4.4: per ECU, the one image whose hardwareIds name the ECU's hardwareId; two are
/// refused (the vehicle cannot tell which to install).
fn assignments(targets: &OfflineTargets, ecus: &[EcuIdentity<'_>]) -> Result<Vec<EcuAssignment>> {
    let mut out = Vec::new();
    for ecu in ecus {
        let mut found: Option<&String> = None;
        for name in targets.targets.keys() {
            if targets.hardware_ids(name).contains(&ecu.hardware_id) {
                if let Some(first) = found {
                    return Err(Error::OfflineHardwareTwice {
                        hardware_id: ecu.hardware_id.to_owned(),
                        first: first.clone(),
                        second: name.clone(),
                    });
                }
                found = Some(name);
            }
        }
        if let Some(name) = found {
            out.push(EcuAssignment {
                ecu_serial: ecu.serial.to_owned(),
                hardware_id: ecu.hardware_id.to_owned(),
                target_name: name.clone(),
                target: targets.targets[name].clone(),
            });
        }
    }
    Ok(out)
}
