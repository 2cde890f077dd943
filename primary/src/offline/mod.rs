//! Offline updates (Uptane PURE-2, uptane/pures `pure2.md`): `ferry-primary offline --bundle
//! DIR|FILE.tar` installs a bundle from a stick, with no network.
//!
//! 1. The verified time: the system clock (or `--not-before`, only ever later), never below
//!    the latest time the vehicle verified ([`ferry_core::uptane::verified_time`]).
//! 2. The bundle's name is its one offline-update targets file in
//!    `.well-known/metadata/director/` (`bundle.json`, informational, must agree).
//! 3. Steps 2-4 ([`verify_offline_director`]): the Director roots on the stick from the root
//!    this Primary trusts, the newer of the kept and the stick's offline-update snapshot
//!    (rollback, freeze), `NAME.json` as that snapshot lists it, signed by the
//!    offline-update-targets role, one image per hardwareId of this vehicle's ECUs.
//! 4. Step 5: nothing for any ECU, or every ECU already runs its image: done (a newer offline
//!    snapshot is still kept).
//! 5. Steps 6-8 ([`Workflow::refresh_offline`]) for the Image repository from the root this
//!    Primary trusts, then step 9 for every image of the bundle ([`match_offline_image`]) and
//!    again for each ECU's with its release counters ([`match_assignment`]); depends.
//! 6. What the vehicle trusts is kept only now, once everything passed; then every ECU is sent
//!    the same metadata (a full Secondary runs the same procedure for itself, a partial one
//!    checks its entry by the offline-update-targets key it pins), each image is read once
//!    from the stick and streamed to every ECU it is for, hashed by each as it arrives, and
//!    installed only once every ECU is ready ([`crate::cycle::deliver`], as online).
//! 7. A receipt ([`receipt`]) is written to the stick and kept for the next online cycle.

pub mod receipt;
pub(crate) mod source;
pub mod stick;
pub mod watch;

use crate::config::Config;
use crate::cycle::{
    collect_reports, deliver, fresh_nonce, let_secondary_refuse, open_secondaries, runs, settle,
    stop, CycleResult, Planned, Settled, Stop,
};
use crate::distribute::EcuLink;
use crate::error::{io_at, Error, Result};
use crate::fetch::{Fetcher, ReadSink, SinkStop};
use crate::own_ecu::OwnEcu;
use crate::repos::ensure_root;
use crate::store::MetadataStore;
use crate::updater::versioned_root;
use chrono::{DateTime, Utc};
use ferry_core::provides::check_depends;
use ferry_core::refresh::{Limits, MetadataSource, Workflow};
use ferry_core::uptane::offline::{match_offline_image, verify_offline_director, OFFLINE_SNAPSHOT};
use ferry_core::uptane::{match_assignment, verified_time, EcuIdentity, Staged};
use ferry_core::Clock;
use ferry_secondary::{Bundle, OfflineBundle, RepoBundle};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use source::StickSource;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use stick::Stick;

/// The Director's metadata in a bundle.
pub const DIRECTOR_DIR: &str = ".well-known/metadata/director";
/// The Image repository's metadata in a bundle.
pub const IMAGE_DIR: &str = ".well-known/metadata/image-repo";
/// The images, each under its target name (`/` as subdirectories).
pub const IMAGES_DIR: &str = ".well-known/images";
/// The bundle's informational index.
pub const INDEX: &str = "bundle.json";

/// How an offline install may be run.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineOptions {
    /// A time the verification must not be earlier than (a workshop clock, for an ECU whose
    /// own clock was reset). It can only make the time later: the latest of it, the clock
    /// and the vehicle's last verified time is used, so it can never revive an expired
    /// bundle.
    pub not_before: Option<DateTime<Utc>>,
}

