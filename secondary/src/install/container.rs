//! The `container` domain: an OCI image-layout archive, checked blob by blob ([`oci`]),
//! imported into a content-addressed store ([`store`]), and made live by switching the image
//! name's current reference. An optional runtime hook then starts it (for example `podman
//! load` and `podman run`, or skopeo into docker: README's tested recipes) and an optional
//! health check gates the commit.
//!
//! Steps, each safe to repeat, each working from what is on disk (never from memory, since the
//! process may have been killed in between):
//! - prepare: check the archive into `incoming/`; only a fully checked archive is imported
//!   (so a refused archive leaves the store exactly as it was); `refs/next/<name>` = new id.
//! - install: `refs/previous/<name>` = the live id ("" for none), unless an earlier attempt
//!   already switched; `refs/current/<name>` = new id; run the hook for the new image.
//! - verify: the health check.
//! - commit: add the replaced image to `refs/kept/<name>` (the `keep_previous` most recent,
//!   default 1), remove `refs/previous/<name>` (the commit point), then unused layouts and
//!   blobs: a blob is deleted only when no kept, current or previous image references it.
//! - with `confirm = "app"`, between verify and commit the driver waits for the application's
//!   confirmation ([`super::confirm`]).
//! - rollback: with a `previous` reference, make it current again, re-run the hook for it
//!   if an image was live, and drop the reference. Without one, nothing was switched.
//! - cleanup: drop `incoming/`, `refs/next/<name>` and whatever no reference uses.
//!
//! After a restart the driver resumes from the journal (rollback after `install`, verify and
//! commit after `verify`, each step again after itself); since every step reads the references
//! on disk, a restart at any point leaves exactly the old image or the new one.

pub mod oci;
pub mod store;

use super::capture;
use super::{InstallJob, Installer};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use store::{Imported, Ref, Store};

/// `[container]` in secondary.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSettings {
    /// The store; default `<data_dir>/containers`.
    #[serde(default)]
    pub store_dir: Option<PathBuf>,
    /// Commands run in order to start an image (after install, and for the previous image on
    /// rollback), each an argv list. They see `FERRY_CONTAINER_NAME`, `FERRY_CONTAINER_ID`,
    /// `FERRY_CONTAINER_ACTION` (install or rollback), `FERRY_OCI_LAYOUT` (the image
    /// layout directory) and `FERRY_OCI_REF_NAME` (its ref.name annotation, or "").
    #[serde(default)]
    pub hook: Vec<Vec<String>>,
    /// Run after the hook with the same environment; non-zero rolls back.
    #[serde(default)]
    pub health_check: Option<Vec<String>>,
    /// Seconds a hook command or the health check may run before it is killed (with what it
    /// started) and counts as failed; default 14400 (4 hours, as Mender's modules).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// `"app"`: after the health check, commit only once the application confirms
    /// (`ferry-secondary confirm container NAME`) within `confirm_timeout_secs`; else roll back.
    #[serde(default)]
    pub confirm: super::confirm::ConfirmMode,
    /// The confirmation window in seconds; default 300.
    #[serde(default)]
    pub confirm_timeout_secs: Option<u64>,
    /// Images of a name kept in the store after a commit besides the live one (the most
    /// recent first); default 1. Blobs only they reference stay; the rest are deleted.
    #[serde(default)]
    pub keep_previous: Option<usize>,
}

impl ContainerSettings {
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.store_dir.as_mut().filter(|p| p.is_relative()) {
            *p = base.join(&*p);
        }
    }

    /// Why the settings are unusable, if they are.
    pub fn problem(&self) -> Option<&'static str> {
        if self.hook.iter().any(Vec::is_empty) {
            return Some("[container] hook commands must each name a program");
        }
        if matches!(&self.health_check, Some(argv) if argv.is_empty()) {
            return Some("[container] health_check must name a program");
        }
        if self.timeout_secs == Some(0) {
            return Some("[container] timeout_secs must be at least 1");
        }
        if self.confirm_timeout_secs == Some(0) {
            return Some("[container] confirm_timeout_secs must be at least 1");
        }
        None
    }
}

#[derive(Debug, Clone)]
pub struct ContainerInstaller {
    store: Store,
    hook: Vec<Vec<String>>,
    health_check: Option<Vec<String>>,
    timeout: Duration,
    /// The application's confirmation window (`confirm = "app"`).
    confirm: Option<Duration>,
    keep_previous: usize,
    /// What the last prepare did, for tests and logs.
    last_import: Option<Imported>,
}

/// The image name: `custom.name`, else the target file name up to its first dot; one plain
/// path segment that is not hidden (hidden names are the store's own).
fn image_name(job: &InstallJob<'_>) -> Result<String> {
    let target = ferry_core::TargetName::new(job.target_name)?;
    let (_, file) = target.split_dir();
    let name = match &job.custom.name {
        Some(name) => name.clone(),
        None => file.split('.').next().unwrap_or(file).to_owned(),
    };
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(Error::InstallFailed {
            target: job.target_name.to_owned(),
            step: "prepare",
            detail: format!("container name check failed: {name:?} is not a plain file name"),
            outcome: "nothing was changed",
        });
    }
    Ok(name)
}

