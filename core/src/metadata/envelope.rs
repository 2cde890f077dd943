use super::{Document, Role};
use crate::{Error, Result};
use ferry_keys::{cjson, KeyId, Signer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One signature of a signed document: lowercase hex of the raw signature bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: KeyId,
    pub sig: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A typed signed document, as repository tools build and write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed<T> {
    pub signatures: Vec<Signature>,
    pub signed: T,
}

impl<T: Document> Signed<T> {
    pub fn new(signed: T) -> Self {
        Signed {
            signatures: Vec::new(),
            signed,
        }
    }

    /// The bytes signatures are made over: the canonical JSON of `signed`.
    pub fn canonical_signed(&self) -> Result<Vec<u8>> {
        cjson::to_vec(&self.signed).map_err(|e| Error::malformed(T::kind(), e))
    }

    /// Add (or replace) the signature of `signer`.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<()> {
        let msg = self.canonical_signed()?;
        self.add_signature(signer, &msg)
    }

    /// Sign with several keys, canonicalising once.
    pub fn sign_all(&mut self, signers: &[&dyn Signer]) -> Result<()> {
        let msg = self.canonical_signed()?;
        for signer in signers {
            self.add_signature(*signer, &msg)?;
        }
        Ok(())
    }

    fn add_signature(&mut self, signer: &dyn Signer, msg: &[u8]) -> Result<()> {
        let sig = hex::encode(signer.sign(msg)?);
        let keyid = signer.key_id().clone();
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(Signature {
            keyid,
            sig,
            extra: BTreeMap::new(),
        });
        Ok(())
    }

    /// The document as written to a repository: ordinary compact JSON. Not canonical JSON:
    /// that form leaves control characters (the newlines of a PEM key) raw inside strings,
    /// which strict JSON parsers rightly refuse. Signatures cover the canonical form of
    /// `signed`, which any reader recomputes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::malformed(T::kind(), e))
    }
}

/// A document parsed from bytes whose signatures have NOT been checked. Its contents are
/// reachable only through [`crate::verify`], which turns it into a [`crate::Verified`].
#[derive(Debug)]
pub struct Parsed<T> {
    pub(crate) signed: T,
    pub(crate) signatures: Vec<Signature>,
    /// Canonical JSON of `signed` exactly as received (unknown fields included).
    pub(crate) canonical: Vec<u8>,
}

#[derive(Deserialize)]
struct RawEnvelope {
    signatures: Vec<Signature>,
    signed: serde_json::Value,
}

impl RawEnvelope {
    /// What `serde_json::from_value` makes of `value`, with `signed` moved out of it rather
    /// than rebuilt node by node (serde has no shortcut from a `Value` to a `Value`). Anything
    /// but an object with both fields takes serde's own path, for serde's own error.
    fn from_value(value: serde_json::Value) -> serde_json::Result<RawEnvelope> {
        match value {
            serde_json::Value::Object(mut map)
                if map.contains_key("signatures") && map.contains_key("signed") =>
            {
                let signatures = map.remove("signatures").unwrap_or_default();
                Ok(RawEnvelope {
                    signatures: serde_json::from_value(signatures)?,
                    signed: map.remove("signed").unwrap_or_default(),
                })
            }
            other => serde_json::from_value(other),
        }
    }
}

impl<T: Document> Parsed<T> {
    /// Parse `bytes` as a `T` document. Signatures are verified over the canonical form of the
    /// `signed` object as received, not over our re-serialisation of it.
    /// An object that names a key twice is refused ([`crate::strict_json`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let value = crate::strict_json::value_from_slice(bytes)
            .map_err(|e| Error::malformed(T::kind(), e))?;
        Self::from_value(value)
    }

    /// The typed `signed` part, signatures unchecked: for reading what kept, once-verified
    /// bytes say (a version to guard against rollback) without making a `Verified` of them.
    pub fn unverified(&self) -> &T {
        &self.signed
    }

    /// [`Parsed::from_bytes`] for an envelope already parsed as JSON (strictly), such as an ECU
    /// report inside a vehicle manifest: the same checks, without writing it out and parsing it
    /// again.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        let raw = RawEnvelope::from_value(value).map_err(|e| Error::malformed(T::kind(), e))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawEnvelope) -> Result<Self> {
        let role = T::kind();
        T::precheck(&raw.signed)?;
        let canonical = cjson::to_vec(&raw.signed).map_err(|e| Error::malformed(role, e))?;
        let signed = T::from_signed(raw.signed).map_err(|e| Error::malformed(role, e))?;
        signed.check()?;
        let mut seen = BTreeSet::new();
        for sig in &raw.signatures {
            if !seen.insert(&sig.keyid) {
                return Err(Error::DuplicateSignature {
                    role: role.to_owned(),
                    keyid: sig.keyid.to_string(),
                });
            }
        }
        Ok(Parsed {
            signed,
            signatures: raw.signatures,
            canonical,
        })
    }
}

pub(super) fn check_common<T: Role>(signed: &T) -> Result<()> {
    let role = T::TYPE.name();
    let major = signed.spec_version().split('.').next().unwrap_or("");
    if major != "1" || signed.spec_version().split('.').count() < 2 {
        return Err(Error::SpecVersion {
            role: role.to_owned(),
            found: signed.spec_version().to_owned(),
        });
    }
    if signed.version() == 0 {
        return Err(Error::malformed(role, "version must be at least 1"));
    }
    // An empty `hashes` pins nothing while looking as if it did (python-tuf refuses it too):
    // leave the field out to pin by version and length only.
    for (file, meta) in signed.meta_files().into_iter().flatten() {
        if meta.hashes.as_ref().is_some_and(|h| h.is_empty()) {
            return Err(Error::malformed(
                role,
                format!(
                    "meta {file}: hashes is empty; expected at least one hash, or no hashes field"
                ),
            ));
        }
    }
    Ok(())
}
