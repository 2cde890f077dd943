//! Arbitrary software attack (§4.3): the image file on the server is replaced by other bytes
//! (same length), the signed metadata untouched. Refused by the hash check as the download
//! streams, before any ECU receives it.

use crate::primary_common::attack::*;
use crate::primary_common::{Options, World};

#[test]
fn arbitrary_software_image_altered_on_the_server_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    publish_v2(&world);
    assign_v2(&world);
    let mut evil = app_v2_bytes();
    evil[4096] ^= 0xff;
    for file in world.stored_target_files(APP_V2) {
        std::fs::write(&file, &evil).unwrap();
    }
    assert_attack_refused(&world, "hash check failed: apps/demo-3.tar", &v1);
    let out = world.check();
    assert!(
        !out.stderr.contains("image match"),
        "the download failed: {out}"
    );
    world.assert_nothing_staged();
}
