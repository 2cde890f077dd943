use super::{impl_role, Expires, Hashes, RoleType};
use crate::paths::{bin_index, glob_match_path};
use crate::verify::Authority;
use crate::{Error, Result};
use ferry_keys::{KeyId, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// One target: its length, hashes and (for Uptane) custom metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
    pub hashes: Hashes,
    pub length: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    pub expires: Expires,
    pub spec_version: String,
    pub targets: BTreeMap<String, TargetFile>,
    pub version: u64,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}
impl_role!(Targets, RoleType::Targets);

impl Targets {
    pub(crate) fn check(&self, role: &str) -> Result<()> {
        match &self.delegations {
            Some(d) => d.check(role),
            None => Ok(()),
        }
    }
}

/// A targets role's delegations: either explicit roles or TAP 15 succinct hashed bins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    pub keys: BTreeMap<KeyId, PublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    pub keyids: Vec<KeyId>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    pub terminating: bool,
    pub threshold: u32,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// TAP 15: `2^bit_length` bins named `{name_prefix}-{index in hex}`, all signed by one key set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    pub bit_length: u32,
    pub keyids: Vec<KeyId>,
    pub name_prefix: String,
    pub threshold: u32,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

use crate::layout::TOP_LEVEL_ROLES as TOP_LEVEL;

impl Delegations {
    fn check(&self, owner: &str) -> Result<()> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for role in roles {
                    if !names.insert(role.name.as_str()) {
                        return Err(Error::malformed(
                            owner,
                            format!("delegated role {} is listed twice", role.name),
                        ));
                    }
                    if TOP_LEVEL.contains(&role.name.as_str()) {
                        return Err(Error::malformed(
                            owner,
                            format!("delegated role may not be named {}", role.name),
                        ));
                    }
                    if role.paths.is_some() == role.path_hash_prefixes.is_some() {
                        return Err(Error::malformed(
                            owner,
                            format!("delegated role {} must have exactly one of paths and path_hash_prefixes", role.name),
                        ));
                    }
                    check_keyids(owner, &role.name, &role.keyids, role.threshold)?;
                }
                Ok(())
            }
            (None, Some(bins)) => {
                if !(1..=32).contains(&bins.bit_length) {
                    return Err(Error::malformed(
                        owner,
                        "succinct_roles bit_length must be 1 to 32",
                    ));
                }
                check_keyids(owner, &bins.name_prefix, &bins.keyids, bins.threshold)
            }
            _ => Err(Error::malformed(
                owner,
                "delegations must have exactly one of roles and succinct_roles",
            )),
        }
    }

    /// The delegated roles that may sign `target`, in the order to search them, each with its
    /// terminating flag (hashed bins are terminating: a target lives in exactly one bin).
    pub fn roles_for_target(&self, target: &str) -> Vec<(String, bool)> {
        if let Some(bins) = &self.succinct_roles {
            return vec![(bins.bin_for(target), true)];
        }
        self.roles
            .iter()
            .flatten()
            .filter(|r| r.is_delegated_path(target))
            .map(|r| (r.name.clone(), r.terminating))
            .collect()
    }

    /// The keys and threshold that `role` (a delegated role or a bin) must be signed with:
    /// `None` when this role does not delegate to it.
    pub fn authority(&self, role: &str) -> Option<Result<Authority<'_>>> {
        let (keyids, threshold) = match &self.succinct_roles {
            Some(bins) => {
                if !bins.is_bin(role) {
                    return None;
                }
                (&bins.keyids, bins.threshold)
            }
            None => {
                let r = self.roles.iter().flatten().find(|r| r.name == role)?;
                (&r.keyids, r.threshold)
            }
        };
        Some(Authority::new(
            role.to_owned(),
            keyids,
            threshold,
            &self.keys,
        ))
    }
}

fn check_keyids(owner: &str, role: &str, keyids: &[KeyId], threshold: u32) -> Result<()> {
    if threshold == 0 {
        return Err(Error::malformed(
            owner,
            format!("role {role} has threshold 0"),
        ));
    }
    if keyids.iter().collect::<BTreeSet<_>>().len() != keyids.len() {
        return Err(Error::malformed(
            owner,
            format!("role {role} lists a key id twice"),
        ));
    }
    Ok(())
}

impl DelegatedRole {
    /// Whether `target` falls under this role: a `paths` pattern matching segment by segment
    /// (shell-style `*`, `?`, `[...]` that never cross `/`), or a prefix of the SHA-256 of the
    /// target path in `path_hash_prefixes`.
    pub fn is_delegated_path(&self, target: &str) -> bool {
        if let Some(paths) = &self.paths {
            return paths.iter().any(|p| glob_match_path(p, target));
        }
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = hex::encode(Sha256::digest(target.as_bytes()));
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        false
    }
}

impl SuccinctRoles {
    pub fn bin_count(&self) -> u64 {
        1u64 << self.bit_length
    }

    fn suffix_len(&self) -> usize {
        format!("{:x}", self.bin_count() - 1).len()
    }

    pub fn bin_name(&self, index: u64) -> String {
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            index,
            width = self.suffix_len()
        )
    }

    /// The bin whose role signs `target`.
    pub fn bin_for(&self, target: &str) -> String {
        self.bin_name(bin_index(target, self.bit_length))
    }

    pub fn is_bin(&self, role: &str) -> bool {
        let Some(suffix) = role
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|s| s.strip_prefix('-'))
        else {
            return false;
        };
        suffix.len() == self.suffix_len()
            && suffix
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && u64::from_str_radix(suffix, 16).is_ok_and(|i| i < self.bin_count())
    }

    pub fn bin_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.bin_count()).map(|i| self.bin_name(i))
    }
}
