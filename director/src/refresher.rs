//! Keeping every vehicle's metadata fresh: a vehicle whose assignments do not change must
//! still find an unexpired timestamp (and, less often, snapshot and targets) at every poll, or
//! its Primary stops updating (freeze-attack protection works both ways).

use crate::error::Result;
use crate::model::MetadataRole;
use crate::store::Store;
use crate::vehicle_metadata::{Lifetimes, OnlineKeys, VehicleSigner};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// What one pass re-signed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RefreshReport {
    /// Vehicles whose timestamp alone was re-signed.
    pub timestamps: u64,
    /// Vehicles whose targets, snapshot and timestamp were re-signed.
    pub full: u64,
    /// Vehicles that failed (logged; retried next pass).
    pub failed: u64,
}

/// Re-sign whatever expires before `now + before`: the timestamp alone when only it is
/// due, everything when targets or snapshot are. A failure for one vehicle does not stop the
/// others.
pub fn refresh_once(
    store: &dyn Store,
    keys: &OnlineKeys,
    lifetimes: Lifetimes,
    now: DateTime<Utc>,
    before: Duration,
) -> Result<RefreshReport> {
    let mut due: BTreeMap<String, bool> = BTreeMap::new();
    for m in store.vehicles_with_metadata_expiring_before(now + before)? {
        let full = matches!(m.role, MetadataRole::Targets | MetadataRole::Snapshot);
        *due.entry(m.vin).or_default() |= full;
    }
    let signer = VehicleSigner::new(store, keys, lifetimes);
    let mut report = RefreshReport::default();
    for (vin, full) in due {
        let outcome = if full {
            signer.sign_vehicle(&vin, now).map(|_| ())
        } else {
            signer.refresh_timestamp(&vin, now).map(|_| ())
        };
        match outcome {
            Ok(()) if full => report.full += 1,
            Ok(()) => report.timestamps += 1,
            Err(e) => {
                tracing::error!(%vin, error = %e, "refreshing vehicle metadata failed");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}

/// Re-sign every vehicle's metadata (after a root rotation that changed the online keys,
/// what was signed with the old keys no longer verifies). Returns how many were signed.
pub fn resign_all(
    store: &dyn Store,
    keys: &OnlineKeys,
    lifetimes: Lifetimes,
    now: DateTime<Utc>,
) -> Result<u64> {
    let signer = VehicleSigner::new(store, keys, lifetimes);
    let mut signed = 0;
    for vin in store.list_vins()? {
        signer.sign_vehicle(&vin, now)?;
        signed += 1;
    }
    Ok(signed)
}
