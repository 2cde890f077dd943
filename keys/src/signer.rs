use crate::{KeyId, PublicKey, Result};

/// Anything that can make a signature: a key file today, PKCS#11 or a KMS later.
/// Signing is the only operation; the private part never leaves the implementation.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The public half, in TUF key JSON form.
    fn public_key(&self) -> &PublicKey;
    /// The key id of [`Signer::public_key`].
    fn key_id(&self) -> &KeyId;
    /// Sign `msg` with the key's scheme; returns raw signature bytes (DER for ecdsa).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>>;
}
