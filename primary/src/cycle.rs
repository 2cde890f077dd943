//! One update cycle (DESIGN.md "Verification", Uptane 2.1.0 §5.4.4.2): Director metadata,
//! Director targets checks, Image repository metadata, every Director target matched with the
//! Image repository's and its depends met — all before one byte of an image is downloaded;
//! then the metadata sent to every ECU, each image downloaded once (bounded, resumable) and
//! streamed to every ECU it is for as it arrives, installed only once every ECU is ready, and
//! finally every ECU's signed report sent to the Director in the signed vehicle manifest. A
//! refusal is recorded in the own ECU's report, naming the check, and the manifest is sent
//! all the same.

use crate::config::Config;
use crate::distribute::{EcuLink, EcuStatus, SecondaryClient};
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::own_ecu::OwnEcu;
use crate::repos;
use crate::stream::{self, Failure};
use ferry_core::manifest::InstallResult;
use ferry_core::manifest::{EcuVersionReport, VehicleManifest};
use ferry_core::metadata::Signed;
use ferry_core::provides::check_depends;
use ferry_core::uptane::{
    already_installed, match_assignment, EcuAssignment, MatchedTarget, Running, Vehicle,
    VehicleEcus,
};
use ferry_core::{Clock, FoundTarget};
use ferry_secondary::InstalledImage;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How a cycle ended, as `last_cycle.json` and `check --json` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CycleResult {
    /// Something was installed.
    Updated,
    /// Every ECU already ran what the Director assigns.
    UpToDate,
    /// A security check or an unmet depends stopped the update.
    Refused,
    /// Anything else: a repository out of reach, an install that failed.
    Failed,
}

impl std::fmt::Display for CycleResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CycleResult::Updated => "updated",
            CycleResult::UpToDate => "up-to-date",
            CycleResult::Refused => "refused",
            CycleResult::Failed => "failed",
        })
    }
}

/// What a cycle did, kept in `last_cycle.json` for `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleReport {
    /// RFC 3339.
    pub time: String,
    pub result: CycleResult,
    pub detail: String,
    /// ECU serial → target installed in this cycle.
    pub installed: BTreeMap<String, String>,
    pub nonce: String,
    pub manifest_sent: bool,
}

/// What a refusal in the metadata phases is recorded against.
pub(crate) const DIRECTOR: &str = "director metadata";
pub(crate) const IMAGE_REPO: &str = "image repository metadata";

/// Why the update part of a cycle stopped: the target it concerned, and the error.
pub(crate) struct Stop {
    pub(crate) target: String,
    pub(crate) error: Box<Error>,
    /// A Secondary whose target this was recorded the refusal in its own report; the own
    /// ECU's report must not claim it (the Director reads each ECU's report for its own
    /// assignments).
    pub(crate) recorded_by_secondary: bool,
}

pub(crate) fn stop(target: &str) -> impl FnOnce(Error) -> Stop + '_ {
    move |error| Stop {
        target: target.to_owned(),
        error: Box::new(error),
        recorded_by_secondary: false,
    }
}

/// A cycle that did not end well: the error, and the cycle's report when it got as far as
/// one (every refused or failed update does; a config or state that cannot be opened not).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct CycleError {
    pub error: Error,
    pub report: Option<Box<CycleReport>>,
}

impl From<Error> for CycleError {
    fn from(error: Error) -> Self {
        CycleError {
            error,
            report: None,
        }
    }
}

/// Run one cycle. Returns the report, or the first error after the manifest was (tried to
/// be) sent, with the report: the update's refusal takes precedence over a manifest failure.
pub fn run_cycle(
    config: &Config,
    clock: &dyn Clock,
) -> std::result::Result<CycleReport, CycleError> {
    let mut own = OwnEcu::open(config.own_ecu_config()?, clock.now())?;
    let mut secondaries = open_secondaries(config)?;
    let update = {
        let mut ecus: Vec<&mut dyn EcuLink> = vec![&mut own];
        ecus.extend(secondaries.iter_mut().map(|s| s as &mut dyn EcuLink));
        update(config, &mut ecus, clock)
    };
    let Settled {
        result,
        detail,
        installed,
        failure,
    } = settle(&mut own, update);
    let nonce = fresh_nonce();
    let sent = collect_reports(&mut own, &mut secondaries, &nonce, clock)
        .and_then(|reports| send_manifest(config, &own, &reports));
    if let Err(e) = &sent {
        tracing::error!(error = %e, "vehicle manifest not accepted");
    }
    let report = CycleReport {
        time: clock.now().to_rfc3339(),
        result,
        detail,
        installed,
        nonce,
        manifest_sent: sent.is_ok(),
    };
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        crate::store::write_atomic(&config.last_cycle_file(), &json)?;
    }
    match (failure, sent) {
        (Some(error), _) | (None, Err(error)) => Err(CycleError {
            error,
            report: Some(Box::new(report)),
        }),
        (None, Ok(())) => Ok(report),
    }
}

