//! A public key together with its key id, computed once.

use crate::{KeyId, PublicKey, Result};

/// A public key and its key id ([`PublicKey::key_id`]: the SHA-256 of the key's canonical
/// JSON). The id is computed when the pair is made and the pair cannot be changed afterwards,
/// so the two always agree; code that verifies many signatures by the same keys (the
/// Director, a manifest at a time) does not canonicalise and hash each key again every time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifiedKey {
    key: PublicKey,
    id: KeyId,
}

impl IdentifiedKey {
    /// `key` with its id; fails as [`PublicKey::key_id`] does.
    pub fn new(key: PublicKey) -> Result<Self> {
        let id = key.key_id()?;
        Ok(IdentifiedKey { key, id })
    }

    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheme;

    #[test]
    fn the_id_is_the_keys_own() {
        let key = PublicKey::new(Scheme::Ed25519, hex::encode([7u8; 32]));
        let identified = IdentifiedKey::new(key.clone()).expect("key id");
        assert_eq!(identified.id(), &key.key_id().expect("key id"));
        assert_eq!(identified.key(), &key);
    }
}
