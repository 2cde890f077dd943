//! `director.toml`: where the Director keeps its data, which online keys it signs with, how
//! long what it signs stays valid, where it listens, and (optionally) its TLS material and the
//! Image repository it copies targets from. Relative paths are relative to the config file.
//!
//! ```toml
//! listen = "127.0.0.1:8000"
//! data_dir = "data"          # director.db
//! roots_dir = "roots"        # 1.root.json, 2.root.json, ... signed offline
//!
//! [keys]
//! targets = ["keys/targets.pem"]
//! snapshot = ["keys/snapshot.pem"]
//! timestamp = ["keys/timestamp.pem"]
//!
//! [lifetimes]
//! targets = "30d"
//! snapshot = "7d"
//! timestamp = "1d"
//! refresh_before = "6h"      # re-sign what expires within this
//! refresh_interval = "1m"    # how often the refresher looks
//!
//! [database]
//! durability = "full"           # or "normal": fsync per commit (survives power loss) or not
//! # url = "postgres://ferry@db.example:5432/ferry"   # PostgreSQL instead of SQLite (many Directors)
//! # pool_size = 16              # PostgreSQL connections for queries
//! # connect_timeout = "5s"      # opening one
//! # acquire_timeout = "5s"      # a request waiting for a free one (then 503)
//!
//! [manifests]
//! max_per_minute = 30           # per vehicle, also its burst; more get 429 + Retry-After (0: no limit)
//! refused_kept = 100            # refused manifests kept per vehicle (the newest)
//! refused_excerpt_bytes = 4096  # of a refused body (its SHA-256 and length are kept whole)
//!
//! [http]                        # what one client may take (the same section in secondary.toml)
//! header_read_timeout = "30s"   # a request head, and an idle kept-alive connection
//! body_timeout = "30s"          # a body must arrive within this plus 1 s per min_body_rate bytes
//! min_body_rate = 1024          # bytes/s
//! connections_per_address = 256 # one more from the same address is closed at accept
//! ```

use crate::error::{Error, Result};
use crate::vehicle_metadata::{Lifetimes, OnlineKeys};
use ferry_keys::{FileKeySource, KeySource, Signer};
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The file name `ferry director init` writes.
pub const CONFIG_FILE: &str = "director.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorConfig {
    /// Address of the device and admin API. Without `[tls]` it must be a loopback address:
    /// device tokens are bearer secrets and must not cross a network in the clear.
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub roots_dir: PathBuf,
    pub keys: KeyFiles,
    #[serde(default)]
    pub lifetimes: LifetimeConfig,
    #[serde(default)]
    /// `[http]`: what one client may take of the server ([`ferry_http::Limits`]).
    pub http: ferry_http::Limits,
    /// `[manifests]`: how many manifests a vehicle may send, what is kept of refused ones.
    #[serde(default)]
    pub manifests: crate::manifests::ManifestPolicy,
    /// `[database]`: SQLite (how it commits) or PostgreSQL (where, how many connections).
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    #[serde(default)]
    pub image_repo: Option<ImageRepoConfig>,
    /// `[expiry]`: when `ferry director status` starts asking for a root ceremony.
    #[serde(default)]
    pub expiry: ExpiryConfig,
}

/// `[expiry]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExpiryConfig {
    /// The offline root expiring within this window makes `ferry director status` exit 3
    /// (default 30 days).
    #[serde(deserialize_with = "duration")]
    pub sign_before: Duration,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        ExpiryConfig {
            sign_before: Duration::from_secs(30 * 86_400),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `"full"` (the default: every commit fsync'ed, so acknowledged manifests and signed
    /// version numbers survive a power loss) or `"normal"` (they survive a crash of the
    /// process, not of the machine; fewer fsyncs). See [`crate::store::Durability`]. SQLite
    /// only: PostgreSQL's durability is its server's settings.
    pub durability: crate::store::Durability,
    /// `postgres://user@host:port/dbname`: keep the Director's data in PostgreSQL, shared by
    /// every Director with the same URL (see README "Scaling out"). Without it: SQLite, in
    /// `data_dir/director.db`.
    pub url: Option<String>,
    /// PostgreSQL connections for queries (as many again, opened on demand, for locks).
    pub pool_size: usize,
    /// How long opening a PostgreSQL connection may take.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long a request waits for a free connection before it is answered 503.
    #[serde(deserialize_with = "duration")]
    pub acquire_timeout: Duration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        let pg = crate::store::PgSettings::new("");
        DatabaseConfig {
            durability: crate::store::Durability::default(),
            url: None,
            pool_size: pg.pool_size,
            connect_timeout: pg.connect_timeout,
            acquire_timeout: pg.acquire_timeout,
        }
    }
}

