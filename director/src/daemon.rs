//! Running the Director from its config: open the store, take in the roots signed offline,
//! refuse online keys the latest root does not authorise, then serve and keep metadata fresh
//! until shut down.

use crate::config::DirectorConfig;
use crate::error::{Error, Result};
use crate::http::{AppState, TlsSettings};
use crate::image_repo::{ImageRepoClient, ImageRepoSettings, TargetSource, Unconfigured};
use crate::refresher::{refresh_once, resign_all};
use crate::root::{check_online_keys, import_root};
use crate::store::Store;
use ferry_core::{Clock, SystemClock};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The Director, set up and ready to serve.
#[derive(Debug)]
pub struct Director {
    pub config: DirectorConfig,
    pub state: AppState,
    /// Mutual TLS, when the config has `[tls]` (checked before anything listens).
    pub tls: Option<TlsSettings>,
}

/// The `N.root.json` files in `dir`, in version order.
pub fn root_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::storage(format!("read {}", dir.display()), e)),
    };
    let mut roots = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage(format!("read {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(version) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".root.json"))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        roots.push((version, entry.path()));
    }
    roots.sort();
    Ok(roots)
}

/// Import the roots in `dir` newer than the latest stored one, in order. Returns how many
/// were imported.
pub fn import_roots_from(
    store: &dyn Store,
    dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    let latest = store.latest_root()?.map_or(0, |(v, _)| v);
    let mut imported = 0;
    for (version, path) in root_files(dir)? {
        if version <= latest {
            continue;
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| Error::storage(format!("read {}", path.display()), e))?;
        import_root(store, &bytes, now)?;
        imported += 1;
    }
    Ok(imported)
}

impl Director {
    /// Open the store, import new roots, check the online keys and heal what a crash may
    /// have left unsigned, on the system clock. Blocking.
    pub fn open(config: DirectorConfig) -> Result<Director> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`Director::open`] on `clock`: the store, the handlers, the Image repository client
    /// and the refresher all read the time from it. Blocking.
    pub fn open_with_clock(config: DirectorConfig, clock: Arc<dyn Clock>) -> Result<Director> {
        ferry_keys::fs::create_private_dir(&config.data_dir)
            .map_err(|e| Error::storage(format!("create {}", config.data_dir.display()), e))?;
        let store: Arc<dyn Store> =
            crate::store::open(&config.database, &config.database(), clock.clone())?;
        tracing::info!(
            backend = store.backend(),
            durability = config.database.durability.as_str(),
            "director database open"
        );
        let now = clock.now();
        let imported = import_roots_from(store.as_ref(), &config.roots_dir, now)?;
        let keys = config.online_keys()?;
        check_online_keys(store.as_ref(), &keys, now)?;
        let lifetimes = config.lifetimes()?;
        if imported > 0 {
            tracing::info!(imported, "director roots imported");
        }
        resign_if_keys_changed(store.as_ref(), &config, &keys, lifetimes, now)?;
        heal_unsigned(store.as_ref(), &keys, lifetimes, now)?;
        let targets: Arc<dyn TargetSource> = match &config.image_repo {
            Some(repo) => Arc::new(ImageRepoClient::new(
                ImageRepoSettings::new(repo.url.clone(), &repo.root)?,
                clock.clone(),
            )?),
            None => Arc::new(Unconfigured),
        };
        let offline_keys = config.offline_update_keys()?;
        crate::root::check_offline_keys(store.as_ref(), &offline_keys, now)?;
        let state = AppState::new(store, keys, lifetimes, targets, clock)
            .with_manifest_policy(config.manifests)
            .with_offline_keys(offline_keys);
        let tls = match &config.tls {
            Some(t) => Some(
                TlsSettings::from_files(&t.cert, &t.key, &t.ca_cert)?
                    .with_handshake_timeout(t.handshake_timeout),
            ),
            None => None,
        };
        Ok(Director { config, state, tls })
    }

    /// Bind the configured address (port 0 picks a free one: see the listener's address).
    pub async fn bind(&self) -> Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind(self.config.listen)
            .await
            .map_err(|e| Error::Config {
                path: self.config.data_dir.clone(),
                reason: format!("listen = {}: cannot bind: {e}", self.config.listen),
            })
    }

    /// One refresher pass now (the background task runs this every `refresh_interval`).
    pub fn refresh(&self) -> Result<crate::refresher::RefreshReport> {
        let before = chrono::Duration::from_std(self.config.lifetimes.refresh_before)
            .unwrap_or(chrono::Duration::hours(6));
        let now = self.state.clock.now();
        let store = self.state.store.as_ref();
        // One Director at a time refreshes (the others find nothing due after it); one that
        // dies mid-pass loses the lead with its connection, and the next tick elsewhere
        // takes over.
        let Some(_lead) = store.try_lead("refresher")? else {
            return Ok(crate::refresher::RefreshReport::default());
        };
        heal_unsigned(store, &self.state.keys, self.state.lifetimes, now)?;
        refresh_once(store, &self.state.keys, self.state.lifetimes, now, before)
    }

    /// Serve until `shutdown` completes, refreshing metadata in the background.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let director = Arc::new(self);
        let refresher = tokio::spawn(refresh_loop(director.clone()));
        let state = director.state.clone();
        let limits = director.config.connection_limits();
        let served = match director.tls.clone() {
            Some(tls) => crate::http::serve_tls(listener, state, tls, limits, shutdown).await,
            None => crate::http::serve(listener, state, limits, shutdown).await,
        };
        let result = served.map_err(|e| Error::storage("serve", e));
        refresher.abort();
        result
    }
}

