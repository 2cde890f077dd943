//! A crash between (or inside) the container installer's steps: a fresh installer, as after a
//! restart, runs what the driver's resume runs for the journaled step (install → rollback;
//! verify → verify and commit; commit → commit; rollback → rollback; download → cleanup), and
//! exactly the old image or the new one is live, whole, with the hook run for it.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/oci.rs"]
mod oci;
#[path = "fixtures/container_rig.rs"]
mod rig;

use ferry_secondary::Installer;
use oci::Image;
use rig::{Rig, Staged};

const BASE: &[u8] = b"base layer";

fn one() -> Image {
    Image::new("web:1", "one", &[BASE, b"layer 1"])
}

fn two() -> Image {
    Image::new("web:2", "two", &[BASE, b"layer 2"])
}

/// v1 installed and committed; v2 staged.
fn rig() -> (Rig, Staged) {
    let rig = Rig::new();
    let v1 = rig.stage_image("web-1.tar", &one());
    rig.install_fully(&v1);
    let v2 = rig.stage_image("web-2.tar", &two());
    (rig, v2)
}

/// After the resumed steps, `image` is live and only its layout is left.
fn assert_only(rig: &Rig, image: &Image) {
    rig.assert_live(image);
    assert_eq!(rig.list("images/web"), [image.id.as_str()]);
    assert_eq!(rig.list("blobs/sha256"), image.blobs());
    assert!(rig.list("refs/previous").is_empty());
    assert!(rig.list("refs/next").is_empty());
}

#[test]
fn crash_during_download_leaves_the_old_image() {
    let (rig, v2) = rig();
    rig.installer().prepare(&rig.job(&v2)).unwrap();
    // Half-checked blobs of another attempt are lying in incoming/ too.
    std::fs::create_dir_all(rig.store().join("incoming")).unwrap();
    std::fs::write(rig.store().join("incoming/junk"), b"junk").unwrap();
    rig.installer().cleanup(&rig.job(&v2)).unwrap();
    assert_only(&rig, &one());
    assert_eq!(rig.hook_log(), ["install web:1"]);
}

#[test]
fn crash_after_install_rolls_back_to_the_old_image() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.rollback(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &one());
    assert_eq!(
        rig.hook_log(),
        ["install web:1", "install web:2", "rollback web:1"]
    );
}

#[test]
fn crash_between_the_two_reference_writes_rolls_back() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    // Install's first write (previous = v1) landed; the switch did not.
    let previous = rig.store().join("refs/previous/web");
    std::fs::create_dir_all(previous.parent().unwrap()).unwrap();
    std::fs::write(&previous, format!("{}\n", one().id)).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.rollback(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &one());
}

#[test]
fn crash_after_verify_resumes_to_the_new_image() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    first.verify(&job).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.verify(&job).unwrap();
    fresh.commit(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &two());
}

#[test]
fn crash_inside_commit_commits_again() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    // The commit point (dropping the previous reference) passed; garbage collection did not.
    std::fs::remove_file(rig.store().join("refs/previous/web")).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.commit(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &two());
    // A rollback that comes too late (commit recorded) changes nothing: no reference to use.
    fresh.rollback(&job).unwrap();
    assert_only(&rig, &two());
}

#[test]
fn crash_inside_rollback_rolls_back_again() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    // Rollback's switch back landed, the hook for v1 and dropping `previous` did not.
    std::fs::write(
        rig.store().join("refs/current/web"),
        format!("{}\n", one().id),
    )
    .unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.rollback(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &one());
    assert_eq!(rig.hook_log().last().unwrap(), "rollback web:1");
}

#[test]
fn install_repeated_after_the_switch_still_returns_to_the_old_image() {
    let (rig, v2) = rig();
    let job = rig.job(&v2);
    let mut first = rig.installer();
    first.prepare(&job).unwrap();
    first.install(&job).unwrap();
    drop(first);
    let mut fresh = rig.installer();
    fresh.install(&job).unwrap();
    assert_eq!(rig.current().unwrap(), two().id);
    fresh.rollback(&job).unwrap();
    fresh.cleanup(&job).unwrap();
    assert_only(&rig, &one());
}

#[test]
fn a_shared_blob_is_reused_not_stored_again() {
    let (rig, v2) = rig();
    let mut installer = rig.installer();
    installer.prepare(&rig.job(&v2)).unwrap();
    let imported = installer.last_import().unwrap();
    // v2 shares the base layer with v1: config, manifest and layer 2 are new.
    assert_eq!((imported.stored, imported.reused), (3, 1));
}
