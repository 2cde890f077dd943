//! A Mender artifact's state scripts (`ArtifactInstall_Enter_00`, ...), kept beside the
//! module's tree (or the os domain's state, for rootfs-image artifacts) for the length of the
//! update and run around the installer's states as Mender runs them: the `Enter` scripts before the state, the `Leave` scripts after it succeeded,
//! the `Error` scripts after it failed; in name order. An Enter or Leave script that fails
//! fails the state (its Error scripts then run); an Error script's failure is logged only.
//! Scripts run under the module's time limit, with the work directory as working directory.

use crate::error::{Error, Result};
use crate::install::capture;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Scripts {
    dir: PathBuf,
    timeout: Duration,
}

impl Scripts {
    pub fn new(dir: PathBuf, timeout: Duration) -> Scripts {
        Scripts { dir, timeout }
    }

    /// Where the scripts are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replace the kept scripts with `scripts` (name, content), each executable.
    pub fn save(&self, scripts: &[(String, Vec<u8>)]) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        self.clear()?;
        if scripts.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for (name, bytes) in scripts {
            let path = self.dir.join(name);
            fs::write(&path, bytes)
                .and_then(|()| fs::set_permissions(&path, fs::Permissions::from_mode(0o755)))
                .and_then(|()| fs::File::open(&path)?.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(&self.dir, e))
    }

    pub fn clear(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io(&self.dir, e)),
            _ => Ok(()),
        }
    }

    /// The kept scripts for `state` and `action`, in name order.
    fn named(&self, state: &str, action: &str) -> Result<Vec<PathBuf>> {
        let prefix = format!("{state}_{action}_");
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.dir, e))?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                found.push(entry.path());
            }
        }
        found.sort();
        Ok(found)
    }

    fn run(&self, state: &str, action: &str) -> Result<()> {
        for script in self.named(state, action)? {
            let argv = [script.display().to_string()];
            tracing::info!(script = %argv[0], "artifact state script");
            let what = format!("artifact state script {}", file_name(&script));
            capture::run(&argv, self.dir.parent(), &[], self.timeout)?
                .require_success(&what, &argv[0])?;
        }
        Ok(())
    }

    fn run_errors(&self, state: &str) {
        if let Err(e) = self.run(state, "Error") {
            tracing::warn!(state, error = %e, "an Error state script failed");
        }
    }

    /// Run `body` as Mender state `state`, with its scripts around it.
    pub fn around<T>(&self, state: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
        let result = self
            .run(state, "Enter")
            .and_then(|()| body())
            .and_then(|v| self.run(state, "Leave").map(|()| v));
        if result.is_err() {
            self.run_errors(state);
        }
        result
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
