//! One signing of a vehicle's metadata at a time in this process: the SQLite store's
//! [`crate::Store::signing_turn`] (one process opens its file). The PostgreSQL store takes an
//! advisory lock per VIN instead, which holds across every Director on the database.
//!
//! A signing reads the vehicle's active assignments and its current versions, then stores
//! targets, snapshot and timestamp one after another. Two at once (a manifest that settled an
//! assignment, an admin's assign or cancel, the refresher) would pick the same next version,
//! so one fails its version check; or the one that read the assignments first stores last,
//! and the vehicle is served targets from the older read. Signings of one vehicle therefore
//! take turns. The locks are striped by VIN, so their memory is fixed whatever the fleet
//! size; two vehicles sharing a stripe only wait for each other's signing (milliseconds).

use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};

const STRIPES: usize = 64;

static STRIPE: [Mutex<()>; STRIPES] = [const { Mutex::new(()) }; STRIPES];

/// Held while `vin`'s metadata is being signed.
pub struct SigningGuard {
    _held: MutexGuard<'static, ()>,
}

/// Wait until no other signing of `vin` runs in this process, and keep it so until the guard
/// is dropped. A signing that panicked stored nothing half-done that the next one relies on
/// (each role is stored whole, versions only go up), so a poisoned stripe is taken as is.
pub fn lock(vin: &str) -> SigningGuard {
    // SipHash with fixed keys: the same VIN always lands on the same stripe in this process.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    vin.hash(&mut hasher);
    let stripe = (hasher.finish() % STRIPES as u64) as usize;
    SigningGuard {
        _held: STRIPE[stripe]
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    }
}
