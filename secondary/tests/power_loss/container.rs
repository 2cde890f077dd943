//! The `container` domain: an OCI layout archive imported into the content-addressed store
//! under `DATA_DIR/containers` and made live by switching `refs/current/web`. No reboot, so
//! the driver journals `verify` (the health check) after `install`; the states match the
//! contract's non-rebooting sequence.

use super::*;
use crate::oci::{sha256_hex, Image};
use serde_json::json;
use std::path::Path;

pub static CONTAINER: Domain = Domain {
    name: "container",
    target,
    on_disk,
    provides_key: "data-partition.web.version",
};

pub static ROWS: &[Row] = &[
    Row {
        domain: &CONTAINER,
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
        domain: &CONTAINER,
        scenario: Scenario::Unhealthy,
        kills: &[
            ("verify", Old),
            ("rollback", Old),
            ("failure", Old),
            ("cleanup", Old),
        ],
    },
];

/// Both versions share the base layer, so a kill must not lose a blob the other still uses.
const BASE_LAYER: &[u8] = b"base layer: shared by both versions";

fn image(v: Version) -> Image {
    match v {
        Old => Image::new("web:1", "one", &[BASE_LAYER, b"app layer 1"]),
        New => Image::new("web:2", "two", &[BASE_LAYER, b"app layer 2, longer"]),
    }
}

fn running(root: &Path) -> std::path::PathBuf {
    root.join("container.running")
}

/// `[container]`: a hook standing in for the runtime (it records the image it started), and
/// a health check that fails for web:2 when unhealthy.
pub fn config(root: &Path, scenario: Scenario) -> String {
    let hook = format!(
        "test -f \"$FERRY_OCI_LAYOUT/index.json\" && echo \"$FERRY_CONTAINER_ID\" > {}",
        running(root).display()
    );
    let check = match scenario {
        Scenario::Success => "true",
        Scenario::Unhealthy => "test \"$FERRY_OCI_REF_NAME\" != web:2",
    };
    format!(
        // keep_previous = 0: a commit leaves only the new image, which on_disk checks.
        "[container]\nhook = [[\"sh\", \"-c\", {hook:?}]]\nhealth_check = [\"sh\", \"-c\", {check:?}]\nkeep_previous = 0\n"
    )
}

fn target(v: Version) -> Target {
    let (name, version, counter) = match v {
        Old => ("containers/web-1.tar", "1", 1),
        New => ("containers/web-2.tar", "2", 2),
    };
    Target {
        name,
        content: image(v).tar(),
        custom: json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "container",
                        "name": "web", "version": version }),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// `refs/current/web` names exactly `v`'s image, whose layout and blobs are whole; the
/// runtime hook last started that image; nothing of the other version or of an unfinished
/// update is left in the store.
fn on_disk(n: &Node, v: Version) -> Result<(), String> {
    let store = n.root.join("data/containers");
    let want = image(v);
    let other = image(if v == Old { New } else { Old });
    let read = |p: &Path| std::fs::read_to_string(p).map(|s| s.trim().to_owned());
    let current = read(&store.join("refs/current/web")).map_err(|e| e.to_string())?;
    if current != want.id {
        let which = if current == other.id {
            "the other version"
        } else {
            "neither version"
        };
        return Err(format!(
            "refs/current/web = {current:?} ({which}), expected the {v:?} image {}",
            want.id
        ));
    }
    for leftover in ["refs/previous/web", "refs/next/web", "incoming"] {
        if store.join(leftover).exists() {
            return Err(format!("{leftover} is left over after the install ended"));
        }
    }
    if names(&store.join("images/web")) != [want.id.clone()] {
        return Err(format!(
            "images/web holds {:?}, expected only {}",
            names(&store.join("images/web")),
            want.id
        ));
    }
    let layout = store.join("images/web").join(&want.id);
    let index = std::fs::read(layout.join("index.json")).map_err(|e| e.to_string())?;
    if sha256_hex(&index) != want.id {
        return Err("the live layout's index.json is not the image's".into());
    }
    for hex in want.blobs() {
        for path in [
            store.join("blobs/sha256").join(&hex),
            layout.join("blobs/sha256").join(&hex),
        ] {
            match std::fs::read(&path) {
                Ok(bytes) if sha256_hex(&bytes) == hex => {}
                other => return Err(format!("{}: {:?}", path.display(), other.map(|b| b.len()))),
            }
        }
    }
    if names(&store.join("blobs/sha256")) != want.blobs() {
        return Err(format!(
            "the store holds blobs {:?}, expected exactly {:?}",
            names(&store.join("blobs/sha256")),
            want.blobs()
        ));
    }
    match read(&running(&n.root)) {
        Ok(id) if id == want.id => Ok(()),
        other => Err(format!(
            "the runtime hook last started {other:?}, not the live image"
        )),
    }
}
