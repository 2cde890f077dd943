//! Who must sign a proposal, who has, and the merge into signed metadata.

use super::file::{proposal_error, OfflineRole, Proposal};
use super::signature::DetachedSignature;
use crate::metadata::{Parsed, RoleType, Root, Signature, Targets};
use crate::verify::{valid_signers, Authority};
use crate::{Error, Result};
use ferry_keys::{KeyId, PublicKey, Signer};
use std::collections::BTreeMap;

/// One threshold a proposal must meet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    /// "root v3 (current)", "root v4 (new)", "targets keys of root v4".
    pub label: String,
    pub threshold: u32,
    pub keyids: Vec<KeyId>,
    #[serde(skip)]
    pub keys: BTreeMap<KeyId, PublicKey>,
}

impl Requirement {
    pub(crate) fn of_root(root: &Root, role: RoleType, label: String) -> Result<Requirement> {
        let authority = root.authority(role)?;
        let keys = authority
            .keyids()
            .iter()
            .filter_map(|id| Some((id.clone(), root.keys.get(id)?.clone())))
            .collect();
        Ok(Requirement {
            label,
            threshold: authority.threshold(),
            keyids: authority.keyids().to_vec(),
            keys,
        })
    }

    fn authority(&self) -> Result<Authority<'_>> {
        Authority::new(
            self.label.as_str(),
            &self.keyids,
            self.threshold,
            &self.keys,
        )
    }
}

/// What became of one detached signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum SignatureVerdict {
    /// Valid, by a key the proposal asks for.
    Counted { keyid: KeyId },
    /// Made for another proposal (or this one before it was edited).
    OtherProposal { keyid: KeyId, signed_for: String },
    /// By a key no threshold of this proposal lists.
    NotRequested { keyid: KeyId },
    /// Does not verify with the key it names.
    Invalid { keyid: KeyId },
}

/// One threshold: who signed, who could still sign.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RequirementStatus {
    pub label: String,
    pub threshold: u32,
    pub signed: Vec<KeyId>,
    pub missing: Vec<KeyId>,
}

impl RequirementStatus {
    pub fn met(&self) -> bool {
        self.signed.len() >= self.threshold as usize
    }
}

/// Where a proposal stands given a set of detached signatures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub digest: String,
    pub requirements: Vec<RequirementStatus>,
    pub signatures: Vec<SignatureVerdict>,
}

impl Status {
    /// Every threshold met and every signature counted.
    pub fn complete(&self) -> bool {
        self.requirements.iter().all(RequirementStatus::met)
            && self
                .signatures
                .iter()
                .all(|v| matches!(v, SignatureVerdict::Counted { .. }))
    }

    /// "root v2 (new): 1 of 2 signatures; still needed: one more of A, B".
    pub fn shortfall(&self) -> Vec<String> {
        self.requirements
            .iter()
            .filter(|r| !r.met())
            .map(|r| {
                let more = r.threshold as usize - r.signed.len();
                let ids: Vec<&str> = r.missing.iter().map(KeyId::as_str).collect();
                format!(
                    "{}: {} of {} signature(s); still needed: {more} more from key(s) {}",
                    r.label,
                    r.signed.len(),
                    r.threshold,
                    ids.join(", ")
                )
            })
            .collect()
    }
}

impl Proposal {
    /// Sign the proposal with `signer`, refusing a key it does not ask for, and check the
    /// signature against the public key the metadata lists (verify after sign: a token or key
    /// file that signs with another key than it claims is caught here, not at merge).
    pub fn sign(&self, signer: &dyn Signer) -> Result<DetachedSignature> {
        let keyid = signer.key_id();
        let requirements = self.requirements()?;
        let key = requirements
            .iter()
            .find_map(|r| r.keys.get(keyid))
            .ok_or_else(|| Error::KeyNotRequested {
                keyid: keyid.to_string(),
                expected: expected_signers(&requirements),
            })?;
        let sig = signer.sign(self.canonical.as_bytes())?;
        key.verify(self.canonical.as_bytes(), &sig)
            .map_err(|_| Error::SignatureInvalid {
                keyid: keyid.to_string(),
                reason: "the signature just made does not verify with the key the metadata lists for this key id (wrong key source?)".into(),
            })?;
        Ok(DetachedSignature::new(
            self.digest()?,
            self.role.name(),
            self.version()?,
            keyid.clone(),
            hex::encode(sig),
        ))
    }

