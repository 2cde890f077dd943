//! Replayed vehicle manifest: an attacker who captured a genuine, signed manifest (say the
//! one reporting v1) sends it again after the vehicle moved on to v2, so the Director would
//! believe the vehicle still runs v1. Refused by the Director's nonce check and stored as
//! refused; the ECUs and the Director's view do not change; the next genuine manifest is
//! accepted.

use crate::primary_common::attack::*;
use crate::primary_common::mitm::{Act, Mitm};
use crate::primary_common::{Options, World, PRIMARY, VIN};

#[test]
fn manifest_replay_is_refused_by_the_nonce_check() {
    let world = World::start(Options::default());
    // The attacker listens on the vehicle's way to the Director.
    let tap = Mitm::start(world.director.addr, |_| Act::Forward);
    route_primary(
        &world,
        Via {
            director: Some(tap.addr),
            ..Via::default()
        },
    );
    install_v1(&world);
    let captured = tap.bodies("/manifest").pop().expect("a manifest went by");
    publish_v2(&world);
    assign_v2(&world);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let v2 = running(&world);
    assert_eq!(v2.reported[0].1["filepath"], APP_V2, "{v2:?}");

    let path = format!("/api/v1/vehicles/{VIN}/manifest");
    let token = device_token(&world);
    let r = ferry_tests::http::request(world.director.addr, "PUT", &path, Some(&token), &captured)
        .unwrap();
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert!(r.text().contains("nonce check failed"), "{}", r.text());
    // Stored, as refused, naming the check; the Director still sees v2 everywhere.
    let newest = &newest_manifest(&world);
    assert_eq!(newest["verdict"], "refused", "{newest}");
    assert!(
        newest["reason"]
            .as_str()
            .unwrap()
            .contains("nonce check failed"),
        "{newest}"
    );
    assert_eq!(
        running(&world),
        v2,
        "the replay changed the Director's view"
    );

    // The next genuine manifest (a fresh nonce) is accepted.
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let newest = &newest_manifest(&world);
    assert_eq!(newest["verdict"], "accepted", "{newest}");
    assert_eq!(
        world.reported(PRIMARY)["installed_image"]["filepath"],
        APP_V2
    );
}
