//! `ferry key gen --pkcs11` and `ferry key pub pkcs11:...` as the real binary against a real
//! SoftHSM2 token (each test its own, see ferry_tests::softhsm). Skipped, with the reason
//! printed, only when SoftHSM2 is not installed.
use ferry_tests::softhsm::{SoftHsm, MODULE};
use std::process::Output;

fn ferry(hsm: &SoftHsm, args: &[&str]) -> Output {
    hsm.command(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("run ferry")
}

fn ok(hsm: &SoftHsm, args: &[&str]) -> (String, String) {
    let out = ferry(hsm, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ferry {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).expect("utf-8 stdout"), stderr)
}

fn refused(hsm: &SoftHsm, args: &[&str]) -> String {
    let out = ferry(hsm, args);
    assert!(!out.status.success(), "ferry {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stderr_key_id(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("key id: "))
        .unwrap_or_else(|| panic!("no 'key id:' line on stderr: {stderr}"))
}

#[test]
fn gen_on_the_token_then_pub_gives_the_same_key_id() {
    let Some(hsm) = SoftHsm::new() else { return };
    for kind in ["ed25519", "ecdsa-p256", "rsa-3072"] {
        let label = format!("key-{kind}");
        let uri = hsm.uri(&label);
        let (stdout, _) = ok(
            &hsm,
            &["key", "gen", "--type", kind, "--pkcs11", &uri, "--json"],
        );
        let gen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("gen --json");
        let keyid = gen["keyid"].as_str().expect("keyid").to_owned();
        let shown_uri = gen["uri"].as_str().expect("uri");
        assert!(
            shown_uri.contains(&format!("object={label}")),
            "{shown_uri}"
        );

        // The public half needs no PIN; stdout is the TUF key alone, the id on stderr.
        let (stdout, stderr) = ok(&hsm, &["key", "pub", &hsm.uri_without_pin(&label)]);
        assert_eq!(stderr_key_id(&stderr), keyid, "{kind}");
        let public: ferry_keys::PublicKey = serde_json::from_str(&stdout).expect("TUF key JSON");
        assert_eq!(
            public.key_id().expect("id").as_str(),
            keyid.as_str(),
            "{kind}"
        );
        assert_eq!(serde_json::json!(public), gen["public"], "{kind}");

        // --format pem: SPKI PEM of the same key.
        let (pem, stderr) = ok(&hsm, &["key", "pub", &uri, "--format", "pem"]);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        assert_eq!(stderr_key_id(&stderr), keyid);
        let from_pem = ferry_keys::PublicKey::from_spki_pem(&pem).expect("SPKI PEM");
        assert_eq!(
            from_pem.key_id().expect("id").as_str(),
            keyid.as_str(),
            "{kind}"
        );
    }
    // The text form of gen, for a person.
    let (stdout, _) = ok(
        &hsm,
        &[
            "key",
            "gen",
            "--type",
            "ed25519",
            "--pkcs11",
            &hsm.uri("text"),
        ],
    );
    assert!(
        stdout.contains("generated ed25519 key on pkcs11:"),
        "{stdout}"
    );
    assert!(stdout.contains("key id: "), "{stdout}");
}

#[test]
fn wrong_pin_and_missing_object_are_named_without_the_pin() {
    let Some(hsm) = SoftHsm::new() else { return };
    ok(
        &hsm,
        &["key", "gen", "--type", "ed25519", "--pkcs11", &hsm.uri("k")],
    );
    let wrong = format!("pkcs11:token=ferry;object=k?module-path={MODULE}&pin-value=notthepin77");
    let stderr = refused(&hsm, &["key", "pub", &wrong]);
    assert!(stderr.contains("PIN is incorrect"), "{stderr}");
    assert!(!stderr.contains("notthepin77"), "PIN leaked: {stderr}");

    let stderr = refused(&hsm, &["key", "pub", &hsm.uri("absent")]);
    assert!(
        stderr.contains("absent") && stderr.contains("PKCS#11 check failed"),
        "{stderr}"
    );
    assert!(!stderr.contains(ferry_tests::softhsm::PIN), "{stderr}");

    // Generating on a taken label is refused; the old key stays.
    let stderr = refused(
        &hsm,
        &[
            "key",
            "gen",
            "--type",
            "rsa-3072",
            "--pkcs11",
            &hsm.uri("k"),
        ],
    );
    assert!(
        stderr.contains("already has an object labelled"),
        "{stderr}"
    );

    // A malformed URI is named before anything is loaded.
    let stderr = refused(&hsm, &["key", "pub", "pkcs11:tokn=ferry"]);
    assert!(
        stderr.contains("PKCS#11 URI check failed") && stderr.contains("expected one of token"),
        "{stderr}"
    );
    // gen --pkcs11 takes no key file options.
    let stderr = refused(
        &hsm,
        &[
            "key",
            "gen",
            "--type",
            "ed25519",
            "--pkcs11",
            &hsm.uri("x"),
            "--insecure-plaintext",
        ],
    );
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn a_ferry_key_file_imported_into_the_token_keeps_its_key_id() {
    let Some(hsm) = SoftHsm::new() else { return };
    for (i, kind) in ["ed25519", "ecdsa-p256", "rsa-3072"]
        .into_iter()
        .enumerate()
    {
        let file = hsm.dir().join(format!("{kind}.key"));
        let file_s = file.to_str().expect("utf-8 path");
        let (stdout, _) = ok(
            &hsm,
            &[
                "key",
                "gen",
                "--type",
                kind,
                "--out",
                file_s,
                "--insecure-plaintext",
                "--json",
            ],
        );
        let gen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("gen --json");
        let label = format!("imported-{kind}");
        hsm.import_pkcs8(&file, &label, &format!("1{i}"));
        let (_, stderr) = ok(&hsm, &["key", "pub", &hsm.uri(&label)]);
        assert_eq!(stderr_key_id(&stderr), gen["keyid"], "{kind}");
        // The PIN may also come from --passphrase-file when the URI has none.
        let pin = hsm.pin_file();
        let (_, stderr) = ok(
            &hsm,
            &[
                "key",
                "pub",
                &hsm.uri_without_pin(&label),
                "--passphrase-file",
                pin.to_str().expect("utf-8 path"),
            ],
        );
        assert_eq!(stderr_key_id(&stderr), gen["keyid"], "{kind}");
    }
}
