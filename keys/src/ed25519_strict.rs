//! ed25519 verification under `verify_strict`'s rules, at one field square root less.
//!
//! ed25519-dalek's `verify_strict` is the cofactorless check `R == compress([s]B - [k]A)`
//! (which `verify` makes too, refusing a non-canonical S) plus two refusals: a small-order
//! public key A, and a small-order R. To test R it decompresses R, a field square root that is
//! about a seventh of a verification; the Director makes four verifications per check-in.
//!
//! Once the cofactorless check has passed, R is the compression of a curve point, hence a
//! valid canonical encoding, and compression is injective. So R is of small order exactly
//! when its bytes are the compression of one of the eight torsion points: a comparison of
//! 32-byte arrays answers what the decompression did. The unit tests hold this function to
//! `verify_strict`'s verdict, including a signature `verify` alone accepts.

use curve25519_dalek::constants::EIGHT_TORSION;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use std::sync::LazyLock;

/// The compressed encodings of the eight points of small order (each compression is a field
/// inversion, so they are made once).
static SMALL_ORDER: LazyLock<[[u8; 32]; 8]> =
    LazyLock::new(|| EIGHT_TORSION.map(|point| point.compress().to_bytes()));

/// Whether `sig` is `key`'s signature on `msg` by `verify_strict`'s rules.
pub(crate) fn verify(key: &VerifyingKey, msg: &[u8], sig: &Signature) -> bool {
    !key.is_weak() && key.verify(msg, sig).is_ok() && !SMALL_ORDER.contains(sig.r_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::traits::Identity;
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use ed25519_dalek::{Signer, SigningKey};
    use sha2::{Digest, Sha512};

    const MSG: &[u8] = b"{\"signed\":{\"_type\":\"timestamp\",\"version\":7}}";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A signature whose R is `r` and whose S makes the cofactorless equation hold:
    /// S = k * a with k = H(R || A || M), so [S]B - [k]A is the identity. With R the identity's
    /// encoding this is a signature `verify` accepts and `verify_strict` must refuse.
    fn with_r(signer: &SigningKey, r: [u8; 32], msg: &[u8]) -> Signature {
        let a = signer.verifying_key();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r)
                .chain_update(a.as_bytes())
                .chain_update(msg),
        );
        let s = k * signer.to_scalar();
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(&r);
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(&bytes)
    }

    fn identity() -> [u8; 32] {
        EdwardsPoint::identity().compress().to_bytes()
    }

    fn agrees_with_dalek(key: &VerifyingKey, msg: &[u8], sig: &Signature) -> bool {
        let strict = key.verify_strict(msg, sig).is_ok();
        assert_eq!(verify(key, msg, sig), strict, "differs from verify_strict");
        strict
    }

    #[test]
    fn honest_and_tampered_signatures_get_dalek_strict_verdicts() {
        for seed in 1..=16 {
            let signer = key(seed);
            let public = signer.verifying_key();
            let sig = signer.sign(MSG);
            assert!(agrees_with_dalek(&public, MSG, &sig));
            assert!(!agrees_with_dalek(&public, b"other", &sig));
            assert!(!agrees_with_dalek(
                &key(seed + 100).verifying_key(),
                MSG,
                &sig
            ));
            let mut bad = sig.to_bytes();
            bad[seed as usize] ^= 0x40;
            assert!(!agrees_with_dalek(
                &public,
                MSG,
                &Signature::from_bytes(&bad)
            ));
        }
    }

    #[test]
    fn a_small_order_r_is_refused_although_the_equation_holds() {
        let signer = key(7);
        let public = signer.verifying_key();
        for torsion in *SMALL_ORDER {
            let sig = with_r(&signer, torsion, MSG);
            assert!(!agrees_with_dalek(&public, MSG, &sig));
        }
        // The identity as R: the cofactorless equation holds, so the refusal above is this
        // module's torsion check and not the equation.
        let identity = with_r(&signer, identity(), MSG);
        assert!(
            public.verify(MSG, &identity).is_ok(),
            "test signature is wrong"
        );
        assert!(!verify(&public, MSG, &identity));
    }

    #[test]
    fn a_small_order_key_is_refused() {
        // The identity as A: [k]A is the identity whatever k, so R = [S]B satisfies the
        // equation for any S, and R is not of small order.
        let weak = VerifyingKey::from_bytes(&identity()).expect("identity decodes");
        let s = Scalar::from(12345u64);
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(EdwardsPoint::mul_base(&s).compress().as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        let sig = Signature::from_bytes(&bytes);
        assert!(weak.verify(MSG, &sig).is_ok(), "test signature is wrong");
        assert!(!agrees_with_dalek(&weak, MSG, &sig));
    }
}
