//! Generating a key pair on the token: the private key is created sensitive and
//! non-extractable, so it is never seen outside the token.
use super::public_key::{ED25519_PARAMS, P256_PARAMS};
use super::token::{ck, err};
use super::Pkcs11KeySource;
use crate::pkcs11::Pkcs11Signer;
use crate::{KeyKind, Result};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use rand_core::{OsRng, RngCore};

/// Bytes of a generated `CKA_ID`: random, so two keys never share one by accident.
const ID_LEN: usize = 16;

impl Pkcs11KeySource {
    /// Generate a `kind` key pair on the token, labelled with the URI's `object` (which no
    /// key on the token may have yet) and with the URI's `id` or a random `CKA_ID`. Both
    /// objects are token objects; the private key is `CKA_SENSITIVE` and not extractable.
    pub fn generate(&self, kind: KeyKind) -> Result<Pkcs11Signer> {
        let label = self.uri.object.clone().ok_or_else(|| {
            err("generating a key needs its label (expected object=LABEL in the URI)")
        })?;
        let opened = self.open(true, true)?;
        let s = &opened.session;
        let taken = s
            .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
            .map_err(ck("searching the token for the label"))?;
        if !taken.is_empty() {
            return Err(err(format!(
                "token '{}' already has an object labelled {label:?} (expected a new label; \
                 a key is never replaced)",
                opened.token
            )));
        }
        let id = match &self.uri.id {
            Some(id) => id.clone(),
            None => {
                let mut id = vec![0u8; ID_LEN];
                OsRng.fill_bytes(&mut id);
                id
            }
        };
        let common = |class: ObjectClass| {
            vec![
                Attribute::Class(class),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(id.clone()),
            ]
        };
        let mut public = common(ObjectClass::PUBLIC_KEY);
        public.extend([Attribute::Verify(true), Attribute::Private(false)]);
        let mut private = common(ObjectClass::PRIVATE_KEY);
        private.extend([
            Attribute::Sign(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        let mechanism = match kind {
            KeyKind::Ed25519 => {
                public.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            KeyKind::EcdsaP256 => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => {
                let bits = kind.rsa_bits().unwrap_or(3072) as u64;
                public.extend([
                    Attribute::ModulusBits(bits.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ]);
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        s.generate_key_pair(&mechanism, &public, &private)
            .map_err(ck(&format!(
                "generating a {kind} key on token '{}'",
                opened.token
            )))?;
        drop(opened);
        // Read back through the same path every later use takes.
        let mut named = self.clone();
        named.uri.id = Some(id);
        named.pkcs11_signer()
    }
}
