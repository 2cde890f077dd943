//! The proposal file: what is signed, what it replaces, and its digest.

use super::requirement::Requirement;
use crate::metadata::{Parsed, RoleType, Root, Targets};
use crate::{cjson, Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Top-level targets of a large catalogue without hashed bins can run to tens of megabytes;
/// anything larger is refused before it is parsed.
pub const MAX_PROPOSAL_BYTES: usize = 64 << 20;

const FORMAT: u32 = 1;

/// Which repository a proposal changes (shown to holders; the Director's roles have other
/// keys and other consequences than the Image repository's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepositoryKind {
    ImageRepo,
    Director,
}

impl RepositoryKind {
    pub fn title(self) -> &'static str {
        match self {
            RepositoryKind::ImageRepo => "Image repository",
            RepositoryKind::Director => "Director",
        }
    }
}

/// The roles that change through a ceremony.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OfflineRole {
    Root,
    Targets,
}

impl OfflineRole {
    pub fn name(self) -> &'static str {
        match self {
            OfflineRole::Root => "root",
            OfflineRole::Targets => "targets",
        }
    }
}

/// A proposed new version of an offline role, as written to `proposal.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Format version of this file (1).
    pub ferry_proposal: u32,
    pub repository: RepositoryKind,
    pub role: OfflineRole,
    /// The canonical JSON of the new `signed` part: exactly the bytes every holder signs.
    pub canonical: String,
    /// The signed metadata this version replaces (absent for a first version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// For targets: the signed root whose targets role must sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root: Option<String>,
}

/// The documents inside a proposal, parsed (their signatures are not what a proposal is about:
/// the holders' detached signatures are).
#[derive(Debug, Clone)]
pub(crate) enum Contents {
    Root {
        new: Box<Root>,
        previous: Option<Box<Root>>,
    },
    Targets {
        new: Box<Targets>,
        previous: Option<Box<Targets>>,
        root: Box<Root>,
    },
}

impl Proposal {
    /// A proposal for root `new`, replacing the signed root `previous` (None: a first root).
    pub fn root(repository: RepositoryKind, new: &Root, previous: Option<&[u8]>) -> Result<Self> {
        Self::build(repository, OfflineRole::Root, new, previous, None)
    }

    /// A proposal for top-level targets `new`, replacing the signed `previous` (None: version
    /// 1), to be signed by the targets role of the signed root `root`.
    pub fn targets(
        repository: RepositoryKind,
        new: &Targets,
        previous: Option<&[u8]>,
        root: &[u8],
    ) -> Result<Self> {
        Self::build(repository, OfflineRole::Targets, new, previous, Some(root))
    }

    fn build<T: serde::Serialize>(
        repository: RepositoryKind,
        role: OfflineRole,
        new: &T,
        previous: Option<&[u8]>,
        root: Option<&[u8]>,
    ) -> Result<Self> {
        let text = |bytes: &[u8], what: &str| {
            String::from_utf8(bytes.to_vec())
                .map_err(|_| proposal_error(format!("{what} is not UTF-8 JSON")))
        };
        let canonical = cjson::to_vec(new).map_err(|e| Error::malformed(role.name(), e))?;
        let proposal = Proposal {
            ferry_proposal: FORMAT,
            repository,
            role,
            canonical: text(&canonical, "the new metadata")?,
            replaces: previous
                .map(|b| text(b, "the replaced metadata"))
                .transpose()?,
            trusted_root: root.map(|b| text(b, "the trusted root")).transpose()?,
        };
        proposal.contents()?;
        Ok(proposal)
    }

