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

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::process::Command;

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

/// Run a boot tool; anything but exit status 0 is refused with its stderr.
pub(crate) fn run_tool(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| Error::BootControl {
        what: what.to_owned(),
        reason: format!("cannot run {cmd:?}: {e}"),
    })?;
    if !out.status.success() {
        return Err(Error::BootControl {
            what: what.to_owned(),
            reason: format!(
                "{cmd:?} exited with {}, expected 0: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| Error::BootControl {
        what: what.to_owned(),
        reason: format!("{cmd:?} printed non-UTF-8 output, expected key=value lines"),
    })
}
