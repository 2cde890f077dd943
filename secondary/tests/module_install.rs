//! Update modules through the ECU: a Mender-style shell module installs through the v3
//! protocol and rolls back through it, called with exactly Mender's states in Mender's order;
//! a module that cannot roll back is not asked to, and the failure says so.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/module.rs"]
mod module;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::{Ecu, VerificationMode};
use module::{Module, DOMAIN};
use serde_json::{json, Value};

fn custom(version: &str, counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": DOMAIN,
            "name": "conf", "version": version })
}

fn vehicle(supports_rollback: &str) -> (Vehicle, Module) {
    let mut v = Vehicle::new(VerificationMode::Full);
    let m = module::write(v.dir.path(), supports_rollback);
    v.config.modules.dir = Some(m.dir.clone());
    (v, m)
}

fn offer(v: &mut Vehicle, ecu: &mut Ecu, name: &str, content: &[u8], custom: Value) {
    v.offer(name, content, custom);
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &content[..]).unwrap();
}

const INSTALLED: [&str; 6] = [
    "Download",
    "SupportsRollback",
    "ArtifactInstall",
    "NeedsArtifactReboot",
    "ArtifactCommit",
    "Cleanup",
];

fn installed_v1(v: &mut Vehicle, m: &Module) -> Ecu {
    let mut ecu = v.ecu();
    offer(
        v,
        &mut ecu,
        "conf/conf-1.txt",
        b"setting = 1\n",
        custom("1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(m.take_states(), INSTALLED);
    assert_eq!(m.installed().unwrap(), "setting = 1\n");
    ecu
}

/// Offer v2 (`payload`) to `ecu`, running v1, and install it: its ArtifactCommit fails. Checks
/// that the error names the commit step and the restore, that the module was taken back
/// through Mender's rollback states, and that v1 is installed again; returns the error.
fn v2_fails_at_commit(v: &mut Vehicle, m: &Module, ecu: &mut Ecu, payload: &[u8]) -> String {
    offer(v, ecu, "conf/conf-2.txt", payload, custom("2", 2));
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("failed at commit"), "{err}");
    assert!(
        err.contains(&format!(
            "update module {DOMAIN} in state ArtifactCommit failed: "
        )),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(
        m.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "ArtifactCommit",
            "SupportsRollback",
            "ArtifactRollback",
            "ArtifactFailure",
            "Cleanup",
        ]
    );
    assert_eq!(m.installed().unwrap(), "setting = 1\n");
    err
}

#[test]
fn a_shell_module_installs_and_rolls_back_through_the_protocol() {
    let (mut v, m) = vehicle("Yes");
    let mut ecu = installed_v1(&mut v, &m);
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.conf.version"],
        "1"
    );
    // The file tree the module saw for v1.
    let dump = std::fs::read_to_string(&m.dump).unwrap();
    let tree = v.config.data_dir.join("modules").join(DOMAIN).join("tree");
    assert_eq!(
        dump,
        format!(
            "version=3\ncurrent=\nname=conf/conf-1.txt\ntype={DOMAIN}\ndevice={HW}\ncwd={}\n",
            tree.display()
        )
    );

    let err = v2_fails_at_commit(&mut v, &m, &mut ecu, b"setting = broken\n");
    assert!(err.contains("commit refused: broken payload"), "{err}");
    // v2's tree named v1 as the current artifact.
    let dump = std::fs::read_to_string(&m.dump).unwrap();
    assert!(dump.contains("current=conf/conf-1.txt\n"), "{dump}");
    assert!(!tree.exists(), "cleanup removes the file tree");
    let last = ecu.status().unwrap().last_install;
    assert_eq!(last.unwrap().result, InstallResult::RolledBack);
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.conf.version"],
        "1"
    );
}

