//! A Mender artifact's state scripts (`ArtifactInstall_Enter_00`, ...), kept beside the
//! module's tree (or the os domain's state, for rootfs-image artifacts) for the length of the
//! update and run around the installer's states as Mender runs them: the `Enter` scripts before the state, the `Leave` scripts after it succeeded,
//! the `Error` scripts after it failed; in name order. An Enter or Leave script that fails
//! fails the state (its Error scripts then run); an Error script's failure is logged only.
//! Scripts run under the module's time limit, with no arguments, in the daemon's working
//! directory and environment, as Mender 3.4 runs them (`tests/tests/mender_client_parity.rs`
//! compares the two).
//! An Enter or Leave script that exits 21 asks to be retried later, as in Mender: it runs
//! again every `retry_interval` until it exits otherwise, for at most `retry_timeout` in all
//! (Mender's StateScriptRetryIntervalSeconds and StateScriptRetryTimeoutSeconds; defaults 60
//! and 1800 s), then fails its state.

use crate::error::{Error, Result};
use crate::install::capture;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The exit code with which a state script asks to be run again later.
pub const RETRY_LATER: i32 = 21;
/// Mender's defaults for retrying such a script.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone)]
pub struct Scripts {
    dir: PathBuf,
    timeout: Duration,
    retry_interval: Duration,
    retry_timeout: Duration,
}

impl Scripts {
    pub fn new(dir: PathBuf, timeout: Duration) -> Scripts {
        Scripts {
            dir,
            timeout,
            retry_interval: DEFAULT_RETRY_INTERVAL,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
        }
    }

    /// How often, and for how long in all, a script exiting 21 is run again.
    pub fn with_retry(mut self, interval: Duration, timeout: Duration) -> Scripts {
        self.retry_interval = interval.max(Duration::from_millis(1));
        self.retry_timeout = timeout;
        self
    }

    /// Each script's time limit.
    pub fn with_timeout(mut self, timeout: Duration) -> Scripts {
        self.timeout = timeout;
        self
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
            // Counted in intervals rather than read from a clock: the retries' budget is
            // the sleeps between them, as Mender counts it.
            let mut retries_left = self.retry_timeout.as_millis() / self.retry_interval.as_millis();
            loop {
                // In the daemon's own working directory, no arguments, the daemon's
                // environment: as Mender runs state scripts.
                let done = capture::run(&argv, None, &[], self.timeout)?;
                if done.code == Some(RETRY_LATER) && action != "Error" && retries_left > 0 {
                    retries_left -= 1;
                    tracing::info!(script = %argv[0], "state script asked to be retried later (exit 21)");
                    std::thread::sleep(self.retry_interval);
                    continue;
                }
                done.require_success(&what, &argv[0])?;
                break;
            }
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
