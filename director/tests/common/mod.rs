//! What the Director tests share: a director root with fresh online keys, and signed ECU
//! version reports.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use ferry_core::manifest::{EcuVersionReport, FileInfo, InstalledImage};
use ferry_core::metadata::{hashes_of, Expires, Signed};
use ferry_director::root::{build_root, import_root, sign_root, RoleSpec, RootSpec};
use ferry_director::vehicle_metadata::OnlineKeys;
use ferry_director::Store;
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A director root (version 1, one ed25519 key per role) imported into `store`: its bytes,
/// the online keys it names and its root key.
pub fn director_root(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> (Vec<u8>, OnlineKeys, Arc<PrivateKey>) {
    let gen = || Arc::new(PrivateKey::generate(KeyKind::Ed25519).unwrap());
    let (root_key, targets, snapshot, timestamp) = (gen(), gen(), gen(), gen());
    let one = |k: &Arc<PrivateKey>| RoleSpec {
        keys: vec![k.public_key().clone()],
        threshold: 1,
    };
    let spec = RootSpec {
        root: one(&root_key),
        targets: one(&targets),
        snapshot: one(&snapshot),
        timestamp: one(&timestamp),
    };
    let root = build_root(&spec, 1, Expires::after(now, Duration::days(365))).unwrap();
    let bytes = sign_root(root, &[root_key.as_ref() as &dyn Signer]).unwrap();
    import_root(store, &bytes, now).unwrap();
    let keys = OnlineKeys {
        targets: vec![targets],
        snapshot: vec![snapshot],
        timestamp: vec![timestamp],
    };
    (bytes, keys, root_key)
}

/// A version report of ECU `serial` with an installed `fw.bin`, signed by `key`.
pub fn report(
    serial: &str,
    nonce: &str,
    at: DateTime<Utc>,
    key: &PrivateKey,
) -> Signed<EcuVersionReport> {
    let mut r = Signed::new(EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.into(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: hashes_of(b"fw"),
                length: 2,
                extra: BTreeMap::new(),
            },
            filepath: "fw.bin".into(),
            extra: BTreeMap::new(),
        },
        last_install: None,
        nonce: nonce.into(),
        provides: [("rootfs-image.version".to_string(), "1".to_string())].into(),
        time: Expires::after(at, Duration::zero()),
        extra: BTreeMap::new(),
    });
    r.sign(key as &dyn Signer).unwrap();
    r
}

/// A published Image repository served over HTTP on 127.0.0.1 by ferry-image-repo's own
/// static server, for assignment tests that must read real signed metadata.
pub struct ImageRepo {
    pub dir: tempfile::TempDir,
    /// The base URL serving `metadata/` and `targets/`.
    pub url: String,
    /// `metadata/1.root.json`: what the operator pins in the Director.
    pub root: Vec<u8>,
    /// Each target as the editor signed it.
    pub published: BTreeMap<String, ferry_core::metadata::TargetFile>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ImageRepo {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Target options with Uptane custom fields: `hardware_ids`, `domain`, software name and
/// version, provides and depends.
pub fn image(
    name: &str,
    hardware_ids: &[&str],
    domain: &str,
    version: &str,
    provides: &[(&str, &str)],
    depends: &[(&str, &str)],
) -> ferry_image_repo::TargetOptions {
    use ferry_core::metadata::uptane::{DependsValue, Domain};
    ferry_image_repo::TargetOptions {
        name: Some(name.into()),
        hardware_ids: hardware_ids.iter().map(|h| (*h).to_owned()).collect(),
        domain: Some(Domain::parse(domain)),
        software_name: None,
        version: Some(version.into()),
        provides: provides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        depends: depends
            .iter()
            .map(|(k, v)| ((*k).to_owned(), DependsValue::One((*v).to_owned())))
            .collect(),
        clears: None,
        release_counter: 3,
        role: None,
    }
}

/// Publish `images` (each file's content is its name repeated) in a new repository whose
/// top-level targets delegate to 4 hashed bins, so every lookup resolves a delegation, and
/// serve it.
pub fn image_repo(images: &[ferry_image_repo::TargetOptions]) -> ImageRepo {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let now = Utc::now();
    let (mut repo, _) =
        ferry_image_repo::init(&repo_dir, now, &ferry_image_repo::InitOptions::default()).unwrap();
    repo.make_bins(4, None).unwrap();
    let mut published = BTreeMap::new();
    for options in images {
        let name = options.name.clone().unwrap();
        let file = dir.path().join(name.replace('/', "_"));
        std::fs::write(&file, name.repeat(10)).unwrap();
        let (name, target) = repo.add_target(&file, options, &mut |_| {}).unwrap();
        published.insert(name, target);
    }
    repo.publish().unwrap();
    let root = std::fs::read(repo_dir.join("metadata/1.root.json")).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(ferry_image_repo::serve::bind(
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(ferry_image_repo::serve::serve(
        repo_dir,
        listener,
        std::future::pending(),
    ));
    ImageRepo {
        dir,
        url,
        root,
        published,
        runtime: Some(runtime),
    }
}

impl ImageRepo {
    /// Rewrite every published targets role file (top-level and bins) with `edit` applied to
    /// its JSON, leaving signatures, snapshot and timestamp as they were: what an attacker
    /// with write access to the file server (but no keys) can do.
    pub fn tamper_targets(&self, edit: impl Fn(&mut serde_json::Value)) {
        let metadata = self.dir.path().join("repo/metadata");
        for entry in std::fs::read_dir(&metadata).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".targets.json") || name.contains(".bins-")) {
                continue;
            }
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut doc);
            std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        }
    }
}
