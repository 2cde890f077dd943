//! The PostgreSQL backend: any number of Directors on one database (`[database] url` in
//! `director.toml`).
//!
//! The store owns a small tokio runtime on which tokio-postgres drives its connections; the
//! blocking [`Store`] methods (called from plain threads or tokio's blocking pool, never from
//! an async task) wait on it with `block_on`. Connections come from a deadpool pool (size and
//! timeouts from the config) that opens them on demand: when the server goes away requests
//! fail with [`Error::DatabaseUnavailable`] (503), and succeed again once it is back.
//!
//! What must happen once across Directors is the database's to enforce: a vehicle's writes
//! lock its row; metadata versions only go up (read `FOR UPDATE`, upserted only upwards); an
//! accepted nonce is a unique index; a vehicle's signing and the refresher's leadership are
//! advisory locks ([`locks`]). Nothing read from the database is cached except parsed keys,
//! keyed by their stored text.

mod admin;
mod assignments;
pub mod cluster;
mod ecu_keys;
mod import;
mod inventory;
mod locks;
mod manifests;
mod metadata;
mod offline;
mod relays;
mod schema;
mod sql;
mod view;

pub use import::Copied;

use super::key_cache::KeyCache;
use super::view::{device_token_matches, View};
use super::{Guard, Store};
use crate::model::{
    AdminToken, Assignment, EcuRef, ExpiringMetadata, IncomingManifest, ManifestEntry,
    MetadataRole, NewAssignment, NewVehicle, OfflineBundle, OfflineReceipt, RecordedManifest,
    Relay, Scope, StoredMetadata, Vehicle, Verdict,
};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ferry_core::manifest::RegisteredVehicle;
use ferry_core::{Clock, SystemClock};
use sql::{classify, ms};
use std::future::Future;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// `|c| Box::pin(async move { body })`, the shape [`PgStore::read`] and [`PgStore::write`]
/// take.
macro_rules! on {
    (|$c:ident| $body:expr) => {
        |$c, _| Box::pin(async move { $body.await })
    };
}

/// How the PostgreSQL store connects (`[database]` in `director.toml`).
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// `postgres://user[:password]@host[:port]/dbname` or libpq's `key=value` form.
    pub url: String,
    /// Connections for queries (as many more for held locks, opened only when needed).
    pub pool_size: usize,
    /// How long opening a connection may take.
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection before it fails with 503.
    pub acquire_timeout: Duration,
}

impl PgSettings {
    pub fn new(url: impl Into<String>) -> Self {
        PgSettings {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL [`Store`].
pub struct PgStore {
    /// `Some` until drop, which shuts it down without blocking (a store may be dropped on an
    /// async thread, where a runtime must not be dropped).
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    locks: Pool,
    /// The server and database, without credentials (for logs, errors and status).
    target: String,
    keys: KeyCache,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        self.locks.close();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A pool failure as the Director's error: a timeout or a failed connect is the database
/// being unavailable.
pub(super) fn pool_error(op: &str, e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => classify(op, e),
        e @ (PoolError::Timeout(_) | PoolError::Closed) => Error::DatabaseUnavailable {
            op: op.to_owned(),
            detail: e.to_string(),
        },
        e => Error::storage(op.to_owned(), e),
    }
}

/// `url` without its password, as logs and `ferry director status` show it.
pub fn redacted(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            let ports: Vec<String> = c.get_ports().iter().map(u16::to_string).collect();
            format!(
                "postgresql://{}@{}:{}/{}",
                c.get_user().unwrap_or(""),
                hosts.join(","),
                if ports.is_empty() {
                    "5432".to_owned()
                } else {
                    ports.join(",")
                },
                c.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "postgresql://(unparsable url)".to_owned(),
    }
}

impl PgStore {
    /// Connect, migrate to the latest schema (refusing a newer one), stamping rows with the
    /// system clock's time. Fails with [`Error::DatabaseUnavailable`] if the server cannot be
    /// reached.
    pub fn open(settings: &PgSettings) -> Result<Self> {
        Self::open_with_clock(settings, Arc::new(SystemClock))
    }

    /// [`PgStore::open`], stamping rows with `clock`'s time.
    pub fn open_with_clock(settings: &PgSettings, clock: Arc<dyn Clock>) -> Result<Self> {
        let target = redacted(&settings.url);
        let mut config =
            tokio_postgres::Config::from_str(&settings.url).map_err(|e| Error::Config {
                path: std::path::PathBuf::from(crate::config::CONFIG_FILE),
                reason: format!(
                    "database.url is not a PostgreSQL URL ({e}); expected postgres://user@host:port/dbname"
                ),
            })?;
        config.connect_timeout(settings.connect_timeout);
        config.application_name("ferry-director");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ferry-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::storage("start the PostgreSQL client runtime", e))?;
        let pool = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                tokio_postgres::NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(settings.acquire_timeout))
                .create_timeout(Some(settings.connect_timeout))
                .recycle_timeout(Some(settings.connect_timeout))
                .build()
                .map_err(|e| Error::storage("create the PostgreSQL pool", e))
        };
        let store = PgStore {
            pool: pool(settings.pool_size)?,
            locks: pool(settings.pool_size)?,
            runtime: Some(runtime),
            target,
            keys: KeyCache::default(),
            clock,
        };
        store.block(async {
            let op = format!("connect to {}", store.target);
            let mut client = store.pool.get().await.map_err(|e| pool_error(&op, e))?;
            schema::migrate_to(&mut client, crate::store::migrations::latest()).await
        })?;
        Ok(store)
    }

