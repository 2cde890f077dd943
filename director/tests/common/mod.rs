//! What the Director tests share: a director root with fresh online keys and signed ECU
//! version reports (here); a published Image repository served on 127.0.0.1
//! (`image_repo`); the Director served on its own runtime and the requests made of it
//! (`server`, with `http` for device tokens and `tls` for device certificates); a registered
//! vehicle and what its primary sends and verifies (`car`).
#![allow(dead_code, clippy::unwrap_used)]

pub mod car;
pub mod http;
pub mod image_repo;
pub mod server;
pub mod tls;

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