    /// Parse and check a proposal file. Everything later steps rely on is checked here: the
    /// signed part is canonical, versions go up by one, roles are where they belong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_PROPOSAL_BYTES {
            return Err(Error::TooLong {
                what: "proposal".into(),
                limit: MAX_PROPOSAL_BYTES as u64,
            });
        }
        let value = crate::strict_json::value_from_slice(bytes)
            .map_err(|e| proposal_error(format!("not a proposal file: {e}")))?;
        let proposal: Proposal = serde_json::from_value(value)
            .map_err(|e| proposal_error(format!("not a proposal file: {e}")))?;
        if proposal.ferry_proposal != FORMAT {
            return Err(proposal_error(format!(
                "format version {} is not supported (expected {FORMAT})",
                proposal.ferry_proposal
            )));
        }
        proposal.contents()?;
        Ok(proposal)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| proposal_error(e.to_string()))?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// SHA-256 (hex) of the proposal's canonical JSON: what a detached signature names, so a
    /// proposal edited after it was signed is caught at merge.
    pub fn digest(&self) -> Result<String> {
        let bytes = cjson::to_vec(self).map_err(|e| proposal_error(e.to_string()))?;
        Ok(hex::encode(Sha256::digest(&bytes)))
    }

    /// The version the proposal would make.
    pub fn version(&self) -> Result<u64> {
        Ok(match self.contents()? {
            Contents::Root { new, .. } => new.version,
            Contents::Targets { new, .. } => new.version,
        })
    }

    /// Who must sign: for a root, the current root's root role (unless this is version 1) and
    /// the new root's; for targets, the trusted root's targets role.
    pub fn requirements(&self) -> Result<Vec<Requirement>> {
        Ok(match self.contents()? {
            Contents::Root { new, previous } => {
                let mut out = Vec::new();
                if let Some(previous) = previous {
                    out.push(Requirement::of_root(
                        &previous,
                        RoleType::Root,
                        format!("root v{} (current)", previous.version),
                    )?);
                }
                out.push(Requirement::of_root(
                    &new,
                    RoleType::Root,
                    format!("root v{} (new)", new.version),
                )?);
                out
            }
            Contents::Targets { root, .. } => vec![Requirement::of_root(
                &root,
                RoleType::Targets,
                format!("targets keys of root v{}", root.version),
            )?],
        })
    }

    pub(crate) fn contents(&self) -> Result<Contents> {
        let canonical = self.canonical.as_bytes();
        let role = self.role.name();
        let value = crate::strict_json::value_from_slice(&escape_controls(canonical))
            .map_err(|e| proposal_error(format!("the new {role} is not JSON: {e}")))?;
        let again = cjson::to_vec(&value).map_err(|e| Error::malformed(role, e))?;
        if again != canonical {
            return Err(proposal_error(format!(
                "the new {role} is not in canonical JSON form; expected the exact bytes to sign"
            )));
        }
        let envelope =
            |signed: serde_json::Value| serde_json::json!({"signed": signed, "signatures": []});
        match self.role {
            OfflineRole::Root => {
                let new = Parsed::<Root>::from_value(envelope(value))?.signed;
                let previous = match &self.replaces {
                    Some(text) => Some(Parsed::<Root>::from_bytes(text.as_bytes())?.signed),
                    None => None,
                };
                if self.trusted_root.is_some() {
                    return Err(proposal_error(
                        "a root proposal carries no trusted_root; expected only replaces".into(),
                    ));
                }
                check_version(role, new.version, previous.as_ref().map(|p| p.version))?;
                Ok(Contents::Root {
                    new: Box::new(new),
                    previous: previous.map(Box::new),
                })
            }
            OfflineRole::Targets => {
                let new = Parsed::<Targets>::from_value(envelope(value))?.signed;
                let previous = match &self.replaces {
                    Some(text) => Some(Parsed::<Targets>::from_bytes(text.as_bytes())?.signed),
                    None => None,
                };
                let root = self.trusted_root.as_ref().ok_or_else(|| {
                    proposal_error(
                        "a targets proposal must carry the trusted_root that authorises it".into(),
                    )
                })?;
                let root = Parsed::<Root>::from_bytes(root.as_bytes())?.signed;
                check_version(role, new.version, previous.as_ref().map(|p| p.version))?;
                Ok(Contents::Targets {
                    new: Box::new(new),
                    previous: previous.map(Box::new),
                    root: Box::new(root),
                })
            }
        }
    }
}

/// Canonical JSON (OLPC) leaves control characters raw inside strings (the newlines of a PEM
/// public key), which no strict JSON parser takes. It has no whitespace outside strings, so
/// every control byte is inside one and can be escaped for parsing; the result is checked to
/// canonicalise back to exactly the original bytes.
pub(crate) fn escape_controls(canonical: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !canonical.iter().any(|b| *b < 0x20) {
        return std::borrow::Cow::Borrowed(canonical);
    }
    let mut out = Vec::with_capacity(canonical.len() + 16);
    for &b in canonical {
        if b < 0x20 {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn check_version(role: &str, new: u64, previous: Option<u64>) -> Result<()> {
    let expected = previous.map_or(1, |p| p + 1);
    if new != expected {
        return Err(proposal_error(format!(
            "the new {role} is version {new}; expected {expected} (one above the version it replaces)"
        )));
    }
    Ok(())
}

pub(crate) fn proposal_error(reason: String) -> Error {
    Error::Proposal { reason }
}
