//! Director metadata bound to its vehicle, end to end with real processes on 127.0.0.1. The
//! attack: a second vehicle is registered with the same Director (so its metadata is signed by
//! the same online keys), assigned and cancelled until its versions pass the first vehicle's,
//! and a man in the middle serves its metadata to the first vehicle's Primary, and straight to
//! a Secondary's `PUT /metadata`. Both refuse it by the VIN check and keep nothing of it; the
//! vehicle's next genuine cycle succeeds.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::mitm::{Act, Mitm};
use primary_common::{http, PrimaryLinks, World, APP, PRIMARY, VIN};
use serde_json::Value;

const OTHER: &str = "WVW-E2E-OTHER";

fn version(bytes: &[u8], meta: &str) -> u64 {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["signed"]["meta"][meta]["version"].as_u64().unwrap()
}

/// The Primary's kept Director timestamp, snapshot and targets.
fn kept(world: &World) -> Vec<Vec<u8>> {
    ["timestamp", "snapshot", "targets"]
        .iter()
        .map(|r| {
            std::fs::read(world.base.join(format!("primary-state/director/{r}.json"))).unwrap()
        })
        .collect()
}

#[test]
fn another_vehicles_metadata_is_refused_by_the_primary_and_a_secondary() {
    let world = World::start(Default::default());
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let before = kept(&world);
    let own_targets = version(&before[1], "targets.json");

    // A second vehicle of the same fleet, pushed ahead of the first one's versions.
    let out = world.admin(
        true,
        &[
            "vehicle",
            "add",
            "--vin",
            OTHER,
            "--primary",
            "other-ivi:ivi:wrong.key",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let other_token = out.stdout.trim().to_owned();
    for _ in 0..own_targets + 2 {
        let target = format!("other-ivi={APP}");
        let out = world.admin(true, &["assign", OTHER, "--target", &target]);
        assert_eq!(out.code, 0, "{out}");
        let out = world.admin(true, &["cancel", OTHER]);
        assert_eq!(out.code, 0, "{out}");
    }
    let director = world.director.addr;
    let get = |file: &str| {
        let path = format!("/api/v1/vehicles/{OTHER}/metadata/{file}");
        let (status, body) = http(director, "GET", &path, Some(&other_token), b"");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        body
    };
    let timestamp = get("timestamp.json");
    let snapshot = get(&format!(
        "{}.snapshot.json",
        version(&timestamp, "snapshot.json")
    ));
    let targets = get(&format!(
        "{}.targets.json",
        version(&snapshot, "targets.json")
    ));
    assert!(version(&snapshot, "targets.json") > own_targets);

    // A man in the middle on the Director link serves the other vehicle's metadata.
    let (ts, snap, tg) = (timestamp.clone(), snapshot.clone(), targets.clone());
    let mitm = Mitm::start(director, move |line| {
        if !line.starts_with("GET ") {
            Act::Forward
        } else if line.contains("/timestamp.json") {
            Act::Serve(ts.clone())
        } else if line.contains(".snapshot.json") {
            Act::Serve(snap.clone())
        } else if line.contains(".targets.json") {
            Act::Serve(tg.clone())
        } else {
            Act::Forward
        }
    });
    let image_url = format!("http://{}", world.repo.addr);
    let secondaries = [
        format!("http://{}", world.secondaries[0].addr),
        format!("http://{}", world.secondaries[1].addr),
    ];
    let mitm_url = format!("http://{}", mitm.addr);
    world.write_primary_config_with(PrimaryLinks {
        image_url: &image_url,
        director_url: &mitm_url,
        secondary_urls: [&secondaries[0], &secondaries[1]],
        download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
    });
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("vehicle binding check failed"), "{out}");
    assert!(
        out.stderr.contains(OTHER) && out.stderr.contains(VIN),
        "{out}"
    );
    assert_eq!(
        kept(&world),
        before,
        "the Primary kept part of a refused set"
    );
    let reported = world.reported(PRIMARY);
    assert!(
        reported["attacks_detected"]
            .as_str()
            .unwrap()
            .contains("vehicle binding check failed"),
        "{reported}"
    );

    // The same metadata straight to the full Secondary's PUT /metadata.
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    let bundle = serde_json::json!({"director": {
        "timestamp": text(&timestamp), "snapshot": text(&snapshot), "targets": text(&targets)}});
    let secondary = world.secondaries[0].addr;
    let (status, body) = http(
        secondary,
        "PUT",
        "/metadata",
        None,
        bundle.to_string().as_bytes(),
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("vehicle binding check failed"), "{body}");
    let full: Value = {
        let (status, body) = http(secondary, "GET", "/status", None, b"");
        assert_eq!(status, 200);
        serde_json::from_slice(&body).unwrap()
    };
    // Refused from the network: listed with the caller, never in what the ECU signs.
    assert!(
        full["network_refusals"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("vehicle binding check failed"),
        "{full}"
    );
    assert!(full["installed"]["target"].is_string(), "{full}");

    // A set whose targets are this vehicle's own but whose timestamp and snapshot are the
    // other vehicle's (newer, genuinely signed): refused as a whole, nothing of it kept.
    let (ts, snap, own) = (timestamp.clone(), snapshot.clone(), before[2].clone());
    let mixed = Mitm::start(director, move |line| {
        if !line.starts_with("GET ") {
            Act::Forward
        } else if line.contains("/timestamp.json") {
            Act::Serve(ts.clone())
        } else if line.contains(".snapshot.json") {
            Act::Serve(snap.clone())
        } else if line.contains(".targets.json") {
            Act::Serve(own.clone())
        } else {
            Act::Forward
        }
    });
    let mixed_url = format!("http://{}", mixed.addr);
    world.write_primary_config_with(PrimaryLinks {
        image_url: &image_url,
        director_url: &mixed_url,
        secondary_urls: [&secondaries[0], &secondaries[1]],
        download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
    });
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("check failed"), "{out}");
    assert_eq!(kept(&world), before, "the Primary kept part of a mixed set");

    // Back on the real Director link the next genuine cycle succeeds.
    world.write_primary_config(&image_url);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let after = kept(&world);
    assert!(version(&after[1], "targets.json") >= own_targets, "{out}");
    assert!(version(&after[1], "targets.json") < version(&snapshot, "targets.json"));
}
