//! Forging signed metadata as an attacker holding some keys would: edit the `signed` part of
//! any repository's JSON document and sign it again with private keys read from PEM files
//! (the repositories' own test keys). Works on plain JSON, so a test can write what our typed
//! metadata would never let it build: expired, rolled back or under-signed documents.
#![allow(clippy::unwrap_used)]

use ferry_keys::{cjson, PrivateKey, Signer};
use serde_json::{json, Value};
use std::path::Path;

/// A plaintext PKCS#8 private key file.
pub fn key(path: &Path) -> PrivateKey {
    PrivateKey::read_file(path, None)
        .unwrap_or_else(|e| panic!("cannot read key {}: {e}", path.display()))
}

pub fn read(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

pub fn to_bytes(doc: &Value) -> Vec<u8> {
    serde_json::to_vec(doc).unwrap()
}

/// Replace every signature of `doc` by signatures of `keys` over the canonical `signed`.
pub fn sign(doc: &mut Value, keys: &[&PrivateKey]) {
    let msg = cjson::to_vec(&doc["signed"]).unwrap();
    let signatures: Vec<Value> = keys
        .iter()
        .map(|k| json!({"keyid": k.key_id(), "sig": hex::encode(k.sign(&msg).unwrap())}))
        .collect();
    doc["signatures"] = Value::Array(signatures);
}

/// Point a `meta` entry (snapshot's view of targets, timestamp's of snapshot) at `bytes` of
/// `version`, keeping the fields the repository chose to list (length, hashes).
pub fn set_meta(entry: &mut Value, bytes: &[u8], version: u64) {
    entry["version"] = json!(version);
    if entry.get("length").is_some() {
        entry["length"] = json!(bytes.len());
    }
    if entry.get("hashes").is_some() {
        entry["hashes"] = json!({"sha256": crate::sha256_hex(bytes)});
    }
}

/// The `signed.version` of a document.
pub fn version(doc: &Value) -> u64 {
    doc["signed"]["version"].as_u64().unwrap()
}

/// Bump `signed.version` by one and return the new version.
pub fn bump(doc: &mut Value) -> u64 {
    let v = version(doc) + 1;
    doc["signed"]["version"] = json!(v);
    v
}
