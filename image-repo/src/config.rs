//! `ferry-repo.toml`: which keys sign which role, thresholds and lifetimes. A key is a PKCS#8
//! file, its path relative to the repository directory unless absolute, or a `pkcs11:` URI
//! (an online key kept in an HSM; a relative `pin-source` file is relative to the repository
//! directory too).

use crate::error::{io_at, Error, Result};
use ferry_keys::pkcs11::PinSource;
use ferry_keys::{FileKeySource, KeySource, Pkcs11KeySource, Pkcs11Uri, Signer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const CONFIG_FILE: &str = "ferry-repo.toml";

/// Signing keys and lifetime of one role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoleConfig {
    /// Private key files, or `pkcs11:` URIs of keys on a token, available on this host (may
    /// be fewer than the threshold for an offline role: its signatures are then added
    /// elsewhere).
    #[serde(default)]
    pub keys: Vec<PathBuf>,
    #[serde(default = "one")]
    pub threshold: u32,
    /// How long a fresh signature is valid, e.g. "1day", "3months".
    #[serde(with = "humantime_serde_compat")]
    pub expires: Duration,
    /// File holding the passphrase of encrypted key files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    pub consistent_snapshot: bool,
    pub root: RoleConfig,
    pub targets: RoleConfig,
    pub snapshot: RoleConfig,
    pub timestamp: RoleConfig,
    /// Present once `ferry repo bins` has split the catalogue into hashed bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<RoleConfig>,
    /// `[expiry]`: when `ferry repo status` starts asking for a ceremony.
    #[serde(default)]
    pub expiry: ExpiryConfig,
}

/// `[expiry]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExpiryConfig {
    /// An offline role (root, offline targets) that expires within this window makes
    /// `ferry repo status` exit 3: time to gather the key holders (default 30 days).
    #[serde(with = "humantime_serde_compat")]
    pub sign_before: Duration,
}

impl Default for ExpiryConfig {
    fn default() -> Self {
        ExpiryConfig {
            sign_before: Duration::from_secs(30 * DAY),
        }
    }
}

const DAY: u64 = 24 * 3600;

impl Config {
    /// Defaults: root 1 year, targets 3 months, snapshot 1 week, timestamp 1 day; keys in keys/.
    pub fn default_for_new_repo() -> Config {
        let role = |name: &str, days: u64| RoleConfig {
            keys: vec![PathBuf::from(format!("keys/{name}.pem"))],
            threshold: 1,
            expires: Duration::from_secs(days * DAY),
            passphrase_file: None,
        };
        Config {
            consistent_snapshot: true,
            root: role("root", 365),
            targets: role("targets", 90),
            snapshot: role("snapshot", 7),
            timestamp: role("timestamp", 1),
            bins: None,
            expiry: ExpiryConfig::default(),
        }
    }

    pub fn load(dir: &Path) -> Result<Config> {
        let path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotARepository(dir.to_owned()))
            }
            Err(e) => return Err(io_at(&path)(e)),
        };
        toml::from_str(&text).map_err(|e| Error::Config {
            path,
            reason: e.to_string(),
        })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CONFIG_FILE);
        let text = toml::to_string_pretty(self).map_err(|e| Error::Config {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        crate::layout::write_atomic(&path, text.as_bytes())
    }

    pub fn role(&self, role: &str) -> Option<&RoleConfig> {
        match role {
            "root" => Some(&self.root),
            "targets" => Some(&self.targets),
            "snapshot" => Some(&self.snapshot),
            "timestamp" => Some(&self.timestamp),
            "bins" => self.bins.as_ref(),
            _ => None,
        }
    }

    pub fn role_mut(&mut self, role: &str) -> Option<&mut RoleConfig> {
        match role {
            "root" => Some(&mut self.root),
            "targets" => Some(&mut self.targets),
            "snapshot" => Some(&mut self.snapshot),
            "timestamp" => Some(&mut self.timestamp),
            "bins" => self.bins.as_mut(),
            _ => None,
        }
    }
}

impl RoleConfig {
    /// This role's signers (the keys present on this host), each from its [`KeySource`].
    pub fn load_keys(&self, dir: &Path) -> Result<Vec<Arc<dyn Signer>>> {
        let passphrase = match &self.passphrase_file {
            Some(p) => Some(read_passphrase(&dir.join(p))?),
            None => None,
        };
        let passphrase = passphrase.as_deref().map(|v| v.as_slice());
        self.keys
            .iter()
            .map(|p| match p.to_str().filter(|s| Pkcs11Uri::is_pkcs11(s)) {
                // The passphrase file is the token's PIN for a URI that carries none.
                Some(uri) => Ok(token_source(uri, dir)?.with_pin(passphrase)?.signer()?),
                None => FileKeySource::new(dir.join(p))
                    .with_passphrase(passphrase)
                    .signer()
                    .map_err(Error::from),
            })
            .collect()
    }
}

/// A `pkcs11:` key of the config, its relative PIN file taken from the repository directory.
/// The passphrase in `path`, minus one trailing newline; an empty one is refused.
pub fn read_passphrase(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let mut text = zeroize::Zeroizing::new(std::fs::read(path).map_err(io_at(path))?);
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if text.is_empty() {
        return Err(Error::Invalid(format!(
            "passphrase file {} is empty (expected a non-empty passphrase)",
            path.display()
        )));
    }
    Ok(text)
}

/// How a key given on the command line is written into the config: a `pkcs11:` URI as it is,
/// a file as an absolute path (the config may be read from another working directory).
pub fn key_entry(spec: &Path) -> Result<std::path::PathBuf> {
    match spec.to_str().filter(|s| Pkcs11Uri::is_pkcs11(s)) {
        Some(_) => Ok(spec.to_owned()),
        None => std::path::absolute(spec).map_err(io_at(spec)),
    }
}

/// The public keys of `specs` (key files or `pkcs11:` URIs), read as the config would read
/// them. Files must be unencrypted here (the repository's own online keys).
pub fn public_keys_of(
    specs: &[std::path::PathBuf],
    dir: &Path,
) -> Result<Vec<ferry_keys::PublicKey>> {
    let probe = RoleConfig {
        keys: specs.iter().map(|s| key_entry(s)).collect::<Result<_>>()?,
        threshold: 1,
        expires: std::time::Duration::from_secs(1),
        passphrase_file: None,
    };
    Ok(probe
        .load_keys(dir)?
        .iter()
        .map(|s| s.public_key().clone())
        .collect())
}

fn token_source(uri: &str, dir: &Path) -> Result<Pkcs11KeySource> {
    let mut uri = Pkcs11Uri::parse(uri)?;
    if let PinSource::File(pin) = &uri.pin {
        uri.pin = PinSource::File(dir.join(pin));
    }
    Ok(Pkcs11KeySource::new(uri))
}

/// Durations in the config are human-readable ("1day", "12h", "3months").
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Whole days or hours are written as such ("90days", "12h"): humantime's own format
    /// counts years of 365.25 days, which turns "365days" into an unreadable remainder.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        let secs = d.as_secs();
        let text = match secs {
            86_400 => "1day".to_owned(),
            s if s % 86_400 == 0 => format!("{}days", s / 86_400),
            s if s % 3_600 == 0 => format!("{}h", s / 3_600),
            s => format!("{s}s"),
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("duration {text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_toml() {
        let c = Config::default_for_new_repo();
        let text = toml::to_string_pretty(&c).expect("serialises");
        assert!(text.contains("expires = \"1day\""), "{text}");
        let back: Config = toml::from_str(&text).expect("parses");
        assert_eq!(back, c);
    }
}
