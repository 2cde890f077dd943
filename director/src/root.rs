//! The Director's root of trust. It is built and signed offline (`ferry director root
//! init|rotate` on the key-ceremony host, with `ferry key` files) and imported by the online
//! Director, which checks the chain before it serves a byte of it: version 1 signed by its own
//! root threshold, each later version by the previous root's threshold and its own (the walk a
//! vehicle makes, TUF 5.3.4). The online Director also refuses to start with signing keys the
//! latest root does not authorise, so it can never serve metadata its vehicles would reject.

use crate::error::{Error, Result};
use crate::store::Store;
use crate::vehicle_metadata::OnlineKeys;
use chrono::{DateTime, Utc};
use ferry_core::metadata::{Expires, RoleKeys, RoleType, Root, Signed, SPEC_VERSION};
use ferry_core::TrustedSet;
use ferry_keys::{PublicKey, Signer};
use std::collections::BTreeMap;

/// The public keys and threshold of one top-level role.
#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub keys: Vec<PublicKey>,
    pub threshold: u32,
}

/// The four top-level roles of a Director root.
#[derive(Debug, Clone)]
pub struct RootSpec {
    pub root: RoleSpec,
    pub targets: RoleSpec,
    pub snapshot: RoleSpec,
    pub timestamp: RoleSpec,
}

/// The unsigned root `version` for `spec`. Consistent snapshots: a vehicle fetches the
/// snapshot and targets versions the metadata above names (`N.snapshot.json`,
/// `N.targets.json`), so a re-signing between two of its fetches cannot hand it a targets
/// version its snapshot does not list (a spurious attack report); the Director keeps the last
/// superseded versions for that moment.
pub fn build_root(spec: &RootSpec, version: u64, expires: Expires) -> Result<Root> {
    let mut keys = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for (name, role) in [
        ("root", &spec.root),
        ("targets", &spec.targets),
        ("snapshot", &spec.snapshot),
        ("timestamp", &spec.timestamp),
    ] {
        let mut keyids = Vec::with_capacity(role.keys.len());
        for key in &role.keys {
            let id = key.key_id().map_err(|e| Error::RootSpec {
                reason: format!("{name} key: {e}"),
            })?;
            keys.insert(id.clone(), key.clone());
            if !keyids.contains(&id) {
                keyids.push(id);
            }
        }
        if role.threshold == 0 || role.threshold as usize > keyids.len() {
            return Err(Error::RootSpec {
                reason: format!(
                    "{name} threshold {} with {} distinct keys; expected 1 to the number of keys",
                    role.threshold,
                    keyids.len()
                ),
            });
        }
        roles.insert(
            name.to_owned(),
            RoleKeys {
                keyids,
                threshold: role.threshold,
                extra: BTreeMap::new(),
            },
        );
    }
    Ok(Root {
        type_: "root".into(),
        consistent_snapshot: true,
        expires,
        keys,
        roles,
        spec_version: SPEC_VERSION.into(),
        version,
        extra: BTreeMap::new(),
    })
}

/// Give `root` the PURE-2 roles `offline-update-snapshot` and `offline-update-targets`, both
/// signed by `offline`'s keys (PURE-2 allows one key for both; it should not be the targets
/// key). Replaces them if present.
pub fn add_offline_roles(root: &mut Root, offline: &RoleSpec) -> Result<()> {
    let mut keyids = Vec::with_capacity(offline.keys.len());
    for key in &offline.keys {
        let id = key.key_id().map_err(|e| Error::RootSpec {
            reason: format!("offline-update key: {e}"),
        })?;
        root.keys.insert(id.clone(), key.clone());
        if !keyids.contains(&id) {
            keyids.push(id);
        }
    }
    if offline.threshold == 0 || offline.threshold as usize > keyids.len() {
        return Err(Error::RootSpec {
            reason: format!(
                "offline-update threshold {} with {} distinct keys; expected 1 to the number of keys",
                offline.threshold,
                keyids.len()
            ),
        });
    }
    for role in ferry_core::metadata::OFFLINE_ROLES {
        root.roles.insert(
            role.to_owned(),
            RoleKeys {
                keyids: keyids.clone(),
                threshold: offline.threshold,
                extra: BTreeMap::new(),
            },
        );
    }
    Ok(())
}

/// Sign `root` with every signer given (for a rotation: the previous root's keys and the new
/// ones, at least a threshold of each).
pub fn sign_root(root: Root, signers: &[&dyn Signer]) -> Result<Vec<u8>> {
    let mut signed = Signed::new(root);
    signed.sign_all(signers).map_err(Error::Signing)?;
    signed.to_bytes().map_err(Error::Signing)
}

