//! One Secondary ECU: the order of an update (metadata, image, install, report) around its
//! state. Every refusal leaves the trusted metadata, the installed image and provides as they
//! were, and is recorded for the next version report. Time is always the caller's `now`.

mod operator;

use crate::config::{Anchors, Config};
use crate::error::{Error, Fault, Result};
use crate::image::{self, StagedImage};
use crate::install::app::AppInstaller;
use crate::install::container::ContainerInstaller;
use crate::install::module::ModuleInstaller;
use crate::install::os::OsInstaller;
use crate::install::resume::{resume, settle, StateJournal};
use crate::install::{drive, pause, Finish, InstallJob, Installers, Step};
use crate::report::{version_report, DomainImage};
use crate::state::journal::JobRecord;
use crate::state::refusals::NetworkRefusal;
use crate::state::{InstalledImage, Outcome, Repo, State};
use crate::verify::{verify_bundle, Assignment, Ecu as EcuId};
use chrono::{DateTime, Utc};
use ferry_core::manifest::EcuVersionReport;
use ferry_core::manifest::InstallResult;
use ferry_core::metadata::Signed;
use ferry_core::provides::check_depends;
use ferry_core::uptane::already_installed;
use ferry_core::{Clock, SystemClock};
use ferry_keys::{PublicKey, Signer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

pub use operator::{confirm_install, kept_snapshots, rollback_snapshot, Confirmed};

/// `GET /info`: the Primary reads it as this type too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    pub serial: String,
    pub hardware_id: String,
    pub public_key: PublicKey,
    pub keyid: String,
    pub verification: String,
}

/// `GET /status`: the Primary reads it as this type too. Every field has a default, so a
/// Primary reads the status of a Secondary that predates a field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// The latest target installed (the report's `installed_image`).
    pub installed: Option<InstalledImage>,
    /// What each domain runs, by domain.
    pub installed_domains: BTreeMap<String, DomainImage>,
    /// The state of an install still in flight (`reboot` while a real reboot is pending).
    pub in_flight: Option<String>,
    pub provides: BTreeMap<String, String>,
    /// The verified target awaiting its image or install.
    pub pending: Option<String>,
    pub image_ready: bool,
    pub last_install: Option<Outcome>,
    pub attacks_detected: String,
    /// RFC 3339: the latest time metadata verified at (never goes backwards).
    pub verified_time: Option<String>,
    /// Release counters by identity ([`ferry_core::uptane::counter_keys`]): the Primary
    /// refuses an offer below them before any download, with the rule the ECU applies.
    pub release_counters: BTreeMap<String, u64>,
    /// Requests refused from the network, newest first: never part of the signed report.
    pub network_refusals: Vec<NetworkRefusal>,
}

/// How `install` ended without error (`POST /install`'s answer: 200 with the image, 202 with
/// `rebootPending`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Installed {
    /// Committed: the image now installed.
    Done(InstalledImage),
    /// A real reboot is under way; the outcome is in `/status` once the ECU is back.
    #[serde(rename_all = "camelCase")]
    RebootPending {
        target: String,
        reboot_pending: bool,
    },
    /// The new version runs and waits for the application's confirmation
    /// (`ferry-secondary confirm`); the outcome is in `/status` once it commits or the window
    /// passes and it rolls back.
    #[serde(rename_all = "camelCase")]
    ConfirmPending {
        target: String,
        confirm_pending: bool,
    },
}

/// Who handed the ECU a metadata bundle or an image: where a refusal of it is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender<'a> {
    /// The Primary in this very process (the Primary's own ECU): a refusal goes into the
    /// signed version report, as the last install's result and, for a failed security check,
    /// in `attacks_detected`.
    InProcess,
    /// Whoever reached the ECU's HTTP port, unauthenticated: a refusal goes into the network
    /// refusal log of `GET /status` with `peer`, never into what the ECU signs (an attacker's
    /// text must not be signed by the ECU). The Primary records the refusals it is answered
    /// with in its own report.
    Network { peer: &'a str, at: DateTime<Utc> },
}

/// What receiving an image needs, taken so the ECU is not held while bytes stream in.
#[derive(Debug, Clone)]
pub struct ImageTicket {
    pub assignment: Assignment,
    pub staging_dir: PathBuf,
}

