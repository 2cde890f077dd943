//! Apply a root file system archive (tar or tar.zst) onto a writable snapshot of the running root so that
//! only what changed is written: a file whose bytes, mode and owner already match is left as
//! it is, so its extents stay shared with the snapshot it came from (btrfs copy-on-write);
//! everything the archive does not hold is removed. Streamed through one fixed buffer.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const BUFFER: usize = 64 * 1024;

/// What applying an archive did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Files written (new or changed).
    pub written: u64,
    /// Files left as they were (identical), sharing their extents.
    pub unchanged: u64,
    /// Paths the archive no longer holds, removed.
    pub removed: u64,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::OsCheck {
        check: "rootfs archive",
        found: format!("{}: {}", path.display(), reason.into()),
        expected: "a tar of a root file system with relative paths and no `..`".into(),
    }
}

/// The entry's path relative to the root, refused if it could leave it.
fn relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return Err(bad(path, "absolute or `..` path")),
        }
    }
    Ok(out)
}

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The tar stream of the archive at `path`: a plain tar, or a tar.zst (told by its magic, not
/// its name), decompressed as it is read. The decoder's default window limit (128 MiB) bounds
/// its memory whatever the frame asks for.
pub fn open_archive(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = std::io::BufReader::with_capacity(BUFFER, file);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(|e| Error::io(path, e))?;
    if head.starts_with(&ZSTD_MAGIC) {
        let decoder =
            zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| Error::io(path, e))?;
        return Ok(Box::new(decoder));
    }
    Ok(Box::new(reader))
}

/// What of the running root survives an archive, besides what the archive ships.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// `/etc` merged: files under `etc/` that the archive does not hold are kept (local
    /// configuration, host keys, machine-id carry over) instead of removed.
    pub merge_etc: bool,
    /// Files (relative paths) that keep the running root's version even when the archive
    /// ships them, where the running root has them.
    pub keep: HashSet<PathBuf>,
}

impl Local {
    fn keeps_unlisted(&self, rel: &Path) -> bool {
        self.merge_etc && rel.starts_with("etc")
    }
}

/// Apply the tar `archive` onto `root`, keeping what `local` says.
pub fn apply(archive: impl Read, root: &Path, local: &Local) -> Result<Applied> {
    let mut tar = tar::Archive::new(archive);
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut applied = Applied::default();
    let mut buf = vec![0u8; BUFFER];
    let entries = tar.entries().map_err(|e| Error::io(root, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(root, e))?;
        let raw = entry.path().map_err(|e| Error::io(root, e))?.into_owned();
        let rel = relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        // Every parent counts as seen: an archive may leave out directory entries.
        for ancestor in rel.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                seen.insert(ancestor.to_owned());
            }
        }
        seen.insert(rel.clone());
        let dest = root.join(&rel);
        if local.keep.contains(&rel) && std::fs::symlink_metadata(&dest).is_ok() {
            applied.unchanged += 1;
            continue;
        }
        if let Some(parent) = dest.parent() {
            refuse_symlinked_parent(root, &rel)?;
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let header = entry.header();
        let mode = header.mode().map_err(|e| Error::io(&dest, e))? & 0o7777;
        let owner = (
            header.uid().map_err(|e| Error::io(&dest, e))? as u32,
            header.gid().map_err(|e| Error::io(&dest, e))? as u32,
        );
        let kind = header.entry_type();
        if kind.is_dir() {
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove(&dest)?;
                    std::fs::create_dir(&dest).map_err(|e| Error::io(&dest, e))?;
                }
                Err(_) => std::fs::create_dir(&dest).map_err(|e| Error::io(&dest, e))?,
            }
            set_mode_owner(&dest, mode, owner)?;
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| Error::io(&dest, e))?
                .ok_or_else(|| bad(&raw, "a symlink without a target"))?
                .into_owned();
            if std::fs::read_link(&dest).ok().as_deref() != Some(target.as_path()) {
                if std::fs::symlink_metadata(&dest).is_ok() {
                    remove(&dest)?;
                }
                std::os::unix::fs::symlink(&target, &dest).map_err(|e| Error::io(&dest, e))?;
                applied.written += 1;
            } else {
                applied.unchanged += 1;
            }
            let _ = std::os::unix::fs::lchown(&dest, Some(owner.0), Some(owner.1));
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| Error::io(&dest, e))?
                .ok_or_else(|| bad(&raw, "a hard link without a target"))?;
            let source = root.join(relative(&target)?);
            if std::fs::symlink_metadata(&dest).is_ok() {
                remove(&dest)?;
            }
            std::fs::hard_link(&source, &dest).map_err(|e| Error::io(&dest, e))?;
            applied.written += 1;
        } else if kind.is_file() {
            let size = entry.size();
            if write_if_changed(&mut entry, size, &dest, &mut buf)? {
                applied.written += 1;
            } else {
                applied.unchanged += 1;
            }
            set_mode_owner(&dest, mode, owner)?;
        } else {
            // Device nodes, FIFOs: a booted system makes them (devtmpfs, systemd).
            tracing::warn!(path = %raw.display(), "rootfs archive: skipping a special file");
        }
    }
    applied.removed = remove_unseen(root, root, &seen, local)?;
    Ok(applied)
}

/// A path inside the archive must not be written through a symlink the archive made earlier.
fn refuse_symlinked_parent(root: &Path, rel: &Path) -> Result<()> {
    let mut at = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            at.push(c);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(bad(rel, "a path through a symlink"));
            }
        }
    }
    Ok(())
}

