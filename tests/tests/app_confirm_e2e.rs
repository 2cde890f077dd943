//! `confirm = "app"` through a real Director, Image repository, `ferry-primary` and
//! `ferry-secondary`: the Secondary answers the install with 202 `confirmPending`, the Primary
//! waits for the outcome in its `/status`; confirmed with `ferry-secondary confirm`, the
//! app is committed and reported; never confirmed, it is rolled back at the end of its window
//! and the Director hears the rollback naming the check.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::bins::binary;
use primary_common::*;
use std::time::{Duration, Instant};

/// The app's window: long enough for the test to confirm, short for the rollback case.
const WINDOW: u64 = 8;

fn publish(world: &World, version: &str) -> String {
    let file = format!("fw-{version}.bin");
    std::fs::write(world.base.join(&file), format!("firmware {version}")).unwrap();
    let name = format!("tcu/fw-{version}.bin");
    world.republish(
        &file,
        &name,
        &[
            "--hardware-id",
            "tcu",
            "--version",
            version,
            "--software-name",
            "fw",
        ],
    );
    name
}

fn confirm(world: &World, args: &[&str]) -> ferry_tests::process::Output {
    let config = world.base.join(format!("{FULL}.toml"));
    let mut all = vec!["--config", config.to_str().unwrap(), "confirm"];
    all.extend(args);
    run(
        &world.base,
        &binary("ferry-secondary", "ferry-secondary"),
        &all,
    )
}

/// Wait until the FULL Secondary waits for its application.
fn waiting(world: &World) {
    let start = Instant::now();
    while world.secondary_status(FULL)["in_flight"] != "confirm" {
        assert!(start.elapsed() < TIMEOUT, "never waited for confirmation");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_app_confirmed_commits_and_one_never_confirmed_rolls_back_through_the_primary() {
    let extra = format!("[app]\nconfirm = \"app\"\nconfirm_timeout_secs = {WINDOW}\n");
    let world = World::start(Options {
        full_extra_toml: Some(Box::leak(extra.into_boxed_str())),
        ..Options::default()
    });

    // v3, confirmed while the Primary waits.
    let v3 = publish(&world, "3");
    world.assign(&[(FULL, &v3)]);
    let check = std::thread::scope(|s| {
        let primary = s.spawn(|| world.check());
        waiting(&world);
        let wrong = confirm(&world, &["app", "other"]);
        assert_ne!(wrong.code, 0, "{wrong}");
        assert!(wrong.stderr.contains("application confirmation"), "{wrong}");
        let ok = confirm(&world, &["app", "fw", "--version", "3"]);
        assert_eq!(ok.code, 0, "{ok}");
        primary.join().unwrap()
    });
    assert_eq!(check.code, 0, "{check}");
    let full = world.reported(FULL);
    assert_eq!(full["installed_image"]["filepath"], v3.as_str(), "{full}");

    // v4, never confirmed: rolled back at the end of the window; v3 stays.
    let v4 = publish(&world, "4");
    world.assign(&[(FULL, &v4)]);
    let check = world.check();
    assert_ne!(check.code, 0, "{check}");
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], v4.as_str(), "{full}");
    assert_eq!(full["last_install"]["result"], "rolled-back", "{full}");
    let detail = full["last_install"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("application confirmation: none within {WINDOW} s")),
        "{full}"
    );
    let status = world.secondary_status(FULL);
    assert_eq!(
        status["installed_domains"]["app"]["target"],
        v3.as_str(),
        "{status}"
    );
}
