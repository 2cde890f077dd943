//! `relay.toml`. Relative paths are resolved against the file's directory.
//!
//! ```toml
//! listen = "0.0.0.0:9400"                  # where vehicles reach the relay (plain HTTP)
//! cache_dir = "/var/lib/ferry-relay"       # cache, queue and last copies (relay.db)
//! cache_max = "50GiB"                      # least recently used targets go past this
//! retry_every = "5s"                       # how often a down uplink is tried again
//! max_queue = 100000                       # manifests held at most while the uplink is down
//!
//! [upstream]
//! director = "https://director.example:8443"
//! image_repo = "https://images.example"
//! # The relay's credential toward the Director: its token, or mutual TLS, or both.
//! token_file = "relay.token"               # from `ferry admin relay add NAME --out FILE`;
//!                                          # also keys `ferry relay export`'s MAC
//! ca_cert = "fleet-ca.pem"                 # trusted for https upstream (else the system's roots)
//! cert = "relay-cert/cert.pem"             # `ferry director issue-cert --relay NAME`, registered
//! key = "relay-cert/key.pem"               # with `ferry admin relay add NAME --cert`
//! connect_timeout = "5s"
//! read_timeout = "30s"
//!
//! [tls]                                    # optional: vehicles over mutual TLS
//! listen = "0.0.0.0:9443"                  # a second listener, beside the plain one
//! ca_cert = "fleet-ca.pem"                 # device certificates must chain to it
//! cert = "relay-server.pem"                # the relay's server certificate and key
//! key = "relay-server.key"
//! handshake_timeout = "10s"
//!
//! [http]                                   # as the Director's [http]
//! ```
//!
//! On the `[tls]` listener a vehicle is its device certificate (the VINs it names, read as
//! the Director reads them), exactly as on a mutual-TLS Director; the relay vouches for it
//! upstream (`Ferry-Relayed-Vin`). On the plain listener it is its device token, forwarded.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub cache_dir: PathBuf,
    pub cache_max: u64,
    pub retry_every: Duration,
    pub max_queue: u64,
    pub upstream: Upstream,
    /// `[tls]`: a second listener for vehicles over mutual TLS.
    pub tls: Option<VehicleTls>,
    pub http: ferry_http::Limits,
}

#[derive(Clone)]
pub struct Upstream {
    pub director: String,
    pub image_repo: String,
    /// The relay's name, from its token or its certificate.
    pub name: String,
    /// The relay's token toward the Director (`ferry-relay:NAME:SECRET`), if it has one.
    pub token: Option<String>,
    /// Trusted for https upstream, beside the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// The relay's client certificate and key (mutual TLS toward the Director).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    // Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("director", &self.director)
            .field("image_repo", &self.image_repo)
            .field("name", &self.name)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

/// `[tls]`: vehicles over mutual TLS, their device certificates of the fleet CA.
#[derive(Debug, Clone)]
pub struct VehicleTls {
    pub listen: SocketAddr,
    /// The fleet CA: device certificates must chain to it.
    pub ca_cert: PathBuf,
    /// The relay's server certificate (then any intermediates) and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
    pub handshake_timeout: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    listen: SocketAddr,
    ca_cert: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    #[serde(default = "default_handshake")]
    handshake_timeout: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    listen: SocketAddr,
    cache_dir: PathBuf,
    #[serde(default = "default_cache_max")]
    cache_max: String,
    #[serde(default = "default_retry")]
    retry_every: String,
    #[serde(default = "default_max_queue")]
    max_queue: u64,
    upstream: UpstreamFile,
    tls: Option<TlsFile>,
    #[serde(default)]
    http: ferry_http::Limits,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamFile {
    director: String,
    image_repo: String,
    token_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    #[serde(default = "default_connect")]
    connect_timeout: String,
    #[serde(default = "default_read")]
    read_timeout: String,
}

fn default_cache_max() -> String {
    "50GiB".into()
}
fn default_retry() -> String {
    "5s".into()
}
fn default_max_queue() -> u64 {
    100_000
}
fn default_connect() -> String {
    "5s".into()
}
fn default_read() -> String {
    "30s".into()
}
fn default_handshake() -> String {
    "10s".into()
}

/// The relay name a client certificate (PEM file) is for: its CN `relay:NAME`.
fn certificate_relay_name(path: &Path) -> std::result::Result<String, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let info = ferry_keys::certificate_info(&pem)
        .map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
    info.subject_cn
        .as_deref()
        .and_then(|cn| cn.strip_prefix("relay:"))
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "{}: the certificate's CN is {:?}; expected relay:NAME, from `ferry director issue-cert --relay NAME`",
                path.display(),
                info.subject_cn
            )
        })
}

