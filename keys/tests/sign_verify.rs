//! Signing and verification per scheme, cross-checked against OpenSSL.
mod common;

use common::*;
use ferry_keys::{Error, KeyKind, PrivateKey, PublicKey, Scheme, Signer};

const MSG: &[u8] = b"{\"signed\":{\"_type\":\"timestamp\",\"version\":7}}";
const KINDS: [KeyKind; 3] = [KeyKind::Ed25519, KeyKind::Rsa2048, KeyKind::EcdsaP256];

fn fresh(key: &PublicKey) -> PublicKey {
    // A copy made from JSON: no cached verifier, as when a key is read from metadata.
    serde_json::from_str(&serde_json::to_string(key).expect("serialise")).expect("parse")
}

#[test]
fn sign_verify_round_trip_and_tampering() {
    for kind in KINDS {
        let key = PrivateKey::generate(kind).expect("generate");
        let other = PrivateKey::generate(kind).expect("generate");
        let public = fresh(key.public_key());
        assert_eq!(public.scheme().expect("scheme"), kind.scheme());
        let sig = key.sign(MSG).expect("sign");
        public.verify(MSG, &sig).expect("own signature verifies");

        let mut msg = MSG.to_vec();
        msg[3] ^= 0x01;
        assert!(
            matches!(public.verify(&msg, &sig), Err(Error::BadSignature { .. })),
            "{kind}: flipped message bit accepted"
        );

        for byte in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[byte] ^= 0x01;
            assert!(
                public.verify(MSG, &bad).is_err(),
                "{kind}: flipped signature bit in byte {byte} accepted"
            );
        }

        let foreign = other.sign(MSG).expect("sign");
        let err = public
            .verify(MSG, &foreign)
            .expect_err("foreign signature accepted");
        match err {
            Error::BadSignature { keyid, scheme } => {
                assert_eq!(keyid, key.key_id().as_str());
                assert_eq!(scheme, kind.scheme().name());
            }
            e => panic!("{kind}: expected BadSignature, got {e}"),
        }

        for bad in [&sig[..sig.len() - 1], &[][..]] {
            let err = public
                .verify(MSG, bad)
                .expect_err("truncated signature accepted");
            assert!(
                matches!(err, Error::MalformedSignature { .. }),
                "{kind}: truncated signature gave {err}"
            );
        }
    }
}

#[test]
fn every_kind_signs() {
    for kind in [KeyKind::Rsa3072, KeyKind::Rsa4096] {
        let key = PrivateKey::generate(kind).expect("generate");
        assert_eq!(key.kind(), kind);
        let sig = key.sign(MSG).expect("sign");
        assert_eq!(sig.len() * 8, kind.rsa_bits().expect("rsa"));
        fresh(key.public_key()).verify(MSG, &sig).expect("verifies");
    }
}

#[test]
fn ed25519_non_canonical_s_rejected() {
    let key = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let sig = key.sign(MSG).expect("sign");
    // S + L encodes the same scalar; strict verification must refuse the malleated copy.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut malleated = sig.clone();
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
        malleated[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0);
    assert!(key.public_key().verify(MSG, &malleated).is_err());
}

#[test]
fn signatures_interoperate_with_openssl() {
    let dir = tempdir();
    let msg = write(dir.path(), "msg", MSG);
    let msg_s = path_str(&msg);
    for (name, algo) in [("ed", ED25519), ("ec", P256), ("rsa", RSA2048)] {
        let key_path = genpkey(dir.path(), name, algo);
        let key = PrivateKey::read_file(&key_path, None).expect("load openssl key");
        let pub_path = write(
            dir.path(),
            &format!("{name}.pub"),
            openssl_pubout(&key_path),
        );
        let (k, p) = (path_str(&key_path), path_str(&pub_path));

        // Ours, checked by OpenSSL.
        let sig_path = write(
            dir.path(),
            &format!("{name}.sig"),
            key.sign(MSG).expect("sign"),
        );
        let sig_s = path_str(&sig_path);
        match name {
            "ed" => openssl(&[
                "pkeyutl", "-verify", "-pubin", "-inkey", p, "-rawin", "-in", msg_s, "-sigfile",
                sig_s,
            ]),
            "ec" => openssl(&["dgst", "-sha256", "-verify", p, "-signature", sig_s, msg_s]),
            _ => openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                p,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
                "-sigopt",
                "rsa_mgf1_md:sha256",
                "-signature",
                sig_s,
                msg_s,
            ]),
        };

        // OpenSSL's, checked by us (several ECDSA signatures, so high and low S both occur).
        let rounds = if name == "ec" { 8 } else { 1 };
        for _ in 0..rounds {
            let theirs = match name {
                "ed" => openssl(&["pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", msg_s]),
                "ec" => openssl(&["dgst", "-sha256", "-sign", k, msg_s]),
                _ => openssl(&[
                    "dgst",
                    "-sha256",
                    "-sign",
                    k,
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:32",
                    "-sigopt",
                    "rsa_mgf1_md:sha256",
                    msg_s,
                ]),
            };
            fresh(key.public_key())
                .verify(MSG, &theirs)
                .unwrap_or_else(|e| panic!("{name}: OpenSSL signature refused: {e}"));
        }
        if name == "ed" {
            // Ed25519 is deterministic: same key, same message, same bytes.
            let theirs = openssl(&["pkeyutl", "-sign", "-inkey", k, "-rawin", "-in", msg_s]);
            assert_eq!(theirs, key.sign(MSG).expect("sign"));
        }
    }
}

