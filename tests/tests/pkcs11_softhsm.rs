//! ferry_keys' PKCS#11 key source against a real SoftHSM2 token: keys generated on the token
//! and keys imported into it sign there, and the signatures verify with Ferry's own
//! verifier under the key id a key file of the same material has. Each test runs in a child
//! copy of this binary with its own token (`ferry_tests::softhsm`); all skip, saying so, when
//! SoftHSM2 is not installed.
#![allow(clippy::unwrap_used)]

use ferry_keys::{KeyKind, KeySource, Pkcs11KeySource, PrivateKey, Signer};
use ferry_tests::softhsm::{SoftHsm, PIN};

const MSG: &[u8] = b"{\"_type\":\"targets\",\"version\":1}";

fn check_signs(signer: &dyn Signer) {
    let sig = signer.sign(MSG).unwrap();
    signer.public_key().verify(MSG, &sig).unwrap();
    assert!(signer.public_key().verify(b"other", &sig).is_err());
}

#[test]
fn each_key_type_generated_on_the_token_signs_and_verifies() {
    SoftHsm::test_in_child(
        "each_key_type_generated_on_the_token_signs_and_verifies",
        |hsm| {
            for (kind, label, scheme) in [
                (KeyKind::Ed25519, "k-ed25519", "ed25519"),
                (KeyKind::EcdsaP256, "k-ecdsa", "ecdsa-sha2-nistp256"),
                (KeyKind::Rsa3072, "k-rsa", "rsassa-pss-sha256"),
            ] {
                let source = Pkcs11KeySource::parse(&hsm.uri(label)).unwrap();
                let made = source.generate(kind).unwrap();
                assert_eq!(made.public_key().scheme, scheme);
                check_signs(&made);

                // A later use finds the same key, by label, through the KeySource seam.
                let again = source.signer().unwrap();
                assert_eq!(again.key_id(), made.key_id(), "{kind}");
                check_signs(again.as_ref());
                // ...and its public half is readable without the PIN.
                let public = Pkcs11KeySource::parse(&hsm.uri_without_pin(label))
                    .unwrap()
                    .public_key()
                    .unwrap();
                assert_eq!(&public.key_id().unwrap(), made.key_id(), "{kind}");

                // ECDSA signatures leave as DER, like a file key's.
                if kind == KeyKind::EcdsaP256 {
                    let sig = made.sign(MSG).unwrap();
                    assert_eq!(sig[0], 0x30, "DER SEQUENCE");
                }
                // A second key under a taken label is refused, not added beside it.
                let err = source.generate(kind).unwrap_err().to_string();
                assert!(err.contains("already has an object labelled"), "{err}");
            }
            // The private keys are sensitive and never extractable.
            let listed = hsm.list_objects();
            let private_objects = listed.matches("Private Key Object").count();
            assert_eq!(private_objects, 3, "{listed}");
            assert_eq!(
                listed.matches("never extractable").count(),
                3,
                "private keys must be non-extractable:\n{listed}"
            );
        },
    );
}

#[test]
fn a_key_file_imported_into_the_token_keeps_its_key_id() {
    SoftHsm::test_in_child(
        "a_key_file_imported_into_the_token_keeps_its_key_id",
        |hsm| {
            for (i, kind) in [KeyKind::Ed25519, KeyKind::EcdsaP256, KeyKind::Rsa3072]
                .into_iter()
                .enumerate()
            {
                let key = PrivateKey::generate(kind).unwrap();
                let pem = hsm.dir().join(format!("{kind}.pem"));
                key.write_file(&pem, None).unwrap();
                let label = format!("imported-{kind}");
                hsm.import_pkcs8(&pem, &label, &format!("0{i}a1"));
                let signer = Pkcs11KeySource::parse(&hsm.uri(&label))
                    .unwrap()
                    .signer()
                    .unwrap();
                assert_eq!(signer.key_id(), key.key_id(), "{kind}");
                assert_eq!(signer.public_key(), key.public_key(), "{kind}");
                // The token's signature verifies under the file key's public key.
                let sig = signer.sign(MSG).unwrap();
                key.public_key().verify(MSG, &sig).unwrap();
                // Selecting by id alone finds the same key.
                let by_id = format!(
                    "pkcs11:token=ferry;id=%0{i}%a1?module-path={}&pin-value={PIN}",
                    ferry_tests::softhsm::MODULE
                );
                let signer = Pkcs11KeySource::parse(&by_id).unwrap().signer().unwrap();
                assert_eq!(signer.key_id(), key.key_id(), "{kind} by id");
            }
        },
    );
}

#[test]
fn wrong_pin_missing_object_and_missing_token_are_named() {
    SoftHsm::test_in_child(
        "wrong_pin_missing_object_and_missing_token_are_named",
        |hsm| {
            let source = Pkcs11KeySource::parse(&hsm.uri("k")).unwrap();
            source.generate(KeyKind::Ed25519).unwrap();
            let module = ferry_tests::softhsm::MODULE;

            let wrong =
                format!("pkcs11:token=ferry;object=k?module-path={module}&pin-value=wrong-98765");
            let err = Pkcs11KeySource::parse(&wrong)
                .unwrap()
                .signer()
                .unwrap_err()
                .to_string();
            assert!(err.contains("PIN is incorrect"), "{err}");
            assert!(!err.contains("wrong-98765"), "the PIN leaked: {err}");

            let source = Pkcs11KeySource::parse(&hsm.uri_without_pin("k")).unwrap();
            let err = source.signer().unwrap_err().to_string();
            assert!(err.contains("needs its user PIN"), "{err}");
            // The PIN may come from the caller instead (the CLI's --passphrase-file).
            let signer = source
                .clone()
                .with_pin(Some(PIN.as_bytes()))
                .unwrap()
                .signer()
                .unwrap();
            check_signs(signer.as_ref());
            let err = Pkcs11KeySource::parse(&hsm.uri("k"))
                .unwrap()
                .with_pin(Some(b"other-pin"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("PIN is given twice"), "{err}");

            let err = Pkcs11KeySource::parse(&hsm.uri("absent"))
                .unwrap()
                .signer()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("no private key") && err.contains("\"absent\""),
                "{err}"
            );
            let err = Pkcs11KeySource::parse(&hsm.uri("absent"))
                .unwrap()
                .public_key()
                .unwrap_err()
                .to_string();
            assert!(err.contains("absent"), "{err}");

            let other = format!("pkcs11:token=nope;object=k?module-path={module}&pin-value={PIN}");
            let err = Pkcs11KeySource::parse(&other)
                .unwrap()
                .signer()
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("no initialised token matches token=\"nope\"")
                    && err.contains("'ferry'"),
                "{err}"
            );
            assert!(!err.contains(PIN), "the PIN leaked: {err}");

            let err = Pkcs11KeySource::parse(
                "pkcs11:token=ferry;object=k?module-path=/nonexistent/libnope.so",
            )
            .unwrap()
            .signer()
            .unwrap_err()
            .to_string();
            assert!(err.contains("does not exist"), "{err}");
        },
    );
}
