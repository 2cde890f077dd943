//! What a proposal changes, for the person about to sign it.

use super::file::{Contents, Proposal};
use crate::metadata::{Root, TargetFile, Targets};
use crate::Result;
use ferry_keys::KeyId;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyChange {
    pub keyid: KeyId,
    pub keytype: String,
}

/// One role of a root: keys in and out, threshold before and after.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RoleChange {
    pub role: String,
    pub added: Vec<KeyChange>,
    pub removed: Vec<KeyId>,
    pub threshold: (Option<u32>, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetChange {
    pub name: String,
    pub length: u64,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub repository: &'static str,
    pub role: &'static str,
    pub digest: String,
    pub version: (Option<u64>, u64),
    pub expires: String,
    /// Root proposals: every role whose keys or threshold change.
    pub roles: Vec<RoleChange>,
    /// Targets proposals.
    pub targets_added: Vec<TargetChange>,
    pub targets_removed: Vec<String>,
    pub targets_changed: Vec<TargetChange>,
    pub delegations_added: Vec<String>,
    pub delegations_removed: Vec<String>,
    /// "2 of root v1 (current): a, b, c".
    pub signers: Vec<String>,
}

impl Proposal {
    pub fn summary(&self) -> Result<Summary> {
        let mut s = Summary {
            repository: self.repository.title(),
            role: self.role.name(),
            digest: self.digest()?,
            version: (None, 0),
            expires: String::new(),
            roles: Vec::new(),
            targets_added: Vec::new(),
            targets_removed: Vec::new(),
            targets_changed: Vec::new(),
            delegations_added: Vec::new(),
            delegations_removed: Vec::new(),
            signers: self
                .requirements()?
                .iter()
                .map(|r| {
                    let ids: Vec<&str> = r.keyids.iter().map(KeyId::as_str).collect();
                    format!("{} of {}: {}", r.threshold, r.label, ids.join(", "))
                })
                .collect(),
        };
        match self.contents()? {
            Contents::Root { new, previous } => {
                s.version = (previous.as_ref().map(|p| p.version), new.version);
                s.expires = new.expires.0.to_rfc3339();
                s.roles = root_changes(previous.as_deref(), &new);
            }
            Contents::Targets { new, previous, .. } => {
                s.version = (previous.as_ref().map(|p| p.version), new.version);
                s.expires = new.expires.0.to_rfc3339();
                target_changes(previous.as_deref(), &new, &mut s);
            }
        }
        Ok(s)
    }
}

fn root_changes(previous: Option<&Root>, new: &Root) -> Vec<RoleChange> {
    let mut out = Vec::new();
    for (name, role) in &new.roles {
        let old = previous.and_then(|p| p.roles.get(name));
        let old_ids: BTreeSet<&KeyId> = old.map(|o| o.keyids.iter().collect()).unwrap_or_default();
        let new_ids: BTreeSet<&KeyId> = role.keyids.iter().collect();
        let added: Vec<KeyChange> = role
            .keyids
            .iter()
            .filter(|k| !old_ids.contains(k))
            .map(|k| KeyChange {
                keyid: k.clone(),
                keytype: new
                    .keys
                    .get(k)
                    .map(|p| p.keytype.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let removed: Vec<KeyId> = old_ids
            .iter()
            .filter(|k| !new_ids.contains(*k))
            .map(|k| (*k).clone())
            .collect();
        let before = old.map(|o| o.threshold);
        if !added.is_empty() || !removed.is_empty() || before != Some(role.threshold) {
            out.push(RoleChange {
                role: name.clone(),
                added,
                removed,
                threshold: (before, role.threshold),
            });
        }
    }
    out
}

fn target_change(name: &str, file: &TargetFile) -> TargetChange {
    TargetChange {
        name: name.to_owned(),
        length: file.length,
        sha256: file.hashes.get("sha256").cloned(),
    }
}

fn target_changes(previous: Option<&Targets>, new: &Targets, s: &mut Summary) {
    let empty = BTreeMap::new();
    let old = previous.map_or(&empty, |p| &p.targets);
    for (name, file) in &new.targets {
        match old.get(name) {
            None => s.targets_added.push(target_change(name, file)),
            Some(before) if before != file => s.targets_changed.push(target_change(name, file)),
            Some(_) => {}
        }
    }
    s.targets_removed = old
        .keys()
        .filter(|n| !new.targets.contains_key(*n))
        .cloned()
        .collect();
    let roles = |t: Option<&Targets>| -> BTreeSet<String> {
        t.and_then(|t| t.delegations.as_ref())
            .and_then(|d| d.roles.as_ref())
            .map(|r| r.iter().map(|r| r.name.clone()).collect())
            .unwrap_or_default()
    };
    let (before, after) = (roles(previous), roles(Some(new)));
    s.delegations_added = after.difference(&before).cloned().collect();
    s.delegations_removed = before.difference(&after).cloned().collect();
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self
            .version
            .0
            .map_or("none (first version)".to_owned(), |v| format!("v{v}"));
        writeln!(
            f,
            "{} {}: {from} -> v{}, expires {}",
            self.repository, self.role, self.version.1, self.expires
        )?;
        writeln!(f, "proposal sha256: {}", self.digest)?;
        for r in &self.roles {
            let threshold = match r.threshold.0 {
                Some(t) if t != r.threshold.1 => format!("threshold {t} -> {}", r.threshold.1),
                None => format!("threshold {} (new role)", r.threshold.1),
                Some(t) => format!("threshold {t}"),
            };
            writeln!(f, "  {}: {threshold}", r.role)?;
            for k in &r.added {
                writeln!(f, "    + key {} ({})", k.keyid, k.keytype)?;
            }
            for k in &r.removed {
                writeln!(f, "    - key {k}")?;
            }
        }
        for t in &self.targets_added {
            writeln!(
                f,
                "  + target {} ({} bytes, sha256 {})",
                t.name,
                t.length,
                t.sha256.as_deref().unwrap_or("-")
            )?;
        }
        for t in &self.targets_changed {
            writeln!(
                f,
                "  ~ target {} ({} bytes, sha256 {})",
                t.name,
                t.length,
                t.sha256.as_deref().unwrap_or("-")
            )?;
        }
        for t in &self.targets_removed {
            writeln!(f, "  - target {t}")?;
        }
        for d in &self.delegations_added {
            writeln!(f, "  + delegation {d}")?;
        }
        for d in &self.delegations_removed {
            writeln!(f, "  - delegation {d}")?;
        }
        if self.roles.is_empty()
            && self.targets_added.is_empty()
            && self.targets_changed.is_empty()
            && self.targets_removed.is_empty()
            && self.delegations_added.is_empty()
            && self.delegations_removed.is_empty()
        {
            writeln!(f, "  no key, threshold or target changes (a re-signing)")?;
        }
        writeln!(f, "must be signed by:")?;
        for s in &self.signers {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}
