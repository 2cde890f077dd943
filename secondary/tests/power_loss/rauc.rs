//! The `rauc` domain: a real RAUC system per node (`rauc service` on a private D-Bus, slot A
//! booted with the factory image, a custom bootloader backend); the old version is a bundle
//! installed into slot B, the new one into slot A, both signed once by one test CA. It
//! reboots (simulated, the hook restarting `rauc service`), so the driver journals `reboot`
//! and `verify-reboot` (and `rollback-reboot` on the way back).

use super::rauc_fixture::{bundle, image, rauc_available, Pki, System, COMPATIBLE};
use super::*;
use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;

pub static RAUC: Domain = Domain {
    name: "rauc",
    target,
    on_disk,
    provides_key: "rootfs-image.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &RAUC,
        scenario: Scenario::Success,
        kills: &[
            ("download", Old),
            ("install", Old),
            ("reboot", New),
            ("verify-reboot", New),
            ("commit", New),
            ("cleanup", New),
        ],
    },
    Row {
        domain: &RAUC,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("verify-reboot", Old),
            ("rollback", Old),
            ("rollback-reboot", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
];

/// Whether RAUC and its helpers run here (said once when not): without them the rauc rows
/// are left out and no node configures the domain.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(rauc_available)
}

/// The CA every node's keyring holds and the two bundles it signed, made once.
struct Built {
    pki: Pki,
    bundles: [Vec<u8>; 2],
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let pki = Pki::new(&dir.path().join("pki"), "vendor");
        let bundles = [
            bundle(dir.path(), &pki, COMPATIBLE, "2", true),
            bundle(dir.path(), &pki, COMPATIBLE, "3", true),
        ];
        Built { pki, bundles }
    })
}

/// `[rauc]` for a fresh RAUC system in `root/rauc` (kept running while the node lives); a
/// health check that fails on version 3 when unhealthy.
pub fn config(root: &Path, scenario: Scenario, bootlimit: u32) -> (String, Option<System>) {
    if !available() {
        return (String::new(), None);
    }
    let system = System::start(&root.join("rauc"), &built().pki.ca);
    let check = match scenario {
        Scenario::Success => "true",
        Scenario::Unhealthy => "! head -c 32 \"$FERRY_RAUC_DEVICE\" | grep -q 'ferryos 3 '",
    };
    let toml = format!(
        "{}boot_env = \"rauc-bootenv\"\nbootlimit = {bootlimit}\n",
        system.section(check)
    );
    (toml, Some(system))
}

fn index(v: Version) -> usize {
    usize::from(v == New)
}

fn target(v: Version) -> Target {
    let (name, version) = match v {
        Old => ("os/ferryos-2.raucb", "2"),
        New => ("os/ferryos-3.raucb", "3"),
    };
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": index(v) + 1, "domain": "rauc",
                         "name": "ferryos", "version": version });
    Target {
        name,
        content: built().bundles[index(v)].clone(),
        custom,
    }
}

fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let system = n.rauc.as_ref().ok_or("no RAUC system")?;
    // The old version went to slot B, the new one to A (over the factory image).
    let (bootname, slot, version) = match v {
        Old => ("B", "rootfs.1", "2"),
        New => ("A", "rootfs.0", "3"),
    };
    let bl = system.bootloader();
    if bl.get("primary").map(String::as_str) != Some(bootname)
        || bl.get(&format!("state_{bootname}")).map(String::as_str) != Some("good")
    {
        return Err(format!(
            "bootloader {bl:?}, expected {bootname} primary and good"
        ));
    }
    let booted = system.status()["booted"].clone();
    if booted != bootname {
        return Err(format!("rauc service booted {booted}, expected {bootname}"));
    }
    if system.slot(bootname) != image(version, true) {
        return Err(format!("slot {bootname} does not hold version {version}"));
    }
    let env = ferry_secondary::install::boot::parse_lines(
        &std::fs::read_to_string(n.root.join("rauc-bootenv")).map_err(|e| e.to_string())?,
    );
    if env.get("upgrade_available").map(String::as_str) != Some("0")
        || env.get("ferry_rauc_booted").map(String::as_str) != Some(slot)
    {
        return Err(format!(
            "boot env {env:?}, expected {slot} booted and no upgrade on trial"
        ));
    }
    Ok(())
}
