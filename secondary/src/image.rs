//! Receiving an image: streamed from any reader into a staging file, bounded by the signed
//! length and checked against every signed hash as the bytes arrive. Memory stays flat (one
//! fixed buffer); a refused image leaves nothing behind.

use crate::error::{Error, Result};
use crate::verify::Assignment;
use ferry_core::metadata::HashCheck;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

const BUFFER: usize = 64 * 1024;

/// An image whose length and every hash matched its verified target, fsynced to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedImage {
    pub path: PathBuf,
    pub target_name: String,
}

/// Stream `reader` into `staging_dir`, checked against `assignment`. More bytes than signed is
/// refused as endless data the moment they arrive; too few, or a wrong hash, at the end.
pub fn receive(
    reader: &mut dyn Read,
    staging_dir: &Path,
    assignment: &Assignment,
) -> Result<StagedImage> {
    let name = assignment.target_name();
    let target = assignment.target();
    let mut check =
        HashCheck::new(name, Some(target.length), Some(&target.hashes))?.require_hashes()?;
    std::fs::create_dir_all(staging_dir).map_err(|e| Error::io(staging_dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".image-")
        .suffix(".part")
        .tempfile_in(staging_dir)
        .map_err(|e| Error::io(staging_dir, e))?;
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("image stream for {name}"), e)),
        };
        check.update(&buf[..n]).map_err(|e| match e {
            ferry_core::Error::TooLong { limit, .. } => Error::EndlessData {
                target: name.to_owned(),
                limit,
            },
            other => other.into(),
        })?;
        tmp.write_all(&buf[..n])
            .map_err(|e| Error::io(tmp.path(), e))?;
    }
    check.finish()?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(tmp.path(), e))?;
    // A unique name per upload: an upload that finishes after its target was replaced must
    // never overwrite the image received for the new one.
    let path = tmp
        .into_temp_path()
        .keep()
        .map_err(|e| Error::io(staging_dir, e.error))?;
    let ready = path.with_extension("ready");
    std::fs::rename(&path, &ready).map_err(|e| Error::io(&ready, e))?;
    Ok(StagedImage {
        path: ready,
        target_name: name.to_owned(),
    })
}

/// Drop one staged image.
pub fn remove(image: &StagedImage) -> Result<()> {
    match std::fs::remove_file(&image.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&image.path, e)),
    }
}

/// Drop every staged or partly received image: at start (assignments live in memory) and
/// when a new bundle replaces the assignment.
pub fn discard(staging_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(staging_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(staging_dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(staging_dir, e))?.path();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(())
}
