//! A vehicle's view of the backend, in memory: a Director repository whose targets a test signs
//! directly and an Image repository, both from core's test builders; an ECU with its key,
//! roots and config in a temporary directory; and the bundle the Primary would send.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

#[path = "../../../core/tests/common/mod.rs"]
pub mod tuf;

use ferry_core::metadata::{hashes_of, MetaFile, TargetFile};
use ferry_keys::{KeyKind, PrivateKey};
use ferry_secondary::verify::{Bundle, RepoBundle};
use ferry_secondary::{Config, Ecu, VerificationMode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
pub use tuf::{expires_in, key, now, sign, Repo};

pub const SERIAL: &str = "ivi-1";
pub const VIN: &str = "WVW-SECONDARY-1";
pub const HW: &str = "ivi-a53";

/// Bump every role of `repo` to a new version, as a repository publishing again would.
pub fn publish(repo: &mut Repo) {
    repo.targets.version += 1;
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(repo.targets.version));
    let names: Vec<String> = repo.delegated.keys().cloned().collect();
    for name in names {
        let (meta, _) = repo.delegated.get_mut(&name).unwrap();
        meta.version += 1;
        let v = meta.version;
        repo.snapshot
            .meta
            .insert(format!("{name}.json"), MetaFile::new(v));
    }
    repo.snapshot.version += 1;
    repo.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(repo.snapshot.version));
    repo.timestamp.version += 1;
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

pub fn repo_bundle(repo: &Repo, roots: &[Vec<u8>]) -> RepoBundle {
    RepoBundle {
        root: roots.iter().cloned().map(text).collect(),
        timestamp: Some(text(repo.timestamp_bytes())),
        snapshot: Some(text(repo.snapshot_bytes())),
        targets: text(repo.targets_bytes()),
        delegations: repo
            .delegated
            .keys()
            .map(|name| (name.clone(), text(repo.role_bytes(name))))
            .collect(),
    }
}

/// An Image repository target.
pub fn image_target(content: &[u8], custom: Value) -> TargetFile {
    let mut t = tuf::target_file(content);
    t.custom = Some(custom);
    t
}

/// The custom metadata of app `name` at `version` with `release_counter`.
pub fn app_custom(name: &str, version: &str, release_counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": release_counter, "domain": "app",
            "name": name, "version": version })
}

/// A Director target naming `serial` with `hardware_id`.
pub fn director_target(content: &[u8], serial: &str, hardware_id: &str) -> TargetFile {
    let mut t = tuf::target_file(content);
    t.custom = Some(json!({ "ecuIdentifiers": { serial: { "hardwareId": hardware_id } } }));
    t
}

pub struct Vehicle {
    pub dir: tempfile::TempDir,
    pub director: Repo,
    pub image: Repo,
    /// Roots newer than the shipped ones, sent in every bundle.
    pub director_roots: Vec<Vec<u8>>,
    pub image_roots: Vec<Vec<u8>>,
    pub config: Config,
    /// Partial verification's pinned Director targets key is `director.targets_key`.
    pub ecu_key: PathBuf,
}

impl Vehicle {
    pub fn new(mode: VerificationMode) -> Vehicle {
        let dir = tempfile::tempdir().unwrap();
        let mut director = Repo::new();
        // The Director names the vehicle its targets are for (DESIGN.md "Vehicle binding").
        director
            .targets
            .extra
            .insert("custom".into(), json!({ "vin": VIN }));
        let image = Repo::new();
        let root = dir.path();
        std::fs::write(root.join("director.root.json"), director.root_bytes()).unwrap();
        std::fs::write(root.join("image.root.json"), image.root_bytes()).unwrap();
        std::fs::write(
            root.join("director-targets.pub.json"),
            serde_json::to_vec(director.targets_key.public_key()).unwrap(),
        )
        .unwrap();
        let ecu_key = root.join("ecu.key.pem");
        PrivateKey::generate(KeyKind::Ed25519)
            .unwrap()
            .write_file(&ecu_key, None)
            .unwrap();
        let config = Config {
            vin: VIN.into(),
            serial: SERIAL.into(),
            hardware_id: HW.into(),
            key: ecu_key.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: root.join("data"),
            verification: mode,
            director_root: Some(root.join("director.root.json")),
            image_root: Some(root.join("image.root.json")),
            director_targets_key: Some(root.join("director-targets.pub.json")),
            offline_targets_key: None,
            apps_dir: root.join("apps"),
            app_health_check: None,
            app_health_timeout_secs: None,
            app: Default::default(),
            confirm_api: None,
            max_metadata_bytes: ferry_secondary::config::DEFAULT_MAX_METADATA_BYTES,
            http: Default::default(),
            tls: None,
            initial_provides: [("rootfs-image.python.version".into(), "3.12".into())].into(),
            os: None,
            ostree: None,
            snapshot: None,
            rauc: None,
            container: Default::default(),
            modules: Default::default(),
        };
        Vehicle {
            dir,
            director,
            image,
            director_roots: Vec::new(),
            image_roots: Vec::new(),
            config,
            ecu_key,
        }
    }

    pub fn ecu(&self) -> Ecu {
        Ecu::open(self.config.clone()).unwrap()
    }

    /// Offer `content` as `name`: in the Image repository with `custom`, and assigned to this
    /// ECU by the Director. Both repositories publish new versions.
    pub fn offer(&mut self, name: &str, content: &[u8], custom: Value) {
        self.image.targets.targets.clear();
        self.image
            .targets
            .targets
            .insert(name.into(), image_target(content, custom));
        self.director.targets.targets.clear();
        self.director
            .targets
            .targets
            .insert(name.into(), director_target(content, SERIAL, HW));
        self.publish();
    }

    pub fn publish(&mut self) {
        publish(&mut self.director);
        publish(&mut self.image);
    }

    pub fn bundle(&self) -> Vec<u8> {
        serde_json::to_vec(&Bundle {
            director: repo_bundle(&self.director, &self.director_roots),
            image: Some(repo_bundle(&self.image, &self.image_roots)),
            offline: None,
        })
        .unwrap()
    }

    pub fn app_file(&self, app: &str, file: &str) -> Option<Vec<u8>> {
        std::fs::read(self.config.apps_dir.join(app).join(file)).ok()
    }
}

/// Hashes of `content`, for assertions.
pub fn hashes(content: &[u8]) -> BTreeMap<String, String> {
    hashes_of(content)
}
