//! Receiving an image: streamed from any reader into a staging file, bounded by the signed
//! length and checked against every signed hash as the bytes arrive. Each hash algorithm and
//! the file write run on threads of their own, fed by one read of the stream ([`tee`]), so
//! sha512 (no hardware support) and sha256 overlap each other and the I/O. Memory stays flat
//! (a few fixed chunks); a refused image leaves nothing behind.

pub mod tee;
pub mod writeback;

use crate::error::{Error, Result};
use crate::verify::Assignment;
use ferry_core::metadata::received::image_checks;
use ferry_core::metadata::TargetFile;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread::{Scope, ScopedJoinHandle};
use tee::Tee;

/// An image whose length and every hash matched its verified target, on disk durably.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedImage {
    pub path: PathBuf,
    pub target_name: String,
}

/// A running check of one signed hash: `Ok(None)` when the stream was cut before its end
/// (the producer reports why), `Ok(Some(()))` when the whole stream matched.
pub type CheckHandle<'s> = ScopedJoinHandle<'s, ferry_core::Result<Option<()>>>;

/// Check the stream `tee` carries against `target` (named `what`), one thread per check
/// ([`image_checks`]: one per signed hash, each bounding the length; an OSTree pull target's
/// one check that the stream is empty). Refuses up front what cannot be checked.
pub fn spawn_checks<'s>(
    scope: &'s Scope<'s, '_>,
    tee: &mut Tee,
    what: &str,
    target: &TargetFile,
) -> ferry_core::Result<Vec<CheckHandle<'s>>> {
    let mut handles = Vec::new();
    for mut check in image_checks(what, target)? {
        let mut tap = tee.tap();
        handles.push(scope.spawn(move || {
            loop {
                match tap.next_chunk() {
                    // A check that fails drops its tap, which stops the producer at once.
                    Ok(Some(chunk)) => check.update(chunk.bytes())?,
                    Ok(None) => return check.finish().map(Some),
                    Err(tee::Aborted) => return Ok(None),
                }
            }
        }));
    }
    Ok(handles)
}

/// The first failed check among `handles`, after all of them ended.
pub fn join_checks(handles: Vec<CheckHandle<'_>>) -> ferry_core::Result<()> {
    let mut first = Ok(());
    for handle in handles {
        let result = handle.join().unwrap_or(Err(ferry_core::Error::Order(
            "a hash check thread panicked",
        )));
        if let (Ok(()), Err(e)) = (&first, result) {
            first = Err(e);
        }
    }
    first
}

fn endless(name: &str, e: ferry_core::Error) -> Error {
    match e {
        ferry_core::Error::TooLong { limit, .. } => Error::EndlessData {
            target: name.to_owned(),
            limit,
        },
        other => other.into(),
    }
}

/// Stream `reader` into `staging_dir`, checked against `assignment`. More bytes than signed is
/// refused as endless data the moment they arrive; too few, or a wrong hash, at the end.
pub fn receive(
    reader: &mut dyn std::io::Read,
    staging_dir: &Path,
    assignment: &Assignment,
) -> Result<StagedImage> {
    let name = assignment.target_name();
    let target = assignment.target();
    std::fs::create_dir_all(staging_dir).map_err(|e| Error::io(staging_dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".image-")
        .suffix(".part")
        .tempfile_in(staging_dir)
        .map_err(|e| Error::io(staging_dir, e))?;
    let file = tmp.as_file();
    std::thread::scope(|s| -> Result<()> {
        let mut tee = Tee::new();
        let checks = spawn_checks(s, &mut tee, name, target)?;
        let tap = tee.tap();
        let writer = s.spawn(move || writeback::write_stream(file, tap, writeback::FLUSH_EVERY));
        let read = pump(reader, &mut tee, name, target.length);
        // Only a complete stream is finished; otherwise dropping the tee aborts every tap.
        let read = read.and_then(|()| {
            tee.finish().map_err(|e| {
                Error::io(format!("image stream for {name}"), std::io::Error::other(e))
            })
        });
        let checked = join_checks(checks).map_err(|e| endless(name, e));
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the image writer thread panicked")))
            .map_err(|e| Error::io(tmp.path(), e));
        // The reader's own failure first (endless data, a cut connection); then a failed
        // check, which is why a consumer stopped; then the file.
        match (read, checked, written) {
            (Err(e @ Error::EndlessData { .. }), _, _) => Err(e),
            (_, Err(e), _) | (_, _, Err(e)) | (Err(e), _, _) => Err(e),
            (Ok(()), Ok(()), Ok(_)) => Ok(()),
        }
    })?;
    // The last fdatasync, of what the early ones left: the installer links this very file into
    // place.
    file.sync_data().map_err(|e| Error::io(tmp.path(), e))?;
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

/// Read `reader` to its end into `tee`, refusing a byte past `limit` as soon as it arrives.
fn pump(reader: &mut dyn std::io::Read, tee: &mut Tee, name: &str, limit: u64) -> Result<()> {
    let mut total: u64 = 0;
    loop {
        let n = match tee.read_from(reader) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(tee::FillError::Read(e)) if e.kind() == ErrorKind::Interrupted => continue,
            Err(tee::FillError::Read(e)) => {
                return Err(Error::io(format!("image stream for {name}"), e))
            }
            Err(tee::FillError::Closed(e)) => {
                return Err(Error::io(
                    format!("image stream for {name}"),
                    std::io::Error::other(e),
                ))
            }
        };
        total += n as u64;
        if total > limit {
            return Err(Error::EndlessData {
                target: name.to_owned(),
                limit,
            });
        }
    }
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
