//! PKCS#8 import/export, passphrases and key files, cross-checked against OpenSSL.
mod common;

use common::*;
use ferry_keys::{Error, KeyKind, PrivateKey, PublicKey, Signer};
use std::os::unix::fs::PermissionsExt;

const KINDS: [KeyKind; 3] = [KeyKind::Ed25519, KeyKind::Rsa2048, KeyKind::EcdsaP256];
const PASS: &[u8] = b"correct horse battery staple";

fn same_key(a: &PrivateKey, b: &PrivateKey) {
    assert_eq!(a.key_id(), b.key_id());
    assert_eq!(a.kind(), b.kind());
    let sig = b.sign(b"msg").expect("sign");
    a.public_key()
        .verify(b"msg", &sig)
        .expect("loaded key signs for the original");
}

#[test]
fn plaintext_round_trip() {
    for kind in KINDS {
        let key = PrivateKey::generate(kind).expect("generate");
        let pem = key.to_pkcs8_pem(None).expect("pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{kind}");
        let back = PrivateKey::from_pkcs8_pem(&pem, None).expect("load");
        same_key(&key, &back);
        // A passphrase given for a plaintext key does no harm.
        same_key(
            &key,
            &PrivateKey::from_pkcs8_pem(&pem, Some(PASS)).expect("load"),
        );
    }
}

#[test]
fn encrypted_round_trip_and_passphrase_errors() {
    for kind in KINDS {
        let key = PrivateKey::generate(kind).expect("generate");
        let pem = key.to_pkcs8_pem(Some(PASS)).expect("pem");
        assert!(
            pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"),
            "{kind}"
        );
        let plain = key.to_pkcs8_pem(None).expect("pem");
        assert_ne!(pem.as_str(), plain.as_str());

        same_key(
            &key,
            &PrivateKey::from_pkcs8_pem(&pem, Some(PASS)).expect("load"),
        );
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&pem, None),
            Err(Error::PassphraseRequired)
        ));
        assert!(matches!(
            PrivateKey::from_pkcs8_pem(&pem, Some(b"wrong")),
            Err(Error::WrongPassphrase)
        ));
    }
}

#[test]
fn empty_passphrase_refused_for_writing() {
    let key = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    assert!(matches!(
        key.to_pkcs8_pem(Some(b"")),
        Err(Error::EmptyPassphrase)
    ));
}

#[test]
fn key_file_is_0600_and_never_overwritten() {
    let dir = tempdir();
    let key = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let path = dir.path().join("root.key");
    key.write_file(&path, Some(PASS)).expect("write");
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let before = std::fs::read(&path).expect("read");

    let other = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let err = other
        .write_file(&path, None)
        .expect_err("overwrote a key file");
    assert!(matches!(err, Error::KeyFileExists { .. }), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), before);

    same_key(
        &key,
        &PrivateKey::read_file(&path, Some(PASS)).expect("read back"),
    );

    // A failed write (empty passphrase) leaves no file behind.
    let none = dir.path().join("none.key");
    assert!(key.write_file(&none, Some(b"")).is_err());
    assert!(!none.exists());

    let missing = PrivateKey::read_file(dir.path().join("missing.key"), None).expect_err("read");
    assert!(matches!(missing, Error::Io { .. }));
}

#[test]
fn debug_does_not_show_key_material() {
    let key = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let der_b64: String = key
        .to_pkcs8_pem(None)
        .expect("pem")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let debug = format!("{key:?}");
    assert!(debug.contains(key.key_id().as_str()));
    assert!(!debug.contains(&der_b64[20..]), "{debug}");
    assert!(debug.len() < 200, "{debug}");
}

#[test]
fn openssl_reads_our_encrypted_keys() {
    let dir = tempdir();
    let pass = write(dir.path(), "pass", PASS);
    for kind in KINDS {
        let key = PrivateKey::generate(kind).expect("generate");
        let path = dir.path().join(format!("{kind}.key"));
        key.write_file(&path, Some(PASS)).expect("write");
        let spki = openssl(&[
            "pkey",
            "-in",
            path_str(&path),
            "-passin",
            &format!("file:{}", path_str(&pass)),
            "-pubout",
        ]);
        let spki = String::from_utf8(spki).expect("utf-8");
        assert_eq!(
            spki,
            key.public_key().to_spki_pem().expect("spki"),
            "{kind}"
        );
        assert!(!openssl_ok(&[
            "pkey",
            "-in",
            path_str(&path),
            "-passin",
            "pass:wrong",
            "-pubout"
        ]));
    }
}

