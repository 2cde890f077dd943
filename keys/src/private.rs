//! Private signing keys: generation, signing, and the cached public half.
//! PKCS#8 import/export and key files are in `private_pem.rs`.
use crate::spki_key::ParsedPublic;
use crate::{Error, KeyId, PublicKey, Result, Scheme, Signer};
use p256::ecdsa::signature::Signer as _;
use rand_core::OsRng;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The kinds of key Ferry generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
}

impl KeyKind {
    pub const ALL: [KeyKind; 5] = [
        KeyKind::Ed25519,
        KeyKind::Rsa2048,
        KeyKind::Rsa3072,
        KeyKind::Rsa4096,
        KeyKind::EcdsaP256,
    ];

    /// The name used on the command line: `ed25519`, `rsa-3072`, `ecdsa-p256`, ...
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Rsa2048 => "rsa-2048",
            KeyKind::Rsa3072 => "rsa-3072",
            KeyKind::Rsa4096 => "rsa-4096",
            KeyKind::EcdsaP256 => "ecdsa-p256",
        }
    }

    pub fn scheme(self) -> Scheme {
        match self {
            KeyKind::Ed25519 => Scheme::Ed25519,
            KeyKind::Rsa2048 | KeyKind::Rsa3072 | KeyKind::Rsa4096 => Scheme::RsassaPssSha256,
            KeyKind::EcdsaP256 => Scheme::EcdsaSha2Nistp256,
        }
    }

    /// RSA modulus size in bits; `None` for the elliptic-curve kinds.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyKind::Rsa2048 => Some(2048),
            KeyKind::Rsa3072 => Some(3072),
            KeyKind::Rsa4096 => Some(4096),
            KeyKind::Ed25519 | KeyKind::EcdsaP256 => None,
        }
    }

    pub(crate) fn from_rsa_bits(bits: usize) -> Option<KeyKind> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.rsa_bits() == Some(bits))
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<KeyKind> {
        KeyKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                Error::Unsupported(format!(
                    "key type '{s}' is unknown (expected one of ed25519, rsa-2048, rsa-3072, rsa-4096, ecdsa-p256)"
                ))
            })
    }
}

/// The secret itself. All three types wipe their memory on drop.
pub(crate) enum Secret {
    Ed25519(ed25519_dalek::SigningKey),
    Rsa(Box<rsa::RsaPrivateKey>),
    EcdsaP256(p256::ecdsa::SigningKey),
}

/// A private signing key held in memory, with its public key and key id computed once.
pub struct PrivateKey {
    pub(crate) secret: Secret,
    kind: KeyKind,
    public: PublicKey,
    key_id: KeyId,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret: this may end up in logs.
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind.name())
            .field("key_id", &self.key_id.as_str())
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate(kind: KeyKind) -> Result<PrivateKey> {
        let secret = if let Some(bits) = kind.rsa_bits() {
            let key =
                rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| Error::KeyGeneration {
                    kind: kind.name().to_owned(),
                    reason: e.to_string(),
                })?;
            Secret::Rsa(Box::new(key))
        } else if kind == KeyKind::Ed25519 {
            Secret::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
        } else {
            Secret::EcdsaP256(p256::ecdsa::SigningKey::random(&mut OsRng))
        };
        Self::from_secret(secret)
    }

    pub(crate) fn from_secret(secret: Secret) -> Result<PrivateKey> {
        let (kind, parsed) = match &secret {
            Secret::Ed25519(k) => (KeyKind::Ed25519, ParsedPublic::Ed25519(k.verifying_key())),
            Secret::EcdsaP256(k) => (KeyKind::EcdsaP256, ParsedPublic::P256(*k.verifying_key())),
            Secret::Rsa(k) => {
                let bits = k.n().bits();
                let kind = KeyKind::from_rsa_bits(bits).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "RSA private key has {bits} bits (expected 2048, 3072 or 4096)"
                    ))
                })?;
                (kind, ParsedPublic::Rsa(k.to_public_key()))
            }
        };
        let public = parsed.to_public_key()?;
        let key_id = public.key_id()?;
        Ok(PrivateKey {
            secret,
            kind,
            public,
            key_id,
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    pub fn scheme(&self) -> Scheme {
        self.kind.scheme()
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }
}

impl Signer for PrivateKey {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        match &self.secret {
            Secret::Ed25519(k) => Ok(k.sign(msg).to_bytes().to_vec()),
            Secret::EcdsaP256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(msg);
                Ok(sig.to_der().as_bytes().to_vec())
            }
            Secret::Rsa(k) => {
                let digest = Sha256::digest(msg);
                // "Blinded" here means the RSA private operation is blinded with fresh
                // randomness, the usual timing side-channel defence; the output is an ordinary
                // RSASSA-PSS signature with a 32-byte salt, as securesystemslib makes.
                k.sign_with_rng(&mut OsRng, rsa::Pss::new_blinded::<Sha256>(), &digest)
                    .map_err(|e| Error::Signing {
                        keyid: self.key_id.to_string(),
                        reason: e.to_string(),
                    })
            }
        }
    }
}