/// What an offline install did (`offline --json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfflineReport {
    /// The bundle as given.
    pub bundle: String,
    #[serde(default)]
    pub name: Option<String>,
    /// RFC 3339: when it ran, and the time it verified at.
    pub time: String,
    pub verified_time: String,
    pub result: CycleResult,
    pub detail: String,
    /// ECU serial → target installed.
    pub installed: BTreeMap<String, String>,
    /// Where the receipt was written, or why it was not.
    #[serde(default)]
    pub receipt: Option<String>,
    #[serde(default)]
    pub receipt_error: Option<String>,
}

/// An offline install that did not end well, with its report when it got as far as one.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct OfflineError {
    pub error: Error,
    pub report: Option<Box<OfflineReport>>,
}

impl From<Error> for OfflineError {
    fn from(error: Error) -> Self {
        OfflineError {
            error,
            report: None,
        }
    }
}

/// What the checks found out, for the receipt, whatever their outcome.
#[derive(Debug, Default)]
struct Trail {
    digest: BTreeMap<String, String>,
    version: Option<u64>,
    /// ECU serial → the bundle's image for it.
    assigned: BTreeMap<String, String>,
}

/// Install the bundle at `path` (a directory or a `.tar`) on every ECU of the vehicle.
pub fn run_offline(
    config: &Config,
    path: &Path,
    clock: &dyn Clock,
    options: OfflineOptions,
) -> std::result::Result<OfflineReport, OfflineError> {
    let stick = Stick::open(path)?;
    let name = bundle_name(&stick)?;
    tracing::info!(bundle = %path.display(), name, "offline bundle");
    let mut own = OwnEcu::open(config.own_ecu_config()?, clock.now())?;
    let now = clock.now();
    let now = options.not_before.map_or(now, |t| t.max(now));
    let at = verified_time(now, own.verified_time()?);
    let mut secondaries = open_secondaries(config)?;
    let mut trail = Trail::default();
    let update = {
        let mut ecus: Vec<&mut dyn EcuLink> = vec![&mut own];
        ecus.extend(secondaries.iter_mut().map(|s| s as &mut dyn EcuLink));
        offline_update(config, &stick, &name, &mut ecus, clock, at, &mut trail)
    };
    let Settled {
        result,
        detail,
        installed,
        failure,
    } = settle(&mut own, update);

    // The receipt: every ECU's signed report, as an online cycle would send them.
    let mut ecus = BTreeMap::new();
    for serial in config.serials() {
        let target = trail.assigned.get(&serial).cloned();
        let outcome = match (&target, installed.get(&serial)) {
            (_, Some(_)) => "success",
            (None, None) => "no-image",
            (Some(_), None) if failure.is_none() => "up-to-date",
            (Some(_), None) => "not-installed",
        };
        ecus.insert(
            serial,
            receipt::EcuOutcome {
                target,
                result: outcome.to_owned(),
            },
        );
    }
    let outcome = receipt::BundleOutcome {
        name: name.clone(),
        digest: trail.digest,
        version: trail.version,
        result,
        detail: detail.clone(),
        verified_time: at.to_rfc3339(),
        ecus,
    };
    let nonce = fresh_nonce();
    let written = collect_reports(&mut own, &mut secondaries, &nonce, clock).and_then(|reports| {
        let bytes = receipt::sign(config, own.serial(), own.signer(), &reports, &outcome)?;
        // Kept first: a stick pulled out (or read-only) must not lose the result.
        receipt::keep(config, &bytes)?;
        stick
            .receipt_dir()?
            .write_next(&receipt::stem(&config.vin), &bytes)
    });
    let (receipt, receipt_error) = match written {
        Ok(path) => {
            tracing::info!(receipt = %path.display(), "receipt written");
            (Some(path.display().to_string()), None)
        }
        Err(e) => {
            tracing::error!(error = %e, "no receipt written to the bundle");
            (None, Some(e.to_string()))
        }
    };
    let report = OfflineReport {
        bundle: path.display().to_string(),
        name: Some(name),
        time: clock.now().to_rfc3339(),
        verified_time: at.to_rfc3339(),
        result,
        detail,
        installed,
        receipt,
        receipt_error,
    };
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        crate::store::write_atomic(&config.last_offline_file(), &json)?;
    }
    match failure {
        Some(error) => Err(OfflineError {
            error,
            report: Some(Box::new(report)),
        }),
        None => Ok(report),
    }
}

