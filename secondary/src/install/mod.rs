//! Domain installers behind one trait, driven through Mender's Update Module states.
//!
//! # The contract (read this before writing an installer)
//!
//! States, each journaled in `state.db` *before* it runs (`state::journal`):
//! `download` ([`Installer::prepare`]: the new copy beside the live one, nothing live
//! changes) → `install` (make it live, keeping the old one) → `reboot` and `verify-reboot`
//! when [`Installer::needs_reboot`], else `verify` → `commit` (the install record and provides
//! change in the same transaction that journals `cleanup`) → `cleanup`. A failure after
//! `download` goes `rollback` (→ `rollback-reboot` when the domain reboots) → `failure` (the
//! outcome recorded in the same transaction) → `cleanup`. NeedsReboot is a query with no side
//! effect, so it is not journaled. After a restart ([`resume`]): `download` → failure,
//! nothing changed; `install` → rollback; `reboot`, `verify-reboot`, `verify` → verify again,
//! then commit or roll back; `commit` → commit again; `rollback` → rollback again;
//! `rollback-reboot` and `failure` → the outcome, then cleanup; `cleanup` → cleanup again.
//!
//! With application confirmation ([`Installer::confirm_timeout`], `confirm = "app"`), a
//! verified install journals `confirm` and stops there ([`Finish::ConfirmPending`]);
//! `ferry-secondary confirm` journals `confirmed` from another process, and the daemon's
//! periodic [`crate::Ecu::settle`] then commits, or rolls back once the window (counted from
//! the time `confirm` was journaled, kept in the journal) has passed. A restart re-enters at
//! `confirm` without journaling it again, so neither the wait nor its deadline is lost.
//!
//! So every method except `prepare` may run twice for one job, possibly after a power loss
//! part-way through its first run: each must be idempotent and must cope with the state its
//! own interrupted run left (a swap half done, a backup already gone). `prepare` is never
//! resumed: the staged image is discarded at start. [`Installer::restarted`] is called once
//! when the ECU starts with a job of this domain in flight, before the resumed step.
//!
//! The test-only fault-injection hook ([`pause`]) sits behind each journal write.

pub mod app;
pub mod boot;
pub mod capture;
pub mod confirm;
pub mod container;
mod driver;
pub mod module;
pub mod os;
pub mod ostree;
pub mod pause;
pub mod rauc;
pub mod resume;
pub mod snapshot;
mod trial;

use crate::error::{Error, Result};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::metadata::Hashes;
use std::collections::BTreeMap;
use std::path::Path;

pub use driver::{drive, Confirmation, Finish, Journal, Step};

/// The outcome of an install that failed after the swap and was rolled back.
pub const RESTORED: &str = "restored the previous copy";
/// The outcome of an install that failed before anything live changed.
pub const UNCHANGED: &str = "nothing was changed";
/// The outcome of an install whose rollback failed too.
pub const NOT_RESTORED: &str = "the previous copy could not be restored";

/// One install: the verified target and its received image.
#[derive(Debug, Clone, Copy)]
pub struct InstallJob<'a> {
    pub target_name: &'a str,
    pub custom: &'a ImageCustom,
    /// The staged image, already checked against every signed hash. Only `prepare` reads
    /// it: after a restart it is gone.
    pub image: &'a Path,
    /// The signed length and hashes, for installers that check what they wrote.
    pub length: u64,
    pub hashes: &'a Hashes,
}

/// How a reboot step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reboot {
    /// Nothing to reboot, or a simulated reboot done in-process: carry on.
    Done,
    /// A real reboot is under way: stop; the next start resumes from the journal.
    Pending,
}

/// One update domain's way of installing an image. See the module docs for which steps may
/// run again after a restart.
pub trait Installer: Send + std::fmt::Debug {
    /// The domain name in targets' `custom.domain` ("app").
    fn domain(&self) -> &'static str;
    /// Put the new copy in place beside the live one (Download). Nothing live changes; a
    /// failure here needs no rollback.
    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Make the new copy live, keeping the previous one to roll back to (ArtifactInstall).
    fn install(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Whether the new copy only runs after a reboot (NeedsArtifactReboot).
    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        false
    }
    /// Reboot into the new copy (ArtifactReboot).
    fn reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        Ok(Reboot::Done)
    }
    /// Check the live new copy works (ArtifactVerify, no reboot); an error rolls back.
    fn verify(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        Ok(())
    }
    /// Check the new copy booted and works (ArtifactVerifyReboot); an error rolls back.
    fn verify_reboot(&mut self, job: &InstallJob<'_>) -> Result<()> {
        self.verify(job)
    }
    /// `Some(window)` when the new version commits only once the application confirms it
    /// (`confirm = "app"`) within `window` of the `confirm` state; `None` commits after verify.
    fn confirm_timeout(&self) -> Option<std::time::Duration> {
        None
    }
    /// Make the new copy permanent and drop the backup (ArtifactCommit).
    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Restore the previous copy (ArtifactRollback).
    fn rollback(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Reboot into the restored copy (ArtifactRollbackReboot).
    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        Ok(Reboot::Done)
    }
    /// Remove whatever prepare left, whatever the outcome (Cleanup).
    fn cleanup(&mut self, job: &InstallJob<'_>) -> Result<()>;
    /// Whether this installer unpacks Mender artifacts (targets with `custom.mender`); others
    /// are refused such targets before download.
    fn takes_mender_artifacts(&self) -> bool {
        false
    }
    /// The ECU started with `job` in flight (once, before the resumed step).
    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        Ok(())
    }
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
