//! An offline-first Image repository (#18): root and top-level targets keys stay with three
//! holders; `ferry repo init` writes the first root's proposal, every change to top-level
//! targets is proposed, signed by two of three holders, merged, imported and published, and
//! python-tuf's ngclient reads the result. `ferry repo status` exits 3 once an offline role is
//! inside its signing window.
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use ferry_core::expiry::Signing;
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

/// Holder `n` makes a root key and a targets key (encrypted) in its own directory and hands
/// over their public keys as `ferry key pub` prints them.
fn holder(base: &Path, n: u32) {
    let dir = base.join(format!("h{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pass"), format!("holder {n} secret\n")).unwrap();
    for role in ["root", "targets"] {
        let key = format!("{role}.key");
        ok(
            &dir,
            &[
                "key",
                "gen",
                "--type",
                "ed25519",
                "--out",
                &key,
                "--passphrase-file",
                "pass",
            ],
        );
        let public = ok(&dir, &["key", "pub", &key, "--passphrase-file", "pass"]);
        std::fs::write(base.join(format!("h{n}-{role}.pub")), public).unwrap();
    }
}

/// Each named holder signs `proposal` with its `role` key; returns the signature files.
fn sign(base: &Path, proposal: &str, role: &str, holders: &[u32]) -> Vec<String> {
    holders
        .iter()
        .map(|n| {
            let dir = base.join(format!("h{n}"));
            std::fs::copy(base.join(proposal), dir.join(proposal)).unwrap();
            let sig = format!("{proposal}.h{n}.sig");
            let key = format!("{role}.key");
            ok(
                &dir,
                &[
                    "proposal",
                    "sign",
                    proposal,
                    "--key",
                    &key,
                    "--passphrase-file",
                    "pass",
                    "--out",
                    &sig,
                ],
            );
            std::fs::copy(dir.join(&sig), base.join(&sig)).unwrap();
            sig
        })
        .collect()
}

fn merge_and_import(base: &Path, proposal: &str, role: &str, sigs: &[String], out: &str) -> String {
    let mut args = vec!["proposal", "merge", proposal];
    args.extend(sigs.iter().map(String::as_str));
    args.extend(["--out", out]);
    ok(base, &args);
    ok(base, &["repo", role, "import", "repo", out])
}

