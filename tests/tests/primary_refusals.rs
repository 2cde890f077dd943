//! The Primary end to end against attacks and failures (issue #5), all real processes on
//! 127.0.0.1. Each refusal leaves nothing installed on any ECU (all or nothing across ECUs),
//! fails `ferry-primary check`, and the manifest the Director accepted in the same cycle
//! names the failed check. An interrupted download is resumed and succeeds.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::proxy::CutProxy;
use primary_common::{app_bytes, Options, World, APP, FULL, FW, PARTIAL, PRIMARY};
use serde_json::Value;

/// `check` failed naming `needle`, nothing is installed anywhere, and the primary's report in
/// the manifest the Director accepted names it too.
/// Run a cycle that must be refused with `needle`; returns its output.
fn assert_refused(world: &World, needle: &str) -> ferry_tests::process::Output {
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains(needle), "expected {needle:?}: {out}");
    world.assert_nothing_installed();
    let reported = world.reported(PRIMARY);
    let named = reported["attacks_detected"]
        .as_str()
        .unwrap()
        .contains(needle)
        || reported["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(needle));
    assert!(named, "the manifest does not name {needle:?}: {reported}");
    for a in world.director_status()["assignments"].as_array().unwrap() {
        assert_ne!(a["status"], "installed", "{a}");
    }
    out
}

#[test]
fn a_director_target_whose_hash_differs_from_the_image_repositorys_is_refused() {
    let world = World::start(Options::default());
    world.assign_all();
    // The Image repository now signs other bytes of the same length under the same name:
    // the Director's signed hash no longer matches.
    let mut other = app_bytes();
    other[0] ^= 0xff;
    std::fs::write(world.base.join("other.tar"), other).unwrap();
    world.republish(
        "other.tar",
        APP,
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "2",
            "--release-counter",
            "2",
        ],
    );
    assert_refused(&world, "image match hash check failed");
    let reported = world.reported(PRIMARY);
    assert!(
        reported["attacks_detected"]
            .as_str()
            .unwrap()
            .contains("image match hash check failed"),
        "{reported}"
    );
}

#[test]
fn an_image_altered_on_the_server_is_refused() {
    let world = World::start(Options::default());
    world.assign_all();
    // The stored copies are hard links of one file: alter it once, write it to each.
    let mut bytes = app_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    for file in world.stored_target_files(APP) {
        std::fs::write(&file, &bytes).unwrap();
    }
    assert_refused(&world, "hash check failed");
    let out = world.check();
    assert!(
        !out.stderr.contains("image match"),
        "the download, not the metadata, failed: {out}"
    );
    world.assert_nothing_staged();
}

#[test]
fn an_image_longer_than_signed_is_refused_as_endless_data() {
    let world = World::start(Options::default());
    world.assign_all();
    let mut bytes = app_bytes();
    bytes.extend(std::iter::repeat_n(0u8, 64 * 1024));
    for file in world.stored_target_files(APP) {
        std::fs::write(&file, &bytes).unwrap();
    }
    assert_refused(&world, "endless data");
}

#[test]
fn a_wrong_hardware_id_is_refused() {
    let world = World::start(Options::default());
    world.assign_all();
    // The Image repository now says the same image is for other hardware.
    world.republish(
        "demo.tar",
        APP,
        &[
            "--hardware-id",
            "other-ivi",
            "--software-name",
            "demo",
            "--version",
            "2",
            "--release-counter",
            "2",
        ],
    );
    assert_refused(&world, "hardwareId check failed");
}

#[test]
fn a_lower_release_counter_is_refused() {
    let world = World::start(Options::default());
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    // An older build of the same app (releaseCounter 1 < 2 installed).
    std::fs::write(world.base.join("old.tar"), b"demo 1").unwrap();
    world.republish(
        "old.tar",
        "apps/demo-1.tar",
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "1",
            "--release-counter",
            "1",
        ],
    );
    world.assign(&[(PRIMARY, "apps/demo-1.tar")]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("releaseCounter check failed"), "{out}");
    // The installed app is unchanged, as the ECU and the Director say.
    let status = world.primary_status();
    assert_eq!(
        status["ecus"][0]["status"]["installed"]["target"], APP,
        "{status}"
    );
    let reported = world.reported(PRIMARY);
    assert_eq!(reported["installed_image"]["filepath"], APP, "{reported}");
    assert!(
        reported["attacks_detected"]
            .as_str()
            .unwrap()
            .contains("releaseCounter check failed"),
        "{reported}"
    );
    assert!(!world.base.join("ivi-1-apps/demo/demo-1.tar").exists());
}

