//! Domain installers behind one trait, shaped after Mender's Update Module states
//! (ArtifactInstall, NeedsArtifactReboot, ArtifactVerify, ArtifactCommit, ArtifactRollback,
//! Cleanup) so the domains issue can add `os`, `container` and `module` installers and
//! journal each transition. [`run`] drives one install and journals every step before it
//! runs; a failure after the live copy changed rolls back, and cleanup always runs.

pub mod app;

use crate::error::{Error, Result};
use ferry_core::metadata::uptane::ImageCustom;
use std::collections::BTreeMap;
use std::path::Path;

/// The outcome of an install that failed after the swap and was rolled back.
pub const RESTORED: &str = "restored the previous copy";

/// One install: the verified target and its received image.
#[derive(Debug, Clone, Copy)]
pub struct InstallJob<'a> {
    pub target_name: &'a str,
    pub custom: &'a ImageCustom,
    /// The staged image, already checked against every signed hash.
    pub image: &'a Path,
}

/// One update domain's way of installing an image. Each step must be safe to repeat: after a
/// crash the journal may run it again.
pub trait Installer: Send + std::fmt::Debug {
    /// The domain name in targets' `custom.domain` ("app").
    fn domain(&self) -> &'static str;
    /// Put the new copy in place beside the live one. Nothing live changes; a failure here
    /// needs no rollback.
    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Make the new copy live, keeping the previous one to roll back to (ArtifactInstall).
    fn install(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Whether the new copy only runs after a reboot (NeedsArtifactReboot).
    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        false
    }
    /// Check the live new copy works (ArtifactVerify*); an error rolls back.
    fn verify(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        Ok(())
    }
    /// Make the new copy permanent and drop the backup (ArtifactCommit).
    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Restore the previous copy (ArtifactRollback).
    fn rollback(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Remove whatever prepare left, whatever the outcome (Cleanup).
    fn cleanup(&mut self, job: &InstallJob<'_>) -> Result<()>;
}

/// The installers of this ECU, by domain.
#[derive(Debug, Default)]
pub struct Installers {
    by_domain: BTreeMap<&'static str, Box<dyn Installer>>,
}

impl Installers {
    pub fn new() -> Self {
        Installers::default()
    }

    pub fn add(&mut self, installer: Box<dyn Installer>) {
        self.by_domain.insert(installer.domain(), installer);
    }

    pub fn domains(&self) -> String {
        self.by_domain
            .keys()
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn get(&mut self, target: &str, domain: &str) -> Result<&mut Box<dyn Installer>> {
        let installed = self.domains();
        self.by_domain
            .get_mut(domain)
            .ok_or_else(|| Error::NoInstaller {
                target: target.to_owned(),
                domain: domain.to_owned(),
                installed,
            })
    }
}

/// Run `job` through `installer`: prepare, install, verify, commit; a failure after install
/// rolls back. `journal(state)` is called before each step and must succeed for it to run.
pub fn run(
    installer: &mut dyn Installer,
    job: &InstallJob<'_>,
    journal: &mut dyn FnMut(&'static str) -> Result<()>,
) -> Result<()> {
    let result = run_steps(installer, job, journal);
    let cleaned = journal("cleanup").and_then(|()| installer.cleanup(job));
    match (result, cleaned) {
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) => {
            // The update is live and committed; leftovers are only disk space.
            tracing::warn!(target = job.target_name, error = %e, "install cleanup failed");
            Ok(())
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn failed(job: &InstallJob<'_>, step: &'static str, e: &Error, outcome: &'static str) -> Error {
    Error::InstallFailed {
        target: job.target_name.to_owned(),
        step,
        detail: e.to_string(),
        outcome,
    }
}

fn run_steps(
    installer: &mut dyn Installer,
    job: &InstallJob<'_>,
    journal: &mut dyn FnMut(&'static str) -> Result<()>,
) -> Result<()> {
    journal("prepare")?;
    installer
        .prepare(job)
        .map_err(|e| failed(job, "prepare", &e, "nothing was changed"))?;
    if installer.needs_reboot(job) {
        // The reboot states (and resuming across them) come with the domains issue.
        return Err(Error::InstallFailed {
            target: job.target_name.to_owned(),
            step: "needs-reboot",
            detail: format!(
                "the {} installer needs a reboot, which this ECU cannot do yet",
                installer.domain()
            ),
            outcome: "nothing was changed",
        });
    }
    journal("install")?;
    // From here the live copy may have changed: any failure, the journal's included, rolls back.
    let (step, error) = match live_steps(installer, job, journal) {
        Ok(()) => return Ok(()),
        Err(failure) => failure,
    };
    match journal("rollback").and_then(|()| installer.rollback(job)) {
        Ok(()) => Err(failed(job, step, &error, RESTORED)),
        Err(rollback) => Err(Error::InstallFailed {
            target: job.target_name.to_owned(),
            step,
            detail: format!("{error}; rollback also failed: {rollback}"),
            outcome: "the previous copy could not be restored",
        }),
    }
}

fn live_steps(
    installer: &mut dyn Installer,
    job: &InstallJob<'_>,
    journal: &mut dyn FnMut(&'static str) -> Result<()>,
) -> std::result::Result<(), (&'static str, Error)> {
    installer.install(job).map_err(|e| ("install", e))?;
    journal("verify").map_err(|e| ("verify", e))?;
    installer.verify(job).map_err(|e| ("verify", e))?;
    journal("commit").map_err(|e| ("commit", e))?;
    installer.commit(job).map_err(|e| ("commit", e))
}
