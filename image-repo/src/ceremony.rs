//! Offline roles of the Image repository (root, top-level targets) change through a key
//! ceremony: a [`Proposal`] made here, signed by the holders elsewhere, merged, then imported
//! here and published with everything that depends on it.

use crate::error::{io_at, Error, Result};
use crate::repo::{Force, PublishReport, Repository};
use ferry_core::metadata::{Parsed, RoleType, Root, Signed, Targets};
use ferry_core::proposal::{Proposal, RepositoryKind, RootChanges};
use std::path::{Path, PathBuf};

/// What an import did: published, or staged waiting for another ceremony.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub role: String,
    pub version: u64,
    /// Empty when the import is staged only.
    pub published: PublishReport,
    /// Why nothing was published yet, and which ceremony comes next.
    pub waiting_for: Option<String>,
}

impl Repository {
    /// The next root: the published root with `changes`, to be signed by the current root's
    /// threshold and the new root's.
    pub fn root_proposal(&self, changes: &RootChanges) -> Result<Proposal> {
        let previous = self.published_root_bytes()?.ok_or_else(|| {
            Error::Invalid(
                "no root is published yet: sign the first root with the proposal `ferry repo init` wrote, then `ferry repo root import`".into(),
            )
        })?;
        if self.root_staged {
            return Err(Error::Invalid(format!(
                "root v{} is staged and unpublished (staging/root.json); import or remove it before proposing another root",
                self.root.signed.version
            )));
        }
        let mut changes = changes.clone();
        if changes.expires.is_none() {
            changes.expires = Some(crate::repo::expires_after(
                self.now,
                self.config.root.expires,
            ));
        }
        let next = changes.apply(&self.root.signed)?;
        Ok(Proposal::root(
            RepositoryKind::ImageRepo,
            &next,
            Some(&previous),
        )?)
    }

    /// The staged top-level targets, to be signed by the targets keys of the current root (the
    /// staged one when a root import waits for this ceremony).
    pub fn targets_proposal(&mut self) -> Result<Proposal> {
        if !self.layout.staged_roles()?.iter().any(|r| r == "targets") {
            // Nothing changed: the proposal re-signs the same targets with a fresh expiry.
            self.edit_targets("targets", |_| Ok(()))?;
        }
        if self.root_staged {
            let bytes = self.root.to_bytes()?;
            let parsed = Parsed::<Root>::from_bytes(&bytes)?;
            ferry_core::verify::verify_self_signed(parsed, &[], |r: &Root| {
                r.authority(RoleType::Root)
            })
            .map_err(|e| {
                Error::Invalid(format!(
                    "root v{} is staged but not signed by its root keys ({e}); finish the root ceremony (`ferry repo root import`) first",
                    self.root.signed.version
                ))
            })?;
        }
        self.load_role("targets")?;
        let staged = self.roles["targets"].doc.signed.clone();
        let previous = match self.published_version("targets") {
            Some(v) => {
                let path = self.layout.versioned("targets", v);
                Some(std::fs::read(&path).map_err(io_at(&path))?)
            }
            None => None,
        };
        let root = self.root.to_bytes()?;
        Ok(Proposal::targets(
            RepositoryKind::ImageRepo,
            &staged,
            previous.as_deref(),
            &root,
        )?)
    }

