//! The journal as the state machine's memory: `StateJournal` writes each transition to
//! `state.db` (and offers the test pause hook after each write), and `resume` decides, at
//! start, what an install cut short by a crash or a power loss still needs. The restart rules
//! (the last state journaled → where the machine re-enters):
//!
//! | journaled | re-enter at | why |
//! |---|---|---|
//! | `download` | failure ("nothing was changed") | the staged image is gone; nothing live changed |
//! | `install` | rollback | the swap or boot switch may be half done; rollback copes with both |
//! | `reboot`, `verify-reboot` | verify-reboot | the reboot may have happened: check what booted |
//! | `verify` | verify | the check is repeatable |
//! | `confirm`, `confirmed` | confirm (not journaled again) | the window keeps its start |
//! | `commit` | commit | idempotent; the record is written with `cleanup` |
//! | `rollback` | rollback | idempotent |
//! | `rollback-reboot` | failure | the old copy is restored; record the outcome |
//! | `failure`, `cleanup` | cleanup | the outcome is already recorded |

use super::driver::{drive, encode_reason, Confirmation, Finish, Journal, Step};
use super::{pause, InstallJob, Installers};
use crate::error::Result;
use crate::state::journal::{InFlight, JobRecord};
use crate::state::{InstalledImage, Outcome, State};
use chrono::{DateTime, Utc};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::provides::merge_provides;

/// The driver's journal over the ECU's state.
#[derive(Debug)]
pub(crate) struct StateJournal<'a> {
    pub state: &'a mut State,
    pub record: &'a JobRecord,
    pub custom: &'a ImageCustom,
    pub now: DateTime<Utc>,
    /// Where the daemon reads the time as the steps run (an install can take minutes, and
    /// the confirmation window starts when `confirm` is journaled); `None`: `now` throughout.
    pub clock: Option<&'a dyn ferry_core::Clock>,
}

impl StateJournal<'_> {
    /// The time a step is journaled at.
    fn at(&self) -> DateTime<Utc> {
        self.clock.map_or(self.now, |c| c.now())
    }
}

impl Journal for StateJournal<'_> {
    fn enter(&mut self, step: Step, reason: Option<&str>) -> Result<()> {
        self.state.advance(step.as_str(), reason, self.at())?;
        pause::point(&self.record.domain, step.as_str());
        Ok(())
    }

    fn committed(&mut self) -> Result<()> {
        let provides = merge_provides(
            &self.state.provides()?,
            &self.custom.effective_clears(),
            &self.custom.effective_provides(),
        );
        let image = InstalledImage {
            target: self.record.target.clone(),
            length: self.record.length,
            hashes: self.record.hashes.clone(),
            custom: self.record.custom.clone(),
        };
        self.state.record_install(
            &self.record.domain,
            &image,
            &provides,
            (&self.record.counter_keys, self.record.release_counter),
            &format!("installed {}", self.record.target),
            self.at(),
        )?;
        tracing::info!(target = %self.record.target, domain = %self.record.domain, "update installed");
        pause::point(&self.record.domain, Step::Cleanup.as_str());
        Ok(())
    }

    fn failed(&mut self, outcome: &Outcome) -> Result<()> {
        self.state.record_install_failure(outcome, self.at())?;
        tracing::warn!(target = %outcome.target, result = %outcome.result, detail = %outcome.detail, "update not installed");
        pause::point(&self.record.domain, Step::Failure.as_str());
        Ok(())
    }

    fn done(&mut self) -> Result<()> {
        self.state.end_install()
    }

    fn confirmation(&mut self, timeout: std::time::Duration) -> Result<Confirmation> {
        let Some((state, since)) = self.state.confirm_window()? else {
            return Err(crate::error::Error::Order(
                "the install is not waiting for a confirmation",
            ));
        };
        if state == Step::Confirmed.as_str() {
            return Ok(Confirmation::Confirmed);
        }
        let window = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
        let now = self.at();
        if now < since + window {
            return Ok(Confirmation::Waiting);
        }
        let detail = format!(
            "application confirmation: none within {} s (ferry-secondary confirm {} NAME)",
            timeout.as_secs(),
            self.record.domain
        );
        let reason = encode_reason(Step::Confirm, &detail);
        if self
            .state
            .leave_confirm(Step::Rollback.as_str(), Some(&reason), now)?
        {
            pause::point(&self.record.domain, Step::Rollback.as_str());
            tracing::warn!(target = %self.record.target, %detail, "rolling back");
            Ok(Confirmation::Expired(detail))
        } else {
            // Confirmed between the look and the expiry.
            Ok(Confirmation::Confirmed)
        }
    }
}