/// Sign vehicles registered without metadata (a crash or a signing failure between
/// registration and its first signing leaves one; its device would find nothing to fetch).
fn heal_unsigned(
    store: &dyn Store,
    keys: &crate::vehicle_metadata::OnlineKeys,
    lifetimes: crate::vehicle_metadata::Lifetimes,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let signer = crate::vehicle_metadata::VehicleSigner::new(store, keys, lifetimes);
    for vin in store.vins_without_metadata()? {
        signer.sign_vehicle(&vin, now)?;
        tracing::warn!(%vin, "signed a vehicle registered without metadata");
    }
    Ok(())
}

/// What every vehicle's metadata was last signed under: the latest root version and the
/// online key ids. Kept beside the database and written only once every vehicle is re-signed,
/// so a crash half-way through a re-signing repeats it at the next start.
fn signing_fingerprint(root_version: u64, keys: &crate::vehicle_metadata::OnlineKeys) -> String {
    let ids = |signers: &[Arc<dyn ferry_keys::Signer>]| {
        let mut ids: Vec<String> = signers.iter().map(|s| s.key_id().to_string()).collect();
        ids.sort();
        ids.join(",")
    };
    format!(
        "root {root_version}\ntargets {}\nsnapshot {}\ntimestamp {}\n",
        ids(&keys.targets),
        ids(&keys.snapshot),
        ids(&keys.timestamp)
    )
}

fn resign_if_keys_changed(
    store: &dyn Store,
    config: &DirectorConfig,
    keys: &crate::vehicle_metadata::OnlineKeys,
    lifetimes: crate::vehicle_metadata::Lifetimes,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let root_version = store.latest_root()?.map_or(0, |(v, _)| v);
    let fingerprint = signing_fingerprint(root_version, keys);
    let path = config.data_dir.join("signed-with");
    if std::fs::read_to_string(&path).ok().as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    let n = resign_all(store, keys, lifetimes, now)?;
    tracing::info!(
        vehicles = n,
        root_version,
        "re-signed every vehicle's metadata with the current online keys"
    );
    std::fs::write(&path, fingerprint)
        .map_err(|e| Error::storage(format!("write {}", path.display()), e))
}

async fn refresh_loop(director: Arc<Director>) {
    let mut every = tokio::time::interval(director.config.lifetimes.refresh_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let d = director.clone();
        match tokio::task::spawn_blocking(move || d.refresh()).await {
            Ok(Ok(report)) if report.timestamps + report.full + report.failed > 0 => {
                tracing::info!(
                    timestamps = report.timestamps,
                    full = report.full,
                    failed = report.failed,
                    "refreshed vehicle metadata"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "metadata refresh pass failed"),
            Err(e) => tracing::error!(error = %e, "metadata refresh task failed"),
        }
    }
}
