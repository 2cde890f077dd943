//! A single-repository TUF updater: ferry-core's client workflow ([`Workflow`]) fed by a
//! [`Fetcher`] and a [`MetadataStore`]. Local metadata is tried first and network copies
//! replace it only when they verify; everything persisted is exactly the bytes received.

use crate::error::{io_at, Error, Result};
use crate::fetch::Fetcher;
use crate::progress::Progress;
use crate::store::{quote, quote_path, write_atomic, MetadataStore};
use chrono::{DateTime, Utc};
use ferry_core::metadata::HashCheck;
use ferry_core::refresh::{MetadataFile, MetadataSource, Workflow};
use ferry_core::uptane::{verify_director, EcuAssignment, Vehicle};
use ferry_core::{FoundTarget, TargetName, TrustedSet};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub use ferry_core::refresh::Limits;

#[derive(Debug)]
pub struct Updater<F: Fetcher> {
    fetcher: F,
    store: MetadataStore,
    metadata_url: String,
    limits: Limits,
    now: DateTime<Utc>,
    set: Option<TrustedSet>,
    /// Targets roles the workflow used (kept or fetched), in order: what a Secondary
    /// verifying the same target needs from this repository.
    used_roles: Vec<String>,
    /// Keep every accepted root as `N.root` too (a Primary sends the chain to Secondaries);
    /// off for a plain TUF client, whose metadata directory holds only the spec's files.
    keep_root_chain: bool,
}

/// `base` with exactly one trailing slash.
fn base_url(base: &str) -> String {
    format!("{}/", base.trim_end_matches('/'))
}

/// The workflow's view of one repository: HTTP through the fetcher, kept bytes on disk.
struct Source<'a, F: Fetcher> {
    fetcher: &'a F,
    store: &'a MetadataStore,
    metadata_url: &'a str,
    used_roles: &'a mut Vec<String>,
    keep_root_chain: bool,
}

impl<F: Fetcher> Source<'_, F> {
    fn used(&mut self, role: &str) {
        if !matches!(role, "root" | "timestamp" | "snapshot")
            && !self.used_roles.iter().any(|r| r == role)
        {
            self.used_roles.push(role.to_owned());
        }
    }
}

/// The store's name for root version `version`: every accepted root is kept, so a Secondary
/// whose root is older can be sent the whole chain.
pub fn versioned_root(version: u64) -> String {
    format!("{version}.root")
}

fn root_version(bytes: &[u8]) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("signed")?.get("version")?.as_u64()
}

impl<F: Fetcher> MetadataSource for Source<'_, F> {
    type Error = Error;

    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>> {
        let url = format!("{}{}", self.metadata_url, file.file_name());
        self.fetcher.fetch_bytes(&url, max_len)
    }

    fn is_not_found(error: &Error) -> bool {
        matches!(
            error,
            Error::HttpStatus {
                status: 403 | 404,
                ..
            }
        )
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
            tracing::info!("root rotated");
            if let Some(version) = root_version(bytes).filter(|_| self.keep_root_chain) {
                self.store.persist(&versioned_root(version), bytes)?;
            }
        }
        self.used(role);
        self.store.persist(role, bytes)
    }

    fn remove(&mut self, role: &str) -> Result<()> {
        tracing::info!(
            role,
            "discarding trusted metadata (timestamp or snapshot keys rotated)"
        );
        self.store.remove(role)
    }
}

/// The workflow's view of `updater`'s repository. A macro, not a method: it borrows the
/// updater's fields one by one, so the limits and the clock stay readable beside it.
macro_rules! source {
    ($updater:ident) => {
        Source {
            fetcher: &$updater.fetcher,
            store: &$updater.store,
            metadata_url: &$updater.metadata_url,
            used_roles: &mut $updater.used_roles,
            keep_root_chain: $updater.keep_root_chain,
        }
    };
}

impl<F: Fetcher> Updater<F> {
    pub fn new(fetcher: F, store: MetadataStore, metadata_url: &str, now: DateTime<Utc>) -> Self {
        Updater {
            fetcher,
            store,
            metadata_url: base_url(metadata_url),
            limits: Limits::default(),
            now,
            set: None,
            used_roles: Vec::new(),
            keep_root_chain: false,
        }
    }

    /// Also keep every accepted root as `N.root` ([`versioned_root`]).
    pub fn keeping_root_chain(mut self) -> Self {
        self.keep_root_chain = true;
        self
    }

    /// The metadata store of this repository.
    pub fn store(&self) -> &MetadataStore {
        &self.store
    }

    /// Targets roles used so far (top-level targets and the delegations resolved on demand).
    pub fn used_roles(&self) -> &[String] {
        &self.used_roles
    }

    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The trusted set after a successful [`Updater::refresh`].
    pub fn trusted(&self) -> Option<&TrustedSet> {
        self.set.as_ref()
    }

    /// Run the client workflow for the top-level roles: root chain, timestamp, snapshot, targets.
    pub fn refresh(&mut self) -> Result<()> {
        self.refresh_with(|source, root, limits, now| {
            Workflow::new(source, limits).refresh(root, now)
        })
    }

