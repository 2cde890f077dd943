//! The crypto ceiling: how many check-ins per second the Director's per-check-in cryptography
//! alone allows on this machine, timed on every core while nothing else runs.
//!
//! Per check-in the Director verifies the primary's signature over the vehicle manifest and
//! each ECU's signature over its version report (`check_vehicle_manifest`), and signs nothing:
//! per-vehicle metadata is signed when assignments change and timestamps are re-signed by the
//! refresher, so a check-in serves stored bytes. The ceiling verifies exactly those signatures
//! (same keys, same canonical bytes as a real manifest) in a loop on one thread per core.

use super::fleet::{report, Vehicle, ECUS};
use crate::error::{Error, Result};
use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::{Document, Signed};
use ferry_core::{Clock, SystemClock};
use ferry_keys::{PublicKey, Signer};
use std::time::{Duration, Instant};

/// Signature verifications per check-in: the primary's over the manifest, one per ECU report.
pub const VERIFICATIONS_PER_CHECK_IN: u64 = 1 + ECUS as u64;
/// Signatures the Director makes per check-in (see the module documentation).
pub const SIGNINGS_PER_CHECK_IN: u64 = 0;

/// The measured ceiling.
#[derive(Debug, Clone, Copy)]
pub struct Ceiling {
    /// Threads verifying at once (one per core).
    pub threads: usize,
    pub verifications: u64,
    pub seconds: f64,
}

impl Ceiling {
    /// Check-ins per second the verifications alone allow.
    pub fn check_ins_per_second(&self) -> f64 {
        super::super::report::ratio(
            self.verifications as f64 / VERIFICATIONS_PER_CHECK_IN as f64,
            self.seconds,
        )
    }

    /// The time of one verification on one core.
    pub fn per_verification(&self) -> Duration {
        let busy = self.seconds * self.threads as f64;
        Duration::from_secs_f64(super::super::report::ratio(busy, self.verifications as f64))
    }
}

/// One signature to check: key, message and signature bytes.
struct Check {
    key: PublicKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn check_of<T: Document>(signed: &Signed<T>, key: &PublicKey) -> Result<Check> {
    let sig = signed
        .signatures
        .first()
        .and_then(|s| hex::decode(&s.sig).ok())
        .ok_or_else(|| {
            Error::Bench("crypto ceiling check failed: a signature is missing".into())
        })?;
    // A key as the Director reads it from its database: re-parsed from its JSON.
    let key = serde_json::to_value(key)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Bench(format!("crypto ceiling check failed: key JSON: {e}")))?;
    Ok(Check {
        key,
        msg: signed.canonical_signed()?,
        sig,
    })
}

/// The signatures of one check-in of `vehicle`.
fn checks(vehicle: &Vehicle) -> Result<Vec<Check>> {
    let now = SystemClock.now();
    let mut out = Vec::new();
    let mut reports = Vec::new();
    for (serial, key) in &vehicle.ecus {
        let r = report(serial, "ceiling", now, key)?;
        out.push(check_of(&r, key.public_key())?);
        reports.push(r);
    }
    let (primary, key) = &vehicle.ecus[0];
    let mut manifest = Signed::new(VehicleManifest::new(&vehicle.vin, primary, &reports)?);
    manifest.sign(key as &dyn Signer)?;
    out.push(check_of(&manifest, key.public_key())?);
    Ok(out)
}

/// Verify one check-in's signatures over and over on every core for `window`.
pub fn measure(vehicle: &Vehicle, window: Duration) -> Result<Ceiling> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results: Vec<Result<(u64, f64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<(u64, f64)> {
                    let checks = checks(vehicle)?;
                    let start = Instant::now();
                    let mut verified = 0u64;
                    while start.elapsed() < window {
                        for c in &checks {
                            c.key.verify(&c.msg, &c.sig)?;
                        }
                        verified += checks.len() as u64;
                    }
                    Ok((verified, start.elapsed().as_secs_f64()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Bench(
                        "crypto ceiling check failed: a verifying thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut verifications = 0;
    let mut seconds = 0f64;
    for r in results {
        let (n, s) = r?;
        verifications += n;
        seconds = seconds.max(s);
    }
    Ok(Ceiling {
        threads,
        verifications,
        seconds,
    })
}
