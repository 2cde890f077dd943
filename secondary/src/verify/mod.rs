//! Feeding a metadata bundle from the Primary to `ferry_core::uptane`, which decides: full
//! verification (§5.4.4.2: the Director's metadata as a set bound to this vehicle, then this
//! ECU's target matched against the Image repository's, its delegation path resolved on
//! demand) or partial verification (§5.4.4.1: Director targets only, by a pinned key). This
//! module only reads the bundle and the ECU's state and collects what is to be kept.
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
//!
//! A PURE-2 offline bundle (the Primary installing from a stick) adds `offline`, and then the
//! Director's side is the offline-update snapshot and targets, not timestamp, snapshot and
//! targets (`director.targets` is empty and ignored; `director.root` still lists the roots):
//!
//! ```json
//! { "director": { "root": ["<2.root.json>"], "targets": "" },
//!   "offline":  { "name": "workshop", "snapshot": "<offline-update-snapshot.json>",
//!                 "targets": "<workshop.json>" },
//!   "image":    { "root": [], "snapshot": "<text>", "targets": "<text>",
//!                 "delegations": { "<role>": "<text>" } } }
//! ```
//!
//! A full ECU runs PURE-2 steps 2-9 on it (`ferry_core::uptane::offline`), for itself; a
//! partial ECU checks `offline.targets` by its pinned offline-update-targets key.
//! Nothing is written here: the new trusted metadata comes back in `Verification` and is
//! committed by the caller once everything, depends included, is accepted.

mod source;

use crate::config::Anchors;
use crate::error::{Error, Result};
use crate::state::{MetadataChanges, Repo, State};
use chrono::{DateTime, Utc};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::metadata::TargetFile;
use ferry_core::refresh::{Limits, Workflow};
use ferry_core::uptane::offline::{
    verify_offline_director, verify_offline_partial, OFFLINE_SNAPSHOT,
};
use ferry_core::uptane::{
    counter_keys, match_assignment, verified_time, verify_director, verify_partial, EcuIdentity,
    Vehicle, VehicleEcus,
};
use serde::{Deserialize, Serialize};
use source::{root_version, BundleSource};
use std::collections::BTreeMap;

/// The role partial verification keeps: Director targets, under its own name so a later
/// switch to full verification never mistakes it for snapshot-checked metadata.
pub const PARTIAL_ROLE: &str = "targets (partial)";

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
    /// A PURE-2 offline update: the Director's offline-update metadata, in place of its
    /// timestamp, snapshot and targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<OfflineBundle>,
}

/// The Director's offline-update metadata of a PURE-2 bundle, exactly as on the stick (the
/// snapshot: the newer of the vehicle's and the stick's, as the Primary chose it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfflineBundle {
    /// The bundle's name: its offline-update targets file is `NAME.json`.
    pub name: String,
    pub snapshot: String,
    pub targets: String,
}

/// The role a partial ECU keeps an accepted offline-update targets file under (its version is
/// the floor for the same bundle next time).
pub fn partial_offline_role(name: &str) -> String {
    format!("offline-update targets {name} (partial)")
}

/// This ECU's identity as the checks need it.
pub type Ecu<'a> = EcuIdentity<'a>;

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
    /// The identities this image's release counter is kept under ([`counter_keys`]).
    pub fn counter_keys(&self) -> Vec<String> {
        counter_keys(&self.target_name, &self.custom)
    }
}

/// A verified bundle: what to keep, and what (if anything) to install.
#[derive(Debug)]
pub(crate) struct Verification {
    pub changes: Vec<(Repo, MetadataChanges)>,
    pub assignment: Option<Assignment>,
    /// The time it verified at: never earlier than a time verified before.
    pub verified_at: DateTime<Utc>,
}

/// Verify `bytes` (a [`Bundle`]) for this ECU of vehicle `vin` against what `state` trusts,
/// at `now` or the latest time verified before, whichever is later.
pub(crate) fn verify_bundle(
    bytes: &[u8],
    state: &State,
    anchors: &Anchors,
    vin: &str,
    ecu: Ecu<'_>,
    now: DateTime<Utc>,
) -> Result<Verification> {
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| Error::Bundle(e.to_string()))?;
    let at = verified_time(now, state.verified_time()?);
    let counters = state.release_counters()?;
    if let Some(offline) = &bundle.offline {
        return verify_offline(&bundle, offline, state, anchors, ecu, &counters, at);
    }
    match anchors {
        Anchors::Full {
            director_root,
            image_root,
        } => {
            let roots = (director_root.as_slice(), image_root.as_slice());
            full(&bundle, state, roots, vin, ecu, &counters, at)
        }
        Anchors::Partial {
            director_targets_key,
            ..
        } => {
            let targets = bundle.director.targets.as_bytes();
            let kept = state.metadata(Repo::Director, PARTIAL_ROLE)?;
            let mine = verify_partial(
                targets,
                director_targets_key,
                kept.as_deref(),
                vin,
                ecu,
                &counters,
                at,
            )
            .map_err(|e| Error::from(e).in_repo(DIRECTOR))?;
            let mut changes = MetadataChanges::default();
            changes.put.insert(PARTIAL_ROLE.into(), targets.to_vec());
            Ok(Verification {
                changes: vec![(Repo::Director, changes)],
                assignment: mine.map(|m| Assignment {
                    target_name: m.target_name,
                    target: m.target,
                    custom: m.custom,
                }),
                verified_at: at,
            })
        }
    }
}

