//! Supplier delegations and TAP 15 hashed bins.

use crate::error::{Error, Result};
use crate::repo::Repository;
use ferry_core::metadata::{DelegatedRole, Delegations, SuccinctRoles};
use ferry_keys::{PrivateKey, PublicKey, Signer};
use std::collections::BTreeMap;

/// Every target of delegated role `role` must lie inside the paths it was delegated (and a bin
/// may only hold the targets that hash into it), or no client would ever find it there.
pub(crate) fn check_paths(repo: &mut Repository, role: &str) -> Result<()> {
    let names: Vec<String> = repo.targets_role(role)?.targets.keys().cloned().collect();
    check_names(repo, role, &names)
}

/// [`check_paths`] for targets about to be added, so a refused target is never staged.
pub(crate) fn check_names(repo: &mut Repository, role: &str, names: &[String]) -> Result<()> {
    if role == "targets" {
        return Ok(());
    }
    let targets = repo.targets_role("targets")?;
    let delegations = targets
        .delegations
        .as_ref()
        .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
    if let Some(bins) = &delegations.succinct_roles {
        if let Some(stray) = names.iter().find(|n| bins.bin_for(n) != role) {
            return Err(Error::OutsideDelegation {
                target: stray.clone(),
                role: role.to_owned(),
                paths: format!("it belongs in bin {}", bins.bin_for(stray)),
            });
        }
        return Ok(());
    }
    let delegated = delegations
        .roles
        .iter()
        .flatten()
        .find(|r| r.name == role)
        .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
    if let Some(stray) = names.iter().find(|n| !delegated.is_delegated_path(n)) {
        return Err(Error::OutsideDelegation {
            target: stray.clone(),
            role: role.to_owned(),
            paths: describe_paths(delegated),
        });
    }
    Ok(())
}

fn describe_paths(role: &DelegatedRole) -> String {
    match (&role.paths, &role.path_hash_prefixes) {
        (Some(p), _) => format!("paths {}", p.join(", ")),
        (_, Some(h)) => format!("path hash prefixes {}", h.join(", ")),
        _ => "no paths".into(),
    }
}

/// What `ferry repo delegate` asks for.
#[derive(Debug, Clone)]
pub struct DelegateOptions {
    pub keys: Vec<PublicKey>,
    pub paths: Vec<String>,
    pub threshold: u32,
    pub terminating: bool,
}

impl Repository {
    /// Delegate `paths` from top-level targets to a supplier role signed by the supplier's keys.
    /// The new role is staged empty; the supplier signs it with [`Repository::sign_role`].
    pub fn delegate(&mut self, role: &str, options: &DelegateOptions) -> Result<()> {
        if crate::init::TOP_LEVEL_ROLES.contains(&role) || role.is_empty() {
            return Err(Error::Invalid(format!(
                "{role:?} cannot be a delegated role name"
            )));
        }
        if options.paths.is_empty() || options.keys.is_empty() {
            return Err(Error::Invalid(
                "a delegation needs at least one path and one key".into(),
            ));
        }
        if options.threshold == 0 || options.threshold as usize > options.keys.len() {
            return Err(Error::Invalid(format!(
                "threshold {} needs between 1 and the {} key(s) given",
                options.threshold,
                options.keys.len()
            )));
        }
        let keyids = options
            .keys
            .iter()
            .map(|k| k.key_id())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let role_name = role.to_owned();
        let options = options.clone();
        self.edit_targets("targets", |targets| {
            let d = targets.delegations.get_or_insert_with(|| Delegations {
                keys: BTreeMap::new(),
                roles: Some(Vec::new()),
                succinct_roles: None,
                extra: BTreeMap::new(),
            });
            if d.succinct_roles.is_some() {
                return Err(Error::Invalid("top-level targets delegates to hashed bins; supplier delegations cannot be mixed in".into()));
            }
            let roles = d.roles.get_or_insert_with(Vec::new);
            if roles.iter().any(|r| r.name == role_name) {
                return Err(Error::Invalid(format!("role {role_name} is already delegated")));
            }
            for (id, key) in keyids.iter().zip(&options.keys) {
                d.keys.insert(id.clone(), key.clone());
            }
            roles.push(DelegatedRole {
                keyids,
                name: role_name,
                path_hash_prefixes: None,
                paths: Some(options.paths),
                terminating: options.terminating,
                threshold: options.threshold,
                extra: BTreeMap::new(),
            });
            Ok(())
        })?;
        self.create_targets(role)
    }