impl DatabaseConfig {
    /// The PostgreSQL settings, if `url` is set.
    pub fn postgres(&self) -> Option<crate::store::PgSettings> {
        self.url.as_ref().map(|url| crate::store::PgSettings {
            url: url.clone(),
            pool_size: self.pool_size,
            connect_timeout: self.connect_timeout,
            acquire_timeout: self.acquire_timeout,
        })
    }

    /// Which backend, as `ferry director status` shows it (no credentials).
    pub fn describe(&self, sqlite_path: &Path) -> String {
        match &self.url {
            Some(url) => format!("postgresql {}", crate::store::postgres::redacted(url)),
            None => format!("sqlite {}", sqlite_path.display()),
        }
    }
}

/// Online key files per role (PKCS#8 PEM, mode 0600; a passphrase-encrypted key needs
/// `passphrase_file`, which is read once at start).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFiles {
    pub targets: Vec<PathBuf>,
    pub snapshot: Vec<PathBuf>,
    pub timestamp: Vec<PathBuf>,
    /// PURE-2: the key(s) of the offline-update-snapshot and offline-update-targets roles
    /// (`ferry admin bundle create` signs with them). Optional: without them the Director
    /// makes no offline-update bundles.
    #[serde(default)]
    pub offline_update: Vec<PathBuf>,
    #[serde(default)]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifetimeConfig {
    #[serde(deserialize_with = "duration")]
    pub targets: Duration,
    #[serde(deserialize_with = "duration")]
    pub snapshot: Duration,
    #[serde(deserialize_with = "duration")]
    pub timestamp: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_before: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_interval: Duration,
}

impl Default for LifetimeConfig {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        LifetimeConfig {
            targets: Duration::from_secs(30 * DAY),
            snapshot: Duration::from_secs(7 * DAY),
            timestamp: Duration::from_secs(DAY),
            refresh_before: Duration::from_secs(6 * 3600),
            refresh_interval: Duration::from_secs(60),
        }
    }
}

/// The Director's TLS server certificate and the fleet CA that issued the device
/// certificates it accepts (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A TLS handshake not finished within this drops the connection.
    #[serde(default = "handshake_timeout", deserialize_with = "duration")]
    pub handshake_timeout: Duration,
}

fn handshake_timeout() -> Duration {
    crate::http::HANDSHAKE_TIMEOUT
}

/// The Image repository whose signed targets assignments copy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRepoConfig {
    /// Base URL serving `metadata/` and `targets/` (as `ferry repo serve` does).
    pub url: String,
    /// The Image repository's root.json, pinned by the operator.
    pub root: PathBuf,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "duration {text:?}: {e}; expected e.g. \"30d\", \"6h\", \"90s\""
        ))
    })
}