/// The bundle's name: its one offline-update targets file (every file of the Director's
/// directory but the roots and the offline-update snapshot). `bundle.json`, when present
/// and readable, must name the same.
fn bundle_name(stick: &Stick) -> Result<String> {
    if !stick.has_dir(DIRECTOR_DIR)? {
        return Err(Error::BundleMissing {
            path: DIRECTOR_DIR.into(),
        });
    }
    let snapshot = format!("{OFFLINE_SNAPSHOT}.json");
    let names: Vec<String> = stick
        .list(DIRECTOR_DIR)?
        .into_iter()
        .filter(|f| *f != snapshot && !is_root_file(f))
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    let [name] = &names[..] else {
        return Err(Error::BundleUnsafe {
            path: DIRECTOR_DIR.into(),
            reason: format!(
                "holds {} offline-update targets files ({}); PURE-2 bundles carry exactly one",
                names.len(),
                names.join(", ")
            ),
        });
    };
    if stick.exists(INDEX)? {
        let index = stick.read(INDEX, stick::MAX_INDEX_BYTES)?;
        match serde_json::from_slice::<serde_json::Value>(&index) {
            Ok(index) => {
                if let Some(listed) = index.get("name").and_then(|n| n.as_str()) {
                    if listed != name {
                        return Err(Error::BundleUnsafe {
                            path: INDEX.into(),
                            reason: format!(
                                "names bundle {listed:?}, but its offline-update targets file is {name}.json"
                            ),
                        });
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "bundle.json is not JSON; it is only informational")
            }
        }
    }
    Ok(name.clone())
}

/// `N.root.json`.
fn is_root_file(file: &str) -> bool {
    file.strip_suffix(".root.json")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Everything before the install: PURE-2 steps 2-9, depends, and the metadata every ECU is
/// sent. Kept metadata changes only if all of it passed.
struct Checked {
    plan: Vec<Planned>,
    bundle: Vec<u8>,
}

fn offline_update(
    config: &Config,
    stick: &Stick,
    name: &str,
    ecus: &mut [&mut dyn EcuLink],
    clock: &dyn Clock,
    at: DateTime<Utc>,
    trail: &mut Trail,
) -> std::result::Result<BTreeMap<String, String>, Stop> {
    let label = format!("offline bundle {name}");
    let director_store = MetadataStore::new(config.director_store());
    let image_store = MetadataStore::new(config.image_store());
    for (store, pinned) in [
        (&director_store, &config.director.root),
        (&image_store, &config.image_repo.root),
    ] {
        ensure_root(store, pinned).map_err(stop(&label))?;
    }
    let mut director = StickSource::new(stick, DIRECTOR_DIR, &director_store);
    let mut image = StickSource::new(stick, IMAGE_DIR, &image_store);
    let checked = check(
        config,
        name,
        &label,
        &mut director,
        &mut image,
        ecus,
        at,
        trail,
        clock,
    );
    if let Some(bytes) = director.fetched.get(&format!("{name}.json")) {
        trail
            .digest
            .insert("sha256".into(), hex::encode(sha2::Sha256::digest(bytes)));
    }
    let Checked { plan, bundle } = checked?;
    if plan.is_empty() {
        return Ok(BTreeMap::new());
    }
    let fetcher = StickFetcher { stick };
    deliver(ecus, &plan, &bundle, &fetcher, clock, &|p: &Planned| {
        let target = ferry_core::TargetName::new(p.matched.assignment.target_name.as_str())?;
        Ok(format!("{IMAGES_DIR}/{target}"))
    })
}

#[allow(clippy::too_many_arguments)]
fn check(
    config: &Config,
    name: &str,
    label: &str,
    director: &mut StickSource<'_>,
    image: &mut StickSource<'_>,
    ecus: &mut [&mut dyn EcuLink],
    at: DateTime<Utc>,
    trail: &mut Trail,
    clock: &dyn Clock,
) -> std::result::Result<Checked, Stop> {
    let limits = Limits::default();
    let load_root = |store: &MetadataStore| -> Result<Vec<u8>> {
        store
            .load("root")?
            .ok_or_else(|| Error::NoTrustedRoot(store.dir().to_owned()))
    };

    // Steps 2-4, for every ECU of the vehicle by its hardwareId.
    let mut identities = Vec::new();
    for ecu in ecus.iter_mut() {
        let serial = ecu.serial().to_owned();
        let hardware_id = ecu.hardware_id().map_err(stop(&serial))?;
        identities.push((serial, hardware_id));
    }
    let ids: Vec<EcuIdentity<'_>> = identities
        .iter()
        .map(|(serial, hardware_id)| EcuIdentity {
            serial,
            hardware_id,
        })
        .collect();
    let director_root =
        load_root(&MetadataStore::new(config.director_store())).map_err(stop(label))?;
    let mut director = Staged::new(director);
    let verified = verify_offline_director(&mut director, &director_root, name, &ids, &limits, at)
        .map_err(stop(label))?;
    trail.version = Some(verified.targets.version);
    trail.assigned = verified
        .assignments
        .iter()
        .map(|a| (a.ecu_serial.clone(), a.target_name.clone()))
        .collect();

    // Step 5: nothing to install anywhere.
    let mut statuses = Vec::new();
    for ecu in ecus.iter_mut() {
        let serial = ecu.serial().to_owned();
        statuses.push(ecu.status().map_err(stop(&serial))?);
    }
    let index = |serial: &str| ecus.iter().position(|e| e.serial() == serial);
    let todo: Vec<(usize, &ferry_core::uptane::EcuAssignment)> = verified
        .assignments
        .iter()
        .filter_map(|a| index(&a.ecu_serial).map(|i| (i, a)))
        .filter(|(i, a)| !runs(&statuses[*i], a))
        .collect();
    if todo.is_empty() {
        tracing::info!(
            bundle = name,
            "no update: the bundle has nothing this vehicle does not run"
        );
        director.commit().map_err(stop(label))?;
        return Ok(Checked {
            plan: Vec::new(),
            bundle: Vec::new(),
        });
    }

    // Steps 6-8, then step 9 for every image the bundle lists.
    let image_root = load_root(&MetadataStore::new(config.image_store())).map_err(stop(label))?;
    let mut image = Staged::new(image);
    let mut set = Workflow::new(&mut image, &limits)
        .refresh_offline(&image_root, at)
        .map_err(stop(label))?;
    let mut found = BTreeMap::new();
    for target in verified.targets.targets.keys() {
        let hit = Workflow::new(&mut image, &limits)
            .find_target(&mut set, target)
            .map_err(stop(target))?;
        match_offline_image(&verified.targets, target, hit.as_ref())
            .map_err(|e| stop(target)(e.into()))?;
        found.insert(target.clone(), hit);
    }
    let mut plan = Vec::new();
    let mut unmet = None;
    for (i, a) in todo {
        let target = a.target_name.as_str();
        let hit = found.get(target).cloned().flatten();
        let matched = match_assignment(
            a,
            hit.as_ref(),
            &identities[i].1,
            &statuses[i].release_counters,
        )
        .map_err(|e| stop(target)(e.into()))?;
        let hit = hit
            .ok_or(ferry_core::Error::Order(
                "matched a target that was not found",
            ))
            .map_err(|e| stop(target)(e.into()))?;
        if matched.target.length > config.download.max_image_bytes {
            return Err(stop(target)(Error::TooLarge {
                url: target.to_owned(),
                limit: config.download.max_image_bytes,
            }));
        }
        if let Err(e) = check_depends(&matched.custom.depends, &statuses[i].provides) {
            unmet.get_or_insert((i, target.to_owned(), e));
            continue;
        }
        plan.push(Planned {
            ecu: i,
            matched,
            found: hit,
        });
    }

    let bundle = secondary_bundle(name, &verified.set, &set, &mut director, &mut image)
        .map_err(stop(label))?;
    if let Some((i, target, e)) = unmet {
        // As online: a Secondary checks the depends itself and records its own refusal.
        let mut refused = stop(&target)(e.into());
        if ecus[i].serial() != config.ecu.serial {
            refused.recorded_by_secondary =
                let_secondary_refuse(&mut *ecus[i], &target, Ok(bundle.clone()), clock);
        }
        return Err(refused);
    }
    // Everything passed: what the vehicle trusts is kept now.
    director.commit().map_err(stop(label))?;
    image.commit().map_err(stop(label))?;
    Ok(Checked { plan, bundle })
}

/// The metadata every ECU is sent: the roots newer than version 1 (an ECU walks from its own),
/// the offline-update snapshot and targets the Primary verified, and the Image repository's
/// snapshot, top-level targets and each delegated role used, as now trusted.
fn secondary_bundle(
    name: &str,
    director_set: &ferry_core::TrustedSet,
    image_set: &ferry_core::TrustedSet,
    director: &mut Staged<'_, StickSource<'_>>,
    image: &mut Staged<'_, StickSource<'_>>,
) -> Result<Vec<u8>> {
    let text = |what: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| {
            Error::from(ferry_core::Error::Malformed {
                role: what.to_owned(),
                reason: "metadata is not UTF-8".into(),
            })
        })
    };
    let missing = |what: &str| Error::BundleMissing {
        path: what.to_owned(),
    };
    let roots = |staged: &mut Staged<'_, StickSource<'_>>, latest: u64| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for version in 2..=latest {
            let file = format!("{version}.root.json");
            let bytes = match staged.source().fetched.get(&file) {
                Some(bytes) => Some(bytes.clone()),
                // Accepted by an earlier run: kept as N.root.
                None => staged.load(&versioned_root(version))?,
            };
            if let Some(bytes) = bytes {
                out.push(text(&file, bytes)?);
            }
        }
        Ok(out)
    };
    let director_roots = roots(director, director_set.root().version)?;
    // The newer of the kept and the stick's, as verified.
    let snapshot = director
        .load(OFFLINE_SNAPSHOT)?
        .ok_or_else(|| missing(OFFLINE_SNAPSHOT))?;
    let targets_file = format!("{name}.json");
    let targets = director
        .source()
        .fetched
        .get(&targets_file)
        .cloned()
        .ok_or_else(|| missing(&targets_file))?;
    let mut delegations = BTreeMap::new();
    let used: Vec<String> = image.source().used_roles.clone();
    for role in used.iter().filter(|r| *r != "targets") {
        if let Some(bytes) = image.load(role)? {
            delegations.insert(role.clone(), text(role, bytes)?);
        }
    }
    let image_roots = roots(image, image_set.root().version)?;
    let image_snapshot = image.load("snapshot")?.ok_or_else(|| missing("snapshot"))?;
    let image_targets = image.load("targets")?.ok_or_else(|| missing("targets"))?;
    let bundle = Bundle {
        director: RepoBundle {
            root: director_roots,
            ..RepoBundle::default()
        },
        image: Some(RepoBundle {
            root: image_roots,
            timestamp: None,
            snapshot: Some(text("snapshot", image_snapshot)?),
            targets: text("targets", image_targets)?,
            delegations,
        }),
        offline: Some(OfflineBundle {
            name: name.to_owned(),
            snapshot: text(OFFLINE_SNAPSHOT, snapshot)?,
            targets: text(&targets_file, targets)?,
        }),
    };
    serde_json::to_vec(&bundle).map_err(|e| {
        ferry_core::Error::Malformed {
            role: "metadata bundle".into(),
            reason: e.to_string(),
        }
        .into()
    })
}