impl ContainerInstaller {
    pub fn new(settings: &ContainerSettings, data_dir: &Path) -> ContainerInstaller {
        let root = settings
            .store_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("containers"));
        ContainerInstaller {
            store: Store::new(root),
            hook: settings.hook.clone(),
            health_check: settings.health_check.clone(),
            timeout: capture::limit(settings.timeout_secs),
            confirm: super::confirm::window(settings.confirm, settings.confirm_timeout_secs),
            keep_previous: settings.keep_previous.unwrap_or(1),
            last_import: None,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Blobs stored and reused by the last prepare.
    pub fn last_import(&self) -> Option<Imported> {
        self.last_import
    }

    fn env(&self, name: &str, id: &str, action: &str) -> Vec<(&'static str, String)> {
        let layout = self.store.layout(name, id);
        let ref_name = std::fs::read(layout.join("index.json"))
            .ok()
            .and_then(|index| oci::ref_name(&index))
            .unwrap_or_default();
        vec![
            ("FERRY_CONTAINER_NAME", name.to_owned()),
            ("FERRY_CONTAINER_ID", id.to_owned()),
            ("FERRY_CONTAINER_ACTION", action.to_owned()),
            ("FERRY_OCI_LAYOUT", layout.display().to_string()),
            ("FERRY_OCI_REF_NAME", ref_name),
        ]
    }

    /// Run every hook command for image `id` of `name`; the first failure stops.
    fn run_hook(&self, name: &str, id: &str, action: &str) -> Result<()> {
        let env = self.env(name, id, action);
        for argv in &self.hook {
            let what = format!("container runtime hook ({action} {name})");
            capture::run(argv, None, &env, self.timeout)?.require_success(&what, &argv[0])?;
        }
        Ok(())
    }

    /// Make `previous/<name>` current again and restart it; `action` names why for the hook.
    fn restore(&self, name: &str, action: &str) -> Result<()> {
        let Some(previous) = self.store.read_ref(Ref::Previous, name)? else {
            return Ok(());
        };
        if previous.is_empty() {
            // No image was live before: none is now. (The runtime keeps whatever the hook
            // started; there is no earlier image to start instead.)
            self.store.remove_ref(Ref::Current, name)?;
        } else {
            self.store.write_ref(Ref::Current, name, &previous)?;
            self.run_hook(name, &previous, action)?;
        }
        // Only once the previous image runs again: a crash before this repeats the restore.
        self.store.remove_ref(Ref::Previous, name)
    }

    fn next_id(&self, name: &str) -> Result<String> {
        self.store
            .read_ref(Ref::Next, name)?
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::Order("container install needs a prepared image; prepare did not finish")
            })
    }
}

impl Installer for ContainerInstaller {
    fn domain(&self) -> &'static str {
        "container"
    }

    fn prepare(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let name = image_name(job)?;
        let incoming = self.store.fresh_incoming()?;
        let store = &self.store;
        let checked = oci::check_archive(job.image, job.length, &incoming, &|hex| {
            store.stored_blob(hex)
        })?;
        if checked.unreferenced > 0 {
            tracing::info!(
                target = job.target_name,
                count = checked.unreferenced,
                "container archive carries blobs nothing references; not imported"
            );
        }
        let imported = self.store.import(&name, &checked)?;
        self.store.write_ref(Ref::Next, &name, &checked.id)?;
        self.store.drop_incoming()?;
        tracing::info!(target = job.target_name, id = %checked.id, stored = imported.stored,
            reused = imported.reused, "container image imported");
        self.last_import = Some(imported);
        Ok(())
    }

    fn install(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let name = image_name(job)?;
        let next = self.next_id(&name)?;
        let current = self.store.read_ref(Ref::Current, &name)?;
        let switched = current.as_deref() == Some(next.as_str());
        let recorded = self.store.read_ref(Ref::Previous, &name)?.is_some();
        // A repeat after the switch must not record the new image as the one to go back to.
        if !(switched && recorded) {
            self.store
                .write_ref(Ref::Previous, &name, current.as_deref().unwrap_or(""))?;
        }
        self.store.write_ref(Ref::Current, &name, &next)?;
        self.run_hook(&name, &next, "install")
    }

    fn verify(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let Some(argv) = &self.health_check else {
            return Ok(());
        };
        let name = image_name(job)?;
        let id = self
            .store
            .read_ref(Ref::Current, &name)?
            .unwrap_or_default();
        let what = format!("container health check ({name})");
        capture::run(argv, None, &self.env(&name, &id, "install"), self.timeout)?
            .require_success(&what, &argv[0])?;
        Ok(())
    }

    fn confirm_timeout(&self) -> Option<Duration> {
        self.confirm
    }

    fn commit(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let name = image_name(job)?;
        // The image replaced joins the kept ones before the previous reference goes (the
        // commit point), so a crash in between keeps it rather than losing it.
        if let Some(previous) = self.store.read_ref(Ref::Previous, &name)? {
            let current = self.store.read_ref(Ref::Current, &name)?;
            self.store
                .keep(&name, &previous, current.as_deref(), self.keep_previous)?;
        }
        self.store.remove_ref(Ref::Previous, &name)?;
        self.store.collect_garbage(&name)?;
        Ok(())
    }

    fn rollback(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let name = image_name(job)?;
        self.restore(&name, "rollback")
    }

    fn cleanup(&mut self, job: &InstallJob<'_>) -> Result<()> {
        let name = image_name(job)?;
        self.store.drop_incoming()?;
        self.store.remove_ref(Ref::Next, &name)?;
        self.store.collect_garbage(&name)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_time_limit_is_refused() {
        let zero = ContainerSettings {
            timeout_secs: Some(0),
            ..ContainerSettings::default()
        };
        assert_eq!(
            zero.problem(),
            Some("[container] timeout_secs must be at least 1")
        );
    }
}
