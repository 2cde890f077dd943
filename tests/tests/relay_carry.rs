//! Across a data diode (issue #20): with no network between relay and Director, the queued
//! manifests go out as a directory (`ferry relay export`) and in through the admin API
//! (`ferry admin relay import`): each accepted once, a second import refused as a replay, a
//! changed file refused before anything is sent, and so is an index whose entries were
//! reordered (its MAC, checked by the Director).
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use primary_common::{ferry_ok, Options, World, VIN};
use relay_common::Site;
use serde_json::Value;

fn accepted(world: &World) -> usize {
    let out = world.admin(
        false,
        &["manifests", "list", VIN, "--limit", "100", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == "accepted")
        .count()
}

/// Copy an export directory (index.json, index.mac, manifests/).
fn copy_export(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to.join("manifests")).unwrap();
    for entry in std::fs::read_dir(from.join("manifests")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join("manifests").join(entry.file_name())).unwrap();
    }
    for file in ["index.json", "index.mac"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

#[test]
fn queued_manifests_cross_a_diode_as_a_directory_and_are_accepted_once() {
    let world = World::start(Options::default());
    let site = Site::start(&world);
    world.assign_all();
    assert_eq!(site.check(&world).code, 0);
    let before = accepted(&world);
    site.cut();
    for _ in 0..2 {
        let out = site.check(&world);
        assert_eq!(out.code, 0, "{out}");
    }
    let config = site.config.to_str().unwrap().to_owned();
    let out = ferry_ok(
        &world.base,
        &[
            "relay", "export", "--config", &config, "--out", "carry", "--json",
        ],
    );
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["manifests"], 2, "{v}");
    assert_eq!(site.status(&world.base)["queue_length"], 0);

    // A copy with one byte changed is refused before anything is sent.
    let copy = world.base.join("carry-changed");
    copy_export(&world.base.join("carry"), &copy);
    let first = std::fs::read_dir(copy.join("manifests"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&first).unwrap();
    let at = bytes.iter().position(|b| *b == b'"').unwrap();
    bytes.insert(at, b' ');
    std::fs::write(&first, bytes).unwrap();
    let out = world.admin(true, &["relay", "import", copy.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("length check failed") || out.stderr.contains("hash check failed"),
        "{out}"
    );
    assert_eq!(accepted(&world), before);

    // A copy whose index lists the same files in another order (every length and digest
    // still right): the Director refuses the index's MAC before anything is sent.
    let reordered = world.base.join("carry-reordered");
    copy_export(&world.base.join("carry"), &reordered);
    let index_path = reordered.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    index["manifests"].as_array_mut().unwrap().reverse();
    std::fs::write(&index_path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
    let out = world.admin(true, &["relay", "import", reordered.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("index MAC check failed"), "{out}");
    assert_eq!(accepted(&world), before);

    let out = world.admin(true, &["relay", "import", "carry"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(accepted(&world), before + 2);
    let out = world.admin(true, &["relay", "import", "carry"]);
    assert_ne!(out.code, 0, "a second import is a replay: {out}");
    assert!(out.stdout.contains("nonce check failed"), "{out}");
    assert_eq!(accepted(&world), before + 2);
    assert!(world.director_status()["vehicle"]["last_seen"].is_string());
}
