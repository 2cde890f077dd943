//! The TUF metadata schema (with Uptane's custom target fields in [`uptane`]).
//!
//! Every struct keeps the fields it does not know in `extra`, so metadata re-serialises to
//! exactly the canonical bytes that were signed. Fields are declared in alphabetical order:
//! canonical JSON then streams out without re-ordering.

mod envelope;
mod expires;
mod hashes;
mod offline;
pub mod received;
mod root;
mod snapshot;
mod targets;
mod timestamp;
pub mod uptane;

pub use envelope::{Parsed, Signature, Signed};
pub use expires::Expires;
pub use hashes::{hashes_of, verify_length_and_hashes, HashCheck, Hashes};
pub use offline::{OfflineSnapshot, OfflineTargets, OFFLINE_ROLES};
pub use root::{RoleKeys, Root};
pub use snapshot::Snapshot;
pub use targets::{DelegatedRole, Delegations, SuccinctRoles, TargetFile, Targets};
pub use timestamp::{MetaFile, Timestamp};

use serde::{de::DeserializeOwned, Serialize};

/// The four top-level roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleType {
    Root,
    Timestamp,
    Snapshot,
    Targets,
    /// PURE-2: signs the list of offline-update targets files (Director only).
    OfflineUpdateSnapshot,
    /// PURE-2: signs each offline-update targets file (Director only).
    OfflineUpdateTargets,
}

impl RoleType {
    pub fn name(self) -> &'static str {
        match self {
            RoleType::Root => "root",
            RoleType::Timestamp => "timestamp",
            RoleType::Snapshot => "snapshot",
            RoleType::Targets => "targets",
            RoleType::OfflineUpdateSnapshot => "offline-update-snapshot",
            RoleType::OfflineUpdateTargets => "offline-update-targets",
        }
    }
}

impl std::fmt::Display for RoleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Anything Ferry signs in a `{"signed": ..., "signatures": [...]}` envelope: TUF roles and
/// Uptane manifests. Parsing, canonicalisation and threshold checks are shared by all.
pub trait Document: Serialize + DeserializeOwned {
    /// Name used in errors ("timestamp", "vehicle manifest").
    fn kind() -> &'static str;
    /// Checks on the raw `signed` value before it is typed (e.g. `_type`).
    fn precheck(_raw: &serde_json::Value) -> crate::Result<()> {
        Ok(())
    }
    /// Checks on the typed value the schema cannot express.
    fn check(&self) -> crate::Result<()> {
        Ok(())
    }
    /// The typed document from its parsed `signed` value: what `serde_json::from_value` makes
    /// of it. A document that keeps raw JSON inside (a vehicle manifest's ECU reports) moves
    /// those subtrees instead of having serde rebuild them node by node.
    fn from_signed(value: serde_json::Value) -> serde_json::Result<Self> {
        serde_json::from_value(value)
    }
}

impl<T: Role> Document for T {
    fn kind() -> &'static str {
        T::TYPE.name()
    }
    fn precheck(raw: &serde_json::Value) -> crate::Result<()> {
        let expected = T::TYPE.name();
        let found = raw.get("_type").and_then(|t| t.as_str()).unwrap_or("");
        if found != expected {
            return Err(crate::Error::WrongType {
                expected: expected.to_owned(),
                found: found.to_owned(),
            });
        }
        Ok(())
    }
    fn check(&self) -> crate::Result<()> {
        envelope::check_common(self)
    }
}

/// What every role's `signed` part has in common.
pub trait Role: Serialize + DeserializeOwned {
    const TYPE: RoleType;
    fn type_field(&self) -> &str;
    fn spec_version(&self) -> &str;
    fn version(&self) -> u64;
    fn expires(&self) -> &Expires;

    /// The `meta` of timestamp and snapshot: the files they pin.
    fn meta_files(&self) -> Option<&std::collections::BTreeMap<String, MetaFile>> {
        None
    }

    fn is_expired(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        now >= self.expires().0
    }
}

macro_rules! impl_role {
    ($ty:ty, $role:expr, meta) => {
        $crate::metadata::impl_role!($ty, $role, {
            fn meta_files(
                &self,
            ) -> Option<&std::collections::BTreeMap<String, $crate::metadata::MetaFile>> {
                Some(&self.meta)
            }
        });
    };
    ($ty:ty, $role:expr) => {
        $crate::metadata::impl_role!($ty, $role, {});
    };
    ($ty:ty, $role:expr, { $($extra:item)* }) => {
        impl $crate::metadata::Role for $ty {
            $($extra)*
            const TYPE: $crate::metadata::RoleType = $role;
            fn type_field(&self) -> &str {
                &self.type_
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> &$crate::metadata::Expires {
                &self.expires
            }
        }
    };
}
pub(crate) use impl_role;

/// The spec version Ferry writes.
pub const SPEC_VERSION: &str = "1.0.31";
