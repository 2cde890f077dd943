//! The Director's storage, behind a trait so a PostgreSQL backend can serve a fleet that
//! outgrows one machine (DESIGN.md "Storage"). The trait is object-safe (`Arc<dyn Store>`),
//! every method takes `&self` and is blocking: call it from `spawn_blocking` in async code.
//!
//! Backends: [`SqliteStore`] (embedded, one process) and [`PgStore`] (any number of Directors
//! on one PostgreSQL database); [`open`] picks one from `[database]` in `director.toml`.
//!
//! Rules every backend enforces (the SQLite one in its schema where it can):
//! - a VIN is non-empty and URL-path safe; exactly one primary ECU per vehicle; ECU serials
//!   are unique across the fleet;
//! - secrets (device and admin tokens) are stored only as SHA-256 and compared in constant time;
//! - manifests are append-only; an accepted manifest's nonce is never accepted twice for a VIN;
//!   recording a manifest, its ECU reports and the assignment changes they imply is one
//!   transaction;
//! - stored metadata versions only go up; director root versions are stored one after another.

mod key_cache;
pub(crate) mod migrations;
pub mod postgres;
mod sqlite;
mod view;

pub use postgres::{PgSettings, PgStore};
pub use sqlite::{Durability, SqliteStore};
pub use view::{read, read_each, try_read, Prefetch, View};

use crate::model::{
    AdminToken, Assignment, EcuRef, ExpiringMetadata, IncomingManifest, ManifestEntry,
    MetadataRole, NewAssignment, NewVehicle, OfflineBundle, OfflineReceipt, RecordedManifest,
    Relay, Scope, StoredMetadata, Vehicle, Verdict,
};
use crate::Result;
use chrono::{DateTime, Utc};
use ferry_core::manifest::RegisteredVehicle;

pub trait Store: Send + Sync + std::fmt::Debug {
    // --- inventory ---

    /// Register a vehicle and its ECUs (all or nothing).
    fn register_vehicle(&self, vehicle: &NewVehicle) -> Result<Vehicle>;
    /// The vehicle, its ECUs with their last reports, and its status summary.
    fn get_vehicle(&self, vin: &str) -> Result<Option<Vehicle>>;
    /// What manifest verification needs of `vin`
    /// (`ferry_core::manifest::check_vehicle_manifest`): its primary's serial and every ECU's
    /// key, as stored now; `None` if `vin` is not registered. Cheaper than
    /// [`Store::get_vehicle`], which also reads reports and assignment counts.
    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>>;
    /// Every registered VIN, sorted.
    fn list_vins(&self) -> Result<Vec<String>>;
    /// One page of the fleet: at most `limit` vehicles whose VIN sorts after `after` (from the
    /// first if `None`), by VIN, each as [`Store::get_vehicle`] shows it. A fixed number of
    /// queries whatever the page size, never one per vehicle.
    fn list_vehicles(&self, after: Option<&str>, limit: u32) -> Result<Vec<Vehicle>>;
    /// The ECUs whose hardware id is `hardware_id`, in the vehicles `vins` (across the fleet
    /// if `None`; unknown VINs select nothing), sorted by VIN then serial.
    fn ecus_with_hardware_id(
        &self,
        hardware_id: &str,
        vins: Option<&[String]>,
    ) -> Result<Vec<EcuRef>>;
    /// Registered vehicles missing some of their signed metadata (targets, snapshot or
    /// timestamp), sorted: a registration whose first signing failed, to be signed again.
    fn vins_without_metadata(&self) -> Result<Vec<String>>;

    // --- per-vehicle device token (loopback deployments without mutual TLS) ---

    /// Make a new device token for `vin`, replacing any previous one. Only its hash is kept:
    /// the returned secret cannot be read back.
    fn issue_device_token(&self, vin: &str) -> Result<String>;
    /// Whether `token` is `vin`'s current device token (false for an unknown VIN or a vehicle
    /// without a token). The comparison is constant-time.
    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool>;
    /// Remove `vin` (see `ferry admin vehicle remove`): returns how many active assignments
    /// were cancelled.
    fn remove_vehicle(&self, vin: &str) -> Result<u64>;

    // --- consistent reads ---

