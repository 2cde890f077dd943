//! Per-ECU queues over real HTTP (common::http): the Director's targets name at most one
//! image per ECU, the head of its queue; the next one is served once a manifest settles the
//! head or the operator cancels it, and a failed head takes down what depends on it.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::car::Car;
use common::http::{assign, assignments, director_targets, named, Server};
use common::image_repo::{image, image_repo, NAV, OS, TCU};
use ferry_core::manifest::InstallResult;
use ferry_core::manifest::{
    EcuVersionReport, FileInfo, InstalledImage, LastInstall, VehicleManifest,
};
use ferry_core::metadata::{hashes_of, Expires, Signed};
use ferry_core::{Clock, SystemClock};
use ferry_director::Store;
use ferry_keys::{PrivateKey, Signer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// An app for the primary that depends on nothing.
const RADIO: &str = "apps/radio-1.tar";
/// TCU calibration: an app that depends on the TCU firmware (`TCU`, os version 7).
const CAL: &str = "tcu/cal-1.bin";

/// The catalogue of common::image_repo (OS provides python 3.12, NAV depends on it, TCU
/// firmware), with an independent app and a TCU app depending on the firmware.
fn server() -> Server {
    let python = ("rootfs-image.python.version", "3.12");
    Server::with_repo(image_repo(&[
        image(OS, &["ivi"], "os", "2", &[python], &[]),
        image(NAV, &["ivi"], "app", "3", &[], &[python]),
        image(RADIO, &["ivi"], "app", "1", &[], &[]),
        image(TCU, &["tcu"], "os", "7", &[], &[]),
        image(
            CAL,
            &["tcu"],
            "app",
            "1",
            &[],
            &[("rootfs-image.version", "7")],
        ),
    ]))
}

/// What one ECU says in a manifest: the image it runs (`None`: the `fw.bin` it started
/// with), what it provides and how its last install went.
#[derive(Default)]
struct Says<'a> {
    runs: Option<&'a str>,
    provides: &'a [(&'a str, &'a str)],
    last: Option<(&'a str, &'a str, &'a str)>,
}

fn report(
    server: &Server,
    serial: &str,
    key: &PrivateKey,
    nonce: &str,
    says: &Says<'_>,
) -> Signed<EcuVersionReport> {
    let (filepath, fileinfo) = match says.runs {
        Some(name) => {
            let t = &server.repo.published[name];
            (name.to_owned(), (t.hashes.clone(), t.length))
        }
        None => ("fw.bin".to_owned(), (hashes_of(b"fw"), 2)),
    };
    let mut r = Signed::new(EcuVersionReport {
        attacks_detected: String::new(),
        ecu_serial: serial.into(),
        installed_image: InstalledImage {
            fileinfo: FileInfo {
                hashes: fileinfo.0,
                length: fileinfo.1,
                extra: BTreeMap::new(),
            },
            filepath,
            extra: BTreeMap::new(),
        },
        last_install: says.last.map(|(target, result, detail)| LastInstall {
            detail: detail.into(),
            result: InstallResult::parse(result).unwrap(),
            target: target.into(),
            extra: BTreeMap::new(),
        }),
        nonce: nonce.into(),
        provides: says
            .provides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        time: Expires::after(SystemClock.now(), Duration::zero()),
        extra: BTreeMap::new(),
    });
    r.sign(key as &dyn Signer).unwrap();
    r
}

/// Send a manifest in which the primary says `p` and the secondary `s`; it must be accepted.
fn check_in(server: &Server, car: &Car, nonce: &str, p: Says<'_>, s: Says<'_>) {
    let reports = [
        report(server, &car.p(), &car.primary, nonce, &p),
        report(server, &car.s(), &car.secondary, nonce, &s),
    ];
    let mut m = Signed::new(VehicleManifest::new(&car.vin, &car.p(), &reports).unwrap());
    m.sign(&car.primary as &dyn Signer).unwrap();
    let (code, text) = server.put_manifest(&car.vin, &car.token, m.to_bytes().unwrap());
    assert_eq!(code, StatusCode::OK, "{text}");
}

/// The vehicle's verified Director targets as `(target, ECU serial)` pairs, sorted.
fn served(server: &Server, car: &Car) -> Vec<(String, String)> {
    let signed = director_targets(server, car);
    let mut pairs = Vec::new();
    for (name, entry) in &signed.targets {
        for serial in entry.custom.as_ref().unwrap()["ecuIdentifiers"]
            .as_object()
            .unwrap()
            .keys()
        {
            pairs.push((name.clone(), serial.clone()));
        }
    }
    pairs.sort();
    pairs
}

fn pair(target: &str, serial: String) -> (String, String) {
    (target.to_owned(), serial)
}

/// `(status, queued)` of the vehicle's assignment of `target`, as the status route lists it.
fn state_of(server: &Server, vin: &str, target: &str) -> (String, bool) {
    let all = assignments(server, vin);
    let a = all
        .iter()
        .find(|a| a["target_name"] == target)
        .unwrap_or_else(|| panic!("no assignment of {target}: {all:?}"));
    (
        a["status"].as_str().unwrap().to_owned(),
        a["queued"].as_bool().unwrap(),
    )
}

fn state(status: &str, queued: bool) -> (String, bool) {
    (status.to_owned(), queued)
}

fn assign_ok(server: &Server, car: &Car, targets: Value) -> Vec<Value> {
    let (code, text) = assign(server, &car.vin, targets);
    assert_eq!(code, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap()
}

const PYTHON: (&str, &str) = ("rootfs-image.python.version", "3.12");

#[test]
fn an_os_and_its_app_on_one_ecu_are_served_one_after_the_other() {
    let server = server();
    let car = server.register("VIN-Q1");
    // Named app first: the plan puts the OS it depends on first.
    assign_ok(
        &server,
        &car,
        json!([named(&car.p(), NAV), named(&car.p(), OS)]),
    );
    let v0 = director_targets(&server, &car).version;
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    // The fetch put only the served OS in flight; the app waits, pending and queued.
    assert_eq!(state_of(&server, &car.vin, OS), state("in_flight", false));
    assert_eq!(state_of(&server, &car.vin, NAV), state("pending", true));
    let status = server.status(&car.vin);
    assert_eq!(status["vehicle"]["status"]["pending"], 1, "{status}");
    assert_eq!(status["vehicle"]["status"]["in_flight"], 1, "{status}");

    // A cycle that installed nothing yet changes nothing.
    check_in(&server, &car, "n1", Says::default(), Says::default());
    assert_eq!(director_targets(&server, &car).version, v0);

    // The OS is reported installed: the re-signed targets name the app, not the OS.
    let os_done = Says {
        runs: Some(OS),
        provides: &[PYTHON, ("rootfs-image.version", "2")],
        last: Some((OS, "success", "installed")),
    };
    check_in(&server, &car, "n2", os_done, Says::default());
    assert_eq!(state_of(&server, &car.vin, OS), state("installed", false));
    let signed = director_targets(&server, &car);
    assert_eq!(signed.version, v0 + 1);
    assert_eq!(served(&server, &car), [pair(NAV, car.p())]);
    assert_eq!(
        signed.targets[NAV].hashes,
        server.repo.published[NAV].hashes
    );
    assert_eq!(state_of(&server, &car.vin, NAV), state("in_flight", false));

    // The app is reported installed: nothing is left to serve.
    let app_done = Says {
        runs: Some(NAV),
        provides: &[PYTHON, ("data-partition.nav.version", "3")],
        last: Some((NAV, "success", "installed")),
    };
    check_in(&server, &car, "n3", app_done, Says::default());
    assert_eq!(state_of(&server, &car.vin, NAV), state("installed", false));
    assert_eq!(served(&server, &car), []);
    assert_eq!(director_targets(&server, &car).version, v0 + 2);
    let status = server.status(&car.vin);
    assert_eq!(
        status["vehicle"]["status"]["state"], "up_to_date",
        "{status}"
    );
}

#[test]
fn two_ecus_each_work_through_their_own_queue() {
    let server = server();
    let car = server.register("VIN-Q2");
    assign_ok(
        &server,
        &car,
        json!([
            named(&car.p(), OS),
            named(&car.s(), CAL),
            named(&car.p(), NAV),
            named(&car.s(), TCU)
        ]),
    );
    assert_eq!(
        served(&server, &car),
        [pair(OS, car.p()), pair(TCU, car.s())]
    );

    // The TCU finishes first: its calibration is served; the primary's OS still is.
    let fw_done = Says {
        runs: Some(TCU),
        provides: &[("rootfs-image.version", "7")],
        last: Some((TCU, "success", "installed")),
    };
    check_in(&server, &car, "n1", Says::default(), fw_done);
    assert_eq!(
        served(&server, &car),
        [pair(OS, car.p()), pair(CAL, car.s())]
    );
    assert_eq!(state_of(&server, &car.vin, NAV), state("pending", true));

    // Then the primary's OS: its app is served beside the calibration.
    let os_done = Says {
        runs: Some(OS),
        provides: &[PYTHON],
        last: Some((OS, "success", "installed")),
    };
    let fw_still = Says {
        runs: Some(TCU),
        provides: &[("rootfs-image.version", "7")],
        last: Some((TCU, "success", "installed")),
    };
    check_in(&server, &car, "n2", os_done, fw_still);
    assert_eq!(
        served(&server, &car),
        [pair(NAV, car.p()), pair(CAL, car.s())]
    );
}

#[test]
fn a_cancelled_head_lets_the_next_one_in() {
    let server = server();
    let car = server.register("VIN-Q3");
    let planned = assign_ok(
        &server,
        &car,
        json!([named(&car.p(), OS), named(&car.p(), RADIO)]),
    );
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    assert_eq!(state_of(&server, &car.vin, OS), state("in_flight", false));
    let os_id = planned[0]["id"].as_i64().unwrap();
    assert_eq!(planned[0]["target_name"], OS);

    // Cancelled in flight: the radio app is served at once.
    let path = format!("/assignments/{os_id}");
    let (code, text) = server.admin(Method::DELETE, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_eq!(served(&server, &car), [pair(RADIO, car.p())]);
    assert_eq!(state_of(&server, &car.vin, OS), state("cancelled", false));
    assert_eq!(
        state_of(&server, &car.vin, RADIO),
        state("in_flight", false)
    );
}

/// A vehicle whose primary is assigned an OS, then the app that depends on it, then an app
/// that depends on nothing; the OS is served. Returns the car and the OS assignment's id.
fn os_then_nav_then_radio(server: &Server, vin: &str) -> (Car, i64) {
    let car = server.register(vin);
    assign_ok(
        server,
        &car,
        json!([
            named(&car.p(), OS),
            named(&car.p(), NAV),
            named(&car.p(), RADIO)
        ]),
    );
    assert_eq!(served(server, &car), [pair(OS, car.p())]);
    let os_id = assignments(server, &car.vin)
        .iter()
        .find(|a| a["target_name"] == OS)
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    (car, os_id)
}

/// The app that needed the OS (assignment `os_id`) failed without being served, its detail
/// naming the OS, what became of it (`how`) and the unmet depends in Mender's words; the
/// independent app is served next.
fn assert_nav_failed_behind_os(server: &Server, car: &Car, os_id: i64, how: &str) {
    let all = assignments(server, &car.vin);
    let nav = all.iter().find(|a| a["target_name"] == NAV).unwrap();
    assert_eq!(nav["status"], "failed", "{nav}");
    let detail = nav["detail"].as_str().unwrap();
    for needle in [
        &format!("{OS} (assignment {os_id}) before it in the ECU's queue {how}") as &str,
        "Missing 'rootfs-image.python.version' in provides",
        "System not modified",
    ] {
        assert!(detail.contains(needle), "{needle}: {detail}");
    }
    assert_eq!(served(server, car), [pair(RADIO, car.p())]);
}

#[test]
fn a_failed_head_fails_what_depends_on_it_and_the_queue_moves_on() {
    let server = server();
    let (car, os_id) = os_then_nav_then_radio(&server, "VIN-Q4");

    // The OS rolled back: the ECU still runs its old image and provides no python.
    let os_failed = Says {
        runs: None,
        provides: &[("rootfs-image.version", "1")],
        last: Some((OS, "rolled-back", "health check failed")),
    };
    check_in(&server, &car, "n1", os_failed, Says::default());
    assert_eq!(state_of(&server, &car.vin, OS), state("failed", false));
    // The app that needed the OS fails at once; the independent app is next.
    assert_nav_failed_behind_os(&server, &car, os_id, "failed");
    assert_eq!(
        state_of(&server, &car.vin, RADIO),
        state("in_flight", false)
    );
}

#[test]
fn a_campaign_queues_behind_what_a_vehicle_already_has() {
    let server = server();
    let a = server.register("VIN-QA");
    let b = server.register("VIN-QB");
    assign_ok(&server, &a, json!([named(&a.p(), OS)]));
    let (code, text) = server.admin(
        Method::POST,
        "/campaigns",
        Some(&server.write),
        Some(json!({"name": "radio", "target_name": RADIO, "hardware_id": "ivi"})),
    );
    assert_eq!(code, StatusCode::CREATED, "{text}");
    let reply: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reply["assigned"], 2, "{reply}");
    // A's primary gets the radio after its OS; B's gets it at once.
    assert_eq!(served(&server, &a), [pair(OS, a.p())]);
    assert_eq!(state_of(&server, &a.vin, RADIO), state("pending", true));
    assert_eq!(served(&server, &b), [pair(RADIO, b.p())]);
    assert_eq!(state_of(&server, &b.vin, RADIO), state("in_flight", false));
}

#[test]
fn a_vehicle_whose_targets_miss_its_queue_head_is_re_signed_by_its_next_manifest() {
    let server = server();
    let car = server.register("VIN-Q5");
    assign_ok(
        &server,
        &car,
        json!([named(&car.p(), OS), named(&car.p(), RADIO)]),
    );
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    // As if the re-signing after the cancel below had failed: the store alone changes.
    let os_id = assignments(&server, &car.vin)[0]["id"].as_i64().unwrap();
    server.store.cancel_assignment(os_id, "test").unwrap();
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    // The vehicle's next manifest settles nothing, but the served head is stale: re-signed.
    check_in(&server, &car, "n1", Says::default(), Says::default());
    assert_eq!(served(&server, &car), [pair(RADIO, car.p())]);
}

#[test]
fn targets_naming_a_cancelled_last_assignment_are_re_signed_by_the_next_manifest() {
    let server = server();
    let car = server.register("VIN-Q6");
    assign_ok(&server, &car, json!([named(&car.p(), OS)]));
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    // As if the re-signing after this cancel had failed: nothing is active any more, yet the
    // targets still name the cancelled image.
    let os_id = assignments(&server, &car.vin)[0]["id"].as_i64().unwrap();
    server.store.cancel_assignment(os_id, "test").unwrap();
    assert_eq!(served(&server, &car), [pair(OS, car.p())]);
    check_in(&server, &car, "n1", Says::default(), Says::default());
    assert!(
        served(&server, &car).is_empty(),
        "{:?}",
        served(&server, &car)
    );
}

#[test]
fn a_cancelled_head_fails_what_needed_it_and_the_queue_moves_on() {
    let server = server();
    let (car, os_id) = os_then_nav_then_radio(&server, "VIN-Q7");
    let path = format!("/assignments/{os_id}");
    let (code, text) = server.admin(Method::DELETE, &path, Some(&server.write), None);
    assert_eq!(code, StatusCode::OK, "{text}");
    assert_nav_failed_behind_os(&server, &car, os_id, "was cancelled");
}