#[derive(Debug)]
pub struct Ecu {
    config: Config,
    key: Arc<dyn Signer>,
    anchors: Anchors,
    state: State,
    installers: Installers,
    pending: Option<Assignment>,
    staged: Option<StagedImage>,
    /// The daemon's clock, read as install steps are journaled (see [`Ecu::use_clock`]).
    clock: Option<Arc<dyn Clock>>,
}

impl Ecu {
    /// Read the key and trust anchors, open state.db, finish any interrupted app swap, then
    /// resume or roll back an install a restart cut short (`install::resume`).
    pub fn open(config: Config) -> Result<Ecu> {
        Ecu::open_at(config, SystemClock.now())
    }

    /// [`Ecu::open`] at `now` (the time the resumed steps are journaled at).
    pub fn open_at(config: Config, now: DateTime<Utc>) -> Result<Ecu> {
        let key = config.signer()?;
        let anchors = config.read_anchors()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
        let mut state = State::open(&config.state_db(), &config.initial_provides)?;
        let app = AppInstaller::new(&config.apps_dir, config.app_health_check.clone())
            .with_health_timeout(crate::install::capture::limit(
                config.app_health_timeout_secs,
            ))
            .with_confirm(crate::install::confirm::window(
                config.app.confirm,
                config.app.confirm_timeout_secs,
            ))
            .with_keep_previous(
                config
                    .app
                    .keep_previous
                    .unwrap_or(crate::install::app::DEFAULT_KEEP_PREVIOUS),
            );
        app.recover()?;
        let mut installers = Installers::new();
        installers.add(Box::new(app));
        if let Some(os) = &config.os {
            installers.add(Box::new(OsInstaller::from_config(
                os,
                &config.modules,
                &config.data_dir,
            )?));
        }
        if let Some(snapshot) = &config.snapshot {
            installers.add(Box::new(
                crate::install::snapshot::SnapshotInstaller::from_config(
                    snapshot,
                    &config.data_dir,
                )?,
            ));
        }
        if let Some(ostree) = &config.ostree {
            installers.add(Box::new(
                crate::install::ostree::OstreeInstaller::from_config(ostree, &config.data_dir)?,
            ));
        }
        if let Some(rauc) = &config.rauc {
            installers.add(Box::new(crate::install::rauc::RaucInstaller::from_config(
                rauc,
                &config.data_dir,
            )?));
        }
        installers.add(Box::new(ContainerInstaller::new(
            &config.container,
            &config.data_dir,
        )));
        let modules =
            ModuleInstaller::discover(&config.modules, &config.data_dir, &config.hardware_id)?;
        for module in modules {
            installers.add(Box::new(module));
        }
        match resume(&mut state, &mut installers, now) {
            Ok(None | Some(Ok(_))) => {}
            // Recorded for the next report; the ECU runs the old copy and serves on.
            Ok(Some(Err(e))) => tracing::warn!(error = %e, "interrupted install not completed"),
            // Still in flight (new installs are refused until it finishes): the ECU serves on
            // so its status says so, and the next start tries again.
            Err(e) => tracing::error!(error = %e, "cannot resume the interrupted install"),
        }
        // A staged image does not survive a restart: its assignment lived in memory.
        image::discard(&config.staging_dir())?;
        Ok(Ecu {
            config,
            key,
            anchors,
            state,
            installers,
            pending: None,
            staged: None,
            clock: None,
        })
    }

    /// Journal install steps at `clock`'s time as they run, not at the install request's
    /// `now` (the daemon: a confirmation window then starts when the new version runs).
    pub fn use_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = Some(clock);
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The ECU's state, for this crate only: other crates read it through [`Ecu::status`]
    /// and the read-only accessors below.
    pub(crate) fn state(&self) -> &State {
        &self.state
    }
    /// The trusted metadata of `role` in `repo`, exactly as received.
    pub fn trusted_metadata(&self, repo: Repo, role: &str) -> Result<Option<Vec<u8>>> {
        self.state().metadata(repo, role)
    }
    /// The latest root trusted for `repo`, exactly as received.
    pub fn trusted_root(&self, repo: Repo) -> Result<Option<Vec<u8>>> {
        self.state().root(repo)
    }
    /// The latest time metadata verified at (never goes backwards).
    pub fn verified_time(&self) -> Result<Option<DateTime<Utc>>> {
        self.state().verified_time()
    }
    /// The install journal, oldest first: (state, target).
    pub fn journal_entries(&self) -> Result<Vec<(String, String)>> {
        self.state().journal_entries()
    }
    pub fn pending(&self) -> Option<&Assignment> {
        self.pending.as_ref()
    }
    /// Add or replace a domain's installer.
    pub fn installers_mut(&mut self) -> &mut Installers {
        &mut self.installers
    }

