//! A minimal repository writer for interop tests: typed ferry-core metadata, signed with
//! ferry-keys, written as a consistent-snapshot TUF repository (`metadata/`, `targets/`).
//! The Image repository crate is the real editor; this exists so the foundation can be tested
//! against other clients before it.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use ferry_core::metadata::{
    hashes_of, DelegatedRole, Delegations, Expires, MetaFile, Role, RoleKeys, Root, Signed,
    Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp, SPEC_VERSION,
};
use ferry_core::{Clock, SystemClock};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn targets_meta(now: DateTime<Utc>) -> Targets {
    Targets {
        type_: "targets".into(),
        delegations: None,
        expires: Expires::after(now, Duration::days(90)),
        spec_version: SPEC_VERSION.into(),
        targets: BTreeMap::new(),
        version: 1,
        extra: BTreeMap::new(),
    }
}

fn role_keys(keys: &[&PrivateKey], threshold: u32) -> RoleKeys {
    RoleKeys {
        keyids: keys.iter().map(|k| k.key_id().clone()).collect(),
        threshold,
        extra: BTreeMap::new(),
    }
}

fn write_signed<T: Role>(path: &Path, meta: T, signers: &[&PrivateKey]) -> Vec<u8> {
    let mut signed = Signed::new(meta);
    for s in signers {
        signed.sign(*s as &dyn Signer).unwrap();
    }
    let bytes = signed.to_bytes().unwrap();
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[derive(Debug)]
pub struct FerryRepo {
    pub dir: PathBuf,
    now: DateTime<Utc>,
    pub root_keys: Vec<PrivateKey>,
    pub timestamp_key: PrivateKey,
    pub snapshot_key: PrivateKey,
    pub targets_key: PrivateKey,
    pub targets: Targets,
    pub delegated: BTreeMap<String, (Targets, Arc<PrivateKey>)>,
    blobs: BTreeMap<String, Vec<u8>>,
}

impl FerryRepo {
    /// A repository whose roles are all signed with keys of `kind`; root has two keys and a
    /// threshold of two.
    pub fn new(dir: &Path, kind: KeyKind) -> FerryRepo {
        let gen = || PrivateKey::generate(kind).unwrap();
        FerryRepo {
            dir: dir.to_owned(),
            now: SystemClock.now(),
            root_keys: vec![gen(), gen()],
            timestamp_key: gen(),
            snapshot_key: gen(),
            targets_key: gen(),
            targets: targets_meta(SystemClock.now()),
            delegated: BTreeMap::new(),
            blobs: BTreeMap::new(),
        }
    }

    /// Add a target to `role` ("targets", a delegated role, or any name under hashed bins).
    pub fn add_target(&mut self, role: &str, name: &str, content: &[u8]) {
        let file = TargetFile {
            custom: Some(serde_json::json!({"hardwareIds": ["test-hw"], "releaseCounter": 1})),
            hashes: hashes_of(content),
            length: content.len() as u64,
            extra: BTreeMap::new(),
        };
        let role = match self
            .targets
            .delegations
            .as_ref()
            .and_then(|d| d.succinct_roles.as_ref())
        {
            Some(bins) if role != "targets" => bins.bin_for(name),
            _ => role.to_owned(),
        };
        if role == "targets" {
            self.targets.targets.insert(name.into(), file);
        } else {
            self.delegated
                .get_mut(&role)
                .unwrap()
                .0
                .targets
                .insert(name.into(), file);
        }
        self.blobs.insert(name.into(), content.to_vec());
    }

    /// Delegate `paths` from top-level targets to a new role signed by a fresh key of `kind`.
    pub fn delegate(&mut self, name: &str, paths: &[&str], kind: KeyKind) {
        let key = Arc::new(PrivateKey::generate(kind).unwrap());
        let d = self.targets.delegations.get_or_insert_with(|| Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            extra: BTreeMap::new(),
        });
        d.keys
            .insert(key.key_id().clone(), key.public_key().clone());
        d.roles.as_mut().unwrap().push(DelegatedRole {
            keyids: vec![key.key_id().clone()],
            name: name.into(),
            path_hash_prefixes: None,
            paths: Some(paths.iter().map(|p| p.to_string()).collect()),
            terminating: false,
            threshold: 1,
            extra: BTreeMap::new(),
        });
        self.delegated
            .insert(name.into(), (targets_meta(self.now), key));
    }

    /// Delegate everything to `2^bit_length` TAP 15 hashed bins signed by one key of `kind`.
    pub fn hashed_bins(&mut self, bit_length: u32, kind: KeyKind) {
        let key = Arc::new(PrivateKey::generate(kind).unwrap());
        let bins = SuccinctRoles {
            bit_length,
            keyids: vec![key.key_id().clone()],
            name_prefix: "bins".into(),
            threshold: 1,
            extra: BTreeMap::new(),
        };
        for name in bins.bin_names() {
            self.delegated
                .insert(name, (targets_meta(self.now), key.clone()));
        }
        self.targets.delegations = Some(Delegations {
            keys: [(key.key_id().clone(), key.public_key().clone())].into(),
            roles: None,
            succinct_roles: Some(bins),
            extra: BTreeMap::new(),
        });
    }

    fn root(&self) -> Root {
        let all: Vec<&PrivateKey> = self
            .root_keys
            .iter()
            .chain([&self.timestamp_key, &self.snapshot_key, &self.targets_key])
            .collect();
        Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: Expires::after(self.now, Duration::days(365)),
            keys: all
                .iter()
                .map(|k| (k.key_id().clone(), k.public_key().clone()))
                .collect(),
            roles: [
                (
                    "root".to_string(),
                    role_keys(&self.root_keys.iter().collect::<Vec<_>>(), 2),
                ),
                (
                    "timestamp".to_string(),
                    role_keys(&[&self.timestamp_key], 1),
                ),
                ("snapshot".to_string(), role_keys(&[&self.snapshot_key], 1)),
                ("targets".to_string(), role_keys(&[&self.targets_key], 1)),
            ]
            .into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        }
    }

    /// Write every role (version 1) and every target (at `dir/HASH.name` for each hash).
    pub fn write(&self) {
        let md = self.dir.join("metadata");
        let tg = self.dir.join("targets");
        std::fs::create_dir_all(&md).unwrap();
        let root_keys: Vec<&PrivateKey> = self.root_keys.iter().collect();
        let root = write_signed(&md.join("1.root.json"), self.root(), &root_keys);
        std::fs::write(md.join("root.json"), root).unwrap();

        let mut snapshot_meta = BTreeMap::new();
        for (name, (meta, key)) in &self.delegated {
            write_signed(&md.join(format!("1.{name}.json")), meta.clone(), &[key]);
            snapshot_meta.insert(format!("{name}.json"), MetaFile::new(1));
        }
        write_signed(
            &md.join("1.targets.json"),
            self.targets.clone(),
            &[&self.targets_key],
        );
        snapshot_meta.insert("targets.json".into(), MetaFile::new(1));
        let snapshot = Snapshot {
            type_: "snapshot".into(),
            expires: Expires::after(self.now, Duration::days(7)),
            meta: snapshot_meta,
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        let snapshot_bytes =
            write_signed(&md.join("1.snapshot.json"), snapshot, &[&self.snapshot_key]);
        let mut meta = MetaFile::new(1);
        meta.length = Some(snapshot_bytes.len() as u64);
        meta.hashes = Some(hashes_of(&snapshot_bytes));
        let timestamp = Timestamp {
            type_: "timestamp".into(),
            expires: Expires::after(self.now, Duration::days(1)),
            meta: [("snapshot.json".to_string(), meta)].into(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        write_signed(
            &md.join("timestamp.json"),
            timestamp,
            &[&self.timestamp_key],
        );

        for (name, content) in &self.blobs {
            let (dir, file) = name
                .rsplit_once('/')
                .map_or(("", name.as_str()), |(d, f)| (d, f));
            let target_dir = tg.join(dir);
            std::fs::create_dir_all(&target_dir).unwrap();
            for hash in hashes_of(content).values() {
                std::fs::write(target_dir.join(format!("{hash}.{file}")), content).unwrap();
            }
        }
    }
}
