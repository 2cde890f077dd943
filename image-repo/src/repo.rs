//! The repository as an editor sees it: published metadata, plus staged edits on top.
//!
//! An edit never touches `metadata/`. The first edit of a role copies its published `signed`
//! part into `staging/` with the version already bumped; later edits change the staged copy
//! and drop its signatures (the content they covered is gone). [`Repository::publish`] signs
//! what it has keys for, checks every threshold, writes the new versions, then snapshot and
//! timestamp. So "what changed" is exactly "what is staged", and versions only go up.

use crate::config::{Config, RoleConfig};
use crate::error::{io_at, Error, Result};
use crate::layout::Layout;
use chrono::{DateTime, Utc};
use ferry_core::metadata::{Expires, Role, RoleType, Root, Signed, Snapshot, Targets, Timestamp};
use ferry_core::Authority;
use ferry_keys::Signer;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// One targets role as the editor holds it.
#[derive(Debug)]
pub(crate) struct RoleDoc {
    pub doc: Signed<Targets>,
    pub staged: bool,
}

#[derive(Debug)]
pub struct Repository {
    pub(crate) layout: Layout,
    pub(crate) config: Config,
    pub(crate) now: DateTime<Utc>,
    /// Current root: the staged one if any, else the published one.
    pub(crate) root: Signed<Root>,
    pub(crate) root_staged: bool,
    /// The last published root (None before the first publish).
    pub(crate) published_root: Option<Signed<Root>>,
    pub(crate) timestamp: Option<Signed<Timestamp>>,
    pub(crate) snapshot: Option<Signed<Snapshot>>,
    /// Targets roles loaded so far (lazily: a catalogue of 1,024 bins loads the bins it edits).
    pub(crate) roles: BTreeMap<String, RoleDoc>,
}

/// What a publish wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishReport {
    /// Roles written, with their new versions (root and targets roles).
    pub roles: Vec<(String, u64)>,
    pub snapshot: Option<u64>,
    pub timestamp: Option<u64>,
}

pub(crate) fn expires_after(now: DateTime<Utc>, lifetime: std::time::Duration) -> Expires {
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(365));
    Expires::after(now, lifetime)
}

