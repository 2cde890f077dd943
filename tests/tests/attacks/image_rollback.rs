//! Rollback attack on images (§4.3): an older, validly signed build of the installed app
//! (a lower releaseCounter, perhaps with a known vulnerability) is offered again. Refused by
//! the releaseCounter check before anything is downloaded.

use crate::primary_common::attack::*;
use crate::primary_common::{Options, World, PRIMARY};

#[test]
fn image_rollback_lower_release_counter_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    // The old build (releaseCounter 1 < v1's 2), properly signed by the Image repository.
    std::fs::write(world.base.join("old.tar"), b"demo 1, vulnerable").unwrap();
    world.republish(
        "old.tar",
        "apps/demo-1.tar",
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "1",
            "--release-counter",
            "1",
        ],
    );
    world.assign(&[(PRIMARY, "apps/demo-1.tar")]);
    assert_attack_refused(&world, "releaseCounter check failed", &v1);
    assert!(!world.base.join("ivi-1-apps/demo/demo-1.tar").exists());
}
