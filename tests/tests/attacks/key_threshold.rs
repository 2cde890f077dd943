//! Key compromise below threshold: the Image repository's targets role needs two of its two
//! keys; an attacker holding one of them (and the online snapshot and timestamp keys) signs
//! targets that point the assigned v2 at its own bytes. Refused by the signature threshold
//! check.

use crate::primary_common::attack::*;
use crate::primary_common::forged::{image_targets, write_served};
use crate::primary_common::{Options, World};
use ferry_tests::forge;
use serde_json::json;

#[test]
fn key_compromise_one_of_two_targets_keys_is_refused() {
    let world = World::start(Options {
        image_targets_threshold_2: true,
        ..Options::default()
    });
    let v1 = install_v1(&world);
    publish_v2(&world);
    assign_v2(&world);
    let mut evil = app_v2_bytes();
    evil[0] ^= 0xff;
    let hash = ferry_tests::sha256_hex(&evil);
    write_served(
        &world
            .base
            .join(format!("img/targets/apps/{hash}.demo-3.tar")),
        &evil,
    );
    let stolen = forge::key(&world.base.join("t1.pem"));
    image_targets(
        &world,
        |signed| signed["targets"][APP_V2]["hashes"] = json!({"sha256": hash}),
        &[&stolen],
    );
    assert_attack_refused(
        &world,
        "signature threshold check failed: targets has 1 valid signature(s) from distinct authorised keys, needs 2",
        &v1,
    );
}
