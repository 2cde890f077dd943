use super::{impl_role, Expires, MetaFile, RoleType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub type_: String,
    pub expires: Expires,
    /// `ROLE.json` → version (and optionally length and hashes) of each targets role.
    pub meta: BTreeMap<String, MetaFile>,
    pub spec_version: String,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(Snapshot, RoleType::Snapshot, meta);

impl Snapshot {
    pub fn role_meta(&self, role: &str) -> Option<&MetaFile> {
        self.meta.get(&format!("{role}.json"))
    }
}
