//! Any other domain, through an executable speaking Mender's Update Module v3 protocol, so
//! existing Mender update modules run unchanged. A target whose `custom.domain` is not a
//! built-in one is handled by `<modules dir>/<domain>` (Mender's
//! `/usr/share/mender/modules/v3/<type>` convention); modules are found when the ECU starts.
//!
//! Each call is `<module> <State> <tree>` with the tree ([`tree`]) as working directory, stdin
//! closed and output captured (bounded). The states, by installer step:
//! - prepare (with `protocol = "mender-4"`, first the query `ProvidePayloadFileSizes`, and
//!   on `Yes` the state is `DownloadWithFileSizes`): `Download`, offering the payload files through `stream-next` ([`streams`]); a
//!   module that leaves it unread finds them in `files/` afterwards, as Mender does (a plain
//!   target's file, a tar target's files or a Mender artifact's payload, see [`payload`]),
//!   then the query `SupportsRollback`, where Mender 3.4 asks it (recorded with
//!   `mender install` of Debian's client: Download, SupportsRollback, ArtifactInstall,
//!   NeedsArtifactReboot; on failure SupportsRollback again, ArtifactRollback,
//!   ArtifactFailure, Cleanup);
//! - install: `ArtifactInstall`, then the query `NeedsArtifactReboot` (`No`/empty, `Yes`,
//!   `Automatic`) and, with `protocol = "mender-4"`, `SupportsRollback`; `Yes` runs `ArtifactReboot`, `Automatic` runs `[modules] reboot_command`;
//! - verify-reboot: `ArtifactVerifyReboot` (without a reboot there is no verify state);
//! - commit: `ArtifactCommit`;
//! - rollback: the query `SupportsRollback`; `Yes` runs `ArtifactRollback` (then
//!   `ArtifactRollbackReboot` and `ArtifactVerifyRollbackReboot` after a reboot); `No` or
//!   empty fails the rollback, saying the previous version was not restored;
//! - cleanup: `ArtifactFailure` if the update got as far as ArtifactInstall and did not
//!   commit, then `Cleanup`, always.
//!
//! A Mender artifact's state scripts run around these states ([`scripts`]).
//!
//! The record beside the tree is written before each state with side effects, so after a
//! restart the driver's repeated step knows what already ran: a finished ArtifactRollback or
//! ArtifactFailure is not run twice, an interrupted state is run again.

pub mod payload;
pub mod scripts;
pub mod streams;
pub mod tree;

use super::capture::{self, Finished};
use super::{InstallJob, Installer, Reboot};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tree::{Phase, RebootAnswer, Record, WorkDir};

/// Where Mender keeps v3 update modules.
pub const DEFAULT_MODULES_DIR: &str = "/usr/share/mender/modules/v3";
/// Domains with built-in installers: a module of that name is ignored.
const BUILT_IN: [&str; 3] = ["os", "app", "container"];

/// `[modules]` in secondary.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSettings {
    /// Update module executables, one per domain; default [`DEFAULT_MODULES_DIR`].
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// The modules' file trees; default `<data_dir>/modules`.
    #[serde(default)]
    pub work_dir: Option<PathBuf>,
    /// `current_device_type`; default the ECU's hardware_id.
    #[serde(default)]
    pub device_type: Option<String>,
    /// Reboots the ECU for a module answering `Automatic` to NeedsArtifactReboot; without it
    /// such an update fails and rolls back.
    #[serde(default)]
    pub reboot_command: Option<Vec<String>>,
    /// Seconds one module call (or the reboot command) may run before it is killed, with
    /// what it started, and fails its state (Mender's ModuleTimeoutSeconds); default 14400.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Which Mender client's way of calling modules to follow; default [`Protocol::Mender3`].
    #[serde(default)]
    pub protocol: Protocol,
    /// Seconds between runs of a state script that exits 21 (retry later); default 60, as
    /// Mender's StateScriptRetryIntervalSeconds.
    #[serde(default)]
    pub script_retry_interval_secs: Option<u64>,
    /// Seconds such a script is retried in all before its state fails; default 1800, as
    /// Mender's StateScriptRetryTimeoutSeconds.
    #[serde(default)]
    pub script_retry_timeout_secs: Option<u64>,
}