    pub fn info(&self) -> Info {
        Info {
            serial: self.config.serial.clone(),
            hardware_id: self.config.hardware_id.clone(),
            public_key: self.key.public_key().clone(),
            keyid: self.key.key_id().to_string(),
            verification: self.config.verification.as_str().to_owned(),
        }
    }

    pub fn status(&self) -> Result<Status> {
        Ok(Status {
            pending: self.pending.as_ref().map(|a| a.target_name().to_owned()),
            image_ready: self.staged.is_some(),
            ..status_of(&self.state)?
        })
    }

    /// Record for the next report a refusal made for this ECU by its Primary (a check between
    /// the repositories, a download, a sibling ECU not ready): in `attacks_detected` when it
    /// was a failed security check, always as the last install's result.
    pub fn record_refusal(&mut self, target: &str, detail: &str, attack: bool) -> Result<()> {
        let outcome = Outcome {
            target: target.to_owned(),
            result: InstallResult::Failure,
            detail: detail.to_owned(),
        };
        self.state.record_failure(&outcome, attack)
    }

    /// Record a refusal of what `sender` sent (see [`Sender`]); the refusal itself is what the
    /// caller returns.
    fn refused_from(
        &mut self,
        sender: Sender<'_>,
        request: &str,
        target: &str,
        error: Error,
    ) -> Error {
        match sender {
            Sender::InProcess => self.refused(target, error),
            Sender::Network { peer, at } => {
                tracing::warn!(%peer, request, %error, "request from the network refused");
                let reason = error.to_string();
                if let Err(e) = self
                    .state
                    .record_network_refusal(at, peer, request, &reason)
                {
                    tracing::error!(error = %e, "cannot record the refusal");
                }
                error
            }
        }
    }

    /// Record a refusal for the next report; the refusal itself is what the caller returns.
    fn refused(&mut self, target: &str, error: Error) -> Error {
        let fault = error.fault();
        let outcome = Outcome {
            target: target.to_owned(),
            result: InstallResult::Failure,
            detail: error.to_string(),
        };
        tracing::warn!(target, %error, "update refused");
        if let Err(e) = self.state.record_failure(&outcome, fault == Fault::Attack) {
            tracing::error!(error = %e, "cannot record the refusal");
        }
        error
    }

