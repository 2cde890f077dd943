//! When each role of a repository runs out, and whether a key ceremony is due. Offline roles
//! cannot be re-signed by a cron job: a person has to gather the key holders, so they are
//! flagged a whole signing window (`[expiry] sign_before`) ahead.

use crate::metadata::Root;
use chrono::{DateTime, Utc};
use ferry_keys::KeyId;

/// How a role gets its signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signing {
    /// Keys on the server re-sign it (a refresher, `ferry repo refresh`).
    Online,
    /// Only a key ceremony can sign it.
    Offline,
}

/// One role's expiry, as `ferry repo status` and `ferry director status` print it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleStatus {
    pub role: String,
    pub version: u64,
    pub expires: DateTime<Utc>,
    /// Seconds until expiry (negative: expired).
    pub seconds_left: i64,
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    pub signing: Signing,
    /// An offline role that expires within the signing window: run `ceremony` now.
    pub due: bool,
    /// The command that starts the ceremony for this role (offline roles).
    pub ceremony: Option<String>,
}

impl RoleStatus {
    /// `role` of `root` (its keys and threshold), at `version` expiring at `expires`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        role: &str,
        root: &Root,
        version: u64,
        expires: DateTime<Utc>,
        signing: Signing,
        ceremony: Option<String>,
        now: DateTime<Utc>,
        sign_before: chrono::Duration,
    ) -> RoleStatus {
        let (keyids, threshold) = root
            .roles
            .get(role)
            .map(|r| (r.keyids.clone(), r.threshold))
            .unwrap_or_default();
        RoleStatus {
            role: role.to_owned(),
            version,
            expires,
            seconds_left: (expires - now).num_seconds(),
            keyids,
            threshold,
            signing,
            due: signing == Signing::Offline && expires - now < sign_before,
            ceremony: if signing == Signing::Offline {
                ceremony
            } else {
                None
            },
        }
    }
}

/// "3 days 4h", "expired 2h ago".
pub fn time_left(seconds: i64) -> String {
    let (abs, past) = (seconds.unsigned_abs(), seconds < 0);
    let (d, h, m) = (abs / 86_400, abs % 86_400 / 3_600, abs % 3_600 / 60);
    let text = match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, h) => format!("{h}h {m}m"),
        (d, h) => format!("{d} days {h}h"),
    };
    if past {
        format!("expired {text} ago")
    } else {
        text
    }
}
