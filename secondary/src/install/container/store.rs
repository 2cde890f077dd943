//! The content-addressed container store on the data partition:
//!
//! ```text
//! <store>/blobs/sha256/<hex>          every verified blob, once
//! <store>/incoming/                   blobs of the archive being checked (not yet trusted)
//! <store>/images/<name>/<id>/         one image layout per image: oci-layout, index.json and
//!                                     blobs/sha256/<hex> as hard links to the blobs above
//! <store>/refs/current/<name>         the live image's id ("<id>\n")
//! <store>/refs/previous/<name>        the image to roll back to ("\n": none was live); exists
//!                                     only while an update is uncommitted
//! <store>/refs/next/<name>            the image prepared for install
//! ```
//!
//! An image's id is the sha256 of its `index.json`. Layouts link to the shared blobs, so a blob
//! two images share is stored once and a blob's link count tells whether any layout still uses
//! it. Every reference is switched by writing a temporary file and renaming it over the old one.

use super::oci::CheckedArchive;
use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The references kept per image name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    Current,
    Previous,
    Next,
}

impl Ref {
    fn dir(self) -> &'static str {
        match self {
            Ref::Current => "current",
            Ref::Previous => "previous",
            Ref::Next => "next",
        }
    }
}

/// What an import did with the archive's blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Imported {
    /// Blobs new to the store.
    pub stored: usize,
    /// Blobs the store already had: hashed, not written again.
    pub reused: usize,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn missing_ok(result: std::io::Result<()>, path: &Path) -> Result<()> {
    match result {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn create_dirs(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// [`ferry_keys::fs::write_atomic`] into a directory made if missing.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_dirs(dir)?;
    ferry_keys::fs::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

fn file_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn blob(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }

    /// The stored copy of blob `hex`, if the store has it.
    pub fn stored_blob(&self, hex: &str) -> Option<PathBuf> {
        let path = self.blob(hex);
        path.is_file().then_some(path)
    }

    pub fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }

    /// An empty `incoming` directory for the next archive.
    pub fn fresh_incoming(&self) -> Result<PathBuf> {
        self.drop_incoming()?;
        let dir = self.incoming();
        create_dirs(&dir)?;
        Ok(dir)
    }

    pub fn drop_incoming(&self) -> Result<()> {
        let dir = self.incoming();
        missing_ok(fs::remove_dir_all(&dir), &dir)
    }

    pub fn layout(&self, name: &str, id: &str) -> PathBuf {
        self.root.join("images").join(name).join(id)
    }

    /// Move the checked archive's new blobs into the store and build its image layout.
    /// Repeating it after a crash finishes the same work.
    pub fn import(&self, name: &str, checked: &CheckedArchive) -> Result<Imported> {
        let blobs_dir = self.blobs_dir();
        create_dirs(&blobs_dir)?;
        let mut imported = Imported::default();
        for (hex, blob) in &checked.blobs {
            if blob.new {
                fs::rename(&blob.path, self.blob(hex)).map_err(|e| Error::io(&blob.path, e))?;
                imported.stored += 1;
            } else {
                imported.reused += 1;
            }
        }
        sync_dir(&blobs_dir)?;
        let layout = self.layout(name, &checked.id);
        if layout.is_dir() {
            // Built before (only ever renamed into place complete): the same index.json names
            // the same blobs.
            return Ok(imported);
        }
        let images = self.root.join("images").join(name);
        let partial = images.join(format!(".{}.partial", checked.id));
        missing_ok(fs::remove_dir_all(&partial), &partial)?;
        let linked = partial.join("blobs").join("sha256");
        create_dirs(&linked)?;
        for (file, bytes) in [
            ("oci-layout", &checked.oci_layout),
            ("index.json", &checked.index),
        ] {
            let path = partial.join(file);
            fs::write(&path, bytes)
                .and_then(|()| fs::File::open(&path)?.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
        for hex in checked.blobs.keys() {
            let link = linked.join(hex);
            fs::hard_link(self.blob(hex), &link).map_err(|e| Error::io(&link, e))?;
        }
        sync_dir(&linked)?;
        sync_dir(&partial)?;
        fs::rename(&partial, &layout).map_err(|e| Error::io(&layout, e))?;
        sync_dir(&images)?;
        Ok(imported)
    }

    fn ref_path(&self, kind: Ref, name: &str) -> PathBuf {
        self.root.join("refs").join(kind.dir()).join(name)
    }

    /// The id a reference holds: `None` without the file, `Some("")` for "no image".
    pub fn read_ref(&self, kind: Ref, name: &str) -> Result<Option<String>> {
        let path = self.ref_path(kind, name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let id = text.trim();
        let valid = id.is_empty() || (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(Error::StateCorrupt {
                path,
                what: "container reference",
                reason: format!("{id:?} is not an image id (64 hex digits) nor empty"),
            });
        }
        Ok(Some(id.to_owned()))
    }

    pub fn write_ref(&self, kind: Ref, name: &str, id: &str) -> Result<()> {
        write_atomic(&self.ref_path(kind, name), format!("{id}\n").as_bytes())
    }

    pub fn remove_ref(&self, kind: Ref, name: &str) -> Result<()> {
        let path = self.ref_path(kind, name);
        missing_ok(fs::remove_file(&path), &path)?;
        if let Some(dir) = path.parent().filter(|d| d.is_dir()) {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Image names that have a `kind` reference.
    pub fn names(&self, kind: Ref) -> Result<Vec<String>> {
        let dir = self.root.join("refs").join(kind.dir());
        Ok(file_names(&dir)?
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect())
    }

    /// Drop `name`'s layouts that no reference names, then every blob no layout links to.
    /// Returns the number of blobs removed.
    fn kept_path(&self, name: &str) -> PathBuf {
        self.root.join("refs").join("kept").join(name)
    }

    /// The images of `name` kept after earlier commits, most recent first.
    pub fn kept(&self, name: &str) -> Result<Vec<String>> {
        let path = self.kept_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut ids = Vec::new();
        for id in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::StateCorrupt {
                    path,
                    what: "container kept images",
                    reason: format!("{id:?} is not an image id (64 hex digits)"),
                });
            }
            ids.push(id.to_owned());
        }
        Ok(ids)
    }

    /// Put `replaced` first among the kept images of `name` (none when empty: no image was
    /// live), never `current`, at most `keep` of them. Repeatable.
    pub fn keep(
        &self,
        name: &str,
        replaced: &str,
        current: Option<&str>,
        keep: usize,
    ) -> Result<()> {
        let mut ids: Vec<String> = Vec::new();
        for id in std::iter::once(replaced.to_owned()).chain(self.kept(name)?) {
            if !id.is_empty() && Some(id.as_str()) != current && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids.truncate(keep);
        let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
        write_atomic(&self.kept_path(name), text.as_bytes())
    }

    pub fn collect_garbage(&self, name: &str) -> Result<usize> {
        let mut keep = self.kept(name)?;
        for kind in [Ref::Current, Ref::Previous, Ref::Next] {
            keep.extend(self.read_ref(kind, name)?.filter(|id| !id.is_empty()));
        }
        let images = self.root.join("images").join(name);
        for dir in file_names(&images)? {
            if !keep.contains(&dir) {
                let path = images.join(&dir);
                missing_ok(fs::remove_dir_all(&path), &path)?;
            }
        }
        let blobs_dir = self.blobs_dir();
        let mut removed = 0;
        for hex in file_names(&blobs_dir)? {
            let path = blobs_dir.join(&hex);
            let links = fs::symlink_metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .nlink();
            if links <= 1 {
                missing_ok(fs::remove_file(&path), &path)?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&blobs_dir)?;
        }
        Ok(removed)
    }
}