#[test]
fn rsa_pss_salt_lengths() {
    let dir = tempdir();
    let msg = write(dir.path(), "msg", MSG);
    let key_path = genpkey(dir.path(), "rsa", RSA2048);
    let public = PublicKey::from_spki_pem(&openssl_pubout(&key_path)).expect("spki");
    let sign = |salt: &str| {
        openssl(&[
            "dgst",
            "-sha256",
            "-sign",
            path_str(&key_path),
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &format!("rsa_pss_saltlen:{salt}"),
            "-sigopt",
            "rsa_mgf1_md:sha256",
            path_str(&msg),
        ])
    };
    // 32 is what securesystemslib writes; "max" is OpenSSL's and Go's automatic choice.
    public.verify(MSG, &sign("32")).expect("salt 32");
    public.verify(MSG, &sign("max")).expect("max salt");
    assert!(matches!(
        public.verify(MSG, &sign("20")),
        Err(Error::BadSignature { .. })
    ));
}

#[test]
fn rsa_below_2048_bits_refused() {
    let dir = tempdir();
    let key_path = genpkey(dir.path(), "rsa1024", RSA1024);
    let spki = openssl_pubout(&key_path);
    let err = PublicKey::from_spki_pem(&spki).expect_err("1024-bit key accepted");
    assert!(err.to_string().contains("1024 bits"), "{err}");
    assert!(err.to_string().contains("2048"), "{err}");

    let declared = PublicKey::new(Scheme::RsassaPssSha256, spki);
    let err = declared
        .verify(MSG, &[0u8; 128])
        .expect_err("verified with 1024-bit key");
    assert!(matches!(err, Error::MalformedPublicKey { .. }), "{err}");
    assert!(err.to_string().contains("2048"), "{err}");

    let pem = std::fs::read_to_string(&key_path).expect("read");
    assert!(PrivateKey::from_pkcs8_pem(&pem, None).is_err());
}

#[test]
fn ecdsa_other_curves_refused() {
    let dir = tempdir();
    let key_path = genpkey(dir.path(), "p384", P384);
    let spki = openssl_pubout(&key_path);
    let err = PublicKey::from_spki_pem(&spki).expect_err("P-384 accepted");
    assert!(err.to_string().contains("P-256"), "{err}");
    let declared = PublicKey::new(Scheme::EcdsaSha2Nistp256, spki);
    assert!(declared.verify(MSG, &[0x30, 0]).is_err());
}

fn bad_key(keytype: &str, scheme: &str, public: &str) -> PublicKey {
    let json =
        serde_json::json!({"keytype": keytype, "scheme": scheme, "keyval": {"public": public}});
    serde_json::from_value(json).expect("key JSON")
}

#[test]
fn malformed_public_keys_are_errors() {
    let ed = PrivateKey::generate(KeyKind::Ed25519).expect("generate");
    let ec = PrivateKey::generate(KeyKind::EcdsaP256).expect("generate");
    let hex = ed.public_key().keyval.public.clone();
    let sig = ed.sign(MSG).expect("sign");
    let small_order = format!("01{}", "0".repeat(62));
    let cases = [
        bad_key("ed25519", "ed25519", &hex[..62]),
        bad_key("ed25519", "ed25519", &format!("{hex}00")),
        bad_key("ed25519", "ed25519", &hex.to_uppercase()),
        bad_key("ed25519", "ed25519", &format!("zz{}", &hex[2..])),
        bad_key("ed25519", "ed25519", &small_order),
        bad_key("ed25519", "ed25519", ""),
        bad_key("rsa", "rsassa-pss-sha256", "not pem"),
        bad_key("rsa", "rsassa-pss-sha256", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n"),
        bad_key("rsa", "rsassa-pss-sha256", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"),
        bad_key("rsa", "rsassa-pss-sha256", &ec.public_key().keyval.public),
        bad_key("ecdsa", "ecdsa-sha2-nistp256", &hex),
        bad_key("rsa", "rsassa-pss-sha256", "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----\n"),
    ];
    for key in &cases {
        match key.verify(MSG, &sig) {
            Err(Error::MalformedPublicKey { .. }) => {}
            other => panic!("{key:?}: expected MalformedPublicKey, got {other:?}"),
        }
        assert!(key.to_spki_pem().is_err(), "{key:?}");
    }
    let unknown = bad_key("ed25519", "ed448", &hex);
    let err = unknown.verify(MSG, &sig).expect_err("unknown scheme");
    assert!(err.to_string().contains("ed448"), "{err}");
}

#[test]
fn malformed_signatures_are_errors() {
    for kind in KINDS {
        let key = PrivateKey::generate(kind).expect("generate");
        let public = key.public_key();
        // Deterministic pseudo-random junk of many lengths: must be errors, never panics.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..600 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            assert!(
                public.verify(MSG, &junk).is_err(),
                "{kind}: junk of {len} bytes verified"
            );
        }
    }
    let ec = PrivateKey::generate(KeyKind::EcdsaP256).expect("generate");
    let err = ec
        .public_key()
        .verify(MSG, &[0x30, 0x02, 0x01, 0x00])
        .expect_err("bad DER");
    assert!(matches!(err, Error::MalformedSignature { .. }), "{err}");
}

#[test]
fn junk_pem_is_an_error() {
    let mut state = 12345u64;
    for len in [0, 1, 10, 100, 300] {
        let body: String = (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                char::from(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
                        [(state >> 58) as usize],
                )
            })
            .collect();
        for label in ["PUBLIC KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"] {
            let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            assert!(PublicKey::from_spki_pem(&pem).is_err());
            assert!(PrivateKey::from_pkcs8_pem(&pem, Some(b"pw")).is_err());
        }
    }
}