fn set_mode_owner(path: &Path, mode: u32, owner: (u32, u32)) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if (meta.uid(), meta.gid()) != owner {
        std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1))
            .map_err(|e| Error::io(path, e))?;
    }
    if meta.permissions().mode() & 0o7777 != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Stream `size` bytes of `entry` to `dest`, comparing with what `dest` holds: nothing is
/// written while they agree; at the first difference the file is rebuilt in a temporary file
/// beside it (the agreeing prefix copied from the old file) and renamed over it. Returns
/// whether it wrote.
fn write_if_changed(entry: &mut impl Read, size: u64, dest: &Path, buf: &mut [u8]) -> Result<bool> {
    let mut old = match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_file() && m.len() == size => {
            Some(File::open(dest).map_err(|e| Error::io(dest, e))?)
        }
        Ok(m) if m.is_dir() => {
            remove(dest)?;
            None
        }
        _ => None,
    };
    let mut compared = 0u64;
    let mut old_buf = vec![0u8; buf.len()];
    let mut pending: Option<usize> = None;
    if let Some(file) = old.as_mut() {
        loop {
            let n = read_full(entry, buf).map_err(|e| Error::io(dest, e))?;
            if n == 0 {
                return Ok(false);
            }
            let m = read_full(file, &mut old_buf[..n]).map_err(|e| Error::io(dest, e))?;
            if m != n || old_buf[..n] != buf[..n] {
                pending = Some(n);
                break;
            }
            compared += n as u64;
        }
    }
    let tmp = dest.with_file_name(format!(
        ".ferry-new.{}",
        dest.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let mut out = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    if compared > 0 {
        let mut prefix = File::open(dest)
            .map_err(|e| Error::io(dest, e))?
            .take(compared);
        std::io::copy(&mut prefix, &mut out).map_err(|e| Error::io(&tmp, e))?;
    }
    if let Some(n) = pending {
        out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
    }
    loop {
        let n = read_full(entry, buf).map_err(|e| Error::io(dest, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
    }
    out.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(out);
    if std::fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        remove(dest)?;
    }
    std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))?;
    Ok(true)
}

fn remove(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path).map_err(|e| Error::io(path, e))
    } else {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))
    }
}

/// Remove everything under `dir` whose path (relative to `root`) the archive did not hold,
/// unless `local` keeps it.
fn remove_unseen(root: &Path, dir: &Path, seen: &HashSet<PathBuf>, local: &Local) -> Result<u64> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
        let is_dir = entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir();
        if local.keeps_unlisted(&rel) && !seen.contains(&rel) {
            continue;
        }
        if !seen.contains(&rel) {
            remove(&path)?;
            removed += 1;
        } else if is_dir {
            removed += remove_unseen(root, &path, seen, local)?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn only_changed_files_are_written_and_the_rest_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let first = archive(&[("etc/a", b"one"), ("usr/b", b"same"), ("usr/gone", b"x")]);
        let done = apply(&first[..], root, &Local::default()).unwrap();
        assert_eq!((done.written, done.unchanged, done.removed), (3, 0, 0));
        let inode = std::fs::metadata(root.join("usr/b")).unwrap().ino();
        let second = archive(&[("etc/a", b"two"), ("usr/b", b"same")]);
        let done = apply(&second[..], root, &Local::default()).unwrap();
        assert_eq!((done.written, done.unchanged, done.removed), (1, 1, 1));
        assert_eq!(std::fs::read(root.join("etc/a")).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(root.join("usr/b")).unwrap().ino(),
            inode,
            "an identical file is left in place"
        );
        assert!(!root.join("usr/gone").exists());
    }

    #[test]
    fn a_path_leaving_the_root_is_refused() {
        // tar::Builder refuses to write `..`; build the header by hand.
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[b'x'; 512]);
        bytes.extend_from_slice(&[0; 1024]);
        let dir = tempfile::tempdir().unwrap();
        let e = apply(&bytes[..], &dir.path().join("root"), &Local::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("rootfs archive check failed"), "{e}");
    }

    #[test]
    fn a_merged_etc_keeps_local_files_and_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let first = archive(&[("etc/os-release", b"1"), ("etc/hostname", b"factory")]);
        apply(&first[..], root, &Local::default()).unwrap();
        std::fs::write(root.join("etc/hostname"), "car-42").unwrap();
        std::fs::write(root.join("etc/machine-id"), "abc").unwrap();
        std::fs::write(root.join("usr-local"), "x").unwrap();
        let local = Local {
            merge_etc: true,
            keep: [PathBuf::from("etc/hostname")].into(),
        };
        let second = archive(&[("etc/os-release", b"2"), ("etc/hostname", b"factory")]);
        let done = apply(&second[..], root, &local).unwrap();
        assert_eq!(std::fs::read(root.join("etc/os-release")).unwrap(), b"2");
        assert_eq!(std::fs::read(root.join("etc/hostname")).unwrap(), b"car-42");
        assert_eq!(std::fs::read(root.join("etc/machine-id")).unwrap(), b"abc");
        assert!(
            !root.join("usr-local").exists(),
            "outside /etc, the image wins"
        );
        assert_eq!((done.written, done.unchanged, done.removed), (1, 1, 1));
        // Without the merge, the image's /etc is the whole /etc.
        apply(&second[..], root, &Local::default()).unwrap();
        assert_eq!(
            std::fs::read(root.join("etc/hostname")).unwrap(),
            b"factory"
        );
        assert!(!root.join("etc/machine-id").exists());
    }
}
