//! `ferry repo init`: a new repository with root, targets, snapshot and timestamp, consistent
//! snapshots on. Keys not supplied are generated into DIR/keys.

use crate::config::{Config, CONFIG_FILE};
use crate::error::{io_at, Error, Result};
use crate::layout::Layout;
use crate::repo::{expires_after, PublishReport, Repository};
use chrono::{DateTime, Utc};
use ferry_core::metadata::{RoleKeys, Root, Signed, SPEC_VERSION};
use ferry_core::proposal::{Proposal, RepositoryKind};
use ferry_keys::{KeyKind, PrivateKey, PublicKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use ferry_core::layout::TOP_LEVEL_ROLES;

#[derive(Debug, Default, Clone)]
pub struct InitOptions {
    /// Existing keys per role (a role may have several): private key files or `pkcs11:` URIs.
    pub keys: BTreeMap<String, Vec<PathBuf>>,
    /// Public keys of offline roles (root, targets): their private keys never come near this
    /// host, and their first version is signed through a ceremony.
    pub offline: BTreeMap<String, Vec<PublicKey>>,
    /// Passphrase file that encrypts the root and targets keys generated here.
    pub passphrase_file: Option<PathBuf>,
    pub thresholds: BTreeMap<String, u32>,
    pub expires: BTreeMap<String, Duration>,
}

pub fn init(
    dir: &Path,
    now: DateTime<Utc>,
    options: &InitOptions,
) -> Result<(Repository, Initialised)> {
    if dir.join(CONFIG_FILE).exists() {
        return Err(Error::AlreadyExists(dir.to_owned()));
    }
    for role in options
        .keys
        .keys()
        .chain(options.thresholds.keys())
        .chain(options.expires.keys())
        .chain(options.offline.keys())
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
        let publics: Vec<PublicKey> = match (options.offline.get(role), options.keys.get(role)) {
            (Some(_), _) if !OFFLINE_ROLES.contains(&role) => {
                return Err(Error::Invalid(format!(
                    "{role} is signed online (by the snapshot or timestamp service); only root and targets can be offline"
                )))
            }
            (Some(_), Some(_)) => {
                return Err(Error::Invalid(format!(
                    "{role}: give either offline public keys or key files, not both"
                )))
            }
            (Some(publics), None) => {
                role_config.keys.clear();
                publics.clone()
            }
            (None, Some(specs)) => {
                role_config.keys = specs
                    .iter()
                    .map(|p| crate::config::key_entry(p))
                    .collect::<Result<_>>()?;
                crate::config::public_keys_of(specs, dir)?
            }
            (None, None) => {
                let key = PrivateKey::generate(KeyKind::Ed25519)?;
                let passphrase = match (&options.passphrase_file, OFFLINE_ROLES.contains(&role)) {
                    (Some(file), true) => {
                        role_config.passphrase_file = Some(absolute(file)?);
                        Some(crate::config::read_passphrase(file)?)
                    }
                    _ => None,
                };
                key.write_file(
                    dir.join(&role_config.keys[0]),
                    passphrase.as_ref().map(|p| p.as_slice()),
                )?;
                vec![key.public_key().clone()]
            }
        };
        if threshold == 0 || threshold as usize > publics.len() {
            return Err(Error::Invalid(format!(
                "{role} threshold {threshold} needs between 1 and the {} key(s) given",
                publics.len()
            )));
        }
        role_config.threshold = threshold;
        let mut keyids = Vec::with_capacity(publics.len());
        for key in &publics {
            let id = key.key_id()?;
            root.keys.insert(id.clone(), key.clone());
            keyids.push(id);
        }
        root.roles.insert(
            role.to_owned(),
            RoleKeys {
                keyids,
                threshold,
                extra: BTreeMap::new(),
            },
        );
    }
    config.save(dir)?;

    let proposal = if options.offline.contains_key("root") {
        let proposal = Proposal::root(RepositoryKind::ImageRepo, &root, None)?;
        crate::layout::write_atomic(&dir.join(FIRST_ROOT_PROPOSAL), &proposal.to_bytes()?)?;
        Some(proposal)
    } else {
        None
    };
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
    if proposal.is_some() {
        return Ok((
            repo,
            Initialised::RootProposal(dir.join(FIRST_ROOT_PROPOSAL)),
        ));
    }
    // Root keys are here: sign root v1 now; publish unless targets waits for a ceremony.
    for key in repo.config.root.load_keys(dir)? {
        repo.root.sign(key.as_ref())?;
    }
    repo.layout.write_staged("root", &repo.root)?;
    if !repo.can_sign("targets")? {
        return Ok((repo, Initialised::TargetsCeremony));
    }
    let report = repo.publish()?;
    Ok((repo, Initialised::Published(report)))
}

/// Where the proposal for an offline-first repository's root version 1 is written.
pub const FIRST_ROOT_PROPOSAL: &str = "proposal.json";

/// Roles whose keys may stay off the repository host.
pub const OFFLINE_ROLES: [&str; 2] = ["root", "targets"];

/// What `init` left to do.
#[derive(Debug)]
pub enum Initialised {
    /// Every role was signed here and the repository is published.
    Published(PublishReport),
    /// Root v1 waits for its ceremony: the proposal is at this path.
    RootProposal(PathBuf),
    /// Root v1 is signed; top-level targets v1 waits for its ceremony.
    TargetsCeremony,
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(io_at(path))
}

/// Keys live in DIR/keys: readable by the owner only.
fn restrict_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io_at(path))
}
