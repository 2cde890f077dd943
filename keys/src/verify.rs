//! Parsing TUF public keys into verifying keys, and signature verification per scheme.
use crate::{Error, PublicKey, Result};

/// A parsed verifying key (placeholder: filled in with the crypto implementation).
#[derive(Debug)]
pub(crate) struct Verifier;

impl Verifier {
    pub(crate) fn parse(key: &PublicKey) -> Result<Verifier> {
        Err(Error::UnsupportedScheme {
            keytype: key.keytype.clone(),
            scheme: key.scheme.clone(),
        })
    }

    pub(crate) fn verify(&self, _msg: &[u8], _sig: &[u8]) -> Result<()> {
        Err(Error::Unsupported("not implemented".into()))
    }
}
