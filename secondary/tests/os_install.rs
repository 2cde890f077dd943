//! The `os` domain on real slot files and real boot environments (a file, and fake
//! `fw_printenv`/`fw_setenv` and `grub-editenv` executables that keep their variables in a
//! file): the first install boots the new slot and provides its rootfs claims; a persistent
//! app's claims survive an OS swap; a target depending on an unprovided key is refused before
//! anything changes; a failed health check or a boot past the boot limit rolls back to the old
//! slot with the old provides.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_core::metadata::Signed;
use ferry_secondary::config::{BootBackend, OsConfig};
use ferry_secondary::install::boot::parse_lines;
use ferry_secondary::{Ecu, Installed, VerificationMode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const OS1: &[u8] = b"poky rootfs 1.0 ...................................";
const OS2: &[u8] = b"poky rootfs 2.0, shorter";
const APP: &[u8] = b"demo-app 1.0";

fn os_custom(version: &str, counter: u64, extra: &[(&str, &str)]) -> Value {
    let provides: BTreeMap<&str, &str> = extra.iter().copied().collect();
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "os", "name": "poky",
            "version": version, "provides": provides })
}

fn os_config(v: &Vehicle, boot: BootBackend) -> OsConfig {
    let root = v.dir.path();
    OsConfig {
        slots: vec![root.join("slot-a.img"), root.join("slot-b.img")],
        boot,
        boot_env: Some(root.join("bootenv")),
        bootlimit: 3,
        health_check: None,
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: root.join("fw_printenv"),
        fw_setenv: root.join("fw_setenv"),
        grub_editenv: root.join("grub-editenv"),
    }
}

fn with_os(boot: BootBackend) -> Vehicle {
    let mut v = Vehicle::new(VerificationMode::Full);
    // The old OS image the device shipped with, in slot a.
    std::fs::write(v.dir.path().join("slot-a.img"), b"factory image").unwrap();
    v.config.os = Some(os_config(&v, boot));
    write_fake_tools(v.dir.path());
    v
}

fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// U-Boot's and GRUB's tools as small programs keeping `key=value` lines in `fake-env`.
fn write_fake_tools(dir: &Path) {
    let env = dir.join("fake-env");
    let env = env.display();
    script(
        &dir.join("fw_printenv"),
        &format!("[ -f '{env}' ] && cat '{env}'\nexit 0\n"),
    );
    script(
        &dir.join("fw_setenv"),
        &format!(
            "[ \"$1\" = -s ] || {{ echo 'usage: fw_setenv -s SCRIPT' >&2; exit 2; }}\n\
             touch '{env}'\n\
             while read -r k v; do grep -v \"^$k=\" '{env}' > '{env}.tmp'; echo \"$k=$v\" >> '{env}.tmp'; mv '{env}.tmp' '{env}'; done < \"$2\"\n"
        ),
    );
    script(
        &dir.join("grub-editenv"),
        &format!(
            "[ \"$1\" = '{}' ] || {{ echo \"unexpected grubenv $1\" >&2; exit 2; }}\n\
             f='{env}'; cmd=$2; shift 2\n\
             case $cmd in\n\
             list) [ -f \"$f\" ] && grep -v '^#' \"$f\"; exit 0;;\n\
             set) touch \"$f\"; for kv in \"$@\"; do k=${{kv%%=*}}; grep -v \"^$k=\" \"$f\" > \"$f.tmp\"; echo \"$kv\" >> \"$f.tmp\"; mv \"$f.tmp\" \"$f\"; done;;\n\
             *) echo \"unknown command $cmd\" >&2; exit 2;;\n\
             esac\n",
            dir.join("bootenv").display()
        ),
    );
}

/// The boot variables wherever the backend keeps them.
fn boot_env(v: &Vehicle) -> BTreeMap<String, String> {
    let os = v.config.os.as_ref().unwrap();
    let file = match os.boot {
        BootBackend::File => v.dir.path().join("bootenv"),
        BootBackend::Uboot | BootBackend::Grub => v.dir.path().join("fake-env"),
    };
    parse_lines(&std::fs::read_to_string(file).unwrap())
}

