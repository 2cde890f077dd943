//! The client's trusted metadata: the TUF client workflow (spec §5.3–5.6) as a state machine
//! that takes bytes and the current time and either accepts them or names the check that
//! failed. It does no I/O and reads no clock; fetching, caching and persisting are the
//! caller's (see ferry-primary's updater). The order of checks follows the TUF reference
//! client, which the conformance suite encodes.

use crate::metadata::{
    verify_length_and_hashes, Parsed, Role, RoleType, Root, Snapshot, Targets, Timestamp,
};
use crate::verify::{verify, verify_self_signed, Verified};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What a new timestamp did to the trusted set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUpdate {
    /// A newer timestamp is now trusted.
    Updated,
    /// Same version as the trusted one: the trusted one stays, nothing to persist.
    Unchanged,
}

#[derive(Debug)]
pub struct TrustedSet {
    now: DateTime<Utc>,
    root: Verified<Root>,
    timestamp: Option<Verified<Timestamp>>,
    snapshot: Option<Verified<Snapshot>>,
    targets: HashMap<String, Verified<Targets>>,
    /// Which role's delegation each loaded targets role was verified under: a role is
    /// trusted only for the delegator whose keys and threshold it met.
    delegators: HashMap<String, String>,
    /// PURE-2 offline update (Image repository side): no timestamp, and a snapshot whose
    /// expiry is not checked (pure2.md step 7.4); the rest of the workflow is unchanged.
    offline: bool,
}

fn expired<T: Role>(role: &str, meta: &T, now: DateTime<Utc>) -> Result<()> {
    if meta.is_expired(now) {
        return Err(Error::Expired {
            role: role.to_owned(),
            expires: meta.expires().0,
            now,
        });
    }
    Ok(())
}

