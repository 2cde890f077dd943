//! The `snapshot` domain on a real btrfs file system on a loop device made by the test
//! (`truncate`, `mkfs.btrfs`, `mount -o loop`; unmounted at the end, also on failure): four
//! updates with `keep = 3` leave exactly three snapshots, the newest the default; an unchanged
//! 100 MiB file is shared between snapshots, not copied (the file system's used space says
//! so); an update whose health check fails after the reboot leaves the previous snapshot the
//! default and its own deleted; a tar.zst root applies like a tar; a merged /etc keeps local
//! files and the `etc_keep` ones; `rollback --to` the oldest kept snapshot makes it the
//! default and the ECU reports its image and provides. Skips, saying why, where btrfs cannot
//! be mounted.
#![allow(clippy::unwrap_used)]

#[allow(dead_code)]
#[path = "../../tests/src/btrfs.rs"]
mod btrfs_fixture;
mod common;

use btrfs_fixture::{rootfs_tar, Btrfs};
use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::config::{BootBackend, EtcMode, SnapshotConfig};
use ferry_secondary::{Ecu, Installed, VerificationMode};
use serde_json::{json, Value};

const MIB: usize = 1 << 20;

/// 100 MiB that no file system could store in less (xorshift, not zeros).
fn big_file() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(100 * MIB);
    while out.len() < 100 * MIB {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn rootfs(version: u32, big: &[u8], healthy: bool) -> Vec<u8> {
    let release = format!("VERSION_ID={version}\n");
    let mut files: Vec<(&str, &[u8])> = vec![
        ("etc/os-release", release.as_bytes()),
        ("etc/hostname", b"factory"),
        ("usr/lib/big.bin", big),
    ];
    if healthy {
        files.push(("usr/lib/healthy", b"yes"));
    }
    rootfs_tar(&files)
}

fn custom(version: u32) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": version, "domain": "snapshot",
            "name": "microos", "version": version.to_string() })
}

fn install(
    v: &mut Vehicle,
    ecu: &mut Ecu,
    version: u32,
    bytes: &[u8],
) -> ferry_secondary::Result<Installed> {
    let name = format!("os/microos-{version}.tar");
    v.offer(&name, bytes, custom(version));
    ecu.receive_metadata(&v.bundle(), now())?;
    ecu.receive_image(&mut &bytes[..])?;
    ecu.install(now())
}