fn slot(v: &Vehicle, name: &str) -> Vec<u8> {
    std::fs::read(v.dir.path().join(format!("slot-{name}.img"))).unwrap()
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

/// Offer and install os 2.0 (release counter 2, no extra provides).
fn install_2(v: &mut Vehicle, ecu: &mut Ecu) -> ferry_secondary::Result<Installed> {
    install(v, ecu, "os/poky-2.0.img", OS2, os_custom("2.0", 2, &[]))
}

fn assert_booted(v: &Vehicle, slot: &str, upgrade: &str, count: &str) {
    let env = boot_env(v);
    assert_eq!(env["boot_slot"], slot, "{env:?}");
    assert_eq!(env["upgrade_available"], upgrade, "{env:?}");
    assert_eq!(env["bootcount"], count, "{env:?}");
}

fn first_boot(boot: BootBackend) -> (Vehicle, Ecu) {
    let mut v = with_os(boot);
    let mut ecu = v.ecu();
    let done = install(
        &mut v,
        &mut ecu,
        "os/poky-1.0.img",
        OS1,
        os_custom("1.0", 1, &[("rootfs-image.python.version", "3.13")]),
    )
    .unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    (v, ecu)
}

#[test]
fn the_first_os_install_boots_the_new_slot_and_provides_its_rootfs_claims() {
    let (v, ecu) = first_boot(BootBackend::File);
    assert_eq!(slot(&v, "b"), OS1);
    assert_eq!(
        slot(&v, "a"),
        b"factory image",
        "the booted slot is never written"
    );
    assert_booted(&v, "b", "0", "0");
    let provides = ecu.status().unwrap().provides;
    assert_eq!(provides["rootfs-image.version"], "1.0");
    // The shipped claim is cleared by the OS's default clears, then provided anew.
    assert_eq!(provides["rootfs-image.python.version"], "3.13");
    let status = ecu.status().unwrap();
    assert_eq!(status.installed_domains["os"].target, "os/poky-1.0.img");
    assert_eq!(
        status.installed_domains["os"].version.as_deref(),
        Some("1.0")
    );
    assert_eq!(status.in_flight, None);
    let report: Signed<ferry_core::manifest::EcuVersionReport> = ecu.report("n-1", now()).unwrap();
    let domains = &report.signed.extra["installed_domains"];
    assert_eq!(domains["os"]["target"], "os/poky-1.0.img");
    assert_eq!(domains["os"]["version"], "1.0");
    assert_eq!(domains["os"]["length"], OS1.len());
    assert_eq!(report.signed.installed_image.filepath, "os/poky-1.0.img");
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
}

#[test]
fn a_persistent_app_survives_an_os_swap_and_unmet_depends_are_refused() {
    let (mut v, mut ecu) = first_boot(BootBackend::File);
    let app = json!({ "hardwareIds": [HW], "releaseCounter": 1, "domain": "app",
                      "name": "demo-app", "version": "1.0" });
    install(&mut v, &mut ecu, "apps/demo-app-1.0.bin", APP, app).unwrap();
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.demo-app.version"],
        "1.0"
    );

    install_2(&mut v, &mut ecu).unwrap();
    assert_eq!(slot(&v, "a"), OS2);
    assert_booted(&v, "a", "0", "0");
    let provides = ecu.status().unwrap().provides;
    assert_eq!(provides["rootfs-image.version"], "2.0");
    assert!(
        !provides.contains_key("rootfs-image.python.version"),
        "{provides:?}"
    );
    assert_eq!(provides["data-partition.demo-app.version"], "1.0");
    assert_eq!(v.app_file("demo-app", "demo-app-1.0.bin").unwrap(), APP);
    let domains = ecu.status().unwrap().installed_domains;
    assert_eq!(domains["app"].target, "apps/demo-app-1.0.bin");
    assert_eq!(domains["os"].target, "os/poky-2.0.img");

    let cuda = json!({ "hardwareIds": [HW], "releaseCounter": 1, "domain": "app", "name": "ml",
                       "version": "1", "depends": {"rootfs-image.cuda.version": "11.8"} });
    v.offer("apps/ml-1.bin", b"ml", cuda);
    let err = ecu
        .receive_metadata(&v.bundle(), now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Missing 'rootfs-image.cuda.version' in provides, required by target depends"),
        "{err}"
    );
    assert!(err.contains("System not modified"), "{err}");
    assert_eq!(ecu.status().unwrap().provides, provides);
    assert_eq!(slot(&v, "a"), OS2);
    assert_booted(&v, "a", "0", "0");
}

