//! Rollback attack on metadata (§4.3): a mirror serves an older, validly signed timestamp
//! than the one the vehicle already trusts, to hide newer images. Refused by the rollback
//! check.

use crate::primary_common::attack::*;
use crate::primary_common::forged::write_served;
use crate::primary_common::{ferry_ok, Options, World};
use ferry_tests::forge;

#[test]
fn metadata_rollback_older_image_timestamp_is_refused() {
    let world = World::start(Options::default());
    let timestamp = image_metadata(&world).join("timestamp.json");
    let old = std::fs::read(&timestamp).unwrap();
    // A newer timestamp before v1 is installed, so the vehicle trusts a version above `old`.
    ferry_ok(
        &world.base,
        &["repo", "refresh", "img", "--within", "1000days"],
    );
    let v1 = install_v1(&world);
    publish_v2(&world);
    assign_v2(&world);
    write_served(&timestamp, &old);
    let old_version = forge::version(&serde_json::from_slice(&old).unwrap());
    let check = format!(
        "rollback check failed: timestamp version {old_version} is lower than trusted version {}",
        old_version + 1
    );
    assert_attack_refused(&world, &check, &v1);
}
