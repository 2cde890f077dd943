//! The `app` domain: an application as a directory under the apps directory.
//!
//! The image is a single file, installed as `<apps_dir>/<name>/<file>`: `name` is the target's
//! `custom.name` (else the file name up to its first dot), `file` the last segment of the
//! target name. Archives are not unpacked. The new copy is prepared in `.<name>.new` beside the
//! live one, as a hard link of the staged image (a copy only across file systems); install
//! renames the live directory to `.<name>.backup` and the new one into place, so the swap is
//! two renames on one file system. A crash between them leaves a backup and no
//! live copy, which [`AppInstaller::recover`] restores at start. With `[app] confirm = "app"`
//! the backup stays until the application confirms ([`super::confirm`]); a commit moves it
//! among the kept versions ([`kept`], `keep_previous`, default 1) or, with 0, deletes it.

pub mod kept;

use super::{capture, InstallJob, Installer};
use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Replaced versions of an app kept after a commit unless `[app] keep_previous` says
/// otherwise: as many as the container domain keeps.
pub const DEFAULT_KEEP_PREVIOUS: usize = 1;

#[derive(Debug, Clone)]
pub struct AppInstaller {
    apps_dir: PathBuf,
    /// Run after the swap with `FERRY_APP_NAME` and `FERRY_APP_DIR` set; non-zero rolls back.
    health_check: Option<Vec<String>>,
    /// How long the health check may run.
    health_timeout: std::time::Duration,
    /// The application's confirmation window (`[app] confirm = "app"`).
    confirm: Option<std::time::Duration>,
    /// Earlier versions of an app kept after a commit.
    keep_previous: usize,
}

/// The paths of one app.
#[derive(Debug)]
struct AppPaths {
    name: String,
    file: String,
    live: PathBuf,
    new: PathBuf,
    backup: PathBuf,
}

fn invalid(what: &str, reason: String) -> Error {
    Error::InstallFailed {
        target: what.to_owned(),
        step: "prepare",
        detail: reason,
        outcome: "nothing was changed",
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to)
        .map_err(|e| Error::io(format!("{} -> {}", from.display(), to.display()), e))
}

/// Make renames and creations in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Put the staged image at `dest`. The staged file is complete and already durable, so a
/// hard link is the whole cost when staging and apps share a file system (the ECU removes
/// the staged name afterwards); across file systems it is copied and the copy made durable.
fn place(image: &Path, dest: &Path) -> Result<()> {
    match fs::hard_link(image, dest) {
        Ok(()) => return Ok(()),
        // EXDEV: another file system; EPERM/unsupported: one without hard links (FAT).
        // Anything else is a real failure.
        Err(e)
            if e.kind() == ErrorKind::CrossesDevices
                || e.kind() == ErrorKind::Unsupported
                || e.raw_os_error() == Some(1) =>
        {
            tracing::warn!(
                image = %image.display(),
                dest = %dest.display(),
                error = %e,
                "cannot link the staged image into apps_dir: copying it (put data_dir and \
                 apps_dir on one file system to install by linking)"
            );
        }
        Err(e) => {
            return Err(Error::io(
                format!("linking {} to {}", image.display(), dest.display()),
                e,
            ))
        }
    }
    fs::copy(image, dest).map_err(|e| Error::io(dest, e))?;
    fs::File::open(dest)
        .and_then(|f| f.sync_data())
        .map_err(|e| Error::io(dest, e))
}

impl AppInstaller {
    pub fn new(apps_dir: impl Into<PathBuf>, health_check: Option<Vec<String>>) -> Self {
        AppInstaller {
            apps_dir: apps_dir.into(),
            health_check,
            health_timeout: capture::DEFAULT_TIMEOUT,
            confirm: None,
            keep_previous: DEFAULT_KEEP_PREVIOUS,
        }
    }

    /// Keep the `n` most recent replaced versions of each app after a commit (default
    /// [`DEFAULT_KEEP_PREVIOUS`]).
    pub fn with_keep_previous(mut self, n: usize) -> Self {
        self.keep_previous = n;
        self
    }

    /// Commit only once the application confirms, within `window` (`None`: at verify).
    pub fn with_confirm(mut self, window: Option<std::time::Duration>) -> Self {
        self.confirm = window;
        self
    }

    /// How long the health check may run (default [`capture::DEFAULT_TIMEOUT`]).
    pub fn with_health_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    fn paths(&self, job: &InstallJob<'_>) -> Result<AppPaths> {
        let target = ferry_core::TargetName::new(job.target_name)?;
        let (_, file) = target.split_dir();
        let name = match &job.custom.name {
            Some(name) => name.clone(),
            None => file.split('.').next().unwrap_or(file).to_owned(),
        };
        // One plain path segment, and never a hidden one: those are this installer's own.
        let safe = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\', '\0'])
            && !name.chars().any(char::is_control);
        if !safe {
            return Err(invalid(
                job.target_name,
                format!("app name check failed: {name:?} is not a plain directory name"),
            ));
        }
        Ok(AppPaths {
            live: self.apps_dir.join(&name),
            new: self.apps_dir.join(format!(".{name}.new")),
            backup: self.apps_dir.join(format!(".{name}.backup")),
            file: file.to_owned(),
            name,
        })
    }

