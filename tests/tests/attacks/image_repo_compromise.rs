//! Image-repository-only compromise: an attacker with every Image repository key signs its
//! own image. Nothing the Director did not assign is ever installed (the cycle stays
//! up to date), and substituting it under an assigned name is refused by the image match hash
//! check (the Director's signed hashes win).

use crate::primary_common::attack::*;
use crate::primary_common::{Options, World, PRIMARY};
use serde_json::Value;

#[test]
fn image_repo_compromise_unassigned_signed_image_is_not_installed() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    std::fs::write(world.base.join("evil.tar"), b"evil app, properly signed").unwrap();
    let mut args = APP_V2_ARGS.to_vec();
    args[7] = "99";
    world.republish("evil.tar", "apps/evil.tar", &args);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "up-to-date", "{report}");
    assert!(
        !out.stderr.contains("evil"),
        "the evil image was looked at: {out}"
    );
    assert_still_v1(&world, &v1);
    assert!(!world.base.join("ivi-1-apps/demo/evil.tar").exists());
    // The manifest accepted in that cycle: v1, no attack, no new install.
    assert_eq!(world.reported(PRIMARY)["installed_image"], v1.reported[0].1);

    // The same attacker now signs its bytes under the name the Director assigned.
    publish_v2(&world);
    assign_v2(&world);
    // Same length as the real v2, so only the hashes differ.
    let mut evil = app_v2_bytes();
    evil[0] ^= 0xff;
    std::fs::write(world.base.join("evil-3.tar"), evil).unwrap();
    world.republish("evil-3.tar", APP_V2, APP_V2_ARGS);
    assert_attack_refused(
        &world,
        "image match hash check failed: target apps/demo-3.tar",
        &v1,
    );
}
