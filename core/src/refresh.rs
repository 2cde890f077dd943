//! The fetching order of the TUF client workflow (spec §5.3–5.6) around [`TrustedSet`]: walk
//! the root chain, then timestamp, snapshot and top-level targets, and delegated targets on
//! demand. These rules live here once; each client brings its transport and its cache of
//! trusted bytes through [`MetadataSource`] (the Primary: resumable HTTP and files on disk; the
//! Director: HTTP and memory, for its view of the Image repository). No I/O happens in this
//! module itself: the source does it.

use crate::metadata::{RoleKeys, Root};
use crate::search::{find_target, FoundTarget};
use crate::trusted::{TimestampUpdate, TrustedSet};
use chrono::{DateTime, Utc};

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

/// One metadata file of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataFile<'a> {
    pub role: &'a str,
    /// Set for versioned names: `N.root.json`, and every role under consistent snapshots.
    pub version: Option<u64>,
}

impl MetadataFile<'_> {
    /// The file's name under the repository's `metadata/`: `N.ROLE.json` or `ROLE.json`, the
    /// role percent-encoded.
    pub fn file_name(&self) -> String {
        crate::layout::metadata_file_name(self.role, self.version)
    }
}

/// Where the workflow gets metadata, and where it keeps the bytes it trusts between runs.
/// Kept bytes are verified again before use, so a cache can be wrong but never trusted blindly.
pub trait MetadataSource {
    type Error: From<crate::Error>;

    /// `file` from the repository, refusing more than `max_len` bytes.
    fn fetch(&mut self, file: MetadataFile<'_>, max_len: u64) -> Result<Vec<u8>, Self::Error>;
    /// Whether `error` (from [`MetadataSource::fetch`]) says the file does not exist (HTTP 403
    /// or 404): that, and only that, ends the root walk.
    fn is_not_found(error: &Self::Error) -> bool;
    /// The bytes of `role` kept by an earlier run, if any.
    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Keep `role`'s bytes, just accepted by the trusted set.
    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), Self::Error>;
    /// Forget `role` (no error if nothing was kept).
    fn remove(&mut self, role: &str) -> Result<(), Self::Error>;
}

/// One client's run of the workflow against one repository.
#[derive(Debug)]
pub struct Workflow<'a, S> {
    source: &'a mut S,
    limits: &'a Limits,
}

impl<'a, S: MetadataSource> Workflow<'a, S> {
    pub fn new(source: &'a mut S, limits: &'a Limits) -> Self {
        Workflow { source, limits }
    }

    /// The whole refresh of the top-level roles from the trusted `root`: root chain,
    /// timestamp, snapshot, top-level targets.
    pub fn refresh(&mut self, root: &[u8], now: DateTime<Utc>) -> Result<TrustedSet, S::Error> {
        let (mut set, _) = self.refresh_timestamp(root, now)?;
        self.refresh_snapshot_and_targets(&mut set)?;
        Ok(set)
    }

