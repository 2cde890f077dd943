use super::{impl_role, Expires, RoleType};
use crate::verify::Authority;
use crate::{Error, Result};
use ferry_keys::{KeyId, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which keys may sign a role, and how many must.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl RoleKeys {
    pub(crate) fn check(&self, role: &str, owner: &str) -> Result<()> {
        if self.threshold == 0 {
            return Err(Error::malformed(
                owner,
                format!("role {role} has threshold 0"),
            ));
        }
        let unique: BTreeSet<_> = self.keyids.iter().collect();
        if unique.len() != self.keyids.len() {
            return Err(Error::malformed(
                owner,
                format!("role {role} lists a key id twice"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub type_: String,
    pub consistent_snapshot: bool,
    pub expires: Expires,
    pub keys: BTreeMap<KeyId, PublicKey>,
    pub roles: BTreeMap<String, RoleKeys>,
    pub spec_version: String,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(Root, RoleType::Root);

impl Root {
    /// Whether this root carries the PURE-2 offline-update roles.
    pub fn has_offline_roles(&self) -> bool {
        super::OFFLINE_ROLES
            .iter()
            .all(|r| self.roles.contains_key(*r))
    }

    /// Structural checks the schema cannot express: exactly the four top-level roles, each with
    /// a sane threshold and no key listed twice.
    pub(crate) fn check(&self) -> Result<()> {
        let names: BTreeSet<&str> = self.roles.keys().map(String::as_str).collect();
        let top: BTreeSet<&str> = crate::layout::TOP_LEVEL_ROLES.into();
        // PURE-2: a Director root may add both offline-update roles (never one alone).
        let with_offline: BTreeSet<&str> =
            top.iter().copied().chain(super::OFFLINE_ROLES).collect();
        if names != top && names != with_offline {
            return Err(Error::malformed(
                "root",
                format!(
                    "roles must be exactly root, snapshot, targets, timestamp (and for a Director offline-update-snapshot with offline-update-targets); found {names:?}"
                ),
            ));
        }
        for (name, role) in &self.roles {
            role.check(name, "root")?;
        }
        Ok(())
    }

    /// The keys and threshold this root grants `role`.
    pub fn authority(&self, role: RoleType) -> Result<Authority<'_>> {
        let keys = self
            .roles
            .get(role.name())
            .ok_or_else(|| Error::malformed("root", format!("no {role} role")))?;
        Authority::new(role.name(), &keys.keyids, keys.threshold, &self.keys)
    }
}
