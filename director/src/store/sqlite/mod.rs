//! The embedded backend: one SQLite file (`director.db`) in WAL mode.
//!
//! Durability (`[database] durability` in `director.toml`): `journal_mode=WAL` with
//! `synchronous=FULL` by default ([`Durability::Full`]): the WAL is fsync'ed on every commit,
//! so an acknowledged manifest and a signed version number survive a power loss too (a
//! re-signing after one must never reuse a version vehicles already trust). With
//! [`Durability::Normal`] (`synchronous=NORMAL`) a commit appends the transaction to the WAL
//! with write(2) before `commit` returns and the WAL is fsync'ed only at checkpoints, which a
//! thread of their own runs ([`checkpointer`]): a kill -9 of the Director still loses no
//! committed transaction (the bytes are in the OS page cache and recovered from the WAL on the
//! next open), but an OS crash or power loss can lose the last transactions before a
//! checkpoint; the database itself stays consistent either way.
//!
//! Build: the bundled SQLite is compiled without `SQLITE_ENABLE_MEMORY_MANAGEMENT` and with
//! `SQLITE_DEFAULT_MEMSTATUS=0` (`LIBSQLITE3_FLAGS` in the workspace's `.cargo/config.toml`).
//! libsqlite3-sys turns memory management on, which puts every connection's pages in one
//! shared cache behind one global mutex, and memory statistics take another global mutex on
//! every allocation. The readers and the writer then queue on those mutexes, and a thread
//! preempted while holding one stalls the rest: under `ferry bench director` a core sat idle
//! 12% of the time. Neither feature is used here (no soft heap limit, no memory counters).

mod admin;
mod assignments;
mod checkpointer;
mod ecu_keys;
mod inventory;
mod manifests;
mod metadata;
mod offline;
mod pool;
mod relays;
mod schema;
mod writer;

