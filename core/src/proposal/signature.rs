//! A key holder's detached signature over a proposal, as written to `holder.sig`.

use super::file::proposal_error;
use crate::metadata::Signature;
use crate::{Error, Result};
use ferry_keys::KeyId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A signature file is a few hundred bytes (an RSA-4096 signature is 1,024 hex digits).
pub const MAX_SIGNATURE_BYTES: usize = 64 << 10;

const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachedSignature {
    /// Format version of this file (1).
    pub ferry_signature: u32,
    /// [`super::Proposal::digest`] of the proposal that was signed.
    pub proposal_sha256: String,
    /// The role and version signed, for a person sorting files.
    pub role: String,
    pub version: u64,
    pub keyid: KeyId,
    /// Hex of the signature over the proposal's canonical bytes, as it goes into the metadata.
    pub sig: String,
}

impl DetachedSignature {
    pub(crate) fn new(
        proposal_sha256: String,
        role: &str,
        version: u64,
        keyid: KeyId,
        sig: String,
    ) -> Self {
        DetachedSignature {
            ferry_signature: FORMAT,
            proposal_sha256,
            role: role.to_owned(),
            version,
            keyid,
            sig,
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_SIGNATURE_BYTES {
            return Err(Error::TooLong {
                what: "signature file".into(),
                limit: MAX_SIGNATURE_BYTES as u64,
            });
        }
        let value = crate::strict_json::value_from_slice(bytes)
            .map_err(|e| proposal_error(format!("not a signature file: {e}")))?;
        let sig: DetachedSignature = serde_json::from_value(value)
            .map_err(|e| proposal_error(format!("not a signature file: {e}")))?;
        if sig.ferry_signature != FORMAT {
            return Err(proposal_error(format!(
                "signature file format version {} is not supported (expected {FORMAT})",
                sig.ferry_signature
            )));
        }
        Ok(sig)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| proposal_error(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    pub(crate) fn as_signature(&self) -> Signature {
        Signature {
            keyid: self.keyid.clone(),
            sig: self.sig.clone(),
            extra: BTreeMap::new(),
        }
    }
}
