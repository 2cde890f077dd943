//! The `snapshot` domain: a real btrfs file system on a loop device per node, snapshot 1 the
//! default subvolume; the old version is a root archive applied as snapshot 2, the new one as
//! snapshot 3. It reboots (simulated), so the driver journals `reboot` and `verify-reboot`
//! (and `rollback-reboot` on the way back).

use super::btrfs_fixture::{rootfs_tar, Btrfs};
use super::*;
use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;

pub static SNAPSHOT: Domain = Domain {
    name: "snapshot",
    target,
    on_disk,
    provides_key: "rootfs-image.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &SNAPSHOT,
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
        domain: &SNAPSHOT,
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

/// Whether a btrfs file system can be mounted here (said once when not): without it the
/// snapshot rows are left out and no node configures the domain.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        match Btrfs::new(dir.path(), 128) {
            Ok(_) => true,
            Err(why) => {
                eprintln!("SKIP the snapshot rows: cannot mount btrfs on a loop device: {why}");
                false
            }
        }
    })
}

/// `[snapshot]` on a fresh file system in `root/btrfs`, and the file system (to be kept
/// mounted while the node lives); a health check that fails on version 2 when unhealthy.
pub fn config(root: &Path, scenario: Scenario, bootlimit: u32) -> (String, Option<Btrfs>) {
    if !available() {
        return (String::new(), None);
    }
    let dir = root.join("btrfs");
    std::fs::create_dir_all(&dir).unwrap();
    let fs = Btrfs::new(&dir, 128).unwrap();
    fs.first_root(|r| {
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/os-release"), "VERSION_ID=0\n").unwrap();
    });
    let check = match scenario {
        Scenario::Success => "true",
        Scenario::Unhealthy => "grep -q VERSION_ID=1 \"$FERRY_SNAPSHOT_PATH/etc/os-release\"",
    };
    let toml = format!(
        "[snapshot]\nmount = \"{}\"\nboot_env = \"snapshot-bootenv\"\nkeep = 3\n\
         bootlimit = {bootlimit}\nhealth_check = [\"sh\", \"-c\", {check:?}]\n",
        fs.mount.display()
    );
    (toml, Some(fs))
}

fn target(v: Version) -> Target {
    let (name, version, counter) = match v {
        Old => ("os/microos-1.tar", "1", 1),
        New => ("os/microos-2.tar", "2", 2),
    };
    let release = format!("VERSION_ID={version}\n");
    let content = rootfs_tar(&[("etc/os-release", release.as_bytes())]);
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "snapshot",
                         "name": "microos", "version": version });
    Target {
        name,
        content,
        custom,
    }
}

fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let fs = n.btrfs.as_ref().ok_or("no btrfs file system")?;
    // Snapshot 1 is the factory root; the old version went to 2, the new one to 3.
    let expected = if v == Old {
        "ferry/snapshots/2"
    } else {
        "ferry/snapshots/3"
    };
    let default = fs.default_path();
    if default != expected {
        return Err(format!("default subvolume {default}, expected {expected}"));
    }
    let release = std::fs::read_to_string(fs.mount.join(expected).join("etc/os-release"))
        .map_err(|e| e.to_string())?;
    let version = if v == Old { "1" } else { "2" };
    if release != format!("VERSION_ID={version}\n") {
        return Err(format!(
            "{expected} holds {release:?}, expected version {version}"
        ));
    }
    let env = ferry_secondary::install::boot::parse_lines(
        &std::fs::read_to_string(n.root.join("snapshot-bootenv")).map_err(|e| e.to_string())?,
    );
    if env.get("upgrade_available").map(String::as_str) != Some("0") {
        return Err(format!("boot env {env:?}, expected no upgrade on trial"));
    }
    Ok(())
}
