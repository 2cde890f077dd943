//! The relay while its uplink is down (issue #20): the vehicle's cycles complete against the
//! metadata the relay last saw, its manifests queue durably, and when the uplink returns every
//! one reaches the Director once, in order. A kill -9 of the relay with manifests queued and
//! a download half cached loses nothing, and the download resumes where it was cut.
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use primary_common::{Options, World, VIN};
use relay_common::{big_bytes, stored_path, Site, BIG, BIG_LEN};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The Director's manifests of VIN, oldest first: (accepted, SHA-256 of the body).
fn manifests(world: &World) -> Vec<(bool, String)> {
    let out = world.admin(
        false,
        &["manifests", "list", VIN, "--limit", "100", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut list: Vec<Value> = list.as_array().unwrap().clone();
    list.sort_by_key(|m| m["id"].as_i64().unwrap());
    list.iter()
        .map(|m| {
            let digest = m["sha256"].as_str().unwrap_or_default().to_owned();
            (m["verdict"] == "accepted", digest)
        })
        .collect()
}

/// The digests of the manifests the relay queued, in arrival order (its log).
fn queued(site: &Site) -> Vec<String> {
    site.relay
        .stderr()
        .lines()
        .filter(|l| l.contains("manifest queued"))
        .filter_map(|l| l.split("sha256=").nth(1))
        .map(|rest| {
            rest.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn cycle_ok(world: &World, site: &Site) {
    let out = site.check(world);
    assert_eq!(out.code, 0, "{out}\n--- relay\n{}", site.relay.stderr());
}

#[test]
fn uplink_down_cycles_complete_manifests_queue_and_reach_the_director_once_in_order() {
    let world = World::start(Options::default());
    let site = Site::start(&world);
    world.assign_all();
    cycle_ok(&world, &site);
    let before = manifests(&world);

    site.cut();
    for _ in 0..3 {
        let out = site.check(&world);
        assert_eq!(out.code, 0, "{out}\n--- relay\n{}", site.relay.stderr());
        assert!(out.stderr.contains("queued by a relay"), "{out}");
    }
    let status = site.status(&world.base);
    assert_eq!(status["queue_length"], 3, "{status}");
    assert_eq!(status["upstream"]["reachable"], false, "{status}");
    assert!(status["queue_oldest"].is_string(), "{status}");
    assert_eq!(
        manifests(&world),
        before,
        "nothing reached the Director while the uplink was down"
    );

    site.restore();
    let status = site.wait_drained(&world.base);
    assert_eq!(status["forwarded"], 3, "{status}");
    assert_eq!(status["refused"], 0, "{status}");
    let after = manifests(&world);
    let new = &after[before.len()..];
    assert_eq!(new.len(), 3, "each queued manifest once: {after:?}");
    assert!(new.iter().all(|(accepted, _)| *accepted), "{after:?}");
    let forwarded: Vec<String> = new.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(forwarded, queued(&site), "forwarded in arrival order");
    // `ferry admin status` shows the last of them.
    let status = world.director_status();
    assert!(status["vehicle"]["last_seen"].is_string(), "{status}");
    // A later cycle goes straight through again.
    cycle_ok(&world, &site);
    assert_eq!(manifests(&world).len(), after.len() + 1);
}

#[test]
fn a_relay_killed_with_manifests_queued_and_a_download_half_cached_loses_nothing() {
    let world = World::start(Options::default());
    let mut site = Site::start(&world);
    world.assign_all();
    cycle_ok(&world, &site);
    std::fs::write(world.base.join("big.tar"), big_bytes()).unwrap();
    world.republish(
        "big.tar",
        BIG,
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "big",
            "--version",
            "1",
        ],
    );
    let before = manifests(&world).len();

    // Two manifests queued.
    site.director_link.cut();
    cycle_ok(&world, &site);
    cycle_ok(&world, &site);
    assert_eq!(site.status(&world.base)["queue_length"], 2);

    // The big target's fetch is cut at 40 MiB.
    let path = format!("/targets/{}", stored_path(&world, BIG));
    site.repo_link.fail_after(40 << 20);
    let (code, _) = site.get(&path);
    assert_eq!(code, 502, "a cut fetch is a 502 to the vehicle");
    let partial: Vec<u64> = std::fs::read_dir(world.base.join("relay-cache/partial"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".etag"))
        .map(|e| e.metadata().unwrap().len())
        .collect();
    assert_eq!(partial.len(), 1, "{partial:?}");
    assert!(
        partial[0] > 0 && partial[0] < BIG_LEN as u64,
        "half cached: {partial:?}"
    );

    site.crash_and_restart(&world);
    let status = site.status(&world.base);
    assert_eq!(
        status["queue_length"], 2,
        "nothing queued was lost: {status}"
    );

    site.restore();
    let (code, body) = site.get(&path);
    assert_eq!(code, 200);
    assert_eq!(body.len(), BIG_LEN);
    assert_eq!(Sha256::digest(&body), Sha256::digest(big_bytes()));
    let ranges = site.repo_link.saw("range: bytes=");
    assert_eq!(ranges.len(), 1, "resumed once with Range: {ranges:?}");
    let from: u64 = ranges[0]
        .trim_start_matches("range: bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert_eq!(from, partial[0], "resumed where it was cut");

    site.wait_drained(&world.base);
    let after = manifests(&world);
    assert_eq!(after.len(), before + 2, "{after:?}");
    assert!(
        after[before..].iter().all(|(accepted, _)| *accepted),
        "{after:?}"
    );
}
