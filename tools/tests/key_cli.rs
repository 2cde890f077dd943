//! `ferry key ...` run as the real binary.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run ferry")
}

fn ok(args: &[&str]) -> String {
    let out = ferry(args);
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).expect("stdout is one JSON object")
}

/// The id on the `key id: ...` line of the human-readable output.
fn key_id_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .expect("a 'key id:' line")
        .to_owned()
}

#[test]
fn gen_each_type_then_pub() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "s3cret passphrase\n").expect("write passphrase");
    for kind in ["ed25519", "ecdsa-p256", "rsa-3072", "rsa-4096"] {
        let key = dir.path().join(format!("{kind}.key"));
        let out = ok(&[
            "key",
            "gen",
            "--type",
            kind,
            "--out",
            p(&key),
            "--passphrase-file",
            p(&pass),
            "--json",
        ]);
        let gen = json(&out);
        let keyid = gen["keyid"].as_str().expect("keyid").to_owned();
        assert_eq!(keyid.len(), 64);
        assert_eq!(gen["path"], p(&key));
        let mode = std::fs::metadata(&key).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{kind}: mode {mode:o}");
        let pem = std::fs::read_to_string(&key).expect("read key");
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
            "{kind}"
        );
        assert!(!out.contains("s3cret"));

        let shown = json(&ok(&[
            "key",
            "pub",
            p(&key),
            "--passphrase-file",
            p(&pass),
            "--json",
        ]));
        assert_eq!(shown["keyid"], keyid.as_str(), "{kind}");
        assert_eq!(shown["public"], gen["public"], "{kind}");

        let text = ok(&["key", "pub", p(&key), "--passphrase-file", p(&pass)]);
        assert_eq!(key_id_line(&text), keyid, "{kind}");

        // The public key as SPKI PEM gives the same id.
        let public: ferry_keys::PublicKey =
            serde_json::from_value(gen["public"].clone()).expect("public key JSON");
        let spki = dir.path().join(format!("{kind}.pub.pem"));
        std::fs::write(&spki, public.to_spki_pem().expect("spki")).expect("write");
        assert_eq!(key_id_line(&ok(&["key", "pub", p(&spki)])), keyid, "{kind}");
    }
}

#[test]
fn plaintext_gen_and_text_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("ts.key");
    let out = ok(&[
        "key",
        "gen",
        "--type",
        "ed25519",
        "--out",
        p(&key),
        "--insecure-plaintext",
    ]);
    let keyid = key_id_line(&out);
    assert!(out.contains("\"keytype\": \"ed25519\""), "{out}");
    let pem = std::fs::read_to_string(&key).expect("read key");
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!out.contains("PRIVATE KEY"));
    assert_eq!(key_id_line(&ok(&["key", "pub", p(&key)])), keyid);

    // Never overwrite.
    let again = ferry(&[
        "key",
        "gen",
        "--type",
        "ed25519",
        "--out",
        p(&key),
        "--insecure-plaintext",
    ]);
    assert!(!again.status.success());
    assert_eq!(std::fs::read_to_string(&key).expect("read key"), pem);
}

#[test]
fn passphrase_option_is_required_and_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("k.key");
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "pw").expect("write");

    let out = ferry(&["key", "gen", "--type", "ed25519", "--out", p(&key)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--passphrase-file") && stderr.contains("--insecure-plaintext"),
        "{stderr}"
    );
    assert!(!key.exists());

    let both = ferry(&[
        "key",
        "gen",
        "--type",
        "ed25519",
        "--out",
        p(&key),
        "--passphrase-file",
        p(&pass),
        "--insecure-plaintext",
    ]);
    assert!(!both.status.success());
    assert!(!key.exists());

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").expect("write");
    let out = ferry(&[
        "key",
        "gen",
        "--type",
        "ed25519",
        "--out",
        p(&key),
        "--passphrase-file",
        p(&empty),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert!(!key.exists());

    // Encrypted key without / with the wrong passphrase.
    ok(&[
        "key",
        "gen",
        "--type",
        "ecdsa-p256",
        "--out",
        p(&key),
        "--passphrase-file",
        p(&pass),
    ]);
    let out = ferry(&["key", "pub", p(&key)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--passphrase-file"));
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not it").expect("write");
    let out = ferry(&["key", "pub", p(&key), "--passphrase-file", p(&wrong)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("wrong passphrase") && !stderr.contains("not it"),
        "{stderr}"
    );
}

#[test]
fn from_cert_matches_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("ecu.key");
    let cert = dir.path().join("ecu.pem");
    let gen = json(&ok(&[
        "key",
        "gen",
        "--type",
        "ecdsa-p256",
        "--out",
        p(&key),
        "--insecure-plaintext",
        "--json",
    ]));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-new",
            "-key",
            p(&key),
            "-subj",
            "/CN=VIN1",
            "-days",
            "1",
            "-out",
            p(&cert),
        ])
        .status()
        .expect("run openssl");
    assert!(status.success());
    let shown = json(&ok(&["key", "from-cert", p(&cert), "--json"]));
    assert_eq!(shown["keyid"], gen["keyid"]);
    assert_eq!(shown["public"], gen["public"]);
    let text = ok(&["key", "from-cert", p(&cert)]);
    assert_eq!(key_id_line(&text), gen["keyid"].as_str().expect("keyid"));

    // A certificate given to `key pub` points the user to from-cert.
    let out = ferry(&["key", "pub", p(&cert)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("from-cert"));
}

#[test]
fn help_has_examples() {
    for cmd in [
        &["key"][..],
        &["key", "gen"],
        &["key", "pub"],
        &["key", "from-cert"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let out = ok(&args);
        assert!(
            out.contains("Example:"),
            "{cmd:?} --help has no example:\n{out}"
        );
    }
}
