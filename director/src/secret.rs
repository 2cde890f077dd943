//! Bearer secrets (admin tokens, per-vehicle device tokens): 32 random bytes as hex, stored
//! only as their SHA-256, compared in constant time.

use crate::{Error, Result};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// A fresh secret: 32 bytes from the OS random source, lowercase hex.
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| Error::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// What is stored in place of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of two byte strings of the same length: every byte is looked at
/// whatever the first difference. (Both sides are SHA-256 digests, so the length is public.)
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_hashes_compare() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(ct_eq(&hash(&a), &hash(&a)));
        assert!(!ct_eq(&hash(&a), &hash(&b)));
        let mut last_differs = hash(&a);
        last_differs[31] ^= 1;
        assert!(!ct_eq(&hash(&a), &last_differs));
        assert!(!ct_eq(&hash(&a), &hash(&a)[..31]));
    }
}
