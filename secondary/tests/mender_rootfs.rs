//! `rootfs-image` Mender artifacts, made by the real `mender-artifact write rootfs-image`,
//! in the os domain: the image inside the verified artifact is streamed into the inactive
//! slot (memory does not grow with the image), read back against the artifact's manifest,
//! and booted as a plain image would be; the artifact's provides are the ECU's afterwards.
//! The artifact's state scripts run around the os states (and the rollback and failure ones
//! when a state fails). Skips, saying why, without Debian's mender-artifact.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/mender.rs"]
mod mender_fixture;

use common::*;
use ferry_secondary::config::{BootBackend, OsConfig};
use ferry_secondary::install::boot::parse_lines;
use ferry_secondary::{Ecu, Installed, VerificationMode};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn os_vehicle() -> Vehicle {
    let mut v = Vehicle::new(VerificationMode::Full);
    let root = v.dir.path().to_owned();
    std::fs::write(root.join("slot-a.img"), b"factory image").unwrap();
    v.config.os = Some(OsConfig {
        slots: vec![root.join("slot-a.img"), root.join("slot-b.img")],
        boot: BootBackend::File,
        boot_env: Some(root.join("bootenv")),
        bootlimit: 3,
        health_check: None,
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: root.join("fw_printenv"),
        fw_setenv: root.join("fw_setenv"),
        grub_editenv: root.join("grub-editenv"),
    });
    v
}

/// Bytes that do not compress (so the artifact is as large as the image).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `mender-artifact write rootfs-image` of `image`, with `extra` arguments.
fn rootfs_artifact(tool: &Path, dir: &Path, name: &str, image: &[u8], extra: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("rootfs.ext4"), image).unwrap();
    let mut args = vec![
        "write",
        "rootfs-image",
        "-f",
        "rootfs.ext4",
        "-n",
        name,
        "-t",
        HW,
        "-o",
        "out.mender",
    ];
    args.extend_from_slice(extra);
    mender_fixture::write(tool, dir, &args);
    std::fs::read(dir.join("out.mender")).unwrap()
}

/// The custom metadata `ferry repo add-target --from-mender` gives a rootfs-image artifact
/// (the mapping itself is tested end to end in tests/tests/mender_e2e.rs).
fn custom(name: &str, counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "os", "name": name,
            "provides": { "artifact_name": name, "rootfs-image.version": name },
            "clearsProvides": ["artifact_group", "rootfs_image_checksum", "rootfs-image.*"],
            "mender": { "format": 3, "artifactName": name, "payloadType": "rootfs-image" } })
}

fn offer(v: &mut Vehicle, ecu: &mut Ecu, name: &str, artifact: &[u8], counter: u64) {
    v.offer(
        &format!("os/{name}.mender"),
        artifact,
        custom(name, counter),
    );
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &artifact[..]).unwrap();
}

fn boot_slot(v: &Vehicle) -> String {
    let env = parse_lines(&std::fs::read_to_string(v.dir.path().join("bootenv")).unwrap());
    env["boot_slot"].clone()
}

fn slot(v: &Vehicle, name: &str) -> Option<Vec<u8>> {
    std::fs::read(v.dir.path().join(format!("slot-{name}.img"))).ok()
}

#[test]
fn a_rootfs_image_artifact_installs_into_the_inactive_slot_and_boots() {
    let test = "a_rootfs_image_artifact_installs_into_the_inactive_slot_and_boots";
    let Some(tool) = mender_fixture::tool(test) else {
        return;
    };
    let mut v = os_vehicle();
    let mut ecu = v.ecu();
    let work = tempfile::tempdir().unwrap();

    let image2 = noise(3 << 20, 2);
    let artifact = rootfs_artifact(&tool, work.path(), "release-2", &image2, &[]);
    offer(&mut v, &mut ecu, "release-2", &artifact, 2);
    let done = ecu.install(now()).unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert!(
        slot(&v, "b").unwrap() == image2,
        "slot b holds the image, not the artifact"
    );
    assert_eq!(slot(&v, "a").unwrap(), b"factory image");
    assert_eq!(boot_slot(&v), "b");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "release-2");
    assert_eq!(status.provides["artifact_name"], "release-2");
    assert_eq!(status.installed_domains["os"].target, "os/release-2.mender");

    // The next one goes to slot a.
    let image3 = noise(1 << 20, 3);
    let artifact = rootfs_artifact(&tool, work.path(), "release-3", &image3, &[]);
    offer(&mut v, &mut ecu, "release-3", &artifact, 3);
    ecu.install(now()).unwrap();
    assert!(slot(&v, "a").unwrap() == image3);
    assert!(slot(&v, "b").unwrap() == image2, "the old slot is kept");
    assert_eq!(boot_slot(&v), "a");
    assert_eq!(
        ecu.status().unwrap().provides["rootfs-image.version"],
        "release-3"
    );
}

