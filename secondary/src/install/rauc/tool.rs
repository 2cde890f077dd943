//! The `rauc` program, run with a time limit: `rauc info` (local, checks the bundle's CMS
//! signature against the keyring of RAUC's system.conf) and the calls that go to `rauc service`
//! over D-Bus (`install`, `status`, `status mark-*`), with the parse of their JSON.

use crate::error::{Error, Result};
use crate::install::capture;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rauc {
    pub program: PathBuf,
    /// RAUC's system.conf, for `rauc info` (which reads its keyring; the service has its own).
    pub system_conf: PathBuf,
    /// The D-Bus address of the bus `rauc service` is on; None: the system bus.
    pub bus: Option<String>,
    /// How long one rauc command may run (an install of a whole OS takes minutes).
    pub limit: Duration,
}

/// What `rauc info --output-format=json` says of a bundle whose signature RAUC accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BundleInfo {
    pub compatible: String,
    #[serde(default)]
    pub version: Option<String>,
    /// One map per image, keyed by the slot class it is for.
    #[serde(default)]
    pub images: Vec<BTreeMap<String, Image>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Image {
    pub filename: String,
    /// sha256 of the image, as RAUC will check it after writing the slot.
    pub checksum: String,
    pub size: u64,
}

impl BundleInfo {
    /// The image this bundle installs into slots of `class`.
    pub fn image_for(&self, class: &str) -> Option<&Image> {
        self.images.iter().find_map(|m| m.get(class))
    }
}