impl DirectorConfig {
    /// Read `path` and resolve its relative paths against the file's directory.
    pub fn load(path: &Path) -> Result<DirectorConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: format!("cannot be read: {e}"),
        })?;
        let mut config: DirectorConfig = toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config.check(path)?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        at(&mut self.data_dir);
        at(&mut self.roots_dir);
        for p in self
            .keys
            .targets
            .iter_mut()
            .chain(self.keys.snapshot.iter_mut())
            .chain(self.keys.timestamp.iter_mut())
            .chain(self.keys.offline_update.iter_mut())
            .chain(self.keys.passphrase_file.iter_mut())
        {
            at(p);
        }
        if let Some(tls) = &mut self.tls {
            at(&mut tls.ca_cert);
            at(&mut tls.cert);
            at(&mut tls.key);
        }
        if let Some(repo) = &mut self.image_repo {
            at(&mut repo.root);
        }
    }

    fn check(&self, path: &Path) -> Result<()> {
        let bad = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        if self.tls.is_none() && !self.listen.ip().is_loopback() {
            return Err(bad(format!(
                "listen = {} without [tls]; expected a loopback address, or a [tls] section (device tokens must not cross a network in the clear)",
                self.listen
            )));
        }
        for (role, files) in [
            ("targets", &self.keys.targets),
            ("snapshot", &self.keys.snapshot),
            ("timestamp", &self.keys.timestamp),
        ] {
            if files.is_empty() {
                return Err(bad(format!(
                    "keys.{role} is empty; expected at least one key file"
                )));
            }
        }
        let l = &self.lifetimes;
        if l.refresh_before >= l.timestamp {
            return Err(bad(format!(
                "lifetimes.refresh_before ({}) is not shorter than lifetimes.timestamp ({}); expected the refresher to re-sign before expiry, not on every pass",
                humantime::format_duration(l.refresh_before),
                humantime::format_duration(l.timestamp)
            )));
        }
        if l.refresh_interval.is_zero() || l.refresh_interval >= l.refresh_before {
            return Err(bad(format!(
                "lifetimes.refresh_interval ({}) must be above zero and below refresh_before ({}); expected a timestamp never to expire between two passes",
                humantime::format_duration(l.refresh_interval),
                humantime::format_duration(l.refresh_before)
            )));
        }
        self.http.check("[http]").map_err(bad)?;
        if self.manifests.refused_kept == 0 {
            return Err(bad(
                "[manifests] refused_kept is zero; expected at least 1 (the latest refusal is what an audit needs first)".to_owned(),
            ));
        }
        if self
            .tls
            .as_ref()
            .is_some_and(|t| t.handshake_timeout.is_zero())
        {
            return Err(bad(
                "tls.handshake_timeout is zero; expected a duration above zero (e.g. \"10s\"): every handshake would be cut off".to_owned(),
            ));
        }
        Ok(())
    }

    /// What `[http]` allows each client.
    pub fn connection_limits(&self) -> ferry_http::Limits {
        self.http
    }

    /// The SQLite database file.
    pub fn database(&self) -> PathBuf {
        self.data_dir.join("director.db")
    }

    pub fn lifetimes(&self) -> Result<Lifetimes> {
        let d = |what: &str, v: Duration| {
            chrono::Duration::from_std(v).map_err(|e| Error::Config {
                path: PathBuf::from(CONFIG_FILE),
                reason: format!("lifetimes.{what}: {e}"),
            })
        };
        Ok(Lifetimes {
            targets: d("targets", self.lifetimes.targets)?,
            snapshot: d("snapshot", self.lifetimes.snapshot)?,
            timestamp: d("timestamp", self.lifetimes.timestamp)?,
        })
    }

    /// Read the online keys. A key file readable by group or others is refused: these keys
    /// sign what every vehicle installs.
    pub fn online_keys(&self) -> Result<OnlineKeys> {
        let passphrase = self.passphrase()?;
        let passphrase = passphrase.as_ref().map(|p| trim_newline(p));
        let load = |files: &[PathBuf]| -> Result<Vec<Arc<dyn Signer>>> {
            files.iter().map(|f| online_key(f, passphrase)).collect()
        };
        Ok(OnlineKeys {
            targets: load(&self.keys.targets)?,
            snapshot: load(&self.keys.snapshot)?,
            timestamp: load(&self.keys.timestamp)?,
        })
    }

    /// The `[keys] offline_update` keys (PURE-2 bundles), owner-only files like the others.
    pub fn offline_update_keys(&self) -> Result<Vec<Arc<dyn Signer>>> {
        let passphrase = self.passphrase()?;
        let passphrase = passphrase.as_ref().map(|p| trim_newline(p));
        self.keys
            .offline_update
            .iter()
            .map(|f| online_key(f, passphrase))
            .collect()
    }

    /// `[keys] passphrase_file`'s contents, if one is configured.
    fn passphrase(&self) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        match &self.keys.passphrase_file {
            Some(p) => Ok(Some(zeroize::Zeroizing::new(std::fs::read(p).map_err(
                |e| Error::Config {
                    path: p.clone(),
                    reason: format!("passphrase file cannot be read: {e}"),
                },
            )?))),
            None => Ok(None),
        }
    }
}

