//! Parsing TUF public keys into verifying keys, and signature verification per scheme.
use crate::spki_key::{parse_tuf_key, ParsedPublic};
use crate::{Error, PublicKey, Result};
use p256::ecdsa::signature::Verifier as _;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

const SHA256_LEN: usize = 32;

/// A parsed verifying key, with the key id it is reported under.
#[derive(Debug)]
pub(crate) struct Verifier {
    keyid: String,
    key: ParsedPublic,
}

impl Verifier {
    pub(crate) fn parse(key: &PublicKey) -> Result<Verifier> {
        let keyid = key.key_id()?.to_string();
        let parsed = parse_tuf_key(key, &keyid)?;
        Ok(Verifier { keyid, key: parsed })
    }

    /// Verify `sig` (raw bytes: 64 for ed25519, modulus-length for RSA, DER for ECDSA).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        let valid = match &self.key {
            ParsedPublic::Ed25519(key) => {
                let bytes: &[u8; 64] = sig.try_into().map_err(|_| {
                    self.malformed(format!(
                        "ed25519 signature is {} bytes (expected 64)",
                        sig.len()
                    ))
                })?;
                let sig = ed25519_dalek::Signature::from_bytes(bytes);
                // Strict: rejects non-canonical S and small-order R/A, so a signature cannot be
                // mutated into a second valid one (and agrees with libsodium/python).
                crate::ed25519_strict::verify(key, msg, &sig)
            }
            ParsedPublic::Rsa(key) => {
                if sig.len() != key.size() {
                    return Err(self.malformed(format!(
                        "rsassa-pss-sha256 signature is {} bytes (expected {}, the modulus length)",
                        sig.len(),
                        key.size()
                    )));
                }
                verify_pss(key, msg, sig)
            }
            ParsedPublic::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(sig).map_err(|_| {
                    self.malformed(
                        "ecdsa-sha2-nistp256 signature is not a DER ECDSA-Sig-Value with r, s in range"
                            .to_owned(),
                    )
                })?;
                key.verify(msg, &sig).is_ok()
            }
        };
        if valid {
            Ok(())
        } else {
            Err(Error::BadSignature {
                keyid: self.keyid.clone(),
                scheme: self.key.scheme().name().to_owned(),
            })
        }
    }

    fn malformed(&self, reason: String) -> Error {
        Error::MalformedSignature {
            keyid: self.keyid.clone(),
            reason,
        }
    }
}

/// RSASSA-PSS with SHA-256 and MGF1-SHA-256. TUF does not fix the salt length: securesystemslib,
/// go-tuf and tough sign with the digest length (32); OpenSSL and Go's "auto" sign with the
/// maximum. python-tuf verifies with any length, so we accept both of those, each checked
/// exactly (at most two RSA operations, however hostile the signature).
fn verify_pss(key: &rsa::RsaPublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let digest = Sha256::digest(msg);
    let pss = |salt_len| rsa::Pss::new_with_salt::<Sha256>(salt_len);
    if key.verify(pss(SHA256_LEN), &digest, sig).is_ok() {
        return true;
    }
    let em_len = (key.n().bits() - 1).div_ceil(8);
    let max_salt = em_len.saturating_sub(SHA256_LEN + 2);
    max_salt != SHA256_LEN && key.verify(pss(max_salt), &digest, sig).is_ok()
}
