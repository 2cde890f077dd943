//! Key ids are SHA-256 of the key's canonical JSON; checked against strings built by hand and
//! hashed by OpenSSL, so neither our canonicaliser nor our hashing is trusted.
mod common;

use common::*;
use ferry_keys::{KeyKind, PrivateKey, PublicKey, Scheme};

fn openssl_sha256(dir: &std::path::Path, data: &str) -> String {
    let path = write(dir, "canonical.json", data);
    let out = openssl(&["dgst", "-sha256", "-r", path_str(&path)]);
    String::from_utf8(out)
        .expect("utf-8")
        .split_whitespace()
        .next()
        .expect("digest")
        .to_owned()
}

#[test]
fn ed25519_key_id_fixed_vector() {
    // RFC 8032 test 1 public key; id computed with
    // printf '%s' '{"keytype":"ed25519","keyval":{"public":"d75a...511a"},"scheme":"ed25519"}' | openssl dgst -sha256
    let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let key = PublicKey::new(Scheme::Ed25519, public.to_owned());
    let dir = tempdir();
    let canonical =
        format!(r#"{{"keytype":"ed25519","keyval":{{"public":"{public}"}},"scheme":"ed25519"}}"#);
    assert_eq!(
        key.key_id().expect("id").as_str(),
        openssl_sha256(dir.path(), &canonical)
    );
    assert_eq!(
        key.key_id().expect("id").as_str(),
        "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916"
    );
}

#[test]
fn generated_key_ids_match_hand_built_canonical_json() {
    let dir = tempdir();
    for kind in [KeyKind::Ed25519, KeyKind::Rsa2048, KeyKind::EcdsaP256] {
        let key = PrivateKey::generate(kind).expect("generate");
        let public = &key.public_key().keyval.public;
        // Canonical JSON (OLPC, as securesystemslib writes it) escapes only `"` and `\`: the
        // newlines of a PEM go into the hashed bytes raw, not as `\n`.
        assert!(!public.contains(['"', '\\']));
        let canonical = format!(
            r#"{{"keytype":"{}","keyval":{{"public":"{public}"}},"scheme":"{}"}}"#,
            kind.scheme().keytype(),
            kind.scheme().name()
        );
        assert_eq!(
            key.key_id().as_str(),
            openssl_sha256(dir.path(), &canonical),
            "{kind}"
        );
    }
}

#[test]
fn pem_keyval_is_byte_identical_to_openssl() {
    // securesystemslib writes python `cryptography`'s PEM, which is OpenSSL's: the same bytes
    // mean the same key id on both sides.
    let dir = tempdir();
    for (name, algo) in [("rsa", RSA2048), ("p256", P256)] {
        let path = genpkey(dir.path(), name, algo);
        let key = PrivateKey::read_file(&path, None).expect("load");
        assert_eq!(
            key.public_key().keyval.public,
            openssl_pubout(&path),
            "{name}"
        );
    }
}