/// What `rauc status --detailed --output-format=json` says of the system.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Status {
    pub compatible: String,
    /// The bootname of the booted slot.
    #[serde(default)]
    pub booted: Option<String>,
    /// The slot the bootloader boots next (RAUC's `boot_primary`).
    #[serde(default)]
    pub boot_primary: Option<String>,
    /// One map per slot, keyed by its name ("rootfs.0").
    #[serde(default)]
    pub slots: Vec<BTreeMap<String, Slot>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Slot {
    pub class: String,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default)]
    pub bootname: Option<String>,
    #[serde(default)]
    pub boot_status: Option<String>,
    #[serde(default)]
    pub slot_status: Option<SlotStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotStatus {
    #[serde(default)]
    pub bundle: Option<SlotBundle>,
    #[serde(default)]
    pub checksum: Option<SlotChecksum>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotBundle {
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SlotChecksum {
    pub sha256: String,
    pub size: u64,
}

impl Status {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find_map(|m| m.get(name))
    }

    /// The name of the slot whose bootname RAUC says booted.
    pub fn booted_slot(&self) -> Option<String> {
        let booted = self.booted.as_deref()?;
        self.slots
            .iter()
            .flat_map(|m| m.iter())
            .find_map(|(name, s)| (s.bootname.as_deref() == Some(booted)).then(|| name.clone()))
    }
}

impl Slot {
    /// The sha256 of the image RAUC last wrote into this slot.
    pub fn installed_sha256(&self) -> Option<&str> {
        Some(
            self.slot_status
                .as_ref()?
                .checksum
                .as_ref()?
                .sha256
                .as_str(),
        )
    }

    pub fn installed_version(&self) -> Option<&str> {
        self.slot_status
            .as_ref()?
            .bundle
            .as_ref()?
            .version
            .as_deref()
    }
}

/// Parse JSON printed by `rauc`, naming the command on failure.
fn parse<T: for<'de> Deserialize<'de>>(what: &'static str, text: &str) -> Result<T> {
    // rauc may print messages before the document; the JSON is its last line.
    let json = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(json).map_err(|e| Error::OsCheck {
        check: what,
        found: format!("output that is not RAUC's JSON ({e})"),
        expected: "the JSON of rauc 1.8 or later (--output-format=json)".into(),
    })
}

pub fn parse_info(text: &str) -> Result<BundleInfo> {
    parse("rauc info", text)
}

pub fn parse_status(text: &str) -> Result<Status> {
    parse("rauc status", text)
}

impl Rauc {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        if let Some(bus) = &self.bus {
            cmd.env("DBUS_SYSTEM_BUS_ADDRESS", bus);
        }
        cmd
    }

    fn run(&self, what: &str, args: &[&str]) -> Result<String> {
        let program = self.program.display().to_string();
        let done = capture::run_command(self.command(args), &program, self.limit)?
            .require_success(what, &format!("{program} {}", args.join(" ")))?;
        Ok(done.stdout_text())
    }

    /// `rauc info` of `bundle`: RAUC checks its signature against the system.conf keyring.
    /// A refusal fails check "rauc bundle signature" with RAUC's own words.
    pub fn info(&self, bundle: &Path) -> Result<BundleInfo> {
        let conf = format!("--conf={}", self.system_conf.display());
        let file = bundle.display().to_string();
        let args = ["info", &conf, "--output-format=json", &file];
        let program = self.program.display().to_string();
        let done = capture::run_command(self.command(&args), &program, self.limit)?;
        if !done.success {
            return Err(Error::OsCheck {
                check: "rauc bundle signature",
                found: format!("rauc info refused the bundle: {}", done.stderr_quote()),
                expected: format!(
                    "a bundle signed by a certificate that chains to the keyring of {}",
                    self.system_conf.display()
                ),
            });
        }
        parse_info(&done.stdout_text())
    }

    pub fn status(&self) -> Result<Status> {
        let text = self.run(
            "rauc status",
            &["status", "--detailed", "--output-format=json"],
        )?;
        parse_status(&text)
    }

    /// `rauc install`: RAUC verifies the bundle again, writes the inactive slot(s) and makes
    /// them the bootloader's primary.
    pub fn install(&self, bundle: &Path) -> Result<()> {
        let file = bundle.display().to_string();
        self.run("rauc install", &["install", &file]).map(drop)
    }

    /// `rauc status mark-good|mark-bad|mark-active SLOT`.
    pub fn mark(&self, mark: Mark, slot: &str) -> Result<()> {
        let verb = mark.verb();
        self.run(&format!("rauc status {verb}"), &["status", verb, slot])
            .map(drop)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Good,
    Bad,
    Active,
}

impl Mark {
    fn verb(self) -> &'static str {
        match self {
            Mark::Good => "mark-good",
            Mark::Bad => "mark-bad",
            Mark::Active => "mark-active",
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_names_slots_bootnames_and_what_was_installed() {
        let text = r#"{"compatible":"ferry-test","variant":"","booted":"A","boot_primary":"rootfs.1","slots":[{"rootfs.1":{"class":"rootfs","device":"/dev/b","type":"raw","bootname":"B","state":"inactive","parent":null,"mountpoint":null,"boot_status":"bad","slot_status":{"bundle":{"compatible":"ferry-test","version":"2.0"},"checksum":{"sha256":"72ab","size":1048576},"installed":{"timestamp":"2026-12-07T18:33:00Z","count":1},"status":"ok"}}},{"rootfs.0":{"class":"rootfs","device":"/dev/a","type":"raw","bootname":"A","state":"booted","parent":null,"mountpoint":null,"boot_status":"good","slot_status":{"bundle":{"compatible":null}}}}]}"#;
        let s = parse_status(text).unwrap();
        assert_eq!(s.booted_slot().as_deref(), Some("rootfs.0"));
        assert_eq!(s.boot_primary.as_deref(), Some("rootfs.1"));
        let b = s.slot("rootfs.1").unwrap();
        assert_eq!(b.installed_sha256(), Some("72ab"));
        assert_eq!(b.installed_version(), Some("2.0"));
        assert_eq!(s.slot("rootfs.0").unwrap().installed_sha256(), None);
    }

    #[test]
    fn info_gives_the_image_of_each_slot_class() {
        let text = "rauc-Message: Verified detached signature by 'CN = dev'\n\
            {\"compatible\":\"ferry-test\",\"version\":\"2.0\",\"description\":null,\"build\":null,\
            \"hooks\":[],\"images\":[{\"rootfs\":{\"variant\":null,\"filename\":\"rootfs.img\",\
            \"checksum\":\"7221\",\"size\":1048576,\"hooks\":[],\"adaptive\":[]}}]}";
        let i = parse_info(text).unwrap();
        assert_eq!(i.version.as_deref(), Some("2.0"));
        assert_eq!(i.image_for("rootfs").unwrap().checksum, "7221");
        assert!(i.image_for("appfs").is_none());
    }

    #[test]
    fn output_that_is_not_json_is_a_named_check() {
        let err = parse_status("Error: no bus\n").unwrap_err().to_string();
        assert!(err.contains("rauc status"), "{err}");
    }
}