/// A client of every Secondary the config lists.
pub(crate) fn open_secondaries(config: &Config) -> Result<Vec<SecondaryClient>> {
    let policy = config.fetch_policy();
    let mut secondaries = Vec::new();
    for s in &config.secondaries {
        let mut client = SecondaryClient::new(
            &s.serial,
            &s.url,
            policy.read_timeout,
            policy.min_bytes_per_sec,
            config.vehicle_tls.as_ref(),
        )?;
        client.reboot_wait = config.reboot_wait;
        secondaries.push(client);
    }
    Ok(secondaries)
}

/// How an update ended, as the report says it.
pub(crate) struct Settled {
    pub(crate) result: CycleResult,
    pub(crate) detail: String,
    pub(crate) installed: BTreeMap<String, String>,
    pub(crate) failure: Option<Error>,
}

/// The outcome of an update: a refusal is recorded in the own ECU's report (unless an ECU
/// recorded it itself, or a repository was merely out of reach).
pub(crate) fn settle(
    own: &mut OwnEcu,
    update: std::result::Result<BTreeMap<String, String>, Stop>,
) -> Settled {
    match update {
        Ok(installed) if installed.is_empty() => Settled {
            result: CycleResult::UpToDate,
            detail: String::new(),
            installed,
            failure: None,
        },
        Ok(installed) => Settled {
            result: CycleResult::Updated,
            detail: String::new(),
            installed,
            failure: None,
        },
        Err(Stop {
            target,
            error,
            recorded_by_secondary,
        }) => {
            let error = *error;
            tracing::warn!(%target, %error, "update refused");
            // The own ECU already recorded its own refusal, with its own words. A repository
            // out of reach is no update's result: the last install's result stays.
            let unreachable =
                matches!(target.as_str(), DIRECTOR | IMAGE_REPO) && !error.is_attack();
            if !matches!(error, Error::OwnEcu { .. }) && !unreachable && !recorded_by_secondary {
                if let Err(e) = own.record_refusal(&target, &error) {
                    tracing::error!(error = %e, "cannot record the refusal");
                }
            }
            let result = if error.is_attack() || matches!(error, Error::Depends(_)) {
                CycleResult::Refused
            } else {
                CycleResult::Failed
            };
            Settled {
                result,
                detail: error.to_string(),
                installed: BTreeMap::new(),
                failure: Some(error),
            }
        }
    }
}

/// Every ECU's signed version report for this cycle's `nonce`.
pub(crate) fn collect_reports(
    own: &mut OwnEcu,
    secondaries: &mut [SecondaryClient],
    nonce: &str,
    clock: &dyn Clock,
) -> Result<Vec<Signed<EcuVersionReport>>> {
    let mut reports = vec![own.report(nonce, clock.now())?];
    for s in secondaries {
        reports.push(s.report(nonce, clock.now())?);
    }
    Ok(reports)
}

/// Sign the vehicle manifest with the primary's key and PUT it to the Director.
fn send_manifest(
    config: &Config,
    own: &OwnEcu,
    reports: &[Signed<EcuVersionReport>],
) -> Result<()> {
    let mut vehicle = VehicleManifest::new(&config.vin, own.serial(), reports)?;
    // Receipts of offline installs made since the last accepted manifest ride along (as
    // many as keep the manifest well below the Director's size cap; the rest next time).
    let receipts = crate::offline::receipt::to_send(config)?;
    if !receipts.is_empty() {
        let values = receipts.iter().map(|r| r.value.clone()).collect();
        vehicle.extra.insert(
            crate::offline::receipt::MANIFEST_FIELD.to_owned(),
            serde_json::Value::Array(values),
        );
    }
    let mut manifest = Signed::new(vehicle);
    manifest.sign(own.signer())?;
    let body = manifest.to_bytes()?;
    let url = repos::director_manifest_url(config);
    let client = repos::director_client(config)?;
    let transport = |e: reqwest::Error| Error::Transport {
        url: url.clone(),
        reason: e.to_string(),
    };
    let response = client
        .put(&url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        let reason = response.text().unwrap_or_default().trim().to_owned();
        return Err(Error::ManifestRefused {
            url,
            status: status.as_u16(),
            reason,
        });
    }
    if status == reqwest::StatusCode::ACCEPTED {
        // A gateway relay whose uplink is down queued it; it reaches the Director later.
        tracing::info!("vehicle manifest queued by a relay for the Director");
    } else {
        tracing::info!("vehicle manifest accepted by the Director");
    }
    for receipt in receipts {
        tracing::info!(receipt = %receipt.path.display(), "offline receipt delivered");
        crate::offline::receipt::delivered(&receipt)?;
    }
    Ok(())
}