/// The two ways Mender clients call v3 modules. They differ in two places: Mender 4 first
/// asks `ProvidePayloadFileSizes` and, on `Yes`, runs `DownloadWithFileSizes` (each
/// `stream-next` line then carries the file's size: `streams/<file> <size>`) instead of
/// `Download`; and it asks `SupportsRollback` after `NeedsArtifactReboot`, where Mender 3.4
/// asks it right after Download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Protocol {
    /// Debian 12's `mender-client` 3.4 (recorded: `tests/tests/mender_client_parity.rs`).
    #[default]
    #[serde(rename = "mender-3")]
    Mender3,
    /// Mender 4's C++ client.
    #[serde(rename = "mender-4")]
    Mender4,
}

impl ModuleSettings {
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.dir, &mut self.work_dir].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// A state-script keeper for `dir` with these settings' time limits.
    pub fn scripts(&self, dir: PathBuf) -> scripts::Scripts {
        let secs = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_secs);
        scripts::Scripts::new(dir, capture::limit(self.timeout_secs)).with_retry(
            secs(
                self.script_retry_interval_secs,
                scripts::DEFAULT_RETRY_INTERVAL,
            ),
            secs(
                self.script_retry_timeout_secs,
                scripts::DEFAULT_RETRY_TIMEOUT,
            ),
        )
    }

    pub fn problem(&self) -> Option<&'static str> {
        if matches!(&self.reboot_command, Some(argv) if argv.is_empty()) {
            return Some("[modules] reboot_command must name a program");
        }
        if self.timeout_secs == Some(0) {
            return Some("[modules] timeout_secs must be at least 1");
        }
        None
    }
}

#[derive(Debug, Clone)]
pub struct ModuleInstaller {
    domain: &'static str,
    program: PathBuf,
    work: WorkDir,
    device_type: String,
    reboot_command: Option<Vec<String>>,
    timeout: Duration,
    scripts: scripts::Scripts,
    protocol: Protocol,
}

/// An executable regular file (following links: modules are often installed as links).
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn parse_answer(module: &str, state: &'static str, done: &Finished) -> Result<&'static str> {
    let text = done.stdout_text();
    let answer = text.trim();
    let allowed: &[&'static str] = match state {
        "ProvidePayloadFileSizes" => &["No", "Yes"],
        "NeedsArtifactReboot" => &["No", "Yes", "Automatic"],
        _ => &["No", "Yes"],
    };
    if answer.is_empty() {
        return Ok("No");
    }
    allowed
        .iter()
        .find(|a| **a == answer)
        .copied()
        .ok_or_else(|| Error::UpdateModule {
            module: module.to_owned(),
            state,
            detail: format!(
                "answered {answer:?}; expected one of {}",
                allowed.join(", ")
            ),
        })
}

impl ModuleInstaller {
    /// The module for `domain` at `program`.
    pub fn new(
        domain: &str,
        program: PathBuf,
        settings: &ModuleSettings,
        data_dir: &Path,
        hardware_id: &str,
    ) -> ModuleInstaller {
        let work_dir = settings
            .work_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("modules"));
        let timeout = capture::limit(settings.timeout_secs);
        ModuleInstaller {
            scripts: settings.scripts(work_dir.join(domain).join("scripts")),
            // The trait names domains as &'static str; one short string per module found at
            // start lives as long as the process anyway.
            domain: Box::leak(domain.to_owned().into_boxed_str()),
            program,
            work: WorkDir::new(work_dir.join(domain)),
            device_type: settings
                .device_type
                .clone()
                .unwrap_or_else(|| hardware_id.to_owned()),
            reboot_command: settings.reboot_command.clone(),
            timeout,
            protocol: settings.protocol,
        }
    }

    /// One installer per executable in the modules directory (none if it does not exist).
    pub fn discover(
        settings: &ModuleSettings,
        data_dir: &Path,
        hardware_id: &str,
    ) -> Result<Vec<ModuleInstaller>> {
        let dir = settings
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULES_DIR));
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') || !is_executable(&entry.path()) {
                continue;
            }
            if BUILT_IN.contains(&name.as_str()) {
                tracing::warn!(module = %name, "update module shadows a built-in domain; ignored");
                continue;
            }
            found.push(ModuleInstaller::new(
                &name,
                entry.path(),
                settings,
                data_dir,
                hardware_id,
            ));
        }
        found.sort_by_key(|m| m.domain);
        Ok(found)
    }

    /// Call the module in `state`; a non-zero exit names the state and quotes its stderr.
    fn call(&self, state: &'static str) -> Result<Finished> {
        let tree = self.work.tree();
        std::fs::create_dir_all(&tree).map_err(|e| Error::io(&tree, e))?;
        let argv = [
            self.program.display().to_string(),
            state.to_owned(),
            tree.display().to_string(),
        ];
        tracing::info!(module = self.domain, state, "update module call");
        let what = format!("update module {} in state {state}", self.domain);
        // As Mender runs it: in the file tree, with PWD saying so (Go's exec sets PWD with the
        // working directory; a module that reads PWD rather than getcwd sees the tree).
        let env = [("PWD", argv[2].clone())];
        capture::run(&argv, Some(&tree), &env, self.timeout)?.require_success(&what, &argv[0])
    }

    fn record(&self) -> Result<Record> {
        self.work.record()?.ok_or_else(|| Error::UpdateModule {
            module: self.domain.to_owned(),
            state: "record",
            detail: "no update is under way for this module (its record is missing)".into(),
        })
    }

    fn set_phase(&self, record: &mut Record, phase: Phase) -> Result<()> {
        record.phase = phase;
        self.work.save(record)
    }

    /// The `SupportsRollback` query where the client being followed asks it during an
    /// install; the answer that counts is the one asked again at rollback.
    fn ask_supports_rollback(&self) -> Result<()> {
        let done = self.call("SupportsRollback")?;
        parse_answer(self.domain, "SupportsRollback", &done).map(drop)
    }

    /// Reboot for `answer`: the module's own reboot state, or the ECU's reboot command.
    fn reboot_for(&self, answer: Option<RebootAnswer>, state: &'static str) -> Result<Reboot> {
        match answer {
            Some(RebootAnswer::Yes) => {
                // Returning means the module rebooted what it updates without rebooting us.
                self.call(state)?;
                Ok(Reboot::Done)
            }
            Some(RebootAnswer::Automatic) => {
                let argv = self.reboot_command.as_ref().ok_or_else(|| Error::UpdateModule {
                    module: self.domain.to_owned(),
                    state: "NeedsArtifactReboot",
                    detail: "answered Automatic, but [modules] reboot_command is not set; expected it to name the ECU's reboot command".into(),
                })?;
                capture::run(argv, None, &[], self.timeout)?
                    .require_success("ECU reboot command", &argv[0])?;
                Ok(Reboot::Pending)
            }
            _ => Ok(Reboot::Done),
        }
    }
}

