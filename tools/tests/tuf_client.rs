//! `ferry tuf-client` against a python-tuf repository over HTTP, side by side with the
//! python-tuf reference client: downloads per key type, target naming, caching, faked clock.
//! (Rotations, delegations and refusals live in tuf_client_*.rs.)

mod common;

use common::{quote, Scenario, TOP_LEVEL};

/// init + refresh + download of a target in a subdirectory.
fn download_subdir_target(keytype: &str) {
    let s = Scenario::new(&["--keytype", keytype]);
    s.tool(
        "add-target",
        &["dir/a.txt", "--content", &format!("hello from {keytype}")],
    );

    let r = s.refresh();
    s.expect(&r, 0, "refresh");
    s.assert_metadata(&TOP_LEVEL);
    for o in &r {
        assert!(
            o.paths_under("targets/").is_empty(),
            "{:?}: refresh fetched a target",
            o.kind
        );
        assert!(
            o.fetched("metadata/2.root.json"),
            "{:?}: never looked for root v2",
            o.kind
        );
    }

    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download");
    s.assert_metadata(&TOP_LEVEL);
    s.assert_targets(&[("dir%2Fa.txt", &format!("hello from {keytype}"))]);
    let sha256 = sha256_of_target(&s, "dir/a.txt");
    for o in &r {
        assert_eq!(
            o.paths_under("targets/"),
            vec![format!("targets/dir/{sha256}.a.txt")],
            "{:?}: consistent-snapshot target URL",
            o.kind
        );
    }
}

#[test]
fn download_ed25519() {
    download_subdir_target("ed25519");
}

#[test]
fn download_rsa() {
    download_subdir_target("rsa");
}

#[test]
fn download_ecdsa() {
    download_subdir_target("ecdsa");
}

/// Without consistent snapshots every file is fetched by its plain name.
#[test]
fn download_without_consistent_snapshot() {
    let s = Scenario::new(&["--consistent-snapshot", "false"]);
    s.tool("add-target", &["dir/a.txt", "--content", "plain"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download");
    s.assert_metadata(&TOP_LEVEL);
    s.assert_targets(&[("dir%2Fa.txt", "plain")]);
    for o in &r {
        assert_eq!(
            o.paths(),
            [
                "metadata/2.root.json",
                "metadata/timestamp.json",
                "metadata/snapshot.json",
                "metadata/targets.json",
                "targets/dir/a.txt"
            ],
            "{:?}: request sequence",
            o.kind
        );
    }
}

/// A target listed with a sha512 hash only (no sha256) downloads and verifies.
#[test]
fn download_sha512_only_target() {
    let s = Scenario::new(&[]);
    s.tool(
        "add-target",
        &["bin/tool", "--content", "sha512 only", "--hashes", "sha512"],
    );
    let r = s.download(&["bin/tool"]);
    s.expect(&r, 0, "download");
    s.assert_targets(&[("bin%2Ftool", "sha512 only")]);
}

/// Several targets in one call; names with characters that need percent-encoding.
#[test]
fn download_several_targets_with_encoded_names() {
    let s = Scenario::new(&["--keytype", "ecdsa"]);
    let names = ["top.txt", "a dir/b+c d.txt", "x/y/z~_-.bin"];
    for (i, n) in names.iter().enumerate() {
        s.tool("add-target", &[n, "--content", &format!("content {i}")]);
    }
    let r = s.download(&names);
    s.expect(&r, 0, "download");
    s.assert_metadata(&TOP_LEVEL);
    let want: Vec<(String, String)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (quote(n), format!("content {i}")))
        .collect();
    assert_eq!(want[1].0, "a%20dir%2Fb%2Bc%20d.txt");
    assert_eq!(want[2].0, "x%2Fy%2Fz~_-.bin");
    let want: Vec<(&str, &str)> = want.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    s.assert_targets(&want);
}

/// An unknown target is exit 1 and nothing is written to TD.
#[test]
fn unknown_target_is_not_found() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    let r = s.download(&["dir/missing.txt"]);
    s.expect(&r, 1, "download of an unknown target");
    s.assert_targets(&[]);
    s.assert_metadata(&TOP_LEVEL);
    for o in &r {
        assert!(
            o.paths_under("targets/").is_empty(),
            "{:?} fetched a target",
            o.kind
        );
    }
}

/// A second download of the same target makes no request for it; a changed target is fetched
/// again into the same file; a corrupted cached file is replaced.
#[test]
fn cached_target_is_not_fetched_again() {
    let s = Scenario::new(&[]);
    s.tool("add-target", &["dir/a.txt", "--content", "version one"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "first download");
    for o in &r {
        assert_eq!(
            o.paths_under("targets/").len(),
            1,
            "{:?}: first download",
            o.kind
        );
    }

    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "second download");
    s.assert_targets(&[("dir%2Fa.txt", "version one")]);
    for o in &r {
        assert!(
            o.paths_under("targets/").is_empty(),
            "{:?}: cached target fetched again: {:?}",
            o.kind,
            o.paths()
        );
    }

    s.tool("add-target", &["dir/a.txt", "--content", "version two"]);
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download of the changed target");
    s.assert_targets(&[("dir%2Fa.txt", "version two")]);
    s.assert_metadata(&TOP_LEVEL);
    for o in &r {
        assert_eq!(
            o.paths_under("targets/").len(),
            1,
            "{:?}: changed target",
            o.kind
        );
    }

    for c in &s.clients {
        std::fs::write(c.target_dir.join("dir%2Fa.txt"), "version TWO").expect("corrupt cache");
    }
    let r = s.download(&["dir/a.txt"]);
    s.expect(&r, 0, "download over a corrupted cached file");
    s.assert_targets(&[("dir%2Fa.txt", "version two")]);
    for o in &r {
        assert_eq!(
            o.paths_under("targets/").len(),
            1,
            "{:?}: corrupted cache",
            o.kind
        );
    }
}

/// The clock is the system clock: shifted 400 days by LD_PRELOADed libfaketime (or our shim),
/// metadata that expires in 365 days is refused; shifted 300 days, or not at all, it is fine.
#[test]
fn faked_clock_expires_metadata() {
    let s = Scenario::new(&["--expires-days", "365"]);
    s.tool("add-target", &["dir/a.txt", "--content", "a"]);
    let lib = common::faketime::faketime_library(s.tmp.path());
    let preload = lib.as_os_str();

    let before = s.metadata_snapshot();
    let r = s.refresh_env(&[("LD_PRELOAD", preload), ("FAKETIME", "+400d".as_ref())]);
    s.expect(&r, 1, "refresh 400 days in the future");
    s.assert_metadata_unchanged(&before, "refresh 400 days in the future");

    let r = s.refresh_env(&[("LD_PRELOAD", preload), ("FAKETIME", "+300d".as_ref())]);
    s.expect(&r, 0, "refresh 300 days in the future");
    s.assert_metadata(&TOP_LEVEL);

    let r = s.refresh();
    s.expect(&r, 0, "refresh now");
    s.assert_metadata(&TOP_LEVEL);
}

fn sha256_of_target(s: &Scenario, path: &str) -> String {
    let targets: serde_json::Value =
        serde_json::from_slice(&s.repo.metadata("targets.json")).expect("targets.json");
    targets["signed"]["targets"][path]["hashes"]["sha256"]
        .as_str()
        .expect("sha256 hash")
        .to_string()
}