    /// Call `f` once with a [`View`] of one snapshot of the store (see [`read`], the way to
    /// call this). `op` names the operation in errors.
    fn with_view(&self, op: &str, f: &mut dyn FnMut(&dyn View) -> Result<()>) -> Result<()>;

    /// [`Store::with_view`] for reads that need not share a snapshot (see [`read_each`]). A
    /// store whose snapshot costs nothing gives a view as usual.
    fn with_reads(&self, op: &str, f: &mut dyn FnMut(&dyn View) -> Result<()>) -> Result<()> {
        self.with_view(op, f)
    }

    /// [`Store::with_view`] if that needs no wait for a lock another thread holds; `None`,
    /// without calling `f`, if it would (see [`try_read`]). A store that cannot tell says
    /// `None` always.
    fn try_with_view(
        &self,
        _op: &str,
        _f: &mut dyn FnMut(&dyn View) -> Result<()>,
    ) -> Option<Result<()>> {
        None
    }

    // --- manifests ---

    /// Store a manifest and, if accepted, apply it, in one transaction: the ECUs' reported
    /// states, the assignments it completes or fails, the vehicle's last-seen time. An
    /// accepted manifest whose nonce the vehicle already used fails with
    /// [`crate::Error::NonceReused`] and writes nothing. A refused manifest is stored and
    /// changes nothing else. Returns the manifest's id and whether the vehicle must be
    /// re-signed (an assignment settled: see [`crate::queue::settle`]; or its targets miss a
    /// queue head).
    fn record_manifest(&self, manifest: &IncomingManifest) -> Result<RecordedManifest>;
    /// The vehicle's latest manifests, newest first.
    fn list_manifests(&self, vin: &str, limit: u32) -> Result<Vec<ManifestEntry>>;
    /// How many manifests are stored for `vin` (with that verdict, if given).
    fn count_manifests(&self, vin: &str, verdict: Option<Verdict>) -> Result<u64>;
    /// Delete manifests received before `before`, accepted or refused, except each ECU's
    /// latest report's (`ferry admin manifests prune`). Returns how many went.
    fn prune_manifests(&self, before: DateTime<Utc>) -> Result<u64>;

    // --- assignments ---

    /// Assign targets to ECUs of one vehicle, all or nothing. They install after the
    /// vehicle's existing assignments, in the order given.
    fn add_assignments(&self, vin: &str, new: &[NewAssignment]) -> Result<Vec<Assignment>>;
    /// Pending and in-flight assignments, in install order.
    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>>;
    /// Every assignment of the vehicle (any status), in install order.
    fn assignments(&self, vin: &str) -> Result<Vec<Assignment>>;
    /// Cancel every active assignment of `vin`; returns how many were cancelled.
    fn cancel_assignments(&self, vin: &str, detail: &str) -> Result<u64>;
    /// Cancel one active assignment.
    fn cancel_assignment(&self, id: i64, detail: &str) -> Result<Assignment>;
    /// Mark pending assignments as served to the vehicle; returns how many changed
    /// (ids already in flight or finished are left alone).
    fn mark_in_flight(&self, ids: &[i64]) -> Result<u64>;

    // --- signed metadata ---

