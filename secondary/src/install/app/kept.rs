//! Earlier versions of an app kept after a commit (`[app] keep_previous`, default 1), as the
//! container store keeps images: `<apps_dir>/.<name>.kept/<n>/`, `n` counting up with each
//! commit, so the highest is the most recent. The replaced copy moves there by one rename
//! (same directory tree, so same file system): a commit costs no copy, and a crash leaves
//! the copy either still the backup or already kept, never lost or doubled.

use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The kept versions of one app.
#[derive(Debug)]
pub struct Kept {
    dir: PathBuf,
}

impl Kept {
    pub fn new(apps_dir: &Path, name: &str) -> Kept {
        Kept {
            dir: apps_dir.join(format!(".{name}.kept")),
        }
    }

    /// The kept copies' numbers, oldest first.
    pub fn numbers(&self) -> Result<Vec<u64>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut numbers = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            // Anything else in the directory is not ours to count (or delete).
            if let Some(n) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// The directory of kept copy `n`.
    pub fn path(&self, n: u64) -> PathBuf {
        self.dir.join(n.to_string())
    }

    /// Move `backup` (the replaced copy) in as the most recent, if it is there, then keep
    /// only the `keep` most recent. Safe to repeat after a crash at any point.
    pub fn keep(&self, backup: &Path, keep: usize) -> Result<()> {
        if keep > 0 && fs::symlink_metadata(backup).is_ok() {
            fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
            let next = self.numbers()?.last().map_or(1, |n| n + 1);
            let to = self.path(next);
            fs::rename(backup, &to)
                .map_err(|e| Error::io(format!("{} -> {}", backup.display(), to.display()), e))?;
        }
        let numbers = self.numbers()?;
        let excess = numbers.len().saturating_sub(keep);
        for n in &numbers[..excess] {
            let path = self.path(*n);
            match fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        if keep == 0 {
            match fs::remove_dir(&self.dir) {
                Ok(()) => {}
                Err(e)
                    if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty) => {}
                Err(e) => return Err(Error::io(&self.dir, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn backup(apps: &Path, content: &str) -> PathBuf {
        let b = apps.join(".demo.backup");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("demo.bin"), content).unwrap();
        b
    }

    #[test]
    fn keeps_the_most_recent_copies_and_deletes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::new(dir.path(), "demo");
        for v in ["v1", "v2", "v3"] {
            let b = backup(dir.path(), v);
            kept.keep(&b, 2).unwrap();
            assert!(!b.exists(), "the backup moved in");
        }
        assert_eq!(kept.numbers().unwrap(), [2, 3]);
        assert_eq!(fs::read(kept.path(3).join("demo.bin")).unwrap(), b"v3");
        assert_eq!(fs::read(kept.path(2).join("demo.bin")).unwrap(), b"v2");
        // Repeated after a crash: nothing to move, nothing more deleted.
        kept.keep(&dir.path().join(".demo.backup"), 2).unwrap();
        assert_eq!(kept.numbers().unwrap(), [2, 3]);
    }

    #[test]
    fn keep_0_keeps_nothing_and_leaves_no_directory() {
        let dir = tempfile::tempdir().unwrap();
        let kept = Kept::new(dir.path(), "demo");
        let b = backup(dir.path(), "v1");
        kept.keep(&b, 1).unwrap();
        let b = backup(dir.path(), "v2");
        kept.keep(&b, 0).unwrap();
        // keep = 0 leaves the backup for the caller to delete; earlier copies go.
        assert!(b.exists());
        assert!(kept.numbers().unwrap().is_empty());
        assert!(!dir.path().join(".demo.kept").exists());
    }
}