/// `50GiB`, `512MiB`, `10GB`, `1048576`: a byte count.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 50GiB or 512MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?}: too large"))
}

impl RelayConfig {
    pub fn load(path: &Path) -> Result<RelayConfig> {
        let bad = |reason: String| Error::Config {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let f: File = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let duration = |what: &str, t: &str| {
            humantime::parse_duration(t)
                .map_err(|e| bad(format!("{what} {t:?}: {e}; expected a duration such as 5s")))
        };
        let token = match &f.upstream.token_file {
            None => None,
            Some(file) => {
                let token_path = dir.join(file);
                let token = std::fs::read_to_string(&token_path)
                    .map_err(|e| {
                        bad(format!(
                            "[upstream] token_file {}: {e}",
                            token_path.display()
                        ))
                    })?
                    .trim()
                    .to_owned();
                if !token.starts_with("ferry-relay:") {
                    return Err(bad(format!(
                        "[upstream] token_file {}: not a relay token; expected the file `ferry admin relay add NAME --out FILE` wrote",
                        token_path.display()
                    )));
                }
                Some(token)
            }
        };
        let client_cert = match (&f.upstream.cert, &f.upstream.key) {
            (Some(cert), Some(key)) => Some((dir.join(cert), dir.join(key))),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "[upstream] mutual TLS needs both cert and key; expected both or neither"
                        .into(),
                ))
            }
        };
        let name = match (&token, &client_cert) {
            (Some(token), _) => crate::carry::relay_name(token),
            (None, Some((cert, _))) => {
                certificate_relay_name(cert).map_err(|e| bad(format!("[upstream] cert {e}")))?
            }
            (None, None) => {
                return Err(bad(
                    "[upstream] has no credential; expected token_file, or cert and key (mutual TLS), or both".into(),
                ))
            }
        };
        if let (Some(_), Some((cert, _))) = (&token, &client_cert) {
            let named =
                certificate_relay_name(cert).map_err(|e| bad(format!("[upstream] cert {e}")))?;
            if named != name {
                return Err(bad(format!(
                    "[upstream] the token is relay {name}'s but the certificate relay {named}'s; expected one relay's credentials"
                )));
            }
        }
        for (what, url) in [
            ("director", &f.upstream.director),
            ("image_repo", &f.upstream.image_repo),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(format!(
                    "[upstream] {what} {url:?}: expected an http:// or https:// URL"
                )));
            }
        }
        f.http.check("ferry relay serve").map_err(bad)?;
        Ok(RelayConfig {
            listen: f.listen,
            cache_dir: dir.join(f.cache_dir),
            cache_max: parse_size(&f.cache_max).map_err(|e| bad(format!("cache_max {e}")))?,
            retry_every: duration("retry_every", &f.retry_every)?,
            max_queue: f.max_queue.max(1),
            upstream: Upstream {
                director: f.upstream.director.trim_end_matches('/').to_owned(),
                image_repo: f.upstream.image_repo.trim_end_matches('/').to_owned(),
                name,
                token,
                ca_cert: f.upstream.ca_cert.map(|p| dir.join(p)),
                client_cert,
                connect_timeout: duration("connect_timeout", &f.upstream.connect_timeout)?,
                read_timeout: duration("read_timeout", &f.upstream.read_timeout)?,
            },
            tls: match f.tls {
                None => None,
                Some(t) => Some(VehicleTls {
                    listen: t.listen,
                    ca_cert: dir.join(t.ca_cert),
                    cert: dir.join(t.cert),
                    key: dir.join(t.key),
                    handshake_timeout: duration("[tls] handshake_timeout", &t.handshake_timeout)?,
                }),
            },
            http: f.http,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("50GiB"), Ok(50 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }
}