    /// The server and database (no credentials).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64> {
        self.read("schema version", on!(|c| schema::version(c)))
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        // Taken only by drop, after which no method runs.
        self.runtime
            .as_ref()
            .unwrap_or_else(|| unreachable!("the runtime lives as long as the store"))
    }

    fn block<T>(&self, f: impl Future<Output = T>) -> T {
        self.runtime().block_on(f)
    }

    /// `f` on a [`view::PgView`] of a pooled connection, with or without a `snapshot`.
    fn view(
        &self,
        op: &str,
        snapshot: bool,
        f: &mut dyn FnMut(&dyn View) -> Result<()>,
    ) -> Result<()> {
        let client = self.block(self.client(op))?;
        let view = view::PgView::new(self, &client, op, snapshot);
        let out = f(&view);
        let begun = view.begun();
        if begun {
            // Read only: ending it either way is the same. The ROLLBACK is sent and not
            // waited for (its answer is dropped): the connection goes back to the pool at
            // once, and whoever takes it next is served after the ROLLBACK, in order.
            send_only(client.batch_execute("ROLLBACK"));
        }
        out
    }

    fn now_ms(&self) -> i64 {
        ms(self.clock.now())
    }

    async fn client(&self, op: &str) -> Result<Object> {
        self.pool.get().await.map_err(|e| pool_error(op, e))
    }

    /// Run `f` on a connection outside any explicit transaction (one statement, or reads that
    /// need no common snapshot).
    fn read<'a, T>(
        &'a self,
        op: &str,
        f: impl for<'c> FnOnce(&'c Object, Within<'c, 'a>) -> BoxFuture<'c, Result<T>>,
    ) -> Result<T> {
        self.block(async {
            let client = self.client(op).await?;
            f(&client, PhantomData).await
        })
    }

    /// Run `f` in one transaction, committed if it returns Ok; run again (at most three
    /// times) when PostgreSQL aborted it for a deadlock or a serialization failure.
    ///
    /// The BEGIN goes out together with `f`'s first statements (requests are sent in the
    /// order their futures are first polled, the BEGIN first), so a write waits one round
    /// trip less than if the BEGIN were answered first. Nothing `f` sends can run outside
    /// the transaction: the server answers in order, and a BEGIN fails only on a broken
    /// connection or in an aborted transaction, where every statement after it fails too;
    /// a failed BEGIN fails the write whatever `f` returned.
    fn write<'a, T>(
        &'a self,
        op: &str,
        f: impl for<'c> Fn(&'c Object, Within<'c, 'a>) -> BoxFuture<'c, Result<T>>,
    ) -> Result<T> {
        self.block(async {
            let mut attempt = 0;
            loop {
                let open = Open(Some(self.client(op).await?));
                let client = open.client();
                let (began, out) = tokio::join!(
                    biased;
                    client.batch_execute("BEGIN"),
                    f(client, PhantomData),
                );
                let out = began.map_err(|e| classify(op, e)).and(out);
                let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
                let ended = client.batch_execute(end).await.map_err(|e| classify(op, e));
                open.release(ended.is_ok());
                match (out, ended) {
                    (Ok(out), Ok(())) => return Ok(out),
                    (Ok(_), Err(e)) => return Err(e),
                    (Err(e), _) if attempt < 3 && sql::is_retryable(&e) => {
                        attempt += 1;
                        tracing::debug!(op, attempt, "transaction retried after a conflict");
                    }
                    (Err(e), _) => return Err(e),
                }
            }
        })
    }
}

