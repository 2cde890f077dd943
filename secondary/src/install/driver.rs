//! The install state machine (see the contract in [`super`]). One loop serves a fresh install
//! and a resumed one: a restart enters it at the step the journal names.

use super::{InstallJob, Installer, Reboot, NOT_RESTORED, RESTORED, UNCHANGED};
use crate::error::{Error, Result};
use crate::state::Outcome;
use ferry_core::manifest::InstallResult;

/// The journaled states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Download,
    Install,
    Reboot,
    VerifyReboot,
    Verify,
    /// Waiting for the application to confirm the new version (`confirm = "app"`).
    Confirm,
    /// The application confirmed (journaled by `ferry-secondary confirm`, not by the driver).
    Confirmed,
    Commit,
    Rollback,
    RollbackReboot,
    Failure,
    Cleanup,
}

impl Step {
    pub const ALL: [Step; 12] = [
        Step::Download,
        Step::Install,
        Step::Reboot,
        Step::VerifyReboot,
        Step::Verify,
        Step::Confirm,
        Step::Confirmed,
        Step::Commit,
        Step::Rollback,
        Step::RollbackReboot,
        Step::Failure,
        Step::Cleanup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Download => "download",
            Step::Install => "install",
            Step::Reboot => "reboot",
            Step::VerifyReboot => "verify-reboot",
            Step::Verify => "verify",
            Step::Confirm => "confirm",
            Step::Confirmed => "confirmed",
            Step::Commit => "commit",
            Step::Rollback => "rollback",
            Step::RollbackReboot => "rollback-reboot",
            Step::Failure => "failure",
            Step::Cleanup => "cleanup",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

/// How a drive ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Committed and recorded.
    Installed,
    /// A real reboot is under way; the next start resumes and records the outcome.
    RebootPending,
    /// The new version runs and waits for the application's confirmation; the ECU's
    /// [`crate::Ecu::settle`] commits it once confirmed, or rolls it back at the deadline.
    ConfirmPending,
}

/// Where an install waiting for the application's confirmation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// `ferry-secondary confirm` journaled `confirmed`: commit.
    Confirmed,
    /// Still within the window: wait.
    Waiting,
    /// None came within the window: the journal moved to `rollback` with this reason (the
    /// detail naming the check), in one conditional write, so a confirmation racing the
    /// deadline either lands before it (and this is `Confirmed`) or is refused.
    Expired(String),
}

/// Where the machine writes: the ECU's state. Every write must be durable before it returns.
pub trait Journal {
    /// Journal `step` before it runs; `reason` (entering a rollback) names the failed check.
    fn enter(&mut self, step: Step, reason: Option<&str>) -> Result<()>;
    /// Record the install and its provides and journal `cleanup`, in one transaction.
    fn committed(&mut self) -> Result<()>;
    /// Record the failed install's outcome and journal `failure`, in one transaction.
    fn failed(&mut self, outcome: &Outcome) -> Result<()>;
    /// Cleanup ran: the install is over.
    fn done(&mut self) -> Result<()>;
    /// With `confirm` journaled: whether the application confirmed, given `timeout` from the
    /// time `confirm` was journaled. On expiry, journal `rollback` (see [`Confirmation`]).
    fn confirmation(&mut self, timeout: std::time::Duration) -> Result<Confirmation>;
}

/// A failure reason as the journal keeps it: the failing step, then the error.
pub fn encode_reason(step: Step, detail: &str) -> String {
    format!("{}\t{detail}", step.as_str())
}

fn decode_reason(reason: &str) -> (Step, String) {
    match reason.split_once('\t') {
        Some((step, detail)) => (
            Step::parse(step).unwrap_or(Step::Install),
            detail.to_owned(),
        ),
        None => (Step::Install, reason.to_owned()),
    }
}

struct Failing {
    step: Step,
    detail: String,
    rollback_failed: bool,
}

impl Failing {
    fn outcome_words(&self) -> &'static str {
        if self.step == Step::Download {
            UNCHANGED
        } else if self.rollback_failed {
            NOT_RESTORED
        } else {
            RESTORED
        }
    }

    fn error(&self, job: &InstallJob<'_>) -> Error {
        Error::InstallFailed {
            target: job.target_name.to_owned(),
            step: self.step.as_str(),
            detail: self.detail.clone(),
            outcome: self.outcome_words(),
        }
    }
}