/// How refusals name the repositories.
const DIRECTOR: &str = "Director";
const IMAGE: &str = "Image";

fn full(
    bundle: &Bundle,
    state: &State,
    (director_root, image_root): (&[u8], &[u8]),
    vin: &str,
    ecu: Ecu<'_>,
    counters: &BTreeMap<String, u64>,
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
    let vehicle = Vehicle {
        vin,
        ecus: VehicleEcus::Unknown,
    };
    let director = verify_director(&mut source, &root, vehicle, &limits, at)
        .map_err(|e| e.in_repo(DIRECTOR))?;
    let mine = director.into_assignments().remove(ecu.serial);

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
    let mut image = workflow.refresh(&root, at).map_err(|e| e.in_repo(IMAGE))?;
    let assignment = match mine {
        None => None,
        Some(mine) => {
            let found = workflow
                .find_target(&mut image, &mine.target_name)
                .map_err(|e| e.in_repo(IMAGE))?;
            let matched = match_assignment(&mine, found.as_ref(), ecu.hardware_id, counters)?;
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

/// A PURE-2 offline bundle: full verification runs the offline procedure for this ECU alone
/// (pure2.md lets a Secondary match only its own image); partial verification checks the
/// offline-update targets file by the pinned offline key. The VIN plays no part: offline
/// updates are directed by hardwareId.
fn verify_offline(
    bundle: &Bundle,
    offline: &OfflineBundle,
    state: &State,
    anchors: &Anchors,
    ecu: Ecu<'_>,
    counters: &BTreeMap<String, u64>,
    at: DateTime<Utc>,
) -> Result<Verification> {
    match anchors {
        Anchors::Partial {
            offline_targets_key,
            ..
        } => {
            let key = offline_targets_key
                .as_ref()
                .ok_or(Error::OfflineNotProvisioned)?;
            let role = partial_offline_role(&offline.name);
            let targets = offline.targets.as_bytes();
            let kept = state.metadata(Repo::Director, &role)?;
            let mine = verify_offline_partial(
                targets,
                &offline.name,
                key,
                kept.as_deref(),
                ecu,
                counters,
                at,
            )
            .map_err(|e| Error::from(e).in_repo(DIRECTOR))?;
            let mut changes = MetadataChanges::default();
            changes.put.insert(role, targets.to_vec());
            Ok(Verification {
                changes: vec![(Repo::Director, changes)],
                assignment: mine.map(|m| Assignment {
                    target_name: m.target_name,
                    target: m.target,
                    custom: m.custom,
                }),
                verified_at: at,
            })
        }
        Anchors::Full {
            director_root,
            image_root,
        } => {
            let limits = Limits::default();
            let mut director_changes = MetadataChanges::default();
            let root = trusted_root(state, Repo::Director, director_root, &mut director_changes)?;
            // The offline files play delegated roles of the bundle's Director side: the name
            // is checked by core never to be one of the top-level roles'.
            let director = RepoBundle {
                root: bundle.director.root.clone(),
                delegations: BTreeMap::from([
                    (OFFLINE_SNAPSHOT.to_owned(), offline.snapshot.clone()),
                    (offline.name.clone(), offline.targets.clone()),
                ]),
                ..RepoBundle::default()
            };
            let mut source =
                BundleSource::new(Repo::Director, &director, state, &mut director_changes)?;
            let verified =
                verify_offline_director(&mut source, &root, &offline.name, &[ecu], &limits, at)
                    .map_err(|e| e.in_repo(DIRECTOR))?;
            let mine = verified
                .assignments
                .into_iter()
                .find(|a| a.ecu_serial == ecu.serial);
            let mut changes = vec![(Repo::Director, director_changes)];
            let Some(mine) = mine else {
                return Ok(Verification {
                    changes,
                    assignment: None,
                    verified_at: at,
                });
            };
            let image_bundle = bundle.image.as_ref().ok_or(Error::NotInBundle {
                repo: "image",
                role: "metadata".into(),
            })?;
            let mut image_changes = MetadataChanges::default();
            let root = trusted_root(state, Repo::Image, image_root, &mut image_changes)?;
            let mut source =
                BundleSource::new(Repo::Image, image_bundle, state, &mut image_changes)?;
            let mut workflow = Workflow::new(&mut source, &limits);
            let mut image = workflow
                .refresh_offline(&root, at)
                .map_err(|e| e.in_repo(IMAGE))?;
            let found = workflow
                .find_target(&mut image, &mine.target_name)
                .map_err(|e| e.in_repo(IMAGE))?;
            let matched = match_assignment(&mine, found.as_ref(), ecu.hardware_id, counters)?;
            changes.push((Repo::Image, image_changes));
            Ok(Verification {
                changes,
                assignment: Some(Assignment {
                    target_name: mine.target_name,
                    target: matched.target,
                    custom: matched.custom,
                }),
                verified_at: at,
            })
        }
    }
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
