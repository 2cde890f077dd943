//! The whole vehicle-side Uptane procedure, once (Uptane 2.1.0 §5.4.4). A Primary and a
//! Secondary both call it; neither decides trust itself. Where each rule lives:
//!
//! | rule | module |
//! |---|---|
//! | Director metadata verified as a set, kept only once all of it passed | [`staging`], [`full`] |
//! | Director targets name this vehicle's VIN | [`vehicle`] |
//! | Director targets: no delegations, one target per ECU, ECUs of this vehicle | [`checks`] |
//! | Director target against the Image repository's: length, hashes, hardwareId, releaseCounter | [`checks`], [`full`] |
//! | partial verification by a pinned key | [`partial`] |
//! | PURE-2 offline-update bundles: offline snapshot and targets, by hardwareId | [`offline`] |
//! | which identities a release counter guards; the floor an offer may not go below | [`installed`] |
//! | "already installed" | [`installed`] |
//! | the verified time never goes backwards | [`verified_time`] |
//! | a target without a domain is an app | [`crate::metadata::uptane::Domain::DEFAULT`] |
//!
//! TUF's own rules (root chain, threshold, versions, expiry, delegations) are in
//! [`crate::trusted`], [`crate::verify`] and [`crate::search`].

pub mod checks;
pub mod full;
pub mod installed;
pub mod offline;
pub mod partial;
pub mod staging;
pub mod vehicle;

pub use checks::{
    director_assignments, match_image_target, EcuAssignment, MatchedTarget, VehicleEcus,
};
pub use full::{match_assignment, verify_director, DirectorMetadata, Vehicle};
pub use installed::{already_installed, counter_keys, release_floor, Running};
pub use partial::{verify_partial, PartialTarget};
pub use staging::Staged;
pub use vehicle::{check_vehicle, targets_vin};

use chrono::{DateTime, Utc};

/// One ECU as the checks need it.
#[derive(Debug, Clone, Copy)]
pub struct EcuIdentity<'a> {
    pub serial: &'a str,
    pub hardware_id: &'a str,
}

/// The time to verify at: `now`, unless a later time was verified before. An ECU never goes
/// below the newest time it verified, so a clock set back cannot revive expired metadata.
pub fn verified_time(now: DateTime<Utc>, last_verified: Option<DateTime<Utc>>) -> DateTime<Utc> {
    last_verified.map_or(now, |t| t.max(now))
}
