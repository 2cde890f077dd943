//! PURE-2 ("Offline Updates") documents of the Director: the offline-update snapshot lists
//! every offline-update targets file with its version; each offline-update targets file lists
//! images by hardwareId (not ECU serial), for any vehicle that carries them on a stick.

use super::{impl_role, Expires, MetaFile, RoleType, TargetFile};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The two roles PURE-2 adds to a Director root, as named there.
pub const OFFLINE_ROLES: [&str; 2] = ["offline-update-snapshot", "offline-update-targets"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineSnapshot {
    #[serde(rename = "_type")]
    pub type_: String,
    pub expires: Expires,
    /// `NAME.json` → version (and optionally length and hashes) of each offline-update
    /// targets file.
    pub meta: BTreeMap<String, MetaFile>,
    pub spec_version: String,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(OfflineSnapshot, RoleType::OfflineUpdateSnapshot, meta);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineTargets {
    #[serde(rename = "_type")]
    pub type_: String,
    pub expires: Expires,
    pub spec_version: String,
    /// Each image with its length, hashes and custom metadata; `custom.hardwareIds` names
    /// the ECU types it is for.
    pub targets: BTreeMap<String, TargetFile>,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(OfflineTargets, RoleType::OfflineUpdateTargets);

impl OfflineTargets {
    /// PURE-2: offline-update targets never delegate.
    pub(crate) fn check_no_delegations(&self) -> Result<()> {
        if self.extra.contains_key("delegations") {
            return Err(Error::DirectorDelegates {
                roles: "(offline-update targets carry delegations)".into(),
            });
        }
        Ok(())
    }

    /// The hardwareIds target `name` is for (`custom.hardwareIds`).
    pub fn hardware_ids<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.targets
            .get(name)
            .and_then(|t| t.custom.as_ref())
            .and_then(|c| c.get("hardwareIds"))
            .and_then(|h| h.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default()
    }
}
