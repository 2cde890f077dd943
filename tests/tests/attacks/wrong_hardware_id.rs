//! Wrong hardwareId: the Image repository's signed metadata says the assigned image is for
//! other hardware than the ECU it is assigned to (installing it could brick the ECU).
//! Refused by the hardwareId check before download.

use crate::primary_common::attack::*;
use crate::primary_common::{Options, World};

#[test]
fn wrong_hardware_id_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    publish_v2(&world);
    assign_v2(&world);
    // Same bytes, so every hash still matches; only the hardwareId changed.
    let mut args = APP_V2_ARGS.to_vec();
    args[1] = "other-ivi";
    world.republish("demo-3.tar", APP_V2, &args);
    assert_attack_refused(&world, "hardwareId check failed", &v1);
}
