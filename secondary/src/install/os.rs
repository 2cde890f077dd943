//! The `os` domain: A/B slots (image files or block devices) under a boot environment.
//!
//! Download writes the image to the slot that is not booted, streamed from the staged file
//! through one fixed buffer, fsyncs it and re-reads the slot's first `length` bytes against
//! the signed hashes: a torn or short write never becomes bootable. The slot on trial is
//! noted in the boot environment (`ferry_trial`) first, so every later step, after any
//! restart, knows which slot is new and which is old. Install switches the boot slot with
//! `upgrade_available=1, bootcount=0` (one environment write). Reboot runs `reboot_command`
//! (the journal resumes at verify-reboot on the next start); without one the reboot is
//! simulated in-process: the bootloader's step (bootcount+1, back to the old slot past
//! `bootlimit`) runs here, and again whenever the ECU restarts with an upgrade on trial,
//! since a restart is a boot. VerifyReboot refuses a boot from the wrong slot or past the
//! boot limit, then runs the health check. Commit clears `upgrade_available`; rollback points
//! the boot slot back at the old slot.

use super::boot::{self, BootControl, BootState, SLOT_NAMES};
use super::module::scripts::Scripts;
use super::{capture, trial, InstallJob, Installer, Reboot};
use crate::error::{Error, Result};
use ferry_core::metadata::{HashCheck, Hashes};
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use trial::check;

mod rootfs_artifact;

/// The boot-environment variable naming the slot on trial.
pub const TRIAL: &str = "ferry_trial";

const BUFFER: usize = 64 * 1024;

/// Copy `src` (read from `src_path`) into `slot` through one buffer, feeding `hasher` if
/// given; an image file is trimmed to what was written (a block device keeps its size);
/// synced before returning. Returns the bytes written.
fn write_into(
    slot: &Path,
    src: &mut dyn Read,
    src_path: &Path,
    mut hasher: Option<&mut Sha256>,
) -> Result<u64> {
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(slot)
        .map_err(|e| Error::io(slot, e))?;
    let mut buf = vec![0u8; BUFFER];
    let mut length = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(src_path, e)),
        };
        if let Some(h) = hasher.as_deref_mut() {
            h.update(&buf[..n]);
        }
        dst.write_all(&buf[..n]).map_err(|e| Error::io(slot, e))?;
        length += n as u64;
    }
    let meta = dst.metadata().map_err(|e| Error::io(slot, e))?;
    if meta.is_file() {
        dst.set_len(length).map_err(|e| Error::io(slot, e))?;
    }
    dst.sync_all().map_err(|e| Error::io(slot, e))?;
    Ok(length)
}

#[derive(Debug)]
pub struct OsInstaller {
    slots: [PathBuf; 2],
    boot: Box<dyn BootControl>,
    bootlimit: u32,
    /// Run after the reboot with `FERRY_OS_SLOT` and `FERRY_OS_SLOT_PATH`; non-zero rolls back.
    health_check: Option<Vec<String>>,
    /// None: the reboot is simulated in-process (tests, demo).
    reboot_command: Option<Vec<String>>,
    /// How long the health check or the reboot command may run.
    timeout: std::time::Duration,
    /// Where a rootfs-image artifact's state scripts are kept for the length of an update;
    /// None: artifacts with scripts are refused.
    scripts: Option<Scripts>,
}

/// Run `body` as Mender state `state`, with the artifact's scripts around it, if any.
fn around<T>(
    scripts: &Option<Scripts>,
    state: &str,
    body: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match scripts {
        Some(scripts) => scripts.around(state, body),
        None => body(),
    }
}

fn other(slot: usize) -> usize {
    1 - slot.min(1)
}

impl OsInstaller {
    pub fn new(
        slots: [PathBuf; 2],
        boot: Box<dyn BootControl>,
        bootlimit: u32,
        health_check: Option<Vec<String>>,
        reboot_command: Option<Vec<String>>,
    ) -> Self {
        OsInstaller {
            slots,
            boot,
            bootlimit,
            health_check,
            reboot_command,
            timeout: capture::DEFAULT_TIMEOUT,
            scripts: None,
        }
    }

    /// Keep rootfs-image artifacts' state scripts with `scripts` and run them around the os
    /// states.
    pub fn with_scripts(mut self, scripts: Scripts) -> Self {
        self.scripts = Some(scripts);
        self
    }

    /// The marker, beside the kept scripts, that ArtifactInstall ran for this update.
    fn installed_marker(&self) -> Option<PathBuf> {
        self.scripts.as_ref().map(|s| s.dir().join(".installed"))
    }

