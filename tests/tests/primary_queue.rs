//! An os and the app that depends on it, assigned to one ECU at once, end to end with real
//! processes on 127.0.0.1: the Director serves one target per ECU (Uptane allows no more, and
//! the Primary refuses more), so one cycle installs the os, the next the app, and a third
//! finds nothing to do. The primary's own ECU runs the os domain on two slot files with a
//! file boot environment (the reboot is simulated in-process).
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::{Options, World, PRIMARY};
use serde_json::Value;

const OS: &str = "os/ivi-os-3.img";
const NAV: &str = "apps/nav-1.tar";

/// Give the primary's own ECU the os domain: slot a holds the image it shipped with.
fn add_own_os(world: &World) {
    let b = &world.base;
    std::fs::write(b.join("slot-a.img"), b"factory image").unwrap();
    let os = format!(
        "[ecu.os]\nslots = [\"{a}\", \"{bb}\"]\nboot = \"file\"\nboot_env = \"{env}\"\n",
        a = b.join("slot-a.img").display(),
        bb = b.join("slot-b.img").display(),
        env = b.join("bootenv").display(),
    );
    let config = b.join("primary.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("[[secondaries]]", &format!("{os}[[secondaries]]"), 1);
    std::fs::write(&config, text).unwrap();
}

/// Publish the os (providing the feature) and the app depending on it.
fn publish(world: &World) {
    std::fs::write(world.base.join("os.img"), b"ivi os 3 rootfs").unwrap();
    world.republish(
        "os.img",
        OS,
        &[
            "--hardware-id",
            "ivi",
            "--domain",
            "os",
            "--version",
            "3",
            "--provides",
            "rootfs-image.feature.nav=true",
            "--release-counter",
            "3",
        ],
    );
    std::fs::write(world.base.join("nav.tar"), b"nav app 1").unwrap();
    world.republish(
        "nav.tar",
        NAV,
        &[
            "--hardware-id",
            "ivi",
            "--version",
            "1",
            "--depends",
            "rootfs-image.feature.nav=true",
            "--release-counter",
            "1",
        ],
    );
}

/// `check` succeeds with `result`; returns the targets it installed, by ECU.
fn cycle(world: &World, result: &str) -> Value {
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], result, "{report}");
    report["installed"].clone()
}

/// The one `(ECU, target)` a cycle installed.
fn only(installed: &Value) -> (&str, &str) {
    let installed = installed.as_object().unwrap();
    assert_eq!(installed.len(), 1, "{installed:?}");
    let (ecu, target) = installed.iter().next().unwrap();
    (ecu.as_str(), target.as_str().unwrap())
}

/// The Director's `(status, queued)` of the assignment of `target`.
fn assignment(world: &World, target: &str) -> (String, bool) {
    let status = world.director_status();
    let a = status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["target_name"] == target)
        .unwrap_or_else(|| panic!("no assignment of {target}: {status}"))
        .clone();
    (
        a["status"].as_str().unwrap().to_owned(),
        a["queued"].as_bool().unwrap(),
    )
}

#[test]
fn an_os_and_its_app_assigned_to_one_ecu_at_once_install_in_successive_cycles() {
    let world = World::start(Options::default());
    add_own_os(&world);
    publish(&world);
    // The app named first: the Director puts the os it depends on first in the ECU's queue.
    world.assign(&[(PRIMARY, NAV), (PRIMARY, OS)]);
    assert_eq!(assignment(&world, NAV), ("pending".into(), true));

    let installed = cycle(&world, "updated");
    assert_eq!(only(&installed), (PRIMARY, OS), "{installed}");
    assert_eq!(assignment(&world, OS), ("installed".into(), false));
    assert_eq!(
        std::fs::read(world.base.join("slot-b.img")).unwrap(),
        b"ivi os 3 rootfs"
    );

    let installed = cycle(&world, "updated");
    assert_eq!(only(&installed), (PRIMARY, NAV), "{installed}");
    assert_eq!(assignment(&world, NAV), ("installed".into(), false));
    let reported = world.reported(PRIMARY);
    assert_eq!(reported["provides"]["rootfs-image.feature.nav"], "true");
    assert_eq!(reported["attacks_detected"], "", "{reported}");

    let installed = cycle(&world, "up-to-date");
    assert!(installed.as_object().unwrap().is_empty(), "{installed}");
    let status = world.director_status();
    assert_eq!(
        status["vehicle"]["status"]["state"], "up_to_date",
        "{status}"
    );
}