    /// Verify a metadata bundle from the Primary in this process (see
    /// [`Ecu::receive_metadata_from`]).
    pub fn receive_metadata(
        &mut self,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<&Assignment>> {
        self.receive_metadata_from(Sender::InProcess, bytes, now)
    }

    /// Verify a metadata bundle (see [`crate::verify`]); on success keep it as the trusted
    /// state and return the target this ECU is to install, if any. Depends are checked here,
    /// before any image is sent. A refused bundle changes nothing: the trusted metadata, the
    /// pending target and an image already received for it stay as they were. A verified
    /// bundle that names the pending target again keeps its received image.
    pub fn receive_metadata_from(
        &mut self,
        sender: Sender<'_>,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<&Assignment>> {
        const REQUEST: &str = "PUT /metadata";
        let ecu = EcuId {
            serial: &self.config.serial,
            hardware_id: &self.config.hardware_id,
        };
        let verification = match verify_bundle(
            bytes,
            &self.state,
            &self.anchors,
            &self.config.vin,
            ecu,
            now,
        ) {
            Ok(v) => v,
            Err(e) => return Err(self.refused_from(sender, REQUEST, "metadata bundle", e)),
        };
        let mut installed: Vec<InstalledImage> =
            self.state.installed_domains()?.into_values().collect();
        installed.extend(self.state.installed()?);
        // Already running it: nothing to do (the Director re-sends until it sees the report).
        let assignment = verification.assignment.filter(|a| {
            !already_installed(
                installed.iter().map(InstalledImage::running),
                a.target_name(),
                a.target(),
            )
        });
        if let Some(a) = &assignment {
            // A valid update this ECU will not take: verified metadata, our words, so it is the
            // last install's result in the signed report whoever sent it.
            if let Err(e) = self.acceptable(a) {
                return Err(self.refused(a.target_name(), e));
            }
        }
        let changes: Vec<_> = verification.changes.iter().map(|(r, c)| (*r, c)).collect();
        self.state
            .commit_metadata(&changes, verification.verified_at)?;
        let keeps_image = match (&self.pending, &assignment) {
            (Some(old), Some(new)) => same_target(old, new),
            _ => false,
        };
        if !keeps_image {
            self.staged = None;
            image::discard(&self.config.staging_dir())?;
        }
        self.pending = assignment;
        if let Some(a) = &self.pending {
            tracing::info!(target = a.target_name(), "update verified");
        }
        Ok(self.pending.as_ref())
    }

    /// Checks that need no image: an installer for the domain, depends met.
    fn acceptable(&mut self, a: &Assignment) -> Result<()> {
        let domain = domain_of(a);
        let installer = self.installers.get(a.target_name(), &domain)?;
        if crate::mender::is_artifact(a.custom()) && !installer.takes_mender_artifacts() {
            return Err(Error::TargetKind {
                target: a.target_name().to_owned(),
                detail: format!("it is a Mender artifact, and this ECU's {domain} installer does not unpack Mender artifacts; expected an update module's domain"),
            });
        }
        check_depends(&a.custom().depends, &self.state.provides()?)?;
        Ok(())
    }

    /// What an image upload needs; refused when no verified target awaits one.
    pub fn image_ticket(&self) -> Result<ImageTicket> {
        let assignment = self.pending.clone().ok_or(Error::Order(
            "no verified target awaits an image; send metadata first",
        ))?;
        Ok(ImageTicket {
            assignment,
            staging_dir: self.config.staging_dir(),
        })
    }

    /// Take the outcome of receiving an image against `ticket`, sent by `sender`. A refused
    /// image leaves nothing of itself in staging and changes nothing else: an image received
    /// before for the same target stays ready.
    pub fn accept_image(
        &mut self,
        sender: Sender<'_>,
        ticket: &ImageTicket,
        received: Result<StagedImage>,
    ) -> Result<()> {
        let same = self
            .pending
            .as_ref()
            .is_some_and(|a| same_target(a, &ticket.assignment));
        if !same {
            // New metadata arrived while the image streamed: this image is for nothing.
            if let Ok(staged) = &received {
                image::remove(staged)?;
            }
            return Err(Error::Order(
                "the verified target changed while its image was received",
            ));
        }
        match received {
            Ok(staged) => {
                if let Some(old) = self.staged.replace(staged) {
                    image::remove(&old)?;
                }
                Ok(())
            }
            Err(e) => {
                let name = ticket.assignment.target_name();
                Err(self.refused_from(sender, "PUT /image", name, e))
            }
        }
    }

    /// Receive the image of the pending target from the Primary in this process, reading
    /// `reader` (what `PUT /image` does, without the HTTP streaming).
    pub fn receive_image(&mut self, reader: &mut dyn Read) -> Result<()> {
        let ticket = self.image_ticket()?;
        let received = image::receive(reader, &ticket.staging_dir, &ticket.assignment);
        self.accept_image(Sender::InProcess, &ticket, received)
    }

    /// Install the received image through its domain's installer, every state journaled
    /// ([`crate::install`]); on success the installed image, provides and release counters
    /// change in one transaction. A failure is recorded as the last install's outcome.
    pub fn install(&mut self, now: DateTime<Utc>) -> Result<Installed> {
        let (Some(assignment), Some(staged)) = (self.pending.clone(), self.staged.clone()) else {
            return Err(Error::Order(
                "no verified image is ready; send metadata and the image first",
            ));
        };
        let name = assignment.target_name().to_owned();
        let custom = assignment.custom();
        let domain = domain_of(&assignment);
        let record = JobRecord {
            target: name.clone(),
            domain: domain.clone(),
            length: assignment.target().length,
            hashes: assignment.target().hashes.clone(),
            custom: assignment
                .target()
                .custom
                .clone()
                .unwrap_or(serde_json::Value::Null),
            counter_keys: assignment.counter_keys(),
            release_counter: custom.release_counter,
            image: staged.path.clone(),
        };
        let job = InstallJob {
            target_name: &name,
            custom,
            image: &staged.path,
            length: record.length,
            hashes: &record.hashes,
        };
        let result = match self.installers.get(&name, &domain) {
            Ok(installer) => match self
                .state
                .begin_install(&record, Step::Download.as_str(), now)
            {
                Ok(()) => {
                    pause::point(&domain, Step::Download.as_str());
                    let mut journal = StateJournal {
                        state: &mut self.state,
                        record: &record,
                        custom,
                        now,
                        clock: self.clock.as_deref(),
                    };
                    drive(
                        installer.as_mut(),
                        &job,
                        &mut journal,
                        Step::Download,
                        true,
                        None,
                    )
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.pending = None;
        self.staged = None;
        image::remove(&staged)?;
        // The machine records its own failures; one that stopped it from starting is ours.
        let result = match result {
            Err(e) if !matches!(e, Error::InstallFailed { .. }) => Err(self.refused(&name, e)),
            other => other,
        };
        match result? {
            Finish::Installed => Ok(Installed::Done(InstalledImage {
                target: record.target,
                length: record.length,
                hashes: record.hashes,
                custom: record.custom,
            })),
            Finish::RebootPending => {
                tracing::info!(target = %name, "rebooting to finish the install");
                Ok(Installed::RebootPending {
                    target: name,
                    reboot_pending: true,
                })
            }
            Finish::ConfirmPending => {
                tracing::info!(target = %name, "waiting for the application to confirm");
                Ok(Installed::ConfirmPending {
                    target: name,
                    confirm_pending: true,
                })
            }
        }
    }

    /// Settle an install waiting for its application's confirmation at `now`: commit it when
    /// `ferry-secondary confirm` confirmed it, roll it back when its window has passed. The
    /// daemon calls this periodically. `Ok(true)` when an install is still waiting.
    pub fn settle(&mut self, now: DateTime<Utc>) -> Result<bool> {
        match settle(&mut self.state, &mut self.installers, now)? {
            None => Ok(false),
            Some(Ok(Finish::ConfirmPending)) => Ok(true),
            Some(Ok(_)) => Ok(false),
            // Recorded as the last install's outcome (rolled back, naming the check).
            Some(Err(e)) => {
                tracing::warn!(error = %e, "install not confirmed");
                Ok(false)
            }
        }
    }

    /// The signed version report for the Primary's `nonce`.
    pub fn report(&self, nonce: &str, now: DateTime<Utc>) -> Result<Signed<EcuVersionReport>> {
        version_report(
            &self.config.serial,
            &self.state,
            nonce,
            now,
            self.key.as_ref(),
        )
    }

    pub fn signer(&self) -> &dyn Signer {
        self.key.as_ref()
    }
}

/// What `state` says of the ECU, nothing pending.
fn status_of(state: &State) -> Result<Status> {
    let (last_install, attacks_detected) = state.outcome()?;
    Ok(Status {
        installed: state.installed()?,
        installed_domains: state
            .installed_domains()?
            .iter()
            .map(|(d, i)| (d.clone(), DomainImage::from(i)))
            .collect(),
        in_flight: state.in_flight()?.map(|f| f.state),
        provides: state.provides()?,
        pending: None,
        image_ready: false,
        last_install,
        attacks_detected,
        verified_time: state.verified_time()?.map(|t| t.to_rfc3339()),
        release_counters: state.release_counters()?,
        network_refusals: state.network_refusals()?,
    })
}

/// The status of the ECU configured by `config` without opening it (which would resume an
/// install and discard a staged image of a cycle running in another process): read from its
/// state, nothing pending. An ECU that never ran has the default status.
pub fn status_at_rest(config: &Config) -> Result<Status> {
    if !config.state_db().exists() {
        return Ok(Status::default());
    }
    status_of(&State::open(&config.state_db(), &config.initial_provides)?)
}

/// The same target: name, length and hashes (an image received for one is the other's).
fn same_target(a: &Assignment, b: &Assignment) -> bool {
    a.target_name() == b.target_name()
        && a.target().length == b.target().length
        && a.target().hashes == b.target().hashes
}

fn domain_of(a: &Assignment) -> String {
    a.custom().domain_or_default().as_str().to_owned()
}
