//! Uptane's checks between the two repositories (Uptane 2.1.0 §5.4.4.2, DESIGN.md
//! "Verification"): what verified Director targets may say, and how a Director target must
//! agree with the Image repository's target of the same name. Both repositories' metadata
//! reach here already verified by the trusted set; these checks catch a compromised Director
//! (or Image repository) that signs something the other would not.

use crate::metadata::uptane::ImageCustom;
use crate::metadata::{Hashes, TargetFile, Targets};
use crate::{Error, FoundTarget, Result};
use std::collections::{BTreeMap, BTreeSet};

/// One ECU's entry in the Director's targets: which image it installs and the hardwareId the
/// Director believes it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcuAssignment {
    pub ecu_serial: String,
    pub hardware_id: String,
    pub target_name: String,
    pub target: TargetFile,
}

/// Which ECUs the caller knows belong to the vehicle. A Primary knows them all; a Secondary
/// knows only itself and cannot tell a foreign ECU from a sibling, so it passes `Unknown`.
#[derive(Debug, Clone, Copy)]
pub enum VehicleEcus<'a> {
    Known(&'a BTreeSet<String>),
    Unknown,
}

/// Checks on verified Director targets: no delegations (Director targets never delegate), no
/// ECU named by two targets, every named ECU part of this vehicle. Returns each ECU's
/// assignment by serial. A target naming no ECU is refused as malformed: the Director has no
/// reason to sign an image nobody installs.
pub fn director_assignments(
    targets: &Targets,
    vehicle: VehicleEcus<'_>,
) -> Result<BTreeMap<String, EcuAssignment>> {
    if let Some(delegations) = &targets.delegations {
        let roles: Vec<String> = delegations
            .roles
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .chain(
                delegations
                    .succinct_roles
                    .iter()
                    .map(|b| format!("{}-* (hashed bins)", b.name_prefix)),
            )
            .collect();
        // An empty delegations object delegates nothing; some Directors write one.
        if !roles.is_empty() {
            return Err(Error::DirectorDelegates {
                roles: roles.join(", "),
            });
        }
    }
    let mut by_ecu: BTreeMap<String, EcuAssignment> = BTreeMap::new();
    for (name, target) in &targets.targets {
        let custom = target.director_custom(name)?;
        if custom.ecu_identifiers.is_empty() {
            return Err(Error::malformed(
                "director targets",
                format!("target {name} names no ECU in custom.ecuIdentifiers"),
            ));
        }
        for (serial, ecu) in custom.ecu_identifiers {
            if let VehicleEcus::Known(known) = vehicle {
                if !known.contains(&serial) {
                    return Err(Error::EcuNotInVehicle {
                        serial,
                        target: name.clone(),
                    });
                }
            }
            if let Some(first) = by_ecu.get(&serial) {
                return Err(Error::DuplicateEcu {
                    serial,
                    first: first.target_name.clone(),
                    second: name.clone(),
                });
            }
            by_ecu.insert(
                serial.clone(),
                EcuAssignment {
                    ecu_serial: serial,
                    hardware_id: ecu.hardware_id,
                    target_name: name.clone(),
                    target: target.clone(),
                },
            );
        }
    }
    Ok(by_ecu)
}

/// The Director's target, checked against the Image repository's: what the ECU downloads and
/// installs.
#[derive(Debug, Clone)]
pub struct MatchedTarget {
    pub assignment: EcuAssignment,
    /// The role of the Image repository that signed the target.
    pub image_role: String,
    /// Length, and the union of both repositories' hashes (equal wherever both list one):
    /// every one of them is checked as the image arrives.
    pub target: TargetFile,
    /// The Image repository's custom metadata (domain, provides, depends, releaseCounter).
    pub custom: ImageCustom,
}

/// Match one Director assignment with the Image repository's target of the same name (found
/// by [`crate::find_target`], so through its delegation path). `ecu_hardware_id` is the
/// ECU's real hardwareId; `installed_release_counter` the highest releaseCounter this ECU
/// has installed for the image (0 if none).
pub fn match_image_target(
    assignment: &EcuAssignment,
    image: &FoundTarget,
    ecu_hardware_id: &str,
    installed_release_counter: u64,
) -> Result<MatchedTarget> {
    let name = &assignment.target_name;
    let director = &assignment.target;
    let signed = &image.target;
    if director.length != signed.length {
        return Err(Error::DirectorImageLength {
            target: name.clone(),
            director: director.length,
            image: signed.length,
        });
    }
    let hashes = matched_hashes(name, &director.hashes, &signed.hashes)?;
    let custom = signed.image_custom(name)?;
    if assignment.hardware_id != ecu_hardware_id {
        return Err(Error::HardwareId {
            target: name.clone(),
            ecu: assignment.ecu_serial.clone(),
            expected: ecu_hardware_id.to_owned(),
            found: format!(
                "{:?} in the Director's ecuIdentifiers",
                assignment.hardware_id
            ),
        });
    }
    if !custom.hardware_ids.iter().any(|h| h == ecu_hardware_id) {
        return Err(Error::HardwareId {
            target: name.clone(),
            ecu: assignment.ecu_serial.clone(),
            expected: ecu_hardware_id.to_owned(),
            found: format!(
                "{:?} in the Image repository's hardwareIds",
                custom.hardware_ids
            ),
        });
    }
    if custom.release_counter < installed_release_counter {
        return Err(Error::ReleaseCounter {
            target: name.clone(),
            installed: installed_release_counter,
            offered: custom.release_counter,
        });
    }
    Ok(MatchedTarget {
        assignment: assignment.clone(),
        image_role: image.role.clone(),
        target: TargetFile {
            custom: signed.custom.clone(),
            hashes,
            length: signed.length,
            extra: BTreeMap::new(),
        },
        custom,
    })
}

/// Every hash the Director lists must be listed, equal, by the Image repository (a hash only
/// the Director vouches for would let a compromised Director pick it), and they must share at
/// least one. The Image repository's extra hashes are kept: each is checked on download.
pub(crate) fn matched_hashes(target: &str, director: &Hashes, image: &Hashes) -> Result<Hashes> {
    if director.is_empty() {
        return Err(Error::NoHashes {
            what: format!("director target {target}"),
        });
    }
    for (algorithm, digest) in director {
        let Some(signed) = image.get(algorithm) else {
            return Err(Error::DirectorImageHash {
                target: target.to_owned(),
                algorithm: algorithm.clone(),
                director: digest.clone(),
                image: "(not listed)".into(),
            });
        };
        if !signed.eq_ignore_ascii_case(digest) {
            return Err(Error::DirectorImageHash {
                target: target.to_owned(),
                algorithm: algorithm.clone(),
                director: digest.clone(),
                image: signed.clone(),
            });
        }
    }
    Ok(image.clone())
}
