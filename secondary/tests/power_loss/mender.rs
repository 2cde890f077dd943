//! Mender artifacts through Debian's unmodified `single-file` Update Module, linked into the
//! node's modules directory beside the shell module. The artifacts are made once by the real
//! `mender-artifact` and name a relative `dest_dir` (`../../../../sf-dest`), which the module
//! resolves from its file tree, its working directory (`<root>/data/modules/single-file/tree`),
//! to `<root>/sf-dest`: one artifact serves every node.
//! The unhealthy New artifact carries `permissions` that chmod refuses: the module fails in
//! ArtifactInstall after taking its backup, and its ArtifactRollback restores the file.

use super::*;
use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;

const MODULE: &str = "single-file";
const DEBIAN_MODULE: &str = "/usr/share/mender/modules/v3/single-file";

pub static SINGLE_FILE: Domain = Domain {
    name: MODULE,
    target: healthy,
    on_disk: on_disk_healthy,
    provides_key: "rootfs-image.single-file.version",
};

pub static SINGLE_FILE_UNHEALTHY: Domain = Domain {
    name: MODULE,
    target: unhealthy,
    on_disk: on_disk_unhealthy,
    provides_key: "rootfs-image.single-file.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &SINGLE_FILE,
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
        domain: &SINGLE_FILE_UNHEALTHY,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("install", Old),
            ("rollback", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
];

/// Debian's module and mender-artifact are here (says why not, once).
pub fn available() -> bool {
    static HERE: OnceLock<bool> = OnceLock::new();
    *HERE.get_or_init(|| {
        let tool = Command::new("mender-artifact")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let here = tool && Path::new(DEBIAN_MODULE).is_file();
        if !here {
            eprintln!("power loss: SKIP the single-file rows: needs Debian's mender-client ({DEBIAN_MODULE}) and mender-artifact");
        }
        here
    })
}

/// Link Debian's module into the node's modules directory.
pub fn link_module(modules_dir: &Path) {
    if available() {
        std::os::unix::fs::symlink(DEBIAN_MODULE, modules_dir.join(MODULE)).unwrap();
    }
}

/// (name, content, permissions) of each artifact.
fn spec(v: Version, healthy: bool) -> (&'static str, &'static [u8], &'static str) {
    match (v, healthy) {
        (Old, _) => ("sf-1", b"setting = 1\n", "644"),
        (New, true) => ("sf-2", b"setting = 2, longer\n", "644"),
        (New, false) => ("sf-2-bad", b"setting = 2, bad\n", "not-a-mode"),
    }
}

/// The artifact's bytes, made once per process.
fn artifact(v: Version, healthy: bool) -> Vec<u8> {
    static MADE: OnceLock<std::collections::BTreeMap<&'static str, Vec<u8>>> = OnceLock::new();
    let made = MADE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut out = std::collections::BTreeMap::new();
        for (v, healthy) in [(Old, true), (New, true), (New, false)] {
            let (name, content, mode) = spec(v, healthy);
            std::fs::write(d.join("app.conf"), content).unwrap();
            std::fs::write(d.join("dest_dir"), "../../../../sf-dest\n").unwrap();
            std::fs::write(d.join("filename"), "app.conf\n").unwrap();
            std::fs::write(d.join("permissions"), format!("{mode}\n")).unwrap();
            let status = Command::new("mender-artifact")
                .current_dir(d)
                .args([
                    "write",
                    "module-image",
                    "-T",
                    MODULE,
                    "-n",
                    name,
                    "-t",
                    HW,
                    "-o",
                    "a.mender",
                    "-f",
                    "app.conf",
                    "-f",
                    "dest_dir",
                    "-f",
                    "filename",
                    "-f",
                    "permissions",
                ])
                .status()
                .unwrap();
            assert!(status.success());
            out.insert(name, std::fs::read(d.join("a.mender")).unwrap());
        }
        out
    });
    made[spec(v, healthy).0].clone()
}

fn target_of(v: Version, healthy: bool) -> Target {
    let (name, _, _) = spec(v, healthy);
    let counter = if v == Old { 1 } else { 2 };
    let target_name = match (v, healthy) {
        (Old, _) => "apps/sf-1.mender",
        (New, true) => "apps/sf-2.mender",
        (New, false) => "apps/sf-2-bad.mender",
    };
    Target {
        name: target_name,
        content: artifact(v, healthy),
        custom: json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": MODULE,
                        "name": name, "version": name,
                        "provides": { "artifact_name": name, "rootfs-image.single-file.version": name },
                        "clearsProvides": ["rootfs-image.single-file.*"],
                        "mender": { "format": 3, "artifactName": name, "payloadType": MODULE } }),
    }
}

fn healthy(v: Version) -> Target {
    target_of(v, true)
}

fn unhealthy(v: Version) -> Target {
    target_of(v, false)
}

fn on_disk_healthy(n: &Node, v: Version) -> Result<(), String> {
    on_disk(n, v, true)
}

fn on_disk_unhealthy(n: &Node, v: Version) -> Result<(), String> {
    on_disk(n, v, false)
}

/// The module's file holds exactly `v`; no update is under way (no record.json, no tree, so
/// no backup); the module's current artifact is `v`'s name.
fn on_disk(n: &Node, v: Version, healthy: bool) -> Result<(), String> {
    let (name, content, _) = spec(v, healthy);
    let file = n.root.join("sf-dest/app.conf");
    let installed = std::fs::read(&file).map_err(|e| {
        format!(
            "the module's file {}: {e} (neither version)",
            file.display()
        )
    })?;
    if installed != content {
        return Err(format!(
            "the module's file holds {:?}, expected the {v:?} version",
            String::from_utf8_lossy(&installed)
        ));
    }
    let work = n.root.join("data/modules").join(MODULE);
    for leftover in ["record.json", "tree"] {
        if work.join(leftover).exists() {
            return Err(format!("{leftover} is left over after the install ended"));
        }
    }
    let current =
        std::fs::read_to_string(work.join("current_artifact_name")).map_err(|e| e.to_string())?;
    if current.trim() != name {
        return Err(format!(
            "current_artifact_name = {current:?}, expected {name}"
        ));
    }
    Ok(())
}
