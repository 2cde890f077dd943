//! The TUF workflow's view of one repository's metadata on a stick: the bundle plays the
//! repository (`N.root.json` for roots, `ROLE.json` for every other role, whatever version the
//! workflow asks for), and the Primary's [`MetadataStore`] keeps what it trusts, as in an
//! online cycle. Every file fetched is remembered exactly as read, so what the ECUs are sent
//! is what the Primary verified, even if the stick changes meanwhile.

use crate::error::{Error, Result};
use crate::offline::stick::Stick;
use crate::store::MetadataStore;
use crate::updater::versioned_root;
use ferry_core::refresh::{MetadataFile, MetadataSource};
use std::collections::BTreeMap;

pub(crate) struct StickSource<'a> {
    stick: &'a Stick,
    /// The repository's directory in the bundle, e.g. `.well-known/metadata/director`.
    dir: &'static str,
    store: &'a MetadataStore,
    /// Every file read from the stick, by file name.
    pub(crate) fetched: BTreeMap<String, Vec<u8>>,
    /// Targets roles the workflow used (kept or fetched), in order.
    pub(crate) used_roles: Vec<String>,
}

impl<'a> StickSource<'a> {
    pub(crate) fn new(stick: &'a Stick, dir: &'static str, store: &'a MetadataStore) -> Self {
        StickSource {
            stick,
            dir,
            store,
            fetched: BTreeMap::new(),
            used_roles: Vec::new(),
        }
    }

    fn used(&mut self, role: &str) {
        if !matches!(role, "root" | "timestamp" | "snapshot")
            && !self.used_roles.iter().any(|r| r == role)
        {
            self.used_roles.push(role.to_owned());
        }
    }

    /// The file name a role has in the bundle.
    pub(crate) fn file_name(file: MetadataFile<'_>) -> String {
        if file.role == "root" {
            file.file_name()
        } else {
            ferry_core::layout::metadata_file_name(file.role, None)
        }
    }
}

impl MetadataSource for StickSource<'_> {
    type Error = Error;

    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>> {
        let name = Self::file_name(file);
        let bytes = self.stick.read(&format!("{}/{name}", self.dir), max_len)?;
        self.used(file.role);
        self.fetched.insert(name, bytes.clone());
        Ok(bytes)
    }

    fn is_not_found(error: &Error) -> bool {
        matches!(error, Error::BundleMissing { .. })
    }

    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>> {
        let kept = self.store.load(role)?;
        if kept.is_some() {
            self.used(role);
        }
        Ok(kept)
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<()> {
        if role == "root" {
            // The whole chain is kept, as an online cycle keeps it: a Secondary whose root is
            // older is sent the roots it lacks.
            if let Some(version) = root_version(bytes) {
                self.store.persist(&versioned_root(version), bytes)?;
            }
        }
        self.used(role);
        self.store.persist(role, bytes)
    }

    fn remove(&mut self, role: &str) -> Result<()> {
        self.store.remove(role)
    }
}

pub(crate) fn root_version(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("signed")?.get("version")?.as_u64()
}
