//! The `rauc` domain on a real RAUC 1.8 system made by the test (`rauc service` on a private
//! D-Bus, two raw slot files, a custom bootloader backend; plain bundles signed by a test CA):
//! v1 → v2 is installed by RAUC into slot B, booted and marked good; a v3 failing its health
//! check after the reboot is marked bad and slot B is primary again; a bundle signed by
//! another CA, or for another compatible, is refused by RAUC's own check before anything is
//! written, though Uptane accepted the file; a real reboot (a `reboot_command`) resumes.
//! Skips, saying why, without rauc, dbus or squashfs-tools.
#![allow(clippy::unwrap_used)]

mod common;
// The RAUC fixture the end-to-end test uses too (shared by path: ferry-tests depends on
// this crate).
#[allow(dead_code)]
#[path = "../../tests/src/rauc.rs"]
mod rauc_fixture;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::config::{BootBackend, RaucConfig};
use ferry_secondary::{Ecu, Installed, VerificationMode};
use rauc_fixture::{bundle, image, rauc_available, Pki, System, COMPATIBLE, HEALTHY};
use serde_json::{json, Value};

fn custom(version: &str, counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "rauc",
            "name": "ferryos", "version": version })
}

fn with_rauc(v: &mut Vehicle, system: &System) {
    v.config.rauc = Some(RaucConfig {
        rauc: "rauc".into(),
        system_conf: system.conf.clone(),
        bus: Some(system.bus.clone()),
        simulated_boot_hook: Some(vec![system.hook.display().to_string()]),
        boot: BootBackend::File,
        boot_env: Some(v.dir.path().join("bootenv")),
        bootlimit: 3,
        health_check: Some(vec!["sh".into(), "-c".into(), HEALTHY.into()]),
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

struct World {
    v: Vehicle,
    pki: Pki,
    system: System,
}

fn world() -> Option<World> {
    if !rauc_available() {
        return None;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let pki = Pki::new(&v.dir.path().join("pki"), "vendor");
    let system = System::start(&v.dir.path().join("rauc"), &pki.ca);
    with_rauc(&mut v, &system);
    Some(World { v, pki, system })
}

#[test]
fn v2_is_installed_by_rauc_booted_and_marked_good_and_a_v3_failing_its_health_check_is_marked_bad()
{
    let Some(mut w) = world() else { return };
    let mut ecu = w.v.ecu();
    let dir = w.v.dir.path().to_owned();

    let v2 = bundle(&dir, &w.pki, COMPATIBLE, "2", true);
    let done = install(
        &mut w.v,
        &mut ecu,
        "os/ferryos-2.raucb",
        &v2,
        custom("2", 2),
    )
    .unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert_eq!(w.system.slot("B"), image("2", true), "RAUC wrote slot B");
    assert_eq!(w.system.slot("A"), image("1", true), "slot A untouched");
    let bl = w.system.bootloader();
    assert_eq!(
        (bl["primary"].as_str(), bl["state_B"].as_str()),
        ("B", "good")
    );
    let status = w.system.status();
    assert_eq!(
        status["booted"], "B",
        "the hook restarted rauc service: {status}"
    );
    let ecu_status = ecu.status().unwrap();
    assert_eq!(ecu_status.provides["rootfs-image.version"], "2");
    assert_eq!(
        ecu_status.installed_domains["rauc"].target,
        "os/ferryos-2.raucb"
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
    assert!(
        !w.v.config.data_dir.join("rauc-bundle.raucb").exists(),
        "cleanup removed the kept bundle"
    );

    // v3 goes to slot A (the inactive one now), boots, fails its health check.
    let v3 = bundle(&dir, &w.pki, COMPATIBLE, "3", false);
    let err = install(
        &mut w.v,
        &mut ecu,
        "os/ferryos-3.raucb",
        &v3,
        custom("3", 3),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("failed at verify-reboot: rauc health check failed"),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(w.system.slot("A"), image("3", false), "v3 was written to A");
    assert_eq!(w.system.slot("B"), image("2", true));
    let bl = w.system.bootloader();
    assert_eq!(
        (bl["primary"].as_str(), bl["state_A"].as_str()),
        ("B", "bad"),
        "{bl:?}"
    );
    assert_eq!(w.system.status()["booted"], "B");
    let ecu_status = ecu.status().unwrap();
    assert_eq!(ecu_status.provides["rootfs-image.version"], "2");
    let last = ecu_status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);
    assert!(
        last.detail.contains("rauc health check failed"),
        "{}",
        last.detail
    );
}

#[test]
fn a_bundle_rauc_refuses_is_refused_before_anything_is_written_though_uptane_accepted_it() {
    let Some(mut w) = world() else { return };
    let mut ecu = w.v.ecu();
    let dir = w.v.dir.path().to_owned();
    let before = w.system.bootloader();

    // Signed by a CA that is not in RAUC's keyring; Uptane signed the file all the same.
    let other = Pki::new(&dir.join("other-pki"), "other");
    let evil = bundle(&dir, &other, COMPATIBLE, "2", true);
    let err = install(
        &mut w.v,
        &mut ecu,
        "os/ferryos-2.raucb",
        &evil,
        custom("2", 2),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rauc bundle signature check failed"), "{err}");
    assert!(
        err.contains("signature verification failed"),
        "RAUC's words: {err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");

    // Signed by the vendor, but for another system.
    let foreign = bundle(&dir, &w.pki, "other-board", "2", true);
    let err = install(
        &mut w.v,
        &mut ecu,
        "os/ferryos-2b.raucb",
        &foreign,
        custom("2", 2),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("rauc compatible check failed"), "{err}");
    assert!(err.contains("\"other-board\""), "{err}");

    assert_eq!(
        w.system.slot("B"),
        vec![0u8; rauc_fixture::SLOT_SIZE],
        "slot B untouched"
    );
    assert_eq!(w.system.bootloader(), before);
    assert_eq!(w.system.status()["booted"], "A");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides.get("rootfs-image.version"), None);
    assert_eq!(status.last_install.unwrap().result, InstallResult::Failure);
}

/// A real reboot: `reboot_command` runs and the install answers pending; the test plays the
/// bootloader (boots the primary slot: rauc service restarted from B) and starts the ECU.
#[test]
fn after_a_real_reboot_the_ecu_verifies_with_rauc_and_commits() {
    let Some(mut w) = world() else { return };
    let marker = w.v.dir.path().join("rebooted");
    let rauc = w.v.config.rauc.as_mut().unwrap();
    rauc.reboot_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo reboot >> '{}'", marker.display()),
    ]);
    rauc.simulated_boot_hook = None;
    let mut ecu = w.v.ecu();
    let dir = w.v.dir.path().to_owned();
    let v2 = bundle(&dir, &w.pki, COMPATIBLE, "2", true);
    let done = install(
        &mut w.v,
        &mut ecu,
        "os/ferryos-2.raucb",
        &v2,
        custom("2", 2),
    )
    .unwrap();
    assert!(matches!(done, Installed::RebootPending { .. }), "{done:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    assert_eq!(ecu.status().unwrap().in_flight.as_deref(), Some("reboot"));
    drop(ecu);

    w.system.boot("B");
    let ecu = w.v.ecu();
    let status = ecu.status().unwrap();
    assert_eq!(status.in_flight, None);
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.last_install.unwrap().result, InstallResult::Success);
    assert_eq!(w.system.bootloader()["state_B"], "good");
}
