//! Keeping a repository alive: re-signing online roles before they expire, and key rotation.

use crate::error::{Error, Result};
use crate::repo::{Force, PublishReport, Repository};
use ferry_core::metadata::Role;
use ferry_keys::{PrivateKey, PublicKey};
use std::path::PathBuf;

impl Repository {
    /// Re-sign the online roles (hashed bins, snapshot, timestamp) that expire within `within`
    /// of now. Idempotent: a second run finds nothing close to expiry and writes nothing.
    pub fn refresh(&mut self, within: std::time::Duration) -> Result<PublishReport> {
        let deadline =
            self.now + chrono::Duration::from_std(within).unwrap_or(chrono::Duration::days(1));
        // Strictly before the deadline: a role just re-signed with a lifetime equal to the
        // window is not due again, so running refresh twice changes nothing.
        let due = |expires: &ferry_core::metadata::Expires| expires.0 < deadline;
        let mut force = Force::default();
        let targets = self.targets_role("targets")?;
        if let Some(bins) = targets
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.clone())
        {
            for bin in bins.bin_names() {
                if due(self.targets_role(&bin)?.expires()) {
                    self.edit_targets(&bin, |_| Ok(()))?;
                }
            }
        }
        if let Some(s) = &self.snapshot {
            force.snapshot = due(s.signed.expires());
        }
        if let Some(t) = &self.timestamp {
            force.timestamp = due(t.signed.expires());
        }
        self.publish_with(force)
    }

    /// Replace the keys of `role` (root, targets, snapshot, timestamp) with `new_keys` and
    /// publish a new root signed by the old root threshold and (for root) the new one; the
    /// rotated role is then re-signed with its new keys.
    pub fn rotate(
        &mut self,
        role: &str,
        new_keys: &[(PathBuf, PrivateKey)],
        threshold: u32,
    ) -> Result<PublishReport> {
        let keys: Vec<(PathBuf, PublicKey)> = new_keys
            .iter()
            .map(|(p, k)| (p.clone(), k.public_key().clone()))
            .collect();
        self.rotate_to(role, &keys, threshold)
    }

    /// [`Repository::rotate`] to keys named as the config names them: key files or
    /// `pkcs11:` URIs (the key stays on its token).
    pub fn rotate_sources(
        &mut self,
        role: &str,
        specs: &[PathBuf],
        threshold: u32,
    ) -> Result<PublishReport> {
        let publics = crate::config::public_keys_of(specs, self.dir())?;
        let keys: Vec<(PathBuf, PublicKey)> = specs.iter().cloned().zip(publics).collect();
        self.rotate_to(role, &keys, threshold)
    }

    fn rotate_to(
        &mut self,
        role: &str,
        new_keys: &[(PathBuf, PublicKey)],
        threshold: u32,
    ) -> Result<PublishReport> {
        if !crate::init::TOP_LEVEL_ROLES.contains(&role) {
            return Err(Error::NoSuchRole(role.to_owned()));
        }
        if threshold == 0 || threshold as usize > new_keys.len() {
            return Err(Error::Invalid(format!(
                "threshold {threshold} needs between 1 and the {} new key(s)",
                new_keys.len()
            )));
        }
        // The old root keys sign the new root before the config forgets them.
        let old_root_keys = self.config.root.load_keys(self.dir())?;
        let role_name = role.to_owned();
        self.edit_root(|root| {
            let entry = root
                .roles
                .get_mut(&role_name)
                .ok_or_else(|| Error::NoSuchRole(role_name.clone()))?;
            entry.keyids = new_keys
                .iter()
                .map(|(_, k)| k.key_id())
                .collect::<std::result::Result<_, _>>()?;
            entry.threshold = threshold;
            for (_, key) in new_keys {
                root.keys.insert(key.key_id()?, key.clone());
            }
            let used: std::collections::BTreeSet<_> = root
                .roles
                .values()
                .flat_map(|r| r.keyids.iter().cloned())
                .collect();
            root.keys.retain(|id, _| used.contains(id));
            Ok(())
        })?;
        let old_authority: Vec<_> = self
            .published_root
            .as_ref()
            .map(|r| r.signed.roles["root"].keyids.clone())
            .unwrap_or_default();
        for key in &old_root_keys {
            if old_authority.contains(key.key_id()) {
                self.root.sign(key.as_ref())?;
            }
        }
        self.layout.write_staged("root", &self.root)?;

        let role_config = self
            .config
            .role_mut(role)
            .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
        role_config.keys = new_keys
            .iter()
            .map(|(p, _)| crate::config::key_entry(p))
            .collect::<Result<_>>()?;
        role_config.threshold = threshold;
        role_config.passphrase_file = None;
        self.config.save(self.dir())?;
        if role == "targets" {
            self.edit_targets("targets", |_| Ok(()))?;
        }
        self.publish_with(Force {
            snapshot: true,
            timestamp: true,
        })
    }
}