    /// The Director's refresh (`ferry_core::uptane::verify_director`): root chain, timestamp,
    /// snapshot and targets verified as one set, bound to `vehicle`; nothing is kept unless
    /// all of it passed.
    pub fn refresh_director(
        &mut self,
        vehicle: Vehicle<'_>,
    ) -> Result<BTreeMap<String, EcuAssignment>> {
        let mut assignments = BTreeMap::new();
        self.refresh_with(|source, root, limits, now| {
            let (set, found) = verify_director(source, root, vehicle, limits, now)?.into_parts();
            assignments = found;
            Ok(set)
        })?;
        Ok(assignments)
    }

    /// A refresh from the kept root through `run`, which makes the new trusted set.
    fn refresh_with(
        &mut self,
        run: impl FnOnce(&mut Source<'_, F>, &[u8], &Limits, DateTime<Utc>) -> Result<TrustedSet>,
    ) -> Result<()> {
        self.set = None;
        let root = self
            .store
            .load("root")?
            .ok_or_else(|| Error::NoTrustedRoot(self.store.dir().to_owned()))?;
        self.used_roles.clear();
        let mut source = source!(self);
        let set = run(&mut source, &root, &self.limits, self.now)?;
        self.set = Some(set);
        Ok(())
    }

    /// Find `target` through the delegation graph, loading only the roles on its path:
    /// `None` when the repository does not list it there.
    pub fn find_target(&mut self, target: &str) -> Result<Option<FoundTarget>> {
        let mut set = self
            .set
            .take()
            .ok_or(ferry_core::Error::Order("target lookup before refresh"))?;
        let mut source = source!(self);
        let found = Workflow::new(&mut source, &self.limits).find_target(&mut set, target);
        self.set = Some(set);
        found
    }

    /// Find `target` through the delegation graph, loading only the roles on its path.
    pub fn target_info(&mut self, target: &str) -> Result<FoundTarget> {
        self.find_target(target)?
            .ok_or_else(|| Error::TargetNotFound(target.to_owned()))
    }

    /// Download `name` (found by [`Updater::target_info`]) into `dir`, verifying its length and
    /// every hash while streaming. A valid copy already in `dir` is used without fetching.
    /// Returns the file's path: `dir/quote(name)`.
    pub fn download_target(
        &self,
        found: &FoundTarget,
        name: &str,
        target_base_url: &str,
        dir: &Path,
    ) -> Result<PathBuf> {
        let name = TargetName::new(name)?;
        let info = &found.target;
        let dest = dir.join(quote(name.as_str()));
        if self.cached_is_valid(&dest, name.as_str(), info)? {
            tracing::info!(target = %name, "using cached target");
            return Ok(dest);
        }
        let mut check = HashCheck::new(name.as_str(), Some(info.length), Some(&info.hashes))?
            .require_hashes()?;
        let url = self.target_url(found, name.as_str(), target_base_url)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".ferry-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(io_at(dir))?;
        let tmp_path = tmp.path().to_owned();
        let mut progress = Progress::new(name.as_str(), info.length);
        self.fetcher.fetch(&url, info.length, &mut |chunk| {
            check.update(chunk)?;
            progress.advance(chunk.len() as u64);
            tmp.write_all(chunk).map_err(io_at(&tmp_path))
        })?;
        progress.finish();
        check.finish()?;
        tmp.as_file().sync_all().map_err(io_at(&tmp_path))?;
        tmp.persist(&dest).map_err(|e| io_at(&dest)(e.error))?;
        Ok(dest)
    }

    /// Where `name` (found by [`Updater::target_info`]) is fetched from: under
    /// `target_base_url`, as `dir/HASH.file` when the repository uses consistent snapshots.
    pub fn target_url(
        &self,
        found: &FoundTarget,
        name: &str,
        target_base_url: &str,
    ) -> Result<String> {
        let name = TargetName::new(name)?;
        let consistent = self
            .set
            .as_ref()
            .is_some_and(|s| s.root().consistent_snapshot);
        let remote =
            if consistent {
                let hash = found.target.hashes.values().next().ok_or_else(|| {
                    ferry_core::Error::NoHashes {
                        what: name.to_string(),
                    }
                })?;
                ferry_core::layout::consistent_target_path(&name, hash)
            } else {
                name.as_str().to_owned()
            };
        Ok(format!(
            "{}{}",
            base_url(target_base_url),
            quote_path(&remote)
        ))
    }

    /// The transport this updater fetches with.
    pub fn fetcher(&self) -> &F {
        &self.fetcher
    }

    fn cached_is_valid(
        &self,
        path: &Path,
        name: &str,
        info: &ferry_core::metadata::TargetFile,
    ) -> Result<bool> {
        let mut file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_at(path)(e)),
        };
        let mut check =
            HashCheck::new(name, Some(info.length), Some(&info.hashes))?.require_hashes()?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(io_at(path))?;
            if n == 0 {
                break;
            }
            if check.update(&buf[..n]).is_err() {
                return Ok(false);
            }
        }
        Ok(check.finish().is_ok())
    }
}

/// Write the trusted root a client starts from (the `init` step): no checks, no network.
pub fn init_trusted_root(store: &MetadataStore, root_bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(store.dir()).map_err(io_at(store.dir()))?;
    write_atomic(&store.dir().join("root.json"), root_bytes)
}
