//! A single-repository TUF updater: the fetching half of the client workflow around
//! ferry-core's [`TrustedSet`]. Local metadata is tried first and network copies replace it only
//! when they verify; everything persisted is exactly the bytes received.

use crate::error::{io_at, Error, Result};
use crate::fetch::Fetcher;
use crate::store::{quote, quote_path, write_atomic, MetadataStore};
use chrono::{DateTime, Utc};
use ferry_core::metadata::HashCheck;
use ferry_core::{find_target, FoundTarget, TargetName, TimestampUpdate, TrustedSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Size caps for metadata whose length is not pinned by a role above it (the TUF reference
/// client's defaults).
#[derive(Debug, Clone)]
pub struct Limits {
    pub root_max: u64,
    pub timestamp_max: u64,
    pub snapshot_max: u64,
    pub targets_max: u64,
    /// Most root versions walked in one refresh.
    pub max_root_rotations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root_max: 512_000,
            timestamp_max: 16_384,
            snapshot_max: 2_000_000,
            targets_max: 5_000_000,
            max_root_rotations: 256,
        }
    }
}

#[derive(Debug)]
pub struct Updater<F: Fetcher> {
    fetcher: F,
    store: MetadataStore,
    metadata_url: String,
    limits: Limits,
    now: DateTime<Utc>,
    set: Option<TrustedSet>,
}