fn ngclient(repo: &Path, target: &str) -> Result<Value, String> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/python/ngclient_verify.py");
    let out = Command::new(ferry_tests::python::python())
        .arg(script)
        .arg(repo)
        .arg(target)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn offline_targets_signed_by_two_of_three_holders_are_published_and_python_tuf_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path();
    for n in 1..=3 {
        holder(b, n);
    }
    let out = ok(
        b,
        &[
            "repo",
            "init",
            "repo",
            "--offline-root",
            "h1-root.pub",
            "--offline-root",
            "h2-root.pub",
            "--offline-root",
            "h3-root.pub",
            "--offline-targets",
            "h1-targets.pub",
            "--offline-targets",
            "h2-targets.pub",
            "--offline-targets",
            "h3-targets.pub",
            "--threshold",
            "root=2",
            "--threshold",
            "targets=2",
        ],
    );
    assert!(out.contains("proposal.json"), "{out}");
    // No private key of an offline role is on the repository host.
    let keys: Vec<String> = std::fs::read_dir(b.join("repo/keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("root") || k.contains("targets")),
        "{keys:?}"
    );
    std::fs::copy(b.join("repo/proposal.json"), b.join("root-proposal.json")).unwrap();
    let sigs = sign(b, "root-proposal.json", "root", &[1, 3]);
    let out = merge_and_import(b, "root-proposal.json", "root", &sigs, "1.root.json");
    assert!(
        out.contains("targets propose"),
        "root v1 waits for targets: {out}"
    );
    ok(
        b,
        &[
            "repo",
            "targets",
            "propose",
            "repo",
            "--out",
            "targets-1.json",
        ],
    );
    let sigs = sign(b, "targets-1.json", "targets", &[2, 3]);
    let out = merge_and_import(b, "targets-1.json", "targets", &sigs, "1.targets.json");
    assert!(
        out.contains("published root v1") && out.contains("published timestamp v1"),
        "{out}"
    );

    // A target: publish refuses (the targets keys are offline) and names the ceremony.
    std::fs::write(b.join("app.bin"), b"application 2.0").unwrap();
    ok(
        b,
        &[
            "repo",
            "add-target",
            "repo",
            "app.bin",
            "--name",
            "ivi/app-2.0.bin",
            "--hardware-id",
            "ivi",
        ],
    );
    let out = ferry(b, &["repo", "publish", "repo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ferry repo targets propose"), "{err}");
    let proposal = ok(
        b,
        &[
            "repo",
            "targets",
            "propose",
            "repo",
            "--out",
            "targets-2.json",
        ],
    );
    assert!(proposal.contains("+ target ivi/app-2.0.bin"), "{proposal}");
    let shown = ok(b, &["proposal", "show", "targets-2.json"]);
    assert!(shown.contains("targets: v1 -> v2"), "{shown}");
    // One holder is not enough; the other two are named.
    let one = sign(b, "targets-2.json", "targets", &[1]);
    let out = ferry(
        b,
        &[
            "proposal",
            "merge",
            "targets-2.json",
            &one[0],
            "--out",
            "short.json",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 2"));
    let mut sigs = one;
    sigs.extend(sign(b, "targets-2.json", "targets", &[3]));
    let out = merge_and_import(b, "targets-2.json", "targets", &sigs, "2.targets.json");
    assert!(out.contains("published targets v2"), "{out}");

    // python-tuf 7.0.1 trusts root v1 and reads the target through the offline-signed targets.
    let result = ngclient(&b.join("repo"), "ivi/app-2.0.bin")
        .unwrap_or_else(|e| panic!("python-tuf refused the offline-targets repository:\n{e}"));
    assert_eq!(
        result["targets"]["ivi/app-2.0.bin"],
        ferry_tests::sha256_hex(b"application 2.0")
    );

    // Status: the offline roles are marked so, nothing is due yet (exit 0).
    let status = ferry(b, &["repo", "status", "repo", "--json"]);
    assert_eq!(status.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["ceremony_due"], false, "{v}");
    let roles = v["roles"].as_array().unwrap();
    let signing: Vec<(&str, &str)> = roles
        .iter()
        .map(|r| (r["role"].as_str().unwrap(), r["signing"].as_str().unwrap()))
        .collect();
    assert_eq!(
        signing,
        [
            ("root", "offline"),
            ("targets", "offline"),
            ("snapshot", "online"),
            ("timestamp", "online")
        ]
    );
    // A signing window longer than targets' 90 days: exit 3, naming the ceremony.
    let config = b.join("repo/ferry-repo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("sign_before = \"30days\"", "sign_before = \"100days\""),
    )
    .unwrap();
    let out = ferry(b, &["repo", "status", "repo"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CEREMONY DUE: targets v2"), "{text}");
    assert!(text.contains("ferry repo targets propose"), "{text}");
    assert!(!text.contains("CEREMONY DUE: root"), "{text}");
}

/// `status` counts from an injected clock: targets (90 days, offline) is due from day 61 with
/// the default 30-day window, root (1 year) from day 336; online roles are never "due".
#[test]
fn an_offline_role_is_due_inside_its_signing_window_by_the_injected_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path();
    let publics: Vec<ferry_keys::PublicKey> = (0..1)
        .map(|_| {
            ferry_keys::PrivateKey::generate(ferry_keys::KeyKind::Ed25519)
                .unwrap()
                .public_key()
                .clone()
        })
        .collect();
    let now = chrono::Utc::now();
    let mut options = ferry_image_repo::InitOptions::default();
    options
        .offline
        .insert("targets".into(), vec![publics[0].clone()]);
    let (_, done) = ferry_image_repo::init(&b.join("repo"), now, &options).unwrap();
    assert!(
        matches!(done, ferry_image_repo::Initialised::TargetsCeremony),
        "{done:?}"
    );
    // A development repository whose targets key is then taken off the host.
    let dev = b.join("dev");
    ferry_image_repo::init(&dev, now, &ferry_image_repo::InitOptions::default()).unwrap();
    let config = dev.join("ferry-repo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("keys = [\"keys/targets.pem\"]", "keys = []"),
    )
    .unwrap();
    let due = |days: i64| -> Vec<(String, bool, Signing)> {
        let mut repo =
            ferry_image_repo::Repository::open(&dev, now + Duration::days(days)).unwrap();
        repo.status()
            .unwrap()
            .into_iter()
            .map(|r| (r.role, r.due, r.signing))
            .collect()
    };
    let at = |days: i64, role: &str| due(days).into_iter().find(|r| r.0 == role).unwrap();
    assert_eq!(
        at(0, "targets"),
        ("targets".into(), false, Signing::Offline)
    );
    assert!(!at(59, "targets").1);
    assert!(at(61, "targets").1);
    assert_eq!(at(61, "root"), ("root".into(), false, Signing::Online));
    assert!(
        !at(200, "timestamp").1,
        "online roles are refreshed, not ceremonies"
    );
}

/// Rotating an online key is a root ceremony too: the timestamp key is replaced by root v2
/// (signed by two of three holders under both thresholds), the import installs the new
/// private key and publishes with it, and python-tuf, trusting root v1, walks to v2.
#[test]
fn the_timestamp_key_rotates_through_a_root_ceremony_and_python_tuf_walks_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path();
    for n in 1..=3 {
        holder(b, n);
    }
    ok(
        b,
        &[
            "repo",
            "init",
            "repo",
            "--offline-root",
            "h1-root.pub",
            "--offline-root",
            "h2-root.pub",
            "--offline-root",
            "h3-root.pub",
            "--threshold",
            "root=2",
        ],
    );
    std::fs::copy(b.join("repo/proposal.json"), b.join("root-proposal.json")).unwrap();
    let sigs = sign(b, "root-proposal.json", "root", &[1, 2]);
    let out = merge_and_import(b, "root-proposal.json", "root", &sigs, "1.root.json");
    assert!(
        out.contains("published root v1"),
        "online targets: published at once: {out}"
    );
    std::fs::write(b.join("app.bin"), b"application 1.0").unwrap();
    ok(
        b,
        &[
            "repo",
            "add-target",
            "repo",
            "app.bin",
            "--name",
            "ivi/app-1.0.bin",
            "--hardware-id",
            "ivi",
        ],
    );
    ok(b, &["repo", "publish", "repo"]);

    let old: Value =
        serde_json::from_str(&ok(b, &["key", "pub", "repo/keys/timestamp.pem", "--json"])).unwrap();
    ok(
        b,
        &[
            "key",
            "gen",
            "--type",
            "ecdsa-p256",
            "--out",
            "ts2.pem",
            "--insecure-plaintext",
        ],
    );
    let remove = format!("timestamp={}", old["keyid"].as_str().unwrap());
    let out = ok(
        b,
        &[
            "repo",
            "root",
            "propose",
            "repo",
            "--add-key",
            "timestamp=ts2.pem",
            "--remove-key",
            &remove,
            "--out",
            "root-2.json",
        ],
    );
    assert!(out.contains("timestamp: threshold 1"), "{out}");
    let sigs = sign(b, "root-2.json", "root", &[2, 3]);
    let mut args = vec!["proposal", "merge", "root-2.json"];
    args.extend(sigs.iter().map(String::as_str));
    args.extend(["--out", "2.root.json"]);
    ok(b, &args);
    // Without the new timestamp key the import cannot publish, and publishes nothing.
    let out = ferry(b, &["repo", "root", "import", "repo", "2.root.json"]);
    assert!(!out.status.success());
    assert!(!b.join("repo/metadata/2.root.json").exists());
    let out = ok(
        b,
        &[
            "repo",
            "root",
            "import",
            "repo",
            "2.root.json",
            "--key",
            "timestamp=ts2.pem",
        ],
    );
    assert!(
        out.contains("published root v2") && out.contains("published timestamp"),
        "{out}"
    );
    let result = ngclient(&b.join("repo"), "ivi/app-1.0.bin")
        .unwrap_or_else(|e| panic!("python-tuf refused the rotated repository:\n{e}"));
    assert_eq!(
        result["targets"]["ivi/app-1.0.bin"],
        ferry_tests::sha256_hex(b"application 1.0")
    );
    // It could only verify this timestamp under root v2: the new key alone signed it.
    let ts2: Value = serde_json::from_str(&ok(b, &["key", "pub", "ts2.pem", "--json"])).unwrap();
    let timestamp: Value =
        serde_json::from_slice(&std::fs::read(b.join("repo/metadata/timestamp.json")).unwrap())
            .unwrap();
    let signers: Vec<&str> = timestamp["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["keyid"].as_str().unwrap())
        .collect();
    assert_eq!(signers, [ts2["keyid"].as_str().unwrap()]);
}

/// Plain `repo init` (development) says on every run that the root and targets keys are on the
/// host, keeps them outside what is served, and encrypts them with --passphrase-file; the
/// repository still publishes with them.
#[test]
fn plain_init_warns_and_encrypts_the_root_and_targets_keys_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let b = tmp.path();
    let out = ferry(b, &["repo", "init", "dev"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: the root and targets private key(s) are on this host, UNENCRYPTED"),
        "{err}"
    );
    assert!(err.contains("--offline-root"), "{err}");
    std::fs::write(b.join("dev.pass"), "development only\n").unwrap();
    let out = ferry(b, &["repo", "init", "enc", "--passphrase-file", "dev.pass"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("encrypted with the passphrase file"));
    for role in ["root", "targets"] {
        let pem = std::fs::read_to_string(b.join(format!("enc/keys/{role}.pem"))).unwrap();
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{role}"
        );
    }
    let ts = std::fs::read_to_string(b.join("enc/keys/timestamp.pem")).unwrap();
    assert!(
        ts.starts_with("-----BEGIN PRIVATE KEY-----"),
        "online keys stay usable unattended"
    );
    for served in ["enc/metadata", "enc/targets"] {
        for entry in std::fs::read_dir(b.join(served)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".pem"), "{served}/{name}");
        }
    }
    std::fs::write(b.join("app.bin"), b"app").unwrap();
    ok(
        b,
        &[
            "repo",
            "add-target",
            "enc",
            "app.bin",
            "--name",
            "a/app.bin",
            "--hardware-id",
            "ivi",
        ],
    );
    let out = ok(b, &["repo", "publish", "enc"]);
    assert!(out.contains("published targets v2"), "{out}");
}
