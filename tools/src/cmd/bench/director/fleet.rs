//! The bench's Director database and simulated fleet, set up before anything is timed: a
//! SQLite store in a temporary directory (opened exactly as the Director opens it) or a
//! PostgreSQL database (`--database`; a throwaway server of its own by default), a director
//! root with ed25519 online keys, and vehicles registered straight through the store, each with
//! a device token and signed per-vehicle metadata. Also the vehicles' pre-signed manifests.

use crate::error::{io_at, Result};
use chrono::{DateTime, Duration, Utc};
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage, VehicleManifest};
use ferry_core::metadata::{hashes_of, Expires, Signed};
use ferry_director::http::device_token;
use ferry_director::model::{NewEcu, NewVehicle};
use ferry_director::root::{build_root, import_root, sign_root, RoleSpec, RootSpec};
use ferry_director::store::postgres::cluster::{create_database, TempCluster};
use ferry_director::vehicle_metadata::{Lifetimes, OnlineKeys, VehicleSigner};
use ferry_director::{Durability, PgSettings, PgStore, SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// ECUs per simulated vehicle: a primary and two secondaries.
pub const ECUS: usize = 3;

/// One simulated vehicle: its VIN, device token and ECU keys (the primary first).
#[derive(Debug)]
pub struct Vehicle {
    pub vin: String,
    pub token: String,
    pub ecus: Vec<(String, PrivateKey)>,
}

/// The Director's database with its root imported, and the keys it signs vehicle metadata
/// with. Its temporary directory is removed on drop.
/// Where the bench's Director keeps its data.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in a temporary directory, committing as `durability` says.
    Sqlite(Durability),
    /// A fresh database on the PostgreSQL server this URL names (any database of it); `None`:
    /// on a throwaway server the bench starts (fsync on, as a production server).
    Postgres(Option<String>),
}

impl Backend {
    /// As the report names it.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(d) => format!(
                "SQLite WAL durability={} (synchronous={})",
                d.as_str(),
                d.as_str().to_uppercase()
            ),
            Backend::Postgres(None) => {
                "PostgreSQL (a throwaway local server, fsync on, over TCP on 127.0.0.1)".into()
            }
            Backend::Postgres(Some(url)) => {
                format!(
                    "PostgreSQL {}",
                    ferry_director::store::postgres::redacted(url)
                )
            }
        }
    }
}

#[derive(Debug)]
pub struct Director {
    pub store: Arc<dyn Store>,
    pub keys: OnlineKeys,
    /// The director root (version 1), as a vehicle ships it.
    pub root: Vec<u8>,
    /// Last, so the database is closed before its directory (or server) goes.
    _dir: Cleanup,
    _server: Option<TempCluster>,
}

/// A fresh directory under the system temp dir for the bench's database.
fn temp_dir() -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "ferry-bench-director-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(io_at(&dir))?;
    Ok(dir)
}

impl Director {
    /// A new database with the Director's real settings (WAL, `durability`, its default
    /// reader pool) and a one-key-per-role ed25519 root.
    pub fn create(now: DateTime<Utc>, backend: &Backend) -> Result<Director> {
        let dir = temp_dir()?;
        // From here on, the directory is removed on drop, also if a later step fails.
        let cleanup = Cleanup(dir.clone());
        let bench = |what: String| crate::error::Error::Bench(what);
        let (store, server): (Arc<dyn Store>, _) = match backend {
            Backend::Sqlite(durability) => (
                Arc::new(SqliteStore::open_with(
                    dir.join("director.db"),
                    SqliteStore::DEFAULT_READERS,
                    *durability,
                )?),
                None,
            ),
            Backend::Postgres(url) => {
                let (server, admin_url) = match url {
                    Some(url) => (None, url.clone()),
                    None => {
                        let s = TempCluster::start(true)
                            .map_err(|e| bench(format!("PostgreSQL check failed: {e}")))?;
                        let url = s.url("postgres");
                        (Some(s), url)
                    }
                };
                let db = format!("ferry_bench_{}", std::process::id());
                let url = create_database(&admin_url, &db)
                    .map_err(|e| bench(format!("PostgreSQL check failed: {e}")))?;
                let store: Arc<dyn Store> = Arc::new(PgStore::open(&PgSettings::new(url))?);
                (store, server)
            }
        };
        let gen = || PrivateKey::generate(KeyKind::Ed25519).map(Arc::new);
        let (root_key, targets, snapshot, timestamp) = (gen()?, gen()?, gen()?, gen()?);
        let one = |k: &Arc<PrivateKey>| RoleSpec {
            keys: vec![k.public_key().clone()],
            threshold: 1,
        };
        let spec = RootSpec {
            root: one(&root_key),
            targets: one(&targets),
            snapshot: one(&snapshot),
            timestamp: one(&timestamp),
        };
        let root = build_root(&spec, 1, Expires::after(now, Duration::days(365)))?;
        let root = sign_root(root, &[root_key.as_ref() as &dyn Signer])?;
        import_root(store.as_ref(), &root, now)?;
        Ok(Director {
            store,
            keys: OnlineKeys {
                targets: vec![targets],
                snapshot: vec![snapshot],
                timestamp: vec![timestamp],
            },
            root,
            _dir: cleanup,
            _server: server,
        })
    }

