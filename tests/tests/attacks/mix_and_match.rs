//! Mix-and-match attack (§4.3): a mirror combines metadata of different versions, here the
//! new snapshot with the previous targets served under the new targets' name. Refused by the
//! version check (targets against the version snapshot lists).

use crate::primary_common::attack::*;
use crate::primary_common::forged::write_served;
use crate::primary_common::{Options, World};

#[test]
fn mix_and_match_old_targets_with_new_snapshot_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    let dir = image_metadata(&world);
    let old = latest_version(&world, "targets");
    publish_v2(&world);
    assign_v2(&world);
    let new = latest_version(&world, "targets");
    assert!(new > old);
    let old_bytes = std::fs::read(dir.join(format!("{old}.targets.json"))).unwrap();
    write_served(&dir.join(format!("{new}.targets.json")), &old_bytes);
    let check = format!(
        "version check failed: targets version {old} does not match version {new} listed in snapshot"
    );
    assert_attack_refused(&world, &check, &v1);
}
