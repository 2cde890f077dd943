//! The TUF workflow's view of a bundle: the bundle plays the repository, state.db the kept
//! bytes.

use crate::error::{Error, Result};
use crate::state::{MetadataChanges, Repo, State};
use crate::verify::RepoBundle;
use ferry_core::refresh::{MetadataFile, MetadataSource};
use std::collections::BTreeMap;

/// One repository's side of the TUF workflow: the bundle plays the repository, `state` the
/// kept bytes, and every write lands in `changes` until the caller commits.
pub(super) struct BundleSource<'a> {
    repo: Repo,
    bundle: &'a RepoBundle,
    roots: BTreeMap<u64, &'a str>,
    state: &'a State,
    changes: &'a mut MetadataChanges,
}

impl<'a> BundleSource<'a> {
    pub(super) fn new(
        repo: Repo,
        bundle: &'a RepoBundle,
        state: &'a State,
        changes: &'a mut MetadataChanges,
    ) -> Result<Self> {
        let mut roots = BTreeMap::new();
        for text in &bundle.root {
            // Unverified: only to find the file the walk asks for; the trusted set checks it.
            let version = root_version(text.as_bytes()).ok_or_else(|| {
                Error::Bundle(format!("{} root has no signed.version", repo.as_str()))
            })?;
            if roots.insert(version, text.as_str()).is_some() {
                return Err(Error::Bundle(format!(
                    "{} root version {version} is listed twice",
                    repo.as_str()
                )));
            }
        }
        Ok(BundleSource {
            repo,
            bundle,
            roots,
            state,
            changes,
        })
    }
}

pub(super) fn root_version(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("signed")?.get("version")?.as_u64()
}

impl MetadataSource for BundleSource<'_> {
    type Error = Error;

    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>> {
        let repo = self.repo.as_str();
        let missing = || Error::NotInBundle {
            repo,
            role: file.file_name(),
        };
        let text = match file.role {
            "root" => file
                .version
                .and_then(|v| self.roots.get(&v).copied())
                .ok_or_else(missing)?,
            "timestamp" => self.bundle.timestamp.as_deref().ok_or_else(missing)?,
            "snapshot" => self.bundle.snapshot.as_deref().ok_or_else(missing)?,
            "targets" => self.bundle.targets.as_str(),
            role => self
                .bundle
                .delegations
                .get(role)
                .map(String::as_str)
                .ok_or_else(missing)?,
        };
        if text.len() as u64 > max_len {
            return Err(Error::MetadataTooLong {
                repo,
                role: file.role.to_owned(),
                limit: max_len,
            });
        }
        Ok(text.as_bytes().to_vec())
    }

    fn is_not_found(error: &Error) -> bool {
        matches!(error, Error::NotInBundle { .. })
    }

    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>> {
        if let Some(bytes) = self.changes.put.get(role) {
            return Ok(Some(bytes.clone()));
        }
        if self.changes.removed.iter().any(|r| r == role) {
            return Ok(None);
        }
        self.state.metadata(self.repo, role)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<()> {
        if role == "root" {
            let version = root_version(bytes).ok_or_else(|| {
                Error::Bundle(format!("{} root has no signed.version", self.repo.as_str()))
            })?;
            self.changes.roots.push((version, bytes.to_vec()));
            return Ok(());
        }
        self.changes.removed.retain(|r| r != role);
        self.changes.put.insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn remove(&mut self, role: &str) -> Result<()> {
        self.changes.put.remove(role);
        self.changes.removed.push(role.to_owned());
        Ok(())
    }
}