    /// Add `key`'s signature to the staged role `role`. The key must be one the delegator lists
    /// for the role, and the role may hold only targets inside its delegated paths.
    pub fn sign_role(&mut self, role: &str, key: &dyn Signer) -> Result<()> {
        let (keyids, _, _) = self.authority_parts(role)?;
        if !keyids.contains(key.key_id()) {
            return Err(Error::KeyNotAuthorised {
                keyid: key.key_id().to_string(),
                role: role.to_owned(),
            });
        }
        crate::delegation::check_paths(self, role)?;
        self.load_role(role)?;
        let entry = self
            .roles
            .get_mut(role)
            .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
        if !entry.staged {
            return Err(Error::Invalid(format!(
                "{role} has no unpublished changes to sign"
            )));
        }
        entry.doc.sign(key)?;
        self.layout.write_staged(role, &entry.doc)
    }

    /// Split top-level targets into `count` hashed bins (TAP 15) signed by the online bins key,
    /// moving every top-level target into its bin.
    pub fn make_bins(&mut self, count: u64, key_path: Option<&std::path::Path>) -> Result<()> {
        if !(2..=1 << 16).contains(&count) || !count.is_power_of_two() {
            return Err(Error::Invalid(format!(
                "bin count {count} must be a power of two from 2 to 65536"
            )));
        }
        if self.targets_role("targets")?.delegations.is_some() {
            return Err(Error::Invalid(
                "top-level targets already delegates; bins replace all delegations".into(),
            ));
        }
        let mut config = self.config.targets.clone();
        config.expires = std::time::Duration::from_secs(7 * 24 * 3600);
        let public = match key_path {
            Some(spec) => {
                config.keys = vec![crate::config::key_entry(spec)?];
                crate::config::public_keys_of(&[spec.to_owned()], self.dir())?
                    .pop()
                    .ok_or_else(|| Error::Invalid("--key named no key".into()))?
            }
            None => {
                let path = std::path::PathBuf::from("keys/bins.pem");
                let key = PrivateKey::generate(ferry_keys::KeyKind::Ed25519)?;
                key.write_file(self.dir().join(&path), None)?;
                config.keys = vec![path];
                key.public_key().clone()
            }
        };
        let key_id = public.key_id()?;
        config.threshold = 1;
        self.config.bins = Some(config);
        self.config.save(self.dir())?;
        let bins = SuccinctRoles {
            bit_length: count.trailing_zeros(),
            keyids: vec![key_id.clone()],
            name_prefix: "bins".into(),
            threshold: 1,
            extra: BTreeMap::new(),
        };
        let mut moved = BTreeMap::new();
        let succinct = bins.clone();
        self.edit_targets("targets", |t| {
            moved = std::mem::take(&mut t.targets);
            t.delegations = Some(Delegations {
                keys: [(key_id.clone(), public)].into(),
                roles: None,
                succinct_roles: Some(succinct),
                extra: BTreeMap::new(),
            });
            Ok(())
        })?;
        let mut per_bin: BTreeMap<String, BTreeMap<String, _>> = BTreeMap::new();
        for (name, file) in moved {
            per_bin
                .entry(bins.bin_for(&name))
                .or_default()
                .insert(name, file);
        }
        for name in bins.bin_names() {
            self.create_targets(&name)?;
            if let Some(files) = per_bin.remove(&name) {
                self.edit_targets(&name, |t| {
                    t.targets = files;
                    Ok(())
                })?;
            }
        }
        Ok(())
    }
}