/// PURE-2 "Additional step for full verification during an online update", after the
/// Director's metadata of this cycle verified: fetch the Director's latest offline-update
/// snapshot (`GET .../metadata/offline-update-snapshot.json`) and keep it when it verifies
/// under the Director root's offline-update-snapshot role and is newer. A Director root
/// without offline roles, a 404 (a Director that has none), a download that fails or a
/// snapshot that does not verify is logged and the cycle goes on; a rollback is an error
/// (the cycle is aborted, pure2.md step 3).
pub(crate) fn refresh_offline_snapshot(
    config: &Config,
    director: &crate::updater::Updater<crate::fetch::HttpFetcher>,
) -> Result<()> {
    let root = director
        .trusted()
        .ok_or(ferry_core::Error::Order(
            "offline snapshot before the Director refresh",
        ))?
        .root();
    if !root.has_offline_roles() {
        return Ok(());
    }
    let url = format!(
        "{}{OFFLINE_SNAPSHOT}.json",
        crate::repos::director_metadata_url(config)
    );
    let fetched = director
        .fetcher()
        .fetch_bytes(&url, Limits::default().snapshot_max);
    keep_fetched_offline_snapshot(root, director.store(), fetched)
}

/// What [`refresh_offline_snapshot`] does with what it fetched (the rule is core's).
fn keep_fetched_offline_snapshot(
    root: &ferry_core::metadata::Root,
    store: &MetadataStore,
    fetched: Result<Vec<u8>>,
) -> Result<()> {
    use ferry_core::uptane::offline::{check_fetched_offline_snapshot, FetchedOfflineSnapshot};
    let offered = match fetched {
        Ok(bytes) => bytes,
        Err(Error::HttpStatus { status: 404, .. }) => {
            tracing::debug!("the Director serves no offline-update snapshot");
            return Ok(());
        }
        Err(e) => {
            tracing::warn!(error = %e, "offline-update snapshot not fetched; carrying on");
            return Ok(());
        }
    };
    let kept = store.load(OFFLINE_SNAPSHOT)?;
    match check_fetched_offline_snapshot(root, kept.as_deref(), &offered)? {
        FetchedOfflineSnapshot::Newer(snapshot) => {
            tracing::info!(
                version = snapshot.version,
                "newer offline-update snapshot kept"
            );
            store.persist(OFFLINE_SNAPSHOT, &offered)
        }
        FetchedOfflineSnapshot::Unchanged => Ok(()),
        FetchedOfflineSnapshot::Discarded(e) => {
            tracing::warn!(error = %e, "offline-update snapshot from the Director discarded; carrying on");
            Ok(())
        }
    }
}

