//! A site whose relay never reaches the backend (issue #20): `ferry admin relay pack` writes the
//! vehicle's Director metadata, the Image repository's metadata and the assigned targets to a
//! directory; `ferry relay import` loads it into the relay's cache; the vehicle (real
//! `ferry-primary` and two `ferry-secondary` daemons) installs through the relay, whose
//! upstream addresses answer nothing; its manifest queues and goes back as `ferry relay
//! export` → `ferry admin relay import`, after which `ferry admin status` shows the install.
//! A pack with one byte changed, or made for another relay, is refused before anything loads.
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use primary_common::{
    ferry, ferry_ok, run, Options, PrimaryLinks, World, APP, FULL, FW, PARTIAL, PRIMARY, VIN,
};
use relay_common::{start_relay, RELAY};
use serde_json::Value;

/// An address where nothing listens (bound, then closed): the relay's "backend".
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Copy `from` into `to` recursively.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn find(dir: &std::path::Path, needle: &str) -> std::path::PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(needle) {
                return p;
            }
        }
    }
    panic!("no file with {needle} under {}", dir.display());
}

#[test]
fn a_pack_carried_in_lets_a_vehicle_install_behind_a_relay_that_never_reaches_the_backend() {
    let world = World::start(Options::default());
    world.assign_all();
    let b = world.base.as_path();
    let out = world.admin(true, &["relay", "add", RELAY, "--out", "relay.token"]);
    assert_eq!(out.code, 0, "{out}");
    std::fs::write(
        b.join("relay.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ncache_dir = \"relay-cache\"\ncache_max = \"1GiB\"\n\
             retry_every = \"1s\"\n[upstream]\ndirector = \"{}\"\nimage_repo = \"{}\"\n\
             token_file = \"relay.token\"\nconnect_timeout = \"1s\"\nread_timeout = \"5s\"\n",
            dead_url(),
            dead_url()
        ),
    )
    .unwrap();
    let relay = start_relay(&b.join("relay.toml"), None);

    // Backend side: the pack.
    let image_repo = format!("http://{}", world.repo.addr);
    let out = world.admin(
        true,
        &[
            "relay",
            "pack",
            "--relay",
            RELAY,
            "--vin",
            VIN,
            "--image-repo",
            &image_repo,
            "--out",
            "pack",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let packed: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut targets: Vec<&str> = packed["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    targets.sort_unstable();
    assert_eq!(targets, [APP, FW], "{packed}");

    // A copy with one byte of a target changed, and one for another relay: refused, nothing
    // loaded.
    copy_dir(&b.join("pack"), &b.join("pack-changed"));
    let target = find(&b.join("pack-changed/image-repo/targets"), "fw-2.bin");
    let mut bytes = std::fs::read(&target).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&target, bytes).unwrap();
    let out = run(
        b,
        &ferry(),
        &["relay", "import", "--config", "relay.toml", "pack-changed"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("hash check failed"), "{out}");
    let mirror = b.join("relay-cache/mirror");
    let mut left = Vec::new();
    let mut todo = vec![mirror.clone()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                todo.push(entry.path());
            } else {
                left.push(entry.path());
            }
        }
    }
    assert!(left.is_empty(), "the refused pack loaded {left:?}");
    copy_dir(&b.join("pack"), &b.join("pack-other"));
    let index = b.join("pack-other/pack.json");
    let text = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, text.replace(&format!("\"{RELAY}\""), "\"yard-8\"")).unwrap();
    let out = run(
        b,
        &ferry(),
        &["relay", "import", "--config", "relay.toml", "pack-other"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("relay check failed"), "{out}");

    // Site side: the real pack, carried in.
    let out = ferry_ok(
        b,
        &[
            "relay",
            "import",
            "--config",
            "relay.toml",
            "pack",
            "--json",
        ],
    );
    let imported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(imported["imported"]["vehicles"], 1, "{imported}");

    // A stranger is refused: the relay knows the vehicle only by its token's hash.
    let stranger = format!("{VIN}.{}", "0".repeat(64));
    let (status, body) = primary_common::http(
        relay.addr,
        "GET",
        &format!("/api/v1/vehicles/{VIN}/metadata/targets.json"),
        Some(&stranger),
        b"",
    );
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));

    let url = format!("http://{}", relay.addr);
    let secondaries = [
        format!("http://{}", world.secondaries[0].addr),
        format!("http://{}", world.secondaries[1].addr),
    ];
    world.write_primary_config_with(PrimaryLinks {
        image_url: &url,
        director_url: &url,
        secondary_urls: [&secondaries[0], &secondaries[1]],
        download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
    });
    let out = world.check();
    assert_eq!(out.code, 0, "{out}\n--- relay\n{}", relay.stderr());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "updated", "{report}");
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        let apps = std::fs::read_dir(b.join(format!("{serial}-apps")))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(apps > 0, "{serial}: nothing of {target} installed");
    }
    let director = world.director_status();
    assert!(
        director["vehicle"]["last_seen"].is_null(),
        "the Director heard from the vehicle: {director}"
    );

    // Back out: the queued manifest(s), across the gap the other way.
    let out = ferry_ok(
        b,
        &[
            "relay",
            "export",
            "--config",
            "relay.toml",
            "--out",
            "carry",
            "--json",
        ],
    );
    let exported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(exported["manifests"].as_u64().unwrap() >= 1, "{exported}");
    let out = world.admin(true, &["relay", "import", "carry"]);
    assert_eq!(out.code, 0, "{out}");
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        let reported = world.reported(serial);
        assert_eq!(
            reported["installed_image"]["filepath"], target,
            "{serial}: {reported}"
        );
    }
    let director = world.director_status();
    for a in director["assignments"].as_array().unwrap() {
        assert_eq!(a["status"], "installed", "{director}");
    }
}
