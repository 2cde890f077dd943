//! The `ostree` domain: a real OSTree sysroot per node (stateroot made, nothing deployed);
//! the old version is a static delta from nothing to commit 1, the new one a delta from 1 to
//! 2, both built once in a shared build repository. It reboots (simulated), so the driver
//! journals `reboot` and `verify-reboot` (and `rollback-reboot` on the way back).

use super::ostree_fixture::{deployments_of, init_sysroot, Os};
use super::*;
use serde_json::json;
use std::path::Path;
use std::sync::OnceLock;

pub static OSTREE: Domain = Domain {
    name: "ostree",
    target,
    on_disk,
    provides_key: "rootfs-image.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &OSTREE,
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
        domain: &OSTREE,
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

/// Whether `ostree` runs here (said once when it does not): without it the ostree rows are
/// left out and no node configures the domain.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(super::ostree_fixture::ostree_available)
}

/// Commits 1 and 2 and the deltas that deliver them, made once for every node.
struct Built {
    commits: [String; 2],
    deltas: [Vec<u8>; 2],
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        // Kept for the whole run: the deltas are read from memory, the directory only
        // holds the build repository (no deployment, so nothing immutable is left behind).
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let os = Os::without_deployment(dir.path());
        let c1 = os.commit("1", true);
        let c2 = os.commit("2", true);
        let deltas = [os.delta_from(None, &c1), os.delta(&c1, &c2)];
        Built {
            commits: [c1, c2],
            deltas,
        }
    })
}

/// `[ostree]`: an empty stateroot in `root/sysroot`, a file boot environment, and a health
/// check that fails on commit 2 when unhealthy.
pub fn config(root: &Path, scenario: Scenario, bootlimit: u32) -> String {
    if !available() {
        return String::new();
    }
    init_sysroot(&root.join("sysroot"));
    let check = match scenario {
        Scenario::Success => "true".to_owned(),
        Scenario::Unhealthy => format!("test \"$FERRY_OSTREE_COMMIT\" != {}", built().commits[1]),
    };
    format!(
        "[ostree]\nsysroot = \"sysroot\"\nos = \"ferryos\"\nboot_env = \"ostree-bootenv\"\n\
         bootlimit = {bootlimit}\nhealth_check = [\"sh\", \"-c\", {check:?}]\n"
    )
}

fn index(v: Version) -> usize {
    usize::from(v == New)
}

fn target(v: Version) -> Target {
    let b = built();
    let i = index(v);
    let (name, version) = match v {
        Old => ("os/ferryos-1.delta", "1"),
        New => ("os/ferryos-2.delta", "2"),
    };
    let mut ostree = json!({ "commit": b.commits[i], "delivery": "static-delta" });
    if v == New {
        ostree["from"] = json!(b.commits[0]);
    }
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": i + 1, "domain": "ostree",
                         "name": "ferryos", "version": version, "ostree": ostree });
    Target {
        name,
        content: b.deltas[i].clone(),
        custom,
    }
}

fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let commit = &built().commits[index(v)];
    let env = ferry_secondary::install::boot::parse_lines(
        &std::fs::read_to_string(n.root.join("ostree-bootenv")).map_err(|e| e.to_string())?,
    );
    if env.get("upgrade_available").map(String::as_str) != Some("0")
        || env.get("ferry_ostree_booted") != Some(commit)
    {
        return Err(format!(
            "boot env {env:?}, expected commit {commit} booted and no upgrade on trial"
        ));
    }
    let deployments = deployments_of(&n.root.join("sysroot"));
    match deployments.first() {
        Some(d) if &d.commit == commit => Ok(()),
        _ => Err(format!(
            "deployments {deployments:?}, expected commit {commit} first (the default boot)"
        )),
    }
}
