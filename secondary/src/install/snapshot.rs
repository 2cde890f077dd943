//! The `snapshot` domain: the OS root as btrfs snapshots, as openSUSE MicroOS's
//! transactional-update keeps it, with Uptane verifying what arrives and the same boot
//! counting and rollback as `os`.
//!
//! The root file systems live as subvolumes `MOUNT/ferry/snapshots/N` of one btrfs file
//! system (mounted at `[snapshot] mount`, its top level); the default subvolume is the one that
//! boots. A target is a tar of a whole root file system. Download notes the new number in the
//! boot environment (`ferry_snapshot_trial`, with the booted one as `ferry_snapshot_previous`),
//! snapshots the booted root there and applies the archive onto it, writing only the files
//! that changed (an identical file keeps sharing its extents with the snapshot it came from)
//! and removing what the archive no longer holds. Install makes it the default subvolume and
//! sets `upgrade_available=1, bootcount=0`. Reboot runs `reboot_command` or is simulated
//! in-process (past `bootlimit` the simulated bootloader makes the previous snapshot the
//! default again). VerifyReboot refuses a boot of any other subvolume than the one on trial,
//! then runs the health check. Commit deletes the oldest snapshots beyond `keep`; rollback
//! makes the previous snapshot the default, and cleanup deletes the failed one.

mod apply;
mod btrfs;
mod record;

pub use apply::{apply, open_archive, Applied, Local};
pub use btrfs::Btrfs;

use super::boot::{self, BootControl, BOOTCOUNT, UPGRADE_AVAILABLE};
use super::{capture, trial, InstallJob, Installer, Reboot};
use crate::config::SnapshotConfig;
use crate::error::{Error, Result};
use crate::state::InstalledImage;
use serde::Serialize;
use std::path::{Path, PathBuf};
use trial::check;

/// The boot-environment variable naming the snapshot on trial.
pub const TRIAL: &str = "ferry_snapshot_trial";
/// The snapshot booted when the trial began.
pub const PREVIOUS: &str = "ferry_snapshot_previous";
/// The snapshot the simulated bootloader booted (only without a `reboot_command`).
pub const BOOTED: &str = "ferry_snapshot_booted";
/// Where the snapshots live, under the mounted top level.
pub const SNAPSHOTS: &str = "ferry/snapshots";

/// One kept snapshot, as `ferry-secondary snapshots` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Kept {
    pub number: u64,
    /// The target it was installed from; None for the factory root or one made by hand.
    pub target: Option<String>,
    pub version: Option<String>,
    /// The default subvolume: what boots next.
    pub default: bool,
    pub booted: bool,
}

#[derive(Debug)]
pub struct SnapshotInstaller {
    btrfs: Btrfs,
    /// The btrfs top level (subvolid 5), mounted.
    mount: PathBuf,
    /// The running root, whose subvolume is the booted snapshot after a real reboot.
    root: PathBuf,
    keep: usize,
    /// What of the running root's `/etc` survives an update.
    local: Local,
    boot: Box<dyn BootControl>,
    bootlimit: u32,
    health_check: Option<Vec<String>>,
    reboot_command: Option<Vec<String>>,
    timeout: std::time::Duration,
}

/// Where the top level is mounted: `mount`, mounted from `device` by Ferry when nothing is
/// mounted there yet.
fn top_level(
    config: &SnapshotConfig,
    data_dir: &Path,
    limit: std::time::Duration,
) -> Result<PathBuf> {
    let mount = config
        .mount
        .clone()
        .unwrap_or_else(|| data_dir.join("snapshot-top"));
    let Some(device) = &config.device else {
        return Ok(mount);
    };
    let mut probe = std::process::Command::new("mountpoint");
    probe.arg("-q").arg(&mount);
    if capture::run_command(probe, "mountpoint", limit)?.success {
        return Ok(mount);
    }
    std::fs::create_dir_all(&mount).map_err(|e| Error::io(&mount, e))?;
    let mut cmd = std::process::Command::new("mount");
    cmd.args(["-t", "btrfs", "-o", "subvolid=5"])
        .arg(device)
        .arg(&mount);
    let shown = format!(
        "mount -t btrfs -o subvolid=5 {} {}",
        device.display(),
        mount.display()
    );
    capture::run_command(cmd, "mount", limit)?
        .require_success("mount the btrfs top level", &shown)?;
    tracing::info!(device = %device.display(), mount = %mount.display(), "btrfs top level mounted");
    Ok(mount)
}

