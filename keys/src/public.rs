use crate::{cjson, verify::Verifier, Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// A key id: the lowercase hex SHA-256 of the key's canonical JSON. Ids read from metadata are
/// taken as written (python-tuf does not recompute them either); ids of keys we make are computed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    pub fn new(id: impl Into<String>) -> Self {
        KeyId(id.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::borrow::Borrow<str> for KeyId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The signature schemes Ferry signs and verifies with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Ed25519,
    RsassaPssSha256,
    EcdsaSha2Nistp256,
}

impl Scheme {
    /// The TUF `scheme` string.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::RsassaPssSha256 => "rsassa-pss-sha256",
            Scheme::EcdsaSha2Nistp256 => "ecdsa-sha2-nistp256",
        }
    }

    /// The TUF `keytype` string written for new keys (securesystemslib's current names).
    pub fn keytype(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::RsassaPssSha256 => "rsa",
            Scheme::EcdsaSha2Nistp256 => "ecdsa",
        }
    }

    /// The scheme of a key as written in metadata. `ecdsa-sha2-nistp256` is also accepted as a
    /// keytype: older securesystemslib releases wrote it that way.
    pub fn from_tuf(keytype: &str, scheme: &str) -> Result<Scheme> {
        match (keytype, scheme) {
            ("ed25519", "ed25519") => Ok(Scheme::Ed25519),
            ("rsa", "rsassa-pss-sha256") => Ok(Scheme::RsassaPssSha256),
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                Ok(Scheme::EcdsaSha2Nistp256)
            }
            _ => Err(Error::UnsupportedScheme {
                keytype: keytype.to_owned(),
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// `keyval` of a TUF key: the public part (hex for ed25519, SPKI PEM for rsa and ecdsa).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
    /// Fields we do not know, kept so the key re-serialises exactly as signed.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A public key in TUF key JSON form. Unknown fields are kept. The parsed verifying key is
/// cached on first use, so verifying many signatures does not re-parse PEM.
#[derive(Clone, Serialize, Deserialize)]
pub struct PublicKey {
    pub keytype: String,
    pub keyval: KeyVal,
    pub scheme: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
    #[serde(skip)]
    verifier: OnceLock<Arc<Verifier>>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.keytype == other.keytype
            && self.scheme == other.scheme
            && self.keyval == other.keyval
            && self.extra == other.extra
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("keytype", &self.keytype)
            .field("scheme", &self.scheme)
            .field("public", &self.keyval.public)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// A key with the standard TUF names for `scheme` and the given public part.
    pub fn new(scheme: Scheme, public: String) -> Self {
        PublicKey {
            keytype: scheme.keytype().to_owned(),
            keyval: KeyVal {
                public,
                extra: BTreeMap::new(),
            },
            scheme: scheme.name().to_owned(),
            extra: BTreeMap::new(),
            verifier: OnceLock::new(),
        }
    }

    /// The scheme this key declares, if Ferry supports it.
    pub fn scheme(&self) -> Result<Scheme> {
        Scheme::from_tuf(&self.keytype, &self.scheme)
    }

    /// The key id: lowercase hex SHA-256 of this key's canonical JSON.
    pub fn key_id(&self) -> Result<KeyId> {
        let bytes = cjson::to_vec(self)?;
        Ok(KeyId(hex::encode(Sha256::digest(&bytes))))
    }

    /// Verify `sig` (raw signature bytes, already hex-decoded) over `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        self.verifier()?.verify(msg, sig)
    }

    /// Parse the verifying key now, so a key kept for later (clones share the parse) verifies
    /// without parsing again; an error is the one `verify` would give.
    pub fn prepare(&self) -> Result<()> {
        self.verifier().map(|_| ())
    }

    fn verifier(&self) -> Result<&Arc<Verifier>> {
        // Only a successful parse is cached: a malformed key fails (and is re-parsed) every
        // time, so its error keeps its precise variant and message.
        match self.verifier.get() {
            Some(v) => Ok(v),
            None => {
                let parsed = Arc::new(Verifier::parse(self)?);
                Ok(self.verifier.get_or_init(|| parsed))
            }
        }
    }
}
