//! Partial bundle installation attack (§4.3): a man in the middle on the in-vehicle network
//! tampers with the image one Secondary receives, hoping the others install theirs and the
//! vehicle ends up half updated. That Secondary refuses the image by its hash check, and the
//! Primary then installs on no ECU: the partial bundle check.

use crate::primary_common::attack::*;
use crate::primary_common::mitm::{Act, Mitm};
use crate::primary_common::{Options, World, FULL};

#[test]
fn partial_bundle_one_secondary_tampered_installs_nowhere() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    let link = Mitm::start(world.secondaries[0].addr, |line| {
        if line.starts_with("PUT /image") {
            Act::FlipRequestByte(5)
        } else {
            Act::Forward
        }
    });
    route_primary(
        &world,
        Via {
            full_secondary: Some(link.addr),
            ..Via::default()
        },
    );
    publish_v2(&world);
    assign_v2(&world);
    assert_attack_refused(&world, "partial bundle check failed: ECU tcu-full", &v1);
    // The tampered Secondary lists the check that caught the bytes among its refusals from
    // the network (not in its signed report: what arrives over the network is not signed by
    // the ECU it was sent to); the Primary's report names it, above.
    let status = world.secondary_status(FULL);
    let refusal = &status["network_refusals"][0];
    assert_eq!(refusal["request"], "PUT /image", "{status}");
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("hash check failed"),
        "{status}"
    );
    assert_eq!(world.reported(FULL)["attacks_detected"], "");
    assert!(
        !link.bodies("PUT /image").is_empty(),
        "the image went through the link"
    );
}
