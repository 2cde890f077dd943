//! The Primary end to end (issue #5): a Director, an Image repository server, `ferry-primary`
//! and two `ferry-secondary` daemons (one full, one partial verification), all real processes
//! on 127.0.0.1. One cycle installs every assigned image and the Director accepts the
//! manifest that says so; a second cycle changes nothing.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::{Options, World, APP, FULL, FW, PARTIAL, PRIMARY};
use serde_json::Value;

/// After one `check`, every ECU runs its image, as each ECU and the Director say.
pub fn assert_all_installed(world: &World) {
    let status = world.primary_status();
    for ecu in status["ecus"].as_array().unwrap() {
        let expected = if ecu["serial"] == PRIMARY { APP } else { FW };
        assert_eq!(ecu["status"]["installed"]["target"], expected, "{ecu}");
        // Each domain's installed image too (these targets name no domain: app).
        assert_eq!(
            ecu["status"]["installed_domains"]["app"]["target"], expected,
            "{ecu}"
        );
    }
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        let reported = world.reported(serial);
        assert_eq!(
            reported["installed_image"]["filepath"], target,
            "{serial}: {reported}"
        );
        assert_eq!(reported["attacks_detected"], "", "{serial}: {reported}");
    }
    let director = world.director_status();
    for a in director["assignments"].as_array().unwrap() {
        assert_eq!(a["status"], "installed", "{director}");
    }
}

#[test]
fn one_cycle_installs_every_assigned_image_and_a_second_changes_nothing() {
    one_cycle_then_up_to_date(Options::default());
}

/// The same trip with the Director on PostgreSQL (issue #23).
#[test]
fn with_the_director_on_postgresql_one_cycle_installs_and_a_second_changes_nothing() {
    let Some(url) = primary_common::postgres_database("primary_e2e") else {
        return;
    };
    one_cycle_then_up_to_date(Options {
        postgres: Some(url),
        ..Options::default()
    });
}

fn one_cycle_then_up_to_date(options: Options) {
    let world = World::start(options);
    // Before any assignment: a cycle reports, installs nothing.
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    world.assert_nothing_installed();

    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "updated", "{report}");
    assert_eq!(
        report["installed"].as_object().unwrap().len(),
        3,
        "{report}"
    );
    assert!(
        out.stderr.contains("downloading"),
        "progress is logged: {out}"
    );
    assert_all_installed(&world);
    let app = world.base.join("ivi-1-apps/demo/demo-2.tar");
    assert_eq!(std::fs::read(&app).unwrap(), primary_common::app_bytes());
    let before = world.director_status();
    let out = primary_common::run(
        &world.base,
        &ferry_tests::bins::binary("ferry-primary", "ferry-primary"),
        &["--config", "primary.toml", "status"],
    );
    assert_eq!(out.code, 0, "{out}");
    for needle in [
        "ECU ivi-1 (primary)",
        "installed: apps/demo-2.tar",
        "app: apps/demo-2.tar version",
        "ECU tcu-partial",
        "last cycle",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}: {out}");
    }

    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "up-to-date", "{report}");
    assert_eq!(
        report["installed"].as_object().unwrap().len(),
        0,
        "{report}"
    );
    assert!(!out.stderr.contains("download started"), "{out}");
    assert_all_installed(&world);
    let after = world.director_status();
    assert_eq!(before["assignments"], after["assignments"]);
    // A new manifest was accepted (a fresh nonce), saying the same.
    let last_seen = |s: &Value| s["vehicle"]["last_seen"].clone();
    assert_ne!(last_seen(&before), last_seen(&after), "{after}");
}

#[test]
fn over_mutual_tls_the_primary_authenticates_with_the_vehicles_certificate() {
    let world = World::start(Options {
        tls: true,
        ..Options::default()
    });
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_all_installed(&world);
    // No token in the config: the device certificate is the vehicle's only credential.
    let config = std::fs::read_to_string(world.base.join("primary.toml")).unwrap();
    assert!(
        !config.contains("token_file") && config.contains("https://"),
        "{config}"
    );
}