fn trim_newline(p: &[u8]) -> &[u8] {
    let p = p.strip_suffix(b"\n").unwrap_or(p);
    p.strip_suffix(b"\r").unwrap_or(p)
}

/// An online key's signer, from a key file that only its owner can read.
fn online_key(path: &Path, passphrase: Option<&[u8]>) -> Result<Arc<dyn Signer>> {
    FileKeySource::new(path)
        .with_passphrase(passphrase)
        .owner_only()
        .signer()
        .map_err(|e| Error::Config {
            path: path.to_owned(),
            reason: format!("online key: {e}"),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
listen = "127.0.0.1:8000"
data_dir = "data"
roots_dir = "roots"
[keys]
targets = ["t.pem"]
snapshot = ["s.pem"]
timestamp = ["ts.pem"]
"#;

    fn parse(extra: &str) -> Result<DirectorConfig> {
        let config: DirectorConfig =
            toml::from_str(&format!("{MINIMAL}{extra}")).map_err(|e| Error::Config {
                path: PathBuf::from(CONFIG_FILE),
                reason: e.to_string(),
            })?;
        config.check(Path::new(CONFIG_FILE))?;
        Ok(config)
    }

    #[test]
    fn connection_limits_default_and_read_from_the_http_section() {
        let default = parse("").unwrap();
        assert_eq!(default.connection_limits(), ferry_http::Limits::DEFAULT);
        let set = parse("[http]\nheader_read_timeout = \"5s\"\n").unwrap();
        assert_eq!(
            set.connection_limits().header_read_timeout,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn the_manifest_policy_defaults_and_reads_from_its_section() {
        use crate::manifests::ManifestPolicy;
        assert_eq!(parse("").unwrap().manifests, ManifestPolicy::DEFAULT);
        let set = parse("[manifests]\nmax_per_minute = 0\nrefused_kept = 5\n").unwrap();
        assert_eq!(set.manifests.max_per_minute, 0);
        assert_eq!(set.manifests.refused_kept, 5);
        let e = parse("[manifests]\nrefused_kept = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("[manifests] refused_kept is zero"),
            "{e}"
        );
    }

    #[test]
    fn durability_is_full_unless_the_config_says_normal() {
        use crate::store::Durability;
        assert_eq!(parse("").unwrap().database.durability, Durability::Full);
        let normal = parse("[database]\ndurability = \"normal\"\n").unwrap();
        assert_eq!(normal.database.durability, Durability::Normal);
        let e = parse("[database]\ndurability = \"fast\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
    }

    #[test]
    fn a_zero_header_read_timeout_is_refused_by_name() {
        let e = parse("[http]\nheader_read_timeout = \"0s\"\n").unwrap_err();
        assert!(
            e.to_string().contains("[http] header_read_timeout is zero"),
            "{e}"
        );
    }

    #[test]
    fn the_tls_handshake_timeout_defaults_and_a_zero_one_is_refused() {
        let tls = "[tls]\nca_cert = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n";
        let default = parse(tls).unwrap();
        assert_eq!(
            default.tls.unwrap().handshake_timeout,
            crate::http::HANDSHAKE_TIMEOUT
        );
        let set = parse(&format!("{tls}handshake_timeout = \"3s\"\n")).unwrap();
        assert_eq!(set.tls.unwrap().handshake_timeout, Duration::from_secs(3));
        let e = parse(&format!("{tls}handshake_timeout = \"0s\"\n")).unwrap_err();
        assert!(
            e.to_string().contains("tls.handshake_timeout is zero"),
            "{e}"
        );
    }
}
