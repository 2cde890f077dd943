//! An in-memory TUF repository for trusted-set tests: typed metadata with public fields that
//! a test bends, then signs.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use ferry_core::metadata::{
    hashes_of, DelegatedRole, Delegations, Expires, MetaFile, Role, RoleKeys, Root, Signed,
    Snapshot, TargetFile, Targets, Timestamp, SPEC_VERSION,
};
use ferry_keys::{KeyId, KeyKind, PrivateKey, PublicKey, Signer};
use std::collections::BTreeMap;
use std::rc::Rc;

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

pub fn key() -> PrivateKey {
    PrivateKey::generate(KeyKind::Ed25519).unwrap()
}

pub fn sign<T: Role>(meta: &T, signers: &[&PrivateKey]) -> Vec<u8> {
    let mut signed = Signed::new(meta_clone(meta));
    for s in signers {
        signed.sign(*s as &dyn Signer).unwrap();
    }
    signed.to_bytes().unwrap()
}

fn meta_clone<T: Role>(meta: &T) -> T {
    serde_json::from_value(serde_json::to_value(meta).unwrap()).unwrap()
}

pub fn expires_in(days: i64) -> Expires {
    Expires::after(now(), Duration::days(days))
}

pub fn role_keys(keys: &[&PrivateKey], threshold: u32) -> RoleKeys {
    RoleKeys {
        keyids: keys.iter().map(|k| k.key_id().clone()).collect(),
        threshold,
        extra: BTreeMap::new(),
    }
}

pub fn key_map(keys: &[&PrivateKey]) -> BTreeMap<KeyId, PublicKey> {
    keys.iter()
        .map(|k| (k.key_id().clone(), k.public_key().clone()))
        .collect()
}

pub fn target_file(content: &[u8]) -> TargetFile {
    TargetFile {
        custom: None,
        hashes: hashes_of(content),
        length: content.len() as u64,
        extra: BTreeMap::new(),
    }
}

pub fn delegated_role(
    name: &str,
    keys: &[&PrivateKey],
    paths: &[&str],
    terminating: bool,
) -> DelegatedRole {
    DelegatedRole {
        keyids: keys.iter().map(|k| k.key_id().clone()).collect(),
        name: name.into(),
        path_hash_prefixes: None,
        paths: Some(paths.iter().map(|p| p.to_string()).collect()),
        terminating,
        threshold: 1,
        extra: BTreeMap::new(),
    }
}

/// A one-key-per-role repository, version 1 everywhere.
pub struct Repo {
    pub root_keys: Vec<PrivateKey>,
    pub timestamp_key: PrivateKey,
    pub snapshot_key: PrivateKey,
    pub targets_key: PrivateKey,
    pub root: Root,
    pub timestamp: Timestamp,
    pub snapshot: Snapshot,
    pub targets: Targets,
    pub delegated: BTreeMap<String, (Targets, Vec<Rc<PrivateKey>>)>,
}

impl Repo {
    pub fn new() -> Repo {
        let root_keys = vec![key()];
        let (timestamp_key, snapshot_key, targets_key) = (key(), key(), key());
        let root = Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: expires_in(365),
            keys: key_map(&[&root_keys[0], &timestamp_key, &snapshot_key, &targets_key]),
            roles: [
                ("root".to_string(), role_keys(&[&root_keys[0]], 1)),
                ("timestamp".to_string(), role_keys(&[&timestamp_key], 1)),
                ("snapshot".to_string(), role_keys(&[&snapshot_key], 1)),
                ("targets".to_string(), role_keys(&[&targets_key], 1)),
            ]
            .into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        let targets = Targets {
            type_: "targets".into(),
            delegations: None,
            expires: expires_in(90),
            spec_version: SPEC_VERSION.into(),
            targets: BTreeMap::new(),
            version: 1,
            extra: BTreeMap::new(),
        };
        let snapshot = Snapshot {
            type_: "snapshot".into(),
            expires: expires_in(7),
            meta: [("targets.json".to_string(), MetaFile::new(1))].into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        let timestamp = Timestamp {
            type_: "timestamp".into(),
            expires: expires_in(1),
            meta: [("snapshot.json".to_string(), MetaFile::new(1))].into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        Repo {
            root_keys,
            timestamp_key,
            snapshot_key,
            targets_key,
            root,
            timestamp,
            snapshot,
            targets,
            delegated: BTreeMap::new(),
        }
    }

    pub fn root_bytes(&self) -> Vec<u8> {
        sign(&self.root, &self.root_keys.iter().collect::<Vec<_>>())
    }
    pub fn timestamp_bytes(&self) -> Vec<u8> {
        sign(&self.timestamp, &[&self.timestamp_key])
    }
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        sign(&self.snapshot, &[&self.snapshot_key])
    }
    pub fn targets_bytes(&self) -> Vec<u8> {
        sign(&self.targets, &[&self.targets_key])
    }
    pub fn role_bytes(&self, role: &str) -> Vec<u8> {
        let (meta, keys) = &self.delegated[role];
        sign(meta, &keys.iter().map(|k| &**k).collect::<Vec<_>>())
    }

    /// Add a delegation from top-level targets to `name`, signed by a fresh key.
    pub fn delegate(&mut self, name: &str, paths: &[&str], terminating: bool) {
        let k = key();
        add_delegation(&mut self.targets, name, paths, terminating, &k);
        let mut meta = self.targets.clone();
        meta.delegations = None;
        meta.targets.clear();
        self.delegated.insert(name.into(), (meta, vec![Rc::new(k)]));
        self.snapshot
            .meta
            .insert(format!("{name}.json"), MetaFile::new(1));
    }
}

/// `delegator` delegates `role` for `paths` to `key` (threshold 1).
pub fn add_delegation(
    delegator: &mut Targets,
    role: &str,
    paths: &[&str],
    terminating: bool,
    key: &PrivateKey,
) {
    let delegations = delegator.delegations.get_or_insert_with(|| Delegations {
        keys: BTreeMap::new(),
        roles: Some(Vec::new()),
        succinct_roles: None,
        extra: BTreeMap::new(),
    });
    delegations
        .keys
        .insert(key.key_id().clone(), key.public_key().clone());
    delegations
        .roles
        .get_or_insert_with(Vec::new)
        .push(delegated_role(role, &[key], paths, terminating));
}
