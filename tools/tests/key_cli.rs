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
    ok_both(args).0
}

/// stdout and stderr of a successful run.
fn ok_both(args: &[&str]) -> (String, String) {
    let out = ferry(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ferry {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).expect("utf-8 stdout"), stderr)
}

/// `ferry key pub ...` (or from-cert): the TUF key alone on stdout, parsed, and the key id
/// from stderr, which must agree with it.
fn pub_key(args: &[&str]) -> (ferry_keys::PublicKey, String) {
    let (stdout, stderr) = ok_both(args);
    let key: ferry_keys::PublicKey =
        serde_json::from_str(&stdout).expect("stdout is exactly one TUF key");
    let keyid = key_id_line(&stderr);
    assert_eq!(key.key_id().expect("key id").as_str(), keyid);
    (key, keyid)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim()).expect("stdout is one JSON object")
}

/// The id on the `key id: ...` line of the human-readable output (stdout of `key gen`, stderr
/// of `key pub`).
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

        let (public, id) = pub_key(&["key", "pub", p(&key), "--passphrase-file", p(&pass)]);
        assert_eq!(id, keyid, "{kind}");
        assert_eq!(serde_json::json!(public), gen["public"], "{kind}");

        // What `key pub` printed, saved to a file, reads back as the same key.
        let saved = dir.path().join(format!("{kind}.pub.json"));
        let (stdout, _) = ok_both(&["key", "pub", p(&key), "--passphrase-file", p(&pass)]);
        std::fs::write(&saved, stdout).expect("write");
        assert_eq!(pub_key(&["key", "pub", p(&saved)]).1, keyid, "{kind}");
        // So does the --json form, and --format pem.
        let wrapped = dir.path().join(format!("{kind}.keyid.json"));
        std::fs::write(&wrapped, serde_json::to_string(&shown).expect("json")).expect("write");
        assert_eq!(pub_key(&["key", "pub", p(&wrapped)]).1, keyid, "{kind}");
        let (pem, stderr) = ok_both(&["key", "pub", p(&saved), "--format", "pem"]);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        assert_eq!(key_id_line(&stderr), keyid, "{kind}");

        // The public key as SPKI PEM gives the same id.
        let public: ferry_keys::PublicKey =
            serde_json::from_value(gen["public"].clone()).expect("public key JSON");
        let spki = dir.path().join(format!("{kind}.pub.pem"));
        std::fs::write(&spki, public.to_spki_pem().expect("spki")).expect("write");
        assert_eq!(pub_key(&["key", "pub", p(&spki)]).1, keyid, "{kind}");
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
    assert_eq!(pub_key(&["key", "pub", p(&key)]).1, keyid);

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
    let (_, keyid) = pub_key(&["key", "from-cert", p(&cert)]);
    assert_eq!(keyid, gen["keyid"].as_str().expect("keyid"));

    // `key pub` takes a certificate as any other public key.
    assert_eq!(pub_key(&["key", "pub", p(&cert)]).1, keyid);
}

#[test]
fn pub_refuses_what_is_not_a_key_naming_the_forms_it_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let junk = dir.path().join("junk");
    std::fs::write(&junk, "hello").expect("write");
    let out = ferry(&["key", "pub", p(&junk)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SPKI PEM") && stderr.contains("TUF key JSON"),
        "{stderr}"
    );
    let csr = dir.path().join("req.pem");
    std::fs::write(
        &csr,
        "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n-----END CERTIFICATE REQUEST-----\n",
    )
    .expect("write");
    let out = ferry(&["key", "pub", p(&csr)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'CERTIFICATE REQUEST' is not a key"),
        "{stderr}"
    );
    // --json and --format do not mix.
    let out = ferry(&["key", "pub", p(&junk), "--json", "--format", "pem"]);
    assert!(!out.status.success());
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