#[test]
fn snapshots_share_unchanged_files_keep_three_roll_back_a_failed_health_check_and_go_back_to_any_kept_one(
) {
    let mut v = Vehicle::new(VerificationMode::Full);
    let fs = match Btrfs::new(v.dir.path(), 1024) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot make a btrfs file system on a loop device here: {why}");
            return;
        }
    };
    let big = big_file();
    fs.first_root(|root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("etc/os-release"), "VERSION_ID=1\n").unwrap();
        std::fs::write(root.join("usr/lib/healthy"), "yes").unwrap();
        // Local configuration: /etc is merged (etc = "merge"), hostname kept (etc_keep).
        std::fs::write(root.join("etc/hostname"), "car-42").unwrap();
        std::fs::write(root.join("etc/machine-id"), "abc").unwrap();
        std::fs::write(root.join("usr/lib/big.bin"), &big).unwrap();
    });
    v.config.snapshot = Some(SnapshotConfig {
        mount: Some(fs.mount.clone()),
        device: None,
        root: "/".into(),
        keep: 3,
        btrfs: "btrfs".into(),
        etc: EtcMode::Merge,
        etc_keep: vec!["etc/hostname".into()],
        boot: BootBackend::File,
        boot_env: Some(v.dir.path().join("bootenv")),
        bootlimit: 3,
        health_check: Some(vec![
            "sh".into(),
            "-c".into(),
            "test -f \"$FERRY_SNAPSHOT_PATH/usr/lib/healthy\"".into(),
        ]),
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: "fw_printenv".into(),
        fw_setenv: "fw_setenv".into(),
        grub_editenv: "grub-editenv".into(),
    });
    let mut ecu = v.ecu();

    // Version 2: only os-release changed; the 100 MiB file stays shared with snapshot 1.
    let before = fs.used_bytes();
    let done = install(&mut v, &mut ecu, 2, &rootfs(2, &big, true)).unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    let grew = fs.used_bytes().saturating_sub(before);
    println!("snapshot 2 added {grew} bytes of used space (the image holds 100 MiB)");
    assert!(
        grew < 20 * MIB as u64,
        "snapshot 2 grew the file system by {grew} bytes: the unchanged file was copied"
    );
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
    let snap2 = fs.mount.join("ferry/snapshots/2");
    assert_eq!(
        std::fs::read_to_string(snap2.join("etc/os-release")).unwrap(),
        "VERSION_ID=2\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.mount.join("ferry/snapshots/1/etc/os-release")).unwrap(),
        "VERSION_ID=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(snap2.join("etc/hostname")).unwrap(),
        "car-42"
    );
    assert_eq!(
        std::fs::read_to_string(snap2.join("etc/machine-id")).unwrap(),
        "abc"
    );
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(
        status.installed_domains["snapshot"].target,
        "os/microos-2.tar"
    );

    // Three more: keep = 3 leaves the newest three. Version 4 is a tar.zst (told by its
    // magic): it applies the same way.
    for version in 3..=5 {
        let mut bytes = rootfs(version, &big, true);
        if version == 4 {
            bytes = zstd::stream::encode_all(&bytes[..], 3).unwrap();
        }
        install(&mut v, &mut ecu, version, &bytes).unwrap();
    }
    assert_eq!(fs.snapshots(), [3, 4, 5]);
    assert_eq!(
        std::fs::read_to_string(fs.mount.join("ferry/snapshots/4/etc/os-release")).unwrap(),
        "VERSION_ID=4\n"
    );
    assert_eq!(
        std::fs::read(fs.mount.join("ferry/snapshots/4/usr/lib/big.bin")).unwrap(),
        big
    );
    assert_eq!(fs.default_path(), "ferry/snapshots/5");

    // Version 6 has no usr/lib/healthy: booted, failed, snapshot 5 the default again, 6 deleted.
    let err = install(&mut v, &mut ecu, 6, &rootfs(6, &big, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("failed at verify-reboot: snapshot health check failed"),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(fs.default_path(), "ferry/snapshots/5");
    assert_eq!(fs.snapshots(), [3, 4, 5]);
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "5");
    let last = status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);

    // The operator goes back to the oldest kept snapshot.
    let err = ferry_secondary::ecu::rollback_snapshot(&v.config, 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("snapshot 1 is not kept (kept: [3, 4, 5])"),
        "{err}"
    );
    let kept = ferry_secondary::ecu::kept_snapshots(&v.config).unwrap();
    assert_eq!(kept.iter().map(|k| k.number).collect::<Vec<_>>(), [3, 4, 5]);
    assert_eq!(kept[0].target.as_deref(), Some("os/microos-3.tar"));
    assert!(kept[2].default && kept[2].booted, "{kept:?}");
    let image = ferry_secondary::ecu::rollback_snapshot(&v.config, 3).unwrap();
    assert_eq!(image.target, "os/microos-3.tar");
    assert_eq!(fs.default_path(), "ferry/snapshots/3");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "3");
    assert_eq!(
        status.installed_domains["snapshot"].target,
        "os/microos-3.tar"
    );
    let last = status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);
    assert!(
        last.detail.contains("rolled back to snapshot 3"),
        "{}",
        last.detail
    );
    let err = ferry_secondary::ecu::rollback_snapshot(&v.config, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("snapshot 3 runs already"), "{err}");

    // The next update starts from snapshot 3 and keeps three again.
    install(&mut v, &mut ecu, 7, &rootfs(7, &big, true)).unwrap();
    assert_eq!(fs.default_path(), "ferry/snapshots/6");
    assert_eq!(
        std::fs::read_to_string(fs.mount.join("ferry/snapshots/6/etc/os-release")).unwrap(),
        "VERSION_ID=7\n"
    );
    assert_eq!(fs.snapshots(), [4, 5, 6]);
    assert_eq!(ecu.status().unwrap().provides["rootfs-image.version"], "7");
}

/// Unmounts what Ferry mounted, also when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn with_only_the_device_configured_ferry_mounts_the_top_level_itself() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let fs = match Btrfs::new(v.dir.path(), 256) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot make a btrfs file system on a loop device here: {why}");
            return;
        }
    };
    fs.first_root(|root| {
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/os-release"), "VERSION_ID=1\n").unwrap();
    });
    let out = std::process::Command::new("findmnt")
        .args(["-n", "-o", "SOURCE", "--mountpoint"])
        .arg(&fs.mount)
        .output()
        .unwrap();
    let device = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(device.starts_with("/dev/loop"), "{device:?}");
    v.config.snapshot = Some(SnapshotConfig {
        mount: None,
        device: Some(device.into()),
        root: "/".into(),
        keep: 3,
        btrfs: "btrfs".into(),
        etc: EtcMode::Image,
        etc_keep: Vec::new(),
        boot: BootBackend::File,
        boot_env: Some(v.dir.path().join("bootenv")),
        bootlimit: 3,
        health_check: None,
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: "fw_printenv".into(),
        fw_setenv: "fw_setenv".into(),
        grub_editenv: "grub-editenv".into(),
    });
    let top = v.config.data_dir.join("snapshot-top");
    let _unmount = Unmount(top.clone());
    let mut ecu = v.ecu();
    let tar = btrfs_fixture::rootfs_tar(&[("etc/os-release", b"VERSION_ID=2\n")]);
    install(&mut v, &mut ecu, 2, &tar).unwrap();
    assert_eq!(fs.default_path(), "ferry/snapshots/2");
    assert_eq!(
        std::fs::read_to_string(top.join("ferry/snapshots/2/etc/os-release")).unwrap(),
        "VERSION_ID=2\n"
    );
    // Opened again, it finds its mount in place and does not mount twice.
    drop(ecu);
    let ecu = v.ecu();
    assert_eq!(ecu.status().unwrap().provides["rootfs-image.version"], "2");
}
