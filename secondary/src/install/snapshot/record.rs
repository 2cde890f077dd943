//! What each kept snapshot holds, so an operator can go back to any of them: the image it was
//! installed from (target, length, hashes, custom), written beside the snapshots when its
//! install commits and deleted with the snapshot. A snapshot without a record (the factory
//! root, or one made by hand) cannot be rolled back to: Ferry would not know what it provides.

use crate::error::{Error, Result};
use crate::state::InstalledImage;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the records live, under the mounted top level.
pub const RECORDS: &str = "ferry/records";
/// A record is a target's metadata: far below this, and never read past it.
const MAX_RECORD: u64 = 1 << 20;

fn path(mount: &Path, n: u64) -> PathBuf {
    mount.join(RECORDS).join(format!("{n}.json"))
}

/// Write snapshot `n`'s record (complete or not at all: a temporary file renamed over).
pub fn write(mount: &Path, n: u64, image: &InstalledImage) -> Result<()> {
    let dir = mount.join(RECORDS);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let bytes = serde_json::to_vec_pretty(image).map_err(|e| Error::OsCheck {
        check: "snapshot record",
        found: e.to_string(),
        expected: "an installed image that serializes".into(),
    })?;
    let target = path(mount, n);
    let tmp = target.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))
}

/// Snapshot `n`'s record, if it has one.
pub fn read(mount: &Path, n: u64) -> Result<Option<InstalledImage>> {
    let p = path(mount, n);
    let file = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&p, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_RECORD + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&p, e))?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(Error::OsCheck {
            check: "snapshot record",
            found: format!("{} is over {MAX_RECORD} bytes", p.display()),
            expected: "a record Ferry wrote".into(),
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::OsCheck {
            check: "snapshot record",
            found: format!("{}: {e}", p.display()),
            expected: "a record Ferry wrote".into(),
        })
}

pub fn remove(mount: &Path, n: u64) -> Result<()> {
    let p = path(mount, n);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&p, e)),
        _ => Ok(()),
    }
}
