//! The container installer through the ECU: an OCI archive is checked and imported into the
//! content-addressed store, the current reference switches, the runtime hook starts the image;
//! shared blobs are stored once; an altered blob is refused with the store untouched; a failed
//! health check brings the previous image back (reference and hook).
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/oci.rs"]
mod oci;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::{Ecu, VerificationMode};
use oci::Image;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const BASE_LAYER: &[u8] = b"base layer: shared by every version";

fn custom(version: &str, counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "container",
            "name": "web", "version": version })
}

fn v1() -> Image {
    Image::new("web:1", "one", &[BASE_LAYER, b"app layer 1"])
}

fn v2() -> Image {
    Image::new("web:2", "two", &[BASE_LAYER, b"app layer 2"])
}

/// A vehicle whose hook and health check append what they saw to `hook.log`.
fn vehicle(health_check: Option<&str>) -> (Vehicle, PathBuf) {
    let mut v = Vehicle::new(VerificationMode::Full);
    let log = v.dir.path().join("hook.log");
    let line = format!(
        "test -f \"$FERRY_OCI_LAYOUT/index.json\" && echo \"$FERRY_CONTAINER_ACTION $FERRY_OCI_REF_NAME $FERRY_CONTAINER_ID\" >> {}",
        log.display()
    );
    v.config.container.hook = vec![vec!["sh".into(), "-c".into(), line]];
    v.config.container.health_check =
        health_check.map(|script| vec!["sh".into(), "-c".into(), script.into()]);
    (v, log)
}

fn store(v: &Vehicle) -> PathBuf {
    v.config.data_dir.join("containers")
}

fn current(v: &Vehicle) -> Option<String> {
    std::fs::read_to_string(store(v).join("refs/current/web"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn hook_log(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn offer(v: &mut Vehicle, ecu: &mut Ecu, name: &str, archive: &[u8], custom: Value) {
    v.offer(name, archive, custom);
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &archive[..]).unwrap();
}

/// Every file and directory under `dir`: relative path → (inode, sha256 of its contents).
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            let digest = if meta.is_dir() {
                todo.push(path.clone());
                "dir".to_owned()
            } else {
                oci::sha256_hex(&std::fs::read(&path).unwrap())
            };
            out.insert(key, (meta.ino(), digest));
        }
    }
    out
}

/// The store's content (blobs and image layouts), leaving out the references, which a
/// rollback rewrites with the same value.
fn content(v: &Vehicle) -> BTreeMap<String, (u64, String)> {
    let mut all = snapshot(&store(v));
    all.retain(|path, _| path.starts_with("blobs") || path.starts_with("images"));
    all
}

fn stored_blobs(v: &Vehicle) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store(v).join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// v2 offered to `ecu` and installed.
fn install_v2(v: &mut Vehicle, ecu: &mut Ecu) {
    offer(v, ecu, "containers/web-2.tar", &v2().tar(), custom("2", 2));
    ecu.install(now()).unwrap();
}

fn installed_v1(v: &mut Vehicle) -> Ecu {
    let mut ecu = v.ecu();
    offer(
        v,
        &mut ecu,
        "containers/web-1.tar",
        &v1().tar(),
        custom("1", 1),
    );
    ecu.install(now()).unwrap();
    ecu
}

#[test]
fn an_image_installs_and_a_blob_already_stored_is_not_stored_again() {
    let (mut v, log) = vehicle(None);
    // Keep no earlier image, so the commit deletes v1's (the default keeps one).
    v.config.container.keep_previous = Some(0);
    let mut ecu = installed_v1(&mut v);
    let (one, two) = (v1(), v2());
    assert_eq!(current(&v).unwrap(), one.id);
    assert_eq!(stored_blobs(&v), one.blobs());
    let layout = store(&v).join("images/web").join(&one.id);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        match &one.entries[1].1 {
            oci::Kind::File(bytes) => bytes.clone(),
            _ => unreachable!(),
        }
    );
    let base = store(&v).join("blobs/sha256").join(&one.layers[0]);
    let base_inode = std::fs::metadata(&base).unwrap().ino();
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.web.version"],
        "1"
    );

    install_v2(&mut v, &mut ecu);
    assert_eq!(current(&v).unwrap(), two.id);
    // The shared base layer is the very file stored for v1: not written again.
    assert_eq!(std::fs::metadata(&base).unwrap().ino(), base_inode);
    // Committed: v1's layout and the blobs only it used are gone; v2's are all there.
    assert_eq!(stored_blobs(&v), two.blobs());
    let images: Vec<String> = std::fs::read_dir(store(&v).join("images/web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(images, [two.id.as_str()]);
    assert!(!store(&v).join("refs/previous/web").exists());
    assert_eq!(
        hook_log(&log),
        [
            format!("install web:1 {}", one.id),
            format!("install web:2 {}", two.id)
        ]
    );
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.web.version"],
        "2"
    );
}

