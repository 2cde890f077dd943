//! The relay's uplink: one HTTP client toward the Director and the Image repository, and what
//! the relay last learnt of their reachability (for `ferry relay status`). The client trusts
//! `[upstream] ca_cert` beside the system's roots and presents the relay's certificate
//! (`cert`/`key`) to a mutual-TLS Director; requests to the Director carry the relay's token
//! as a bearer when it has one (a mutual-TLS Director knows the relay by its certificate and
//! ignores it).

use crate::config::Upstream as UpstreamConfig;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use std::sync::Mutex;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Reachability {
    /// Whether the last request upstream got an HTTP answer (any status).
    pub reachable: Option<bool>,
    pub last_answer: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

#[derive(Debug)]
pub struct Upstream {
    pub config: UpstreamConfig,
    pub client: reqwest::Client,
    seen: Mutex<Reachability>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Upstream> {
        let bad = |what: &str, reason: String| Error::Upstream {
            url: config.director.clone(),
            reason: format!("[upstream] {what}: {reason}"),
        };
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| bad(what, format!("{}: {e}", path.display())))
        };
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &config.ca_cert {
            let cert = reqwest::Certificate::from_pem(&read("ca_cert", ca)?).map_err(|e| {
                bad(
                    "ca_cert",
                    format!("{}: not a PEM certificate: {e}", ca.display()),
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        if let Some((cert, key)) = &config.client_cert {
            let mut pem = read("cert", cert)?;
            pem.extend(read("key", key)?);
            let identity = reqwest::Identity::from_pem(&pem);
            // The key's bytes are not left in memory longer than reqwest's own copy.
            pem.iter_mut().for_each(|b| *b = 0);
            builder = builder.identity(identity.map_err(|e| {
                bad(
                    "cert/key",
                    format!(
                        "{} / {}: not a PEM certificate and its key: {e}",
                        cert.display(),
                        key.display()
                    ),
                )
            })?);
        }
        let client = builder
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            // Whatever the vehicle asked for, the relay wants the bytes as the server has them.
            .no_gzip()
            // No idle connections kept: after the uplink flaps, a pooled connection would hang
            // a request until read_timeout instead of failing at once on a fresh connect.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::Upstream {
                url: config.director.clone(),
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Upstream {
            config,
            client,
            seen: Mutex::new(Reachability::default()),
        })
    }

    /// A request to the Director with the relay's credential: its token as a bearer when it
    /// has one; its certificate, if configured, rides on the connection.
    pub fn director(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.config.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Record that upstream answered (`Ok`) or could not be reached (`Err`), at `now`.
    pub fn saw(&self, answered: std::result::Result<(), String>, now: DateTime<Utc>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        match answered {
            Ok(()) => {
                seen.reachable = Some(true);
                seen.last_answer = Some(now);
            }
            Err(e) => {
                if seen.reachable != Some(false) {
                    tracing::warn!(error = %e, "upstream unreachable");
                }
                seen.reachable = Some(false);
                seen.last_failure = Some(now);
                seen.last_error = Some(e);
            }
        }
    }

    pub fn reachability(&self) -> Reachability {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Whether an upstream answer means "not there now" (a gateway of the backend failing) and the
/// relay should answer from what it has.
pub fn is_outage(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}
