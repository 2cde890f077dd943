//! The relay's uplink: one HTTP client toward the Director and the Image repository, and what
//! the relay last learnt of their reachability (for `ferry relay status`).

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
        let client = reqwest::Client::builder()
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
