//! python-tuf 7.0.1's ngclient reads repositories built only through the `ferry repo` CLI and
//! served by `ferry repo serve`: a target in a subdirectory, a supplier delegation, hashed bins.
//! Rotation and refresh are in repo_interop_rotation.rs.
//!
//! Why through the CLI and over HTTP: that is the path an OEM and a device take. A library-level
//! test would not catch a CLI that stages the wrong role, a server that maps a spec path
//! (`targets/dir/HASH.name`) wrongly, or metadata python-tuf parses differently from us.
#![allow(clippy::unwrap_used)]

mod repo_common;

use repo_common::{sha256_hex, Repo};

/// Bytes that are not all alike, so a truncated or shifted download cannot compare equal.
fn payload(tag: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut i: u32 = 0;
    while out.len() < len {
        out.extend_from_slice(format!("{tag}:{i:08x}\n").as_bytes());
        i = i.wrapping_mul(2_654_435_761).wrapping_add(1);
    }
    out.truncate(len);
    out
}

#[test]
fn ngclient_downloads_a_target_in_a_subdirectory() {
    let repo = Repo::init(&[]);
    let data = payload("ivi-app", 300_000);
    repo.add_target(
        "apps/ivi/app.bin",
        &data,
        &[
            "--domain",
            "app",
            "--version",
            "1.0",
            "--release-counter",
            "3",
        ],
    );
    let report = repo.publish();
    assert_eq!(report["timestamp"], 2, "{report}");

    let server = repo.serve();
    // The file sits at the spec's consistent-snapshot path, dir/HASH.name.
    let (status, body) = server.get(&format!("targets/apps/ivi/{}.app.bin", sha256_hex(&data)));
    assert_eq!(status, 200);
    assert!(body == data, "served target bytes differ from the original");

    let up = repo.client("device").update(&server, &["apps/ivi/app.bin"]);
    up.assert_bytes("apps/ivi/app.bin", &data);
    assert_eq!(up.version("root"), 1);
    assert_eq!(up.version("targets"), 2);
    assert_eq!(up.version("snapshot"), 2);
    assert_eq!(up.version("timestamp"), 2);
    // The Uptane custom metadata reaches a plain TUF client intact.
    let custom = &up.targets["apps/ivi/app.bin"].custom;
    assert_eq!(
        custom["hardwareIds"],
        serde_json::json!(["ivi-a53"]),
        "{custom}"
    );
    assert_eq!(custom["releaseCounter"], 3, "{custom}");
    assert_eq!(custom["domain"], "app", "{custom}");
    assert_eq!(custom["version"], "1.0", "{custom}");
}

#[test]
fn ngclient_downloads_a_target_behind_a_supplier_delegation() {
    let repo = Repo::init(&[]);
    // The supplier makes its own key and hands the OEM only the public half.
    let supplier = repo.key_gen("tier1.pem");
    let supplier_pub = repo.public_pem(&supplier);
    let supplier_s = supplier.to_str().unwrap();
    repo.cmd(
        "delegate",
        &[
            "tier1",
            "--key",
            supplier_pub.to_str().unwrap(),
            "--paths",
            "tier1/*",
            "--terminating",
        ],
    );
    let brakes = payload("brakes-1", 70_000);
    repo.add_target(
        "tier1/brakes.bin",
        &brakes,
        &["--role", "tier1", "--domain", "os"],
    );
    let rootfs = payload("rootfs", 50_000);
    repo.add_target("os/rootfs.img", &rootfs, &["--domain", "os"]);
    repo.cmd("sign-role", &["tier1", "--key", supplier_s]);
    let report = repo.publish();
    let roles = report["roles"].to_string();
    assert!(
        roles.contains(r#"["tier1",1]"#),
        "tier1 not published: {report}"
    );

    let server = repo.serve();
    let device = repo.client("device");
    let up = device.update(&server, &["tier1/brakes.bin", "os/rootfs.img"]);
    up.assert_bytes("tier1/brakes.bin", &brakes);
    up.assert_bytes("os/rootfs.img", &rootfs);
    assert_eq!(up.version("tier1"), 1);

    // A second supplier release: only the supplier's key signs it (the OEM's targets role is
    // not touched), and the same device picks it up.
    let brakes2 = payload("brakes-2", 80_000);
    repo.add_target("tier1/brakes-2.bin", &brakes2, &["--role", "tier1"]);
    assert_eq!(repo.staged(), ["tier1.json"], "only tier1 is staged");
    repo.cmd("sign-role", &["tier1", "--key", supplier_s]);
    repo.publish();
    let up = device.update(&server, &["tier1/brakes-2.bin", "tier1/brakes.bin"]);
    up.assert_bytes("tier1/brakes-2.bin", &brakes2);
    up.assert_bytes("tier1/brakes.bin", &brakes);
    assert_eq!(up.version("tier1"), 2);
    assert_eq!(up.version("targets"), 2, "top-level targets unchanged");
}

#[test]
fn ngclient_downloads_targets_behind_hashed_bins() {
    let repo = Repo::init(&[]);
    let mut files = Vec::new();
    // Some targets exist before the split (bins must take them over) ...
    for i in 0..6 {
        let name = format!("fw/ecu-{i}.bin");
        let data = payload(&name, 10_000 + i * 1_000);
        repo.add_target(&name, &data, &[]);
        files.push((name, data));
    }
    repo.publish();
    repo.cmd("bins", &["--count", "16"]);
    repo.publish();
    // ... and some are added after it (they must go to their bin, not top-level targets).
    for i in 6..9 {
        let name = format!("fw/ecu-{i}.bin");
        let data = payload(&name, 10_000 + i * 1_000);
        repo.add_target(&name, &data, &[]);
        files.push((name, data));
    }
    repo.publish();

    let server = repo.serve();
    let snapshot_version = server.get_json("metadata/timestamp.json")["signed"]["meta"]
        ["snapshot.json"]["version"]
        .as_u64()
        .unwrap();
    let snapshot = server.get_json(&format!("metadata/{snapshot_version}.snapshot.json"));
    let bins = snapshot["signed"]["meta"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("bins-"))
        .count();
    assert_eq!(bins, 16, "snapshot lists 16 bins: {snapshot}");

    let (before, after) = (&files[1], &files[7]);
    let up = repo
        .client("device")
        .update(&server, &[before.0.as_str(), after.0.as_str()]);
    up.assert_bytes(&before.0, &before.1);
    up.assert_bytes(&after.0, &after.1);
    // The client resolved them through bins (it loaded at least one bin, and never the others
    // it did not need: TAP 15's point).
    let loaded: Vec<_> = up
        .versions
        .keys()
        .filter(|r| r.starts_with("bins-"))
        .collect();
    assert!(
        !loaded.is_empty() && loaded.len() <= 2,
        "bins loaded: {loaded:?}"
    );
}
