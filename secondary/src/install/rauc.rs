//! The `rauc` domain: the OS as RAUC bundles, installed by the ECU's `rauc service` into its
//! inactive slot, with Uptane verifying the bundle file first and RAUC's own signature check
//! (against its keyring) as a second lock; the same boot counting and rollback as `os`.
//!
//! Download asks RAUC to check the verified bundle (`rauc info`: its CMS signature against
//! the keyring of `system_conf`, and its compatible against the running system's), so a
//! bundle RAUC would refuse is refused before anything changes; it then keeps the bundle in
//! the data directory (the staged image is gone after a restart) and notes the booted slot
//! (`ferry_rauc_previous`). Install is `rauc install` (RAUC writes the inactive slot and makes
//! it the bootloader's primary); Ferry then checks that the new primary holds the image the
//! bundle names (RAUC's recorded sha256) and notes it (`ferry_rauc_trial`), then
//! `upgrade_available=1, bootcount=0`. Reboot runs `reboot_command` or is simulated
//! in-process: the simulated bootloader boots the primary slot, or the previous one past
//! `bootlimit`, and runs `simulated_boot_hook`, which must restart `rauc service` as booted
//! from that slot (tests do, with `--override-boot-slot`). VerifyReboot refuses a boot of any
//! other slot, then runs the health check; commit is `rauc status mark-good`; rollback marks
//! the new slot bad and the previous one active again.

mod tool;

use super::boot::{self, BootControl, BOOTCOUNT, UPGRADE_AVAILABLE};
use super::{capture, trial, InstallJob, Installer, Reboot};
use crate::config::RaucConfig;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
pub use tool::{parse_info, parse_status, BundleInfo, Mark, Rauc, Status};
use trial::check;

/// The boot-environment variable naming the slot on trial ("rootfs.1").
pub const TRIAL: &str = "ferry_rauc_trial";
/// The slot booted when the update began.
pub const PREVIOUS: &str = "ferry_rauc_previous";
/// The slot the simulated bootloader booted (only without a `reboot_command`).
pub const BOOTED: &str = "ferry_rauc_booted";

#[derive(Debug)]
pub struct RaucInstaller {
    rauc: Rauc,
    /// Where the verified bundle waits between Download and Install.
    staged: PathBuf,
    /// What `rauc info` said of the staged bundle in Download, so Install need not hash it
    /// again (Install always follows Download in one run: a restart between them rolls back).
    prepared: Option<BundleInfo>,
    boot: Box<dyn BootControl>,
    bootlimit: u32,
    health_check: Option<Vec<String>>,
    reboot_command: Option<Vec<String>>,
    simulated_boot_hook: Option<Vec<String>>,
    timeout: std::time::Duration,
}

impl RaucInstaller {
    pub fn from_config(config: &RaucConfig, data_dir: &Path) -> Result<Self> {
        let env = config
            .boot_env
            .clone()
            .unwrap_or_else(|| data_dir.join("rauc-bootenv"));
        let timeout = capture::limit(config.timeout_secs);
        Ok(RaucInstaller {
            rauc: Rauc {
                program: config.rauc.clone(),
                system_conf: config.system_conf.clone(),
                bus: config.bus.clone(),
                limit: timeout,
            },
            staged: data_dir.join("rauc-bundle.raucb"),
            prepared: None,
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
            simulated_boot_hook: config.simulated_boot_hook.clone().filter(|a| !a.is_empty()),
            timeout,
        })
    }

