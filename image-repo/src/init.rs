//! `ferry repo init`: a new repository with root, targets, snapshot and timestamp, consistent
//! snapshots on. Keys not supplied are generated into DIR/keys.

use crate::config::{Config, CONFIG_FILE};
use crate::error::{io_at, Error, Result};
use crate::layout::Layout;
use crate::repo::{expires_after, PublishReport, Repository};
use chrono::{DateTime, Utc};
use ferry_core::metadata::{RoleKeys, Root, Signed, SPEC_VERSION};
use ferry_keys::{KeyKind, PrivateKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ferry_core::layout::TOP_LEVEL_ROLES;

#[derive(Debug, Default, Clone)]
pub struct InitOptions {
    /// Existing private key files per role (a role may have several).
    pub keys: BTreeMap<String, Vec<PathBuf>>,
    pub thresholds: BTreeMap<String, u32>,
    pub expires: BTreeMap<String, Duration>,
}

pub fn init(
    dir: &Path,
    now: DateTime<Utc>,
    options: &InitOptions,
) -> Result<(Repository, PublishReport)> {
    if dir.join(CONFIG_FILE).exists() {
        return Err(Error::AlreadyExists(dir.to_owned()));
    }
    for role in options
        .keys
        .keys()
        .chain(options.thresholds.keys())
        .chain(options.expires.keys())
    {
        if !TOP_LEVEL_ROLES.contains(&role.as_str()) {
            return Err(Error::NoSuchRole(role.clone()));
        }
    }
    let layout = Layout::new(dir);
    for d in [layout.metadata(), layout.targets(), layout.keys()] {
        std::fs::create_dir_all(&d).map_err(io_at(&d))?;
    }
    restrict_dir(&layout.keys())?;

    let mut config = Config::default_for_new_repo();
    let mut root = Root {
        type_: "root".into(),
        consistent_snapshot: true,
        expires: expires_after(now, config.root.expires),
        keys: BTreeMap::new(),
        roles: BTreeMap::new(),
        spec_version: SPEC_VERSION.into(),
        version: 1,
        extra: BTreeMap::new(),
    };
    for role in TOP_LEVEL_ROLES {
        let role_config = config
            .role_mut(role)
            .ok_or_else(|| Error::NoSuchRole(role.into()))?;
        if let Some(lifetime) = options.expires.get(role) {
            role_config.expires = *lifetime;
        }
        let threshold = options.thresholds.get(role).copied().unwrap_or(1);
        let keys: Vec<PrivateKey> = match options.keys.get(role) {
            Some(paths) => {
                role_config.keys = paths.iter().map(|p| absolute(p)).collect::<Result<_>>()?;
                paths
                    .iter()
                    .map(|p| PrivateKey::read_file(p, None))
                    .collect::<std::result::Result<_, _>>()?
            }
            None => {
                let key = PrivateKey::generate(KeyKind::Ed25519)?;
                key.write_file(dir.join(&role_config.keys[0]), None)?;
                vec![key]
            }
        };
        if threshold == 0 || threshold as usize > keys.len() {
            return Err(Error::Invalid(format!(
                "{role} threshold {threshold} needs between 1 and the {} key(s) given",
                keys.len()
            )));
        }
        role_config.threshold = threshold;
        for key in &keys {
            root.keys
                .insert(key.key_id().clone(), key.public_key().clone());
        }
        root.roles.insert(
            role.to_owned(),
            RoleKeys {
                keyids: keys.iter().map(|k| k.key_id().clone()).collect(),
                threshold,
                extra: BTreeMap::new(),
            },
        );
    }
    config.save(dir)?;

    let root = Signed::new(root);
    layout.write_staged("root", &root)?;
    let mut repo = Repository {
        layout,
        config,
        now,
        root,
        root_staged: true,
        published_root: None,
        timestamp: None,
        snapshot: None,
        roles: BTreeMap::new(),
    };
    repo.create_targets("targets")?;
    let report = repo.publish()?;
    Ok((repo, report))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(io_at(path))
}

/// Keys live in DIR/keys: readable by the owner only.
fn restrict_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io_at(path))
}