/// Where a restart re-enters the machine after `journaled`, and the failure it carries if
/// the journal had none.
pub fn restart_rule(journaled: &str) -> (Step, Option<String>) {
    let restarted = |step: Step, what: &str| Some(encode_reason(step, what));
    match Step::parse(journaled) {
        Some(Step::Download) => (
            Step::Failure,
            restarted(
                Step::Download,
                "the ECU restarted before the image was installed",
            ),
        ),
        Some(Step::Install) => (
            Step::Rollback,
            restarted(Step::Install, "the ECU restarted during install"),
        ),
        Some(Step::Reboot | Step::VerifyReboot) => (Step::VerifyReboot, None),
        Some(Step::Verify) => (Step::Verify, None),
        Some(Step::Confirm | Step::Confirmed) => (Step::Confirm, None),
        Some(Step::Commit) => (Step::Commit, None),
        Some(Step::Rollback) => (Step::Rollback, None),
        Some(Step::RollbackReboot) => (Step::Failure, None),
        Some(Step::Failure | Step::Cleanup) => (Step::Cleanup, None),
        None => (
            Step::Rollback,
            restarted(
                Step::Install,
                &format!("the journal names an unknown state {journaled:?}"),
            ),
        ),
    }
}

/// Finish the install in flight, if any, through its domain's installer.
pub(crate) fn resume(
    state: &mut State,
    installers: &mut Installers,
    now: DateTime<Utc>,
) -> Result<Option<Result<Finish>>> {
    let Some(InFlight {
        state: journaled,
        reason,
        job: record,
    }) = state.in_flight()?
    else {
        return Ok(None);
    };
    tracing::warn!(target = %record.target, domain = %record.domain, state = %journaled, "resuming an interrupted install");
    let custom = state.job_custom(&record)?;
    let installer = installers.get(&record.target, &record.domain)?;
    let job = job_of(&record, &custom);
    installer.restarted(&job)?;
    let (start, fallback) = restart_rule(&journaled);
    let reason = reason.or(fallback);
    let mut journal = StateJournal {
        state,
        record: &record,
        custom: &custom,
        now,
        clock: None,
    };
    // Journaling `confirm` again would restart its window (and undo a `confirmed`).
    let journaled = start == Step::Confirm;
    Ok(Some(drive(
        installer.as_mut(),
        &job,
        &mut journal,
        start,
        journaled,
        reason.as_deref(),
    )))
}

/// An install waiting for its application's confirmation, settled at `now`: committed when
/// confirmed, rolled back when the window has passed, else still waiting
/// (`Some(Ok(Finish::ConfirmPending))`). `None` when no install waits.
pub(crate) fn settle(
    state: &mut State,
    installers: &mut Installers,
    now: DateTime<Utc>,
) -> Result<Option<Result<Finish>>> {
    if state.confirm_window()?.is_none() {
        return Ok(None);
    }
    let Some(InFlight { job: record, .. }) = state.in_flight()? else {
        return Ok(None);
    };
    let custom = state.job_custom(&record)?;
    let installer = installers.get(&record.target, &record.domain)?;
    let job = job_of(&record, &custom);
    let mut journal = StateJournal {
        state,
        record: &record,
        custom: &custom,
        now,
        clock: None,
    };
    Ok(Some(drive(
        installer.as_mut(),
        &job,
        &mut journal,
        Step::Confirm,
        true,
        None,
    )))
}

/// The install job a journaled `record` describes.
fn job_of<'a>(record: &'a JobRecord, custom: &'a ImageCustom) -> InstallJob<'a> {
    InstallJob {
        target_name: &record.target,
        custom,
        image: &record.image,
        length: record.length,
        hashes: &record.hashes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_rolls_back_before_verification_and_verifies_after_a_reboot() {
        let at = |s: &str| restart_rule(s).0;
        assert_eq!(at("download"), Step::Failure);
        assert_eq!(at("install"), Step::Rollback);
        assert_eq!(at("reboot"), Step::VerifyReboot);
        assert_eq!(at("verify-reboot"), Step::VerifyReboot);
        assert_eq!(at("verify"), Step::Verify);
        assert_eq!(at("confirm"), Step::Confirm);
        assert_eq!(at("confirmed"), Step::Confirm);
        assert_eq!(at("commit"), Step::Commit);
        assert_eq!(at("rollback"), Step::Rollback);
        assert_eq!(at("rollback-reboot"), Step::Failure);
        assert_eq!(at("failure"), Step::Cleanup);
        assert_eq!(at("cleanup"), Step::Cleanup);
        // Fail closed: a state this build does not know is rolled back.
        assert_eq!(at("something-new"), Step::Rollback);
        assert!(restart_rule("download")
            .1
            .is_some_and(|r| r.starts_with("download\t")));
    }
}
