//! What the OS-replacing domains (`os`, `ostree`, `snapshot`) do alike around a reboot: run
//! the integrator's reboot command, and the health check that decides commit or rollback.

use super::boot::{self, BootControl, BootState, BOOTCOUNT, UPGRADE_AVAILABLE};
use super::{capture, Reboot};
use crate::error::{Error, Result};
use std::time::Duration;

/// An OS domain's failed check.
pub fn check(check: &'static str, found: String, expected: String) -> Error {
    Error::OsCheck {
        check,
        found,
        expected,
    }
}

/// The boot state, refused while an upgrade is on trial: a new `domain` install must wait
/// until the last one is committed or rolled back.
pub fn no_upgrade_on_trial(boot: &dyn BootControl, domain: &str) -> Result<BootState> {
    let state = boot::read(boot)?;
    if state.upgrade_available {
        return Err(check(
            "boot state",
            format!("an upgrade is on trial in the {}", boot.describe()),
            format!("upgrade_available=0 before a new {domain} install"),
        ));
    }
    Ok(state)
}

/// Refuse a boot past the boot limit.
pub fn within_boot_limit(state: &BootState, bootlimit: u32) -> Result<()> {
    if state.bootcount > bootlimit {
        return Err(check(
            "boot count",
            format!("bootcount {}", state.bootcount),
            format!("at most bootlimit {bootlimit}"),
        ));
    }
    Ok(())
}

/// Set the trial variables of a domain that keeps its own notion of the boot target
/// (`ostree`, `snapshot`): whether an upgrade is on trial and how often it booted.
pub fn set_upgrade(boot: &mut dyn BootControl, upgrade: bool, bootcount: u32) -> Result<()> {
    boot.set(&[
        (BOOTCOUNT, bootcount.to_string()),
        (UPGRADE_AVAILABLE, u8::from(upgrade).to_string()),
    ])
}

/// Run `argv` (the configured `reboot_command`): a real reboot is under way when it exits 0,
/// and the next start resumes from the journal. An empty command reboots nothing.
pub fn reboot(argv: &[String], timeout: Duration) -> Result<Reboot> {
    let Some(program) = argv.first() else {
        return Ok(Reboot::Done);
    };
    let done = capture::run(argv, None, &[], timeout)?;
    if !done.success {
        return Err(check(
            "reboot command",
            format!(
                "{program} exited with {}; stderr: {}",
                done.status,
                done.stderr_quote()
            ),
            "exit status 0".into(),
        ));
    }
    Ok(Reboot::Pending)
}

/// Run the health check `argv` (none configured: healthy) with `env`, bounded like every
/// helper program so a hung check fails and rolls back; non-zero fails check `name`, naming what
/// it ran `on` ("slot b", "commit 3f…").
pub fn health(
    name: &'static str,
    argv: Option<&[String]>,
    env: &[(&str, String)],
    on: &str,
    timeout: Duration,
) -> Result<()> {
    let Some(argv) = argv.filter(|a| !a.is_empty()) else {
        return Ok(());
    };
    let done = capture::run(argv, None, env, timeout)?;
    if !done.success {
        return Err(check(
            name,
            format!(
                "{} exited with {} on {on}; stderr: {}",
                argv[0],
                done.status,
                done.stderr_quote()
            ),
            "exit status 0".into(),
        ));
    }
    Ok(())
}
