//! A Mender `rootfs-image` artifact as an os target (`ferry repo add-target --from-mender`
//! of an artifact made by `mender-artifact write rootfs-image`): its one payload file, the
//! root file system image, is unpacked into the inactive slot as the verified artifact
//! streams past, so memory stays one buffer whatever the image size.
//!
//! The artifact as a whole was checked against its signed TUF hashes when it was received;
//! the image inside it is checked against the artifact's manifest as it streams (by the
//! reader, [`crate::mender`]), and the slot is then read back against the sha256 computed on
//! the way in, so a torn write never becomes bootable, as for a plain image.
//!
//! Refused before the slot is touched, by name: another payload type. The artifact's state
//! scripts run around the os states (see `OsInstaller::with_scripts`).

use crate::error::{Error, Result};
use crate::install::InstallJob;
use crate::mender::{self, Limits, PayloadSink};
use ferry_core::metadata::Hashes;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// The image written into a slot: its length and the hashes to read it back against.
#[derive(Debug)]
pub struct Written {
    pub length: u64,
    pub hashes: Hashes,
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| Error::io(path, e))
}

fn refuse(target: &str, detail: String) -> Error {
    Error::TargetKind {
        target: target.to_owned(),
        detail,
    }
}

/// Read the artifact's headers and refuse what the os domain cannot honour (state scripts
/// unless `scripts_allowed`); nothing is written.
pub fn check_headers(job: &InstallJob<'_>, scripts_allowed: bool) -> Result<mender::Artifact> {
    let artifact = mender::read_headers(open(job.image)?, &Limits::default())?;
    if artifact.payload_type != "rootfs-image" {
        return Err(Error::MenderArtifact {
            check: "payload type",
            detail: format!(
                "target {} carries a {:?} payload; expected \"rootfs-image\" for the os domain",
                job.target_name, artifact.payload_type
            ),
        });
    }
    match artifact.scripts.first() {
        Some((script, _)) if !scripts_allowed => Err(refuse(
            job.target_name,
            format!("the rootfs-image artifact carries the state script {script}; this os installer keeps no state scripts (expected an artifact without -s scripts)"),
        )),
        _ => Ok(artifact),
    }
}

/// Writes the one payload file into the slot, hashing what it writes.
struct ToSlot<'a> {
    target: &'a str,
    artifact: &'a Path,
    slot: &'a Path,
    written: Option<(u64, [u8; 32])>,
}

impl PayloadSink for ToSlot<'_> {
    fn file(&mut self, name: &str, _size: u64, content: &mut dyn Read) -> Result<()> {
        if self.written.is_some() {
            return Err(refuse(
                self.target,
                format!("its rootfs-image payload holds a second file, {name}; expected exactly one image file"),
            ));
        }
        let mut hasher = Sha256::new();
        let length = super::write_into(self.slot, content, self.artifact, Some(&mut hasher))?;
        self.written = Some((length, hasher.finalize().into()));
        Ok(())
    }
}

/// Stream the artifact's image into `slot`. What is returned has passed the artifact's
/// manifest check.
pub fn write(job: &InstallJob<'_>, slot: &Path) -> Result<Written> {
    let mut sink = ToSlot {
        target: job.target_name,
        artifact: job.image,
        slot,
        written: None,
    };
    mender::read(open(job.image)?, &Limits::default(), &mut sink)?;
    let (length, sha256) = sink.written.ok_or_else(|| {
        refuse(
            job.target_name,
            "its rootfs-image payload holds no file; expected one image file".into(),
        )
    })?;
    let hashes = Hashes::from([("sha256".to_owned(), hex::encode(sha256))]);
    Ok(Written { length, hashes })
}