    fn var(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .boot
            .get()?
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned())
    }

    fn required(&self, name: &str, what: &'static str, expected: &str) -> Result<String> {
        self.var(name)?.ok_or_else(|| {
            check(
                what,
                format!("no {name} in the {}", self.boot.describe()),
                expected.to_owned(),
            )
        })
    }

    fn trial(&self) -> Result<String> {
        self.required(TRIAL, "rauc slot on trial", "the slot RAUC installed into")
    }

    fn previous(&self) -> Result<String> {
        self.required(
            PREVIOUS,
            "previous rauc slot",
            "the slot booted when the update began",
        )
    }

    /// The slot running now: RAUC's booted slot after a real boot, the simulated bootloader's
    /// choice otherwise (RAUC's booted slot on a device never updated).
    fn booted(&self, status: &Status) -> Result<Option<String>> {
        if self.reboot_command.is_none() {
            if let Some(slot) = self.var(BOOTED)? {
                return Ok(Some(slot));
            }
        }
        Ok(status.booted_slot())
    }

    /// The bootloader's part of a boot, simulated: the primary slot, or the previous one once
    /// an upgrade on trial has used up its boots; then the hook that restarts `rauc service`.
    fn simulated_boot(&mut self) -> Result<()> {
        let state = boot::read(self.boot.as_ref())?;
        let status = self.rauc.status()?;
        let mut choice = status.boot_primary.clone().or(status.booted_slot());
        if state.upgrade_available {
            let count = state.bootcount.saturating_add(1);
            self.boot.set(&[(BOOTCOUNT, count.to_string())])?;
            if count > self.bootlimit {
                tracing::warn!(
                    bootcount = count,
                    bootlimit = self.bootlimit,
                    "boot limit passed: booting the previous slot (simulated bootloader)"
                );
                choice = Some(self.previous()?);
                self.boot.set(&[(UPGRADE_AVAILABLE, "0".to_owned())])?;
            }
        }
        let Some(slot) = choice else {
            return Err(check(
                "rauc boot slot",
                "RAUC names neither a primary nor a booted slot".into(),
                "a system.conf with bootable slots".into(),
            ));
        };
        self.boot.set(&[(BOOTED, slot.clone())])?;
        let bootname = status
            .slot(&slot)
            .and_then(|s| s.bootname.clone())
            .unwrap_or_default();
        if let Some(argv) = &self.simulated_boot_hook {
            let env = [
                ("FERRY_RAUC_SLOT", slot.clone()),
                ("FERRY_RAUC_BOOTNAME", bootname),
            ];
            trial::health(
                "rauc simulated boot hook",
                Some(argv),
                &env,
                &format!("slot {slot}"),
                self.timeout,
            )?;
        }
        Ok(())
    }

    fn reboot_or_simulate(&mut self) -> Result<Reboot> {
        match self.reboot_command.clone() {
            Some(argv) => trial::reboot(&argv, self.timeout),
            None => self.simulated_boot().map(|()| Reboot::Done),
        }
    }

    /// RAUC must believe what the simulated bootloader booted, or its next install would
    /// write the running slot: refuse to go on when a hook did not keep it in step.
    fn rauc_agrees(&self, status: &Status) -> Result<()> {
        if self.reboot_command.is_some() {
            return Ok(());
        }
        let Some(simulated) = self.var(BOOTED)? else {
            return Ok(());
        };
        let rauc = status.booted_slot();
        if rauc.as_deref() != Some(simulated.as_str()) {
            return Err(check(
                "rauc booted slot",
                format!("RAUC says {rauc:?} booted, the simulated bootloader booted {simulated}"),
                "a simulated_boot_hook that restarts rauc service booted from \
                 $FERRY_RAUC_BOOTNAME"
                    .into(),
            ));
        }
        Ok(())
    }

    fn health(&self, status: &Status, slot: &str) -> Result<()> {
        let s = status.slot(slot);
        let env = [
            ("FERRY_RAUC_SLOT", slot.to_owned()),
            (
                "FERRY_RAUC_DEVICE",
                s.and_then(|s| s.device.clone()).unwrap_or_default(),
            ),
            (
                "FERRY_RAUC_VERSION",
                s.and_then(|s| s.installed_version().map(str::to_owned))
                    .unwrap_or_default(),
            ),
        ];
        trial::health(
            "rauc health",
            self.health_check.as_deref(),
            &env,
            &format!("slot {slot}"),
            self.timeout,
        )
    }

    /// Keep the verified bundle for Install: a hard link where the file system allows it.
    fn stage(&self, image: &Path) -> Result<()> {
        let _ = std::fs::remove_file(&self.staged);
        if std::fs::hard_link(image, &self.staged).is_err() {
            std::fs::copy(image, &self.staged).map_err(|e| Error::io(&self.staged, e))?;
        }
        Ok(())
    }

    /// After `rauc install`: the new primary slot, which must not be the previous one and must
    /// hold the image the bundle names for its class.
    fn installed_slot(&self, info: &BundleInfo, previous: &str) -> Result<String> {
        let status = self.rauc.status()?;
        let primary = status.boot_primary.clone().unwrap_or_default();
        if primary.is_empty() || primary == previous {
            return Err(check(
                "rauc installed slot",
                format!("RAUC's primary slot is {primary:?} after rauc install"),
                format!("a slot other than {previous}, the one booted"),
            ));
        }
        let slot = status.slot(&primary).ok_or_else(|| {
            check(
                "rauc installed slot",
                format!("no slot {primary} in rauc status"),
                "the primary slot among RAUC's slots".into(),
            )
        })?;
        let expected = info.image_for(&slot.class).map(|i| i.checksum.as_str());
        if expected.is_none() || slot.installed_sha256() != expected {
            return Err(check(
                "rauc installed image",
                format!(
                    "slot {primary} records sha256 {:?}",
                    slot.installed_sha256()
                ),
                format!("{expected:?}, the bundle's image for class {}", slot.class),
            ));
        }
        Ok(primary)
    }
}