#[test]
fn a_rootfs_image_artifacts_state_scripts_run_around_the_os_states() {
    let test = "a_rootfs_image_artifacts_state_scripts_run_around_the_os_states";
    let Some(tool) = mender_fixture::tool(test) else {
        return;
    };
    let mut v = os_vehicle();
    let mut ecu = v.ecu();
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("scripts.log");
    let all = [
        "ArtifactInstall_Enter_00",
        "ArtifactInstall_Leave_00",
        "ArtifactReboot_Enter_00",
        "ArtifactReboot_Leave_00",
        "ArtifactCommit_Enter_00",
        "ArtifactCommit_Leave_00",
        "ArtifactRollback_Enter_00",
        "ArtifactRollback_Leave_00",
        "ArtifactFailure_Enter_00",
        "ArtifactFailure_Leave_00",
    ];
    let args = mender_fixture::state_scripts(&work.path().join("s-2"), &all, &[], &log);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let image2 = noise(64 << 10, 4);
    let artifact = rootfs_artifact(&tool, work.path(), "release-2", &image2, &args);
    offer(&mut v, &mut ecu, "release-2", &artifact, 2);
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactInstall_Enter_00\nArtifactInstall_Leave_00\nArtifactReboot_Enter_00\n\
         ArtifactReboot_Leave_00\nArtifactCommit_Enter_00\nArtifactCommit_Leave_00\n"
    );
    assert_eq!(boot_slot(&v), "b");
    std::fs::remove_file(&log).unwrap();

    // ArtifactCommit_Enter fails: the update rolls back to slot b, with the rollback and
    // failure scripts, and the scripts are gone afterwards.
    let args = mender_fixture::state_scripts(
        &work.path().join("s-3"),
        &all,
        &["ArtifactCommit_Enter_00"],
        &log,
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let artifact = rootfs_artifact(&tool, work.path(), "release-3", &noise(64 << 10, 5), &args);
    offer(&mut v, &mut ecu, "release-3", &artifact, 3);
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains("artifact state script ArtifactCommit_Enter_00"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactInstall_Enter_00\nArtifactInstall_Leave_00\nArtifactReboot_Enter_00\n\
         ArtifactReboot_Leave_00\nArtifactCommit_Enter_00\nArtifactRollback_Enter_00\n\
         ArtifactRollback_Leave_00\nArtifactFailure_Enter_00\nArtifactFailure_Leave_00\n"
    );
    assert_eq!(boot_slot(&v), "b", "rolled back to release-2");
    assert_eq!(
        ecu.status().unwrap().provides["rootfs-image.version"],
        "release-2"
    );
    assert!(!v.config.data_dir.join("os-scripts").exists());
}

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_large_rootfs_image_artifact_is_streamed_into_the_slot() {
    let test = "a_large_rootfs_image_artifact_is_streamed_into_the_slot";
    let Some(tool) = mender_fixture::tool(test) else {
        return;
    };
    let mut v = os_vehicle();
    let mut ecu = v.ecu();
    let work = tempfile::tempdir().unwrap();
    const IMAGE: usize = 128 << 20;
    let image = noise(IMAGE, 5);
    let artifact = rootfs_artifact(&tool, work.path(), "release-big", &image, &[]);
    offer(&mut v, &mut ecu, "release-big", &artifact, 2);
    let expected = ferry_core::metadata::hashes_of(&image)["sha256"].clone();
    drop(image);
    drop(artifact);
    // Reset the peak to what is resident now (proc(5), clear_refs "5").
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_kib();
    ecu.install(now()).unwrap();
    let grown = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "peak RSS grew by {grown} KiB installing a {} MiB image",
        IMAGE >> 20
    );
    let written = std::fs::read(v.dir.path().join("slot-b.img")).unwrap();
    assert_eq!(
        ferry_core::metadata::hashes_of(&written)["sha256"],
        expected
    );
    // Reading the image into memory would grow the peak by its 128 MiB; streaming through
    // buffers adds a few MiB at most (the other tests of this file run beside it).
    assert!(
        grown < 32 << 10,
        "peak RSS grew by {grown} KiB while installing a {} MiB image",
        IMAGE >> 20
    );
}

#[test]
fn a_state_script_exiting_21_is_retried_later_within_the_retry_timeout() {
    let test = "a_state_script_exiting_21_is_retried_later_within_the_retry_timeout";
    let Some(tool) = mender_fixture::tool(test) else {
        return;
    };
    let mut v = os_vehicle();
    v.config.modules.script_retry_interval_secs = Some(1);
    v.config.modules.script_retry_timeout_secs = Some(2);
    let mut ecu = v.ecu();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let log = d.join("scripts.log");
    let script = |name: &str, body: &str| {
        let path = d.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {name} >> '{}'\n{body}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // Asks to be retried once, then succeeds.
    let once = d.join("asked-once");
    script(
        "ArtifactInstall_Enter_00",
        &format!(
            "[ -e '{o}' ] && exit 0\ntouch '{o}'\nexit 21",
            o = once.display()
        ),
    );
    let artifact = rootfs_artifact(
        &tool,
        d,
        "release-2",
        &noise(64 << 10, 6),
        &["-s", "ArtifactInstall_Enter_00"],
    );
    offer(&mut v, &mut ecu, "release-2", &artifact, 2);
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactInstall_Enter_00\nArtifactInstall_Enter_00\n"
    );
    assert_eq!(boot_slot(&v), "b");
    std::fs::remove_file(&log).unwrap();

    // Always asks to be retried: run at first, then once a second for two seconds, then its
    // state fails and the update rolls back.
    script("ArtifactCommit_Enter_00", "exit 21");
    let artifact = rootfs_artifact(
        &tool,
        d,
        "release-3",
        &noise(64 << 10, 7),
        &["-s", "ArtifactCommit_Enter_00"],
    );
    offer(&mut v, &mut ecu, "release-3", &artifact, 3);
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains("artifact state script ArtifactCommit_Enter_00") && err.contains("21"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactCommit_Enter_00\nArtifactCommit_Enter_00\nArtifactCommit_Enter_00\n"
    );
    assert_eq!(boot_slot(&v), "b", "rolled back to release-2");
}