    /// Install a root signed through a ceremony: it must extend the published chain (or be a
    /// self-signed version 1 for a new offline-first repository). `online_keys` replaces the
    /// key files of online roles whose keys the new root changes. Published at once with a new
    /// timestamp, unless top-level targets must first be re-signed by new offline keys.
    pub fn import_root(
        &mut self,
        bytes: &[u8],
        online_keys: &[(String, Vec<PathBuf>)],
    ) -> Result<ImportReport> {
        let parsed = Parsed::<Root>::from_bytes(bytes)?;
        let published = self.published_root.clone();
        let old = published
            .as_ref()
            .map(|r| r.signed.authority(RoleType::Root))
            .transpose()?;
        let verified =
            ferry_core::verify::verify_self_signed(parsed, old.as_slice(), |r: &Root| {
                r.authority(RoleType::Root)
            })?;
        let expected = published.as_ref().map_or(1, |r| r.signed.version + 1);
        if verified.version != expected {
            return Err(Error::Invalid(format!(
                "root version check failed: the imported root is version {}, expected {expected}",
                verified.version
            )));
        }
        let new_root = verified.into_inner();
        let before = Undo::take(self)?;
        for (role, keys) in online_keys {
            if !matches!(role.as_str(), "targets" | "snapshot" | "timestamp") {
                return Err(Error::Invalid(format!(
                    "--key {role}=...: only online roles (targets, snapshot, timestamp) take key files here"
                )));
            }
            let config = self
                .config
                .role_mut(role)
                .ok_or_else(|| Error::NoSuchRole(role.clone()))?;
            config.keys = keys
                .iter()
                .map(|p| std::path::absolute(p).map_err(io_at(p)))
                .collect::<Result<_>>()?;
            config.passphrase_file = None;
            config.threshold = new_root.roles.get(role).map_or(1, |r| r.threshold);
        }
        let targets_keys_changed = published
            .as_ref()
            .is_some_and(|p| p.signed.roles.get("targets") != new_root.roles.get("targets"));
        // The imported signatures are kept as they are: the root is published byte for byte.
        let signed: Signed<Root> = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("imported root: {e}")))?;
        match self.stage_and_publish_root(signed, targets_keys_changed) {
            Ok(report) => Ok(report),
            Err(e) => {
                // Fail closed: the config and staging area are as they were.
                before.restore(self)?;
                Err(e)
            }
        }
    }

    fn stage_and_publish_root(
        &mut self,
        signed: Signed<Root>,
        targets_keys_changed: bool,
    ) -> Result<ImportReport> {
        let version = signed.signed.version;
        self.root = signed;
        self.root_staged = true;
        self.layout.write_staged("root", &self.root)?;
        self.config.save(self.dir())?;
        if targets_keys_changed || self.published_version("targets").is_none() {
            // Top-level targets must verify under the new root: re-sign it (online targets) or
            // wait for its ceremony (offline).
            if !self.layout.staged_roles()?.iter().any(|r| r == "targets") {
                self.edit_targets("targets", |_| Ok(()))?;
            }
            if !self.can_sign("targets")? {
                return Ok(ImportReport {
                    role: "root".into(),
                    version,
                    published: PublishReport::default(),
                    waiting_for: Some(format!(
                        "root v{version} is staged; top-level targets must be signed by the targets keys of this root: run `ferry repo targets propose {} --out targets-proposal.json`, collect signatures, merge, then `ferry repo targets import`; both are published together",
                        self.dir().display()
                    )),
                });
            }
        }
        let published = self.publish_with(Force {
            snapshot: true,
            timestamp: true,
        })?;
        Ok(ImportReport {
            role: "root".into(),
            version,
            published,
            waiting_for: None,
        })
    }

    /// Install top-level targets signed through a ceremony and publish (with a staged root
    /// waiting for it, if any), then snapshot and timestamp.
    pub fn import_targets(&mut self, bytes: &[u8]) -> Result<ImportReport> {
        let parsed = Parsed::<Targets>::from_bytes(bytes)?;
        let authority = self.root.signed.authority(RoleType::Targets)?;
        let verified = ferry_core::verify::verify(parsed, &[authority])?;
        let expected = self.published_version("targets").map_or(1, |v| v + 1);
        if verified.version != expected {
            return Err(Error::Invalid(format!(
                "targets version check failed: the imported targets is version {}, expected {expected}",
                verified.version
            )));
        }
        let signed: Signed<Targets> = serde_json::from_slice(bytes)
            .map_err(|e| Error::Invalid(format!("imported targets: {e}")))?;
        if self.layout.staged_roles()?.iter().any(|r| r == "targets") {
            self.load_role("targets")?;
            if self.roles["targets"].doc.signed != signed.signed {
                return Err(Error::Invalid(
                    "targets check failed: staging/targets.json changed after the proposal was made (a target added or removed since?); propose again so the holders sign what will be published".into(),
                ));
            }
        }
        let version = signed.signed.version;
        let before = Undo::take(self)?;
        self.layout.write_staged("targets", &signed)?;
        self.roles.insert(
            "targets".into(),
            crate::repo::RoleDoc {
                doc: signed,
                staged: true,
            },
        );
        let published = match self.publish() {
            Ok(p) => p,
            Err(e) => {
                before.restore(self)?;
                return Err(e);
            }
        };
        Ok(ImportReport {
            role: "targets".into(),
            version,
            published,
            waiting_for: None,
        })
    }

    /// Does this host hold enough keys for `role` to sign it (an online role), per the root?
    pub fn can_sign(&mut self, role: &str) -> Result<bool> {
        let keys = self.keys_for(role)?;
        let (keyids, threshold) = match role {
            "root" | "snapshot" | "timestamp" => {
                let entry = self
                    .root
                    .signed
                    .roles
                    .get(role)
                    .ok_or_else(|| Error::NoSuchRole(role.to_owned()))?;
                (entry.keyids.clone(), entry.threshold)
            }
            _ => {
                let (keyids, threshold, _) = self.authority_parts(role)?;
                (keyids, threshold)
            }
        };
        let have = keys.iter().filter(|k| keyids.contains(k.key_id())).count();
        Ok(have >= threshold as usize)
    }

    fn published_root_bytes(&self) -> Result<Option<Vec<u8>>> {
        read_if_exists(&self.layout.metadata().join("root.json"))
    }
}

/// The editor's state before an import, put back if the import fails.
struct Undo {
    config: crate::config::Config,
    root: Signed<Root>,
    root_staged: bool,
    staged: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Undo {
    fn take(repo: &Repository) -> Result<Undo> {
        let staged = ["root", "targets"]
            .into_iter()
            .map(|role| {
                let path = repo.layout.staged_path(role);
                Ok((path.clone(), read_if_exists(&path)?))
            })
            .collect::<Result<_>>()?;
        Ok(Undo {
            config: repo.config.clone(),
            root: repo.root.clone(),
            root_staged: repo.root_staged,
            staged,
        })
    }

    fn restore(self, repo: &mut Repository) -> Result<()> {
        repo.config = self.config;
        repo.config.save(repo.dir())?;
        repo.root = self.root;
        repo.root_staged = self.root_staged;
        for (path, bytes) in self.staged {
            match bytes {
                Some(b) => crate::layout::write_atomic(&path, &b)?,
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io_at(path)(e))
                    }
                    _ => {}
                },
            }
        }
        repo.roles.remove("targets");
        Ok(())
    }
}

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}
