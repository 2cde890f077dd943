//! The options of a root proposal, the same for the Director and the Image repository.

use crate::error::{Error, Result};
use ferry_core::metadata::Expires;
use ferry_core::proposal::RootChanges;
use ferry_keys::KeyId;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Add a key to a role (repeatable): ROLE=PUB, PUB being SPKI PEM, TUF key JSON (what
    /// `ferry key pub` prints), a certificate or a pkcs11: URI.
    #[arg(long = "add-key", value_name = "ROLE=PUB", value_parser = pair)]
    add: Vec<(String, String)>,
    /// Remove a key from a role (repeatable): ROLE=KEYID.
    #[arg(long = "remove-key", value_name = "ROLE=KEYID", value_parser = pair)]
    remove: Vec<(String, String)>,
    /// A role's new threshold (repeatable): ROLE=N.
    #[arg(long = "threshold", value_name = "ROLE=N", value_parser = pair)]
    thresholds: Vec<(String, String)>,
    /// How long the new root is valid: root=DURATION (default: the repository's root lifetime,
    /// 1 year). Other roles' lifetimes are not in the root; they are set where those roles
    /// are signed.
    #[arg(long = "expires", value_name = "root=DURATION", value_parser = pair)]
    expires: Vec<(String, String)>,
}

fn pair(text: &str) -> std::result::Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected ROLE=VALUE, got {text:?}"))
}

impl Args {
    /// The changes, with new root expiry counted from `now`.
    pub fn changes(&self, now: chrono::DateTime<chrono::Utc>) -> Result<RootChanges> {
        let mut changes = RootChanges::default();
        for (role, public) in &self.add {
            changes
                .add
                .push((role.clone(), crate::keyfile::public_key_of(public, None)?));
        }
        for (role, keyid) in &self.remove {
            if keyid.len() != 64 || !keyid.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Usage(format!(
                    "--remove-key {role}={keyid}: expected a 64-digit hex key id"
                )));
            }
            changes
                .remove
                .push((role.clone(), KeyId::new(keyid.to_ascii_lowercase())));
        }
        for (role, n) in &self.thresholds {
            let n = n
                .parse()
                .map_err(|_| Error::Usage(format!("--threshold {role}={n}: not a number")))?;
            changes.thresholds.push((role.clone(), n));
        }
        for (role, d) in &self.expires {
            if role != "root" {
                return Err(Error::Usage(format!(
                    "--expires {role}=...: a root proposal sets only root's expiry (root=DURATION)"
                )));
            }
            let d = humantime::parse_duration(d)
                .map_err(|e| Error::Usage(format!("--expires root={d}: {e}")))?;
            let d = chrono::Duration::from_std(d)
                .map_err(|e| Error::Usage(format!("--expires root: {e}")))?;
            changes.expires = Some(Expires::after(now, d));
        }
        Ok(changes)
    }
}
