//! The Director's root from its first version on without a root private key on the Director's
//! host (#18): `ferry director root init --proposal`, two of three holders sign, `merge`,
//! `director root import`; `ferry director status` reports the root offline and exits 3 once
//! it is inside the signing window.
#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn ferry(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = ferry(dir, args);
    assert!(
        out.status.success(),
        "ferry {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_director_root_v1_is_signed_by_two_of_three_holders_and_status_tracks_its_expiry() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path();
    ok(b, &["director", "init", "d", "--listen", "127.0.0.1:0"]);
    for n in 1..=3 {
        let dir = b.join(format!("h{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pass"), format!("holder {n}\n")).unwrap();
        ok(
            &dir,
            &[
                "key",
                "gen",
                "--type",
                "ecdsa-p256",
                "--out",
                "root.key",
                "--passphrase-file",
                "pass",
            ],
        );
        let public = ok(
            &dir,
            &["key", "pub", "root.key", "--passphrase-file", "pass"],
        );
        std::fs::write(b.join(format!("h{n}.pub")), public).unwrap();
    }
    let out = ok(
        b,
        &[
            "director",
            "root",
            "init",
            "--root-key",
            "h1.pub",
            "--root-key",
            "h2.pub",
            "--root-key",
            "h3.pub",
            "--root-threshold",
            "2",
            "--targets-key",
            "d/keys/targets.pem",
            "--snapshot-key",
            "d/keys/snapshot.pem",
            "--timestamp-key",
            "d/keys/timestamp.pem",
            "--proposal",
            "p.json",
        ],
    );
    assert!(
        out.contains("Director root: none (first version) -> v1"),
        "{out}"
    );
    let mut sigs = Vec::new();
    for n in [1, 3] {
        let dir = b.join(format!("h{n}"));
        std::fs::copy(b.join("p.json"), dir.join("p.json")).unwrap();
        ok(
            &dir,
            &[
                "proposal",
                "sign",
                "p.json",
                "--key",
                "root.key",
                "--passphrase-file",
                "pass",
                "--out",
                "s.sig",
            ],
        );
        let sig = format!("h{n}.sig");
        std::fs::copy(dir.join("s.sig"), b.join(&sig)).unwrap();
        sigs.push(sig);
    }
    ok(
        b,
        &[
            "proposal",
            "merge",
            "p.json",
            &sigs[0],
            &sigs[1],
            "--out",
            "1.root.json",
        ],
    );
    ok(
        b,
        &[
            "director",
            "root",
            "import",
            "--config",
            "d/director.toml",
            "1.root.json",
        ],
    );
    // A key file is not a root key of this Director: nothing to sign with here.
    let out = ferry(
        b,
        &[
            "proposal",
            "sign",
            "p.json",
            "--key",
            "d/keys/timestamp.pem",
            "--out",
            "x.sig",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("signer check failed"));

    // The Director imports the root at its start.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ferry"));
    serve
        .current_dir(b)
        .args(["director", "serve", "--config", "d/director.toml"]);
    let director = ferry_tests::daemon::Daemon::start(serve);
    drop(director);
    let out = ferry(
        b,
        &[
            "director",
            "status",
            "--config",
            "d/director.toml",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = &v["roles"][0];
    assert_eq!(root["role"], "root");
    assert_eq!(root["signing"], "offline");
    assert_eq!(root["threshold"], 2);
    assert_eq!(root["keyids"].as_array().unwrap().len(), 3);
    assert_eq!(v["ceremony_due"], false);
    // A signing window longer than the root's year: exit 3, naming the ceremony.
    let config = b.join("d/director.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[expiry]\nsign_before = \"400d\"\n");
    std::fs::write(&config, text).unwrap();
    let out = ferry(b, &["director", "status", "--config", "d/director.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CEREMONY DUE: root v1"), "{text}");
    assert!(
        text.contains("ferry director root propose --config"),
        "{text}"
    );
}