pub(crate) fn fresh_nonce() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether an ECU already runs `a`'s image: its latest install, or what any domain runs (an
/// app assigned again after an OS update).
pub(crate) fn runs(status: &EcuStatus, a: &EcuAssignment) -> bool {
    let latest = status.installed.iter().map(InstalledImage::running);
    let domains = status.installed_domains.values().map(|d| Running {
        target: &d.target,
        length: d.length,
        hashes: &d.hashes,
    });
    already_installed(latest.chain(domains), &a.target_name, &a.target)
}

/// A Secondary whose target's depends its provides do not meet is sent the metadata anyway:
/// it verifies it, checks the depends itself (before any image, as this Primary did) and
/// records the refusal in its own signed report, which is where the Director looks for the
/// outcome of that ECU's assignment. Whether it did is the answer; if it accepted after all
/// (its provides changed since its status), the cycle still stops and nothing is sent.
pub(crate) fn let_secondary_refuse(
    ecu: &mut dyn EcuLink,
    target: &str,
    bundle: Result<Vec<u8>>,
    clock: &dyn Clock,
) -> bool {
    let sent = bundle.and_then(|bundle| ecu.send_metadata(&bundle, clock.now()));
    if sent.is_ok() {
        tracing::warn!(
            ecu = ecu.serial(),
            target,
            "the ECU accepted a target whose depends its reported provides do not meet"
        );
        return false;
    }
    // Its refusal counts only as the ECU itself now reports it.
    ecu.status().is_ok_and(|s| {
        s.last_install
            .is_some_and(|l| l.target == target && l.result == InstallResult::Failure)
    })
}

/// An ECU that is not ready stops every install: the own ECU's refusal as the ECU recorded
/// it, a Secondary's as [`Error::NotAllReady`].
pub(crate) fn not_ready<'a>(target: &'a str, serial: &'a str) -> impl FnOnce(Error) -> Stop + 'a {
    move |error| match error {
        own @ Error::OwnEcu { .. } => stop(target)(own),
        error => stop(target)(Error::NotAllReady {
            failed: serial.to_owned(),
            reason: error.to_string(),
        }),
    }
}

/// One ECU's part of the update, checked and ready to download.
pub(crate) struct Planned {
    pub(crate) ecu: usize,
    pub(crate) matched: MatchedTarget,
    pub(crate) found: FoundTarget,
}

/// Verify, check, download, distribute and install. Returns serial → installed target.
fn update(
    config: &Config,
    ecus: &mut [&mut dyn EcuLink],
    clock: &dyn Clock,
) -> std::result::Result<BTreeMap<String, String>, Stop> {
    let now = clock.now();
    let mut director = repos::director_updater(config, now).map_err(stop(DIRECTOR))?;
    let serials: BTreeSet<String> = config.serials().into_iter().collect();
    let vehicle = Vehicle {
        vin: &config.vin,
        ecus: VehicleEcus::Known(&serials),
    };
    let assignments = director.refresh_director(vehicle).map_err(stop(DIRECTOR))?;
    // PURE-2 "Additional step": the Director's latest offline-update snapshot, so a bundle it
    // revoked or superseded stops verifying on this vehicle. Only a rollback stops the cycle.
    crate::offline::refresh_offline_snapshot(config, &director).map_err(stop(DIRECTOR))?;

    let mut statuses = Vec::new();
    for ecu in ecus.iter_mut() {
        let serial = ecu.serial().to_owned();
        statuses.push(ecu.status().map_err(stop(&serial))?);
    }
    let index = |serial: &str| ecus.iter().position(|e| e.serial() == serial);
    // Director snapshot and targets unchanged in effect: every ECU already runs its target.
    let todo: Vec<(usize, &EcuAssignment)> = assignments
        .values()
        .filter_map(|a| index(&a.ecu_serial).map(|i| (i, a)))
        .filter(|(i, a)| !runs(&statuses[*i], a))
        .collect();
    if todo.is_empty() {
        tracing::info!("no update: every ECU runs what the Director assigns");
        return Ok(BTreeMap::new());
    }

    let mut image = repos::image_updater(config, now).map_err(stop(IMAGE_REPO))?;
    image.refresh().map_err(stop(IMAGE_REPO))?;
    let mut plan = Vec::new();
    for (i, a) in todo {
        let name = a.target_name.as_str();
        let found = image.find_target(name).map_err(stop(name))?;
        let hardware_id = ecus[i].hardware_id().map_err(stop(name))?;
        let counters = &statuses[i].release_counters;
        let matched = match_assignment(a, found.as_ref(), &hardware_id, counters)
            .map_err(|e| stop(name)(e.into()))?;
        // match_assignment refused a target the Image repository does not list.
        let found = found
            .ok_or(ferry_core::Error::Order(
                "matched a target that was not found",
            ))
            .map_err(|e| stop(name)(e.into()))?;
        if matched.target.length > config.download.max_image_bytes {
            return Err(stop(name)(Error::TooLarge {
                url: name.to_owned(),
                limit: config.download.max_image_bytes,
            }));
        }
        if let Err(e) = check_depends(&matched.custom.depends, &statuses[i].provides) {
            let mut refused = stop(name)(e.into());
            if ecus[i].serial() != config.ecu.serial {
                refused.recorded_by_secondary = let_secondary_refuse(
                    &mut *ecus[i],
                    name,
                    repos::bundle(&director, &image),
                    clock,
                );
            }
            return Err(refused);
        }
        plan.push(Planned {
            ecu: i,
            matched,
            found,
        });
    }

    let bundle = repos::bundle(&director, &image).map_err(stop("metadata bundle"))?;
    let base = repos::image_targets_url(config);
    deliver(
        ecus,
        &plan,
        &bundle,
        image.fetcher(),
        clock,
        &|p: &Planned| {
            let name = p.matched.assignment.target_name.as_str();
            image.target_url(&p.found, name, &base)
        },
    )
}

