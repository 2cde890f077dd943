//! The `ostree` domain: the OS as OSTree commits deployed in a sysroot, as Torizon runs it,
//! with Uptane verifying what arrives and the same boot counting and rollback as `os`.
//!
//! A target's file is a static delta (`custom.ostree.delivery = "static-delta"`) whose signed
//! hashes Uptane checked before Download. Download applies it to the sysroot's repository
//! (`static-delta apply-offline`) and refuses the target unless the repository then holds the
//! commit the signed metadata names: a delta that yields another commit deploys nothing. A
//! pull target (`delivery = "pull"`) has no file: its signed sha256 is the commit, and
//! Download pulls exactly that commit from the signed URL, then makes the same check. The
//! commit on trial and the one it replaces are noted in the boot environment first
//! (`ferry_ostree_trial`, `ferry_ostree_previous`), so every later step, after any restart,
//! knows both. Install deploys the commit (`ostree admin deploy`, deployment 0: the bootloader's
//! default) and pins the previous deployment, the known good one, so no cleanup removes the
//! way back; then `upgrade_available=1, bootcount=0`. Reboot runs `reboot_command` or, without
//! one, is simulated in-process: the bootloader boots deployment 0, or deployment 1 (the
//! rollback) past `bootlimit`. VerifyReboot refuses a boot of any commit but the one on trial
//! (read from the kernel command line's `ostree=` on a real boot), then runs the health check.
//! Commit moves the pin to the new deployment; rollback undeploys the failed one, so the
//! previous one is the default again.

mod tool;

use super::boot::{self, BootControl, BOOTCOUNT, UPGRADE_AVAILABLE};
use super::{capture, trial, InstallJob, Installer, Reboot};
use crate::config::OstreeConfig;
use crate::error::{Error, Result};
use ferry_core::metadata::received::ostree_pull_commit;
use ferry_core::metadata::uptane::{is_ostree_checksum, OstreeCustom, OstreeDelivery};
use ferry_core::metadata::TargetFile;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
pub use tool::{parse_status, Deployment, Ostree};
use trial::check;

/// The boot-environment variable naming the commit on trial.
pub const TRIAL: &str = "ferry_ostree_trial";
/// The commit booted when the trial began.
pub const PREVIOUS: &str = "ferry_ostree_previous";
/// The commit whose deployment Ferry pinned as the known good one.
pub const KNOWN_GOOD: &str = "ferry_ostree_known_good";
/// The commit the simulated bootloader booted (only without a `reboot_command`).
pub const BOOTED: &str = "ferry_ostree_booted";
/// The repository ref that keeps the commit on trial from being pruned before it is deployed.
const TRIAL_REF: &str = "ferry/trial";

#[derive(Debug)]
pub struct OstreeInstaller {
    ostree: Ostree,
    /// The stateroot (`ostree admin os-init NAME`) this ECU's OS is deployed in.
    stateroot: String,
    /// The remote pull targets are pulled through (`None`: Ferry's own, `ferry`).
    remote: Option<String>,
    boot: Box<dyn BootControl>,
    bootlimit: u32,
    health_check: Option<Vec<String>>,
    /// None: the reboot is simulated in-process (tests, demo).
    reboot_command: Option<Vec<String>>,
    /// Where a real boot names its deployment (`ostree=` on the kernel command line).
    cmdline: PathBuf,
    timeout: std::time::Duration,
}

impl OstreeInstaller {
    pub fn from_config(config: &OstreeConfig, data_dir: &Path) -> Result<Self> {
        let env = config
            .boot_env
            .clone()
            .unwrap_or_else(|| data_dir.join("ostree-bootenv"));
        let timeout = capture::limit(config.timeout_secs);
        Ok(OstreeInstaller {
            ostree: Ostree {
                program: config.ostree.clone(),
                sysroot: config.sysroot.clone(),
                limit: timeout,
            },
            stateroot: config.os.clone(),
            remote: config.remote.clone(),
            boot: boot::open(
                config.boot,
                env,
                &config.fw_printenv,
                &config.fw_setenv,
                &config.grub_editenv,
            ),
            bootlimit: config.bootlimit,
            health_check: config.health_check.clone(),
            reboot_command: config.reboot_command.clone(),
            cmdline: config.cmdline.clone(),
            timeout,
        })
    }

    fn vars(&self) -> Result<BTreeMap<String, String>> {
        self.boot.get()
    }

    fn var(&self, name: &str) -> Result<String> {
        Ok(self.vars()?.get(name).cloned().unwrap_or_default())
    }

    /// The commit on trial, as Download noted it.
    fn trial(&self) -> Result<String> {
        let commit = self.var(TRIAL)?;
        if is_ostree_checksum(&commit) {
            Ok(commit)
        } else {
            Err(check(
                "ostree commit on trial",
                format!("{TRIAL}={commit:?} in the {}", self.boot.describe()),
                "a commit checksum, set when the delta was applied".into(),
            ))
        }
    }