impl TrustedSet {
    /// Start from a root the caller already trusts (shipped with the device, or persisted).
    /// It must be signed by its own root threshold; its expiry is checked only once the root
    /// chain has been walked (an expired local root may still be rotated away).
    pub fn new(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self> {
        let parsed = Parsed::<Root>::from_bytes(root_bytes)?;
        parsed.signed.check()?;
        let root = verify_self_signed(parsed, &[], |r: &Root| r.authority(RoleType::Root))?;
        Ok(TrustedSet {
            now,
            root,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            delegators: HashMap::new(),
            offline: false,
        })
    }

    /// [`TrustedSet::new`] for verifying an offline-update bundle's Image repository metadata
    /// (PURE-2 steps 6-8): root chain, then snapshot with no timestamp above it and no expiry
    /// check on it, then targets (whose expiry is checked).
    pub fn new_offline(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self> {
        let mut set = Self::new(root_bytes, now)?;
        set.offline = true;
        Ok(set)
    }

    /// Whether this set verifies an offline-update bundle ([`TrustedSet::new_offline`]).
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// PURE-2 step 2 and 6 end: the root reached by the walk must not be expired.
    pub fn check_root_expiry(&self) -> Result<()> {
        expired("root", &*self.root, self.now)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
    pub fn root(&self) -> &Verified<Root> {
        &self.root
    }
    pub fn timestamp(&self) -> Option<&Verified<Timestamp>> {
        self.timestamp.as_ref()
    }
    pub fn snapshot(&self) -> Option<&Verified<Snapshot>> {
        self.snapshot.as_ref()
    }
    pub fn targets(&self, role: &str) -> Option<&Verified<Targets>> {
        self.targets.get(role)
    }

    /// `role` as reached through `delegator`: `None` when not loaded yet, an error when it was
    /// loaded through another delegator. A role met through two delegators (a diamond) was
    /// checked against only the first one's keys and threshold, so it is refused on the
    /// second path rather than trusted with authority the second delegator never gave it.
    pub fn targets_via(&self, role: &str, delegator: &str) -> Result<Option<&Verified<Targets>>> {
        let Some(first) = self.delegators.get(role) else {
            return Ok(None);
        };
        if first != delegator {
            return Err(Error::DelegatedTwice {
                role: role.to_owned(),
                first: first.clone(),
                second: delegator.to_owned(),
            });
        }
        Ok(self.targets.get(role))
    }

    /// Accept root version N+1: signed by the trusted root's threshold and by its own.
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<&Verified<Root>> {
        if self.timestamp.is_some() {
            return Err(Error::Order("root cannot be updated after timestamp"));
        }
        let parsed = Parsed::<Root>::from_bytes(bytes)?;
        parsed.signed.check()?;
        let expected = self.root.version + 1;
        let old = self.root.authority(RoleType::Root)?;
        let new_root = verify_self_signed(parsed, &[old], |r: &Root| {
            if r.version != expected {
                return Err(Error::RootVersion {
                    expected,
                    found: r.version,
                });
            }
            r.authority(RoleType::Root)
        })?;
        self.root = new_root;
        Ok(&self.root)
    }

    /// Accept a timestamp. An expired timestamp is still kept (its versions protect against
    /// rollback of the next one) but is reported as an error.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<TimestampUpdate> {
        if self.offline {
            return Err(Error::Order(
                "an offline-update bundle carries no timestamp",
            ));
        }
        if self.snapshot.is_some() {
            return Err(Error::Order("timestamp cannot be updated after snapshot"));
        }
        expired("root", &*self.root, self.now)?;
        let parsed = Parsed::<Timestamp>::from_bytes(bytes)?;
        let new = verify(parsed, &[self.root.authority(RoleType::Timestamp)?])?;
        let new_meta = new.snapshot_meta()?;
        if let Some(old) = &self.timestamp {
            if new.version < old.version {
                return Err(Error::Rollback {
                    role: "timestamp".into(),
                    trusted: old.version,
                    new: new.version,
                });
            }
            if new.version == old.version {
                return Ok(TimestampUpdate::Unchanged);
            }
            let old_meta = old.snapshot_meta()?;
            if new_meta.version < old_meta.version {
                return Err(Error::Rollback {
                    role: "snapshot (as listed in timestamp)".into(),
                    trusted: old_meta.version,
                    new: new_meta.version,
                });
            }
        }
        self.timestamp = Some(new);
        self.check_final_timestamp()?;
        Ok(TimestampUpdate::Updated)
    }

    fn check_final_timestamp(&self) -> Result<&Verified<Timestamp>> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or(Error::Order("snapshot needs a trusted timestamp"))?;
        expired("timestamp", &**ts, self.now)?;
        Ok(ts)
    }

    /// Accept a snapshot. `from_local_cache` skips the length/hash check against timestamp:
    /// bytes we persisted were checked when first accepted, and timestamp may have moved on.
    pub fn update_snapshot(&mut self, bytes: &[u8], from_local_cache: bool) -> Result<()> {
        if !self.targets.is_empty() {
            return Err(Error::Order("snapshot cannot be updated after targets"));
        }
        if !self.offline {
            let ts = self.check_final_timestamp()?;
            let meta = ts.snapshot_meta()?;
            if !from_local_cache {
                verify_length_and_hashes(
                    "snapshot.json",
                    bytes,
                    meta.length,
                    meta.hashes.as_ref(),
                )?;
            }
        } else {
            expired("root", &*self.root, self.now)?;
        }
        let parsed = Parsed::<Snapshot>::from_bytes(bytes)?;
        let new = verify(parsed, &[self.root.authority(RoleType::Snapshot)?])?;
        if let Some(old) = &self.snapshot {
            for (name, old_info) in &old.meta {
                let Some(new_info) = new.meta.get(name) else {
                    return Err(Error::SnapshotDropsRole { role: name.clone() });
                };
                if new_info.version < old_info.version {
                    return Err(Error::Rollback {
                        role: format!("{name} (as listed in snapshot)"),
                        trusted: old_info.version,
                        new: new_info.version,
                    });
                }
            }
        }
        self.snapshot = Some(new);
        self.check_final_snapshot()?;
        Ok(())
    }

    fn check_final_snapshot(&self) -> Result<&Verified<Snapshot>> {
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or(Error::Order("targets need a trusted snapshot"))?;
        if self.offline {
            // PURE-2 7.4: the Image repository's snapshot usually expires long before an
            // offline bundle is used; freshness comes from the Director's offline snapshot.
            return Ok(snapshot);
        }
        let ts = self.check_final_timestamp()?;
        expired("snapshot", &**snapshot, self.now)?;
        let expected = ts.snapshot_meta()?.version;
        if snapshot.version != expected {
            return Err(Error::VersionMismatch {
                role: "snapshot".into(),
                expected,
                found: snapshot.version,
                listed_in: "timestamp",
            });
        }
        Ok(snapshot)
    }

    /// Accept top-level targets (delegator `root`) or a delegated targets role.
    pub fn update_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
    ) -> Result<&Verified<Targets>> {
        if self.targets_via(role, delegator)?.is_some() {
            return Err(Error::Order(
                "a targets role is loaded once per trusted set",
            ));
        }
        let snapshot = self.check_final_snapshot()?;
        let meta = snapshot
            .role_meta(role)
            .ok_or_else(|| Error::NotInSnapshot { role: role.into() })?
            .clone();
        let authority = if delegator == "root" {
            if role != "targets" {
                return Err(Error::NotDelegated {
                    role: role.into(),
                    delegator: delegator.into(),
                });
            }
            self.root.authority(RoleType::Targets)?
        } else {
            let parent = self.targets.get(delegator).ok_or(Error::Order(
                "a delegated role needs its delegator loaded first",
            ))?;
            parent
                .delegations
                .as_ref()
                .and_then(|d| d.authority(role))
                .ok_or_else(|| Error::NotDelegated {
                    role: role.into(),
                    delegator: delegator.into(),
                })??
        };
        verify_length_and_hashes(
            &format!("{role}.json"),
            bytes,
            meta.length,
            meta.hashes.as_ref(),
        )?;
        let parsed = Parsed::<Targets>::from_bytes(bytes).map_err(|e| e.for_role(role))?;
        parsed.signed.check(role)?;
        let new = verify(parsed, &[authority])?;
        if new.version != meta.version {
            return Err(Error::VersionMismatch {
                role: role.into(),
                expected: meta.version,
                found: new.version,
                listed_in: "snapshot",
            });
        }
        expired(role, &*new, self.now)?;
        self.delegators
            .insert(role.to_owned(), delegator.to_owned());
        self.targets.insert(role.to_owned(), new);
        Ok(&self.targets[role])
    }
}