/// A pooled connection in an explicit transaction. Released after its COMMIT or ROLLBACK
/// was answered, it goes back to the pool; a failed end, or a drop without release (a
/// panic mid-transaction), closes it instead: the pool must never hand out a connection
/// that is still in a transaction.
struct Open(Option<Object>);

impl Open {
    fn client(&self) -> &Object {
        // Taken only by release and drop, which consume or end it.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("the connection is held until released"))
    }

    /// Back to the pool if the transaction `ended`; else closed (by drop).
    fn release(mut self, ended: bool) {
        if ended {
            drop(self.0.take());
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}

/// Send a request without waiting for its answer: tokio-postgres queues a request when its
/// future is first polled, and discards the answers of one dropped before they came.
fn send_only<F: Future>(request: F) {
    let mut request = std::pin::pin!(request);
    let _ = request
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + 'a>>;

/// An argument whose type says `'a` outlives `'c`: what lets the future a closure returns for
/// any connection lifetime `'c` borrow the caller's data (of lifetime `'a`).
type Within<'c, 'a> = PhantomData<&'c &'a ()>;

impl Store for PgStore {
    fn register_vehicle(&self, vehicle: &NewVehicle) -> Result<Vehicle> {
        super::check_registration(vehicle)?;
        let now = self.now_ms();
        self.write(
            "register vehicle",
            on!(|tx| async move {
                inventory::register(tx, vehicle, now).await?;
                inventory::get_vehicle(tx, &vehicle.vin)
                    .await?
                    .ok_or_else(|| Error::UnknownVehicle {
                        vin: vehicle.vin.clone(),
                    })
            }),
        )
    }

    fn get_vehicle(&self, vin: &str) -> Result<Option<Vehicle>> {
        self.write("get vehicle", on!(|tx| inventory::get_vehicle(tx, vin)))
    }

    fn ecu_keys(&self, vin: &str) -> Result<Option<RegisteredVehicle>> {
        let keys = &self.keys;
        self.read("read ECU keys", on!(|c| ecu_keys::ecu_keys(c, keys, vin)))
    }

    fn list_vins(&self) -> Result<Vec<String>> {
        self.read("list vehicles", on!(|c| inventory::list_vins(c)))
    }

    fn list_vehicles(&self, after: Option<&str>, limit: u32) -> Result<Vec<Vehicle>> {
        self.write(
            "list vehicles",
            on!(|tx| inventory::list_vehicles(tx, after, limit)),
        )
    }

    fn ecus_with_hardware_id(
        &self,
        hardware_id: &str,
        vins: Option<&[String]>,
    ) -> Result<Vec<EcuRef>> {
        self.read(
            "select ECUs by hardware id",
            on!(|c| inventory::ecus_with_hardware_id(c, hardware_id, vins)),
        )
    }

    fn vins_without_metadata(&self) -> Result<Vec<String>> {
        self.read(
            "list vehicles without metadata",
            on!(|c| inventory::vins_without_metadata(c)),
        )
    }

    fn issue_device_token(&self, vin: &str) -> Result<String> {
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        let hash = &hash;
        self.write(
            "issue device token",
            on!(|tx| inventory::set_device_token_hash(tx, vin, hash)),
        )?;
        Ok(secret)
    }

    fn verify_device_token(&self, vin: &str, token: &str) -> Result<bool> {
        let stored = self.read(
            "verify device token",
            on!(|c| inventory::device_token_hash(c, vin)),
        )?;
        Ok(device_token_matches(stored.as_deref(), token))
    }

    fn remove_vehicle(&self, vin: &str) -> Result<u64> {
        let now = self.now_ms();
        self.write("remove vehicle", on!(|tx| inventory::remove(tx, vin, now)))
    }

    fn with_view(&self, op: &str, f: &mut dyn FnMut(&dyn View) -> Result<()>) -> Result<()> {
        self.view(op, true, f)
    }

    fn with_reads(&self, op: &str, f: &mut dyn FnMut(&dyn View) -> Result<()>) -> Result<()> {
        // No transaction: its BEGIN and ROLLBACK would be two of the statements the server
        // runs for one read.
        self.view(op, false, f)
    }

    fn record_manifest(&self, manifest: &IncomingManifest) -> Result<RecordedManifest> {
        self.write("record manifest", on!(|tx| manifests::record(tx, manifest)))
    }

    fn list_manifests(&self, vin: &str, limit: u32) -> Result<Vec<ManifestEntry>> {
        self.read("list manifests", on!(|c| manifests::list(c, vin, limit)))
    }

    fn count_manifests(&self, vin: &str, verdict: Option<Verdict>) -> Result<u64> {
        self.read(
            "count manifests",
            on!(|c| manifests::count(c, vin, verdict)),
        )
    }

    fn prune_manifests(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = ms(before);
        self.write("prune manifests", on!(|tx| manifests::prune(tx, before)))
    }

    fn add_assignments(&self, vin: &str, new: &[NewAssignment]) -> Result<Vec<Assignment>> {
        let now = self.now_ms();
        self.write(
            "add assignments",
            on!(|tx| assignments::add(tx, vin, new, now)),
        )
    }

    fn active_assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        self.read(
            "list active assignments",
            on!(|c| assignments::list(c, vin, true)),
        )
    }

    fn assignments(&self, vin: &str) -> Result<Vec<Assignment>> {
        self.read(
            "list assignments",
            on!(|c| assignments::list(c, vin, false)),
        )
    }

    fn cancel_assignments(&self, vin: &str, detail: &str) -> Result<u64> {
        let now = self.now_ms();
        self.write(
            "cancel assignments",
            on!(|tx| assignments::cancel_vehicle(tx, vin, detail, now)),
        )
    }

    fn cancel_assignment(&self, id: i64, detail: &str) -> Result<Assignment> {
        let now = self.now_ms();
        self.write(
            "cancel assignment",
            on!(|tx| assignments::cancel_one(tx, id, detail, now)),
        )
    }

    fn mark_in_flight(&self, ids: &[i64]) -> Result<u64> {
        let now = self.now_ms();
        self.write(
            "mark assignments in flight",
            on!(|tx| assignments::mark_in_flight(tx, ids, now)),
        )
    }

    fn put_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
        version: u64,
        expires: DateTime<Utc>,
        bytes: &[u8],
    ) -> Result<()> {
        self.write(
            "store vehicle metadata",
            on!(|tx| metadata::put(tx, vin, role, version, expires, bytes)),
        )
    }

    fn get_vehicle_metadata(
        &self,
        vin: &str,
        role: MetadataRole,
    ) -> Result<Option<StoredMetadata>> {
        self.read(
            "read vehicle metadata",
            on!(|c| metadata::get(c, vin, role)),
        )
    }

    fn vehicles_with_metadata_expiring_before(
        &self,
        t: DateTime<Utc>,
    ) -> Result<Vec<ExpiringMetadata>> {
        self.read(
            "list expiring metadata",
            on!(|c| metadata::expiring_before(c, t)),
        )
    }

    fn put_root(&self, version: u64, bytes: &[u8]) -> Result<()> {
        self.write(
            "store director root",
            on!(|tx| metadata::put_root(tx, version, bytes)),
        )
    }

    fn get_root(&self, version: u64) -> Result<Option<Vec<u8>>> {
        self.read(
            "read director root",
            on!(|c| metadata::get_root(c, version)),
        )
    }

    fn latest_root(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.read(
            "read latest director root",
            on!(|c| metadata::latest_root(c)),
        )
    }

    fn put_offline_bundle(&self, bundle: &OfflineBundle, snapshot: (u64, &[u8])) -> Result<()> {
        self.write(
            "store offline bundle",
            on!(|tx| offline::put(tx, bundle, snapshot)),
        )
    }

    fn revoke_offline_bundle(&self, name: &str, snapshot: (u64, &[u8])) -> Result<()> {
        let now = self.now_ms();
        self.write(
            "revoke offline bundle",
            on!(|tx| offline::revoke(tx, name, snapshot, now)),
        )
    }

    fn offline_bundle(&self, name: &str) -> Result<Option<OfflineBundle>> {
        self.read("read offline bundle", on!(|c| offline::get_bundle(c, name)))
    }

    fn offline_bundles(&self) -> Result<Vec<OfflineBundle>> {
        self.read("list offline bundles", on!(|c| offline::list(c)))
    }

    fn latest_offline_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>> {
        self.read(
            "read offline-update snapshot",
            on!(|c| offline::latest_snapshot(c)),
        )
    }

    fn record_offline_receipt(
        &self,
        receipt: &OfflineReceipt,
        body: &[u8],
        signed_sha256: &[u8; 32],
    ) -> Result<i64> {
        self.write(
            "record offline receipt",
            on!(|tx| offline::record_receipt(tx, receipt, body, signed_sha256)),
        )
    }

    fn offline_receipts(&self, vin: &str) -> Result<Vec<OfflineReceipt>> {
        self.read("list offline receipts", on!(|c| offline::receipts(c, vin)))
    }

    fn create_admin_token(
        &self,
        name: &str,
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(i64, String)> {
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        let (hash, now, expires) = (&hash, self.now_ms(), expires_at.map(ms));
        let id = self.write(
            "create admin token",
            on!(|tx| admin::create(tx, name, scope, hash, now, expires)),
        )?;
        Ok((id, secret))
    }

    fn check_admin_token(&self, secret: &str) -> Result<Option<Scope>> {
        let presented = crate::secret::hash(secret);
        let (presented, now) = (&presented, self.now_ms());
        self.read(
            "check admin token",
            on!(|c| admin::check(c, presented, now)),
        )
    }

    fn revoke_admin_token(&self, id: i64) -> Result<()> {
        let now = self.now_ms();
        self.write("revoke admin token", on!(|tx| admin::revoke(tx, id, now)))
    }

    fn list_admin_tokens(&self) -> Result<Vec<AdminToken>> {
        self.read("list admin tokens", on!(|c| admin::list(c)))
    }

    fn add_relay(&self, name: &str, cert_sha256: Option<&[u8; 32]>) -> Result<String> {
        crate::store::check_relay_name(name)?;
        let secret = crate::secret::generate()?;
        let hash = crate::secret::hash(&secret);
        let (hash, now) = (&hash, self.now_ms());
        self.write(
            "register relay",
            on!(|tx| relays::add(tx, name, hash, cert_sha256, now)),
        )?;
        Ok(secret)
    }

    fn verify_relay_token(&self, name: &str, secret: &str) -> Result<bool> {
        self.read(
            "verify relay token",
            on!(|c| relays::verify(c, name, secret)),
        )
    }

    fn verify_relay_cert(&self, name: &str, sha256: &[u8; 32]) -> Result<bool> {
        self.read(
            "verify relay certificate",
            on!(|c| relays::verify_cert(c, name, sha256)),
        )
    }

    fn record_relay_vehicle(&self, vin: &str, relay: &str, now: DateTime<Utc>) -> Result<()> {
        let at = now.timestamp_millis();
        self.write(
            "record a relay's vehicle",
            on!(|tx| relays::record_vehicle(tx, vin, relay, at)),
        )
    }

    fn relay_vehicles(&self, name: &str) -> Result<Vec<String>> {
        self.read(
            "list a relay's vehicles",
            on!(|c| relays::vehicles(c, name)),
        )
    }

    fn list_relays(&self) -> Result<Vec<Relay>> {
        self.read("list relays", on!(|c| relays::list(c)))
    }

    fn revoke_relay(&self, name: &str) -> Result<()> {
        let now = self.now_ms();
        self.write("revoke relay", on!(|tx| relays::revoke(tx, name, now)))
    }

    fn relay_secret_hash(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read(
            "read a relay's token hash",
            on!(|c| relays::secret_hash(c, name)),
        )
    }

    fn device_token_hash(&self, vin: &str) -> Result<Option<Vec<u8>>> {
        self.read(
            "read a device token hash",
            on!(|c| inventory::device_token_hash(c, vin)),
        )
    }

    fn integrity_check(&self) -> Result<()> {
        // PostgreSQL checks its own pages; what can be wrong here is the schema version.
        let found = self.schema_version()?;
        if found == crate::store::migrations::latest() {
            Ok(())
        } else {
            Err(Error::IntegrityCheck {
                report: format!(
                    "schema version {found}, expected {}",
                    crate::store::migrations::latest()
                ),
            })
        }
    }

    fn signing_turn(&self, vin: &str) -> Result<Guard> {
        let handle = self.runtime().handle().clone();
        let held = self.block(locks::signing(&self.locks, handle, vin))?;
        Ok(Guard::new(held))
    }

    fn try_lead(&self, what: &str) -> Result<Option<Guard>> {
        let handle = self.runtime().handle().clone();
        Ok(self
            .block(locks::try_lead(&self.locks, handle, what))?
            .map(Guard::new))
    }

    fn backend(&self) -> String {
        format!("postgresql {}", self.target)
    }
}