impl Repository {
    /// Open the repository in `dir`. `now` is the time every new expiry is counted from.
    pub fn open(dir: &Path, now: DateTime<Utc>) -> Result<Repository> {
        let config = Config::load(dir)?;
        let layout = Layout::new(dir);
        // An offline-first repository has nothing published until its first ceremonies end.
        let first_published = layout.metadata().join("root.json").exists();
        let published_root = first_published
            .then(|| layout.published_root())
            .transpose()?;
        let timestamp = first_published
            .then(|| layout.published_timestamp())
            .transpose()?;
        let snapshot = match &timestamp {
            Some(ts) => Some(layout.published_snapshot(ts.signed.snapshot_meta()?.version)?),
            None => None,
        };
        let (root, root_staged) = match layout.staged::<Root>("root")? {
            Some(staged) => (staged, true),
            None => (
                published_root
                    .clone()
                    .ok_or_else(|| Error::Invalid("no root".into()))?,
                false,
            ),
        };
        Ok(Repository {
            layout,
            config,
            now,
            root,
            root_staged,
            published_root,
            timestamp,
            snapshot,
            roles: BTreeMap::new(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.layout.dir
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn root(&self) -> &Root {
        &self.root.signed
    }

    /// The version of `role` in the published snapshot.
    pub fn published_version(&self, role: &str) -> Option<u64> {
        self.snapshot
            .as_ref()?
            .signed
            .role_meta(role)
            .map(|m| m.version)
    }

    /// The current (staged or published) metadata of targets role `role`.
    pub fn targets_role(&mut self, role: &str) -> Result<&Targets> {
        self.load_role(role)?;
        Ok(&self.roles[role].doc.signed)
    }

    pub(crate) fn load_role(&mut self, role: &str) -> Result<()> {
        if self.roles.contains_key(role) {
            return Ok(());
        }
        let entry = match self.layout.staged::<Targets>(role)? {
            Some(doc) => RoleDoc { doc, staged: true },
            None => {
                let version = self
                    .published_version(role)
                    .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
                RoleDoc {
                    doc: self.layout.published_targets(role, version)?,
                    staged: false,
                }
            }
        };
        self.roles.insert(role.to_owned(), entry);
        Ok(())
    }

    /// Change targets role `role` (creating it if `create` and it does not exist yet). The
    /// version is bumped once per publish cycle and the expiry restarted; signatures are dropped.
    pub(crate) fn edit_targets(
        &mut self,
        role: &str,
        f: impl FnOnce(&mut Targets) -> Result<()>,
    ) -> Result<()> {
        self.load_role(role)?;
        let lifetime = self.lifetime_of(role);
        let published = self.published_version(role).unwrap_or(0);
        let now = self.now;
        let entry = self
            .roles
            .get_mut(role)
            .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
        if !entry.staged {
            entry.doc.signed.version = published + 1;
            entry.staged = true;
        }
        entry.doc.signed.expires = expires_after(now, lifetime);
        entry.doc.signatures.clear();
        f(&mut entry.doc.signed)?;
        self.layout.write_staged(role, &entry.doc)
    }

    /// Stage a brand-new targets role (a new delegation or bin).
    pub(crate) fn create_targets(&mut self, role: &str) -> Result<()> {
        let doc = Signed::new(Targets {
            type_: "targets".into(),
            delegations: None,
            expires: expires_after(self.now, self.lifetime_of(role)),
            spec_version: ferry_core::metadata::SPEC_VERSION.into(),
            targets: BTreeMap::new(),
            version: self.published_version(role).unwrap_or(0) + 1,
            extra: BTreeMap::new(),
        });
        self.layout.write_staged(role, &doc)?;
        self.roles
            .insert(role.to_owned(), RoleDoc { doc, staged: true });
        Ok(())
    }

    /// Change the root. Its version goes up by one per publish cycle.
    pub(crate) fn edit_root(&mut self, f: impl FnOnce(&mut Root) -> Result<()>) -> Result<()> {
        if !self.root_staged {
            self.root.signed.version =
                self.published_root.as_ref().map_or(0, |r| r.signed.version) + 1;
            self.root_staged = true;
        }
        self.root.signed.expires = expires_after(self.now, self.config.root.expires);
        self.root.signatures.clear();
        f(&mut self.root.signed)?;
        self.layout.write_staged("root", &self.root)
    }

    /// Is `role` a TAP 15 bin of top-level targets?
    pub(crate) fn is_bin(&mut self, role: &str) -> Result<bool> {
        let targets = self.targets_role("targets")?;
        Ok(targets
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.as_ref())
            .is_some_and(|b| b.is_bin(role)))
    }

    fn lifetime_of(&self, role: &str) -> std::time::Duration {
        let is_bin_name = self
            .roles
            .get("targets")
            .and_then(|t| t.doc.signed.delegations.as_ref())
            .and_then(|d| d.succinct_roles.as_ref())
            .is_some_and(|b| b.is_bin(role));
        match (role, &self.config.bins) {
            ("targets", _) => self.config.targets.expires,
            (_, Some(bins)) if is_bin_name => bins.expires,
            _ => self.config.targets.expires,
        }
    }

    /// The keys this host holds for `role`, per the config (none for a supplier's role).
    pub(crate) fn keys_for(&mut self, role: &str) -> Result<Vec<Arc<dyn Signer>>> {
        let config: Option<RoleConfig> = match role {
            "root" | "targets" | "snapshot" | "timestamp" => self.config.role(role).cloned(),
            _ if self.is_bin(role)? => self.config.bins.clone(),
            _ => None,
        };
        match config {
            Some(c) => c.load_keys(self.dir()),
            None => Ok(Vec::new()),
        }
    }

    /// Who may sign targets role `role`, per its delegator's current metadata.
    pub(crate) fn authority_parts(
        &mut self,
        role: &str,
    ) -> Result<(
        Vec<ferry_keys::KeyId>,
        u32,
        BTreeMap<ferry_keys::KeyId, ferry_keys::PublicKey>,
    )> {
        if role == "targets" {
            let a = self.root.signed.authority(RoleType::Targets)?;
            return Ok((a.keyids().to_vec(), a.threshold(), a.keys().clone()));
        }
        let targets = self.targets_role("targets")?;
        let a = targets
            .delegations
            .as_ref()
            .and_then(|d| d.authority(role))
            .ok_or_else(|| Error::NoSuchRole(role.to_owned()))??;
        Ok((a.keyids().to_vec(), a.threshold(), a.keys().clone()))
    }

    /// Publish every staged role, then snapshot and timestamp. With nothing staged nothing is
    /// written, unless `force` asks for a new snapshot (and so timestamp) or a new timestamp.
    pub fn publish(&mut self) -> Result<PublishReport> {
        self.publish_with(Force::default())
    }

    pub(crate) fn publish_with(&mut self, force: Force) -> Result<PublishReport> {
        // Phase 1: sign and check every staged role. Nothing is written to metadata/ until all
        // of them pass, so a refused publish leaves the served repository untouched (and no
        // stray N.ROLE.json that a later publish would reuse with other content).
        let root = if self.root_staged {
            Some(self.prepare_root()?)
        } else {
            None
        };
        let staged: Vec<String> = self
            .layout
            .staged_roles()?
            .into_iter()
            .filter(|r| r != "root")
            .collect();
        let mut prepared = Vec::with_capacity(staged.len());
        for role in &staged {
            prepared.push(self.prepare_targets_role(role)?);
        }
        // Snapshot and timestamp are signed after the roles are written: check now that this
        // host holds their keys under the root being published, or nothing is written.
        for role in ["snapshot", "timestamp"] {
            if !self.can_sign(role)? {
                let entry = &self.root.signed.roles[role];
                return Err(Error::Invalid(format!(
                    "online key check failed: root v{} needs {} {role} key(s) from {:?}, and ferry-repo.toml lists none of them that this host can use; nothing was published",
                    self.root.signed.version,
                    entry.threshold,
                    entry.keyids.iter().map(|k| k.as_str()).collect::<Vec<_>>()
                )));
            }
        }

        // Phase 2: write roles, then root, then snapshot and timestamp that point at them.
        let mut report = PublishReport::default();
        let md = self.layout.metadata();
        std::fs::create_dir_all(&md).map_err(io_at(&md))?;
        let mut snapshot_meta = self
            .snapshot
            .as_ref()
            .map(|s| s.signed.meta.clone())
            .unwrap_or_default();
        for (role, version, bytes) in &prepared {
            crate::layout::write_atomic(&self.layout.versioned(role, *version), bytes)?;
            snapshot_meta.insert(
                format!("{role}.json"),
                ferry_core::metadata::MetaFile::new(*version),
            );
            if let Some(entry) = self.roles.get_mut(role) {
                entry.staged = false;
            }
        }
        if let Some((version, bytes)) = root {
            crate::layout::write_atomic(&self.layout.versioned("root", version), &bytes)?;
            crate::layout::write_atomic(&md.join("root.json"), &bytes)?;
            self.layout.unstage("root")?;
            self.published_root = Some(self.root.clone());
            self.root_staged = false;
            report.roles.push(("root".into(), version));
        }
        report.roles.extend(
            prepared
                .iter()
                .map(|(role, version, _)| (role.clone(), *version)),
        );
        let new_snapshot = !staged.is_empty() || force.snapshot || self.snapshot.is_none();
        if new_snapshot {
            report.snapshot = Some(self.publish_snapshot(snapshot_meta)?);
        }
        if new_snapshot || !report.roles.is_empty() || force.timestamp || self.timestamp.is_none() {
            report.timestamp = Some(self.publish_timestamp()?);
        }
        for role in &staged {
            self.layout.unstage(role)?;
        }
        Ok(report)
    }

    /// Sign the staged root with this host's root keys and check both thresholds.
    fn prepare_root(&mut self) -> Result<(u64, Vec<u8>)> {
        for key in self.config.root.load_keys(self.dir())? {
            if self.root.signed.roles["root"].keyids.contains(key.key_id()) {
                self.root.sign(key.as_ref())?;
            }
        }
        let published_version = self.published_root.as_ref().map_or(0, |r| r.signed.version);
        if self.root.signed.version <= published_version {
            return Err(Error::VersionNotIncreasing {
                role: "root".into(),
                published: published_version,
                new: self.root.signed.version,
            });
        }
        let bytes = self.root.to_bytes()?;
        let parsed = ferry_core::metadata::Parsed::<Root>::from_bytes(&bytes)?;
        let old_authority = self
            .published_root
            .as_ref()
            .map(|r| r.signed.authority(RoleType::Root))
            .transpose()?;
        let checked =
            ferry_core::verify::verify_self_signed(parsed, old_authority.as_slice(), |r: &Root| {
                r.authority(RoleType::Root)
            });
        if let Err(ferry_core::Error::Threshold {
            role,
            valid,
            threshold,
        }) = checked
        {
            return Err(Error::NotSigned {
                role,
                valid,
                threshold,
            });
        }
        checked?;
        Ok((self.root.signed.version, bytes))
    }

    /// Sign a staged targets role with the keys this host has for it and check it.
    fn prepare_targets_role(&mut self, role: &str) -> Result<(String, u64, Vec<u8>)> {
        self.load_role(role)?;
        crate::delegation::check_paths(self, role)?;
        let (keyids, threshold, keys) = self.authority_parts(role)?;
        let own_keys = self.keys_for(role)?;
        let published = self.published_version(role).unwrap_or(0);
        let entry = self
            .roles
            .get_mut(role)
            .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
        if entry.doc.signed.version <= published {
            return Err(Error::VersionNotIncreasing {
                role: role.to_owned(),
                published,
                new: entry.doc.signed.version,
            });
        }
        let signers: Vec<&dyn Signer> = own_keys
            .iter()
            .filter(|k| keyids.contains(k.key_id()))
            .map(|k| k.as_ref())
            .collect();
        entry.doc.sign_all(&signers)?;
        let authority = Authority::new(role.to_owned(), &keyids, threshold, &keys)?;
        let msg = entry.doc.canonical_signed()?;
        match ferry_core::verify::check_threshold(&authority, &msg, &entry.doc.signatures) {
            Err(ferry_core::Error::Threshold {
                valid, threshold, ..
            }) if role == "targets" => {
                return Err(Error::NeedsCeremony {
                    role: role.to_owned(),
                    valid,
                    threshold,
                })
            }
            Err(ferry_core::Error::Threshold {
                valid, threshold, ..
            }) => {
                return Err(Error::NotSigned {
                    role: role.to_owned(),
                    valid,
                    threshold,
                })
            }
            other => other?,
        }
        Ok((
            role.to_owned(),
            entry.doc.signed.version,
            entry.doc.to_bytes()?,
        ))
    }

    fn publish_snapshot(
        &mut self,
        meta: BTreeMap<String, ferry_core::metadata::MetaFile>,
    ) -> Result<u64> {
        let version = self.snapshot.as_ref().map_or(0, |s| s.signed.version) + 1;
        let mut doc = Signed::new(Snapshot {
            type_: "snapshot".into(),
            expires: expires_after(self.now, self.config.snapshot.expires),
            meta,
            spec_version: ferry_core::metadata::SPEC_VERSION.into(),
            version,
            extra: BTreeMap::new(),
        });
        sign_online(
            &mut doc,
            &self.config.snapshot,
            self.dir(),
            &self.root.signed,
            RoleType::Snapshot,
        )?;
        crate::layout::write_atomic(
            &self.layout.versioned("snapshot", version),
            &doc.to_bytes()?,
        )?;
        self.snapshot = Some(doc);
        Ok(version)
    }

    fn publish_timestamp(&mut self) -> Result<u64> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| Error::Invalid("timestamp before snapshot".into()))?;
        let bytes = std::fs::read(self.layout.versioned("snapshot", snapshot.signed.version))
            .map_err(io_at(
                self.layout.versioned("snapshot", snapshot.signed.version),
            ))?;
        let mut meta = ferry_core::metadata::MetaFile::new(snapshot.signed.version);
        meta.length = Some(bytes.len() as u64);
        let mut hashes = ferry_core::metadata::Hashes::new();
        hashes.insert(
            "sha256".into(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        );
        meta.hashes = Some(hashes);
        let version = self.timestamp.as_ref().map_or(0, |t| t.signed.version) + 1;
        let mut doc = Signed::new(Timestamp {
            type_: "timestamp".into(),
            expires: expires_after(self.now, self.config.timestamp.expires),
            meta: [("snapshot.json".to_string(), meta)].into(),
            spec_version: ferry_core::metadata::SPEC_VERSION.into(),
            version,
            extra: BTreeMap::new(),
        });
        sign_online(
            &mut doc,
            &self.config.timestamp,
            self.dir(),
            &self.root.signed,
            RoleType::Timestamp,
        )?;
        crate::layout::write_atomic(
            &self.layout.metadata().join("timestamp.json"),
            &doc.to_bytes()?,
        )?;
        self.timestamp = Some(doc);
        Ok(version)
    }
}

/// What to re-sign even with nothing staged (the refresh command's job).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Force {
    pub snapshot: bool,
    pub timestamp: bool,
}

/// Sign an online role (snapshot, timestamp) with its configured keys and check the threshold.
fn sign_online<T: Role>(
    doc: &mut Signed<T>,
    config: &RoleConfig,
    dir: &Path,
    root: &Root,
    role: RoleType,
) -> Result<()> {
    let authority = root.authority(role)?;
    let keys = config.load_keys(dir)?;
    let signers: Vec<&dyn Signer> = keys
        .iter()
        .filter(|k| authority.keyids().contains(k.key_id()))
        .map(|k| k.as_ref())
        .collect();
    doc.sign_all(&signers)?;
    let msg = doc.canonical_signed()?;
    match ferry_core::verify::check_threshold(&authority, &msg, &doc.signatures) {
        Err(ferry_core::Error::Threshold {
            valid, threshold, ..
        }) => Err(Error::NotSigned {
            role: role.name().into(),
            valid,
            threshold,
        }),
        other => Ok(other?),
    }
}