/// The all-or-nothing part of an update, online or offline: every ECU of `plan` verifies
/// `bundle` and names the target it expects before any image byte moves; each image is read
/// once through `fetcher` (at `url_of` its plan entry) and streamed to every ECU it is for;
/// and only once every ECU is ready does any of them install. Returns serial → installed
/// target.
pub(crate) fn deliver(
    ecus: &mut [&mut dyn EcuLink],
    plan: &[Planned],
    bundle: &[u8],
    fetcher: &dyn Fetcher,
    clock: &dyn Clock,
    url_of: &dyn Fn(&Planned) -> Result<String>,
) -> std::result::Result<BTreeMap<String, String>, Stop> {
    for p in plan {
        let name = &p.matched.assignment.target_name;
        let ecu = &mut ecus[p.ecu];
        let pending = ecu
            .send_metadata(bundle, clock.now())
            .map_err(not_ready(name, ecu.serial()))?;
        if pending.as_deref() != Some(name.as_str()) {
            return Err(not_ready(name, ecu.serial())(Error::Config(format!(
                "the ECU would install {pending:?}, expected {name}"
            ))));
        }
    }

    // Each image downloaded once, whatever the number of ECUs it is for, and streamed to all
    // of them as it arrives.
    let mut streamed: BTreeSet<&str> = BTreeSet::new();
    for p in plan {
        let name = p.matched.assignment.target_name.as_str();
        if !streamed.insert(name) {
            continue;
        }
        let receivers: BTreeSet<usize> = plan
            .iter()
            .filter(|q| q.matched.assignment.target_name == name)
            .map(|q| q.ecu)
            .collect();
        let url = url_of(p).map_err(stop(name))?;
        let links: Vec<_> = ecus
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| receivers.contains(i))
            .map(|(_, e)| &mut **e)
            .collect();
        match stream::stream_image(fetcher, &url, name, &p.found.target, links) {
            Ok(()) => {}
            Err(Failure::Download(e)) => return Err(stop(name)(*e)),
            Err(Failure::Ecu { serial, error }) => return Err(not_ready(name, &serial)(*error)),
        }
        for i in receivers {
            tracing::info!(serial = %ecus[i].serial(), target = %name, "ECU ready");
        }
    }

    // Every ECU is ready: install. A failure is the failing ECU's (its report says so).
    let mut installed = BTreeMap::new();
    let mut failed = Vec::new();
    let mut failed_targets: Vec<&str> = Vec::new();
    for p in plan {
        let name = &p.matched.assignment.target_name;
        let ecu = &mut ecus[p.ecu];
        let serial = ecu.serial().to_owned();
        match ecu.install(clock.now()) {
            Ok(()) => {
                installed.insert(serial, name.clone());
            }
            Err(e) => {
                // An ECU's error names the ECU already ("ECU tcu-1: ...").
                let text = e.to_string();
                failed.push(if text.starts_with(&format!("ECU {serial}")) {
                    text
                } else {
                    format!("ECU {serial}: {text}")
                });
                if !failed_targets.contains(&name.as_str()) {
                    failed_targets.push(name);
                }
            }
        }
    }
    if !failed.is_empty() {
        // Recorded against the targets that failed, not against a step name.
        let targets = failed_targets.join(", ");
        return Err(stop(&targets)(Error::InstallsFailed(failed.join("; "))));
    }
    Ok(installed)
}
