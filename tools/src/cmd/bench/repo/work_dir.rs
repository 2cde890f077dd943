//! Where `ferry bench repo` builds its repositories.

use crate::error::{io_at, Error, Result};
use std::path::{Path, PathBuf};

/// The bench's working directory: the one given (kept), or a fresh temporary one (removed
/// when the bench ends, also on an error).
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
    temporary: bool,
}

impl WorkDir {
    pub(super) fn new(given: Option<&Path>) -> Result<WorkDir> {
        let (path, temporary) = match given {
            Some(dir) => (dir.to_owned(), false),
            None => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                let name = format!("ferry-bench-repo-{}-{nanos}", std::process::id());
                (std::env::temp_dir().join(name), true)
            }
        };
        for part in ["ferry", "flat"] {
            if path.join(part).exists() {
                return Err(Error::Usage(format!(
                    "{} already holds a bench run ({part}/); pick an empty --work-dir",
                    path.display()
                )));
            }
        }
        std::fs::create_dir_all(&path).map_err(io_at(&path))?;
        let path = std::path::absolute(&path).map_err(io_at(&path))?;
        Ok(WorkDir { path, temporary })
    }

    pub(super) fn kept(&self) -> bool {
        !self.temporary
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
