//! Attacks and bad repositories that `ferry tuf-client` (like the python-tuf reference client)
//! must refuse with exit 1, writing nothing to the target dir and keeping the bad metadata out
//! of the metadata dir.

mod common;

use common::{Scenario, TOP_LEVEL};

/// Same length, different bytes: only the hashes can tell.
#[test]
fn tampered_target_is_refused() {
    tampered_target("flip");
}

/// One byte longer than the signed length.
#[test]
fn oversized_target_is_refused() {
    tampered_target("append");
}

fn tampered_target(mode: &str) {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "genuine"]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    let before = s.metadata_snapshot();

    s.tool("tamper-target", &["dir/a.txt", "--mode", mode]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 1, "download of a tampered target");
    s.assert_targets(&[]);
    s.assert_metadata_unchanged(&before, "download of a tampered target");
    for o in &r {
        assert_eq!(
            o.paths_under("targets/").len(),
            1,
            "{:?}: {:?}",
            o.kind,
            o.paths()
        );
    }
}

/// A tampered target also fails without consistent snapshots (plain dir/name URL).
#[test]
fn tampered_target_without_consistent_snapshot_is_refused() {
    let s = Scenario::new(&["--consistent-snapshot", "false"]);
    s.tool("add-target", &["dir/a.txt", "--content", "genuine"]);
    s.tool("tamper-target", &["dir/a.txt"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 1, "download of a tampered target");
    s.assert_targets(&[]);
}

/// A new timestamp that has already expired: refused, the old timestamp stays trusted.
#[test]
fn expired_timestamp_is_refused() {
    let s = Scenario::new(&[]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    let before = s.metadata_snapshot();

    s.tool("set-expiry", &["timestamp", "--days", "-1"]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with an expired timestamp");
    s.assert_metadata_unchanged(&before, "expired timestamp");
    for o in &r {
        assert!(o.fetched("metadata/timestamp.json"), "{:?}", o.kind);
        assert!(
            o.paths().iter().all(|p| !p.contains("snapshot")),
            "{:?}: {:?}",
            o.kind,
            o.paths()
        );
    }

    s.tool("set-expiry", &["timestamp", "--days", "7"]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh once the timestamp is fresh again");
    s.assert_metadata(&TOP_LEVEL);
}

/// An expired snapshot (named by a valid timestamp) is refused.
#[test]
fn expired_snapshot_is_refused() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    s.tool("set-expiry", &["snapshot", "--days", "-1"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 1, "download with an expired snapshot");
    s.assert_targets(&[]);
    for c in &s.clients {
        assert!(
            !c.metadata().contains_key("snapshot.json"),
            "{:?} trusts the snapshot",
            c.kind
        );
    }
}

/// An expired targets role is refused.
#[test]
fn expired_targets_is_refused() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    s.tool("set-expiry", &["targets", "--days", "-1"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 1, "download with expired targets");
    s.assert_targets(&[]);
    for c in &s.clients {
        assert!(
            !c.metadata().contains_key("targets.json"),
            "{:?} trusts targets",
            c.kind
        );
    }
}

/// Root v2 is validly signed but expired: it is persisted (the chain moves on), then the
/// refresh fails and nothing else is updated. (python-tuf still downloads timestamp.json before
/// it checks the final root's expiry, so the request log is not asserted.)
#[test]
fn expired_new_root_is_persisted_then_refused() {
    let s = Scenario::new(&[]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    s.tool("set-expiry", &["root", "--days", "-1"]);
    s.tool("publish", &[]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with an expired root v2");
    s.assert_metadata(&[
        ("root.json", "2.root.json"),
        ("timestamp.json", "history/1.timestamp.json"),
        ("snapshot.json", "1.snapshot.json"),
        ("targets.json", "1.targets.json"),
    ]);
}

/// The server goes back to timestamp v1 after the client saw v2: refused, v2 kept.
#[test]
fn rolled_back_timestamp_is_refused() {
    let s = Scenario::new(&[]);
    s.tool("publish", &["--timestamp-only"]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh to timestamp v2");
    s.assert_metadata(&TOP_LEVEL);
    let before = s.metadata_snapshot();

    s.tool("rollback", &["timestamp", "--to-version", "1"]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with timestamp rolled back to v1");
    s.assert_metadata_unchanged(&before, "rolled-back timestamp");
}

/// A new, validly signed timestamp naming an older snapshot version: refused.
#[test]
fn rolled_back_snapshot_is_refused() {
    let s = Scenario::new(&[]);
    s.tool("publish", &[]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh to snapshot v2");
    let before = s.metadata_snapshot();

    s.tool("rollback", &["snapshot", "--to-version", "1"]);
    let r = s.refresh();
    s.expect(&r, 1, "refresh with snapshot rolled back to v1");
    s.assert_metadata_unchanged(&before, "rolled-back snapshot");
}

/// A new snapshot naming an older targets version: refused.
#[test]
fn rolled_back_targets_is_refused() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh to targets v2");
    s.tool("rollback", &["targets", "--to-version", "1"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 1, "download with targets rolled back to v1");
    s.assert_targets(&[]);
    s.assert_metadata_file("targets.json", "2.targets.json");
}

/// A timestamp signed by a key that is not the timestamp key: refused.
#[test]
fn timestamp_signed_by_wrong_key_is_refused() {
    let s = Scenario::new(&[]);
    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    let before = s.metadata_snapshot();
    // the repository rotates the timestamp key but the client never gets the new root:
    // serve the new timestamp while hiding root v2
    s.tool("rotate-key", &["timestamp"]);
    std::fs::remove_file(s.repo.served_dir().join("metadata/2.root.json")).expect("hide root v2");
    let r = s.refresh();
    s.expect(&r, 1, "refresh with a timestamp signed by an unknown key");
    s.assert_metadata_unchanged(&before, "wrong timestamp key");
}
