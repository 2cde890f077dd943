//! Full verification (Uptane 2.1.0 §5.4.4.2), the part both ECU kinds share: the Director's
//! metadata verified as one set and bound to this vehicle, then, per ECU, the Director's target
//! matched with the Image repository's, found through its delegation path.

use super::checks::VehicleEcus;
use super::checks::{director_assignments, match_image_target, EcuAssignment, MatchedTarget};
use super::installed::release_floor;
use super::staging::Staged;
use super::vehicle::check_vehicle;
use crate::refresh::{Limits, MetadataSource, Workflow};
use crate::{Error, FoundTarget, TrustedSet};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// The vehicle as the Director checks need it: its VIN, and its ECUs where the caller knows
/// them (a Primary does; a Secondary knows only itself).
#[derive(Debug, Clone, Copy)]
pub struct Vehicle<'a> {
    pub vin: &'a str,
    pub ecus: VehicleEcus<'a>,
}

/// Director metadata verified as a set and bound to this vehicle: only
/// [`verify_director`] makes one.
#[derive(Debug)]
pub struct DirectorMetadata {
    set: TrustedSet,
    assignments: BTreeMap<String, EcuAssignment>,
}

impl DirectorMetadata {
    pub fn trusted(&self) -> &TrustedSet {
        &self.set
    }
    /// Each ECU's assignment, by serial.
    pub fn assignments(&self) -> &BTreeMap<String, EcuAssignment> {
        &self.assignments
    }
    pub fn into_assignments(self) -> BTreeMap<String, EcuAssignment> {
        self.assignments
    }
    pub fn into_parts(self) -> (TrustedSet, BTreeMap<String, EcuAssignment>) {
        (self.set, self.assignments)
    }
}

/// Walk the Director's root chain, timestamp, snapshot and targets from `root`, check the
/// targets (no delegations, one target per ECU, ECUs of this vehicle) and the VIN, and only
/// then keep what was accepted: a refused set leaves `source`'s kept metadata untouched.
pub fn verify_director<S: MetadataSource>(
    source: &mut S,
    root: &[u8],
    vehicle: Vehicle<'_>,
    limits: &Limits,
    at: DateTime<Utc>,
) -> Result<DirectorMetadata, S::Error> {
    let mut staged = Staged::new(source);
    let set = Workflow::new(&mut staged, limits).refresh(root, at)?;
    let targets = set
        .targets("targets")
        .ok_or(Error::Order("director targets not loaded"))?;
    let assignments = director_assignments(targets, vehicle.ecus)?;
    check_vehicle(targets, vehicle.vin)?;
    staged.commit()?;
    Ok(DirectorMetadata { set, assignments })
}

/// Match one ECU's Director assignment with `found`, the Image repository's target of the
/// same name looked up through its delegation path (`None`: not listed there). `counters` are
/// the ECU's release counters by identity.
pub fn match_assignment(
    assignment: &EcuAssignment,
    found: Option<&FoundTarget>,
    ecu_hardware_id: &str,
    counters: &BTreeMap<String, u64>,
) -> crate::Result<MatchedTarget> {
    let found = found.ok_or_else(|| Error::NotInImageRepo {
        target: assignment.target_name.clone(),
    })?;
    let offered = found.target.image_custom(&assignment.target_name)?;
    let floor = release_floor(counters, &assignment.target_name, &offered);
    match_image_target(assignment, found, ecu_hardware_id, floor)
}
