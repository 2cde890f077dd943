//! The `rauc` domain end to end: a real Director, Image repository, `ferry-primary` and a
//! `ferry-secondary` (full verification) whose OS is a real RAUC 1.8 system (`rauc service`
//! on a private D-Bus, two raw slots, plain bundles signed by a test CA made with openssl).
//! v1 (the factory slot A) → v2 is installed by RAUC into slot B, booted, marked good and
//! reported with its provides; a v3 whose health check fails after the reboot is marked bad,
//! slot B is primary again and the Director hears the rollback; a bundle signed by another CA
//! is in the Image repository, signed by Uptane, and RAUC refuses it before any slot is
//! written; a v4 whose stored bytes differ from the signed ones is refused before RAUC sees
//! it. Skips, saying why, without rauc, dbus or squashfs-tools.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::rauc::{bundle, image, rauc_available, Pki, System, COMPATIBLE, HEALTHY};
use primary_common::*;

fn publish(world: &World, bundle_bytes: &[u8], version: &str, counter: &str) -> String {
    let file = format!("ferryos-{version}.raucb");
    std::fs::write(world.base.join(&file), bundle_bytes).unwrap();
    let name = format!("os/ferryos-{version}.raucb");
    world.republish(
        &file,
        &name,
        &[
            "--hardware-id",
            "tcu",
            "--domain",
            "rauc",
            "--version",
            version,
            "--release-counter",
            counter,
        ],
    );
    name
}

fn detail_contains(full: &serde_json::Value, needle: &str) -> bool {
    full["last_install"]["detail"]
        .as_str()
        .is_some_and(|d| d.contains(needle))
}

#[test]
fn rauc_updates_roll_back_on_a_failed_health_check_and_refuse_what_rauc_or_uptane_refuse() {
    if !rauc_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"), "vendor");
    let system = System::start(&dir.path().join("rauc"), &pki.ca);
    let section = system.section(HEALTHY);
    let world = World::start(Options {
        full_extra_toml: Some(Box::leak(section.into_boxed_str())),
        ..Options::default()
    });

    // v2: written to slot B by RAUC, booted, marked good, reported.
    let v2 = publish(
        &world,
        &bundle(dir.path(), &pki, COMPATIBLE, "2", true),
        "2",
        "2",
    );
    world.assign(&[(FULL, &v2)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(system.slot("B"), image("2", true));
    assert_eq!(system.bootloader()["primary"], "B");
    assert_eq!(system.bootloader()["state_B"], "good");
    assert_eq!(system.status()["booted"], "B");
    let full = world.reported(FULL);
    assert_eq!(full["installed_image"]["filepath"], v2.as_str(), "{full}");
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    // v3: written to slot A, booted, fails its health check: marked bad, B primary again.
    let v3 = publish(
        &world,
        &bundle(dir.path(), &pki, COMPATIBLE, "3", false),
        "3",
        "3",
    );
    world.assign(&[(FULL, &v3)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(system.slot("A"), image("3", false));
    let bl = system.bootloader();
    assert_eq!(
        (bl["primary"].as_str(), bl["state_A"].as_str()),
        ("B", "bad")
    );
    assert_eq!(system.status()["booted"], "B");
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], v3.as_str(), "{full}");
    assert_eq!(full["last_install"]["result"], "rolled-back", "{full}");
    assert!(detail_contains(&full, "rauc health check failed"), "{full}");
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    // A bundle signed by another CA: Uptane signed the file, RAUC refuses it.
    let other = Pki::new(&dir.path().join("other-pki"), "other");
    let slot_a = system.slot("A");
    let evil = publish(
        &world,
        &bundle(dir.path(), &other, COMPATIBLE, "4", true),
        "4",
        "4",
    );
    world.assign(&[(FULL, &evil)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], evil.as_str(), "{full}");
    assert_eq!(full["last_install"]["result"], "failure", "{full}");
    assert!(
        detail_contains(&full, "rauc bundle signature check failed"),
        "{full}"
    );
    assert!(
        detail_contains(&full, "signature verification failed"),
        "{full}"
    );
    assert_eq!(system.slot("A"), slot_a, "no slot written");
    assert_eq!(system.bootloader()["primary"], "B");
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    // v5 whose stored bytes differ from the signed ones: refused before RAUC sees them.
    let v5 = publish(
        &world,
        &bundle(dir.path(), &pki, COMPATIBLE, "5", true),
        "5",
        "5",
    );
    for stored in world.stored_target_files(&v5) {
        let mut bytes = std::fs::read(&stored).unwrap();
        bytes[600] ^= 1;
        std::fs::write(&stored, bytes).unwrap();
    }
    world.assign(&[(FULL, &v5)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(system.slot("A"), slot_a, "no slot written");
    assert_eq!(system.bootloader()["primary"], "B");
    assert_eq!(system.status()["booted"], "B");
    let full = world.reported(FULL);
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");
}
