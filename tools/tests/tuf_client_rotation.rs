//! Root rotation (N+1 chain, thresholds, new keys) and timestamp / snapshot key rotation with
//! fast-forward attack recovery, through `ferry tuf-client` and the python-tuf reference client.

mod common;

use common::{Scenario, TOP_LEVEL};

fn root_version(s: &Scenario, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&s.repo.metadata(name)).expect("json");
    v["signed"]["version"].as_u64().expect("version")
}

/// v1 (1 key) → v2 (3 new keys, threshold 2) → v3 (one v2 key kept, two new, threshold 2,
/// signed by exactly two old and two new keys); the client walks 1 → 2 → 3 and downloads.
#[test]
fn root_rotation_across_two_versions() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "before rotation"]);
    let r = s.refresh();
    s.expect(&r, 0, "initial refresh");

    s.tool("rotate-root", &["--new-keys", "3", "--threshold", "2"]);
    s.tool(
        "rotate-root",
        &[
            "--keep-old",
            "1",
            "--new-keys",
            "2",
            "--threshold",
            "2",
            "--old-signers",
            "2",
            "--new-signers",
            "2",
        ],
    );
    s.tool("add-target", &["dir/b.txt", "--content", "after rotation"]);
    assert_eq!(root_version(&s, "root.json"), 3);

    let r = s.download(&["dir/b.txt"]);
    s.expect(&r, 0, "download after two root rotations");
    s.assert_metadata(&[
        ("root.json", "3.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "snapshot.json"),
        ("targets.json", "targets.json"),
    ]);
    s.assert_targets(&[("dir%2Fb.txt", "after rotation")]);
    for o in &r {
        let roots: Vec<&str> = o
            .paths()
            .into_iter()
            .filter(|p| p.ends_with(".root.json"))
            .collect();
        assert_eq!(
            roots,
            [
                "metadata/2.root.json",
                "metadata/3.root.json",
                "metadata/4.root.json"
            ],
            "{:?}: root chain requests",
            o.kind
        );
    }
}

/// Threshold raised from 1-of-1 to 2-of-3 with the old key among the new ones.
#[test]
fn root_threshold_increase() {
    let s = Scenario::new(&["--keytype", "ecdsa"]);
    s.tool(
        "rotate-root",
        &["--keep-old", "1", "--new-keys", "2", "--threshold", "2"],
    );
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download");
    s.assert_metadata(&TOP_LEVEL);
    s.assert_targets(&[("dir%2Fa.txt", "a")]);
}

