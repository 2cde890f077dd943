//! Trusted metadata on disk: one file per role, unversioned names, exactly the bytes received.

use crate::error::{io_at, Result};
use std::path::{Path, PathBuf};

pub use ferry_core::layout::{quote, quote_path};

#[derive(Debug, Clone)]
pub struct MetadataStore {
    dir: PathBuf,
}

impl MetadataStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MetadataStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }

    /// The persisted bytes of `role`, if any.
    pub fn load(&self, role: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(role);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_at(path)(e)),
        }
    }

    /// Forget `role` (no error if it was not there).
    pub fn remove(&self, role: &str) -> Result<()> {
        let path = self.path(role);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(path)(e)),
        }
    }

    /// Replace `role` atomically (temp file, fsync, rename), so a crash leaves the old or the new
    /// bytes, never a torn file. The temp name does not end in `.json`.
    pub fn persist(&self, role: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(role), bytes)
    }
}

/// [`ferry_keys::fs::write_atomic`], with this crate's error.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    ferry_keys::fs::write_atomic(path, bytes).map_err(io_at(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_python_quote_with_no_safe_chars() {
        assert_eq!(quote("a/b c.json"), "a%2Fb%20c.json");
        assert_eq!(quote("../x"), "..%2Fx");
        assert_eq!(quote("é~_-"), "%C3%A9~_-");
        assert_eq!(quote_path("dir/a b.txt"), "dir/a%20b.txt");
    }
}