#[test]
fn a_module_without_rollback_is_not_asked_to_roll_back() {
    let (mut v, m) = vehicle("No");
    let mut ecu = installed_v1(&mut v, &m);
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-2.txt",
        b"setting = broken\n",
        custom("2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("SupportsRollback"), "{err}");
    assert!(err.contains("no rollback was attempted"), "{err}");
    assert!(
        err.contains("the previous copy could not be restored"),
        "{err}"
    );
    assert_eq!(
        m.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "ArtifactCommit",
            "SupportsRollback",
            "ArtifactFailure",
            "Cleanup",
        ]
    );
    // Left as the module left it: the new (uncommitted) payload.
    assert_eq!(m.installed().unwrap(), "setting = broken\n");
    let last = ecu.status().unwrap().last_install;
    assert_eq!(last.unwrap().result, InstallResult::Failure);
}

#[test]
fn a_failing_download_runs_only_cleanup_and_names_the_state() {
    let (mut v, m) = vehicle("Yes");
    let mut ecu = installed_v1(&mut v, &m);
    // Replace the module by one whose Download fails (Mender: Cleanup is all that follows).
    let script = format!(
        "#!/bin/sh\necho \"$1\" >> '{}'\n[ \"$1\" != Download ] || {{ echo 'no space left' >&2; exit 7; }}\n",
        m.log.display()
    );
    std::fs::write(m.dir.join(DOMAIN), script).unwrap();
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-2.txt",
        b"setting = 2\n",
        custom("2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("update module {DOMAIN} in state Download failed")),
        "{err}"
    );
    assert!(err.contains("exit status: 7"), "{err}");
    assert!(err.contains("no space left"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(m.take_states(), ["Download", "Cleanup"]);
    assert_eq!(m.installed().unwrap(), "setting = 1\n");
}

#[test]
fn a_domain_without_a_module_is_refused_before_download() {
    let (mut v, _m) = vehicle("Yes");
    let mut ecu = v.ecu();
    let mut other = custom("1", 1);
    other["domain"] = json!("no-such-module");
    v.offer("conf/other-1.txt", b"x", other);
    let err = ecu
        .receive_metadata(&v.bundle(), now())
        .unwrap_err()
        .to_string();
    assert!(err.contains("domain check failed"), "{err}");
    assert!(
        err.contains(DOMAIN),
        "the installed domains are listed: {err}"
    );
}

#[test]
fn a_module_that_reboots_itself_is_called_through_the_reboot_states() {
    let mut v = Vehicle::new(VerificationMode::Full);
    // `Yes`: the module reboots what it updates itself (here: nothing) in ArtifactReboot.
    let m = module::write_answers(v.dir.path(), "Yes", "Yes");
    v.config.modules.dir = Some(m.dir.clone());
    let mut ecu = v.ecu();
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-1.txt",
        b"setting = 1\n",
        custom("1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        m.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "ArtifactReboot",
            "ArtifactVerifyReboot",
            "ArtifactCommit",
            "Cleanup",
        ]
    );
    assert_eq!(m.installed().unwrap(), "setting = 1\n");
}

#[test]
fn automatic_reboot_without_a_reboot_command_is_refused_and_rolled_back() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let m = module::write_answers(v.dir.path(), "Yes", "Automatic");
    v.config.modules.dir = Some(m.dir.clone());
    let mut ecu = v.ecu();
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-1.txt",
        b"setting = 1\n",
        custom("1", 1),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("failed at reboot"), "{err}");
    assert!(err.contains("reboot_command is not set"), "{err}");
    // The rollback reboot cannot happen either; ArtifactFailure and Cleanup still run.
    assert_eq!(
        m.take_states(),
        [
            "Download",
            "SupportsRollback",
            "ArtifactInstall",
            "NeedsArtifactReboot",
            "SupportsRollback",
            "ArtifactRollback",
            "ArtifactFailure",
            "Cleanup",
        ]
    );
    // First install: rolling back removed the payload again.
    assert!(m.installed().is_none());
}

#[test]
fn a_module_past_its_time_limit_is_killed_and_the_update_rolled_back() {
    let (mut v, m) = vehicle("Yes");
    v.config.modules.timeout_secs = Some(1);
    let mut ecu = installed_v1(&mut v, &m);
    let err = v2_fails_at_commit(&mut v, &m, &mut ecu, b"setting = hang\n");
    assert!(err.contains("killed after 1s (its time limit)"), "{err}");
    assert!(err.contains("committing, slowly"), "{err}");
}
