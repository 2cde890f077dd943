//! A crash between the update module installer's steps: a fresh installer, as after a
//! restart, runs what the driver's resume runs for the journaled step, and the module ends
//! with exactly the old or the new payload installed; states that finished are not repeated.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/module.rs"]
mod module;

use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::metadata::{hashes_of, Hashes};
use ferry_secondary::install::module::{ModuleInstaller, ModuleSettings};
use ferry_secondary::{InstallJob, Installer};
use module::{Module, DOMAIN};
use std::path::PathBuf;

struct Rig {
    dir: tempfile::TempDir,
    module: Module,
    custom: ImageCustom,
}

struct Staged {
    name: String,
    path: PathBuf,
    length: u64,
    hashes: Hashes,
}

impl Rig {
    /// The module installed v1 and its log is empty.
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let module = module::write(dir.path(), "Yes");
        let custom = serde_json::from_value(serde_json::json!({
            "hardwareIds": ["hw"], "domain": DOMAIN, "name": "conf", "version": "1"
        }))
        .unwrap();
        let rig = Rig {
            dir,
            module,
            custom,
        };
        let v1 = rig.stage("conf-1.txt", b"setting = 1\n");
        let job = rig.job(&v1);
        let mut i = rig.installer();
        i.prepare(&job).unwrap();
        i.install(&job).unwrap();
        i.commit(&job).unwrap();
        i.cleanup(&job).unwrap();
        rig.module.take_states();
        rig
    }

    fn installer(&self) -> ModuleInstaller {
        let settings = ModuleSettings {
            dir: Some(self.module.dir.clone()),
            work_dir: Some(self.dir.path().join("work")),
            ..ModuleSettings::default()
        };
        let program = self.module.dir.join(DOMAIN);
        ModuleInstaller::new(DOMAIN, program, &settings, self.dir.path(), "hw")
    }

    fn stage(&self, name: &str, bytes: &[u8]) -> Staged {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        Staged {
            name: format!("conf/{name}"),
            path,
            length: bytes.len() as u64,
            hashes: hashes_of(bytes),
        }
    }

    fn job<'a>(&'a self, s: &'a Staged) -> InstallJob<'a> {
        InstallJob {
            target_name: &s.name,
            custom: &self.custom,
            image: &s.path,
            length: s.length,
            hashes: &s.hashes,
        }
    }

    fn tree_gone(&self) -> bool {
        !self
            .dir
            .path()
            .join("work")
            .join(DOMAIN)
            .join("tree")
            .exists()
    }
}

#[test]
fn crash_during_download_runs_cleanup_only() {
    let rig = Rig::new();
    let v2 = rig.stage("conf-2.txt", b"setting = 2\n");
    let job = rig.job(&v2);
    rig.installer().prepare(&job).unwrap();
    let mut fresh = rig.installer();
    fresh.restarted(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_eq!(
        rig.module.take_states(),
        ["Download", "SupportsRollback", "Cleanup"]
    );
    assert_eq!(rig.module.installed().unwrap(), "setting = 1\n");
    assert!(rig.tree_gone());
}

#[test]
fn crash_after_artifact_install_rolls_back() {
    let rig = Rig::new();
    let v2 = rig.stage("conf-2.txt", b"setting = 2\n");
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.restarted(&job).unwrap();
    fresh.rollback(&job).unwrap();
    assert!(!fresh.needs_reboot(&job));
    fresh.cleanup(&job).unwrap();
    assert_eq!(
        rig.module.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "SupportsRollback",
            "ArtifactRollback",
            "ArtifactFailure",
            "Cleanup"
        ]
    );
    assert_eq!(rig.module.installed().unwrap(), "setting = 1\n");
    assert!(rig.tree_gone());
}

#[test]
fn a_finished_rollback_is_not_run_twice() {
    let rig = Rig::new();
    let v2 = rig.stage("conf-2.txt", b"setting = 2\n");
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    first.rollback(&job).unwrap();
    drop(first);
    rig.module.take_states();
    // The journal still says rollback: the resume runs it again.
    let mut fresh = rig.installer();
    fresh.rollback(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_eq!(rig.module.take_states(), ["ArtifactFailure", "Cleanup"]);
    assert_eq!(rig.module.installed().unwrap(), "setting = 1\n");
}

#[test]
fn crash_inside_commit_commits_again() {
    let rig = Rig::new();
    let v2 = rig.stage("conf-2.txt", b"setting = 2\n");
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.commit(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_eq!(
        rig.module.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "ArtifactCommit",
            "Cleanup"
        ]
    );
    assert_eq!(rig.module.installed().unwrap(), "setting = 2\n");
    assert!(rig.tree_gone());
}