/// `base` with exactly one trailing slash.
fn base_url(base: &str) -> String {
    format!("{}/", base.trim_end_matches('/'))
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
        }
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
        self.set = None;
        let root = self
            .store
            .load("root")?
            .ok_or_else(|| Error::NoTrustedRoot(self.store.dir().to_owned()))?;
        let mut set = TrustedSet::new(&root, self.now)?;
        let before = online_role_keys(set.root());
        self.load_root(&mut set)?;
        if online_role_keys(set.root()) != before {
            // TUF 5.3.11 (fast-forward attack recovery): once the timestamp or snapshot keys
            // change, the old timestamp and snapshot no longer protect anything; their
            // possibly attacker-inflated versions must not block the new keys' metadata.
            tracing::info!(
                "timestamp or snapshot keys rotated: discarding trusted timestamp and snapshot"
            );
            self.store.remove("timestamp")?;
            self.store.remove("snapshot")?;
        }
        self.load_timestamp(&mut set)?;
        self.load_snapshot(&mut set)?;
        self.load_targets(&mut set, "targets", "root")?;
        self.set = Some(set);
        Ok(())
    }

    fn load_root(&self, set: &mut TrustedSet) -> Result<()> {
        let first = set.root().version + 1;
        for version in first..first + self.limits.max_root_rotations {
            let url = format!("{}{version}.root.json", self.metadata_url);
            match self.fetcher.fetch_bytes(&url, self.limits.root_max) {
                Ok(bytes) => {
                    set.update_root(&bytes)?;
                    self.store.persist("root", &bytes)?;
                    tracing::info!(version, "root rotated");
                }
                Err(Error::HttpStatus {
                    status: 403 | 404, ..
                }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn load_timestamp(&self, set: &mut TrustedSet) -> Result<()> {
        if let Some(local) = self.store.load("timestamp")? {
            // A local timestamp that no longer verifies (expired, or its keys were rotated away:
            // fast-forward recovery) is dropped; one that does guards against rollback.
            if let Err(e) = set.update_timestamp(&local) {
                tracing::debug!(%e, "local timestamp not usable");
            }
        }
        let url = format!("{}timestamp.json", self.metadata_url);
        let bytes = self.fetcher.fetch_bytes(&url, self.limits.timestamp_max)?;
        if set.update_timestamp(&bytes)? == TimestampUpdate::Updated {
            self.store.persist("timestamp", &bytes)?;
        }
        Ok(())
    }

    fn load_snapshot(&self, set: &mut TrustedSet) -> Result<()> {
        if let Some(local) = self.store.load("snapshot")? {
            match set.update_snapshot(&local, true) {
                Ok(()) => return Ok(()),
                Err(e) => tracing::debug!(%e, "local snapshot not usable"),
            }
        }
        let ts = set
            .timestamp()
            .ok_or(ferry_core::Error::Order("snapshot before timestamp"))?;
        let meta = ts.snapshot_meta()?;
        let max = meta.length.unwrap_or(self.limits.snapshot_max);
        let name = if set.root().consistent_snapshot {
            format!("{}.snapshot.json", meta.version)
        } else {
            "snapshot.json".to_owned()
        };
        let bytes = self
            .fetcher
            .fetch_bytes(&format!("{}{name}", self.metadata_url), max)?;
        set.update_snapshot(&bytes, false)?;
        self.store.persist("snapshot", &bytes)?;
        Ok(())
    }

    fn load_targets(&self, set: &mut TrustedSet, role: &str, delegator: &str) -> Result<()> {
        if set.targets(role).is_some() {
            return Ok(());
        }
        if let Some(local) = self.store.load(role)? {
            match set.update_targets(&local, role, delegator) {
                Ok(_) => return Ok(()),
                Err(e) => tracing::debug!(role, %e, "local targets not usable"),
            }
        }
        let snapshot = set
            .snapshot()
            .ok_or(ferry_core::Error::Order("targets before snapshot"))?;
        let meta = snapshot
            .role_meta(role)
            .ok_or_else(|| ferry_core::Error::NotInSnapshot { role: role.into() })?;
        let max = meta.length.unwrap_or(self.limits.targets_max);
        let name = if set.root().consistent_snapshot {
            format!("{}.{}.json", meta.version, quote(role))
        } else {
            format!("{}.json", quote(role))
        };
        let bytes = self
            .fetcher
            .fetch_bytes(&format!("{}{name}", self.metadata_url), max)?;
        set.update_targets(&bytes, role, delegator)?;
        self.store.persist(role, &bytes)?;
        Ok(())
    }

    /// Find `target` through the delegation graph, loading only the roles on its path.
    pub fn target_info(&mut self, target: &str) -> Result<FoundTarget> {
        let mut set = self
            .set
            .take()
            .ok_or(ferry_core::Error::Order("target lookup before refresh"))?;
        let found = find_target(&mut set, target, &mut |set, role, parent| {
            self.load_targets(set, role, parent)
        });
        self.set = Some(set);
        found?.ok_or_else(|| Error::TargetNotFound(target.to_owned()))
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
        let consistent = self
            .set
            .as_ref()
            .is_some_and(|s| s.root().consistent_snapshot);
        let remote = if consistent {
            let (dir_part, file) = name.split_dir();
            let hash = info
                .hashes
                .values()
                .next()
                .ok_or_else(|| ferry_core::Error::NoHashes {
                    what: name.to_string(),
                })?;
            format!("{dir_part}{hash}.{file}")
        } else {
            name.as_str().to_owned()
        };
        let url = format!("{}{}", base_url(target_base_url), quote_path(&remote));
        let mut tmp = tempfile::Builder::new()
            .prefix(".ferry-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(io_at(dir))?;
        let tmp_path = tmp.path().to_owned();
        self.fetcher.fetch(&url, info.length, &mut |chunk| {
            check.update(chunk)?;
            tmp.write_all(chunk).map_err(io_at(&tmp_path))
        })?;
        check.finish()?;
        tmp.as_file().sync_all().map_err(io_at(&tmp_path))?;
        tmp.persist(&dest).map_err(|e| io_at(&dest)(e.error))?;
        Ok(dest)
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

/// The key ids and thresholds of the timestamp and snapshot roles.
fn online_role_keys(
    root: &ferry_core::metadata::Root,
) -> Vec<Option<ferry_core::metadata::RoleKeys>> {
    ["timestamp", "snapshot"]
        .iter()
        .map(|r| root.roles.get(*r).cloned())
        .collect()
}

/// Write the trusted root a client starts from (the `init` step): no checks, no network.
pub fn init_trusted_root(store: &MetadataStore, root_bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(store.dir()).map_err(io_at(store.dir()))?;
    write_atomic(&store.dir().join("root.json"), root_bytes)
}