/// What `keep_previous` keeps an image for: the Director going back to it (a re-release of
/// the old version, with a higher release counter) finds every blob and the layout already
/// in the store, so nothing of it is written again: the same files, the same inodes.
#[test]
fn going_back_to_a_kept_image_writes_none_of_it_again() {
    let (mut v, log) = vehicle(None);
    assert_eq!(
        v.config.container.keep_previous, None,
        "the default keeps one"
    );
    let mut ecu = installed_v1(&mut v);
    let one = v1();
    install_v2(&mut v, &mut ecu);
    let kept: BTreeMap<String, (u64, String)> = content(&v)
        .into_iter()
        .filter(|(path, _)| {
            one.blobs().iter().any(|b| path.ends_with(b.as_str()))
                || path.starts_with(&format!("images/web/{}", one.id))
        })
        .collect();
    assert!(
        kept.len() > one.blobs().len(),
        "v1's blobs and layout are kept: {kept:?}"
    );

    offer(
        &mut v,
        &mut ecu,
        "containers/web-1-again.tar",
        &one.tar(),
        custom("1", 3),
    );
    ecu.install(now()).unwrap();
    assert_eq!(current(&v).unwrap(), one.id);
    let after = content(&v);
    for (path, was) in &kept {
        assert_eq!(after.get(path), Some(was), "{path} was not written again");
    }
    assert_eq!(
        hook_log(&log).last().unwrap(),
        &format!("install web:1 {}", one.id)
    );
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.web.version"],
        "1"
    );
}

#[test]
fn an_archive_with_one_altered_blob_is_refused_and_nothing_changes() {
    let (mut v, log) = vehicle(None);
    let mut ecu = installed_v1(&mut v);
    let before = snapshot(&store(&v));
    let mut two = v2();
    let altered = two.layers[1].clone();
    two.alter_blob(&altered);
    // The archive itself is what the repository signed: only its inside is wrong.
    offer(
        &mut v,
        &mut ecu,
        "containers/web-2.tar",
        &two.tar(),
        custom("2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("failed at download"), "{err}");
    assert!(
        err.contains(&format!(
            "OCI archive check failed: blob digest: blobs/sha256/{altered}"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    // Decided: a refused archive leaves the store exactly as it was, new blobs included.
    assert_eq!(snapshot(&store(&v)), before);
    assert_eq!(current(&v).unwrap(), v1().id);
    assert_eq!(hook_log(&log), [format!("install web:1 {}", v1().id)]);
    assert_eq!(
        ecu.status().unwrap().installed.unwrap().target,
        "containers/web-1.tar"
    );
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.web.version"],
        "1"
    );
}

/// v1 installed, then v2 under `health_check` (failing while web:2 is live) with the
/// container time limit `limit_secs`: v2's install error, after checking that it names the
/// restore, that v1 is current again and that the hook ran for v2 and then again for v1.
/// Also returns the store's content from before v2.
fn v2_fails_its_health_check(
    health_check: &str,
    limit_secs: Option<u64>,
) -> (Vehicle, Ecu, String, BTreeMap<String, (u64, String)>) {
    let (mut v, log) = vehicle(Some(health_check));
    v.config.container.timeout_secs = limit_secs;
    let mut ecu = installed_v1(&mut v);
    let before = content(&v);
    let (one, two) = (v1(), v2());
    offer(
        &mut v,
        &mut ecu,
        "containers/web-2.tar",
        &two.tar(),
        custom("2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(current(&v).unwrap(), one.id);
    assert_eq!(
        hook_log(&log),
        [
            format!("install web:1 {}", one.id),
            format!("install web:2 {}", two.id),
            format!("rollback web:1 {}", one.id),
        ]
    );
    (v, ecu, err, before)
}

#[test]
fn a_failed_health_check_restores_the_previous_image() {
    // Healthy unless the new image is live.
    let (v, ecu, err, before) = v2_fails_its_health_check(
        "test \"$FERRY_OCI_REF_NAME\" != web:2 || { echo 'web:2 answers 503' >&2; exit 1; }",
        None,
    );
    assert!(err.contains("container health check (web) failed"), "{err}");
    assert!(err.contains("web:2 answers 503"), "{err}");
    // Cleanup dropped everything v2 brought: the store holds what it held before.
    assert_eq!(content(&v), before);
    let last = ecu.status().unwrap().last_install;
    assert_eq!(last.unwrap().result, InstallResult::RolledBack);
    assert_eq!(
        ecu.status().unwrap().provides["data-partition.web.version"],
        "1"
    );
}

#[test]
fn a_failed_hook_restores_the_previous_image() {
    let (mut v, log) = vehicle(None);
    let mut ecu = installed_v1(&mut v);
    let (one, two) = (v1(), v2());
    drop(ecu);
    // The runtime refuses the new image (after logging it) and takes the old one back.
    let line = format!(
        "echo \"$FERRY_CONTAINER_ACTION $FERRY_OCI_REF_NAME\" >> {}; test \"$FERRY_OCI_REF_NAME\" != web:2 || {{ echo 'no such image' >&2; exit 2; }}",
        log.display()
    );
    v.config.container.hook = vec![vec!["sh".into(), "-c".into(), line]];
    ecu = v.ecu();
    offer(
        &mut v,
        &mut ecu,
        "containers/web-2.tar",
        &two.tar(),
        custom("2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(err.contains("failed at install"), "{err}");
    assert!(
        err.contains("container runtime hook (install web) failed: sh exit status: 2"),
        "{err}"
    );
    assert!(err.contains("no such image"), "{err}");
    assert_eq!(current(&v).unwrap(), one.id);
    assert_eq!(
        hook_log(&log)[1..],
        ["install web:2".to_owned(), "rollback web:1".to_owned()]
    );
}

#[test]
fn a_health_check_past_its_time_limit_is_killed_and_the_previous_image_restored() {
    // Hangs while the new image is live.
    let (_, _, err, _) = v2_fails_its_health_check(
        "test \"$FERRY_OCI_REF_NAME\" != web:2 || { echo 'web:2 still starting' >&2; sleep 600; }",
        Some(1),
    );
    assert!(
        err.contains("container health check (web) failed: sh killed after 1s (its time limit)"),
        "{err}"
    );
    assert!(err.contains("web:2 still starting"), "{err}");
}
