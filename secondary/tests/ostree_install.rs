//! The `ostree` domain on a real OSTree sysroot made by the test with Debian's `ostree`
//! (`admin init-fs`, `os-init`, `commit`, `admin deploy`; static deltas made with `static-delta
//! generate --inline`): v1 → v2 deploys the signed commit, boots it and provides its claims; a
//! v3 whose health check fails after the reboot is undeployed and v2 boots again; a delta that
//! yields another commit than the signed metadata names deploys nothing; bytes other than the
//! signed ones are refused before the delta is applied. Skips, saying why, without `ostree`.
#![allow(clippy::unwrap_used)]

mod common;
// The sysroot fixture the end-to-end test uses too (ferry-tests depends on this crate, so the
// file is shared by path rather than as a dependency).
#[allow(dead_code)]
#[path = "../../tests/src/ostree.rs"]
mod ostree_fixture;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::config::{BootBackend, OstreeConfig};
use ferry_secondary::install::boot::parse_lines;
use ferry_secondary::{Ecu, Installed, VerificationMode};
use ostree_fixture::{ostree, ostree_available, Os, Unfreeze, STATEROOT};
use serde_json::{json, Value};
fn ostree_custom(version: &str, counter: u64, commit: &str, from: &str) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "ostree",
            "name": "ferryos", "version": version,
            "ostree": { "commit": commit, "delivery": "static-delta", "from": from } })
}

fn with_ostree(v: &mut Vehicle, os: &Os, health: bool) {
    v.config.ostree = Some(OstreeConfig {
        sysroot: os.sysroot.clone(),
        os: STATEROOT.into(),
        ostree: "ostree".into(),
        cmdline: "/proc/cmdline".into(),
        boot: BootBackend::File,
        boot_env: Some(v.dir.path().join("bootenv")),
        bootlimit: 3,
        // Healthy when the deployment has /usr/lib/healthy.
        health_check: health.then(|| {
            vec![
                "sh".into(),
                "-c".into(),
                "test -f \"$FERRY_OSTREE_DEPLOYMENT/usr/lib/healthy\"".into(),
            ]
        }),
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: "fw_printenv".into(),
        fw_setenv: "fw_setenv".into(),
        grub_editenv: "grub-editenv".into(),
    });
}

fn install(
    v: &mut Vehicle,
    ecu: &mut Ecu,
    name: &str,
    content: &[u8],
    custom: Value,
) -> ferry_secondary::Result<Installed> {
    v.offer(name, content, custom);
    ecu.receive_metadata(&v.bundle(), now())?;
    ecu.receive_image(&mut &content[..])?;
    ecu.install(now())
}

fn boot_env(v: &Vehicle) -> std::collections::BTreeMap<String, String> {
    parse_lines(&std::fs::read_to_string(v.dir.path().join("bootenv")).unwrap())
}

#[test]
fn v2_deploys_and_boots_the_signed_commit_and_a_v3_failing_its_health_check_is_undeployed() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, true);
    let mut ecu = v.ecu();

    let c2 = os.commit("2", true);
    let delta = os.delta(&c1, &c2);
    let done = install(
        &mut v,
        &mut ecu,
        "os/ferryos-2.delta",
        &delta,
        ostree_custom("2", 2, &c2, &c1),
    )
    .unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert_eq!(os.commits(), [c2.clone(), c1.clone()]);
    let deployments = os.deployments();
    assert!(
        deployments[0].pinned,
        "the new known good deployment is pinned: {deployments:?}"
    );
    assert!(
        !deployments[1].pinned,
        "the pin moved off the old one: {deployments:?}"
    );
    let env = boot_env(&v);
    assert_eq!(env["ferry_ostree_booted"], c2, "{env:?}");
    assert_eq!(env["upgrade_available"], "0", "{env:?}");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.provides["rootfs-image.ostree.commit"], c2);
    assert_eq!(
        status.installed_domains["ostree"].target,
        "os/ferryos-2.delta"
    );
    let steps: Vec<String> = ecu
        .journal_entries()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        steps,
        [
            "download",
            "install",
            "reboot",
            "verify-reboot",
            "commit",
            "cleanup"
        ]
    );

    // v3 lacks the file its health check needs: deployed, booted, failed, undeployed.
    let c3 = os.commit("3", false);
    let delta = os.delta(&c2, &c3);
    let err = install(
        &mut v,
        &mut ecu,
        "os/ferryos-3.delta",
        &delta,
        ostree_custom("3", 3, &c3, &c2),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("failed at verify-reboot: ostree health check failed"),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(os.commits()[0], c2, "v2 is the default deployment again");
    assert!(!os.commits().contains(&c3), "{:?}", os.commits());
    assert_eq!(boot_env(&v)["ferry_ostree_booted"], c2);
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.provides["rootfs-image.ostree.commit"], c2);
    let last = status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);
    assert!(
        last.detail.contains("ostree health check failed"),
        "{}",
        last.detail
    );
}

#[test]
fn a_delta_yielding_another_commit_than_signed_or_other_bytes_deploy_nothing() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, false);
    let mut ecu = v.ecu();

    // Signed as "commit c2", but the delta (correctly signed as a file) yields c3.
    let c2 = os.commit("2", true);
    let c3 = os.commit("3", true);
    let delta = os.delta(&c1, &c3);
    let err = install(
        &mut v,
        &mut ecu,
        "os/ferryos-2.delta",
        &delta,
        ostree_custom("2", 2, &c2, &c1),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ostree commit check failed"), "{err}");
    assert!(err.contains(&format!("holds no commit {c2}")), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");
    assert_eq!(
        ecu.status()
            .unwrap()
            .provides
            .get("rootfs-image.ostree.commit"),
        None
    );

    // The right delta, but the bytes that arrive differ from the signed ones: refused as
    // they arrive, before ostree sees them.
    let good = os.delta(&c1, &c2);
    v.offer(
        "os/ferryos-2b.delta",
        &good,
        ostree_custom("2", 2, &c2, &c1),
    );
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = ecu
        .receive_image(&mut &tampered[..])
        .unwrap_err()
        .to_string();
    assert!(err.contains("hash"), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");
    let refs = ostree(&[&format!("--repo={}", os.repo().display()), "refs"]);
    assert!(!refs.contains("ferry/trial"), "{refs}");
}
