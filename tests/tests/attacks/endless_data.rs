//! Endless data attack (§4.3): a mirror answers the image request with a body that never
//! ends. Refused by the length bound (the signed length), as endless data.

use crate::primary_common::attack::*;
use crate::primary_common::mitm::{Act, Mitm};
use crate::primary_common::{Options, World};

#[test]
fn endless_data_image_without_end_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    let mirror = Mitm::start(world.repo.addr, |line| {
        if line.contains("demo-3.tar") {
            Act::Endless
        } else {
            Act::Forward
        }
    });
    route_primary(
        &world,
        Via {
            image_repo: Some(mirror.addr),
            ..Via::default()
        },
    );
    publish_v2(&world);
    assign_v2(&world);
    assert_attack_refused(&world, "(endless data)", &v1);
    assert!(
        !mirror.bodies("demo-3.tar").is_empty(),
        "the mirror was asked"
    );
}
