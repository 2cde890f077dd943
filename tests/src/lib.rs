//! Support for Ferry's end-to-end and interop tests: locating binaries, a python-tuf
//! virtualenv, and local servers on 127.0.0.1.

pub mod bins;
pub mod btrfs;
pub mod daemon;
pub mod forge;
pub mod http;
pub mod ostree;
pub mod parsers;
pub mod process;
pub mod python;
pub mod rauc;
pub mod softhsm;
pub mod static_http;

use std::path::PathBuf;

/// The workspace's target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("target"))
        .unwrap_or_else(|| PathBuf::from("target"))
}

pub mod repo_writer;
pub mod vehicle_sim;

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
