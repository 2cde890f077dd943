//! The `snapshot` domain end to end: a real Director, Image repository, `ferry-primary` and a
//! `ferry-secondary` (full verification) whose root is snapshots on a real btrfs file system
//! on a loop device. v1 (the factory snapshot) → v2 is applied as a new snapshot, made the
//! default, booted and reported with its provides; a v3 whose health check fails after the
//! reboot leaves v2 the default and the Director hears the rollback; a v4 whose stored bytes
//! differ from the signed ones is refused before any snapshot is made. Skips, saying why,
//! where btrfs cannot be mounted.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::btrfs::{rootfs_tar, Btrfs};
use primary_common::*;

fn publish(world: &World, version: &str, healthy: bool) -> String {
    let release = format!("VERSION_ID={version}\n");
    let mut files: Vec<(&str, &[u8])> = vec![
        ("etc/os-release", release.as_bytes()),
        ("usr/bin/app", b"the application"),
    ];
    if healthy {
        files.push(("etc/healthy", b"yes"));
    }
    let file = format!("microos-{version}.tar");
    std::fs::write(world.base.join(&file), rootfs_tar(&files)).unwrap();
    let name = format!("os/microos-{version}.tar");
    world.republish(
        &file,
        &name,
        &[
            "--hardware-id",
            "tcu",
            "--domain",
            "snapshot",
            "--version",
            version,
            "--release-counter",
            version,
        ],
    );
    name
}

#[test]
fn snapshot_updates_roll_back_on_a_failed_health_check_and_refuse_other_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let fs = match Btrfs::new(dir.path(), 256) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot make a btrfs file system on a loop device here: {why}");
            return;
        }
    };
    fs.first_root(|root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/os-release"), "VERSION_ID=1\n").unwrap();
        std::fs::write(root.join("etc/healthy"), "yes").unwrap();
    });
    let section = format!(
        "[snapshot]\nmount = \"{}\"\nkeep = 3\n\
         health_check = [\"sh\", \"-c\", \"test -f \\\"$FERRY_SNAPSHOT_PATH/etc/healthy\\\"\"]\n",
        fs.mount.display()
    );
    let world = World::start(Options {
        full_extra_toml: Some(Box::leak(section.into_boxed_str())),
        ..Options::default()
    });

    let v2 = publish(&world, "2", true);
    world.assign(&[(FULL, &v2)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
    assert_eq!(fs.snapshots(), [1, 2]);
    let full = world.reported(FULL);
    assert_eq!(full["installed_image"]["filepath"], v2.as_str(), "{full}");
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    let v3 = publish(&world, "3", false);
    world.assign(&[(FULL, &v3)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
    assert_eq!(fs.snapshots(), [1, 2], "the failed snapshot is deleted");
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], v3.as_str(), "{full}");
    assert_eq!(full["last_install"]["result"], "rolled-back", "{full}");
    assert!(
        full["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("snapshot health check failed")),
        "{full}"
    );
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    let v4 = publish(&world, "4", true);
    for stored in world.stored_target_files(&v4) {
        let mut bytes = std::fs::read(&stored).unwrap();
        bytes[600] ^= 1;
        std::fs::write(&stored, bytes).unwrap();
    }
    world.assign(&[(FULL, &v4)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(fs.snapshots(), [1, 2], "no snapshot made of other bytes");
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
    let full = world.reported(FULL);
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");

    // The operator's view, through the real binary: snapshot 2 runs; snapshot 1 (the factory
    // root) holds no record of an image, so there is no going back to it by name.
    let config = world.base.join(format!("{FULL}.toml"));
    let secondary = ferry_tests::bins::binary("ferry-secondary", "ferry-secondary");
    let config_arg = config.to_str().unwrap();
    let out = run(
        &world.base,
        &secondary,
        &["--config", config_arg, "snapshots", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let kept: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(kept[0]["number"], 1, "{kept}");
    assert_eq!(kept[0]["target"], serde_json::Value::Null, "{kept}");
    assert_eq!(kept[1]["number"], 2, "{kept}");
    assert_eq!(kept[1]["target"], v2.as_str(), "{kept}");
    assert_eq!(kept[1]["default"], true, "{kept}");
    let out = run(
        &world.base,
        &secondary,
        &["--config", config_arg, "rollback", "--to", "1"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("snapshot 1 has no record of the image it holds"),
        "{out}"
    );
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
}
