//! The Update Module v3 file tree a module is called with, and this installer's own record of
//! how far the module got (kept beside the tree, outside what the module sees), so that a
//! restart knows which states already ran.
//!
//! ```text
//! <work_dir>/<domain>/tree/version                   "3"
//! <work_dir>/<domain>/tree/current_artifact_name     the last target this module committed
//! <work_dir>/<domain>/tree/current_artifact_group    "" (Ferry has no artifact groups)
//! <work_dir>/<domain>/tree/current_device_type       [modules] device_type, else hardware_id
//! <work_dir>/<domain>/tree/header/artifact_name      the target name
//! <work_dir>/<domain>/tree/header/artifact_group     ""
//! <work_dir>/<domain>/tree/header/payload_type       the domain
//! <work_dir>/<domain>/tree/header/header-info        payloads, artifact_provides, artifact_depends
//! <work_dir>/<domain>/tree/header/type-info          type, provides, depends, clears
//! <work_dir>/<domain>/tree/header/meta-data          the target's custom.metaData, else {}
//! <work_dir>/<domain>/tree/tmp/                      empty scratch space
//! <work_dir>/<domain>/tree/files/<file>              the image, after Download
//!                                                    (or the files of a tar target)
//! ```
//! For a Mender artifact target the `header/` files are the artifact's own (artifact_name,
//! artifact_group, payload_type; header-info, type-info and meta-data byte for byte) and
//! `files/` holds its payload files.
//! ```text
//! <work_dir>/<domain>/record.json                    this installer's progress
//! <work_dir>/<domain>/scripts/                       a Mender artifact's state scripts
//! <work_dir>/<domain>/current_artifact_name          kept across updates
//! ```

use crate::error::{Error, Result};
use crate::install::InstallJob;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// How far an update went, written before a state with side effects runs (so a restart
/// repeats it) or after one that must not run twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The tree exists; Download may have run.
    Downloading,
    /// ArtifactInstall started: the live copy may have changed.
    Installing,
    /// ArtifactCommit succeeded.
    Committed,
    /// ArtifactRollbackReboot started; ArtifactVerifyRollbackReboot is still due.
    RollbackRebooting,
    /// ArtifactRollback (and any rollback reboot) finished.
    RolledBack,
}

/// The module's answer to NeedsArtifactReboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RebootAnswer {
    No,
    Yes,
    Automatic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub target: String,
    pub phase: Phase,
    #[serde(default)]
    pub reboot: Option<RebootAnswer>,
    /// ArtifactFailure already ran.
    #[serde(default)]
    pub failure_reported: bool,
    /// A Mender artifact's name, which becomes `current_artifact_name` on commit (else the
    /// target name does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_name: Option<String>,
}

/// What a module finds in `header/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    pub artifact_name: String,
    pub artifact_group: String,
    pub payload_type: String,
    pub header_info: Vec<u8>,
    pub type_info: Vec<u8>,
    pub meta_data: Vec<u8>,
}

/// One module's work directory.
#[derive(Debug, Clone)]
pub struct WorkDir {
    dir: PathBuf,
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

impl WorkDir {
    pub fn new(dir: PathBuf) -> WorkDir {
        WorkDir { dir }
    }

    pub fn tree(&self) -> PathBuf {
        self.dir.join("tree")
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("record.json")
    }

    fn current_name_path(&self) -> PathBuf {
        self.dir.join("current_artifact_name")
    }

    /// The progress record; `None` when no update is under way.
    pub fn record(&self) -> Result<Option<Record>> {
        let path = self.record_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::StateCorrupt {
                path,
                what: "update module record",
                reason: e.to_string(),
            })
    }

