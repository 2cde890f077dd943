//! A PURE-2 bundle on removable media, read without trusting it: a directory, or the same tree
//! in an uncompressed `.tar`. Security comes only from the metadata; this module makes sure
//! that reading the bundle can never reach anything outside it, nor take unbounded memory:
//!
//! - every path is relative, `/`-separated, with no empty, `.` or `..` segment;
//! - in a directory, each segment is opened relative to its parent with `O_NOFOLLOW`
//!   (`openat`), and must be a directory or a regular file as it was when looked at, so a
//!   symlink (even one swapped in while the bundle is read) or a device node is refused;
//! - a `.tar` is indexed entry by entry, nothing extracted: only regular files and
//!   directories, each path once; a link, a device or a sparse entry refuses the bundle;
//! - every read has a cap: metadata by [`ferry_core::refresh::Limits`], an image by its
//!   signed length, the rest by the constants below.
//!
//! Receipts are written the same way: `receipts/` under a bundle directory, or
//! `FILE.tar.receipts/` beside a `.tar` (an archive is not rewritten in place).

use crate::error::{io_at, Error, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Where PURE-2 puts everything of a bundle but its index and receipts.
pub const WELL_KNOWN: &str = ".well-known";
/// The most entries a `.tar` bundle may have, and a bundle directory listing may return.
pub const MAX_ENTRIES: usize = 100_000;
/// The cap on `bundle.json`, the informational index.
pub const MAX_INDEX_BYTES: u64 = 8 << 20;

/// An opened bundle.
#[derive(Debug)]
pub struct Stick {
    path: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Dir {
        root: OwnedFd,
    },
    Tar {
        /// Regular files by path below the bundle's top (where `.well-known/` is).
        files: BTreeMap<String, TarFile>,
        /// Directories, by the same rule.
        dirs: std::collections::BTreeSet<String>,
    },
}

/// Where a regular file's bytes lie in the archive.
#[derive(Debug, Clone, Copy)]
struct TarFile {
    offset: u64,
    size: u64,
}

fn unsafe_path(path: &str, reason: impl Into<String>) -> Error {
    Error::BundleUnsafe {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The segments of `path`, refused unless it is a plain relative path.
fn segments(path: &str) -> Result<Vec<&str>> {
    if path.is_empty() || path.starts_with('/') {
        return Err(unsafe_path(path, "is empty or absolute"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        if part.is_empty() || *part == "." || *part == ".." || part.contains('\0') {
            return Err(unsafe_path(
                path,
                "has an empty, '.' or '..' segment or a NUL; expected a path inside the bundle",
            ));
        }
    }
    Ok(parts)
}

fn errno_io(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from(e)
}

impl Stick {
    /// Open the bundle at `path`: a directory, or a regular file ending in `.tar`.
    pub fn open(path: &Path) -> Result<Stick> {
        let meta = std::fs::metadata(path).map_err(io_at(path))?;
        if meta.is_dir() {
            let root = rustix::fs::open(
                path,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_at(path)(errno_io(e)))?;
            return Ok(Stick {
                path: path.to_owned(),
                kind: Kind::Dir { root },
            });
        }
        let is_tar = path.extension().is_some_and(|e| e == "tar");
        if !meta.is_file() || !is_tar {
            return Err(Error::Config(format!(
                "{}: not a bundle; expected a directory or a .tar file",
                path.display()
            )));
        }
        let (files, dirs) = index_tar(path)?;
        Ok(Stick {
            path: path.to_owned(),
            kind: Kind::Tar { files, dirs },
        })
    }

    /// The bundle as given: its directory, or the `.tar` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_tar(&self) -> bool {
        matches!(self.kind, Kind::Tar { .. })
    }

    /// Whether the regular file `path` is in the bundle.
    pub fn exists(&self, path: &str) -> Result<bool> {
        match self.open_file(path) {
            Ok(_) => Ok(true),
            Err(Error::BundleMissing { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The whole of `path`, refusing more than `max_len` bytes.
    pub fn read(&self, path: &str, max_len: u64) -> Result<Vec<u8>> {
        let (mut reader, size) = self.open_file(path)?;
        if size > max_len {
            return Err(Error::BundleTooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        let mut bytes = Vec::new();
        let shown = self.shown(path);
        reader
            .by_ref()
            .take(max_len.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_at(&shown))?;
        if bytes.len() as u64 > max_len {
            return Err(Error::BundleTooLarge {
                path: path.to_owned(),
                limit: max_len,
            });
        }
        Ok(bytes)
    }

    /// A reader of the regular file `path` and its size as it is now (a directory's file may
    /// still grow: readers cap what they take themselves).
    pub fn open_file(&self, path: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let parts = segments(path)?;
        match &self.kind {
            Kind::Dir { root } => {
                let fd = open_below(root, path, &parts, false)?;
                let file = File::from(fd);
                let size = file.metadata().map_err(io_at(self.shown(path)))?.len();
                Ok((Box::new(file), size))
            }
            Kind::Tar { files, .. } => {
                let entry = files.get(path).ok_or_else(|| Error::BundleMissing {
                    path: path.to_owned(),
                })?;
                let mut file = File::open(&self.path).map_err(io_at(&self.path))?;
                file.seek(SeekFrom::Start(entry.offset))
                    .map_err(io_at(&self.path))?;
                Ok((Box::new(file.take(entry.size)), entry.size))
            }
        }
    }

    /// The names of the regular files directly in directory `dir` (at most
    /// [`MAX_ENTRIES`]); empty when there is no such directory.
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        let parts = segments(dir)?;
        match &self.kind {
            Kind::Dir { root } => {
                let fd = match open_below(root, dir, &parts, true) {
                    Ok(fd) => fd,
                    Err(Error::BundleMissing { .. }) => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                };
                let shown = self.shown(dir);
                let reader = rustix::fs::Dir::new(fd).map_err(|e| io_at(&shown)(errno_io(e)))?;
                let mut names = Vec::new();
                for entry in reader {
                    let entry = entry.map_err(|e| io_at(&shown)(errno_io(e)))?;
                    if entry.file_type() != FileType::RegularFile {
                        continue;
                    }
                    let Ok(name) = entry.file_name().to_str() else {
                        continue;
                    };
                    names.push(name.to_owned());
                    if names.len() > MAX_ENTRIES {
                        return Err(unsafe_path(dir, "has too many entries"));
                    }
                }
                names.sort();
                Ok(names)
            }
            Kind::Tar { files, .. } => {
                let prefix = format!("{dir}/");
                Ok(files
                    .keys()
                    .filter_map(|p| p.strip_prefix(&prefix))
                    .filter(|rest| !rest.contains('/'))
                    .map(str::to_owned)
                    .collect())
            }
        }
    }

    /// Whether directory `dir` is in the bundle.
    pub fn has_dir(&self, dir: &str) -> Result<bool> {
        let parts = segments(dir)?;
        match &self.kind {
            Kind::Dir { root } => match open_below(root, dir, &parts, true) {
                Ok(_) => Ok(true),
                Err(Error::BundleMissing { .. }) => Ok(false),
                Err(e) => Err(e),
            },
            Kind::Tar { dirs, files } => {
                let prefix = format!("{dir}/");
                Ok(dirs.contains(dir) || files.keys().any(|p| p.starts_with(&prefix)))
            }
        }
    }

    /// For messages: where `path` of the bundle is.
    fn shown(&self, path: &str) -> PathBuf {
        match &self.kind {
            Kind::Dir { .. } => self.path.join(path),
            Kind::Tar { .. } => PathBuf::from(format!("{}:{path}", self.path.display())),
        }
    }

    /// Where this bundle's receipts go: `receipts/` in a bundle directory, or
    /// `FILE.tar.receipts/` beside a `.tar`.
    pub fn receipt_dir(&self) -> Result<ReceiptDir> {
        match &self.kind {
            Kind::Dir { root } => Ok(ReceiptDir {
                parent: rustix::io::dup(root).map_err(|e| io_at(&self.path)(errno_io(e)))?,
                name: "receipts".into(),
                shown: self.path.join("receipts"),
            }),
            Kind::Tar { .. } => {
                let parent = self
                    .path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let file = self
                    .path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| {
                        Error::Config(format!("{}: not a UTF-8 name", self.path.display()))
                    })?;
                let fd = rustix::fs::open(
                    parent,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| io_at(parent)(errno_io(e)))?;
                let name = format!("{file}.receipts");
                Ok(ReceiptDir {
                    parent: fd,
                    shown: parent.join(&name),
                    name,
                })
            }
        }
    }
}

/// Open `path` (its `parts`) below `root`, one segment at a time, never following a link.
/// The last segment must be a directory when `dir`, else a regular file.
fn open_below(root: &OwnedFd, path: &str, parts: &[&str], dir: bool) -> Result<OwnedFd> {
    let mut current: Option<OwnedFd> = None;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let want_dir = !last || dir;
        let parent = current.as_ref().unwrap_or(root);
        let seen = match rustix::fs::statat(parent, *part, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => {
                return Err(Error::BundleMissing {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(unsafe_path(path, errno_io(e).to_string())),
        };
        let kind = FileType::from_raw_mode(seen.st_mode);
        match kind {
            FileType::Directory if want_dir => {}
            FileType::RegularFile if !want_dir => {}
            FileType::Symlink => {
                return Err(unsafe_path(
                    path,
                    format!("{part} is a symbolic link; links are never followed in a bundle"),
                ))
            }
            FileType::Directory | FileType::RegularFile => {
                return Err(Error::BundleMissing {
                    path: path.to_owned(),
                })
            }
            other => {
                return Err(unsafe_path(
                    path,
                    format!("{part} is a {other:?}, expected a directory or a regular file"),
                ))
            }
        }
        let mut flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
        if want_dir {
            flags |= OFlags::DIRECTORY;
        }
        let fd = rustix::fs::openat(parent, *part, flags, Mode::empty())
            .map_err(|e| unsafe_path(path, format!("cannot open {part}: {}", errno_io(e))))?;
        // What was opened is what was looked at (nothing was swapped in between).
        let opened =
            rustix::fs::fstat(&fd).map_err(|e| unsafe_path(path, errno_io(e).to_string()))?;
        if (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino) {
            return Err(unsafe_path(
                path,
                format!("{part} changed while it was opened"),
            ));
        }
        current = Some(fd);
    }
    current.ok_or_else(|| unsafe_path(path, "is empty"))
}

type TarIndex = (
    BTreeMap<String, TarFile>,
    std::collections::BTreeSet<String>,
);

/// Every entry of the archive at `path`, nothing extracted: regular files with their data's
/// offset, and directories, by path below the bundle's top (the archive's root, or its one
/// top-level directory, whichever holds `.well-known/`).
fn index_tar(path: &Path) -> Result<TarIndex> {
    let file = File::open(path).map_err(io_at(path))?;
    let mut archive = tar::Archive::new(file);
    let mut files = BTreeMap::new();
    let mut dirs = std::collections::BTreeSet::new();
    let bad =
        |entry: &str, reason: &str| unsafe_path(&format!("{}:{entry}", path.display()), reason);
    // Seeking over each entry's data: indexing reads the headers only, so a bundle's images
    // are read once, when they stream to the ECUs.
    let entries = archive.entries_with_seek().map_err(io_at(path))?;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(bad("", "has too many entries"));
        }
        let entry = entry.map_err(io_at(path))?;
        let name = entry.path().map_err(io_at(path))?;
        let name = name
            .to_str()
            .ok_or_else(|| bad(&name.to_string_lossy(), "is not UTF-8"))?
            .to_owned();
        let trimmed = name.trim_start_matches("./").trim_end_matches('/');
        if trimmed.is_empty() || trimmed == "." {
            continue;
        }
        segments(trimmed)
            .map_err(|_| bad(&name, "has an absolute path or a '.' or '..' segment"))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            dirs.insert(trimmed.to_owned());
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(bad(
                &name,
                &format!("is a {kind:?} entry; a bundle holds only regular files and directories"),
            ));
        }
        let data = TarFile {
            offset: entry.raw_file_position(),
            size: entry.size(),
        };
        if files.insert(trimmed.to_owned(), data).is_some() {
            return Err(bad(&name, "is in the archive twice"));
        }
    }
    // Where the bundle's top is: the archive's root, or its single top-level directory.
    let well_known = format!("{WELL_KNOWN}/");
    if files.keys().any(|p| p.starts_with(&well_known)) {
        return Ok((files, dirs));
    }
    let tops: std::collections::BTreeSet<&str> = files
        .keys()
        .filter_map(|p| p.split_once('/').map(|(top, _)| top))
        .collect();
    let [top] = tops.into_iter().collect::<Vec<_>>()[..] else {
        return Err(bad(
            "",
            "has no .well-known/ at its root nor in one top-level directory",
        ));
    };
    let prefix = format!("{top}/");
    let files = files
        .iter()
        .filter_map(|(p, f)| p.strip_prefix(&prefix).map(|rest| (rest.to_owned(), *f)))
        .collect();
    let dirs = dirs
        .iter()
        .filter_map(|d| d.strip_prefix(&prefix).map(str::to_owned))
        .collect();
    Ok((files, dirs))
}

/// Where receipts are written: directory `name` in `parent`, created if missing.
#[derive(Debug)]
pub struct ReceiptDir {
    parent: OwnedFd,
    name: String,
    shown: PathBuf,
}

impl ReceiptDir {
    /// The directory, for messages.
    pub fn path(&self) -> &Path {
        &self.shown
    }

    /// Write `bytes` as `{stem}-N.json`, N one more than the highest there (from 1), without
    /// following a link and without replacing a file. Returns the file's path.
    pub fn write_next(&self, stem: &str, bytes: &[u8]) -> Result<PathBuf> {
        let shown = &self.shown;
        match rustix::fs::mkdirat(&self.parent, self.name.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_at(shown)(errno_io(e))),
        }
        let dir = rustix::fs::openat(
            &self.parent,
            self.name.as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            unsafe_path(
                &shown.display().to_string(),
                format!(
                    "cannot open the receipts directory without following a link: {}",
                    errno_io(e)
                ),
            )
        })?;
        let mut next = highest(&dir, stem, shown)? + 1;
        for _ in 0..1000 {
            let name = format!("{stem}-{next}.json");
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            match rustix::fs::openat(&dir, name.as_str(), flags, Mode::from_raw_mode(0o644)) {
                Ok(fd) => {
                    let path = shown.join(&name);
                    let mut file = File::from(fd);
                    file.write_all(bytes).map_err(io_at(&path))?;
                    file.sync_all().map_err(io_at(&path))?;
                    rustix::fs::fsync(&dir).map_err(|e| io_at(shown)(errno_io(e)))?;
                    return Ok(path);
                }
                Err(rustix::io::Errno::EXIST) => next += 1,
                Err(e) => return Err(io_at(shown.join(&name))(errno_io(e))),
            }
        }
        Err(unsafe_path(
            &shown.display().to_string(),
            "has no free receipt name",
        ))
    }
}

/// The highest N of `{stem}-N.json` in `dir` (0 if none).
fn highest(dir: &OwnedFd, stem: &str, shown: &Path) -> Result<u64> {
    let reader = rustix::fs::Dir::read_from(dir).map_err(|e| io_at(shown)(errno_io(e)))?;
    let prefix = format!("{stem}-");
    let mut max = 0;
    for (count, entry) in reader.enumerate() {
        if count > MAX_ENTRIES {
            break;
        }
        let entry = entry.map_err(|e| io_at(shown)(errno_io(e)))?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        let n = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = n {
            max = max.max(n);
        }
    }
    Ok(max)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_out_of_the_bundle_are_refused() {
        for bad in ["", "/etc/passwd", "a/../b", "./a", "a//b", "..", "a/"] {
            assert!(segments(bad).is_err(), "{bad:?}");
        }
        assert_eq!(segments("a/b.json").unwrap(), ["a", "b.json"]);
    }

    #[test]
    fn a_directory_bundle_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path();
        std::fs::create_dir_all(b.join(".well-known/metadata")).unwrap();
        std::fs::write(b.join(".well-known/metadata/a.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink(b.join("outside"), b.join(".well-known/metadata/link.json"))
            .unwrap();
        std::os::unix::fs::symlink(b.join(".well-known/metadata"), b.join(".well-known/m2"))
            .unwrap();
        let stick = Stick::open(b).unwrap();
        assert_eq!(
            stick.read(".well-known/metadata/a.json", 10).unwrap(),
            b"{}"
        );
        for path in [".well-known/metadata/link.json", ".well-known/m2/a.json"] {
            let err = stick.read(path, 10).unwrap_err();
            assert!(matches!(err, Error::BundleUnsafe { .. }), "{path}: {err}");
        }
        assert!(matches!(
            stick.read(".well-known/metadata/none.json", 10),
            Err(Error::BundleMissing { .. })
        ));
        assert!(matches!(
            stick.read(".well-known/metadata/a.json", 1),
            Err(Error::BundleTooLarge { .. })
        ));
        assert_eq!(stick.list(".well-known/metadata").unwrap(), ["a.json"]);
        let receipts = stick.receipt_dir().unwrap();
        let first = receipts.write_next("VIN", b"1").unwrap();
        let second = receipts.write_next("VIN", b"2").unwrap();
        assert!(
            first.ends_with("receipts/VIN-1.json"),
            "{}",
            first.display()
        );
        assert!(
            second.ends_with("receipts/VIN-2.json"),
            "{}",
            second.display()
        );
    }

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8])]) -> tempfile::NamedTempFile {
        let file = tempfile::Builder::new().suffix(".tar").tempfile().unwrap();
        let mut builder = tar::Builder::new(file.reopen().unwrap());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").unwrap();
            }
            builder.append_data(&mut header, path, *data).unwrap();
        }
        builder.finish().unwrap();
        file
    }

    #[test]
    fn a_tar_bundle_is_read_entry_by_entry_with_or_without_a_top_directory() {
        use tar::EntryType::Regular;
        for top in ["", "bundle/"] {
            let a = format!("{top}.well-known/metadata/a.json");
            let b = format!("{top}bundle.json");
            let file = tar_with(&[(&a, Regular, b"{\"a\":1}"), (&b, Regular, b"{}")]);
            let stick = Stick::open(file.path()).unwrap();
            assert_eq!(
                stick.read(".well-known/metadata/a.json", 100).unwrap(),
                b"{\"a\":1}"
            );
            assert_eq!(stick.list(".well-known/metadata").unwrap(), ["a.json"]);
            assert!(stick.has_dir(".well-known").unwrap());
        }
    }

    #[test]
    fn a_tar_with_a_link_or_a_path_twice_is_refused() {
        use tar::EntryType::{Regular, Symlink};
        let file = tar_with(&[
            (".well-known/metadata/a.json", Regular, b"{}"),
            (".well-known/images/x", Symlink, b""),
        ]);
        let err = Stick::open(file.path()).unwrap_err();
        assert!(matches!(err, Error::BundleUnsafe { .. }), "{err}");
        let file = tar_with(&[
            (".well-known/metadata/a.json", Regular, b"{}"),
            (".well-known/metadata/a.json", Regular, b"{}"),
        ]);
        let err = Stick::open(file.path()).unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }
}
