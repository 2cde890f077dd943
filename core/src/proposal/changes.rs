//! The edits a root proposal makes: the same options for the Director's root and the Image
//! repository's (`--add-key ROLE=PUB`, `--remove-key ROLE=KEYID`, `--threshold ROLE=N`).

use super::file::proposal_error;
use crate::metadata::{Expires, RoleKeys, Root};
use crate::Result;
use ferry_keys::{KeyId, PublicKey};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct RootChanges {
    pub add: Vec<(String, PublicKey)>,
    pub remove: Vec<(String, KeyId)>,
    pub thresholds: Vec<(String, u32)>,
    /// When the new root expires.
    pub expires: Option<Expires>,
}

impl RootChanges {
    /// The next root: `previous` with these changes, version + 1. Keys no role lists any more
    /// leave the root's key table.
    pub fn apply(&self, previous: &Root) -> Result<Root> {
        let mut root = previous.clone();
        root.version = previous
            .version
            .checked_add(1)
            .ok_or_else(|| proposal_error("root version cannot go above u64::MAX".into()))?;
        if let Some(expires) = &self.expires {
            root.expires = *expires;
        }
        for (role, keyid) in &self.remove {
            let entry = role_mut(&mut root, role)?;
            let before = entry.keyids.len();
            entry.keyids.retain(|k| k != keyid);
            if entry.keyids.len() == before {
                return Err(proposal_error(format!(
                    "--remove-key {role}={keyid}: root v{} does not list that key for {role}",
                    previous.version
                )));
            }
        }
        for (role, key) in &self.add {
            let keyid = key.key_id()?;
            if crate::metadata::OFFLINE_ROLES.contains(&role.as_str()) {
                // PURE-2 roles come into being by being given a key (both of them: a root
                // with one alone is refused when the proposal is made).
                root.roles.entry(role.clone()).or_insert_with(|| RoleKeys {
                    keyids: Vec::new(),
                    threshold: 1,
                    extra: Default::default(),
                });
            }
            let entry = role_mut(&mut root, role)?;
            if entry.keyids.contains(&keyid) {
                return Err(proposal_error(format!(
                    "--add-key {role}: key {keyid} already signs {role}"
                )));
            }
            entry.keyids.push(keyid.clone());
            root.keys.insert(keyid, key.clone());
        }
        for (role, threshold) in &self.thresholds {
            role_mut(&mut root, role)?.threshold = *threshold;
        }
        for (role, entry) in &root.roles {
            if entry.threshold == 0 || entry.threshold as usize > entry.keyids.len() {
                return Err(proposal_error(format!(
                    "{role} would have threshold {} with {} key(s); expected 1 to the number of keys",
                    entry.threshold,
                    entry.keyids.len()
                )));
            }
        }
        let used: BTreeSet<KeyId> = root
            .roles
            .values()
            .flat_map(|r| r.keyids.iter().cloned())
            .collect();
        root.keys.retain(|id, _| used.contains(id));
        Ok(root)
    }
}

fn role_mut<'r>(root: &'r mut Root, role: &str) -> Result<&'r mut RoleKeys> {
    let names = root.roles.keys().cloned().collect::<Vec<_>>().join(", ");
    root.roles.get_mut(role).ok_or_else(|| {
        proposal_error(format!(
            "root has no role {role:?}; expected one of {names}"
        ))
    })
}
