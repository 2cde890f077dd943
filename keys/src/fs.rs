//! Durable file writes: the one way Ferry replaces a file whose old or new content must survive
//! a crash or power loss whole (trusted metadata, published metadata, container pointers), and
//! the one way it creates a file or directory only its owner may read (tokens, databases, key
//! directories).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `bytes` to the new file `path`, mode 0600 from open(2) on (never readable by others,
/// not even for a moment), fsynced. An existing file is refused (`AlreadyExists`), not
/// overwritten; a failed write leaves no file behind.
pub fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        drop(file);
        let _ = std::fs::remove_file(path);
    }
    written
}

/// Create the directory `path` (and missing parents) with mode 0700: only the owner may list
/// or enter it. A directory that already exists is left as it is, unless others can read or
/// enter it, in which case its mode is narrowed to 0700.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    let meta = std::fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Create the empty file `path` with mode 0600 if it does not exist yet (so a database opened
/// there afterwards, and the journal files SQLite gives the same mode, are the owner's alone).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Replace `path` with `bytes`: a temporary file beside it (named `.ferry-*.part`, so never
/// mistaken for a `.json` file), fsynced, renamed over `path`, then the directory fsynced so
/// the rename itself survives a power loss. A crash leaves the old bytes or the new, never a
/// torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".ferry-")
        .suffix(".part")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        super::write_atomic(&path, b"old").unwrap();
        super::write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn secrets_and_private_directories_are_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("ops.token");
        super::write_secret(&token, b"secret").unwrap();
        assert_eq!(mode(&token), 0o600);
        let again = super::write_secret(&token, b"other").unwrap_err();
        assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&token).unwrap(), b"secret");

        let keys = dir.path().join("d/keys");
        super::create_private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700);
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
        super::create_private_dir(&keys).unwrap();
        assert_eq!(mode(&keys), 0o700, "an open existing directory is narrowed");

        let db = dir.path().join("director.db");
        super::create_private_file(&db).unwrap();
        super::create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
    }
}