use super::view::{device_token_matches, View};
use super::Store;
use crate::model::{
    AdminToken, Assignment, EcuRef, ExpiringMetadata, IncomingManifest, ManifestEntry,
    MetadataRole, NewAssignment, NewVehicle, OfflineBundle, OfflineReceipt, RecordedManifest,
    Relay, Scope, StoredMetadata, Vehicle, Verdict,
};
use crate::{Error, Result};
use checkpointer::Checkpointer;
use chrono::{DateTime, Utc};
use ferry_core::manifest::RegisteredVehicle;
use ferry_core::{Clock, SystemClock};
use pool::{connect, Pool, Role};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a commit waits for (see the module documentation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=NORMAL`: committed transactions survive a process crash.
    Normal,
    /// `synchronous=FULL`: committed transactions also survive an OS crash or power loss.
    #[default]
    Full,
}

impl Durability {
    /// As `director.toml` and `ferry bench director` write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }
}

/// The SQLite [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    /// Held for its drop, which stops its thread; first, so before the connections close.
    _checkpointer: Checkpointer,
    pool: Pool,
    path: PathBuf,
    keys: ecu_keys::KeyCache,
    /// The time rows are stamped with (registered, created, updated, revoked).
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    pub const DEFAULT_READERS: usize = 4;

    /// Open (creating it if needed) the database at `path` and migrate it to the latest schema,
    /// with the default [`Durability::Full`]. Rows are stamped with the system clock's time.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Self::DEFAULT_READERS, Durability::default())
    }

    /// [`SqliteStore::open`], stamping rows with `clock`'s time.
    pub fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open_configured(path, Self::DEFAULT_READERS, Durability::default(), clock)
    }

    /// [`SqliteStore::open`] with `readers` reader connections (at least one).
    pub fn open_with(
        path: impl AsRef<Path>,
        readers: usize,
        durability: Durability,
    ) -> Result<Self> {
        Self::open_configured(path, readers, durability, Arc::new(SystemClock))
    }

    /// [`SqliteStore::open_with`], stamping rows with `clock`'s time.
    pub fn open_configured(
        path: impl AsRef<Path>,
        readers: usize,
        durability: Durability,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        // Created 0600 before SQLite opens it: the WAL and shared-memory files SQLite makes
        // take the database file's mode, so none of them is readable by others.
        ferry_keys::fs::create_private_file(&path)
            .map_err(|e| Error::storage(format!("create {}", path.display()), e))?;
        let mut writer = connect(&path, Role::Writer, durability)?;
        schema::migrate_to(&mut writer, schema::latest())?;
        let readers = (0..readers.max(1))
            .map(|_| connect(&path, Role::Reader, durability))
            .collect::<Result<Vec<_>>>()?;
        let pool = Pool::new(writer, readers);
        let checkpointer = Checkpointer::start(
            connect(&path, Role::Checkpointer, durability)?,
            pool.commits(),
        )?;
        Ok(SqliteStore {
            _checkpointer: checkpointer,
            pool,
            path,
            keys: ecu_keys::KeyCache::default(),
            clock,
        })
    }

    /// The clock's time, as rows store it.
    fn now_ms(&self) -> i64 {
        ms(self.clock.now())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<i64> {
        self.pool.read("schema version", schema::user_version)
    }

    /// The schema version this build migrates to.
    pub fn latest_schema_version() -> i64 {
        schema::latest()
    }
}

// --- conversions shared by the table modules ---

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(what: &str, v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| Error::corrupt(what, format!("time {v} ms is out of range")))
}

/// A version as SQLite stores it (a signed 64-bit integer).
pub(super) fn version_to_sql(what: &str, version: u64) -> Result<i64> {
    i64::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| Error::VersionOutOfRange {
            what: what.to_owned(),
            version,
        })
}

pub(super) fn version_from_sql(what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::corrupt(what, format!("negative version {v}")))
}

/// `map_err` for a statement that failed.
pub(super) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| Error::storage(op, e)
}

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::corrupt(what, e))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::corrupt(what, e))
}

/// Whether `e` says the file is damaged.
pub(super) fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Whether `e` is a violation of a UNIQUE or PRIMARY KEY constraint.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    e.sqlite_error().is_some_and(|f| {
        f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    })
}

impl Store for SqliteStore {
    fn register_vehicle(&self, vehicle: &NewVehicle) -> Result<Vehicle> {
        super::check_registration(vehicle)?;
        self.pool.write("register vehicle", |tx| {
            inventory::register(tx, vehicle, self.now_ms())?;
            inventory::get_vehicle(tx, &vehicle.vin)?.ok_or_else(|| Error::UnknownVehicle {
                vin: vehicle.vin.clone(),
            })
        })
    }

    fn get_vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.pool
            .read("get vehicle", |tx| inventory::get_vehicle(tx, vin))
    }

    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>> {
        self.pool.read("read ECU keys", |tx| {
            ecu_keys::ecu_keys(tx, &self.keys, vin)
        })
    }

    fn list_vins(&self) -> Result<Vec<String>> {
        self.pool.read("list vehicles", inventory::list_vins)
    }

    fn list_vehicles(&self, after: Option<&str>, limit: u32) -> Result<Vec<Vehicle>> {
        self.pool.read("list vehicles", |tx| {
            inventory::list_vehicles(tx, after, limit)
        })
    }

    fn ecus_with_hardware_id(
        &self,
        hardware_id: &str,
        vins: Option<&[String]>,
    ) -> Result<Vec<EcuRef>> {
        self.pool.read("select ECUs by hardware id", |tx| {
            inventory::ecus_with_hardware_id(tx, hardware_id, vins)
        })
    }

    fn vins_without_metadata(&self) -> Result<Vec<String>> {
        self.pool.read("list vehicles without metadata", |tx| {
            inventory::vins_without_metadata(tx)
        })
    }

    fn issue_device_token(&self, vin: &str) -> Result<String> {
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        self.pool.write("issue device token", |tx| {
            inventory::set_device_token_hash(tx, vin, &hash)
        })?;
        Ok(secret)
    }

    fn remove_vehicle(&self, vin: &str) -> Result<u64> {
        self.pool.write("remove vehicle", |tx| {
            inventory::remove(tx, vin, self.now_ms())
        })
    }

    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool> {
        let stored = self.pool.read("verify device token", |tx| {
            inventory::device_token_hash(tx, vin)
        })?;
        Ok(device_token_matches(stored.as_deref(), token))
    }

    fn with_view(&self, op: &str, f: &mut dyn FnMut(&dyn View) -> Result<()>) -> Result<()> {
        self.pool.read(op, |conn| {
            f(&SqliteView {
                conn,
                keys: &self.keys,
            })
        })
    }

    fn try_with_view(
        &self,
        op: &str,
        f: &mut dyn FnMut(&dyn View) -> Result<()>,
    ) -> Option<Result<()>> {
        self.pool.try_read(op, |conn| {
            f(&SqliteView {
                conn,
                keys: &self.keys,
            })
        })
    }

    fn record_manifest(&self, manifest: &IncomingManifest) -> Result<RecordedManifest> {
        self.pool
            .write("record manifest", |tx| manifests::record(tx, manifest))
    }

    fn prune_manifests(&self, before: DateTime<Utc>) -> Result<u64> {
        self.pool
            .write("prune manifests", |tx| manifests::prune(tx, ms(before)))
    }

    fn list_manifests(&self, vin: &str, limit: u32) -> Result<Vec<ManifestEntry>> {
        self.pool
            .read("list manifests", |tx| manifests::list(tx, vin, limit))
    }

    fn count_manifests(&self, vin: &str, verdict: Option<Verdict>) -> Result<u64> {
        self.pool
            .read("count manifests", |tx| manifests::count(tx, vin, verdict))
    }

    fn add_assignments(&self, vin: &str, new: &[NewAssignment]) -> Result<Vec<Assignment>> {
        self.pool.write("add assignments", |tx| {
            assignments::add(tx, vin, new, self.now_ms())
        })
    }

    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        self.pool.read("list active assignments", |tx| {
            assignments::list(tx, vin, true)
        })
    }

    fn assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        self.pool
            .read("list assignments", |tx| assignments::list(tx, vin, false))
    }

    fn cancel_assignments(&self, vin: &str, detail: &str) -> Result<u64> {
        self.pool.write("cancel assignments", |tx| {
            assignments::cancel_vehicle(tx, vin, detail, self.now_ms())
        })
    }

    fn cancel_assignment(&self, id: i64, detail: &str) -> Result<Assignment> {
        self.pool.write("cancel assignment", |tx| {
            assignments::cancel_one(tx, id, detail, self.now_ms())
        })
    }

    fn mark_in_flight(&self, ids: &[i64]) -> Result<u64> {
        self.pool.write("mark assignments in flight", |tx| {
            assignments::mark_in_flight(tx, ids, self.now_ms())
        })
    }

    fn put_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
        expires: DateTime<Utc>,
        bytes: &[u8],
    ) -> Result<()> {
        self.pool.write("store vehicle metadata", |tx| {
            metadata::put(tx, vin, role, version, expires, bytes)
        })
    }

    fn get_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
    ) -> Result<Option<StoredMetadata>> {
        self.pool
            .read("read vehicle metadata", |tx| metadata::get(tx, vin, role))
    }

    fn vehicles_with_metadata_expiring_before(
        &self,
        t: DateTime<Utc>,
    ) -> Result<Vec<ExpiringMetadata>> {
        self.pool.read("list expiring metadata", |tx| {
            metadata::expiring_before(tx, t)
        })
    }

    fn put_root(&self, version: u64, bytes: &[u8]) -> Result<()> {
        self.pool.write("store director root", |tx| {
            metadata::put_root(tx, version, bytes)
        })
    }

    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>> {
        self.pool
            .read("read director root", |tx| metadata::get_root(tx, version))
    }

    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.pool
            .read("read latest director root", metadata::latest_root)
    }

    fn put_offline_bundle(&self, bundle: &OfflineBundle, snapshot: (u64, &[u8])) -> Result<()> {
        self.pool.write("store offline bundle", |tx| {
            offline::put(tx, bundle, snapshot)
        })
    }

    fn revoke_offline_bundle(&self, name: &str, snapshot: (u64, &[u8])) -> Result<()> {
        let now = self.now_ms();
        self.pool.write("revoke offline bundle", |tx| {
            offline::revoke(tx, name, snapshot, now)
        })
    }

    fn offline_bundle(&self, name: &str) -> Result<Option<OfflineBundle>> {
        self.pool
            .read("read offline bundle", |tx| offline::get(tx, name))
    }

    fn offline_bundles(&self) -> Result<Vec<OfflineBundle>> {
        self.pool.read("list offline bundles", offline::list)
    }

    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.pool
            .read("read offline-update snapshot", offline::latest_snapshot)
    }

    fn record_offline_receipt(
        &self,
        receipt: &OfflineReceipt,
        body: &[u8],
        signed_sha256: &[u8; 32],
    ) -> Result<i64> {
        self.pool.write("record offline receipt", |tx| {
            offline::record_receipt(tx, receipt, body, signed_sha256)
        })
    }

    fn offline_receipts(&self, vin: &str) -> Result<Vec<OfflineReceipt>> {
        self.pool
            .read("list offline receipts", |tx| offline::receipts(tx, vin))
    }

    fn create_admin_token(
        &self,
        name: &str,
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(i64, String)> {
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        let id = self.pool.write("create admin token", |tx| {
            admin::create(tx, name, scope, &hash, self.now_ms(), expires_at.map(ms))
        })?;
        Ok((id, secret))
    }

    fn check_admin_token(&self, secret: &str) -> Result<Option<Scope>> {
        let presented = crate::secret::hash(secret);
        self.pool.read("check admin token", |tx| {
            admin::check(tx, &presented, self.now_ms())
        })
    }

    fn revoke_admin_token(&self, id: i64) -> Result<()> {
        self.pool.write("revoke admin token", |tx| {
            admin::revoke(tx, id, self.now_ms())
        })
    }

    fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        self.pool.read("list admin tokens", admin::list)
    }

    fn backend(&self) -> String {
        format!("sqlite {}", self.path.display())
    }

    fn add_relay(&self, name: &str, cert_sha256: Option<&[u8; 32]>) -> Result<String> {
        super::check_relay_name(name)?;
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        let now = self.now_ms();
        self.pool.write("register relay", |tx| {
            relays::add(tx, name, &hash, cert_sha256, now)
        })?;
        Ok(secret)
    }

    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool> {
        self.pool
            .read("verify relay token", |tx| relays::verify(tx, name, secret))
    }

    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool> {
        self.pool.read("verify relay certificate", |tx| {
            relays::verify_cert(tx, name, sha256)
        })
    }

    fn record_relay_vehicle(&self, vin: &str, relay: &str, now: DateTime<Utc>) -> Result<()> {
        let at = now.timestamp_millis();
        self.pool.write("record a relay's vehicle", |tx| {
            relays::record_vehicle(tx, vin, relay, at)
        })
    }

    fn relay_vehicles(&self, name: &str) -> Result<Vec<String>> {
        self.pool
            .read("list a relay's vehicles", |tx| relays::vehicles(tx, name))
    }

    fn list_relays(&self) -> Result<Vec<Relay>> {
        self.pool.read("list relays", relays::list)
    }

    fn revoke_relay(&self, name: &str) -> Result<()> {
        let now = self.now_ms();
        self.pool
            .write("revoke relay", |tx| relays::revoke(tx, name, now))
    }

    fn relay_secret_hash(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.pool.read("read a relay's token hash", |tx| {
            relays::secret_hash(tx, name)
        })
    }

    fn device_token_hash(&self, vin: &str) -> Result<Option<Vec<u8>>> {
        self.pool.read("read a device token hash", |tx| {
            inventory::device_token_hash(tx, vin)
        })
    }

    fn integrity_check(&self) -> Result<()> {
        let report = self.pool.read("integrity check", |tx| {
            let mut stmt = tx
                .prepare("PRAGMA integrity_check")
                .map_err(db("integrity check"))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(db("integrity check"))?;
            match rows.collect::<rusqlite::Result<Vec<String>>>() {
                Ok(report) => Ok(report),
                // Damage bad enough that the check itself cannot walk the file.
                Err(e) if is_corruption(&e) => Ok(vec![e.to_string()]),
                Err(e) => Err(Error::storage("integrity check", e)),
            }
        })?;
        if report.len() == 1 && report[0] == "ok" {
            Ok(())
        } else {
            Err(Error::IntegrityCheck {
                report: report.join("; "),
            })
        }
    }
}

/// A [`View`]: the reads of the [`Store`] methods of the same names, on a connection inside
/// [`Pool::read`]'s one read transaction.
struct SqliteView<'a> {
    conn: &'a rusqlite::Connection,
    keys: &'a ecu_keys::KeyCache,
}

impl View for SqliteView<'_> {
    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool> {
        relays::verify(self.conn, name, secret)
    }

    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool> {
        relays::verify_cert(self.conn, name, sha256)
    }

    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool> {
        let stored = inventory::device_token_hash(self.conn, vin)?;
        Ok(device_token_matches(stored.as_deref(), token))
    }

    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>> {
        ecu_keys::ecu_keys(self.conn, self.keys, vin)
    }

    fn get_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
    ) -> Result<Option<StoredMetadata>> {
        metadata::get(self.conn, vin, role)
    }

    fn get_vehicle_metadata_version(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
    ) -> Result<Option<Vec<u8>>> {
        metadata::get_version(self.conn, vin, role, version)
    }

    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        assignments::list(self.conn, vin, true)
    }

    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>> {
        metadata::get_root(self.conn, version)
    }

    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>> {
        metadata::latest_root(self.conn)
    }

    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        offline::latest_snapshot(self.conn)
    }
}

#[cfg(test)]
mod tests;
