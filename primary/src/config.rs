//! `primary.toml`: the vehicle, its repositories, its own ECU and its secondaries. Relative
//! paths are resolved against the directory of the config file.
//!
//! ```toml
//! vin = "WVW1"
//! data_dir = "state"                  # trusted metadata, staging, the own ECU's state.db
//! poll_interval = "5m"                # `run` waits this long between cycles
//! reboot_wait = "10m"                 # how long a Secondary may take to reboot into an update
//!
//! [director]
//! url = "http://127.0.0.1:8000"       # the Director's base URL
//! root = "director.root.json"         # pinned Director root (shipped with the vehicle)
//! token_file = "device.token"         # `<vin>.<secret>`, mode 0600 (plain HTTP on loopback)
//! # or mutual TLS: ca_cert = "ca.pem", cert = "device.pem", key = "device.key"
//!
//! [image_repo]
//! url = "http://127.0.0.1:8080"       # serves metadata/ and targets/
//! root = "image.root.json"            # pinned Image repository root
//!
//! [ecu]                               # the primary's own ECU
//! serial = "ivi-1"
//! hardware_id = "ivi-a53"
//! key = "ecu.key.pem"                 # PKCS#8 PEM, mode 0600: signs reports and the manifest
//! apps_dir = "apps"                   # optional (default DATA_DIR/apps)
//! # [ecu.os]: the own ECU's A/B slots, as a Secondary's [os] (absolute paths)
//!
//! [[secondaries]]
//! serial = "tcu-1"
//! url = "http://127.0.0.1:9301"       # https://… with [vehicle_tls]
//!
//! [vehicle_tls]                       # optional; mutual TLS to every Secondary (then https only)
//! ca_cert = "vehicle-ca.pem"          # the only CA trusted for the Secondaries' certificates
//! cert = "primary-tls.pem"            # this Primary's client certificate, and its key (0600)
//! key = "primary-tls.key"
//!
//! [download]                          # optional
//! min_bytes_per_sec = 1024            # slower than this (after speed_grace) is refused
//! speed_grace = "10s"
//! read_timeout = "30s"
//! resume_attempts = 3                 # Range resumes after a broken connection
//! max_image_bytes = 4294967296        # refuse larger targets before downloading
//!
//! [offline]                           # optional; PURE-2 bundles on removable media
//! source = "/run/media/ferry"         # `run` watches it: a bundle directory (one holding
//!                                     # .well-known/), or a directory of bundle directories
//!                                     # and .tar files (one level)
//! scan_interval = "2s"                # how often `run` looks (SIGUSR1: look now)
//! ```

use crate::error::{io_at, Error, Result};
use crate::fetch::FetchPolicy;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub vin: String,
    pub data_dir: PathBuf,
    #[serde(default = "default_poll", with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    pub director: DirectorConfig,
    pub image_repo: ImageRepoConfig,
    pub ecu: OwnEcuConfig,
    #[serde(default)]
    pub secondaries: Vec<SecondaryConfig>,
    /// `[vehicle_tls]`: mutual TLS on the in-vehicle link (off unless given).
    #[serde(default)]
    pub vehicle_tls: Option<VehicleTls>,
    #[serde(default)]
    pub download: DownloadConfig,
    /// The bound on waiting for a Secondary that answered its install with a pending reboot.
    #[serde(default = "default_reboot_wait", with = "humantime_serde_compat")]
    pub reboot_wait: Duration,
    /// `[offline]`: where `run` looks for PURE-2 bundles (off unless given).
    #[serde(default)]
    pub offline: Option<OfflineConfig>,
}

/// `[offline]`: the mount point (or directory) `run` watches for offline bundles. A bundle
/// already there when `run` starts is ignored until it is removed and appears again; one
/// that appears later is installed once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineConfig {
    pub source: PathBuf,
    #[serde(default = "default_scan", with = "humantime_serde_compat")]
    pub scan_interval: Duration,
}