fn failing_health(v: &mut Vehicle) {
    // Healthy on slot b (1.0), broken on slot a (2.0).
    v.config.os.as_mut().unwrap().health_check = Some(vec![
        "sh".into(),
        "-c".into(),
        "test \"$FERRY_OS_SLOT\" = b".into(),
    ]);
}

fn assert_rolled_back_to_1(v: &Vehicle, ecu: &Ecu, check: &str) {
    assert_booted(v, "b", "0", "0");
    assert_eq!(slot(v, "b"), OS1);
    let provides = ecu.status().unwrap().provides;
    assert_eq!(provides["rootfs-image.version"], "1.0");
    assert_eq!(provides["rootfs-image.python.version"], "3.13");
    let status = ecu.status().unwrap();
    assert_eq!(status.installed_domains["os"].target, "os/poky-1.0.img");
    assert_eq!(status.in_flight, None);
    let last = status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);
    assert!(last.detail.contains(check), "{}", last.detail);
    assert_eq!(status.attacks_detected, "");
}

#[test]
fn a_failed_health_check_after_the_reboot_rolls_back_to_the_old_slot() {
    for boot in [BootBackend::File, BootBackend::Uboot, BootBackend::Grub] {
        let (mut v, ecu) = first_boot(boot);
        drop(ecu);
        failing_health(&mut v);
        let mut ecu = v.ecu();
        let err = install_2(&mut v, &mut ecu).unwrap_err().to_string();
        assert!(
            err.contains("failed at verify-reboot: os health check failed"),
            "{boot:?}: {err}"
        );
        assert!(err.contains("restored the previous copy"), "{err}");
        assert_rolled_back_to_1(&v, &ecu, "os health check failed");
        let steps: Vec<String> = ecu
            .journal_entries()
            .unwrap()
            .into_iter()
            .skip(6)
            .map(|(s, _)| s)
            .collect();
        assert_eq!(
            steps,
            [
                "download",
                "install",
                "reboot",
                "verify-reboot",
                "rollback",
                "rollback-reboot",
                "failure",
                "cleanup"
            ]
        );
    }
}

#[test]
fn a_health_check_that_hangs_is_killed_at_its_limit_and_rolls_back() {
    let (mut v, ecu) = first_boot(BootBackend::File);
    drop(ecu);
    let os = v.config.os.as_mut().unwrap();
    os.health_check = Some(vec!["sleep".into(), "600".into()]);
    os.timeout_secs = Some(1);
    let mut ecu = v.ecu();
    let err = install_2(&mut v, &mut ecu).unwrap_err().to_string();
    assert!(err.contains("killed after 1s (its time limit)"), "{err}");
    assert_rolled_back_to_1(&v, &ecu, "os health check failed");
}

/// A real reboot: `reboot_command` runs and the install answers pending; the test then plays
/// the bootloader (which counts boots on trial) and starts the ECU again.
fn install_with_reboot(v: &mut Vehicle, bootloader: impl FnOnce(&Path)) -> Ecu {
    let marker = v.dir.path().join("rebooted");
    v.config.os.as_mut().unwrap().reboot_command = Some(vec![
        "sh".into(),
        "-c".into(),
        format!("echo reboot >> '{}'", marker.display()),
    ]);
    let mut ecu = v.ecu();
    let done = install_2(v, &mut ecu).unwrap();
    assert!(matches!(done, Installed::RebootPending { .. }), "{done:?}");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    assert_eq!(ecu.status().unwrap().in_flight.as_deref(), Some("reboot"));
    assert_booted(v, "a", "1", "0");
    drop(ecu);
    bootloader(&v.dir.path().join("bootenv"));
    v.ecu()
}

