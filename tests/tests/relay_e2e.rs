//! The gateway relay end to end (issue #20): real `ferry director serve`, `ferry repo serve`,
//! `ferry relay serve`, `ferry-primary` and two `ferry-secondary` daemons, the relay in a
//! network namespace of its own reaching the backend through uplinks the test cuts, the
//! vehicles' Primary in another whose only route out is the relay (shown: from there the
//! backend's addresses do not answer, the relay's does). Without namespaces, all on
//! 127.0.0.1 (said on stdout).
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use primary_common::{Options, World, APP, FULL, FW, PARTIAL, PRIMARY, VIN};
use relay_common::{big_bytes, second_vehicle, Site, BIG, BIG_LEN};
use serde_json::Value;

fn logging_world() -> World {
    World::start(Options {
        log_requests: true,
        ..Options::default()
    })
}

fn assert_installed(world: &World) {
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        let reported = world.reported(serial);
        assert_eq!(
            reported["installed_image"]["filepath"], target,
            "{serial}: {reported}"
        );
    }
    let director = world.director_status();
    for a in director["assignments"].as_array().unwrap() {
        assert_eq!(a["status"], "installed", "{director}");
    }
}

/// From the vehicle's namespace the relay answers and none of the backend's addresses do.
fn assert_air_gap(world: &World, site: &Site) {
    let Some(vehicle) = &site.vehicle else {
        println!("relay test: no vehicle namespace; the vehicle's air gap is not shown");
        return;
    };
    let relay: std::net::SocketAddr = site.url.trim_start_matches("http://").parse().unwrap();
    assert!(
        vehicle.reaches(relay),
        "the vehicle reaches the relay at {relay}"
    );
    for backend in [
        world.director.addr,
        world.repo.addr,
        site.director_link.addr,
        site.repo_link.addr,
    ] {
        assert!(
            !vehicle.reaches(backend),
            "the vehicle must reach the backend only through the relay, yet {backend} answers"
        );
    }
}

#[test]
fn vehicles_behind_the_relay_install_and_a_shared_target_is_fetched_upstream_once() {
    let world = logging_world();
    let site = Site::start(&world);
    assert_air_gap(&world, &site);
    world.assign_all();
    let out = site.check(&world);
    assert_eq!(out.code, 0, "{out}\n--- relay\n{}", site.relay.stderr());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "updated", "{report}");
    assert_installed(&world);
    // Everything came through the relay.
    assert!(!site.repo_link.saw("get /targets/apps/").is_empty());
    assert!(!site
        .director_link
        .saw(&format!("put /api/v1/vehicles/{VIN}/manifest"))
        .is_empty());

    // A 100 MiB target for two vehicles: fetched upstream once.
    std::fs::write(world.base.join("big.tar"), big_bytes()).unwrap();
    world.republish(
        "big.tar",
        BIG,
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "big",
            "--version",
            "1",
        ],
    );
    let second = second_vehicle(&world, &site);
    world.assign(&[(PRIMARY, BIG)]);
    let out = world.admin(
        true,
        &["assign", "VIN-2", "--target", &format!("ivi-2={BIG}")],
    );
    assert_eq!(out.code, 0, "{out}");
    for config in ["primary.toml", second] {
        let out = site.check_config(&world, config);
        assert_eq!(
            out.code,
            0,
            "{config}: {out}\n--- relay\n{}",
            site.relay.stderr()
        );
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["result"], "updated", "{config}: {report}");
    }
    for apps in ["ivi-1-apps/big/big.tar", "ivi-2-apps/big/big.tar"] {
        let len = std::fs::metadata(world.base.join(apps)).unwrap().len();
        assert_eq!(len, BIG_LEN as u64, "{apps}");
    }
    // The upstream's own request log: one GET of the big target, one of the app.
    assert_eq!(world.repo_requests("big.tar"), 1, "{}", world.repo.stderr());
    assert_eq!(
        world.repo_requests("demo-2.tar"),
        1,
        "{}",
        world.repo.stderr()
    );
    let status = site.status(&world.base);
    assert!(status["hits"].as_i64().unwrap() >= 1, "{status}");
    assert!(
        status["cache_bytes"].as_u64().unwrap() >= BIG_LEN as u64,
        "{status}"
    );
    assert_eq!(status["upstream"]["reachable"], true, "{status}");
    // Both vehicles' results reached the Director.
    let out = world.admin(false, &["status", "VIN-2", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let v2: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v2["assignments"][0]["status"], "installed", "{v2}");
}
