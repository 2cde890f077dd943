//! The `os` domain: A/B slot images and a boot environment; it reboots, so the driver
//! journals `reboot` and `verify-reboot` (and `rollback-reboot` on the way back).

use super::*;
use serde_json::json;
use std::path::Path;

pub static OS: Domain = Domain {
    name: "os",
    target,
    on_disk,
    provides_key: "rootfs-image.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &OS,
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
        domain: &OS,
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

/// `[os]`: two slots (the factory image in a), a file boot environment, and a health check
/// that fails on slot b's successor when unhealthy.
pub fn config(root: &Path, scenario: Scenario, bootlimit: u32) -> String {
    std::fs::write(root.join("slot-a.img"), b"factory").unwrap();
    let check = match scenario {
        Scenario::Success => "true",
        Scenario::Unhealthy => "test \"$FERRY_OS_SLOT\" = b",
    };
    format!(
        "[os]\nslots = [\"slot-a.img\", \"slot-b.img\"]\nboot_env = \"bootenv\"\n\
         bootlimit = {bootlimit}\nhealth_check = [\"sh\", \"-c\", {check:?}]\n"
    )
}

fn target(v: Version) -> Target {
    let (name, content, version, counter): (_, &[u8], _, u64) = match v {
        Old => ("os/poky-1.img", b"rootfs one", "1", 1),
        New => ("os/poky-2.img", b"rootfs two, longer", "2", 2),
    };
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "os",
                         "name": "poky", "version": version });
    Target {
        name,
        content: content.to_vec(),
        custom,
    }
}

fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let env = ferry_secondary::install::boot::parse_lines(
        &std::fs::read_to_string(n.root.join("bootenv")).map_err(|e| e.to_string())?,
    );
    // The old image went to slot b at first boot, the new one to slot a.
    let slot = if v == Old { "b" } else { "a" };
    if env.get("boot_slot").map(String::as_str) != Some(slot)
        || env.get("upgrade_available").map(String::as_str) != Some("0")
    {
        return Err(format!(
            "boot env {env:?}, expected slot {slot} and no upgrade on trial"
        ));
    }
    let booted =
        std::fs::read(n.root.join(format!("slot-{slot}.img"))).map_err(|e| e.to_string())?;
    if booted != target(v).content {
        return Err(format!("slot {slot} does not hold the {v:?} image"));
    }
    Ok(())
}