    /// This stateroot's deployments, in boot order.
    fn deployments(&self) -> Result<Vec<Deployment>> {
        Ok(self
            .ostree
            .deployments()?
            .into_iter()
            .filter(|d| d.stateroot == self.stateroot)
            .collect())
    }

    fn deployment_of(&self, commit: &str) -> Result<Option<Deployment>> {
        Ok(self.deployments()?.into_iter().find(|d| d.commit == commit))
    }

    /// The commit running now: the kernel command line's deployment on a real boot, the
    /// simulated bootloader's choice otherwise (deployment 0 on a device never updated).
    pub fn booted(&self) -> Result<Option<String>> {
        if self.reboot_command.is_some() {
            return self.booted_from_cmdline().map(Some);
        }
        let noted = self.var(BOOTED)?;
        if is_ostree_checksum(&noted) {
            return Ok(Some(noted));
        }
        Ok(self.deployments()?.first().map(|d| d.commit.clone()))
    }

    fn booted_from_cmdline(&self) -> Result<String> {
        let path = &self.cmdline;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let arg = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("ostree="))
            .ok_or_else(|| {
                check(
                    "booted deployment",
                    format!("no ostree= argument in {}", path.display()),
                    "a kernel booted by an OSTree bootloader entry".into(),
                )
            })?;
        // ostree=/ostree/boot.N/STATEROOT/BOOTCSUM/SERIAL links to the deployment's checkout.
        let link = self.ostree.sysroot.join(arg.trim_start_matches('/'));
        let target = std::fs::canonicalize(&link).map_err(|e| Error::io(&link, e))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match name.split_once('.') {
            Some((commit, _)) if is_ostree_checksum(commit) => Ok(commit.to_owned()),
            _ => Err(check(
                "booted deployment",
                format!("{} resolves to {}", link.display(), target.display()),
                "a deployment checkout named COMMIT.SERIAL".into(),
            )),
        }
    }

    /// The bootloader's part of a boot, simulated: deployment 0, or the rollback deployment
    /// once an upgrade on trial has used up its boots.
    fn simulated_boot(&mut self) -> Result<()> {
        let state = boot::read(self.boot.as_ref())?;
        let deployments = self.deployments()?;
        let mut choice = 0;
        let mut vars = Vec::new();
        if state.upgrade_available {
            let count = state.bootcount.saturating_add(1);
            vars.push((BOOTCOUNT, count.to_string()));
            if count > self.bootlimit {
                tracing::warn!(
                    bootcount = count,
                    bootlimit = self.bootlimit,
                    "boot limit passed: booting the rollback deployment (simulated bootloader)"
                );
                choice = 1;
                vars.push((UPGRADE_AVAILABLE, "0".to_owned()));
            }
        }
        if let Some(d) = deployments.get(choice).or(deployments.first()) {
            vars.push((BOOTED, d.commit.clone()));
        }
        self.boot.set(&vars)
    }

    fn reboot_or_simulate(&mut self) -> Result<Reboot> {
        match self.reboot_command.clone().filter(|a| !a.is_empty()) {
            Some(argv) => trial::reboot(&argv, self.timeout),
            None => self.simulated_boot().map(|()| Reboot::Done),
        }
    }

    fn health(&self, commit: &str) -> Result<()> {
        let deployment = self
            .deployment_of(commit)?
            .map(|d| d.path(&self.ostree.sysroot).display().to_string())
            .unwrap_or_default();
        let env = [
            ("FERRY_OSTREE_COMMIT", commit.to_owned()),
            ("FERRY_OSTREE_DEPLOYMENT", deployment),
        ];
        let on = format!("commit {commit}");
        trial::health(
            "ostree health",
            self.health_check.as_deref(),
            &env,
            &on,
            self.timeout,
        )
    }

    /// A pull target's Download: core's rule ([`ostree_pull_commit`]) checked again here, as
    /// this is where it matters (the signed sha256 is the commit, the image was empty), then
    /// exactly that commit pulled from the signed URL. ostree checks each object's checksum
    /// as it arrives, so a server serving other bytes fails the pull; the caller then checks
    /// that the repository holds the signed commit, and a pull cut short is refused here.
    fn pull(&self, job: &InstallJob<'_>, custom: &OstreeCustom) -> Result<()> {
        let signed = TargetFile {
            custom: Some(
                serde_json::to_value(job.custom)
                    .map_err(|e| check("ostree pull target", e.to_string(), "its custom".into()))?,
            ),
            hashes: job.hashes.clone(),
            length: job.length,
            extra: BTreeMap::new(),
        };
        let commit = ostree_pull_commit(job.target_name, &signed)
            .map_err(|e| check("ostree pull target", e.to_string(), "a pull target".into()))?;
        if commit.as_deref() != Some(custom.commit.as_str()) {
            return Err(check(
                "ostree pull target",
                format!("target {} is no pull target", job.target_name),
                format!("a pull of commit {}", custom.commit),
            ));
        }
        let url = custom.url.as_deref().unwrap_or_default();
        tracing::info!(target = %job.target_name, commit = %custom.commit, %url, "pulling the signed OSTree commit");
        self.ostree
            .pull(self.remote.as_deref(), url, &custom.commit)?;
        if self.ostree.is_partial(&custom.commit)? {
            return Err(check(
                "ostree pull",
                format!(
                    "commit {} of {} is marked partial in {}",
                    custom.commit,
                    job.target_name,
                    self.ostree.repo().display()
                ),
                "every object of the commit pulled".into(),
            ));
        }
        Ok(())
    }

    /// The signed `custom.ostree` of the job.
    fn custom(job: &InstallJob<'_>) -> Result<OstreeCustom> {
        let custom = job
            .custom
            .ostree(job.target_name)
            .map_err(|e| check("ostree target", e.to_string(), "valid custom.ostree".into()))?;
        custom.ok_or_else(|| {
            check(
                "ostree target",
                format!("target {} has no custom.ostree", job.target_name),
                "custom.ostree naming the commit the target delivers".into(),
            )
        })
    }
}

