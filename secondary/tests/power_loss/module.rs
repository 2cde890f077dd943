//! A module domain: the fixture's Mender v3 shell module (`conf-file`) installs its payload
//! as `dest/conf`, keeps a backup, and rolls back. The module answers No to
//! NeedsArtifactReboot, so the driver journals `verify` after `install` even though an Update
//! Module has no state for it (v3 verifies only after a reboot): it always passes. The
//! module's own check is ArtifactCommit, so the unhealthy scenario fails at `commit`, not at
//! `verify` as the built-in domains do: commit → rollback → failure → cleanup.

use super::*;
use crate::shell_module::{self, DOMAIN};
use serde_json::json;
use std::path::Path;

pub static MODULE: Domain = Domain {
    name: DOMAIN,
    target,
    on_disk,
    provides_key: "data-partition.conf.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &MODULE,
        scenario: Scenario::Success,
        kills: &[
            ("download", Old),
            ("install", Old),
            ("verify", New),
            ("commit", New),
            ("cleanup", New),
        ],
    },
    Row {
        domain: &MODULE,
        scenario: Scenario::Unhealthy,
        // `verify` passes here too (and a restart there still ends in the refused commit);
        // the module refuses ArtifactCommit.
        kills: &[
            ("verify", Old),
            ("commit", Old),
            ("rollback", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
];

/// `[modules]`: the module, written for this node; when unhealthy it refuses to commit
/// version 2.
pub fn config(root: &Path, scenario: Scenario) -> String {
    let refuse = match scenario {
        Scenario::Success => "broken",
        Scenario::Unhealthy => "setting = 2",
    };
    let m = shell_module::write_refusing(root, "Yes", "No", refuse);
    // Debian's single-file module beside it, for the Mender artifact rows (mender.rs).
    crate::mender::link_module(&m.dir);
    format!("[modules]\ndir = {:?}\n", m.dir.display().to_string())
}

fn target(v: Version) -> Target {
    let (name, content, version, counter): (_, &[u8], _, u64) = match v {
        Old => ("conf/conf-1.txt", b"setting = 1\n", "1", 1),
        New => ("conf/conf-2.txt", b"setting = 2, longer\n", "2", 2),
    };
    Target {
        name,
        content: content.to_vec(),
        custom: json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": DOMAIN,
                        "name": "conf", "version": version }),
    }
}

/// The module's file holds exactly `v`, with no backup left; the installer's work dir says no
/// update is under way (no record.json, no tree) and remembers `v` as the module's current
/// artifact.
fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let t = target(v);
    let installed = std::fs::read(n.root.join("dest/conf"))
        .map_err(|e| format!("the module's file dest/conf: {e} (neither version)"))?;
    if installed != t.content {
        return Err(format!(
            "the module's file holds {:?}, expected the {v:?} version",
            String::from_utf8_lossy(&installed)
        ));
    }
    if n.root.join("conf.backup").exists() {
        return Err("the module's backup is left over after the install ended".into());
    }
    let work = n.root.join("data/modules").join(DOMAIN);
    for leftover in ["record.json", "tree"] {
        if work.join(leftover).exists() {
            let record = std::fs::read_to_string(work.join("record.json")).unwrap_or_default();
            return Err(format!(
                "{leftover} is left over after the install ended (record: {record})"
            ));
        }
    }
    let current =
        std::fs::read_to_string(work.join("current_artifact_name")).map_err(|e| e.to_string())?;
    if current.trim() != t.name {
        return Err(format!(
            "current_artifact_name = {current:?}, expected {}",
            t.name
        ));
    }
    Ok(())
}