/// Check `bytes` against the stored chain and store it: version 1 when the store has none,
/// otherwise exactly the next version, signed by the previous root's threshold and its own.
/// Returns the imported version. Importing a root already stored (same bytes) is a no-op.
pub fn import_root(store: &dyn Store, bytes: &[u8], now: DateTime<Utc>) -> Result<u64> {
    let version = match store.latest_root()? {
        None => {
            let trusted = TrustedSet::new(bytes, now).map_err(Error::RootChain)?;
            let version = trusted.root().version;
            if version != 1 {
                return Err(Error::RootVersion {
                    new: version,
                    expected: 1,
                });
            }
            version
        }
        Some((latest, latest_bytes)) if latest_bytes == bytes => return Ok(latest),
        Some((_, latest_bytes)) => {
            let mut trusted = TrustedSet::new(&latest_bytes, now).map_err(Error::RootChain)?;
            trusted
                .update_root(bytes)
                .map_err(Error::RootChain)?
                .version
        }
    };
    store.put_root(version, bytes)?;
    tracing::info!(version, "director root imported");
    Ok(version)
}

/// The latest stored root, as verified when it was imported.
pub fn latest_root(store: &dyn Store, now: DateTime<Utc>) -> Result<Root> {
    let (version, bytes) = store.latest_root()?.ok_or(Error::NoRoot)?;
    let trusted = TrustedSet::new(&bytes, now)
        .map_err(|e| Error::corrupt(format!("director root {version}"), e))?;
    Ok(trusted.root().signed().clone())
}

/// Refuse online keys that the latest stored root does not authorise: each online role must
/// hold at least the root's threshold of keys the root names for it.
pub fn check_online_keys(store: &dyn Store, keys: &OnlineKeys, now: DateTime<Utc>) -> Result<()> {
    let root = latest_root(store, now)?;
    for (role, signers) in [
        (RoleType::Targets, &keys.targets),
        (RoleType::Snapshot, &keys.snapshot),
        (RoleType::Timestamp, &keys.timestamp),
    ] {
        check_role_keys(&root, role, signers)?;
    }
    Ok(())
}

/// `signers` hold at least `root`'s threshold of the keys it names for `role`.
fn check_role_keys(
    root: &Root,
    role: RoleType,
    signers: &[std::sync::Arc<dyn Signer>],
) -> Result<()> {
    let version = root.version;
    let authority = root
        .authority(role)
        .map_err(|e| Error::corrupt(format!("director root {version}"), e))?;
    let named = signers
        .iter()
        .filter(|s| authority.keyids().contains(s.key_id()))
        .count() as u32;
    if named < authority.threshold() {
        return Err(Error::OnlineKeys {
            role: role.name(),
            root_version: version,
            authorised: named,
            threshold: authority.threshold(),
        });
    }
    Ok(())
}

/// PURE-2 keys (`[keys] offline_update`) must be ones the latest root names for both
/// offline-update roles, to their thresholds. A root without those roles only draws a
/// warning (bundles are refused until one names them); no keys: no bundles.
pub fn check_offline_keys(
    store: &dyn Store,
    keys: &[std::sync::Arc<dyn Signer>],
    now: DateTime<Utc>,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let root = latest_root(store, now)?;
    if !root.has_offline_roles() {
        tracing::warn!(
            root_version = root.version,
            "[keys] offline_update is set but the director root has no offline-update roles: offline-update bundles are refused until a root names them"
        );
        return Ok(());
    }
    for role in [
        RoleType::OfflineUpdateSnapshot,
        RoleType::OfflineUpdateTargets,
    ] {
        check_role_keys(&root, role, keys)?;
    }
    Ok(())
}

/// The roles of `root` as a spec: a rotation starts from the previous root and changes only
/// what the operator names.
pub fn spec_of(root: &Root) -> Result<RootSpec> {
    let role = |name: RoleType| -> Result<RoleSpec> {
        let authority = root.authority(name).map_err(Error::RootChain)?;
        let keys = authority
            .keyids()
            .iter()
            .map(|id| {
                root.keys.get(id).cloned().ok_or_else(|| Error::RootSpec {
                    reason: format!(
                        "{} key {id} is not in the root's keys; expected every role key listed",
                        name.name()
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RoleSpec {
            keys,
            threshold: authority.threshold(),
        })
    };
    Ok(RootSpec {
        root: role(RoleType::Root)?,
        targets: role(RoleType::Targets)?,
        snapshot: role(RoleType::Snapshot)?,
        timestamp: role(RoleType::Timestamp)?,
    })
}

/// Parse and verify a root file by its own signatures only (for offline tools that hold the
/// previous root as a file, not a store).
pub fn read_root_file(bytes: &[u8], now: DateTime<Utc>) -> Result<Root> {
    let trusted = TrustedSet::new(bytes, now).map_err(Error::RootChain)?;
    Ok(trusted.root().signed().clone())
}