fn default_scan() -> Duration {
    Duration::from_secs(2)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorConfig {
    pub url: String,
    pub root: PathBuf,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRepoConfig {
    pub url: String,
    pub root: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnEcuConfig {
    pub serial: String,
    pub hardware_id: String,
    pub key: PathBuf,
    #[serde(default)]
    pub apps_dir: Option<PathBuf>,
    #[serde(default)]
    pub app_health_check: Option<Vec<String>>,
    #[serde(default)]
    pub app_health_timeout_secs: Option<u64>,
    #[serde(default)]
    pub initial_provides: BTreeMap<String, String>,
    #[serde(default)]
    pub os: Option<ferry_secondary::config::OsConfig>,
    /// `[ecu.ostree]`: the own ECU's OS as OSTree deployments, as a Secondary's `[ostree]`
    /// (absolute paths).
    #[serde(default)]
    pub ostree: Option<ferry_secondary::config::OstreeConfig>,
    /// `[ecu.snapshot]`: the own ECU's root as btrfs snapshots, as a Secondary's `[snapshot]`
    /// (absolute paths).
    #[serde(default)]
    pub snapshot: Option<ferry_secondary::config::SnapshotConfig>,
    /// `[ecu.rauc]`: the own ECU's OS as RAUC bundles, as a Secondary's `[rauc]` (absolute
    /// paths).
    #[serde(default)]
    pub rauc: Option<ferry_secondary::config::RaucConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecondaryConfig {
    pub serial: String,
    pub url: String,
}

/// `[vehicle_tls]`: every Secondary is called over mutual TLS. Its certificate must chain to
/// `ca_cert` and nothing else (the system's roots are not trusted here); this Primary presents
/// `cert`, which each Secondary checks against its `[tls] client_ca`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehicleTls {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadConfig {
    #[serde(default = "default_min_speed")]
    pub min_bytes_per_sec: u64,
    #[serde(default = "default_grace", with = "humantime_serde_compat")]
    pub speed_grace: Duration,
    #[serde(default = "default_read_timeout", with = "humantime_serde_compat")]
    pub read_timeout: Duration,
    #[serde(default = "default_resumes")]
    pub resume_attempts: u32,
    #[serde(default = "default_max_image")]
    pub max_image_bytes: u64,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            min_bytes_per_sec: default_min_speed(),
            speed_grace: default_grace(),
            read_timeout: default_read_timeout(),
            resume_attempts: default_resumes(),
            max_image_bytes: default_max_image(),
        }
    }
}

fn default_reboot_wait() -> Duration {
    Duration::from_secs(600)
}
fn default_poll() -> Duration {
    Duration::from_secs(300)
}
fn default_min_speed() -> u64 {
    FetchPolicy::default().min_bytes_per_sec
}
fn default_grace() -> Duration {
    FetchPolicy::default().speed_grace
}
fn default_read_timeout() -> Duration {
    FetchPolicy::default().read_timeout
}
fn default_resumes() -> u32 {
    FetchPolicy::default().resume_attempts
}
fn default_max_image() -> u64 {
    16 << 30
}

/// Durations as humantime strings ("30s", "5m").
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!("{text:?}: {e}; expected e.g. \"30s\" or \"5m\""))
        })
    }
}

impl Config {
    /// Read and check `path`; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(io_at(path))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.check()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.director.root);
        fix(&mut self.image_repo.root);
        fix(&mut self.ecu.key);
        if let Some(offline) = &mut self.offline {
            fix(&mut offline.source);
        }
        if let Some(tls) = &mut self.vehicle_tls {
            fix(&mut tls.ca_cert);
            fix(&mut tls.cert);
            fix(&mut tls.key);
        }
        for p in [
            &mut self.director.token_file,
            &mut self.director.ca_cert,
            &mut self.director.cert,
            &mut self.director.key,
            &mut self.ecu.apps_dir,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }

    /// Refuse what cannot work: no way to authenticate to the Director, duplicate serials.
    pub fn check(&self) -> Result<()> {
        if self.vin.is_empty() || self.ecu.serial.is_empty() || self.ecu.hardware_id.is_empty() {
            return Err(Error::Config(
                "vin, ecu.serial and ecu.hardware_id must not be empty".into(),
            ));
        }
        let d = &self.director;
        let tls = d.cert.is_some() || d.key.is_some();
        if tls && (d.cert.is_none() || d.key.is_none()) {
            return Err(Error::Config(
                "[director] mutual TLS needs both cert and key".into(),
            ));
        }
        if !tls && d.token_file.is_none() {
            return Err(Error::Config(
                "[director] needs token_file (plain HTTP on loopback) or cert and key (mutual TLS)"
                    .into(),
            ));
        }
        if self
            .offline
            .as_ref()
            .is_some_and(|o| o.scan_interval.is_zero())
        {
            return Err(Error::Config(
                "[offline] scan_interval must be more than zero".into(),
            ));
        }
        let mut serials = vec![&self.ecu.serial];
        for s in &self.secondaries {
            // With [vehicle_tls] a plain URL would be a silent downgrade.
            if self.vehicle_tls.is_some() && !s.url.starts_with("https://") {
                return Err(Error::Config(format!(
                    "[[secondaries]] {}: url {:?} is not https; expected https:// URLs with [vehicle_tls]",
                    s.serial, s.url
                )));
            }
            if serials.contains(&&s.serial) {
                return Err(Error::Config(format!(
                    "ECU serial {:?} is listed twice; expected one entry per ECU",
                    s.serial
                )));
            }
            serials.push(&s.serial);
        }
        Ok(())
    }

    /// Every ECU serial of this vehicle: the own ECU first.
    pub fn serials(&self) -> Vec<String> {
        std::iter::once(self.ecu.serial.clone())
            .chain(self.secondaries.iter().map(|s| s.serial.clone()))
            .collect()
    }

    pub fn fetch_policy(&self) -> FetchPolicy {
        FetchPolicy {
            min_bytes_per_sec: self.download.min_bytes_per_sec,
            speed_grace: self.download.speed_grace,
            read_timeout: self.download.read_timeout,
            resume_attempts: self.download.resume_attempts,
            ..FetchPolicy::default()
        }
    }

    pub fn director_store(&self) -> PathBuf {
        self.data_dir.join("director")
    }
    pub fn image_store(&self) -> PathBuf {
        self.data_dir.join("image")
    }
    pub fn staging_dir(&self) -> PathBuf {
        self.data_dir.join("staging")
    }
    pub fn own_ecu_dir(&self) -> PathBuf {
        self.data_dir.join("ecu")
    }
    /// What the last offline install did (`offline --json` prints the same).
    pub fn last_offline_file(&self) -> PathBuf {
        self.data_dir.join("last_offline.json")
    }
    pub fn last_cycle_file(&self) -> PathBuf {
        self.data_dir.join("last_cycle.json")
    }

    /// The own ECU as the Secondary library configures an ECU: full verification against the
    /// same pinned roots as the primary.
    pub fn own_ecu_config(&self) -> Result<ferry_secondary::Config> {
        Ok(ferry_secondary::Config {
            vin: self.vin.clone(),
            serial: self.ecu.serial.clone(),
            hardware_id: self.ecu.hardware_id.clone(),
            key: self.ecu.key.clone(),
            // Never bound: the own ECU is called in-process.
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: self.own_ecu_dir(),
            verification: ferry_secondary::VerificationMode::Full,
            director_root: Some(self.director.root.clone()),
            image_root: Some(self.image_repo.root.clone()),
            director_targets_key: None,
            offline_targets_key: None,
            apps_dir: self
                .ecu
                .apps_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("apps")),
            app_health_check: self.ecu.app_health_check.clone(),
            app_health_timeout_secs: self.ecu.app_health_timeout_secs,
            app: Default::default(),
            // The Primary's own ECU commits at once: no application confirms it.
            confirm_api: None,
            max_metadata_bytes: ferry_secondary::config::DEFAULT_MAX_METADATA_BYTES,
            // Never served either.
            http: ferry_http::Limits::DEFAULT,
            tls: None,
            initial_provides: self.ecu.initial_provides.clone(),
            container: Default::default(),
            modules: Default::default(),
            os: self.ecu.os.clone(),
            ostree: self.ecu.ostree.clone(),
            snapshot: self.ecu.snapshot.clone(),
            rauc: self.ecu.rauc.clone(),
        })
    }
}

/// A secret file (device token, TLS key) must be readable by its owner only.
#[cfg(unix)]
pub fn check_private_mode(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_at(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{}: key file permission check failed: mode is {:o}, expected 600 (owner only)",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn check_private_mode(_path: &Path) -> Result<()> {
    Ok(())
}
