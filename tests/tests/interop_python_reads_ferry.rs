//! Metadata signed by Ferry, for every key type, verifies in python-tuf 7.0.1's ngclient:
//! top-level roles, a delegated role and TAP 15 hashed bins, down to downloaded targets.
#![allow(clippy::unwrap_used)]

use ferry_keys::KeyKind;
use ferry_tests::repo_writer::FerryRepo;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/python")
        .join(name)
}

/// Run ngclient over `repo`; Ok(parsed JSON) or Err(stderr).
fn ngclient(repo: &Path, targets: &[&str]) -> Result<serde_json::Value, String> {
    let out = Command::new(ferry_tests::python::python())
        .arg(fixture("ngclient_verify.py"))
        .arg(repo)
        .args(targets)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn repo_with_everything(dir: &Path, kind: KeyKind) -> FerryRepo {
    let mut repo = FerryRepo::new(dir, kind);
    repo.add_target("targets", "top/level.bin", b"top-level target");
    repo.delegate("supplier", &["supplier/*"], kind);
    repo.add_target("supplier", "supplier/ecu.bin", b"supplier image");
    repo.write();
    repo
}

fn check_kind(kind: KeyKind, keytype: &str) {
    let dir = tempfile::tempdir().unwrap();
    repo_with_everything(dir.path(), kind);
    let result = ngclient(dir.path(), &["top/level.bin", "supplier/ecu.bin"])
        .unwrap_or_else(|e| panic!("python-tuf refused Ferry's {kind} repository:\n{e}"));
    assert_eq!(
        result["targets"]["top/level.bin"],
        hex::encode(Sha256::digest(b"top-level target"))
    );
    assert_eq!(
        result["targets"]["supplier/ecu.bin"],
        hex::encode(Sha256::digest(b"supplier image"))
    );
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert_eq!(
            result["keytypes"][role],
            serde_json::json!([keytype]),
            "{role}"
        );
    }
}

#[test]
fn python_tuf_verifies_ed25519() {
    check_kind(KeyKind::Ed25519, "ed25519");
}

#[test]
fn python_tuf_verifies_rsa_3072() {
    check_kind(KeyKind::Rsa3072, "rsa");
}

#[test]
fn python_tuf_verifies_rsa_4096() {
    // One 4096-bit key (targets) is enough to prove the size; generating six takes a minute.
    let dir = tempfile::tempdir().unwrap();
    let mut repo = FerryRepo::new(dir.path(), KeyKind::Ed25519);
    repo.targets_key = ferry_keys::PrivateKey::generate(KeyKind::Rsa4096).unwrap();
    repo.add_target("targets", "big/rsa.bin", b"signed by rsa-4096");
    repo.write();
    let result = ngclient(dir.path(), &["big/rsa.bin"])
        .unwrap_or_else(|e| panic!("python-tuf refused rsa-4096:\n{e}"));
    assert_eq!(result["keytypes"]["targets"], serde_json::json!(["rsa"]));
    assert_eq!(
        result["targets"]["big/rsa.bin"],
        hex::encode(Sha256::digest(b"signed by rsa-4096"))
    );
}

#[test]
fn python_tuf_verifies_ecdsa_p256() {
    check_kind(KeyKind::EcdsaP256, "ecdsa");
}

#[test]
fn python_tuf_verifies_hashed_bins() {
    let dir = tempfile::tempdir().unwrap();
    let mut repo = FerryRepo::new(dir.path(), KeyKind::Ed25519);
    repo.hashed_bins(3, KeyKind::EcdsaP256);
    let names: Vec<String> = (0..20).map(|i| format!("catalogue/app-{i}.tar")).collect();
    for name in &names {
        repo.add_target("bins", name, name.as_bytes());
    }
    repo.write();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let result = ngclient(dir.path(), &refs)
        .unwrap_or_else(|e| panic!("python-tuf refused hashed bins:\n{e}"));
    for name in &names {
        assert_eq!(
            result["targets"][name.as_str()],
            hex::encode(Sha256::digest(name.as_bytes()))
        );
    }
}

#[test]
fn python_tuf_refuses_a_corrupted_ferry_signature() {
    // The negative control: the same harness must fail when a signature is wrong, or the tests
    // above would prove nothing.
    let dir = tempfile::tempdir().unwrap();
    repo_with_everything(dir.path(), KeyKind::EcdsaP256);
    let path = dir.path().join("metadata/1.targets.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["signed"]["targets"]["top/level.bin"]["length"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = ngclient(dir.path(), &["top/level.bin"]).unwrap_err();
    assert!(
        err.contains("signature") || err.contains("Unsigned") || err.contains("threshold"),
        "{err}"
    );
}