#[test]
fn an_interrupted_download_is_resumed_and_succeeds() {
    let world = World::start(Options::default());
    let proxy = CutProxy::start(world.repo.addr, "demo-2.tar", 300_000);
    world.write_primary_config(&format!("http://{}", proxy.addr));
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("resuming"), "{out}");
    let heads = proxy.heads.lock().unwrap().clone();
    let app_requests: Vec<&String> = heads.iter().filter(|h| h.contains("demo-2.tar")).collect();
    assert_eq!(app_requests.len(), 2, "{heads:?}");
    assert!(app_requests[1].contains("range: bytes="), "{heads:?}");
    let status = world.primary_status();
    assert_eq!(
        status["ecus"][0]["status"]["installed"]["target"], APP,
        "{status}"
    );
    let app = world.base.join("ivi-1-apps/demo/demo-2.tar");
    assert_eq!(std::fs::read(app).unwrap(), app_bytes());
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        assert_eq!(
            world.reported(serial)["installed_image"]["filepath"],
            target
        );
    }
}

#[test]
fn a_secondary_that_fails_to_verify_stops_every_install() {
    let world = World::start(Options {
        wrong_partial_key: true,
        ..Options::default()
    });
    world.assign_all();
    assert_refused(&world, "partial bundle check failed");
    // The Secondary lists the check it failed with the Primary's address; its signed report
    // does not carry it (the Primary's does, above): what arrives over the in-vehicle network
    // is not signed by the ECU it was sent to.
    let reported: Value = world.reported(PARTIAL);
    assert_eq!(reported["attacks_detected"], "", "{reported}");
    let status = world.secondary_status(PARTIAL);
    assert!(
        status["network_refusals"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("signature threshold check failed"),
        "{status}"
    );
    // The full Secondary verified and received its image, but never installed it.
    assert!(
        world.reported(FULL)["installed_image"]["filepath"] == "",
        "{}",
        world.reported(FULL)
    );
}

#[test]
fn unmet_depends_are_refused_before_download_with_menders_words() {
    let world = World::start(Options::default());
    world.assign_all();
    // Same bytes (the Director's hashes still match), but the Image repository now says the
    // app needs an OS this ECU does not provide.
    world.republish(
        "demo.tar",
        APP,
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "2",
            "--release-counter",
            "2",
            "--depends",
            "rootfs-image.version=9.0",
        ],
    );
    // The refusing cycle itself downloaded nothing. (The next cycle installs the Secondaries'
    // targets: the refused assignment failed and left the Director's targets.)
    let out = assert_refused(
        &world,
        "Missing 'rootfs-image.version' in provides, required by target depends. System not modified.",
    );
    assert!(
        !out.stderr.contains("download started"),
        "refused before download: {out}"
    );
    // Not an attack: the install result says it, attacks_detected does not.
    let reported = world.reported(PRIMARY);
    assert_eq!(reported["attacks_detected"], "", "{reported}");
    assert_eq!(reported["last_install"]["result"], "failure", "{reported}");
}

#[test]
fn a_secondarys_unmet_depends_are_its_own_refusal_and_fail_its_assignment() {
    let world = World::start(Options::default());
    // Assigned while the firmware had no depends (the Director refuses an unmet one); the
    // Image repository then says it needs an OS the full Secondary does not provide.
    world.assign(&[(FULL, FW)]);
    world.republish(
        "fw.bin",
        FW,
        &[
            "--hardware-id",
            "tcu",
            "--version",
            "2",
            "--depends",
            "rootfs-image.version=9.0",
        ],
    );
    let needle = "Missing 'rootfs-image.version' in provides, required by target depends. System not modified.";
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains(needle), "{out}");
    assert!(!out.stderr.contains("download started"), "{out}");
    world.assert_nothing_installed();
    // The Secondary says it, in its own signed report; the Primary's own report does not.
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], FW, "{full}");
    assert_eq!(full["last_install"]["result"], "failure", "{full}");
    assert!(
        full["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(needle)),
        "{full}"
    );
    assert_eq!(full["attacks_detected"], "", "not an attack: {full}");
    let primary = world.reported(PRIMARY);
    assert_ne!(primary["last_install"]["target"], FW, "{primary}");
    // So the Director fails that ECU's assignment instead of leaving it in flight.
    let status = world.director_status();
    let assignment = status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["ecu_serial"] == FULL)
        .unwrap_or_else(|| panic!("no assignment for {FULL}: {status}"))
        .clone();
    assert_eq!(assignment["status"], "failed", "{assignment}");
    assert!(
        assignment["detail"]
            .as_str()
            .is_some_and(|d| d.contains(needle)),
        "{assignment}"
    );
}

#[test]
fn a_secondarys_failed_install_is_recorded_against_its_target_naming_the_ecu_once() {
    let world = World::start(Options {
        full_install_fails: true,
        ..Options::default()
    });
    world.assign_all();
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains(&format!("install check failed: ECU {FULL}")),
        "{out}"
    );
    assert!(
        !out.stderr.contains(&format!("ECU {FULL}: ECU {FULL}")),
        "the ECU is named twice: {out}"
    );
    let reported = world.reported(PRIMARY);
    assert_eq!(reported["last_install"]["target"], FW, "{reported}");
    assert_eq!(reported["last_install"]["result"], "failure", "{reported}");
    // The failing ECU's own report says what happened to it.
    let full = world.reported(FULL);
    assert_ne!(full["last_install"]["result"], "success", "{full}");
}
