//! Boot control for the `os` domain's A/B slots: which slot boots, whether an upgrade is on
//! trial, and how often it has been tried. Three backends, chosen by `[os] boot`: a file
//! (default; this module's format, see [`file_env`]), U-Boot's `fw_printenv`/`fw_setenv`
//! ([`uboot`]) and `grub-editenv` ([`grub`]), the last two run as commands.
//!
//! Variables (U-Boot/Mender names where there are some): `boot_slot` = `a` | `b`,
//! `upgrade_available` = `0` | `1`, `bootcount` = boots since the upgrade was switched on. A
//! missing variable reads as its default (slot a, no upgrade, count 0): a fresh device.

pub mod file_env;
pub mod grub;
pub mod uboot;

use super::capture;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

pub const SLOT: &str = "boot_slot";
pub const UPGRADE_AVAILABLE: &str = "upgrade_available";
pub const BOOTCOUNT: &str = "bootcount";

/// The slot names, by index into `[os] slots`.
pub const SLOT_NAMES: [&str; 2] = ["a", "b"];

/// A boot environment: named string variables, written all at once where the backend can.
pub trait BootControl: Send + std::fmt::Debug {
    /// The backend and where it keeps the variables, for messages.
    fn describe(&self) -> String;
    fn get(&self) -> Result<BTreeMap<String, String>>;
    fn set(&mut self, vars: &[(&str, String)]) -> Result<()>;
}

/// The backend `[os] boot` (or `[ostree] boot`) names; `env` is the file of the file
/// backend and grub's environment block.
pub fn open(
    backend: crate::config::BootBackend,
    env: std::path::PathBuf,
    fw_printenv: &std::path::Path,
    fw_setenv: &std::path::Path,
    grub_editenv: &std::path::Path,
) -> Box<dyn BootControl> {
    use crate::config::BootBackend;
    match backend {
        BootBackend::File => Box::new(file_env::FileEnv::new(env)),
        BootBackend::Uboot => Box::new(uboot::UBoot::new(fw_printenv, fw_setenv)),
        BootBackend::Grub => Box::new(grub::Grub::new(grub_editenv, env)),
    }
}

/// The variables Ferry reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootState {
    /// Index into the slots.
    pub slot: usize,
    pub upgrade_available: bool,
    pub bootcount: u32,
}

pub fn read(boot: &dyn BootControl) -> Result<BootState> {
    let vars = boot.get()?;
    let bad = |var: &str, value: &str, expected: &str| Error::BootControl {
        what: boot.describe(),
        reason: format!("variable {var}={value:?}, expected {expected}"),
    };
    let slot = match vars.get(SLOT).map(String::as_str) {
        None => 0,
        Some(v) => SLOT_NAMES
            .iter()
            .position(|n| *n == v)
            .ok_or_else(|| bad(SLOT, v, "a or b"))?,
    };
    let upgrade_available = match vars.get(UPGRADE_AVAILABLE).map(String::as_str) {
        None | Some("0") | Some("") => false,
        Some("1") => true,
        Some(v) => return Err(bad(UPGRADE_AVAILABLE, v, "0 or 1")),
    };
    let bootcount = match vars.get(BOOTCOUNT) {
        None => 0,
        Some(v) if v.is_empty() => 0,
        Some(v) => v
            .parse()
            .map_err(|_| bad(BOOTCOUNT, v, "a decimal count"))?,
    };
    Ok(BootState {
        slot,
        upgrade_available,
        bootcount,
    })
}

pub fn write(boot: &mut dyn BootControl, state: &BootState) -> Result<()> {
    let slot = SLOT_NAMES.get(state.slot).copied().unwrap_or("a");
    boot.set(&[
        (BOOTCOUNT, state.bootcount.to_string()),
        (
            UPGRADE_AVAILABLE,
            u8::from(state.upgrade_available).to_string(),
        ),
        (SLOT, slot.to_owned()),
    ])
}

/// `key=value` lines (fw_printenv, grub-editenv list, the file backend); other lines are
/// ignored (grub pads its file with `#` lines).
pub fn parse_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_end_matches('\r').to_owned()))
        .collect()
}

/// How long a boot tool may take. They read or write a few kilobytes of environment; one that
/// hangs (a misconfigured `fw_env.config` naming a device that never answers) would otherwise
/// hold the ECU's install, and its rollback, for ever.
pub const BOOT_TOOL_LIMIT: Duration = Duration::from_secs(60);

/// Run a boot tool for at most `limit`; anything but exit status 0 is refused with its
/// stderr, and so is more output than [`capture::KEPT`] (a cut-off environment could lack the
/// very variable that says which slot boots).
pub(crate) fn run_tool(what: &str, cmd: Command, limit: Duration) -> Result<String> {
    let program = format!("{:?}", cmd.get_program());
    let out = capture::run_command(cmd, &program, limit).map_err(|e| Error::BootControl {
        what: what.to_owned(),
        reason: format!("cannot run {program}: {e}"),
    })?;
    if !out.success {
        return Err(Error::BootControl {
            what: what.to_owned(),
            reason: format!(
                "{program} ended with {}, expected exit status 0: {}",
                out.status,
                out.stderr_quote()
            ),
        });
    }
    if out.stdout.len() >= capture::KEPT {
        return Err(Error::BootControl {
            what: what.to_owned(),
            reason: format!(
                "{program} printed {} bytes or more, expected an environment smaller than that",
                capture::KEPT
            ),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| Error::BootControl {
        what: what.to_owned(),
        reason: format!("{program} printed non-UTF-8 output, expected key=value lines"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd
    }

    #[test]
    fn a_boot_tool_that_hangs_is_killed_at_its_limit_and_fails() {
        let e = run_tool("test env", sh("sleep 600"), Duration::from_millis(300)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("killed after 300ms (its time limit)"),
            "{text}"
        );
        assert!(text.contains("expected exit status 0"), "{text}");
    }

    #[test]
    fn an_environment_too_large_to_keep_whole_is_refused_not_cut() {
        // One boot variable per line, more than capture::KEPT bytes in all.
        let big = format!(
            "i=0; while [ $i -lt {} ]; do echo \"var$i=xxxxxxxxxxxxxxxx\"; i=$((i+1)); done; echo boot_slot=b",
            capture::KEPT / 16
        );
        let e = run_tool("test env", sh(&big), Duration::from_secs(60)).unwrap_err();
        assert!(e.to_string().contains("bytes or more"), "{e}");
        // An environment of ordinary size is read whole.
        let small = "echo boot_slot=b; echo bootcount=2";
        let out = run_tool("test env", sh(small), Duration::from_secs(60)).unwrap();
        assert_eq!(parse_lines(&out)["boot_slot"], "b");
    }

    #[test]
    fn a_failing_boot_tool_is_refused_with_its_stderr() {
        let e = run_tool(
            "test env",
            sh("echo 'Cannot open /dev/mtd1' >&2; exit 1"),
            Duration::from_secs(60),
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("exit status: 1"), "{text}");
        assert!(text.contains("Cannot open /dev/mtd1"), "{text}");
    }
}
