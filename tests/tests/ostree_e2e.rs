//! The `ostree` domain end to end: a real Director, Image repository, `ferry-primary` and a
//! `ferry-secondary` (full verification) whose OS is a real OSTree sysroot made with Debian's
//! `ostree`. v1 (the factory deployment) → v2, published with `ferry repo add-target
//! --ostree-commit REPO:REF`, is deployed, booted and reported with its provides; a v3 whose
//! health check fails after the reboot is undeployed and the Director hears the rollback; a
//! v4 whose stored bytes differ from the signed ones is refused before anything is deployed.
//! Skips, saying why, without `ostree`.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::ostree::{ostree_available, Os, Unfreeze};
use primary_common::*;

/// Add the static delta `from` → `to` as target `name` for the full Secondary's hardware,
/// naming its commit through the build repository's branch, and publish.
fn publish_delta(world: &World, os: &Os, from: &str, to: &str, version: &str, name: &str) {
    let file = format!("ferryos-{version}.delta");
    std::fs::write(world.base.join(&file), os.delta(from, to)).unwrap();
    let branch = format!("{}:ferryos/stable", os.build.display());
    world.republish(
        &file,
        name,
        &[
            "--hardware-id",
            "tcu",
            "--version",
            version,
            "--release-counter",
            version,
            "--ostree-commit",
            &branch,
            "--ostree-from",
            from,
        ],
    );
}

#[test]
fn ostree_updates_roll_back_on_a_failed_health_check_and_refuse_other_bytes() {
    if !ostree_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _unfreeze = Unfreeze(dir.path().to_owned());
    let os = Os::new(dir.path());
    let c1 = os.commits()[0].clone();
    let section = format!(
        "[ostree]\nsysroot = \"{}\"\nos = \"ferryos\"\n\
         health_check = [\"sh\", \"-c\", \"test -f \\\"$FERRY_OSTREE_DEPLOYMENT/usr/lib/healthy\\\"\"]\n",
        os.sysroot.display()
    );
    let world = World::start(Options {
        full_extra_toml: Some(Box::leak(section.into_boxed_str())),
        ..Options::default()
    });

    // v2: deployed, booted, reported with its commit.
    let c2 = os.commit("2", true);
    publish_delta(&world, &os, &c1, &c2, "2", "os/ferryos-2.delta");
    world.assign(&[(FULL, "os/ferryos-2.delta")]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(os.commits(), vec![c2.clone(), c1.clone()]);
    let full = world.reported(FULL);
    assert_eq!(
        full["installed_image"]["filepath"], "os/ferryos-2.delta",
        "{full}"
    );
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");
    assert_eq!(
        full["provides"]["rootfs-image.ostree.commit"],
        c2.as_str(),
        "{full}"
    );

    // v3 fails its health check after the reboot: undeployed, v2 boots, the Director hears.
    // Published with --ostree-delta: the commits come from the delta's own superblock.
    let c3 = os.commit("3", false);
    std::fs::write(world.base.join("ferryos-3.delta"), os.delta(&c2, &c3)).unwrap();
    ferry_ok(
        &world.base,
        &[
            "repo",
            "add-target",
            "img",
            "--ostree-delta",
            "ferryos-3.delta",
            "--name",
            "os/ferryos-3.delta",
            "--hardware-id",
            "tcu",
            "--version",
            "3",
            "--release-counter",
            "3",
        ],
    );
    ferry_ok(&world.base, &["repo", "publish", "img"]);
    let listed = ferry_ok(&world.base, &["repo", "list", "img", "--json"]);
    assert!(listed.stdout.contains(&c3), "{listed}");
    world.assign(&[(FULL, "os/ferryos-3.delta")]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    // v2 boots by default again; v1, unpinned once v2 was committed, was cleaned up when v3
    // was deployed (ostree keeps the default and the rollback deployment, and pinned ones).
    let after = os.commits();
    assert_eq!(after.first(), Some(&c2), "{after:?}");
    assert!(!after.contains(&c3), "{after:?}");
    let full = world.reported(FULL);
    assert_eq!(
        full["last_install"]["target"], "os/ferryos-3.delta",
        "{full}"
    );
    assert_eq!(full["last_install"]["result"], "rolled-back", "{full}");
    assert!(
        full["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ostree health check failed")),
        "{full}"
    );
    assert_eq!(
        full["provides"]["rootfs-image.ostree.commit"],
        c2.as_str(),
        "{full}"
    );

    // v4's stored file is swapped for other bytes after signing: refused as it streams, so
    // ostree never sees it and nothing is deployed.
    let c4 = os.commit("4", true);
    publish_delta(&world, &os, &c2, &c4, "4", "os/ferryos-4.delta");
    for stored in world.stored_target_files("os/ferryos-4.delta") {
        let mut bytes = std::fs::read(&stored).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&stored, bytes).unwrap();
    }
    world.assign(&[(FULL, "os/ferryos-4.delta")]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(os.commits(), after, "nothing deployed");
    let repo = os.repo();
    let shown = std::process::Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["show", &c4])
        .output()
        .unwrap();
    assert!(
        !shown.status.success(),
        "commit 4 reached the ECU's repository"
    );
    let full = world.reported(FULL);
    assert_eq!(
        full["provides"]["rootfs-image.ostree.commit"],
        c2.as_str(),
        "{full}"
    );
}