/// Images read from the stick, as a download would deliver them: at most the signed length
/// (one byte more shows it was passed).
#[derive(Debug)]
struct StickFetcher<'a> {
    stick: &'a Stick,
}

impl Fetcher for StickFetcher<'_> {
    fn fetch(
        &self,
        url: &str,
        max_len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        let mut buf = vec![0u8; 1 << 20];
        let mut seen: u64 = 0;
        self.fetch_reading(url, max_len, &mut |body| {
            let n = body.read(&mut buf).map_err(SinkStop::Read)?;
            let within = usize::try_from(max_len.saturating_sub(seen)).map_or(n, |w| w.min(n));
            seen += n as u64;
            if within > 0 {
                sink(&buf[..within]).map_err(SinkStop::Refused)?;
            }
            Ok(n)
        })
    }

    fn fetch_reading(&self, url: &str, max_len: u64, sink: &mut ReadSink<'_>) -> Result<u64> {
        let (mut reader, _) = self.stick.open_file(url)?;
        let mut total: u64 = 0;
        loop {
            let room = max_len.saturating_sub(total).saturating_add(1);
            let n = match sink(&mut (&mut reader).take(room)) {
                Ok(n) => n,
                Err(SinkStop::Read(e)) => return Err(io_at(url)(e)),
                Err(SinkStop::Refused(e)) => return Err(e),
            };
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            if total > max_len {
                return Err(Error::BundleTooLarge {
                    path: url.to_owned(),
                    limit: max_len,
                });
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferry_core::metadata::{Expires, MetaFile, OfflineSnapshot, RoleKeys, Root, Signed};
    use ferry_keys::{KeyKind, PrivateKey};

    fn snapshot(key: &PrivateKey, version: u64, workshop: u64) -> Vec<u8> {
        let mut signed = Signed::new(OfflineSnapshot {
            type_: "offline-update-snapshot".into(),
            expires: Expires::after(chrono::Utc::now(), chrono::Duration::days(30)),
            meta: [("workshop.json".to_owned(), MetaFile::new(workshop))].into(),
            spec_version: ferry_core::metadata::SPEC_VERSION.into(),
            version,
            extra: BTreeMap::new(),
        });
        signed.sign(key).unwrap();
        signed.to_bytes().unwrap()
    }

    /// pure2.md "Additional step" as an online cycle applies it to what it fetched.
    #[test]
    fn a_fetched_offline_snapshot_is_kept_ignored_or_aborts_the_cycle() {
        let (online, offline) = (
            PrivateKey::generate(KeyKind::Ed25519).unwrap(),
            PrivateKey::generate(KeyKind::Ed25519).unwrap(),
        );
        let role = |k: &PrivateKey| RoleKeys {
            keyids: vec![k.key_id().clone()],
            threshold: 1,
            extra: BTreeMap::new(),
        };
        let root = Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: Expires::after(chrono::Utc::now(), chrono::Duration::days(30)),
            keys: [&online, &offline]
                .iter()
                .map(|k| (k.key_id().clone(), k.public_key().clone()))
                .collect(),
            roles: [
                ("root", &online),
                ("targets", &online),
                ("snapshot", &online),
                ("timestamp", &online),
                ("offline-update-snapshot", &offline),
                ("offline-update-targets", &offline),
            ]
            .into_iter()
            .map(|(r, k)| (r.to_owned(), role(k)))
            .collect(),
            spec_version: ferry_core::metadata::SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::new(dir.path());
        let kept = || store.load(OFFLINE_SNAPSHOT).unwrap();

        // A Director with no offline snapshot (404), or out of reach: the cycle goes on.
        let absent = Err(Error::HttpStatus {
            url: "u".into(),
            status: 404,
        });
        keep_fetched_offline_snapshot(&root, &store, absent).unwrap();
        let broken = Err(Error::Transport {
            url: "u".into(),
            reason: "reset".into(),
        });
        keep_fetched_offline_snapshot(&root, &store, broken).unwrap();
        assert!(kept().is_none());

        let v2 = snapshot(&offline, 2, 2);
        keep_fetched_offline_snapshot(&root, &store, Ok(v2.clone())).unwrap();
        assert_eq!(kept().unwrap(), v2);
        // Signed by the wrong key: discarded, the cycle goes on, the kept one stays.
        let forged = snapshot(&online, 9, 9);
        keep_fetched_offline_snapshot(&root, &store, Ok(forged)).unwrap();
        assert_eq!(kept().unwrap(), v2);
        // A rollback aborts the cycle; nothing changes.
        let older = snapshot(&offline, 1, 2);
        let err = keep_fetched_offline_snapshot(&root, &store, Ok(older)).unwrap_err();
        assert!(err.to_string().contains("rollback check failed"), "{err}");
        let lower = snapshot(&offline, 3, 1);
        let err = keep_fetched_offline_snapshot(&root, &store, Ok(lower)).unwrap_err();
        assert!(err.to_string().contains("rollback check failed"), "{err}");
        assert_eq!(kept().unwrap(), v2);
    }

    #[test]
    fn root_files_are_told_from_a_bundle_named_like_one() {
        assert!(super::is_root_file("1.root.json"));
        assert!(super::is_root_file("12.root.json"));
        assert!(!super::is_root_file("root.json"));
        assert!(!super::is_root_file("x1.root.json"));
        assert!(!super::is_root_file("workshop.json"));
    }
}