/// Run `job` from `start` to the end (or to a pending reboot). `start` is journaled first
/// unless `journaled`; `reason` is the failure a resumed rollback carries.
pub fn drive(
    installer: &mut dyn Installer,
    job: &InstallJob<'_>,
    journal: &mut dyn Journal,
    start: Step,
    journaled: bool,
    reason: Option<&str>,
) -> Result<Finish> {
    let mut failing = reason.map(|r| {
        let (step, detail) = decode_reason(r);
        Failing {
            step,
            detail,
            rollback_failed: false,
        }
    });
    let mut step = start;
    let mut skip_journal = journaled;
    loop {
        // Failure journals itself with its outcome (one transaction).
        if !skip_journal && step != Step::Failure {
            let why = failing.as_ref().map(|f| encode_reason(f.step, &f.detail));
            match journal.enter(step, why.as_deref()) {
                Ok(()) => {}
                // The outcome is recorded; a restart repeats the cleanup.
                Err(e) if step == Step::Cleanup => {
                    tracing::warn!(target = job.target_name, error = %e, "cannot journal cleanup");
                }
                Err(e) => return Err(journal_broken(installer, job, step, e)),
            }
        }
        skip_journal = false;
        step = match step {
            Step::Download => match installer.prepare(job) {
                Ok(()) => Step::Install,
                Err(e) => {
                    fail(&mut failing, Step::Download, e);
                    Step::Failure
                }
            },
            Step::Install => match installer.install(job) {
                Ok(()) if installer.needs_reboot(job) => Step::Reboot,
                Ok(()) => Step::Verify,
                Err(e) => {
                    fail(&mut failing, Step::Install, e);
                    Step::Rollback
                }
            },
            Step::Reboot => match installer.reboot(job) {
                Ok(Reboot::Done) => Step::VerifyReboot,
                Ok(Reboot::Pending) => return Ok(Finish::RebootPending),
                Err(e) => {
                    fail(&mut failing, Step::Reboot, e);
                    Step::Rollback
                }
            },
            Step::VerifyReboot | Step::Verify => {
                let checked = if step == Step::Verify {
                    installer.verify(job)
                } else {
                    installer.verify_reboot(job)
                };
                match checked {
                    Ok(()) if installer.confirm_timeout().is_some() => Step::Confirm,
                    Ok(()) => Step::Commit,
                    Err(e) => {
                        fail(&mut failing, step, e);
                        Step::Rollback
                    }
                }
            }
            Step::Confirm | Step::Confirmed => {
                let timeout = installer.confirm_timeout().unwrap_or_default();
                match journal.confirmation(timeout) {
                    Ok(Confirmation::Confirmed) => Step::Commit,
                    Ok(Confirmation::Waiting) => return Ok(Finish::ConfirmPending),
                    Ok(Confirmation::Expired(detail)) => {
                        failing.get_or_insert(Failing {
                            step: Step::Confirm,
                            detail,
                            rollback_failed: false,
                        });
                        // The expiry journaled rollback itself.
                        skip_journal = true;
                        Step::Rollback
                    }
                    Err(e) => return Err(e),
                }
            }
            Step::Commit => match installer.commit(job).and_then(|()| journal.committed()) {
                Ok(()) => {
                    // The commit record journaled cleanup.
                    skip_journal = true;
                    Step::Cleanup
                }
                Err(e) => {
                    fail(&mut failing, Step::Commit, e);
                    Step::Rollback
                }
            },
            Step::Rollback => match installer.rollback(job) {
                Ok(()) if installer.needs_reboot(job) => Step::RollbackReboot,
                Ok(()) => Step::Failure,
                Err(e) => {
                    rollback_failed(&mut failing, e);
                    Step::Failure
                }
            },
            Step::RollbackReboot => match installer.rollback_reboot(job) {
                Ok(Reboot::Done) => Step::Failure,
                Ok(Reboot::Pending) => return Ok(Finish::RebootPending),
                Err(e) => {
                    rollback_failed(&mut failing, e);
                    Step::Failure
                }
            },
            Step::Failure => {
                let f = failing.get_or_insert(Failing {
                    step: Step::Install,
                    detail: "the install stopped for an unknown reason".into(),
                    rollback_failed: false,
                });
                let words = f.outcome_words();
                let outcome = Outcome {
                    target: job.target_name.to_owned(),
                    result: if words == RESTORED {
                        InstallResult::RolledBack
                    } else {
                        InstallResult::Failure
                    },
                    detail: f.error(job).to_string(),
                };
                if let Err(e) = journal.failed(&outcome) {
                    tracing::error!(target = job.target_name, error = %e, "cannot record the failed install");
                }
                Step::Cleanup
            }
            Step::Cleanup => {
                if let Err(e) = installer.cleanup(job) {
                    // Leftovers are only disk space; the outcome is already recorded.
                    tracing::warn!(target = job.target_name, error = %e, "install cleanup failed");
                }
                journal.done()?;
                return match &failing {
                    Some(f) => Err(f.error(job)),
                    None => Ok(Finish::Installed),
                };
            }
        };
    }
}

fn fail(failing: &mut Option<Failing>, at: Step, e: Error) {
    failing.get_or_insert(Failing {
        step: at,
        detail: e.to_string(),
        rollback_failed: false,
    });
}

fn rollback_failed(failing: &mut Option<Failing>, e: Error) {
    let f = failing.get_or_insert(Failing {
        step: Step::Rollback,
        detail: String::new(),
        rollback_failed: false,
    });
    f.rollback_failed = true;
    f.detail = format!("{}; rollback also failed: {e}", f.detail);
}

/// The journal cannot be written: nothing more may run unrecorded. Past download the live
/// copy may have changed, so restore it once, unjournaled (a restart rolls back again).
fn journal_broken(
    installer: &mut dyn Installer,
    job: &InstallJob<'_>,
    step: Step,
    e: Error,
) -> Error {
    let detail = format!("cannot journal {}: {e}", step.as_str());
    let outcome = match step {
        Step::Download => UNCHANGED,
        _ => match installer.rollback(job) {
            Ok(()) => RESTORED,
            Err(_) => NOT_RESTORED,
        },
    };
    Error::InstallFailed {
        target: job.target_name.to_owned(),
        step: step.as_str(),
        detail,
        outcome,
    }
}
