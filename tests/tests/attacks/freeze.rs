//! Freeze attack (§4.3): a mirror keeps serving metadata that has since expired, so the
//! vehicle never hears of newer images. Refused by the expiry check.

use crate::primary_common::attack::*;
use crate::primary_common::forged::serve_image_timestamp;
use crate::primary_common::{ferry_ok, Options, World};
use ferry_tests::forge;

#[test]
fn freeze_expired_image_timestamp_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    // The repository re-signs its timestamp (a routine refresh); the attacker keeps a copy.
    ferry_ok(
        &world.base,
        &["repo", "refresh", "img", "--within", "1000days"],
    );
    let mut frozen = forge::read(&image_metadata(&world).join("timestamp.json"));
    publish_v2(&world);
    assign_v2(&world);
    // The frozen copy as the vehicle sees it once its expiry has passed: the vehicle's clock is
    // the system clock, so the copy is given an expiry in the past (same version, same
    // repository key) instead of waiting a day.
    frozen["signed"]["expires"] = "2020-01-01T00:00:00Z".into();
    serve_image_timestamp(&world, frozen);
    assert_attack_refused(&world, "expiry check failed: timestamp expired", &v1);
}
