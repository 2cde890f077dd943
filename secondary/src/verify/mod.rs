//! Verifying a metadata bundle from the Primary, in DESIGN.md's order (Uptane 2.1.0
//! §5.4.4.2): time, Director root chain, timestamp, snapshot, targets, Director targets
//! checks, then the Image repository's root chain, timestamp, snapshot and top-level targets,
//! and this ECU's target matched against the Image repository's (its delegation path resolved
//! on demand). Or partial verification (§5.4.4.1): Director targets only, by a pinned key.
//!
//! Bundle wire format (JSON; every metadata file is the exact text the repository served):
//!
//! ```json
//! { "director": { "root": ["<2.root.json>", "<3.root.json>"], "timestamp": "<text>",
//!                 "snapshot": "<text>", "targets": "<text>" },
//!   "image":    { "root": [], "timestamp": "<text>", "snapshot": "<text>",
//!                 "targets": "<text>", "delegations": { "<role>": "<text>" } } }
//! ```
//!
//! `root` lists the roots newer than the ECU may trust, any order (each is verified as N+1);
//! `image` may be omitted in partial mode; in partial mode only `director.targets` is read.
//! Nothing is written here: the new trusted metadata comes back in [`Verification`] and is
//! committed by the caller once everything, depends included, is accepted.

mod partial;
mod source;

use crate::config::Anchors;
use crate::error::{Error, Result};
use crate::state::{MetadataChanges, Repo, State};
use chrono::{DateTime, Utc};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::metadata::TargetFile;
use ferry_core::refresh::{Limits, Workflow};
use ferry_core::uptane_checks::{director_assignments, match_image_target, VehicleEcus};
use partial::partial;
use serde::{Deserialize, Serialize};
use source::{root_version, BundleSource};
use std::collections::BTreeMap;

/// One repository's metadata in a bundle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepoBundle {
    #[serde(default)]
    pub root: Vec<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub snapshot: Option<String>,
    pub targets: String,
    #[serde(default)]
    pub delegations: BTreeMap<String, String>,
}

/// What the Primary sends an ECU: both repositories' metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub director: RepoBundle,
    #[serde(default)]
    pub image: Option<RepoBundle>,
}

/// This ECU's identity as the checks need it.
#[derive(Debug, Clone, Copy)]
pub struct Ecu<'a> {
    pub serial: &'a str,
    pub hardware_id: &'a str,
}

/// The update verified for this ECU. Only this module builds one, so an image can only be
/// received against a target that went through every check.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    target_name: String,
    target: TargetFile,
    custom: ImageCustom,
}

impl Assignment {
    pub fn target_name(&self) -> &str {
        &self.target_name
    }
    /// Signed length and every hash to check (both repositories', in full mode).
    pub fn target(&self) -> &TargetFile {
        &self.target
    }
    /// Domain, provides, depends and releaseCounter.
    pub fn custom(&self) -> &ImageCustom {
        &self.custom
    }
    /// The keys release counters are kept under: the target's name and the image's name, so
    /// neither an older file nor an older build of the same app under a new file name passes.
    pub fn counter_keys(&self) -> Vec<String> {
        counter_keys(&self.target_name, &self.custom)
    }
}

fn counter_keys(target: &str, custom: &ImageCustom) -> Vec<String> {
    let mut keys = vec![format!("target:{target}")];
    if let Some(name) = &custom.name {
        let domain = custom.domain.as_ref().map_or("", |d| d.as_str());
        keys.push(format!("image:{domain}:{name}"));
    }
    keys
}

/// A verified bundle: what to keep, and what (if anything) to install.
#[derive(Debug)]
pub struct Verification {
    pub changes: Vec<(Repo, MetadataChanges)>,
    pub assignment: Option<Assignment>,
    /// The time it verified at: never earlier than a time verified before.
    pub verified_at: DateTime<Utc>,
}

/// Verify `bytes` (a [`Bundle`]) against what `state` trusts, at `now` or the latest time
/// verified before, whichever is later.
pub fn verify_bundle(
    bytes: &[u8],
    state: &State,
    anchors: &Anchors,
    ecu: Ecu<'_>,
    now: DateTime<Utc>,
) -> Result<Verification> {
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| Error::Bundle(e.to_string()))?;
    let verified_at = state.verified_time()?.map_or(now, |t| t.max(now));
    match anchors {
        Anchors::Full {
            director_root,
            image_root,
        } => full(&bundle, state, director_root, image_root, ecu, verified_at),
        Anchors::Partial {
            director_targets_key,
        } => partial(&bundle, state, director_targets_key, ecu, verified_at),
    }
}

fn full(
    bundle: &Bundle,
    state: &State,
    director_root: &[u8],
    image_root: &[u8],
    ecu: Ecu<'_>,
    at: DateTime<Utc>,
) -> Result<Verification> {
    let limits = Limits::default();
    let mut director_changes = MetadataChanges::default();
    let root = trusted_root(state, Repo::Director, director_root, &mut director_changes)?;
    let mut source = BundleSource::new(
        Repo::Director,
        &bundle.director,
        state,
        &mut director_changes,
    )?;
    let director = Workflow::new(&mut source, &limits).refresh(&root, at)?;
    let targets = director
        .targets("targets")
        .ok_or(ferry_core::Error::Order("director targets not loaded"))?;
    let mine = director_assignments(targets, VehicleEcus::Unknown)?.remove(ecu.serial);

    let mut changes = vec![(Repo::Director, director_changes)];
    let image_bundle = match (&bundle.image, &mine) {
        (Some(image), _) => image,
        // Nothing to install and no Image metadata sent: nothing to match.
        (None, None) => {
            return Ok(Verification {
                changes,
                assignment: None,
                verified_at: at,
            })
        }
        (None, Some(_)) => {
            return Err(Error::NotInBundle {
                repo: "image",
                role: "metadata".into(),
            })
        }
    };
    let mut image_changes = MetadataChanges::default();
    let root = trusted_root(state, Repo::Image, image_root, &mut image_changes)?;
    let mut source = BundleSource::new(Repo::Image, image_bundle, state, &mut image_changes)?;
    let mut workflow = Workflow::new(&mut source, &limits);
    let mut image = workflow.refresh(&root, at)?;
    let assignment = match mine {
        None => None,
        Some(mine) => {
            let found = workflow
                .find_target(&mut image, &mine.target_name)?
                .ok_or_else(|| ferry_core::Error::NotInImageRepo {
                    target: mine.target_name.clone(),
                })?;
            let custom = found.target.image_custom(&mine.target_name)?;
            let floor = state.release_counter(&counter_keys(&mine.target_name, &custom))?;
            let matched = match_image_target(&mine, &found, ecu.hardware_id, floor)?;
            Some(Assignment {
                target_name: mine.target_name,
                target: matched.target,
                custom: matched.custom,
            })
        }
    };
    changes.push((Repo::Image, image_changes));
    Ok(Verification {
        changes,
        assignment,
        verified_at: at,
    })
}

/// The newest root `state` trusts, else the one shipped with the ECU, which then starts the
/// stored root chain (it is checked as self-signed by the trusted set like any other start).
fn trusted_root(
    state: &State,
    repo: Repo,
    shipped: &[u8],
    changes: &mut MetadataChanges,
) -> Result<Vec<u8>> {
    if let Some(root) = state.root(repo)? {
        return Ok(root);
    }
    let version = root_version(shipped).ok_or_else(|| {
        Error::Bundle(format!(
            "shipped {} root has no signed.version",
            repo.as_str()
        ))
    })?;
    changes.roots.push((version, shipped.to_vec()));
    Ok(shipped.to_vec())
}
