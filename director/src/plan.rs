//! Planning an assignment: which image each ECU installs, in which order, refused before
//! anything is stored if an ECU's hardware or provides cannot take it.

use crate::error::{Error, Result};
use crate::model::{NewAssignment, Vehicle};
use ferry_core::metadata::TargetFile;
use ferry_core::provides::{check_depends, merge_provides};
use std::collections::BTreeMap;

/// An Image repository target requested for one ECU (length, hashes and custom copied from
/// the Image repository's signed metadata).
#[derive(Debug, Clone)]
pub struct Requested {
    pub ecu_serial: String,
    pub target_name: String,
    pub target: TargetFile,
}

/// Check and order `requested` for `vehicle`. Each ECU's targets are ordered so that every
/// target's depends are met by the ECU's reported provides as changed by the targets before
/// it (an OS that provides what an app depends on goes first). A target no order can satisfy
/// is refused with Mender's wording.
pub fn plan(
    vehicle: &Vehicle,
    requested: &[Requested],
    campaign: Option<&str>,
) -> Result<Vec<NewAssignment>> {
    let mut per_ecu: BTreeMap<&str, Vec<&Requested>> = BTreeMap::new();
    for r in requested {
        let ecu = vehicle
            .ecus
            .iter()
            .find(|e| e.serial == r.ecu_serial)
            .ok_or_else(|| Error::UnknownEcu {
                vin: vehicle.vin.clone(),
                serial: r.ecu_serial.clone(),
            })?;
        let custom = r.target.image_custom(&r.target_name)?;
        if !custom.hardware_ids.contains(&ecu.hardware_id) {
            return Err(Error::HardwareMismatch {
                target: r.target_name.clone(),
                serial: ecu.serial.clone(),
                hardware_id: ecu.hardware_id.clone(),
                allowed: custom.hardware_ids,
            });
        }
        per_ecu.entry(ecu.serial.as_str()).or_default().push(r);
    }
    let mut planned = Vec::with_capacity(requested.len());
    for (serial, mut remaining) in per_ecu {
        let ecu = vehicle
            .ecus
            .iter()
            .find(|e| e.serial == serial)
            .ok_or_else(|| Error::UnknownEcu {
                vin: vehicle.vin.clone(),
                serial: serial.to_owned(),
            })?;
        let mut provides = ecu
            .reported
            .as_ref()
            .map(|r| r.provides.clone())
            .unwrap_or_default();
        while !remaining.is_empty() {
            let ready = remaining.iter().position(|r| {
                r.target
                    .image_custom(&r.target_name)
                    .is_ok_and(|c| check_depends(&c.depends, &provides).is_ok())
            });
            let Some(index) = ready else {
                // Nothing can go next: report the first target's unmet depends.
                let first = remaining[0];
                let custom = first.target.image_custom(&first.target_name)?;
                let source = check_depends(&custom.depends, &provides)
                    .err()
                    .ok_or_else(|| Error::InvalidAssignment {
                        reason: "no installable order".into(),
                    })?;
                return Err(Error::Depends {
                    target: first.target_name.clone(),
                    serial: serial.to_owned(),
                    source,
                });
            };
            let next = remaining.remove(index);
            let custom = next.target.image_custom(&next.target_name)?;
            provides = merge_provides(
                &provides,
                &custom.effective_clears(),
                &custom.effective_provides(),
            );
            planned.push(NewAssignment {
                ecu_serial: serial.to_owned(),
                target_name: next.target_name.clone(),
                target: next.target.clone(),
                campaign: campaign.map(str::to_owned),
            });
        }
    }
    Ok(planned)
}
