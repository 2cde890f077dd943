//! python-tuf 7.0.1's ngclient keeps following a `ferry repo` repository (served by `ferry repo
//! serve`) through the maintenance an OEM does on it: root rotation, online key rotation and
//! expiry refresh. A device that was shipped with 1.root.json and updated before must update
//! again afterwards, from its own stored metadata, without being re-provisioned.
#![allow(clippy::unwrap_used)]

mod repo_common;

use repo_common::{ferry, Repo};

fn payload(tag: &str, len: usize) -> Vec<u8> {
    tag.bytes().cycle().take(len).collect()
}

fn keyid(key: &std::path::Path) -> String {
    let out = ferry([
        std::ffi::OsStr::new("key"),
        std::ffi::OsStr::new("pub"),
        key.as_os_str(),
        std::ffi::OsStr::new("--json"),
    ]);
    assert_eq!(out.code, 0, "ferry key pub failed:\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["keyid"].as_str().unwrap().to_owned()
}

fn signature_keyids(doc: &serde_json::Value) -> Vec<String> {
    doc["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn ngclient_follows_root_then_timestamp_key_rotation() {
    let repo = Repo::init(&[]);
    let v1 = payload("os-1.0|", 40_000);
    repo.add_target("os/rootfs-1.0.img", &v1, &["--domain", "os"]);
    repo.publish();
    let server = repo.serve();
    let device = repo.client("device");
    let up = device.update(&server, &["os/rootfs-1.0.img"]);
    up.assert_bytes("os/rootfs-1.0.img", &v1);
    assert_eq!(up.version("root"), 1);

    // Root: one key → two new keys, threshold 2.
    let (a, b) = (repo.key_gen("root-a.pem"), repo.key_gen("root-b.pem"));
    repo.cmd(
        "rotate",
        &[
            "root",
            "--new-key",
            a.to_str().unwrap(),
            "--new-key",
            b.to_str().unwrap(),
            "--threshold",
            "2",
        ],
    );
    let root2 = repo.metadata_json("2.root.json");
    assert_eq!(root2["signed"]["roles"]["root"]["threshold"], 2);
    let signers = signature_keyids(&root2);
    for new in [keyid(&a), keyid(&b)] {
        assert!(
            signers.contains(&new),
            "2.root.json not signed by new key {new}"
        );
    }
    let old_root = repo.metadata_json("1.root.json")["signed"]["roles"]["root"]["keyids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        signers.contains(&old_root),
        "2.root.json not signed by the old root key"
    );

    let v2 = payload("os-2.0|", 45_000);
    repo.add_target("os/rootfs-2.0.img", &v2, &["--domain", "os"]);
    repo.publish();
    let up = device.update(&server, &["os/rootfs-2.0.img"]);
    up.assert_bytes("os/rootfs-2.0.img", &v2);
    assert_eq!(up.version("root"), 2, "device walked to 2.root.json");
    // A device fresh from the factory with 1.root.json walks the same chain.
    let fresh = repo.client("fresh");
    let up = fresh.update(&server, &["os/rootfs-2.0.img", "os/rootfs-1.0.img"]);
    up.assert_bytes("os/rootfs-2.0.img", &v2);
    up.assert_bytes("os/rootfs-1.0.img", &v1);
    assert_eq!(up.version("root"), 2);

    // Timestamp: the online key is replaced (root 3, signed by both new root keys).
    let t2 = repo.key_gen("timestamp-2.pem");
    repo.cmd("rotate", &["timestamp", "--new-key", t2.to_str().unwrap()]);
    assert_eq!(repo.version_of("root.json"), 3);
    let served_ts = server.get_json("metadata/timestamp.json");
    assert_eq!(
        signature_keyids(&served_ts),
        [keyid(&t2)],
        "timestamp is signed by the new key only"
    );
    let v3 = payload("os-3.0|", 50_000);
    repo.add_target("os/rootfs-3.0.img", &v3, &["--domain", "os"]);
    repo.publish();
    let up = device.update(&server, &["os/rootfs-3.0.img"]);
    up.assert_bytes("os/rootfs-3.0.img", &v3);
    assert_eq!(up.version("root"), 3);
    assert_eq!(
        up.version("timestamp"),
        repo.version_of("timestamp.json"),
        "device trusts the served timestamp"
    );
    let up = repo
        .client("fresh-2")
        .update(&server, &["os/rootfs-3.0.img"]);
    up.assert_bytes("os/rootfs-3.0.img", &v3);
    assert_eq!(up.version("root"), 3);
}

#[test]
fn ngclient_follows_refresh_of_the_timestamp() {
    let repo = Repo::init(&[]);
    let data = payload("app|", 20_000);
    repo.add_target("apps/app.bin", &data, &[]);
    repo.publish();
    let server = repo.serve();
    let device = repo.client("device");
    let up = device.update(&server, &["apps/app.bin"]);
    let ts_before = up.version("timestamp");
    let snapshot_before = up.version("snapshot");
    let served_before = server.get_json("metadata/timestamp.json");
    assert_eq!(served_before["signed"]["version"], ts_before);

    // A window shorter than anything's remaining lifetime (timestamp: 1 day) re-signs nothing.
    let out = repo.cmd("refresh", &["--within", "1h", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["timestamp"], serde_json::Value::Null, "{report}");
    assert_eq!(
        server.get_json("metadata/timestamp.json"),
        served_before,
        "refresh with nothing due changed the timestamp"
    );

    // A window covering the timestamp's lifetime (but not the snapshot's week) re-signs the
    // timestamp only.
    let out = repo.cmd("refresh", &["--within", "2days", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["timestamp"], ts_before + 1, "{report}");
    assert_eq!(report["snapshot"], serde_json::Value::Null, "{report}");
    let served = server.get_json("metadata/timestamp.json");
    assert_eq!(
        served["signed"]["version"],
        ts_before + 1,
        "new timestamp is served"
    );
    assert!(
        served["signed"]["expires"].as_str().unwrap()
            >= served_before["signed"]["expires"].as_str().unwrap(),
        "refreshed timestamp expires no earlier: {served}"
    );

    let up = device.update(&server, &["apps/app.bin"]);
    up.assert_bytes("apps/app.bin", &data);
    assert_eq!(up.version("timestamp"), ts_before + 1);
    assert_eq!(up.version("snapshot"), snapshot_before);
}

#[test]
fn ngclient_follows_refresh_of_hashed_bins_and_snapshot() {
    let repo = Repo::init(&[]);
    repo.cmd("bins", &["--count", "16"]);
    let data = payload("bin-target|", 15_000);
    repo.add_target("fw/gateway.bin", &data, &[]);
    repo.publish();
    let server = repo.serve();
    let device = repo.client("device");
    let up = device.update(&server, &["fw/gateway.bin"]);
    let bin = up
        .versions
        .keys()
        .find(|r| r.starts_with("bins-"))
        .cloned()
        .unwrap_or_else(|| panic!("no bin loaded: {:?}", up.versions));
    let (bin_before, snapshot_before) = (up.version(&bin), up.version("snapshot"));

    // Bins and snapshot live a week: an 8-day window re-signs them all, and the timestamp.
    let out = repo.cmd("refresh", &["--within", "8days", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["snapshot"], snapshot_before + 1, "{report}");
    let resigned_bins = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[0].as_str().unwrap().starts_with("bins-"))
        .count();
    assert_eq!(resigned_bins, 16, "{report}");

    let up = device.update(&server, &["fw/gateway.bin"]);
    up.assert_bytes("fw/gateway.bin", &data);
    assert_eq!(up.version(&bin), bin_before + 1);
    assert_eq!(up.version("snapshot"), snapshot_before + 1);
}
