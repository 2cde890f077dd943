//! A consistent read-only view of the store ([`View`], taken with [`read`]): what one device
//! request reads (its credential, then its metadata or its ECU keys) comes from one snapshot.
//!
//! Why: in SQLite every read transaction that follows a commit of the writer starts with an
//! empty page cache (WAL mode drops the reader's cache when the database changed), so a
//! device request that read its token and its metadata in two transactions paid for two
//! transaction starts and re-read the same B-tree pages twice. One view is also the stronger
//! guarantee: the credential and the data it unlocks are read at the same instant.

use super::Store;
use crate::model::{Assignment, MetadataRole, StoredMetadata};
use crate::{Error, Result};
use ferry_core::manifest::RegisteredVehicle;

/// A read a device request announces before it makes it ([`View::prefetch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefetch<'a> {
    /// [`View::verify_device_token`] of this VIN.
    DeviceToken(&'a str),
    /// [`View::ecu_keys`].
    EcuKeys(&'a str),
    /// [`View::get_vehicle_metadata`].
    Metadata(&'a str, MetadataRole),
    /// [`View::active_assignments`].
    ActiveAssignments(&'a str),
}

/// The reads a device request makes, all within one snapshot of the store. Each method
/// behaves exactly as the [`Store`] method of the same name.
pub trait View {
    /// Announce reads about to be made, so that a store whose every read is a round trip to
    /// a server sends them together (PostgreSQL: at once, with the view's BEGIN). Changes
    /// nothing a read returns: an announced read, when made, returns what it would have
    /// (from the same snapshot); one never made costs only its query. A store whose reads
    /// are function calls ignores it. Fails only if the view could not be begun.
    fn prefetch(&self, _reads: &[Prefetch<'_>]) -> Result<()> {
        Ok(())
    }
    /// See [`Store::verify_device_token`].
    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool>;
    /// See [`Store::verify_relay_token`].
    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool>;
    /// See [`Store::verify_relay_cert`].
    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool>;
    /// See [`Store::ecu_keys`].
    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>>;
    /// See [`Store::get_vehicle_metadata`].
    fn get_vehicle_metadata(&self, vin: &str, role: MetadataRole)
        -> Result<Option<StoredMetadata>>;
    /// Version `version` of `vin`'s `role` metadata (targets or snapshot): the latest, or one
    /// of the last superseded ones, kept for vehicles that name it mid-refresh.
    fn get_vehicle_metadata_version(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
    ) -> Result<Option<Vec<u8>>>;
    /// See [`Store::active_assignments`].
    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>>;
    /// See [`Store::get_root`].
    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>>;
    /// See [`Store::latest_root`].
    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>>;
    /// See [`Store::latest_offline_snapshot`].
    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>>;
}

/// Run `f` on one consistent view of `store` (blocking). `f`'s own result, which may carry
/// its own error type, is handed back as is; the outer error is the store's failing to open
/// or end the view.
pub fn read<T>(store: &dyn Store, op: &str, f: impl FnOnce(&dyn View) -> T) -> Result<T> {
    through(op, f, |g| Some(store.with_view(op, g))).unwrap_or_else(|| Err(never_opened(op)))
}

/// [`read`] where each read may see the store at a different instant: for a check whose
/// answer counts only until the same check is made again in a [`read`] view (the manifest
/// upload's credential, checked before its body is read and again with the keys after).
/// Costs a server-backed store no transaction.
pub fn read_each<T>(store: &dyn Store, op: &str, f: impl FnOnce(&dyn View) -> T) -> Result<T> {
    through(op, f, |g| Some(store.with_reads(op, g))).unwrap_or_else(|| Err(never_opened(op)))
}

/// [`read`] without waiting: `None` (and `f` not called) if the view would have to wait for a
/// connection another thread holds. Async code takes this fast path and falls back to
/// [`read`] on a blocking thread.
pub fn try_read<T>(
    store: &dyn Store,
    op: &str,
    f: impl FnOnce(&dyn View) -> T,
) -> Option<Result<T>> {
    through(op, f, |g| store.try_with_view(op, g))
}

/// `f`'s result through `open`, a store's view method, which is to call it exactly once.
fn through<T>(
    op: &str,
    f: impl FnOnce(&dyn View) -> T,
    open: impl FnOnce(&mut dyn FnMut(&dyn View) -> Result<()>) -> Option<Result<()>>,
) -> Option<Result<T>> {
    let mut f = Some(f);
    let mut out = None;
    let opened = open(&mut |view| {
        if let Some(f) = f.take() {
            out = Some(f(view));
        }
        Ok(())
    })?;
    Some(opened.and_then(|()| out.ok_or_else(|| never_opened(op))))
}

fn never_opened(op: &str) -> Error {
    Error::storage(
        op.to_owned(),
        "read view check failed: the store never opened the view; expected it to run the read once",
    )
}

/// Whether `presented` matches the stored SHA-256 of a device token, compared in constant time
/// (false when no token is stored).
pub(crate) fn device_token_matches(stored: Option<&[u8]>, presented: &str) -> bool {
    let presented = crate::secret::hash(presented);
    stored.is_some_and(|h| crate::secret::ct_eq(h, &presented))
}
