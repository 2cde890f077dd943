//! Key ceremonies. A change to an offline role (the root of either repository, the Image
//! repository's top-level targets) travels as a [`Proposal`]: the exact canonical bytes to be
//! signed, the metadata they replace, and (for targets) the root that authorises them. Each key
//! holder signs it on an air-gapped host into a [`DetachedSignature`]; [`Proposal::merge`]
//! checks every signature and every threshold (the current AND the new root's for a root) and
//! writes the signed metadata.
//!
//! Who must sign is always computed from the metadata inside the proposal, never read from a
//! field of it, so an edited list of signers cannot lower a threshold. Signatures are counted
//! by [`crate::verify`], the one place thresholds are counted.

mod changes;
mod file;
mod requirement;
mod signature;
mod summary;

pub use changes::RootChanges;
pub use file::{OfflineRole, Proposal, RepositoryKind, MAX_PROPOSAL_BYTES};
pub use requirement::{Requirement, RequirementStatus, SignatureVerdict, Status};
pub use signature::{DetachedSignature, MAX_SIGNATURE_BYTES};
pub use summary::{KeyChange, RoleChange, Summary, TargetChange};
