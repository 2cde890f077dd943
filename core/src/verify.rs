//! The one place a signature threshold is counted. Everything that trusts metadata — root
//! rotation, top-level roles, delegated roles, hashed bins, vehicle manifests — comes through
//! [`verify`], and only it can make a [`Verified`].

use crate::metadata::{Document, Parsed, Signature};
use crate::{Error, Result};
use ferry_keys::{KeyId, PublicKey};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Who may sign a role: key ids, how many of them must sign, and where the keys are. Only
/// [`Authority::new`] makes one, and it refuses a threshold below 1 and an empty key list, so
/// no authority can be met by zero signatures.
#[derive(Debug, Clone)]
pub struct Authority<'a> {
    role: Cow<'a, str>,
    keyids: &'a [KeyId],
    threshold: u32,
    keys: &'a BTreeMap<KeyId, PublicKey>,
}

impl<'a> Authority<'a> {
    pub fn new(
        role: impl Into<Cow<'a, str>>,
        keyids: &'a [KeyId],
        threshold: u32,
        keys: &'a BTreeMap<KeyId, PublicKey>,
    ) -> Result<Self> {
        let role = role.into();
        if threshold < 1 {
            return Err(Error::Authority {
                role: role.into_owned(),
                reason: "has threshold 0; a threshold must be at least 1",
            });
        }
        if keyids.is_empty() {
            return Err(Error::Authority {
                role: role.into_owned(),
                reason: "lists no key ids; at least one is needed",
            });
        }
        Ok(Authority {
            role,
            keyids,
            threshold,
            keys,
        })
    }

    pub fn role(&self) -> &str {
        &self.role
    }
    pub fn threshold(&self) -> u32 {
        self.threshold
    }
    pub fn keyids(&self) -> &'a [KeyId] {
        self.keyids
    }
    pub fn keys(&self) -> &'a BTreeMap<KeyId, PublicKey> {
        self.keys
    }
}

/// Metadata whose signatures met every authority it was checked against. Only [`verify`]
/// builds one, so unverified bytes cannot reach code that acts on them.
#[derive(Debug, Clone)]
pub struct Verified<T> {
    signed: T,
}

impl<T> Verified<T> {
    pub fn signed(&self) -> &T {
        &self.signed
    }
    pub fn into_inner(self) -> T {
        self.signed
    }
}

impl<T> std::ops::Deref for Verified<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.signed
    }
}

/// Check `parsed` against each authority in turn (root rotation passes two: the trusted root's
/// and the new root's own). At least one authority is required: an empty list would verify
/// anything. Nothing else is checked here: versions and expiry are the trusted set's business.
pub fn verify<T: Document>(
    parsed: Parsed<T>,
    authorities: &[Authority<'_>],
) -> Result<Verified<T>> {
    if authorities.is_empty() {
        return Err(Error::Authority {
            role: T::kind().to_owned(),
            reason: "was given no authority to verify against",
        });
    }
    for authority in authorities {
        check_threshold(authority, &parsed.canonical, &parsed.signatures)?;
    }
    Ok(Verified {
        signed: parsed.signed,
    })
}

/// Like [`verify`], and also against an authority the document grants itself (a new root must
/// be signed by its own root keys as well as by the trusted root's). `authorities` may be
/// empty here: the document's own authority is always checked.
pub fn verify_self_signed<T: Document>(
    parsed: Parsed<T>,
    authorities: &[Authority<'_>],
    own: impl Fn(&T) -> Result<Authority<'_>>,
) -> Result<Verified<T>> {
    for authority in authorities {
        check_threshold(authority, &parsed.canonical, &parsed.signatures)?;
    }
    check_threshold(&own(&parsed.signed)?, &parsed.canonical, &parsed.signatures)?;
    Ok(Verified {
        signed: parsed.signed,
    })
}

/// Which distinct authorised key ids made a valid signature over `msg`. A key id counts once
/// however many signatures carry it; signatures by unknown keys or that fail to verify are
/// ignored (they neither help nor hurt, as in the TUF reference client). This is the only
/// place signatures are counted: [`check_threshold`] and the key-ceremony status both use it.
pub fn valid_signers<'s>(
    authority: &Authority<'_>,
    msg: &[u8],
    signatures: &'s [Signature],
) -> BTreeSet<&'s KeyId> {
    let authorised: BTreeSet<&KeyId> = authority.keyids.iter().collect();
    let mut valid: BTreeSet<&KeyId> = BTreeSet::new();
    for sig in signatures {
        if !authorised.contains(&sig.keyid) || valid.contains(&sig.keyid) {
            continue;
        }
        let Some(key) = authority.keys.get(&sig.keyid) else {
            continue;
        };
        let Ok(bytes) = hex::decode(&sig.sig) else {
            continue;
        };
        if key.verify(msg, &bytes).is_ok() {
            valid.insert(&sig.keyid);
        }
    }
    valid
}

/// Refuse unless [`valid_signers`] reaches the authority's threshold.
pub fn check_threshold(
    authority: &Authority<'_>,
    msg: &[u8],
    signatures: &[Signature],
) -> Result<()> {
    let valid = valid_signers(authority, msg, signatures).len();
    if valid < authority.threshold as usize {
        return Err(Error::Threshold {
            role: authority.role.to_string(),
            valid,
            threshold: authority.threshold,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metadata::Targets;

    fn unsigned_targets() -> Parsed<Targets> {
        let doc = serde_json::json!({"signed": {"_type": "targets", "spec_version": "1.0.0",
            "version": 1, "expires": "2030-01-01T00:00:00Z", "targets": {}}, "signatures": []});
        Parsed::<Targets>::from_bytes(doc.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn verify_with_no_authority_is_an_error() {
        let err = verify(unsigned_targets(), &[]).unwrap_err();
        assert!(matches!(err, Error::Authority { .. }), "{err}");
        assert!(err.to_string().contains("no authority"), "{err}");
    }

    #[test]
    fn an_authority_with_threshold_zero_or_no_keys_cannot_be_made() {
        let keys = BTreeMap::new();
        let keyids = [KeyId::new("ab".repeat(32))];
        let err = Authority::new("targets", &keyids, 0, &keys).unwrap_err();
        assert!(err.to_string().contains("threshold 0"), "{err}");
        let err = Authority::new("targets", &[], 1, &keys).unwrap_err();
        assert!(err.to_string().contains("no key ids"), "{err}");
        // With a real threshold, unsigned metadata still fails the threshold check.
        let authority = Authority::new("targets", &keyids, 1, &keys).unwrap();
        let err = verify(unsigned_targets(), &[authority]).unwrap_err();
        assert!(matches!(err, Error::Threshold { valid: 0, .. }), "{err}");
    }
}