impl SnapshotInstaller {
    pub fn from_config(config: &SnapshotConfig, data_dir: &Path) -> Result<Self> {
        let env = config
            .boot_env
            .clone()
            .unwrap_or_else(|| data_dir.join("snapshot-bootenv"));
        let timeout = capture::limit(config.timeout_secs);
        Ok(SnapshotInstaller {
            btrfs: Btrfs {
                program: config.btrfs.clone(),
                limit: timeout,
            },
            mount: top_level(config, data_dir, timeout)?,
            root: config.root.clone(),
            keep: config.keep,
            local: Local {
                merge_etc: config.etc == crate::config::EtcMode::Merge,
                keep: config.etc_keep.iter().cloned().collect(),
            },
            boot: boot::open(
                config.boot,
                env,
                &config.fw_printenv,
                &config.fw_setenv,
                &config.grub_editenv,
            ),
            bootlimit: config.bootlimit,
            health_check: config.health_check.clone(),
            reboot_command: config.reboot_command.clone().filter(|a| !a.is_empty()),
            timeout,
        })
    }

    pub fn path(&self, n: u64) -> PathBuf {
        self.mount.join(SNAPSHOTS).join(n.to_string())
    }

    /// The snapshot numbers present, ascending.
    pub fn snapshots(&self) -> Result<Vec<u64>> {
        let dir = self.mount.join(SNAPSHOTS);
        let mut found: Vec<u64> = std::fs::read_dir(&dir)
            .map_err(|e| Error::io(&dir, e))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        found.sort_unstable();
        Ok(found)
    }

    fn var(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.boot.get()?.get(name).and_then(|v| v.parse().ok()))
    }

    fn trial(&self) -> Result<u64> {
        self.var(TRIAL)?.ok_or_else(|| {
            check(
                "snapshot on trial",
                format!("no {TRIAL} in the {}", self.boot.describe()),
                "a snapshot number, set when the archive was applied".into(),
            )
        })
    }

    fn previous(&self) -> Result<u64> {
        self.var(PREVIOUS)?.ok_or_else(|| {
            check(
                "previous snapshot",
                format!("no {PREVIOUS} in the {}", self.boot.describe()),
                "the snapshot booted when the update began".into(),
            )
        })
    }

    /// The snapshot whose subvolume has `id`.
    fn number_of(&self, id: u64) -> Result<Option<u64>> {
        for n in self.snapshots()? {
            if self.btrfs.id_of(&self.path(n))? == id {
                return Ok(Some(n));
            }
        }
        Ok(None)
    }

    /// The snapshot the file system boots by default.
    pub fn default_snapshot(&self) -> Result<Option<u64>> {
        let id = self.btrfs.default_id(&self.mount)?;
        self.number_of(id)
    }

    /// The snapshot running now: the root's subvolume after a real boot, the simulated
    /// bootloader's choice otherwise (the default subvolume on a device never updated).
    pub fn booted(&self) -> Result<Option<u64>> {
        if self.reboot_command.is_some() {
            let id = self.btrfs.id_of(&self.root)?;
            return self.number_of(id);
        }
        match self.var(BOOTED)? {
            Some(n) => Ok(Some(n)),
            None => self.default_snapshot(),
        }
    }

    fn simulated_boot(&mut self) -> Result<()> {
        let state = boot::read(self.boot.as_ref())?;
        if state.upgrade_available {
            let count = state.bootcount.saturating_add(1);
            self.boot.set(&[(BOOTCOUNT, count.to_string())])?;
            if count > self.bootlimit {
                tracing::warn!(
                    bootcount = count,
                    bootlimit = self.bootlimit,
                    "boot limit passed: booting the previous snapshot (simulated bootloader)"
                );
                let previous = self.previous()?;
                self.btrfs.set_default(&self.path(previous))?;
                self.boot.set(&[(UPGRADE_AVAILABLE, "0".to_owned())])?;
            }
        }
        if let Some(n) = self.default_snapshot()? {
            self.boot.set(&[(BOOTED, n.to_string())])?;
        }
        Ok(())
    }

    fn reboot_or_simulate(&mut self) -> Result<Reboot> {
        match self.reboot_command.clone() {
            Some(argv) => trial::reboot(&argv, self.timeout),
            None => self.simulated_boot().map(|()| Reboot::Done),
        }
    }

    fn health(&self, n: u64) -> Result<()> {
        let env = [
            ("FERRY_SNAPSHOT", n.to_string()),
            ("FERRY_SNAPSHOT_PATH", self.path(n).display().to_string()),
        ];
        let on = format!("snapshot {n}");
        trial::health(
            "snapshot health",
            self.health_check.as_deref(),
            &env,
            &on,
            self.timeout,
        )
    }

    /// Delete the oldest snapshots past `keep`, never the booted or the default one.
    fn prune(&self) -> Result<()> {
        let all = self.snapshots()?;
        let protected = [self.booted()?, self.default_snapshot()?];
        let mut excess = all.len().saturating_sub(self.keep);
        for n in all {
            if excess == 0 {
                break;
            }
            if protected.contains(&Some(n)) {
                continue;
            }
            self.btrfs.delete(&self.path(n))?;
            record::remove(&self.mount, n)?;
            excess -= 1;
        }
        Ok(())
    }
}