#[test]
fn we_read_openssl_keys() {
    let dir = tempdir();
    let pass = write(dir.path(), "pass", PASS);
    let passout = format!("file:{}", path_str(&pass));
    for (name, algo) in [("ed25519", ED25519), ("p256", P256), ("rsa", RSA2048)] {
        let plain = genpkey(dir.path(), name, algo);
        let expected = PublicKey::from_spki_pem(&openssl_pubout(&plain)).expect("spki");

        let key = PrivateKey::read_file(&plain, None).expect("plaintext openssl key");
        assert_eq!(key.public_key(), &expected, "{name}");

        for (suffix, cipher) in [
            ("pbkdf2", &["-v2", "aes-256-cbc"][..]),
            ("scrypt", &["-scrypt"][..]),
        ] {
            let enc = dir.path().join(format!("{name}.{suffix}"));
            let mut args = vec![
                "pkcs8",
                "-topk8",
                "-in",
                path_str(&plain),
                "-out",
                path_str(&enc),
            ];
            args.extend_from_slice(cipher);
            args.extend_from_slice(&["-passout", &passout]);
            openssl(&args);
            let key = PrivateKey::read_file(&enc, Some(PASS)).expect("encrypted openssl key");
            assert_eq!(key.public_key(), &expected, "{name} {suffix}");
            assert!(matches!(
                PrivateKey::read_file(&enc, Some(b"nope")),
                Err(Error::WrongPassphrase)
            ));
            assert!(matches!(
                PrivateKey::read_file(&enc, None),
                Err(Error::PassphraseRequired)
            ));
        }
    }
}

#[test]
fn unsupported_private_keys_say_why() {
    let dir = tempdir();
    let p384 = genpkey(dir.path(), "p384", P384);
    let err = PrivateKey::read_file(&p384, None).expect_err("P-384 accepted");
    assert!(err.to_string().contains("P-256"), "{err}");

    let rsa = genpkey(dir.path(), "rsa", RSA2048);
    let traditional = dir.path().join("rsa.trad");
    openssl(&[
        "pkey",
        "-in",
        path_str(&rsa),
        "-traditional",
        "-out",
        path_str(&traditional),
    ]);
    let err = PrivateKey::read_file(&traditional, None).expect_err("PKCS#1 accepted");
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");

    let pbes1 = dir.path().join("rsa.pbes1");
    if openssl_ok(&[
        "pkcs8",
        "-topk8",
        "-in",
        path_str(&rsa),
        "-v1",
        "PBE-SHA1-3DES",
        "-passout",
        "pass:pw",
        "-out",
        path_str(&pbes1),
    ]) {
        let err = PrivateKey::read_file(&pbes1, Some(b"pw")).expect_err("PBES1 accepted");
        assert!(matches!(err, Error::Unsupported(_)), "{err}");
    }

    let binary = write(dir.path(), "binary", [0xffu8, 0xfe, 0x00]);
    assert!(matches!(
        PrivateKey::read_file(&binary, None),
        Err(Error::MalformedPrivateKey(_))
    ));
}

#[test]
fn hostile_kdf_cost_refused_before_work() {
    use pkcs8::der::{Decode, Encode};
    use pkcs8::pkcs5::{pbes2, EncryptionScheme};

    let key = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let doc = pkcs8::SecretDocument::from_pem(&key.to_pkcs8_pem(None).expect("pem"))
        .expect("decode")
        .1;
    let info = pkcs8::PrivateKeyInfo::from_der(doc.as_bytes()).expect("info");
    let (salt, iv) = ([7u8; 16], [9u8; 16]);
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(1000, &salt, &iv).expect("params");
    let encrypted = info.encrypt_with_params(params, PASS).expect("encrypt");
    let mut parsed = pkcs8::EncryptedPrivateKeyInfo::from_der(encrypted.as_bytes()).expect("parse");
    let EncryptionScheme::Pbes2(ref mut p) = parsed.encryption_algorithm else {
        panic!("expected PBES2");
    };
    let pbes2::Kdf::Pbkdf2(ref mut kdf) = p.kdf else {
        panic!("expected PBKDF2");
    };
    // Above the cap, yet small enough that, without the cap, this test fails (wrong key) rather than hangs.
    kdf.iteration_count = 20_000_000;
    let der = parsed.to_der().expect("encode");
    let pem = pkcs8::der::pem::encode_string("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF, &der)
        .expect("pem");
    let err = PrivateKey::from_pkcs8_pem(&pem, Some(PASS)).expect_err("hostile KDF accepted");
    assert!(err.to_string().contains("cost"), "{err}");
}