    /// Count `signatures` against every threshold.
    pub fn status(&self, signatures: &[DetachedSignature]) -> Result<Status> {
        let digest = self.digest()?;
        let requirements = self.requirements()?;
        let msg = self.canonical.as_bytes();
        let mut verdicts = Vec::with_capacity(signatures.len());
        let mut counted = Vec::new();
        for s in signatures {
            let keyid = s.keyid.clone();
            let key = requirements.iter().find_map(|r| r.keys.get(&s.keyid));
            let verdict = if s.proposal_sha256 != digest {
                SignatureVerdict::OtherProposal {
                    keyid,
                    signed_for: s.proposal_sha256.clone(),
                }
            } else if let Some(key) = key {
                let ok = hex::decode(&s.sig)
                    .ok()
                    .is_some_and(|bytes| key.verify(msg, &bytes).is_ok());
                if ok {
                    counted.push(s.as_signature());
                    SignatureVerdict::Counted { keyid }
                } else {
                    SignatureVerdict::Invalid { keyid }
                }
            } else {
                SignatureVerdict::NotRequested { keyid }
            };
            verdicts.push(verdict);
        }
        let mut out = Vec::with_capacity(requirements.len());
        for r in &requirements {
            let authority = r.authority()?;
            let valid = valid_signers(&authority, msg, &counted);
            out.push(RequirementStatus {
                label: r.label.clone(),
                threshold: r.threshold,
                signed: valid.iter().map(|k| (*k).clone()).collect(),
                missing: r
                    .keyids
                    .iter()
                    .filter(|k| !valid.contains(k))
                    .cloned()
                    .collect(),
            });
        }
        Ok(Status {
            digest,
            requirements: out,
            signatures: verdicts,
        })
    }

    /// The signed metadata, if every signature is good and every threshold met; otherwise an
    /// error naming the first bad signature or the missing signers. The result is checked
    /// once more, as metadata, by [`crate::verify`].
    pub fn merge(&self, signatures: &[DetachedSignature]) -> Result<Vec<u8>> {
        let status = self.status(signatures)?;
        for verdict in &status.signatures {
            match verdict {
                SignatureVerdict::Counted { .. } => {}
                SignatureVerdict::OtherProposal { keyid, signed_for } => {
                    return Err(Error::ProposalChanged {
                        keyid: keyid.to_string(),
                        signed_for: signed_for.clone(),
                        actual: status.digest.clone(),
                    })
                }
                SignatureVerdict::NotRequested { keyid } => {
                    return Err(Error::KeyNotRequested {
                        keyid: keyid.to_string(),
                        expected: expected_signers(&self.requirements()?),
                    })
                }
                SignatureVerdict::Invalid { keyid } => {
                    return Err(Error::SignatureInvalid {
                        keyid: keyid.to_string(),
                        reason: "it does not verify over this proposal's bytes".into(),
                    })
                }
            }
        }
        let short = status.shortfall();
        if !short.is_empty() {
            return Err(Error::ProposalShort {
                missing: short.join("; "),
            });
        }
        // One signature per key: a holder who signed twice adds one entry.
        let mut by_key: BTreeMap<KeyId, Signature> = BTreeMap::new();
        for s in signatures {
            by_key
                .entry(s.keyid.clone())
                .or_insert_with(|| s.as_signature());
        }
        let text = super::file::escape_controls(self.canonical.as_bytes());
        let signed: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| proposal_error(format!("the new metadata: {e}")))?;
        let envelope = serde_json::json!({
            "signatures": by_key.into_values().collect::<Vec<_>>(),
            "signed": signed,
        });
        let bytes = serde_json::to_vec(&envelope).map_err(|e| proposal_error(e.to_string()))?;
        self.check_merged(&bytes)?;
        Ok(bytes)
    }

    /// The merged bytes verify as metadata: the same checks a client makes on signatures.
    fn check_merged(&self, bytes: &[u8]) -> Result<()> {
        let requirements = self.requirements()?;
        let authorities = requirements
            .iter()
            .map(Requirement::authority)
            .collect::<Result<Vec<_>>>()?;
        match self.role {
            OfflineRole::Root => {
                let parsed = Parsed::<Root>::from_bytes(bytes)?;
                crate::verify::verify(parsed, &authorities)?;
            }
            OfflineRole::Targets => {
                let parsed = Parsed::<Targets>::from_bytes(bytes)?;
                crate::verify::verify(parsed, &authorities)?;
            }
        }
        Ok(())
    }
}

fn expected_signers(requirements: &[Requirement]) -> String {
    requirements
        .iter()
        .map(|r| {
            let ids: Vec<&str> = r.keyids.iter().map(KeyId::as_str).collect();
            format!("{}: {}", r.label, ids.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
