//! Where things live in a repository directory, and reading what is published.
//!
//! ```text
//! DIR/ferry-repo.toml   keys, thresholds, lifetimes
//! DIR/keys/             generated private keys (0600); never served
//! DIR/metadata/         published metadata, served as is (N.root.json, root.json,
//!                       timestamp.json, N.snapshot.json, N.ROLE.json)
//! DIR/targets/          target files at the spec path dir/HASH.name, served as is
//! DIR/staging/          edited roles waiting for `publish` (signed envelopes, version already
//!                       bumped, signatures possibly missing); never served
//! ```

use crate::error::{io_at, Error, Result};
use ferry_core::metadata::{Role, Root, Signed, Snapshot, Targets, Timestamp};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

use ferry_core::layout::metadata_file_name;
pub use ferry_core::layout::quote;

#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_owned(),
        }
    }
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata")
    }
    pub fn targets(&self) -> PathBuf {
        self.dir.join("targets")
    }
    pub fn staging(&self) -> PathBuf {
        self.dir.join("staging")
    }
    pub fn keys(&self) -> PathBuf {
        self.dir.join("keys")
    }

    pub fn versioned(&self, role: &str, version: u64) -> PathBuf {
        self.metadata()
            .join(metadata_file_name(role, Some(version)))
    }

    pub fn staged_path(&self, role: &str) -> PathBuf {
        self.staging().join(metadata_file_name(role, None))
    }

    pub fn published_root(&self) -> Result<Signed<Root>> {
        read_json(&self.metadata().join("root.json"))
    }

    pub fn published_timestamp(&self) -> Result<Signed<Timestamp>> {
        read_json(&self.metadata().join("timestamp.json"))
    }

    pub fn published_snapshot(&self, version: u64) -> Result<Signed<Snapshot>> {
        read_json(&self.versioned("snapshot", version))
    }

    pub fn published_targets(&self, role: &str, version: u64) -> Result<Signed<Targets>> {
        read_json(&self.versioned(role, version))
    }

    pub fn staged<T: Role>(&self, role: &str) -> Result<Option<Signed<T>>> {
        let path = self.staged_path(role);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    pub fn write_staged<T: Role>(&self, role: &str, doc: &Signed<T>) -> Result<()> {
        std::fs::create_dir_all(self.staging()).map_err(io_at(self.staging()))?;
        write_atomic(&self.staged_path(role), &doc.to_bytes()?)
    }

    pub fn unstage(&self, role: &str) -> Result<()> {
        let path = self.staged_path(role);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_at(path)(e)),
            _ => Ok(()),
        }
    }

    /// Names of every staged role (decoded).
    pub fn staged_roles(&self) -> Result<Vec<String>> {
        let dir = self.staging();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(dir)(e)),
        };
        let mut roles = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_at(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                roles.push(
                    percent_encoding::percent_decode_str(stem)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
        }
        roles.sort();
        Ok(roles)
    }
}

pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// [`ferry_keys::fs::write_atomic`], with this crate's error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    ferry_keys::fs::write_atomic(path, bytes).map_err(io_at(path))
}
