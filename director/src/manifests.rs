//! Processing a vehicle version manifest (Uptane §5.3.2.1): every signature by its registered
//! key, every ECU present, a sane time, a fresh nonce. Accepted or refused, the manifest is
//! stored append-only with the verdict; only an accepted one changes the vehicle's state.

use crate::error::{Error, Result};
use crate::model::{IncomingManifest, ManifestVerdict, RecordedManifest};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use ferry_core::manifest::{check_vehicle_manifest, CheckedManifest, RegisteredVehicle};

/// The largest difference tolerated between an ECU's report time and the Director's clock.
pub const DEFAULT_MAX_SKEW: Duration = Duration::hours(24);

/// Check and record the manifest `body` sent by vehicle `vin`. Returns the stored id of an
/// accepted manifest and whether the vehicle must be re-signed
/// ([`crate::model::RecordedManifest::resign`]); a refusal is stored too, then returned as
/// the error naming the check.
pub fn process_manifest(
    store: &dyn Store,
    vin: &str,
    body: &[u8],
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<RecordedManifest> {
    let vehicle = store.ecu_keys(vin)?;
    process_manifest_of(store, vin, vehicle, body, now, max_skew)
}

/// [`process_manifest`] against `vehicle`, `vin`'s ECU keys as read from `store` by the caller
/// (`None`: not registered), such as in the same snapshot as the request's credential.
pub fn process_manifest_of(
    store: &dyn Store,
    vin: &str,
    vehicle: Option<RegisteredVehicle>,
    body: &[u8],
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<RecordedManifest> {
    let vehicle = vehicle.ok_or_else(|| Error::UnknownVehicle {
        vin: vin.to_owned(),
    })?;
    let checked = check_vehicle_manifest(body, &vehicle)
        .map_err(Error::from)
        .and_then(|c| check_times(&c, now, max_skew).map(|()| c));
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            store.record_manifest(&IncomingManifest {
                vin: vin.to_owned(),
                received_at: now,
                body: body.to_vec(),
                verdict: ManifestVerdict::Refused {
                    nonce: None,
                    reason: e.to_string(),
                },
            })?;
            return Err(e);
        }
    };
    let incoming = IncomingManifest {
        vin: vin.to_owned(),
        received_at: now,
        body: body.to_vec(),
        verdict: ManifestVerdict::Accepted {
            nonce: checked.nonce.clone(),
            reports: checked.reports,
        },
    };
    match store.record_manifest(&incoming) {
        Err(e @ Error::NonceReused { .. }) => {
            // A replay changes nothing, but the attempt is kept for the audit trail.
            store.record_manifest(&IncomingManifest {
                verdict: ManifestVerdict::Refused {
                    nonce: Some(checked.nonce),
                    reason: e.to_string(),
                },
                ..incoming
            })?;
            Err(e)
        }
        other => other,
    }
}

fn check_times(checked: &CheckedManifest, now: DateTime<Utc>, max_skew: Duration) -> Result<()> {
    for (serial, report) in &checked.reports {
        let skew = (report.time.0 - now).abs();
        if skew > max_skew {
            return Err(Error::ReportTime {
                serial: serial.clone(),
                reported: report.time.to_string(),
                now: now.to_rfc3339(),
                max_skew_secs: max_skew.num_seconds(),
            });
        }
    }
    Ok(())
}