    /// The first half of [`Workflow::refresh`]: root chain and timestamp. Says whether the
    /// repository's timestamp is newer than the kept one, so a caller that kept the rest of an
    /// earlier trusted set can reuse it when it is not.
    pub fn refresh_timestamp(
        &mut self,
        root: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(TrustedSet, TimestampUpdate), S::Error> {
        let mut set = TrustedSet::new(root, now)?;
        let before = online_role_keys(set.root());
        self.walk_root(&mut set)?;
        if online_role_keys(set.root()) != before {
            // TUF 5.3.11 (fast-forward attack recovery): once the timestamp or snapshot keys
            // change, the old timestamp and snapshot no longer protect anything; their
            // possibly attacker-inflated versions must not block the new keys' metadata.
            self.source.remove("timestamp")?;
            self.source.remove("snapshot")?;
        }
        let update = self.load_timestamp(&mut set)?;
        Ok((set, update))
    }

    /// The second half of [`Workflow::refresh`]: snapshot and top-level targets.
    pub fn refresh_snapshot_and_targets(&mut self, set: &mut TrustedSet) -> Result<(), S::Error> {
        self.load_snapshot(set)?;
        self.load_targets(set, "targets", "root")
    }

    /// The root chain alone, from the trusted `root` (PURE-2 steps 2 and 6 load the roots from
    /// the bundle this way): the root reached must not be expired.
    pub fn root_chain(&mut self, root: &[u8], now: DateTime<Utc>) -> Result<TrustedSet, S::Error> {
        let mut set = TrustedSet::new(root, now)?;
        self.walk_root(&mut set)?;
        set.check_root_expiry()?;
        Ok(set)
    }

    /// PURE-2 steps 6-8, the Image repository's metadata from an offline-update bundle: the
    /// root chain, then the newer of the kept snapshot and the bundle's (its expiry not
    /// checked: pure2.md 7.4), then top-level targets (kept if it matches, else the bundle's).
    /// Delegated roles load on demand through [`Workflow::find_target`].
    pub fn refresh_offline(
        &mut self,
        root: &[u8],
        now: DateTime<Utc>,
    ) -> Result<TrustedSet, S::Error> {
        let mut set = TrustedSet::new_offline(root, now)?;
        self.walk_root(&mut set)?;
        set.check_root_expiry()?;
        let mut kept_version = None;
        if let Some(kept) = self.source.load("snapshot")? {
            if set.update_snapshot(&kept, true).is_ok() {
                kept_version = set.snapshot().map(|s| s.version);
            }
        }
        let file = MetadataFile {
            role: "snapshot",
            version: None,
        };
        match self.source.fetch(file, self.limits.snapshot_max) {
            Ok(bytes) => {
                let offered =
                    crate::metadata::Parsed::<crate::metadata::Snapshot>::from_bytes(&bytes)?
                        .unverified()
                        .version;
                // pure2.md 7.1: a kept snapshot at least as new as the bundle's is used as is.
                if kept_version.is_none_or(|kept| offered > kept) {
                    set.update_snapshot(&bytes, false)?;
                    self.source.persist("snapshot", &bytes)?;
                }
            }
            Err(e) if S::is_not_found(&e) && kept_version.is_some() => {}
            Err(e) => return Err(e),
        }
        self.load_targets(&mut set, "targets", "root")?;
        Ok(set)
    }

    /// Walk root versions N+1, N+2, ... until the repository has no next one (TUF 5.3).
    fn walk_root(&mut self, set: &mut TrustedSet) -> Result<(), S::Error> {
        let first = set.root().version + 1;
        for version in first..first.saturating_add(self.limits.max_root_rotations) {
            let file = MetadataFile {
                role: "root",
                version: Some(version),
            };
            match self.source.fetch(file, self.limits.root_max) {
                Ok(bytes) => {
                    set.update_root(&bytes)?;
                    self.source.persist("root", &bytes)?;
                }
                Err(e) if S::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn load_timestamp(&mut self, set: &mut TrustedSet) -> Result<TimestampUpdate, S::Error> {
        if let Some(kept) = self.source.load("timestamp")? {
            // A kept timestamp that no longer verifies (expired, or its keys were rotated
            // away) is dropped; one that does guards against rollback of the next one.
            let _ = set.update_timestamp(&kept);
        }
        let file = MetadataFile {
            role: "timestamp",
            version: None,
        };
        let bytes = self.source.fetch(file, self.limits.timestamp_max)?;
        let update = set.update_timestamp(&bytes)?;
        if update == TimestampUpdate::Updated {
            self.source.persist("timestamp", &bytes)?;
        }
        Ok(update)
    }

    fn load_snapshot(&mut self, set: &mut TrustedSet) -> Result<(), S::Error> {
        if let Some(kept) = self.source.load("snapshot")? {
            // Kept bytes were length- and hash-checked when accepted; the version check
            // against the new timestamp still applies.
            if set.update_snapshot(&kept, true).is_ok() {
                return Ok(());
            }
        }
        let meta = set
            .timestamp()
            .ok_or(crate::Error::Order("snapshot before timestamp"))?
            .snapshot_meta()?
            .clone();
        let file = MetadataFile {
            role: "snapshot",
            version: set.root().consistent_snapshot.then_some(meta.version),
        };
        let bytes = self.source.fetch(
            file,
            fetch_cap("snapshot", meta.length, self.limits.snapshot_max)?,
        )?;
        set.update_snapshot(&bytes, false)?;
        self.source.persist("snapshot", &bytes)?;
        Ok(())
    }

    /// Load targets role `role` (delegated by `delegator`, or `root` for top-level targets)
    /// into `set`, from kept bytes if they still match snapshot, else from the repository.
    pub fn load_targets(
        &mut self,
        set: &mut TrustedSet,
        role: &str,
        delegator: &str,
    ) -> Result<(), S::Error> {
        if set.targets_via(role, delegator)?.is_some() {
            return Ok(());
        }
        if let Some(kept) = self.source.load(role)? {
            if set.update_targets(&kept, role, delegator).is_ok() {
                return Ok(());
            }
        }
        let meta = set
            .snapshot()
            .ok_or(crate::Error::Order("targets before snapshot"))?
            .role_meta(role)
            .ok_or_else(|| crate::Error::NotInSnapshot { role: role.into() })?
            .clone();
        let file = MetadataFile {
            role,
            version: set.root().consistent_snapshot.then_some(meta.version),
        };
        let bytes = self
            .source
            .fetch(file, fetch_cap(role, meta.length, self.limits.targets_max)?)?;
        set.update_targets(&bytes, role, delegator)?;
        self.source.persist(role, &bytes)?;
        Ok(())
    }

    /// Find `target` through the delegation graph, loading only the roles on its path.
    pub fn find_target(
        &mut self,
        set: &mut TrustedSet,
        target: &str,
    ) -> Result<Option<FoundTarget>, S::Error> {
        find_target(set, target, &mut |set, role, parent| {
            self.load_targets(set, role, parent)
        })
    }
}

/// How many bytes to accept for `role`: the length the role above pins, never more than the
/// role's cap. A pinned length over the cap is refused before anything is fetched: a
/// timestamp pinning 2^62 bytes must not make the client buffer up to that.
fn fetch_cap(role: &str, pinned: Option<u64>, cap: u64) -> Result<u64, crate::Error> {
    match pinned {
        Some(length) if length > cap => Err(crate::Error::TooLong {
            what: format!("{role}.json (the length pinned for it is {length})"),
            limit: cap,
        }),
        Some(length) => Ok(length),
        None => Ok(cap),
    }
}

/// The key ids and thresholds of the timestamp and snapshot roles.
fn online_role_keys(root: &Root) -> Vec<Option<RoleKeys>> {
    ["timestamp", "snapshot"]
        .iter()
        .map(|r| root.roles.get(*r).cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{fetch_cap, MetadataFile};

    #[test]
    fn a_pinned_length_never_lifts_the_cap() {
        assert_eq!(fetch_cap("snapshot", None, 100).expect("unpinned"), 100);
        assert_eq!(fetch_cap("snapshot", Some(40), 100).expect("pinned"), 40);
        assert_eq!(
            fetch_cap("snapshot", Some(100), 100).expect("at the cap"),
            100
        );
        let err = fetch_cap("snapshot", Some(1 << 62), 100).expect_err("over the cap");
        let text = err.to_string();
        assert!(
            text.contains("length check failed") && text.contains("100 bytes"),
            "{text}"
        );
    }

    #[test]
    fn file_names_are_versioned_when_asked_and_roles_quoted() {
        let name = |role, version| MetadataFile { role, version }.file_name();
        assert_eq!(name("root", Some(2)), "2.root.json");
        assert_eq!(name("timestamp", None), "timestamp.json");
        assert_eq!(name("bins-0f", Some(7)), "7.bins-0f.json");
        // A delegated role's name can never leave metadata/.
        assert_eq!(name("../x y", None), "..%2Fx%20y.json");
    }
}