    /// How long the health check and the reboot command may run (default
    /// [`capture::DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn state(&self) -> Result<BootState> {
        boot::read(self.boot.as_ref())
    }

    fn set(&mut self, state: BootState) -> Result<()> {
        boot::write(self.boot.as_mut(), &state)
    }

    /// The slot on trial, as prepare noted it.
    fn trial(&self) -> Result<usize> {
        let vars = self.boot.get()?;
        let value = vars.get(TRIAL).map(String::as_str).unwrap_or("");
        SLOT_NAMES.iter().position(|n| *n == value).ok_or_else(|| {
            check(
                "slot on trial",
                format!("{TRIAL}={value:?} in the {}", self.boot.describe()),
                "a or b, set when the image was written".into(),
            )
        })
    }

    /// The bootloader's part of a boot with an upgrade on trial.
    fn simulated_boot(&mut self) -> Result<()> {
        let mut state = self.state()?;
        if !state.upgrade_available {
            return Ok(());
        }
        state.bootcount = state.bootcount.saturating_add(1);
        if state.bootcount > self.bootlimit {
            tracing::warn!(
                bootcount = state.bootcount,
                bootlimit = self.bootlimit,
                "boot limit passed: booting the old slot (simulated bootloader)"
            );
            state.slot = other(self.trial()?);
            state.upgrade_available = false;
        }
        self.set(state)
    }

    /// Write what `job` delivers into `slot`: the staged image, or the image inside a
    /// rootfs-image artifact. Returns the length and hashes to read the slot back against.
    fn write_slot(&self, job: &InstallJob<'_>, slot: usize) -> Result<(u64, Hashes)> {
        let path = &self.slots[slot];
        if crate::mender::is_artifact(job.custom) {
            let written = rootfs_artifact::write(job, path)?;
            return Ok((written.length, written.hashes));
        }
        let mut src = std::fs::File::open(job.image).map_err(|e| Error::io(job.image, e))?;
        write_into(path, &mut src, job.image, None)?;
        Ok((job.length, job.hashes.clone()))
    }

    /// The slot's first `length` bytes against every hash in `hashes`, those of `job`'s
    /// image.
    fn check_slot(
        &self,
        job: &InstallJob<'_>,
        slot: usize,
        length: u64,
        hashes: &Hashes,
    ) -> Result<()> {
        let path = &self.slots[slot];
        let what = format!("slot {} ({})", SLOT_NAMES[slot], path.display());
        let expected = format!(
            "its first {length} bytes to match the signed hashes of {}",
            job.target_name
        );
        let mismatch =
            |e: ferry_core::Error| check("slot contents", e.to_string(), expected.clone());
        let mut hash = HashCheck::new(&what, Some(length), Some(hashes))
            .and_then(HashCheck::require_hashes)
            .map_err(mismatch)?;
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut reader = file.take(length);
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(path, e)),
            };
            hash.update(&buf[..n]).map_err(mismatch)?;
        }
        hash.finish().map_err(mismatch)
    }

    fn health(&self, slot: usize) -> Result<()> {
        let env = [
            ("FERRY_OS_SLOT", SLOT_NAMES[slot].to_owned()),
            ("FERRY_OS_SLOT_PATH", self.slots[slot].display().to_string()),
        ];
        let on = format!("slot {}", SLOT_NAMES[slot]);
        trial::health(
            "os health",
            self.health_check.as_deref(),
            &env,
            &on,
            self.timeout,
        )
    }
}

