//! The directory a command works in: the user's (`--dir`, always kept) or a fresh one under
//! the system's temporary directory, removed on drop unless `keep` is set (a failed run keeps
//! it for inspection).

use crate::error::{io_at, Result};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    /// `dir` if given (created, kept), else `<tmp>/<prefix>-<pid>-<nanos>` (removed on drop).
    pub fn new(dir: Option<PathBuf>, prefix: &str) -> Result<WorkDir> {
        let (path, keep) = match dir {
            Some(d) => (d, true),
            None => {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!("{prefix}-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), false)
            }
        };
        std::fs::create_dir_all(&path).map_err(io_at(&path))?;
        let path = path.canonicalize().map_err(io_at(&path))?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
