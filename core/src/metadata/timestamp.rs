use super::{impl_role, Expires, Hashes, RoleType};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What timestamp says of snapshot, and snapshot of each targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<Hashes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl MetaFile {
    pub fn new(version: u64) -> Self {
        MetaFile {
            hashes: None,
            length: None,
            version,
            extra: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub type_: String,
    pub expires: Expires,
    pub meta: BTreeMap<String, MetaFile>,
    pub spec_version: String,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(Timestamp, RoleType::Timestamp, meta);

impl Timestamp {
    /// Timestamp lists snapshot.json and nothing else.
    pub fn snapshot_meta(&self) -> Result<&MetaFile> {
        match (self.meta.len(), self.meta.get("snapshot.json")) {
            (1, Some(meta)) => Ok(meta),
            _ => Err(Error::malformed(
                "timestamp",
                "meta must list exactly snapshot.json",
            )),
        }
    }
}
