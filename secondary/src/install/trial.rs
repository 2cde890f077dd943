//! What the OS-replacing domains (`os`, `ostree`, `snapshot`) do alike around a reboot: run
//! the integrator's reboot command, and the health check that decides commit or rollback.

use super::{capture, Reboot};
use crate::error::{Error, Result};
use std::time::Duration;

/// Run `argv` (the configured `reboot_command`): a real reboot is under way when it exits 0,
/// and the next start resumes from the journal. An empty command reboots nothing.
pub fn reboot(argv: &[String], timeout: Duration) -> Result<Reboot> {
    let Some(program) = argv.first() else {
        return Ok(Reboot::Done);
    };
    let done = capture::run(argv, None, &[], timeout)?;
    if !done.success {
        return Err(Error::OsCheck {
            check: "reboot command",
            found: format!(
                "{program} exited with {}; stderr: {}",
                done.status,
                done.stderr_quote()
            ),
            expected: "exit status 0".into(),
        });
    }
    Ok(Reboot::Pending)
}

/// Run the health check `argv` (none configured: healthy) with `env`, bounded like every
/// helper program so a hung check fails and rolls back; non-zero fails `check`, naming what
/// it ran `on` ("slot b", "commit 3f…").
pub fn health(
    check: &'static str,
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
        return Err(Error::OsCheck {
            check,
            found: format!(
                "{} exited with {} on {on}; stderr: {}",
                argv[0],
                done.status,
                done.stderr_quote()
            ),
            expected: "exit status 0".into(),
        });
    }
    Ok(())
}