impl Installer for OsInstaller {
    fn domain(&self) -> &'static str {
        "os"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let state = trial::no_upgrade_on_trial(self.boot.as_ref(), "os")?;
        let new = other(state.slot);
        if let Some(scripts) = &self.scripts {
            scripts.clear()?;
        }
        if crate::mender::is_artifact(job.custom) {
            let artifact = rootfs_artifact::check_headers(job, self.scripts.is_some())?;
            if let Some(scripts) = &self.scripts {
                scripts.save(&artifact.scripts)?;
            }
        }
        self.boot.set(&[(TRIAL, SLOT_NAMES[new].to_owned())])?;
        let (length, hashes) = self.write_slot(job, new)?;
        self.check_slot(job, new, length, &hashes)
    }

    fn takes_mender_artifacts(&self) -> bool {
        true
    }

    fn install(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let new = self.trial()?;
        if let Some(marker) = self.installed_marker() {
            if marker.parent().is_some_and(Path::exists) {
                std::fs::write(&marker, b"").map_err(|e| Error::io(&marker, e))?;
            }
        }
        around(&self.scripts.clone(), "ArtifactInstall", || {
            self.set(BootState {
                slot: new,
                upgrade_available: true,
                bootcount: 0,
            })
        })
    }

    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        true
    }

    fn reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        around(&self.scripts.clone(), "ArtifactReboot", || {
            match self.reboot_command.clone() {
                Some(argv) => trial::reboot(&argv, self.timeout),
                None => self.simulated_boot().map(|()| Reboot::Done),
            }
        })
    }

    fn verify_reboot(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let new = self.trial()?;
        let state = self.state()?;
        if state.slot != new {
            return Err(check(
                "boot slot",
                format!(
                    "the bootloader boots slot {} (bootcount {}, bootlimit {})",
                    SLOT_NAMES[state.slot], state.bootcount, self.bootlimit
                ),
                format!("slot {} on trial", SLOT_NAMES[new]),
            ));
        }
        trial::within_boot_limit(&state, self.bootlimit)?;
        self.health(new)
    }

    fn commit(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let new = self.trial()?;
        around(&self.scripts.clone(), "ArtifactCommit", || {
            self.set(BootState {
                slot: new,
                upgrade_available: false,
                bootcount: 0,
            })
        })
    }

    fn rollback(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let old = other(self.trial()?);
        around(&self.scripts.clone(), "ArtifactRollback", || {
            self.set(BootState {
                slot: old,
                upgrade_available: false,
                bootcount: 0,
            })
        })
    }

    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        around(
            &self.scripts.clone(),
            "ArtifactRollbackReboot",
            || match self.reboot_command.clone() {
                Some(argv) => trial::reboot(&argv, self.timeout),
                None => Ok(Reboot::Done),
            },
        )
    }

    fn cleanup(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        // The inactive slot keeps what it holds; it is overwritten by the next install.
        let (Some(scripts), Some(marker)) = (&self.scripts, self.installed_marker()) else {
            return Ok(());
        };
        // ArtifactFailure, as Mender runs it: when ArtifactInstall ran and the new slot is
        // not the one booted for good.
        if marker.exists() {
            let failed = match (self.trial(), self.state()) {
                (Ok(new), Ok(state)) => state.slot != new,
                _ => false,
            };
            if failed {
                if let Err(e) = scripts.around("ArtifactFailure", || Ok(())) {
                    tracing::warn!(error = %e, "an ArtifactFailure state script failed");
                }
            }
        }
        scripts.clear()
    }

    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        if self.reboot_command.is_none() {
            self.simulated_boot()?;
        }
        Ok(())
    }
}

impl OsInstaller {
    /// The installer `[os]` describes; the file environment defaults to `data_dir/bootenv`;
    /// state scripts are kept in `data_dir/os-scripts` and retried as `[modules]` says.
    pub fn from_config(
        os: &crate::config::OsConfig,
        modules: &super::module::ModuleSettings,
        data_dir: &std::path::Path,
    ) -> Result<Self> {
        let [a, b] = os.slots.as_slice() else {
            return Err(Error::Config {
                path: data_dir.to_owned(),
                reason: "[os] slots must name two slots".into(),
            });
        };
        let env = os
            .boot_env
            .clone()
            .unwrap_or_else(|| data_dir.join("bootenv"));
        let boot = boot::open(
            os.boot,
            env,
            &os.fw_printenv,
            &os.fw_setenv,
            &os.grub_editenv,
        );
        Ok(OsInstaller::new(
            [a.clone(), b.clone()],
            boot,
            os.bootlimit,
            os.health_check.clone(),
            os.reboot_command.clone(),
        )
        .with_timeout(capture::limit(os.timeout_secs))
        .with_scripts(
            modules
                .scripts(data_dir.join("os-scripts"))
                .with_timeout(capture::limit(os.timeout_secs)),
        ))
    }

    /// The slot the boot environment boots, and its path.
    pub fn booted_slot(&self) -> Result<(usize, PathBuf)> {
        let slot = self.state()?.slot;
        Ok((slot, self.slots[slot].clone()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_core::metadata::hashes_of;
    use ferry_core::metadata::uptane::ImageCustom;

    #[test]
    fn a_slot_is_accepted_only_when_its_first_length_bytes_match_the_signed_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let slots = [dir.path().join("a"), dir.path().join("b")];
        let env = boot::file_env::FileEnv::new(dir.path().join("env"));
        let os = OsInstaller::new(slots.clone(), Box::new(env), 3, None, None);
        let image = b"the new root file system";
        let hashes = hashes_of(image);
        let custom: ImageCustom =
            serde_json::from_value(serde_json::json!({"hardwareIds": ["x"], "domain": "os"}))
                .unwrap();
        let job = InstallJob {
            target_name: "os/new.img",
            custom: &custom,
            image: &slots[0],
            length: image.len() as u64,
            hashes: &hashes,
        };
        // A block device is longer than the image: what follows it does not matter.
        let mut device = image.to_vec();
        device.extend_from_slice(b"old tail");
        std::fs::write(&slots[1], &device).unwrap();
        os.check_slot(&job, 1, job.length, job.hashes).unwrap();
        // One byte torn.
        device[3] ^= 1;
        std::fs::write(&slots[1], &device).unwrap();
        let err = os
            .check_slot(&job, 1, job.length, job.hashes)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("slot contents check failed"), "{err}");
        assert!(err.contains("signed hashes of os/new.img"), "{err}");
        // Short.
        std::fs::write(&slots[1], &image[..5]).unwrap();
        let err = os
            .check_slot(&job, 1, job.length, job.hashes)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("slot contents check failed"), "{err}");
    }
}