impl Installer for RaucInstaller {
    fn domain(&self) -> &'static str {
        "rauc"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        trial::no_upgrade_on_trial(self.boot.as_ref(), "rauc")?;
        let info = self.rauc.info(job.image)?;
        let status = self.rauc.status()?;
        if info.compatible != status.compatible {
            return Err(check(
                "rauc compatible",
                format!("bundle {} is for {:?}", job.target_name, info.compatible),
                format!("{:?}, this system's compatible", status.compatible),
            ));
        }
        self.rauc_agrees(&status)?;
        let booted = self.booted(&status)?.ok_or_else(|| {
            check(
                "rauc booted slot",
                "RAUC names no booted slot".into(),
                "rauc service started on a system booted from one of its slots".into(),
            )
        })?;
        self.stage(job.image)?;
        self.prepared = Some(info);
        self.boot.set(&[(PREVIOUS, booted), (TRIAL, String::new())])
    }

    fn install(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let previous = self.previous()?;
        let info = match self.prepared.take() {
            Some(info) => info,
            None => self.rauc.info(&self.staged)?,
        };
        // On trial before RAUC switches the primary slot, so a boot after a power loss
        // mid-install is counted.
        trial::set_upgrade(self.boot.as_mut(), true, 0)?;
        // The second lock: RAUC checks the signature again as it installs.
        self.rauc.install(&self.staged)?;
        let trial = self.installed_slot(&info, &previous)?;
        self.boot.set(&[(TRIAL, trial)])
    }

    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        true
    }

    fn reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        self.reboot_or_simulate()
    }

    fn verify_reboot(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let status = self.rauc.status()?;
        let booted = self.booted(&status)?;
        let state = boot::read(self.boot.as_ref())?;
        if booted.as_deref() != Some(trial.as_str()) {
            return Err(check(
                "booted rauc slot",
                format!(
                    "slot {booted:?} booted (bootcount {}, bootlimit {})",
                    state.bootcount, self.bootlimit
                ),
                format!("slot {trial} on trial"),
            ));
        }
        trial::within_boot_limit(&state, self.bootlimit)?;
        self.rauc_agrees(&status)?;
        self.health(&status, &trial)
    }

    fn commit(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        self.rauc.mark(Mark::Good, &trial)?;
        trial::set_upgrade(self.boot.as_mut(), false, 0)
    }

    fn rollback(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let previous = self.previous()?;
        // The slot RAUC made primary, whether or not the install got as far as noting it.
        let status = self.rauc.status()?;
        let failed = self
            .var(TRIAL)?
            .or(status.boot_primary.clone())
            .filter(|s| *s != previous);
        if let Some(failed) = failed {
            self.rauc.mark(Mark::Bad, &failed)?;
        }
        self.rauc.mark(Mark::Active, &previous)?;
        trial::set_upgrade(self.boot.as_mut(), false, 0)
    }

    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        self.reboot_or_simulate()
    }

    fn cleanup(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        self.prepared = None;
        match std::fs::remove_file(&self.staged) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.staged, e)),
            _ => Ok(()),
        }
    }

    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        if self.reboot_command.is_none() {
            self.simulated_boot()?;
        }
        Ok(())
    }
}