    /// Replace the record atomically (temporary file, fsync, rename, fsync the directory).
    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(|e| Error::StateCorrupt {
            path: self.record_path(),
            what: "update module record",
            reason: e.to_string(),
        })?;
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".record-")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        let path = self.record_path();
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        sync_dir(&self.dir)
    }

    /// The last target this module committed ("" before the first).
    pub fn current_name(&self) -> Result<String> {
        let path = self.current_name_path();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().to_owned()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    pub fn set_current_name(&self, target: &str) -> Result<()> {
        let path = self.current_name_path();
        write_file(&path, format!("{target}\n").as_bytes())?;
        sync_dir(&self.dir)
    }

    /// Remove the tree and the record: the update is over.
    pub fn clear(&self) -> Result<()> {
        let tree = self.tree();
        match fs::remove_dir_all(&tree) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(Error::io(&tree, e)),
            _ => {}
        }
        let record = self.record_path();
        match fs::remove_file(&record) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(Error::io(&record, e)),
            _ => {}
        }
        if self.dir.is_dir() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// A fresh tree for `job` (files/ comes later, after Download), its headers made from
    /// the target's custom metadata.
    pub fn build(&self, domain: &str, job: &InstallJob<'_>, device_type: &str) -> Result<()> {
        let custom = job.custom;
        let meta_data = custom
            .extra
            .get("metaData")
            .filter(|v| v.is_object())
            .cloned()
            .unwrap_or_else(|| json!({}));
        let header_info = json!({
            "payloads": [{ "type": domain }],
            "artifact_provides": { "artifact_name": job.target_name },
            "artifact_depends": { "device_type": [device_type] },
        });
        let type_info = json!({
            "type": domain,
            "artifact_provides": custom.effective_provides(),
            "artifact_depends": custom.depends,
            "clears_artifact_provides": custom.effective_clears(),
        });
        let pretty = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        self.build_with(
            &Headers {
                artifact_name: job.target_name.to_owned(),
                artifact_group: String::new(),
                payload_type: domain.to_owned(),
                header_info: pretty(&header_info),
                type_info: pretty(&type_info),
                meta_data: pretty(&meta_data),
            },
            device_type,
        )
    }

    /// A fresh tree with these headers (files/ comes later, after Download).
    pub fn build_with(&self, headers: &Headers, device_type: &str) -> Result<()> {
        let tree = self.tree();
        if tree.exists() {
            fs::remove_dir_all(&tree).map_err(|e| Error::io(&tree, e))?;
        }
        let header = tree.join("header");
        for dir in [&header, &tree.join("tmp")] {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let current = format!("{}\n", self.current_name()?);
        let device = format!("{device_type}\n");
        let files: [(PathBuf, &[u8]); 10] = [
            (tree.join("version"), b"3\n"),
            (tree.join("current_artifact_name"), current.as_bytes()),
            (tree.join("current_artifact_group"), b"\n"),
            (tree.join("current_device_type"), device.as_bytes()),
            (
                header.join("artifact_name"),
                headers.artifact_name.as_bytes(),
            ),
            (
                header.join("artifact_group"),
                headers.artifact_group.as_bytes(),
            ),
            (header.join("payload_type"), headers.payload_type.as_bytes()),
            (header.join("header-info"), &headers.header_info),
            (header.join("type-info"), &headers.type_info),
            (header.join("meta-data"), &headers.meta_data),
        ];
        for (path, bytes) in &files {
            write_file(path, bytes)?;
        }
        Ok(())
    }

    /// `files/`, created empty.
    pub fn files_dir(&self) -> Result<PathBuf> {
        let files = self.tree().join("files");
        fs::create_dir_all(&files).map_err(|e| Error::io(&files, e))?;
        Ok(files)
    }

    /// Put the image into `files/` under the target's file name.
    pub fn add_payload(&self, job: &InstallJob<'_>) -> Result<PathBuf> {
        let target = ferry_core::TargetName::new(job.target_name)?;
        let (_, file) = target.split_dir();
        let files = self.tree().join("files");
        fs::create_dir_all(&files).map_err(|e| Error::io(&files, e))?;
        let dest = files.join(file);
        fs::copy(job.image, &dest).map_err(|e| Error::io(&dest, e))?;
        fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&dest, e))?;
        sync_dir(&files)?;
        Ok(dest)
    }
}
