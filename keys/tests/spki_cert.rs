//! SPKI PEM import/export and keys and identities from X.509 certificates.
mod common;

use common::*;
use ferry_keys::{certificate_info, KeyKind, PrivateKey, PublicKey, Scheme};
use std::path::{Path, PathBuf};

#[test]
fn spki_pem_round_trip() {
    for kind in [KeyKind::Ed25519, KeyKind::Rsa2048, KeyKind::EcdsaP256] {
        let key = PrivateKey::generate(kind).expect("generate");
        let pem = key.public_key().to_spki_pem().expect("to pem");
        assert!(
            pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
                && pem.ends_with("-----END PUBLIC KEY-----\n")
        );
        let back = PublicKey::from_spki_pem(&pem).expect("from pem");
        assert_eq!(&back, key.public_key(), "{kind}");
        assert_eq!(back.key_id().expect("id"), *key.key_id());
        assert_eq!(back.scheme().expect("scheme"), kind.scheme());
    }
}

#[test]
fn spki_pem_is_normalised() {
    let dir = tempdir();
    for (name, algo) in [("ed", ED25519), ("rsa", RSA2048), ("ec", P256)] {
        let path = genpkey(dir.path(), name, algo);
        let lf = openssl_pubout(&path);
        let crlf = format!(
            "some preamble\r\n{}trailing text\n",
            lf.replace('\n', "\r\n")
        );
        let a = PublicKey::from_spki_pem(&lf).expect("LF");
        let b = PublicKey::from_spki_pem(&crlf).expect("CRLF with surrounding text");
        assert_eq!(a, b, "{name}");
        assert_eq!(a.to_spki_pem().expect("pem"), lf, "{name}");
        if name == "ed" {
            assert_eq!(a.keyval.public.len(), 64);
            assert_eq!(a.scheme().expect("scheme"), Scheme::Ed25519);
        } else {
            assert_eq!(a.keyval.public, lf);
        }
    }
}

#[test]
fn spki_errors() {
    let cases = [
        "",
        "no pem here",
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n",
    ];
    for pem in cases {
        assert!(PublicKey::from_spki_pem(pem).is_err(), "{pem:?}");
    }
    assert!(PublicKey::from_spki_der(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
}

fn make_cert(dir: &Path, name: &str, algo: &[&str], subj: &str) -> (PathBuf, PathBuf) {
    let key = genpkey(dir, &format!("{name}.key"), algo);
    let cert = dir.join(format!("{name}.pem"));
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        path_str(&key),
        "-subj",
        subj,
        "-days",
        "1",
        "-addext",
        "subjectAltName=DNS:car.example,DNS:alt.example,URI:urn:vin:WVW00000000000001",
        "-out",
        path_str(&cert),
    ]);
    (key, cert)
}

#[test]
fn keys_from_certificates() {
    let dir = tempdir();
    for (name, algo, scheme) in [
        ("rsa", RSA2048, Scheme::RsassaPssSha256),
        ("p256", P256, Scheme::EcdsaSha2Nistp256),
        ("ed25519", ED25519, Scheme::Ed25519),
    ] {
        let (key, cert) = make_cert(dir.path(), name, algo, "/O=Fleet/CN=WVW00000000000001");
        let expected = PrivateKey::read_file(&key, None).expect("key");
        let pem = std::fs::read(&cert).expect("read cert");
        let public = PublicKey::from_certificate_pem(&pem).expect("cert key");
        assert_eq!(&public, expected.public_key(), "{name}");
        assert_eq!(public.scheme().expect("scheme"), scheme);

        let der = openssl(&["x509", "-in", path_str(&cert), "-outform", "DER"]);
        assert_eq!(PublicKey::from_certificate_der(&der).expect("der"), public);

        // `openssl x509 -text` output: a dump, then the PEM.
        let text = openssl(&["x509", "-in", path_str(&cert), "-text"]);
        assert_eq!(
            PublicKey::from_certificate_pem(&text).expect("text"),
            public
        );

        let info = certificate_info(&pem).expect("info");
        assert_eq!(info.subject_cn.as_deref(), Some("WVW00000000000001"));
        assert_eq!(info.san_dns, ["car.example", "alt.example"]);
        assert_eq!(info.san_uri, ["urn:vin:WVW00000000000001"]);
        assert_eq!(info.not_after - info.not_before, 86_400);
    }
}

#[test]
fn certificate_errors() {
    let dir = tempdir();
    let (_, p384) = make_cert(dir.path(), "p384", P384, "/CN=x");
    let err = PublicKey::from_certificate_pem(&std::fs::read(&p384).expect("read"))
        .expect_err("P-384 certificate key accepted");
    assert!(err.to_string().contains("P-256"), "{err}");
    // The identity is still readable: only the key is refused.
    assert!(certificate_info(&std::fs::read(&p384).expect("read")).is_ok());

    let (_, two_cn) = make_cert(dir.path(), "twocn", P256, "/CN=VIN-A/CN=VIN-B");
    let err = certificate_info(&std::fs::read(&two_cn).expect("read")).expect_err("two CNs");
    assert!(err.to_string().contains("more than one CN"), "{err}");

    let key = genpkey(dir.path(), "k", P256);
    let spki = openssl_pubout(&key);
    for bad in [
        spki.as_bytes(),
        b"",
        b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
        &[0xff, 0x00][..],
    ] {
        assert!(PublicKey::from_certificate_pem(bad).is_err());
        assert!(certificate_info(bad).is_err());
    }
    assert!(PublicKey::from_certificate_der(b"\x30\x00").is_err());
}
