//! The app installer: an update whose swap fails, or whose new copy fails its health check, is
//! rolled back to the previous copy with provides and the installed-image record unchanged.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::install::app::AppInstaller;
use ferry_secondary::{Ecu, Error, InstallJob, Installer, VerificationMode};

const V1: &[u8] = b"app v1";
const V2: &[u8] = b"app v2, much improved";

/// The app installer with a swap that breaks half-way: the live copy has been moved to the
/// backup when the new copy turns out to be gone.
#[derive(Debug)]
struct BrokenSwap(AppInstaller, std::path::PathBuf);

impl Installer for BrokenSwap {
    fn domain(&self) -> &'static str {
        "app"
    }
    fn prepare(&mut self, job: &InstallJob<'_>) -> ferry_secondary::Result<()> {
        self.0.prepare(job)
    }
    fn install(&mut self, job: &InstallJob<'_>) -> ferry_secondary::Result<()> {
        std::fs::remove_dir_all(self.1.join(".demo.new")).unwrap();
        self.0.install(job)
    }
    fn commit(&mut self, job: &InstallJob<'_>) -> ferry_secondary::Result<()> {
        self.0.commit(job)
    }
    fn rollback(&mut self, job: &InstallJob<'_>) -> ferry_secondary::Result<()> {
        self.0.rollback(job)
    }
    fn cleanup(&mut self, job: &InstallJob<'_>) -> ferry_secondary::Result<()> {
        self.0.cleanup(job)
    }
}

fn installed_v1(v: &mut Vehicle) -> Ecu {
    v.offer("apps/demo-1.bin", V1, app_custom("demo", "1", 1));
    let mut ecu = v.ecu();
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &V1[..]).unwrap();
    ecu.install(now()).unwrap();
    ecu
}

fn offer_v2(v: &mut Vehicle, ecu: &mut Ecu) {
    v.offer("apps/demo-2.bin", V2, app_custom("demo", "2", 2));
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &V2[..]).unwrap();
}

fn assert_v1_restored(v: &Vehicle, ecu: &Ecu, err: &Error) {
    assert!(
        err.to_string().contains("restored the previous copy"),
        "{err}"
    );
    assert_eq!(v.app_file("demo", "demo-1.bin").unwrap(), V1);
    assert!(v.app_file("demo", "demo-2.bin").is_none());
    let leftovers: Vec<String> = std::fs::read_dir(&v.config.apps_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        ["demo"],
        "no backup or staging directory is left"
    );
    assert_eq!(
        ecu.status().unwrap().installed.unwrap().target,
        "apps/demo-1.bin"
    );
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.demo.version"],
        "1"
    );
    let status = ecu.status().unwrap();
    let (last, attacks) = (status.last_install, status.attacks_detected);
    assert_eq!(last.unwrap().result, InstallResult::RolledBack);
    assert_eq!(attacks, "");
}

#[test]
fn a_failed_swap_restores_the_previous_copy() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut ecu = installed_v1(&mut v);
    let apps = v.config.apps_dir.clone();
    ecu.installers_mut()
        .add(Box::new(BrokenSwap(AppInstaller::new(&apps, None), apps)));
    offer_v2(&mut v, &mut ecu);
    let err = ecu.install(now()).unwrap_err();
    assert!(err.to_string().contains("failed at install"), "{err}");
    assert_v1_restored(&v, &ecu, &err);
    let steps: Vec<String> = ecu
        .journal_entries()
        .unwrap()
        .into_iter()
        .skip(5)
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        steps,
        ["download", "install", "rollback", "failure", "cleanup"]
    );
}

#[test]
fn a_failed_health_check_restores_the_previous_copy() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut ecu = installed_v1(&mut v);
    drop(ecu);
    // The check sees the new copy live, then fails.
    v.config.app_health_check = Some(vec![
        "sh".into(),
        "-c".into(),
        "test -f \"$FERRY_APP_DIR/demo-2.bin\" && exit 3".into(),
    ]);
    ecu = v.ecu();
    offer_v2(&mut v, &mut ecu);
    let err = ecu.install(now()).unwrap_err();
    assert!(
        err.to_string()
            .contains("app health check failed: sh exit status: 3"),
        "{err}"
    );
    assert_v1_restored(&v, &ecu, &err);
}

#[test]
fn a_health_check_that_hangs_is_killed_at_its_limit_and_the_copy_restored() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut ecu = installed_v1(&mut v);
    drop(ecu);
    v.config.app_health_check = Some(vec!["sleep".into(), "600".into()]);
    v.config.app_health_timeout_secs = Some(1);
    ecu = v.ecu();
    offer_v2(&mut v, &mut ecu);
    let err = ecu.install(now()).unwrap_err();
    assert!(
        err.to_string().contains("killed after 1s (its time limit)"),
        "{err}"
    );
    assert_v1_restored(&v, &ecu, &err);
}

#[test]
fn an_interrupted_swap_is_recovered_at_start() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let ecu = installed_v1(&mut v);
    drop(ecu);
    // A crash between the two renames: the backup exists, the live copy does not.
    let apps = &v.config.apps_dir;
    std::fs::rename(apps.join("demo"), apps.join(".demo.backup")).unwrap();
    let _ecu = v.ecu();
    assert_eq!(v.app_file("demo", "demo-1.bin").unwrap(), V1);
}
