//! What a module target delivers into the module's tree, by kind of target:
//! - a plain target: the file itself, `files/<target file name>`;
//! - a plain target marked `moduleFiles: "tar"`: the files of the tar, `files/<name>`;
//! - a Mender artifact (`custom.mender`): the artifact's own headers in `header/`, and its
//!   payload files in `files/`, unpacked as the verified artifact streams past, each checked
//!   against the artifact's manifest.

use super::tree::{Headers, WorkDir};
use crate::error::{Error, Result};
use crate::install::InstallJob;
use crate::mender::{self, Artifact, Limits, PayloadSink};
use std::fs;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The kind of a module target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Tar,
    Mender,
}

impl Kind {
    pub fn of(job: &InstallJob<'_>) -> Result<Kind> {
        if mender::is_artifact(job.custom) {
            return Ok(Kind::Mender);
        }
        match job.custom.extra.get(mender::FILES_FIELD) {
            None => Ok(Kind::File),
            Some(v) if v == "tar" => Ok(Kind::Tar),
            Some(other) => Err(Error::UpdateModule {
                module: job.custom.domain_or_default().as_str().to_owned(),
                state: "Download",
                detail: format!(
                    "target {} has custom.{} = {other}; expected \"tar\"",
                    job.target_name,
                    mender::FILES_FIELD
                ),
            }),
        }
    }
}

fn open(path: &Path) -> Result<BufReader<fs::File>> {
    fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| Error::io(path, e))
}

/// The headers of the artifact `job` delivers (its payload is not read here).
pub fn artifact_headers(job: &InstallJob<'_>, domain: &str) -> Result<(Artifact, Headers)> {
    let artifact = mender::read_headers(open(job.image)?, &Limits::default())?;
    if artifact.payload_type != domain
        && !(artifact.payload_type == "rootfs-image" && domain == "os")
    {
        return Err(Error::MenderArtifact {
            check: "payload type",
            detail: format!(
                "target {} carries a {:?} payload; expected {domain:?}, its domain",
                job.target_name, artifact.payload_type
            ),
        });
    }
    let headers = Headers {
        artifact_name: artifact.name.clone(),
        artifact_group: artifact.group.clone().unwrap_or_default(),
        payload_type: artifact.payload_type.clone(),
        header_info: artifact.header_info_raw.clone(),
        type_info: artifact.type_info_raw.clone(),
        meta_data: artifact.meta_data_raw.clone().unwrap_or_default(),
    };
    Ok((artifact, headers))
}

/// Writes each payload file to `files/<name>`, synced.
#[derive(Debug)]
struct ToFiles {
    dir: PathBuf,
}

impl PayloadSink for ToFiles {
    fn file(&mut self, name: &str, _size: u64, content: &mut dyn Read) -> Result<()> {
        let path = self.dir.join(name);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        std::io::copy(content, &mut out)
            .and_then(|_| out.flush())
            .and_then(|()| out.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Send what `job` delivers, file by file, to `sink`.
pub fn read_into(job: &InstallJob<'_>, kind: Kind, sink: &mut dyn PayloadSink) -> Result<()> {
    // The tar or artifact is the signed target, but compression lets it unpack to more than
    // its length, so the payload is bounded on its own.
    let limits = Limits::default();
    match kind {
        Kind::File => {
            let target = ferry_core::TargetName::new(job.target_name)?;
            let (_, file) = target.split_dir();
            sink.file(file, job.length, &mut open(job.image)?)
        }
        Kind::Tar => mender::read_plain_tar(open(job.image)?, &limits, sink).map(drop),
        Kind::Mender => mender::read(open(job.image)?, &limits, sink).map(drop),
    }
}

/// Put what `job` delivers into `files/`.
pub fn unpack(work: &WorkDir, job: &InstallJob<'_>, kind: Kind) -> Result<()> {
    match kind {
        Kind::File => work.add_payload(job).map(drop),
        Kind::Tar | Kind::Mender => {
            let dir = work.files_dir()?;
            read_into(job, kind, &mut ToFiles { dir: dir.clone() })?;
            sync_dir(&dir)
        }
    }
}