    /// Store the latest signed `role` metadata of `vin`. `version` must be above the stored one.
    fn put_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
        expires: DateTime<Utc>,
        bytes: &[u8],
    ) -> Result<()>;
    fn get_vehicle_metadata(&self, vin: &str, role: MetadataRole)
        -> Result<Option<StoredMetadata>>;
    /// Stored vehicle metadata expiring before `t`, soonest first.
    fn vehicles_with_metadata_expiring_before(
        &self,
        t: DateTime<Utc>,
    ) -> Result<Vec<ExpiringMetadata>>;
    /// Store director root `version`, which must be 1 or the latest stored plus one (clients
    /// walk root versions N+1, N+2, ... so none may be missing or replaced).
    fn put_root(&self, version: u64, bytes: &[u8]) -> Result<()>;
    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>>;
    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>>;

    // --- PURE-2 offline-update bundles ---

    /// Store the next version of a bundle's signed offline-update targets and the next
    /// offline-update snapshot (which lists it), together.
    fn put_offline_bundle(&self, bundle: &OfflineBundle, snapshot: (u64, &[u8])) -> Result<()>;
    /// Mark bundle `name` revoked and store the next snapshot, which no longer lists it.
    fn revoke_offline_bundle(&self, name: &str, snapshot: (u64, &[u8])) -> Result<()>;
    fn offline_bundle(&self, name: &str) -> Result<Option<OfflineBundle>>;
    /// Every bundle, revoked ones included, by name.
    fn offline_bundles(&self) -> Result<Vec<OfflineBundle>>;
    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>>;
    /// Record a verified offline-install receipt (its `id` is ignored); the same signed
    /// content twice (`signed_sha256`: the digest of its canonical signed part, so a
    /// re-encoded copy is the same receipt) is refused ([`crate::Error::ReceiptRecorded`]).
    /// Returns the new id.
    fn record_offline_receipt(
        &self,
        receipt: &OfflineReceipt,
        body: &[u8],
        signed_sha256: &[u8; 32],
    ) -> Result<i64>;
    /// `vin`'s recorded receipts, oldest first.
    fn offline_receipts(&self, vin: &str) -> Result<Vec<OfflineReceipt>>;

    // --- admin tokens ---

    /// A new admin token: returns its id and its secret (shown once, stored only as a hash).
    /// An admin token of `scope`, refused from `expires_at` on if given: its id and secret.
    fn create_admin_token(
        &self,
        name: &str,
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(i64, String)>;
    /// The scope of the unrevoked token with this secret, if any.
    fn check_admin_token(&self, secret: &str) -> Result<Option<Scope>>;
    fn revoke_admin_token(&self, id: i64) -> Result<()>;
    fn list_admin_tokens(&self) -> Result<Vec<AdminToken>>;

    // --- gateway relays (issue #20) ---

    /// Register relay `name` (a VIN-like name) and make its token: returns the secret, kept
    /// only as its SHA-256. With `cert_sha256`, the SHA-256 of its client certificate (DER)
    /// is registered too: on the mutual-TLS listener the relay is that certificate. A name
    /// registered before, revoked or not, is refused.
    fn add_relay(&self, name: &str, cert_sha256: Option<&[u8; 32]>) -> Result<String>;
    /// Whether `secret` is the token of the unrevoked relay `name` (constant-time).
    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool>;
    /// Whether `sha256` is the client certificate registered for the unrevoked relay `name`.
    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool>;
    /// Every registered relay, by name.
    fn list_relays(&self) -> Result<Vec<Relay>>;
    /// Refuse relay `name`'s token from now on.
    fn revoke_relay(&self, name: &str) -> Result<()>;
    /// Record that `vin`'s manifest came through relay `relay` at `now` (replacing what was
    /// recorded of `vin` before).
    fn record_relay_vehicle(&self, vin: &str, relay: &str, now: DateTime<Utc>) -> Result<()>;
    /// The vehicles last seen through relay `name`: their last relayed manifest came through
    /// it and none came straight to the Director since. By VIN.
    fn relay_vehicles(&self, name: &str) -> Result<Vec<String>>;
    /// The SHA-256 of `vin`'s current device token secret (None: unknown vehicle, or none
    /// issued). For `ferry admin relay pack`: a relay that never reaches the Director checks
    /// the site's vehicles against it; the hash does not let anyone present the token.
    fn device_token_hash(&self, vin: &str) -> Result<Option<Vec<u8>>>;
    /// The SHA-256 of the unrevoked relay `name`'s token secret (None: unknown or revoked):
    /// the key of the MAC over its export index (`ferry admin relay import` checks it here).
    fn relay_secret_hash(&self, name: &str) -> Result<Option<Vec<u8>>>;

    // --- maintenance ---

    /// The backend's own consistency check; Ok only when it finds nothing wrong.
    fn integrity_check(&self) -> Result<()>;

    // --- what happens once across every Director on this store ---

    /// Wait until no other signing of `vin`'s metadata runs (see `signing_lock.rs`), and keep
    /// it so while the guard lives. The default holds across the threads of this process,
    /// enough for a store only one process opens; a shared store holds it across processes.
    fn signing_turn(&self, vin: &str) -> Result<Guard> {
        Ok(Guard::new(crate::signing_lock::lock(vin)))
    }

    /// Lead the background work named `what` (the refresher) while the guard lives, if no
    /// other Director leads it now; `None` if one does. A leader that dies loses its lead.
    fn try_lead(&self, _what: &str) -> Result<Option<Guard>> {
        Ok(Some(Guard::new(())))
    }

    /// Which backend and where, without credentials (`ferry director status`).
    fn backend(&self) -> String;
}