/// Root v2 needs 2 of its 3 new keys but carries only one: refused, root stays v1, and the
/// client goes no further than the root chain.
#[test]
fn root_below_new_threshold_is_refused() {
    let s = Scenario::new(&[]);
    let r = s.refresh();
    s.expect(&r, 0, "initial refresh");
    let before = s.metadata_snapshot();

    s.tool(
        "rotate-root",
        &["--new-keys", "3", "--threshold", "2", "--new-signers", "1"],
    );
    s.tool("publish", &[]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with root v2 below its own threshold");
    s.assert_metadata_unchanged(&before, "refused root v2");
    s.assert_metadata_file("root.json", "1.root.json");
    for o in &r {
        assert!(
            !o.fetched("metadata/timestamp.json"),
            "{:?} went on to timestamp",
            o.kind
        );
    }
}

/// Root v2 is signed by its new key but not by the old (trusted) root key: refused.
#[test]
fn root_not_signed_by_old_key_is_refused() {
    let s = Scenario::new(&["--keytype", "rsa"]);
    let r = s.refresh();
    s.expect(&r, 0, "initial refresh");
    let before = s.metadata_snapshot();

    s.tool("rotate-root", &["--new-keys", "1", "--old-signers", "0"]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with root v2 not signed by v1's key");
    s.assert_metadata_unchanged(&before, "refused root v2");
    for o in &r {
        assert!(
            !o.fetched("metadata/timestamp.json"),
            "{:?} went on to timestamp",
            o.kind
        );
    }
}

/// Root v2 valid, root v3 not: the client keeps v2 (persisted as it went) and fails.
#[test]
fn root_chain_stops_at_last_valid_version() {
    let s = Scenario::new(&[]);
    s.tool("rotate-root", &["--new-keys", "2", "--threshold", "2"]);
    s.tool("rotate-root", &["--new-keys", "1", "--old-signers", "1"]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with an invalid root v3");
    s.assert_metadata(&[("root.json", "2.root.json")]);
}

/// The timestamp key was compromised and pushed timestamp to v4; the repository rotates the
/// timestamp key (root v2) and restarts timestamp at v1. Clients must drop their v4.
#[test]
fn timestamp_fast_forward_recovery() {
    let s = Scenario::new(&[]);
    s.tool("publish", &["--timestamp-only"]);
    s.tool("publish", &["--timestamp-only"]);
    s.tool("publish", &["--timestamp-only"]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh to timestamp v4");
    s.assert_metadata(&TOP_LEVEL);

    s.tool("rotate-key", &["timestamp", "--reset-version"]);
    let ts: serde_json::Value =
        serde_json::from_slice(&s.repo.metadata("timestamp.json")).expect("json");
    assert_eq!(ts["signed"]["version"], 1);

    let r = s.refresh();
    s.expect(&r, 0, "refresh after timestamp key rotation");
    s.assert_metadata(&[
        ("root.json", "2.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "snapshot.json"),
        ("targets.json", "targets.json"),
    ]);
}

/// Snapshot pushed to v4, then snapshot and timestamp keys rotated and both restarted at v1.
#[test]
fn snapshot_fast_forward_recovery() {
    let s = Scenario::new(&["--keytype", "ecdsa"]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    s.tool("publish", &[]);
    s.tool("publish", &[]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh to snapshot v4");
    s.assert_metadata(&TOP_LEVEL);

    s.tool("rotate-key", &["snapshot", "--reset-version"]);
    s.tool("rotate-key", &["timestamp", "--reset-version"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download after snapshot and timestamp key rotation");
    s.assert_metadata(&[
        ("root.json", "3.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "1.snapshot.json"),
        ("targets.json", "targets.json"),
    ]);
    s.assert_targets(&[("dir%2Fa.txt", "a")]);
}

/// The targets key is rotated (root v2) and targets re-signed: the old local targets no longer
/// verifies and the new one is used.
#[test]
fn targets_key_rotation() {
    let s = Scenario::new(&["--keytype", "rsa"]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    let r = s.refresh();
    s.expect(&r, 0, "initial refresh");
    s.tool("rotate-key", &["targets"]);
    s.tool("add-target", &["dir/b.txt", "--content", "b"]);
    let r = s.download(&["dir/b.txt"]);
    s.expect(&r, 0, "download after targets key rotation");
    s.assert_metadata(&[
        ("root.json", "2.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "snapshot.json"),
        ("targets.json", "targets.json"),
    ]);
    s.assert_targets(&[("dir%2Fb.txt", "b")]);
}

/// TUF 5.3.11 taken literally: once the snapshot key rotates, the trusted snapshot is deleted,
/// so a snapshot that restarts at version 1 under the new key is accepted. python-tuf 7.0.1
/// instead keeps any old snapshot that still verifies and refuses this repository, so this
/// scenario runs Ferry alone.
#[test]
fn snapshot_key_rotation_with_version_reset_is_recovered() {
    let mut s = Scenario::new(&[]);
    s.clients.retain(|c| c.kind == common::Kind::Ferry);
    if s.clients.is_empty() {
        panic!("this scenario needs the ferry client (FERRY_TUF_CLIENTS excludes it)");
    }
    s.tool("add-target", &["dir/a.txt", "--content", "v1"]);
    for _ in 0..3 {
        s.tool("publish", &[]);
    }
    let r = s.refresh();
    s.expect(&r, 0, "refresh before rotation");

    s.tool("rotate-key", &["snapshot", "--reset-version"]);
    s.tool("add-target", &["dir/b.txt", "--content", "after reset"]);
    let r = s.download(&["dir/b.txt"]);
    s.expect(&r, 0, "download after the snapshot version reset");
    s.assert_targets(&[("dir%2Fb.txt", "after reset")]);
}