    /// Restore apps whose swap a crash interrupted: a backup with no live copy.
    pub fn recover(&self) -> Result<()> {
        let entries = match fs::read_dir(&self.apps_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(&self.apps_dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.apps_dir, e))?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix('.'))
                .and_then(|n| n.strip_suffix(".backup"))
            else {
                continue;
            };
            let live = self.apps_dir.join(name);
            if !exists(&live) {
                tracing::warn!(app = name, "restoring the backup of an interrupted swap");
                rename(&entry.path(), &live)?;
            }
        }
        Ok(())
    }
}

impl Installer for AppInstaller {
    fn domain(&self) -> &'static str {
        "app"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let p = self.paths(job)?;
        fs::create_dir_all(&self.apps_dir).map_err(|e| Error::io(&self.apps_dir, e))?;
        remove_dir(&p.new)?;
        fs::create_dir(&p.new).map_err(|e| Error::io(&p.new, e))?;
        let dest = p.new.join(&p.file);
        place(job.image, &dest)?;
        sync_dir(&p.new)?;
        sync_dir(&self.apps_dir)
    }

    fn install(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let p = self.paths(job)?;
        if exists(&p.live) {
            // A backup left by an earlier, finished update is stale: the live copy is newer.
            remove_dir(&p.backup)?;
            rename(&p.live, &p.backup)?;
        }
        rename(&p.new, &p.live)?;
        sync_dir(&self.apps_dir)
    }

    fn verify(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let Some(argv) = &self.health_check else {
            return Ok(());
        };
        let p = self.paths(job)?;
        let Some(program) = argv.first() else {
            return Ok(());
        };
        // Bounded like every installer's helper program: a hung check fails and rolls back.
        let env = [
            ("FERRY_APP_NAME", p.name.clone()),
            ("FERRY_APP_DIR", p.live.display().to_string()),
        ];
        capture::run(argv, None, &env, self.health_timeout)?
            .require_success("app health check", program)?;
        Ok(())
    }

    fn confirm_timeout(&self) -> Option<std::time::Duration> {
        self.confirm
    }

    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let p = self.paths(job)?;
        // The replaced version joins the kept ones (by rename); beyond them it goes.
        kept::Kept::new(&self.apps_dir, &p.name).keep(&p.backup, self.keep_previous)?;
        remove_dir(&p.backup)?;
        sync_dir(&self.apps_dir)
    }

    fn rollback(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let p = self.paths(job)?;
        if exists(&p.backup) {
            remove_dir(&p.live)?;
            rename(&p.backup, &p.live)?;
        } else if !exists(&p.new) {
            // First install of this app: the previous state is no app at all. (If the new
            // copy is still staged, the swap never happened and the live copy is untouched.)
            remove_dir(&p.live)?;
        }
        sync_dir(&self.apps_dir)
    }

    fn cleanup(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let p = self.paths(job)?;
        remove_dir(&p.new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_core::metadata::uptane::ImageCustom;
    use std::os::unix::fs::MetadataExt;

    fn inode(path: &Path) -> (u64, u64) {
        let m = fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn prepare_links_the_staged_image_into_place_instead_of_copying_it() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join(".image-1.ready");
        fs::write(&staged, b"app v1").unwrap();
        let custom: ImageCustom =
            serde_json::from_value(serde_json::json!({"hardwareIds": ["ivi"], "name": "demo"}))
                .unwrap();
        // The app installer checks no hashes itself (the image was verified on receipt).
        let hashes = ferry_core::metadata::Hashes::new();
        let job = InstallJob {
            target_name: "apps/demo-1.tar",
            custom: &custom,
            image: &staged,
            length: 6,
            hashes: &hashes,
        };
        let mut app = AppInstaller::new(dir.path().join("apps"), None);
        app.prepare(&job).unwrap();
        let placed = dir.path().join("apps/.demo.new/demo-1.tar");
        assert_eq!(inode(&placed), inode(&staged), "one file, linked");
        // A step may run again after a crash.
        app.prepare(&job).unwrap();
        assert_eq!(fs::read(&placed).unwrap(), b"app v1");
    }

    #[test]
    fn across_file_systems_the_image_is_copied() {
        // /dev/shm is a tmpfs on Linux: another file system than the temporary directory.
        let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
            eprintln!("no /dev/shm here: nothing to cross");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let staged = shm.path().join("staged");
        fs::write(&staged, b"app v2").unwrap();
        let dest = dir.path().join("placed");
        if inode(shm.path()).0 == inode(dir.path()).0 {
            eprintln!("/dev/shm and the temporary directory share a file system");
            return;
        }
        place(&staged, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"app v2");
        assert_ne!(inode(&dest), inode(&staged));
    }
}
