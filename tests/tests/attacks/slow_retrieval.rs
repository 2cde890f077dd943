//! Slow retrieval attack (§4.3): a mirror trickles the image a byte at a time so the download
//! never ends and the vehicle never updates. Refused by the download speed check.

use crate::primary_common::attack::*;
use crate::primary_common::mitm::{Act, Mitm};
use crate::primary_common::{Options, World};
use std::time::Duration;

#[test]
fn slow_retrieval_trickled_image_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    let mirror = Mitm::start(world.repo.addr, |line| {
        if line.contains("demo-3.tar") {
            Act::Trickle(Duration::from_millis(20))
        } else {
            Act::Forward
        }
    });
    // At most 50 bytes/s reach the vehicle; it wants 10 KiB/s after 2 s.
    route_primary(
        &world,
        Via {
            image_repo: Some(mirror.addr),
            download: Some("min_bytes_per_sec = 10240\nspeed_grace = \"2s\"\n"),
            ..Via::default()
        },
    );
    publish_v2(&world);
    assign_v2(&world);
    assert_attack_refused(&world, "(slow retrieval)", &v1);
}
