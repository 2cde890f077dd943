//! The `app` domain: a file under `apps_dir/<name>/`, swapped in place; no reboot, so the
//! driver journals `verify` after `install`.

use super::*;

pub static APP: Domain = Domain {
    name: "app",
    target,
    on_disk,
    provides_key: "data-partition.demo.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &APP,
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
        domain: &APP,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("verify", Old),
            ("rollback", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
];

/// Top-level keys: `apps_dir` and the health check (failing for version 2 when unhealthy).
pub fn config(scenario: Scenario) -> String {
    let check = match scenario {
        Scenario::Success => "true",
        Scenario::Unhealthy => "test ! -f \"$FERRY_APP_DIR/demo-2.bin\"",
    };
    format!("apps_dir = \"apps\"\napp_health_check = [\"sh\", \"-c\", {check:?}]\n")
}

fn target(v: Version) -> Target {
    let (name, content, custom): (_, &[u8], _) = match v {
        Old => ("apps/demo-1.bin", b"demo 1", app_custom("demo", "1", 1)),
        New => (
            "apps/demo-2.bin",
            b"demo 2, new",
            app_custom("demo", "2", 2),
        ),
    };
    Target {
        name,
        content: content.to_vec(),
        custom,
    }
}

fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let apps = n.root.join("apps");
    let mut entries: Vec<String> = std::fs::read_dir(&apps)
        .map_err(|e| e.to_string())?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    // The old version is kept after a commit (keep_previous, default 1), exactly once and
    // whole, wherever the commit was cut; no copy is kept when the new one never committed.
    let expected: &[&str] = match v {
        Old => &["demo"],
        New => &[".demo.kept", "demo"],
    };
    if entries != expected {
        return Err(format!("apps dir holds {entries:?}, expected {expected:?}"));
    }
    if v == New {
        let kept = apps.join(".demo.kept");
        let copies: Vec<String> = std::fs::read_dir(&kept)
            .map_err(|e| e.to_string())?
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let old = target(Old);
        let file = kept.join("1").join(old.name.trim_start_matches("apps/"));
        if copies != ["1"] || std::fs::read(&file).ok() != Some(old.content) {
            return Err(format!(
                "{} holds {copies:?}; expected one kept copy, 1/, with the old version",
                kept.display()
            ));
        }
    }
    let t = target(v);
    let file = apps.join("demo").join(t.name.trim_start_matches("apps/"));
    match std::fs::read(&file) {
        Ok(c) if c == t.content => Ok(()),
        other => Err(format!("{}: {other:?}", file.display())),
    }
}