/// The rollback switched back to slot b and rebooted; the ECU starts on it and records the
/// outcome.
fn reboot_back(v: &Vehicle, ecu: Ecu) -> Ecu {
    assert_eq!(
        ecu.status().unwrap().in_flight.as_deref(),
        Some("rollback-reboot")
    );
    assert_booted(v, "b", "0", "0");
    drop(ecu);
    v.ecu()
}

fn set_var(env: &Path, key: &str, value: &str) {
    let mut vars = parse_lines(&std::fs::read_to_string(env).unwrap());
    vars.insert(key.into(), value.into());
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(env, text).unwrap();
}

#[test]
fn after_a_real_reboot_the_ecu_verifies_and_commits() {
    let (mut v, ecu) = first_boot(BootBackend::File);
    drop(ecu);
    let ecu = install_with_reboot(&mut v, |env| set_var(env, "bootcount", "1"));
    assert_booted(&v, "a", "0", "0");
    assert_eq!(
        ecu.status().unwrap().provides["rootfs-image.version"],
        "2.0"
    );
    let status = ecu.status().unwrap();
    assert_eq!(status.last_install.unwrap().result, InstallResult::Success);
    assert_eq!(status.in_flight, None);
}

#[test]
fn a_boot_count_past_the_limit_rolls_back() {
    let (mut v, ecu) = first_boot(BootBackend::File);
    drop(ecu);
    // Four boots on trial with bootlimit 3, the bootloader still on the new slot.
    let ecu = install_with_reboot(&mut v, |env| set_var(env, "bootcount", "4"));
    let ecu = reboot_back(&v, ecu);
    assert_rolled_back_to_1(
        &v,
        &ecu,
        "boot count check failed: bootcount 4, expected at most bootlimit 3",
    );
    assert_eq!(
        std::fs::read_to_string(v.dir.path().join("rebooted")).unwrap(),
        "reboot\nreboot\n",
        "rolled back with a reboot"
    );
}

#[test]
fn a_bootloader_that_fell_back_rolls_back() {
    let (mut v, ecu) = first_boot(BootBackend::File);
    drop(ecu);
    let ecu = install_with_reboot(&mut v, |env| {
        set_var(env, "bootcount", "4");
        set_var(env, "boot_slot", "b");
        set_var(env, "upgrade_available", "0");
    });
    let ecu = reboot_back(&v, ecu);
    assert_rolled_back_to_1(
        &v,
        &ecu,
        "boot slot check failed: the bootloader boots slot b",
    );
}

#[test]
fn a_slot_that_cannot_be_written_durably_is_refused_before_the_switch() {
    let (mut v, ecu) = first_boot(BootBackend::File);
    drop(ecu);
    // Slot a takes the bytes but cannot sync them (fsync of /dev/null fails): the write is
    // not durable, so the boot slot must not switch. (A slot that reads back different bytes
    // is refused by the re-hash, unit-tested in install::os.)
    let a: PathBuf = v.dir.path().join("slot-a.img");
    std::fs::remove_file(&a).unwrap();
    std::os::unix::fs::symlink("/dev/null", &a).unwrap();
    let mut ecu = v.ecu();
    let err = install_2(&mut v, &mut ecu).unwrap_err().to_string();
    assert!(err.contains("failed at download"), "{err}");
    assert!(err.contains("slot-a.img"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_booted(&v, "b", "0", "0");
    assert_eq!(
        ecu.status().unwrap().provides["rootfs-image.version"],
        "1.0"
    );
    assert_eq!(
        ecu.status().unwrap().last_install.unwrap().result,
        InstallResult::Failure
    );
}