/// The operator's way back (`ferry-secondary rollback --to N`), outside any install.
impl SnapshotInstaller {
    /// The kept snapshots, oldest first, with what each holds.
    pub fn kept(&self) -> Result<Vec<Kept>> {
        let default = self.default_snapshot()?;
        let booted = self.booted()?;
        let mut out = Vec::new();
        for n in self.snapshots()? {
            let image = record::read(&self.mount, n)?;
            out.push(Kept {
                number: n,
                version: image
                    .as_ref()
                    .and_then(|i| i.custom.get("version")?.as_str().map(str::to_owned)),
                target: image.map(|i| i.target),
                default: default == Some(n),
                booted: booted == Some(n),
            });
        }
        Ok(out)
    }

    /// Make kept snapshot `n` the default subvolume, so it boots next (at once, when the
    /// reboot is simulated), and return what it holds. Refused while an upgrade is on trial,
    /// for a snapshot not kept or running already, and for one without a record.
    pub fn rollback_to(&mut self, n: u64) -> Result<InstalledImage> {
        trial::no_upgrade_on_trial(self.boot.as_ref(), "snapshot rollback")?;
        let kept = self.snapshots()?;
        if !kept.contains(&n) {
            return Err(check(
                "snapshot rollback",
                format!("snapshot {n} is not kept (kept: {kept:?})"),
                "one of the kept snapshots".into(),
            ));
        }
        if self.default_snapshot()? == Some(n) && self.booted()? == Some(n) {
            return Err(check(
                "snapshot rollback",
                format!("snapshot {n} runs already"),
                "a snapshot other than the running one".into(),
            ));
        }
        let image = record::read(&self.mount, n)?.ok_or_else(|| {
            check(
                "snapshot rollback",
                format!("snapshot {n} has no record of the image it holds"),
                "a snapshot a Ferry install made (the factory root has none)".into(),
            )
        })?;
        self.btrfs.set_default(&self.path(n))?;
        if self.reboot_command.is_none() {
            self.boot.set(&[(BOOTED, n.to_string())])?;
        }
        tracing::warn!(snapshot = n, target = %image.target, "rolled back by the operator");
        Ok(image)
    }
}

impl Installer for SnapshotInstaller {
    fn domain(&self) -> &'static str {
        "snapshot"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        trial::no_upgrade_on_trial(self.boot.as_ref(), "snapshot")?;
        let booted = self.booted()?.ok_or_else(|| {
            check(
                "booted snapshot",
                format!(
                    "no subvolume under {} boots",
                    self.mount.join(SNAPSHOTS).display()
                ),
                "the running root to be one of them (set it as the default subvolume)".into(),
            )
        })?;
        let new = self
            .snapshots()?
            .last()
            .copied()
            .unwrap_or(booted)
            .max(booted)
            + 1;
        self.boot
            .set(&[(TRIAL, new.to_string()), (PREVIOUS, booted.to_string())])?;
        self.btrfs.snapshot(&self.path(booted), &self.path(new))?;
        let applied = apply(open_archive(job.image)?, &self.path(new), &self.local)?;
        tracing::info!(
            snapshot = new,
            from = booted,
            written = applied.written,
            unchanged = applied.unchanged,
            removed = applied.removed,
            "root file system applied"
        );
        Ok(())
    }

    fn install(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        self.btrfs.set_default(&self.path(trial))?;
        trial::set_upgrade(self.boot.as_mut(), true, 0)
    }

    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        true
    }

    fn reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        self.reboot_or_simulate()
    }

    fn verify_reboot(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let booted = self.booted()?;
        let state = boot::read(self.boot.as_ref())?;
        if booted != Some(trial) {
            return Err(check(
                "booted snapshot",
                format!(
                    "snapshot {booted:?} booted (bootcount {}, bootlimit {})",
                    state.bootcount, self.bootlimit
                ),
                format!("snapshot {trial} on trial"),
            ));
        }
        trial::within_boot_limit(&state, self.bootlimit)?;
        self.health(trial)
    }

    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let custom = serde_json::to_value(job.custom).map_err(|e| {
            check(
                "snapshot record",
                e.to_string(),
                "the target's custom metadata as JSON".into(),
            )
        })?;
        let image = InstalledImage {
            target: job.target_name.to_owned(),
            length: job.length,
            hashes: job.hashes.clone(),
            custom,
        };
        record::write(&self.mount, trial, &image)?;
        trial::set_upgrade(self.boot.as_mut(), false, 0)?;
        self.prune()
    }

    fn rollback(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let previous = self.previous()?;
        self.btrfs.set_default(&self.path(previous))?;
        trial::set_upgrade(self.boot.as_mut(), false, 0)
    }

    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        self.reboot_or_simulate()
    }

    fn cleanup(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        // A snapshot on trial that is not what boots now failed (or never got that far).
        let Some(trial) = self.var(TRIAL)? else {
            return Ok(());
        };
        let path = self.path(trial);
        if path.exists() && self.default_snapshot()? != Some(trial) && self.booted()? != Some(trial)
        {
            self.btrfs.delete(&path)?;
        }
        Ok(())
    }

    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        if self.reboot_command.is_none() {
            self.simulated_boot()?;
        }
        Ok(())
    }
}
