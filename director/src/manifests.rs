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

/// The most characters of a refusal's reason stored (the reason can quote what the vehicle
/// sent).
pub const MAX_REASON_CHARS: usize = 1024;

/// How much of a vehicle's manifests the Director takes and keeps: `[manifests]` in
/// `director.toml`. Accepted manifests are kept whole (until `ferry admin manifests prune`);
/// of a refused one the digest, the length, the reason (at most [`MAX_REASON_CHARS`]) and the
/// first `refused_excerpt_bytes` bytes, and only the newest `refused_kept` per vehicle, so one
/// vehicle grows the database by at most [`ManifestPolicy::refused_quota`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManifestPolicy {
    /// Manifests one vehicle may send per minute, and at once; more are answered 429 with
    /// `Retry-After` before their body is read. 0: no limit.
    pub max_per_minute: u32,
    /// Refused manifests kept per vehicle (the newest; at least 1).
    pub refused_kept: u32,
    /// Bytes kept of a refused manifest's body.
    pub refused_excerpt_bytes: usize,
}

impl ManifestPolicy {
    pub const DEFAULT: ManifestPolicy = ManifestPolicy {
        max_per_minute: 30,
        refused_kept: 100,
        refused_excerpt_bytes: 4096,
    };

    /// The same policy with no manifest rate: for simulated fleets (benchmarks, load tests)
    /// whose vehicles check in far more often than real ones.
    pub const fn without_rate(self) -> ManifestPolicy {
        ManifestPolicy {
            max_per_minute: 0,
            ..self
        }
    }

    /// The most bytes one vehicle's refused manifests take in the database: each row's
    /// excerpt, reason (UTF-8: up to 4 bytes a character) and digest, plus a generous 512
    /// bytes of row and index overhead.
    pub fn refused_quota(&self) -> u64 {
        let row = self.refused_excerpt_bytes as u64 + 4 * MAX_REASON_CHARS as u64 + 32 + 512;
        u64::from(self.refused_kept.max(1)) * row
    }
}

impl Default for ManifestPolicy {
    fn default() -> Self {
        ManifestPolicy::DEFAULT
    }
}

impl IncomingManifest {
    /// An accepted manifest: the whole body is kept.
    pub fn accepted(
        vin: &str,
        received_at: DateTime<Utc>,
        body: &[u8],
        nonce: String,
        reports: std::collections::BTreeMap<String, ferry_core::manifest::EcuVersionReport>,
    ) -> IncomingManifest {
        IncomingManifest {
            vin: vin.to_owned(),
            received_at,
            body: body.to_vec(),
            body_sha256: sha256(body),
            body_length: body.len() as u64,
            verdict: ManifestVerdict::Accepted { nonce, reports },
        }
    }

    /// A refused manifest, kept as `policy` says: digest, length, bounded reason and excerpt.
    pub fn refused(
        vin: &str,
        received_at: DateTime<Utc>,
        body: &[u8],
        nonce: Option<String>,
        reason: &str,
        policy: &ManifestPolicy,
    ) -> IncomingManifest {
        let excerpt = &body[..body.len().min(policy.refused_excerpt_bytes)];
        let reason = match reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((cut, _)) => format!("{}… (cut at {MAX_REASON_CHARS} characters)", &reason[..cut]),
            None => reason.to_owned(),
        };
        IncomingManifest {
            vin: vin.to_owned(),
            received_at,
            body: excerpt.to_vec(),
            body_sha256: sha256(body),
            body_length: body.len() as u64,
            verdict: ManifestVerdict::Refused {
                nonce,
                reason,
                keep: policy.refused_kept.max(1),
            },
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

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
    process_manifest_of(
        store,
        vin,
        vehicle,
        body,
        now,
        max_skew,
        &ManifestPolicy::DEFAULT,
    )
}

/// [`process_manifest`] against `vehicle`, `vin`'s ECU keys as read from `store` by the caller
/// (`None`: not registered), such as in the same snapshot as the request's credential; a
/// refusal is kept as `policy` says.
pub fn process_manifest_of(
    store: &dyn Store,
    vin: &str,
    vehicle: Option<RegisteredVehicle>,
    body: &[u8],
    now: DateTime<Utc>,
    max_skew: Duration,
    policy: &ManifestPolicy,
) -> Result<RecordedManifest> {
    process_manifest_judged(store, vin, vehicle, body, now, now, max_skew, policy)
}

/// [`process_manifest_of`] judging the report times against `judged_at` rather than `now`:
/// the time a registered relay received a manifest it forwards late (issue #20). The
/// manifest is still recorded at `now`, and a reused nonce is still refused.
#[allow(clippy::too_many_arguments)]
pub fn process_manifest_judged(
    store: &dyn Store,
    vin: &str,
    vehicle: Option<RegisteredVehicle>,
    body: &[u8],
    now: DateTime<Utc>,
    judged_at: DateTime<Utc>,
    max_skew: Duration,
    policy: &ManifestPolicy,
) -> Result<RecordedManifest> {
    let vehicle = vehicle.ok_or_else(|| Error::UnknownVehicle {
        vin: vin.to_owned(),
    })?;
    let checked = check_vehicle_manifest(body, &vehicle)
        .map_err(Error::from)
        .and_then(|c| check_times(&c, judged_at, max_skew).map(|()| c));
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let refused = IncomingManifest::refused(vin, now, body, None, &e.to_string(), policy);
            store.record_manifest(&refused)?;
            return Err(e);
        }
    };
    let nonce = checked.nonce.clone();
    let incoming = IncomingManifest::accepted(vin, now, body, checked.nonce, checked.reports);
    let recorded = record_accepted(store, vin, body, now, nonce, incoming, policy);
    if recorded.is_ok() {
        carried_receipts(store, vin, body, now);
    }
    recorded
}

fn record_accepted(
    store: &dyn Store,
    vin: &str,
    body: &[u8],
    now: DateTime<Utc>,
    nonce: String,
    incoming: IncomingManifest,
    policy: &ManifestPolicy,
) -> Result<RecordedManifest> {
    match store.record_manifest(&incoming) {
        Err(e @ Error::NonceReused { .. }) => {
            // A replay changes nothing, but the attempt is kept for the audit trail.
            let refused =
                IncomingManifest::refused(vin, now, body, Some(nonce), &e.to_string(), policy);
            store.record_manifest(&refused)?;
            Err(e)
        }
        other => other,
    }
}

/// The manifest field under which a Primary sends the receipts of offline installs it kept
/// since its last online cycle.
pub const CARRIED_RECEIPTS: &str = "offline_receipts";

/// Record the receipts an accepted manifest carries ([`CARRIED_RECEIPTS`]), each checked on
/// its own as if a technician had brought it ([`crate::offline::import_receipt`]). One
/// recorded already (the technician was faster) or refused does not affect the manifest.
fn carried_receipts(store: &dyn Store, vin: &str, body: &[u8], now: DateTime<Utc>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    for receipt in value["signed"][CARRIED_RECEIPTS]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Ok(bytes) = serde_json::to_vec(receipt) else {
            continue;
        };
        match crate::offline::import_receipt(store, &bytes, now) {
            Ok(r) => {
                tracing::info!(vin, bundle = %r.bundle, "offline receipt carried by an online manifest")
            }
            Err(Error::ReceiptRecorded { .. }) => {}
            Err(e) => {
                tracing::warn!(vin, error = %e, "a receipt carried by a manifest was refused")
            }
        }
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
