//! The one place a signature threshold is counted. Everything that trusts metadata — root
//! rotation, top-level roles, delegated roles, hashed bins, vehicle manifests — comes through
//! [`verify`], and only it can make a [`Verified`].

use crate::metadata::{Document, Parsed, Signature};
use crate::{Error, Result};
use ferry_keys::{KeyId, PublicKey};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// Who may sign a role: key ids, how many of them must sign, and where the keys are.
#[derive(Debug, Clone)]
pub struct Authority<'a> {
    pub role: Cow<'a, str>,
    pub keyids: &'a [KeyId],
    pub threshold: u32,
    pub keys: &'a BTreeMap<KeyId, PublicKey>,
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
/// and the new root's own). Nothing else is checked here: versions and expiry are the trusted
/// set's business.
pub fn verify<T: Document>(
    parsed: Parsed<T>,
    authorities: &[Authority<'_>],
) -> Result<Verified<T>> {
    for authority in authorities {
        check_threshold(authority, &parsed.canonical, &parsed.signatures)?;
    }
    Ok(Verified {
        signed: parsed.signed,
    })
}

/// Like [`verify`], and also against an authority the document grants itself (a new root must
/// be signed by its own root keys as well as by the trusted root's).
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

/// Count distinct authorised key ids with a valid signature over `msg`. A key id counts once
/// however many signatures carry it; signatures by unknown keys or that fail to verify are
/// ignored (they neither help nor hurt, as in the TUF reference client).
pub fn check_threshold(
    authority: &Authority<'_>,
    msg: &[u8],
    signatures: &[Signature],
) -> Result<()> {
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
    if valid.len() < authority.threshold as usize {
        return Err(Error::Threshold {
            role: authority.role.to_string(),
            valid: valid.len(),
            threshold: authority.threshold,
        });
    }
    Ok(())
}
