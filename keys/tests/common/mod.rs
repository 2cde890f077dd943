//! Helpers shared by the integration tests: temp dirs and the `openssl` command line, which
//! serves as an implementation independent of ours.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("create temp dir")
}

/// Run `openssl` with `args`; panics with its stderr if it fails.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Run `openssl`, returning whether it succeeded (for checks that are expected to fail).
pub fn openssl_ok(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl")
        .status
        .success()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `openssl genpkey` with the given algorithm options, written to `dir/name`.
pub fn genpkey(dir: &Path, name: &str, algo: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algo);
    args.extend_from_slice(&["-out", path_str(&path)]);
    openssl(&args);
    path
}

pub const ED25519: &[&str] = &["-algorithm", "ed25519"];
pub const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
pub const P384: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"];
pub const RSA2048: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
pub const RSA1024: &[&str] = &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"];

/// The SPKI PEM of a key file, as OpenSSL writes it.
pub fn openssl_pubout(key: &Path) -> String {
    String::from_utf8(openssl(&["pkey", "-in", path_str(key), "-pubout"])).expect("utf-8 PEM")
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write temp file");
    path
}
