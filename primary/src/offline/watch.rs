//! `run` watching `[offline] source` for bundles: the source itself when it holds
//! `.well-known/` (a stick mounted there whose root is the bundle), else each directory in it
//! that holds `.well-known/` and each regular `.tar` file in it (one level; links are not
//! followed).
//!
//! No boot loop on a stick left in: whatever is there when the watcher starts counts as seen
//! and is never installed; a bundle is installed when it appears, once. Removing it (the
//! stick unmounted, the file deleted) forgets it, so inserting it again installs it again. A
//! bundle is known by its place and the identity of what is there (device and inode of the
//! directory or file, and the size and modification time of the `.tar` or of `bundle.json`):
//! writing a receipt into a bundle does not make it new; another stick at the same place
//! does.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The most entries of the source looked at.
const MAX_SCANNED: usize = 1024;

/// What identifies what is at a bundle's place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    /// Size and modification time (s, ns) of the `.tar`, or of `bundle.json` in a directory.
    size: u64,
    mtime: (i64, i64),
}

#[derive(Debug)]
pub struct Watcher {
    source: PathBuf,
    seen: BTreeMap<PathBuf, Fingerprint>,
}

impl Watcher {
    /// Start watching `source`: every bundle there now is taken as already seen.
    pub fn start(source: &Path) -> Watcher {
        let seen = scan(source);
        for path in seen.keys() {
            tracing::info!(bundle = %path.display(), "offline bundle present at start: ignored until it is removed and inserted again");
        }
        Watcher {
            source: source.to_owned(),
            seen,
        }
    }

    /// The bundles that appeared since the last look, each reported once.
    pub fn poll(&mut self) -> Vec<PathBuf> {
        let now = scan(&self.source);
        let new = now
            .iter()
            .filter(|(path, print)| self.seen.get(*path) != Some(print))
            .map(|(path, _)| path.clone())
            .collect();
        for path in self.seen.keys().filter(|p| !now.contains_key(*p)) {
            tracing::info!(bundle = %path.display(), "offline bundle removed");
        }
        self.seen = now;
        new
    }
}

/// The bundles at `source` now.
fn scan(source: &Path) -> BTreeMap<PathBuf, Fingerprint> {
    let mut found = BTreeMap::new();
    if let Some(print) = bundle_dir(source) {
        found.insert(source.to_owned(), print);
        return found;
    }
    let Ok(entries) = std::fs::read_dir(source) else {
        return found;
    };
    for entry in entries.flatten().take(MAX_SCANNED) {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Some(print) = bundle_dir(&path) {
                found.insert(path, print);
            }
        } else if meta.is_file() && path.extension().is_some_and(|e| e == "tar") {
            found.insert(path, fingerprint(&meta, &meta));
        }
    }
    found
}

/// `dir`'s fingerprint when it is a bundle directory (it holds `.well-known/`).
fn bundle_dir(dir: &Path) -> Option<Fingerprint> {
    let meta = std::fs::symlink_metadata(dir).ok()?;
    let well_known = std::fs::symlink_metadata(dir.join(super::stick::WELL_KNOWN)).ok()?;
    if !meta.is_dir() || !well_known.is_dir() {
        return None;
    }
    let index = std::fs::symlink_metadata(dir.join(super::INDEX))
        .ok()
        .filter(|m| m.is_file())
        .unwrap_or_else(|| well_known.clone());
    Some(fingerprint(&meta, &index))
}

fn fingerprint(place: &std::fs::Metadata, content: &std::fs::Metadata) -> Fingerprint {
    Fingerprint {
        dev: place.dev(),
        ino: place.ino(),
        size: content.size(),
        mtime: (content.mtime(), content.mtime_nsec()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn make_bundle(dir: &Path) {
        std::fs::create_dir_all(dir.join(".well-known/metadata")).unwrap();
        std::fs::write(dir.join("bundle.json"), b"{}").unwrap();
    }

    #[test]
    fn a_bundle_present_at_start_is_ignored_until_it_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("media");
        std::fs::create_dir(&source).unwrap();
        let left_in = source.join("left-in");
        make_bundle(&left_in);
        let mut watcher = Watcher::start(&source);
        assert!(watcher.poll().is_empty());
        // A receipt written into it changes nothing.
        std::fs::create_dir(left_in.join("receipts")).unwrap();
        std::fs::write(left_in.join("receipts/V-1.json"), b"{}").unwrap();
        assert!(watcher.poll().is_empty());
        // Removed, then inserted again: new, once.
        std::fs::rename(&left_in, tmp.path().join("away")).unwrap();
        assert!(watcher.poll().is_empty());
        std::fs::rename(tmp.path().join("away"), &left_in).unwrap();
        assert_eq!(watcher.poll(), std::slice::from_ref(&left_in));
        assert!(watcher.poll().is_empty());
        // A .tar appearing; a link to a bundle is not one.
        std::fs::write(source.join("b.tar"), b"").unwrap();
        std::os::unix::fs::symlink(&left_in, source.join("link")).unwrap();
        assert_eq!(watcher.poll(), [source.join("b.tar")]);
    }

    #[test]
    fn the_source_itself_may_be_the_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let source = tmp.path().join("stick");
        let mut watcher = Watcher::start(&source);
        make_bundle(&source);
        assert_eq!(watcher.poll(), std::slice::from_ref(&source));
        std::fs::remove_dir_all(&source).unwrap();
        assert!(watcher.poll().is_empty());
    }
}
