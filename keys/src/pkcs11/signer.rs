//! Signing on the token: the private key never leaves it.
use super::token::{ck, err};
use crate::{KeyId, PublicKey, Result, Scheme, Signer};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Mutex;

/// The salt length securesystemslib, go-tuf and tough sign with (the SHA-256 digest length).
const PSS_SALT_LEN: u64 = 32;

/// A key on a PKCS#11 token, with the session it signs in.
pub struct Pkcs11Signer {
    /// cryptoki sessions may be used from one thread at a time.
    session: Mutex<Session>,
    key: ObjectHandle,
    scheme: Scheme,
    public: PublicKey,
    key_id: KeyId,
    /// `token 'ferry' object "root-1"`, for messages.
    name: String,
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("key", &self.name)
            .field("scheme", &self.scheme.name())
            .field("key_id", &self.key_id.as_str())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Signer {
    pub(crate) fn new(
        session: Session,
        key: ObjectHandle,
        public: PublicKey,
        name: String,
    ) -> Result<Self> {
        let scheme = public.scheme()?;
        let key_id = public.key_id()?;
        Ok(Pkcs11Signer {
            session: Mutex::new(session),
            key,
            scheme,
            public,
            key_id,
            name,
        })
    }

    fn sign_on_token(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let what = format!("signing with {}", self.name);
        match self.scheme {
            Scheme::Ed25519 => session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.key,
                    msg,
                )
                .map_err(ck(&what)),
            Scheme::EcdsaSha2Nistp256 => {
                let digest = Sha256::digest(msg);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.key, &digest)
                    .map_err(ck(&what))?;
                raw_ecdsa_to_der(&raw)
            }
            Scheme::RsassaPssSha256 => {
                let digest = Sha256::digest(msg);
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: PSS_SALT_LEN.into(),
                };
                session
                    .sign(&Mechanism::RsaPkcsPss(params), self.key, &digest)
                    .map_err(ck(&what))
            }
        }
    }
}

/// PKCS#11 ECDSA signatures are r‖s, each as long as the curve's order (32 bytes for
/// P-256); Ferry's ecdsa-sha2-nistp256 signatures are DER ECDSA-Sig-Value.
pub(crate) fn raw_ecdsa_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    let sig = p256::ecdsa::Signature::from_slice(raw).map_err(|_| {
        err(format!(
            "the token's ECDSA signature is {} bytes that are not r‖s in range \
             (expected 64 bytes for P-256)",
            raw.len()
        ))
    })?;
    Ok(sig.to_der().as_bytes().to_vec())
}

impl Signer for Pkcs11Signer {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let sig = self.sign_on_token(msg)?;
        // The public key came from a different object than the one that signed: a mismatch
        // (two keys under one label, a token fault) must not leave here as a bad signature.
        self.public.verify(msg, &sig).map_err(|e| {
            err(format!(
                "the signature {} made does not verify with its public key {} ({e}); \
                 expected the private and public objects to be one key pair",
                self.name, self.key_id
            ))
        })?;
        Ok(sig)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer as _;

    #[test]
    fn raw_ecdsa_becomes_der_that_verifies() {
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let sig: p256::ecdsa::Signature = key.sign(b"msg");
        let der = raw_ecdsa_to_der(&sig.to_bytes()).unwrap();
        assert_eq!(der, sig.to_der().as_bytes());
        let parsed = p256::ecdsa::Signature::from_der(&der).unwrap();
        assert_eq!(parsed, sig);
        let err = raw_ecdsa_to_der(&[1u8; 63]).unwrap_err().to_string();
        assert!(err.contains("expected 64 bytes"), "{err}");
        assert!(
            raw_ecdsa_to_der(&[0u8; 64]).is_err(),
            "r = s = 0 is out of range"
        );
    }
}
