//! A relay that tampers (issue #20): it holds no key and nobody trusts it. The test rewrites
//! the relay's own cache: a cached target swapped for other bytes, and an old Image
//! repository timestamp re-served while the uplink is down. The vehicle refuses both, naming
//! the check, and installs nothing.
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use primary_common::{Options, World, APP, FULL, PRIMARY};
use relay_common::{stored_path, Site};
use serde_json::Value;

const NEXT: &str = "apps/demo-3.tar";

#[test]
fn a_swapped_cached_target_and_an_old_timestamp_from_the_relay_are_refused() {
    let world = World::start(Options::default());
    let site = Site::start(&world);
    world.assign_all();
    let out = site.check(&world);
    assert_eq!(out.code, 0, "{out}");

    // The next app version, cached by the relay, then swapped there for bytes of the same
    // length.
    let next: Vec<u8> = (0..1u32 << 20).map(|i| (i % 241) as u8).collect();
    std::fs::write(world.base.join("demo3.tar"), &next).unwrap();
    world.republish(
        "demo3.tar",
        NEXT,
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "3",
            "--release-counter",
            "3",
        ],
    );
    let path = stored_path(&world, NEXT);
    let config = site.config.to_str().unwrap().to_owned();
    let addr = site.addr.to_string();
    let out = primary_common::ferry_ok(
        &world.base,
        &[
            "relay", "prefetch", "--config", &config, "--addr", &addr, "--target", NEXT,
        ],
    );
    assert!(out.stdout.contains("cached (1048576 bytes)"), "{out}");
    let cached = world.base.join("relay-cache/mirror/targets").join(&path);
    let mut forged = next.clone();
    forged[4096] ^= 0xff;
    std::fs::write(&cached, &forged).unwrap();

    world.assign(&[(PRIMARY, NEXT)]);
    let out = site.check(&world);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.to_string().contains("hash check failed"), "{out}");
    let installed = world.primary_status();
    let primary = installed["ecus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["serial"] == PRIMARY)
        .unwrap()
        .clone();
    assert_eq!(primary["status"]["installed"]["target"], APP, "{primary}");
    let app = world.base.join("ivi-1-apps/demo/demo-3.tar");
    assert!(!app.exists(), "nothing of the forged image installed");

    // An old timestamp re-served while the uplink is down.
    let out = world.admin(true, &["cancel", primary_common::VIN]);
    assert_eq!(out.code, 0, "{out}");
    let timestamp = world
        .base
        .join("relay-cache/mirror/metadata/timestamp.json");
    let old = std::fs::read(&timestamp).unwrap();
    let old_version = serde_json::from_slice::<Value>(&old).unwrap()["signed"]["version"].clone();
    std::fs::write(world.base.join("fw3.bin"), b"tcu firmware 3").unwrap();
    world.republish(
        "fw3.bin",
        "tcu/fw-3.bin",
        &["--hardware-id", "tcu", "--version", "3"],
    );
    // An assignment, so the cycle reads the Image repository's metadata.
    world.assign(&[(FULL, "tcu/fw-3.bin")]);
    let out = site.check(&world);
    assert_eq!(out.code, 0, "the vehicle trusts the new timestamp: {out}");
    let new = std::fs::read(&timestamp).unwrap();
    assert_ne!(
        serde_json::from_slice::<Value>(&new).unwrap()["signed"]["version"],
        old_version
    );
    // Another update the Director announces; the relay re-serves the old timestamp instead of
    // the Image repository's new one (its link to the Image repository cut).
    std::fs::write(world.base.join("fw4.bin"), b"tcu firmware 4").unwrap();
    world.republish(
        "fw4.bin",
        "tcu/fw-4.bin",
        &["--hardware-id", "tcu", "--version", "4"],
    );
    world.assign(&[(FULL, "tcu/fw-4.bin")]);
    site.repo_link.cut();
    std::fs::write(&timestamp, &old).unwrap();
    let out = site.check(&world);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.to_string().contains("rollback check failed: timestamp"),
        "{out}"
    );
    let status = world.primary_status();
    for ecu in status["ecus"].as_array().unwrap() {
        assert_ne!(
            ecu["status"]["installed"]["target"], "tcu/fw-4.bin",
            "{ecu}"
        );
    }
}