impl Installer for OstreeInstaller {
    fn domain(&self) -> &'static str {
        "ostree"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let custom = Self::custom(job)?;
        trial::no_upgrade_on_trial(self.boot.as_ref(), "ostree")?;
        let booted = self.booted()?.unwrap_or_default();
        match custom.delivery {
            OstreeDelivery::StaticDelta => {
                if let Some(from) = &custom.from {
                    if !self.ostree.has_commit(from)? {
                        return Err(check(
                            "ostree delta base",
                            format!(
                                "the delta of {} is from commit {from}, which {} lacks",
                                job.target_name,
                                self.ostree.repo().display()
                            ),
                            "a delta from a commit this ECU holds".into(),
                        ));
                    }
                }
                self.ostree.apply_delta(job.image)?;
            }
            OstreeDelivery::Pull => self.pull(job, &custom)?,
        }
        if !self.ostree.has_commit(&custom.commit)? {
            return Err(check(
                "ostree commit",
                format!(
                    "after {} {}, {} holds no commit {}",
                    match custom.delivery {
                        OstreeDelivery::StaticDelta => "applying",
                        OstreeDelivery::Pull => "pulling",
                    },
                    job.target_name,
                    self.ostree.repo().display(),
                    custom.commit
                ),
                "the delivery to yield the commit the signed metadata names".into(),
            ));
        }
        self.ostree.set_ref(TRIAL_REF, &custom.commit)?;
        self.boot
            .set(&[(TRIAL, custom.commit.clone()), (PREVIOUS, booted)])
    }

    fn install(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let previous = self.var(PREVIOUS)?;
        let first = self.deployments()?.into_iter().next();
        if first.as_ref().map(|d| d.commit.as_str()) != Some(trial.as_str()) {
            self.ostree.deploy(&self.stateroot, &trial)?;
        }
        // Pin the way back, unless it is pinned already (by Ferry before, or by the operator).
        if let Some(old) = self
            .deployments()?
            .into_iter()
            .skip(1)
            .find(|d| d.commit == previous)
        {
            if !old.pinned {
                self.ostree.pin(old.index, true)?;
                self.boot.set(&[(KNOWN_GOOD, previous.clone())])?;
            }
        }
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
        let booted = self.booted()?.unwrap_or_default();
        let state = boot::read(self.boot.as_ref())?;
        if booted != trial {
            return Err(check(
                "booted deployment",
                format!(
                    "commit {booted:?} booted (bootcount {}, bootlimit {})",
                    state.bootcount, self.bootlimit
                ),
                format!("commit {trial} on trial"),
            ));
        }
        trial::within_boot_limit(&state, self.bootlimit)?;
        self.health(&trial)
    }

    fn commit(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let known_good = self.var(KNOWN_GOOD)?;
        // The pin moves to the new known good deployment; the old one may now be cleaned up.
        if let Some(new) = self.deployment_of(&trial)? {
            if !new.pinned {
                self.ostree.pin(new.index, true)?;
            }
        }
        if known_good != trial {
            if let Some(old) = self.deployment_of(&known_good)? {
                if old.pinned {
                    self.ostree.pin(old.index, false)?;
                }
            }
        }
        self.boot.set(&[(KNOWN_GOOD, trial)])?;
        trial::set_upgrade(self.boot.as_mut(), false, 0)
    }

    fn rollback(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let trial = self.trial()?;
        let previous = self.var(PREVIOUS)?;
        if let Some(failed) = self.deployment_of(&trial)? {
            if trial != previous {
                if failed.pinned {
                    self.ostree.pin(failed.index, false)?;
                }
                self.ostree.undeploy(failed.index)?;
            }
        }
        trial::set_upgrade(self.boot.as_mut(), false, 0)
    }

    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        self.reboot_or_simulate()
    }

    fn cleanup(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        self.ostree.delete_ref(TRIAL_REF)
    }

    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        if self.reboot_command.is_none() {
            self.simulated_boot()?;
        }
        Ok(())
    }
}