/// Something held (a lock, a lead) until dropped.
pub struct Guard {
    _held: Box<dyn std::any::Any>,
}

impl Guard {
    pub fn new(held: impl std::any::Any) -> Self {
        Guard {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Guard")
    }
}

/// Open the store `[database]` configures: PostgreSQL when it has a `url`, else the SQLite
/// file `sqlite_path`. Stamps rows with `clock`'s time.
pub fn open(
    database: &crate::config::DatabaseConfig,
    sqlite_path: &std::path::Path,
    clock: std::sync::Arc<dyn ferry_core::Clock>,
) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match database.postgres() {
        Some(settings) => std::sync::Arc::new(PgStore::open_with_clock(&settings, clock)?),
        None => std::sync::Arc::new(SqliteStore::open_configured(
            sqlite_path,
            SqliteStore::DEFAULT_READERS,
            database.durability,
            clock,
        )?),
    })
}

/// The registration rules a backend checks before touching storage: a valid VIN; each ECU
/// with a serial, a hardware id and a key of a supported scheme; no serial twice; exactly one
/// primary. (Serials unique across the fleet is the backend's check.)
pub(crate) fn check_registration(vehicle: &NewVehicle) -> Result<()> {
    check_vin(&vehicle.vin)?;
    let vin = &vehicle.vin;
    let mut seen = std::collections::BTreeSet::new();
    for ecu in &vehicle.ecus {
        let invalid = |reason: String| crate::Error::InvalidEcu {
            vin: vin.clone(),
            serial: ecu.serial.clone(),
            reason,
        };
        if ecu.serial.is_empty() || ecu.serial.chars().any(char::is_control) {
            return Err(invalid(
                "serial is empty or has control characters; expected a printable serial".into(),
            ));
        }
        if ecu.hardware_id.is_empty() {
            return Err(invalid(
                "hardware id is empty; expected the id the Image repository's hardwareIds use"
                    .into(),
            ));
        }
        if let Err(e) = ecu
            .public_key
            .scheme()
            .and_then(|_| ecu.public_key.key_id())
        {
            return Err(invalid(format!(
                "public key check failed: {e}; expected an ed25519, rsassa-pss-sha256 or ecdsa-sha2-nistp256 key"
            )));
        }
        if !seen.insert(ecu.serial.as_str()) {
            return Err(crate::Error::SerialRepeated {
                vin: vin.clone(),
                serial: ecu.serial.clone(),
            });
        }
    }
    let primaries = vehicle.ecus.iter().filter(|e| e.primary).count();
    if primaries != 1 {
        return Err(crate::Error::PrimaryCount {
            vin: vin.clone(),
            found: primaries,
        });
    }
    Ok(())
}

/// Whether `name` may name a relay: the rules of a VIN (it travels in a token and in paths).
pub(crate) fn check_relay_name(name: &str) -> Result<()> {
    check_vin(name).map_err(|e| match e {
        crate::Error::InvalidVin { reason, .. } => crate::Error::InvalidRelayName {
            name: name.to_owned(),
            reason,
        },
        other => other,
    })
}

/// Whether `vin` may be registered: non-empty, at most 64 bytes, and only ASCII letters,
/// digits, `-`, `_` and `.` (it is a path segment of the device API), not `.` or `..`.
pub(crate) fn check_vin(vin: &str) -> Result<()> {
    let reason = if vin.is_empty() {
        Some("is empty; expected a non-empty VIN")
    } else if vin.len() > 64 {
        Some("is longer than 64 bytes; expected at most 64")
    } else if !vin
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Some("has other characters than expected: only ASCII letters, digits, '-', '_' and '.'")
    } else if vin == "." || vin == ".." {
        Some("is a relative path segment; expected a VIN")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(crate::Error::InvalidVin {
            vin: vin.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