impl Installer for ModuleInstaller {
    fn domain(&self) -> &'static str {
        self.domain
    }

    fn takes_mender_artifacts(&self) -> bool {
        true
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let kind = payload::Kind::of(job)?;
        self.work.clear()?;
        // The record first: whatever happens next, cleanup will call the module's Cleanup.
        let mut record = Record {
            target: job.target_name.to_owned(),
            phase: Phase::Downloading,
            reboot: None,
            failure_reported: false,
            artifact_name: None,
        };
        self.work.save(&record)?;
        self.scripts.clear()?;
        if kind == payload::Kind::Mender {
            let (artifact, headers) = payload::artifact_headers(job, self.domain)?;
            self.work.build_with(&headers, &self.device_type)?;
            self.scripts.save(&artifact.scripts)?;
            record.artifact_name = Some(artifact.name);
            self.work.save(&record)?;
        } else {
            self.work.build(self.domain, job, &self.device_type)?;
        }
        let with_sizes = match self.protocol {
            Protocol::Mender3 => false,
            Protocol::Mender4 => {
                let done = self.call("ProvidePayloadFileSizes")?;
                parse_answer(self.domain, "ProvidePayloadFileSizes", &done)? == "Yes"
            }
        };
        let state = if with_sizes {
            "DownloadWithFileSizes"
        } else {
            "Download"
        };
        let tree = self.work.tree();
        let (_, streamed) = streams::download(&tree, self.domain, job, kind, with_sizes, || {
            self.call(state)
        })?;
        if !streamed {
            payload::unpack(&self.work, job, kind)?;
        }
        if self.protocol == Protocol::Mender3 {
            self.ask_supports_rollback()?;
        }
        Ok(())
    }

    fn install(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let mut record = self.record()?;
        self.set_phase(&mut record, Phase::Installing)?;
        self.scripts
            .around("ArtifactInstall", || self.call("ArtifactInstall"))?;
        let done = self.call("NeedsArtifactReboot")?;
        record.reboot = Some(
            match parse_answer(self.domain, "NeedsArtifactReboot", &done)? {
                "Yes" => RebootAnswer::Yes,
                "Automatic" => RebootAnswer::Automatic,
                _ => RebootAnswer::No,
            },
        );
        self.work.save(&record)?;
        if self.protocol == Protocol::Mender4 {
            self.ask_supports_rollback()?;
        }
        Ok(())
    }

    fn needs_reboot(&self, _job: &InstallJob<'_>) -> bool {
        let answer = self.work.record().ok().flatten().and_then(|r| r.reboot);
        matches!(answer, Some(RebootAnswer::Yes | RebootAnswer::Automatic))
    }

    fn reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        let record = self.record()?;
        self.scripts.around("ArtifactReboot", || {
            self.reboot_for(record.reboot, "ArtifactReboot")
        })
    }

    fn verify_reboot(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        self.call("ArtifactVerifyReboot").map(drop)
    }

    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let mut record = self.record()?;
        self.scripts
            .around("ArtifactCommit", || self.call("ArtifactCommit"))?;
        self.set_phase(&mut record, Phase::Committed)?;
        let name = record.artifact_name.as_deref().unwrap_or(job.target_name);
        self.work.set_current_name(name)
    }

    fn rollback(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let Some(mut record) = self.work.record()? else {
            return Ok(());
        };
        match record.phase {
            // ArtifactInstall never ran: nothing live changed.
            Phase::Downloading => return Ok(()),
            Phase::RolledBack | Phase::RollbackRebooting => return Ok(()),
            Phase::Installing | Phase::Committed => {}
        }
        let done = self.call("SupportsRollback")?;
        if parse_answer(self.domain, "SupportsRollback", &done)? != "Yes" {
            return Err(Error::UpdateModule {
                module: self.domain.to_owned(),
                state: "SupportsRollback",
                detail: "the module answered No: it cannot roll back, so no rollback was attempted and the previous version was not restored".into(),
            });
        }
        self.scripts
            .around("ArtifactRollback", || self.call("ArtifactRollback"))?;
        self.set_phase(&mut record, Phase::RolledBack)
    }

    fn rollback_reboot(&mut self, _job: &InstallJob<'_>) -> Result<Reboot> {
        let mut record = self.record()?;
        if record.phase != Phase::RolledBack {
            // The rollback itself did not happen (or already rebooted): nothing to boot into.
            return Ok(Reboot::Done);
        }
        self.set_phase(&mut record, Phase::RollbackRebooting)?;
        let rebooted = self.scripts.around("ArtifactRollbackReboot", || {
            self.reboot_for(record.reboot, "ArtifactRollbackReboot")
        })?;
        if rebooted == Reboot::Done {
            self.call("ArtifactVerifyRollbackReboot")?;
            self.set_phase(&mut record, Phase::RolledBack)?;
        }
        Ok(rebooted)
    }

    fn restarted(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let Some(mut record) = self.work.record()? else {
            return Ok(());
        };
        if record.phase == Phase::RollbackRebooting {
            // The ECU came back from the rollback reboot.
            self.call("ArtifactVerifyRollbackReboot")?;
            self.set_phase(&mut record, Phase::RolledBack)?;
        }
        Ok(())
    }

    fn cleanup(&mut self, _job: &InstallJob<'_>) -> Result<()> {
        let Some(mut record) = self.work.record()? else {
            return self.work.clear();
        };
        let failed = !matches!(record.phase, Phase::Downloading | Phase::Committed);
        if failed && !record.failure_reported {
            let failure = self
                .scripts
                .around("ArtifactFailure", || self.call("ArtifactFailure"));
            if let Err(e) = failure {
                tracing::warn!(module = self.domain, error = %e, "ArtifactFailure failed");
            }
            record.failure_reported = true;
            self.work.save(&record)?;
        }
        let cleaned = self.call("Cleanup");
        self.work.clear()?;
        self.scripts.clear()?;
        cleaned.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_time_limit_is_refused() {
        let zero = ModuleSettings {
            timeout_secs: Some(0),
            ..ModuleSettings::default()
        };
        assert_eq!(
            zero.problem(),
            Some("[modules] timeout_secs must be at least 1")
        );
        let one = ModuleSettings {
            timeout_secs: Some(1),
            ..ModuleSettings::default()
        };
        assert_eq!(one.problem(), None);
    }
}