    /// Register vehicle number `i` with [`ECUS`] ed25519 ECUs, issue its device token and sign
    /// its metadata, as `POST /api/v1/admin/vehicles` does.
    pub fn register(&self, i: usize, now: DateTime<Utc>) -> Result<Vehicle> {
        let vin = format!("BENCH{i:07}");
        let ecus = (0..ECUS)
            .map(|n| {
                let serial = if n == 0 {
                    format!("{vin}-primary")
                } else {
                    format!("{vin}-secondary-{n}")
                };
                Ok((serial, PrivateKey::generate(KeyKind::Ed25519)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let store = self.store.as_ref();
        store.register_vehicle(&NewVehicle {
            vin: vin.clone(),
            ecus: ecus
                .iter()
                .enumerate()
                .map(|(n, (serial, key))| NewEcu {
                    serial: serial.clone(),
                    hardware_id: if n == 0 { "bench-ivi" } else { "bench-ecu" }.into(),
                    public_key: key.public_key().clone(),
                    primary: n == 0,
                })
                .collect(),
        })?;
        let secret = store.issue_device_token(&vin)?;
        VehicleSigner::new(store, &self.keys, Lifetimes::default()).sign_vehicle(&vin, now)?;
        Ok(Vehicle {
            token: device_token(&vin, &secret),
            vin,
            ecus,
        })
    }
}

/// Removes a directory when dropped.
#[derive(Debug)]
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// ECU `serial`'s version report for one check-in, signed by its key.
pub fn report(
    serial: &str,
    nonce: &str,
    now: DateTime<Utc>,
    key: &PrivateKey,
) -> Result<Signed<EcuVersionReport>> {
    let mut report = Signed::new(EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.to_owned(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(serial.as_bytes()),
                length: serial.len() as u64,
                extra: BTreeMap::new(),
            },
            filepath: format!("{serial}.img"),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.to_owned(),
        provides: [("rootfs-image.version".to_owned(), "1.0".to_owned())].into(),
        time: Expires::after(now, Duration::zero()),
        extra: BTreeMap::new(),
    });
    report.sign(key as &dyn Signer)?;
    Ok(report)
}

impl Vehicle {
    /// The vehicle manifest of check-in `n`: every ECU's report with the check-in's own nonce,
    /// bundled and signed by the primary, as the bytes a primary PUTs.
    pub fn manifest(&self, n: usize, now: DateTime<Utc>) -> Result<Vec<u8>> {
        let nonce = format!("{}-{n}", self.vin);
        let reports = self
            .ecus
            .iter()
            .map(|(serial, key)| report(serial, &nonce, now, key))
            .collect::<Result<Vec<_>>>()?;
        let (primary, key) = &self.ecus[0];
        let mut manifest = Signed::new(VehicleManifest::new(&self.vin, primary, &reports)?);
        manifest.sign(key as &dyn Signer)?;
        Ok(manifest.to_bytes()?)
    }
}
