//! Across a data diode (issue #20): with no network between relay and Director, the queued
//! manifests go out as a directory (`ferry relay export`) and in through the admin API
//! (`ferry admin relay import`): each accepted once, a second import refused as a replay, a
//! changed file refused before anything is sent.
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

#[test]
fn queued_manifests_cross_a_diode_as_a_directory_and_are_accepted_once() {
    let world = World::start(Options::default());
    let site = Site::start(&world);
    world.assign_all();
    assert_eq!(world.check().code, 0);
    let before = accepted(&world);
    site.cut();
    for _ in 0..2 {
        let out = world.check();
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
    std::fs::create_dir_all(copy.join("manifests")).unwrap();
    for entry in std::fs::read_dir(world.base.join("carry/manifests")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join("manifests").join(entry.file_name())).unwrap();
    }
    std::fs::copy(world.base.join("carry/index.json"), copy.join("index.json")).unwrap();
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

    let out = world.admin(true, &["relay", "import", "carry"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(accepted(&world), before + 2);
    let out = world.admin(true, &["relay", "import", "carry"]);
    assert_ne!(out.code, 0, "a second import is a replay: {out}");
    assert!(out.stdout.contains("nonce check failed"), "{out}");
    assert_eq!(accepted(&world), before + 2);
    assert!(world.director_status()["vehicle"]["last_seen"].is_string());
}
