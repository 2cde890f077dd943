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

use super::checks::{matched_hashes, EcuAssignment};
use super::partial::{partial_target, PartialTarget};
use super::EcuIdentity;
use crate::metadata::{
    verify_length_and_hashes, OfflineSnapshot, OfflineTargets, Parsed, Role, RoleType, Root,
};
use crate::refresh::{Limits, MetadataFile, MetadataSource, Workflow};
use crate::verify::{verify, Authority, Verified};
use crate::{Error, FoundTarget, Result, TrustedSet};
use chrono::{DateTime, Utc};
use ferry_keys::PublicKey;
use std::collections::BTreeMap;

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
    check_bundle_name(name)?;
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

/// The longest bundle name taken (it names a file on the stick and a role kept on the ECU).
pub const MAX_BUNDLE_NAME: usize = 128;

/// A bundle's name is the file name of its offline-update targets (`NAME.json`) beside the
/// Director's roots and offline snapshot: it must be a plain file name that is none of
/// theirs, so `NAME.json` can never be read as another metadata file.
pub fn check_bundle_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::OfflineBundleName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() || name.len() > MAX_BUNDLE_NAME {
        return bad("is empty or longer than 128 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return bad("has a character other than a letter, a digit, '.', '_' or '-'");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    let reserved = ["root", "timestamp", "snapshot", "targets", OFFLINE_SNAPSHOT];
    if reserved.contains(&name) || name.ends_with(".root") {
        return bad("is the name of another Director metadata file");
    }
    Ok(())
}

/// pure2.md step 9 as a Primary runs it for every image the offline-update targets list,
/// whether or not an ECU of this vehicle takes it: the Image repository lists it (`found`,
/// looked up through its delegation path), with the same length and hashes, and for every
/// hardwareId the offline-update targets name. The ECUs' own images are matched again, with
/// their release counters, by [`super::match_assignment`].
pub fn match_offline_image(
    targets: &OfflineTargets,
    name: &str,
    found: Option<&FoundTarget>,
) -> Result<()> {
    let offline = targets.targets.get(name).ok_or(Error::Order(
        "image matched that the offline-update targets do not list",
    ))?;
    let found = found.ok_or_else(|| Error::NotInImageRepo {
        target: name.to_owned(),
    })?;
    if offline.length != found.target.length {
        return Err(Error::DirectorImageLength {
            target: name.to_owned(),
            director: offline.length,
            image: found.target.length,
        });
    }
    matched_hashes(name, &offline.hashes, &found.target.hashes)?;
    let hardware_ids = targets.hardware_ids(name);
    if hardware_ids.is_empty() {
        return Err(Error::malformed(
            "offline-update targets",
            format!("target {name} names no hardwareId in custom.hardwareIds"),
        ));
    }
    let custom = found.target.image_custom(name)?;
    for hardware_id in hardware_ids {
        if !custom.hardware_ids.iter().any(|h| h == hardware_id) {
            return Err(Error::HardwareId {
                target: name.to_owned(),
                ecu: format!("(any of hardwareId {hardware_id})"),
                expected: hardware_id.to_owned(),
                found: format!(
                    "{:?} in the Image repository's hardwareIds",
                    custom.hardware_ids
                ),
            });
        }
    }
    Ok(())
}

/// PURE-2 on a partial-verification ECU ("Partial-verification ECUs and PURE-2"): only the
/// offline-update targets file `NAME.json`, signed by the offline-update-targets key pinned on
/// the ECU, unexpired at `at`, not older than `kept` (the copy of the same bundle accepted
/// last; not re-verified, since the pinned key may have changed since), naming at most one
/// image for this ECU's hardwareId, whose releaseCounter is not below `counters`' and which
/// carries a hash the ECU can compute. `None`: the bundle has nothing for this ECU.
pub fn verify_offline_partial(
    targets: &[u8],
    name: &str,
    pinned: &PublicKey,
    kept: Option<&[u8]>,
    ecu: EcuIdentity<'_>,
    counters: &BTreeMap<String, u64>,
    at: DateTime<Utc>,
) -> Result<Option<PartialTarget>> {
    check_bundle_name(name)?;
    let keyid = [pinned.key_id()?];
    let keys = BTreeMap::from([(keyid[0].clone(), pinned.clone())]);
    let authority = Authority::new("offline-update-targets (pinned key)", &keyid, 1, &keys)?;
    let targets = verify(Parsed::<OfflineTargets>::from_bytes(targets)?, &[authority])?;
    let role = format!("offline-update targets {name}");
    if targets.is_expired(at) {
        return Err(Error::Expired {
            role,
            expires: targets.expires().0,
            now: at,
        });
    }
    if let Some(old) = kept {
        let trusted = Parsed::<OfflineTargets>::from_bytes(old)?
            .unverified()
            .version;
        if targets.version < trusted {
            return Err(Error::Rollback {
                role,
                trusted,
                new: targets.version,
            });
        }
    }
    targets.check_no_delegations()?;
    let Some(mine) = assignments(&targets, &[ecu])?.pop() else {
        return Ok(None);
    };
    partial_target(mine.target_name, mine.target, ecu.hardware_id, counters).map(Some)
}

/// What an online cycle does with the Director's latest offline-update snapshot.
#[derive(Debug)]
pub enum FetchedOfflineSnapshot {
    /// Newer than the kept one and signed as required: keep its bytes.
    Newer(Verified<OfflineSnapshot>),
    /// Not newer than the kept one: nothing to keep.
    Unchanged,
    /// Malformed, or not signed by the offline-update-snapshot role of `root` (or `root` has
    /// no such role): discard it, log it, and carry on with the cycle (pure2.md "Additional
    /// step" 2).
    Discarded(Error),
}

/// pure2.md "Additional step for full verification during an online update": `offered`, the
/// Director's latest offline-update snapshot, against the vehicle's Director `root` (the one
/// this cycle just verified) and its `kept` offline snapshot. A rollback (a lower snapshot
/// version, or a lower version for an offline-update targets file the kept one lists) is an
/// `Err`: the caller aborts the cycle (step 3). Expiry is not checked here: even an expired
/// newer snapshot revokes what it no longer lists, and a bundle is checked for freeze when
/// it is used.
pub fn check_fetched_offline_snapshot(
    root: &Root,
    kept: Option<&[u8]>,
    offered: &[u8],
) -> Result<FetchedOfflineSnapshot> {
    if !root.has_offline_roles() {
        return Ok(FetchedOfflineSnapshot::Discarded(Error::OfflineRoles {
            version: root.version,
        }));
    }
    let authority = root.authority(RoleType::OfflineUpdateSnapshot)?;
    let offered = match Parsed::<OfflineSnapshot>::from_bytes(offered)
        .and_then(|p| verify(p, std::slice::from_ref(&authority)))
    {
        Ok(offered) => offered,
        Err(e) => return Ok(FetchedOfflineSnapshot::Discarded(e)),
    };
    // A kept snapshot that no longer verifies (its keys were rotated away) protects nothing.
    let kept = kept.and_then(|bytes| {
        Parsed::<OfflineSnapshot>::from_bytes(bytes)
            .and_then(|p| verify(p, std::slice::from_ref(&authority)))
            .ok()
    });
    match kept {
        Some(kept) if offered.version < kept.version => Err(Error::Rollback {
            role: OFFLINE_SNAPSHOT.into(),
            trusted: kept.version,
            new: offered.version,
        }),
        Some(kept) if offered.version == kept.version => Ok(FetchedOfflineSnapshot::Unchanged),
        Some(kept) => {
            check_rollback(&kept, &offered)?;
            Ok(FetchedOfflineSnapshot::Newer(offered))
        }
        None => Ok(FetchedOfflineSnapshot::Newer(offered)),
    }
}
