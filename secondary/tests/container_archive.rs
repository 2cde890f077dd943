//! Hostile and malformed OCI archives are refused at prepare, each naming the failed check,
//! without a panic and without anything reaching the store.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/oci.rs"]
mod oci;
#[path = "fixtures/container_rig.rs"]
mod rig;

use ferry_secondary::Installer;
use oci::{blob_path, Image, Kind};
use rig::Rig;

fn image() -> Image {
    Image::new("web:1", "one", &[b"layer one", b"layer two"])
}

/// Prepare `bytes` as an archive; it must be refused with `expected` in the message, and
/// after cleanup the store must hold no blob, no layout, no reference.
fn refused(bytes: &[u8], expected: &str) {
    let rig = Rig::new();
    let staged = rig.stage("web.tar", bytes);
    let job = rig.job(&staged);
    let mut installer = rig.installer();
    let err = installer.prepare(&job).unwrap_err().to_string();
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    installer.cleanup(&job).unwrap();
    assert!(rig.list("blobs/sha256").is_empty());
    assert!(rig.list("images/web").is_empty());
    assert!(rig.list("refs/next").is_empty());
    assert!(rig.list("").iter().all(|n| n != "incoming"));
}

#[test]
fn a_sound_archive_is_accepted() {
    // The baseline the refusals below differ from by one thing each.
    let rig = Rig::new();
    let staged = rig.stage_image("web.tar", &image());
    rig.install_fully(&staged);
    rig.assert_live(&image());
}

#[test]
fn an_altered_blob_is_refused() {
    let mut img = image();
    let layer = img.layers[0].clone();
    img.alter_blob(&layer);
    refused(
        &img.tar(),
        &format!("blob digest: blobs/sha256/{layer} hashes to sha256:"),
    );
}

#[test]
fn links_are_refused() {
    let mut img = image();
    img.push("blobs/sha256/evil", Kind::Symlink("index.json".into()));
    refused(&img.tar(), "is a link");
    let mut img = image();
    img.push("index2", Kind::HardLink("index.json".into()));
    refused(&img.tar(), "is a link");
}

#[test]
fn paths_leaving_the_layout_are_refused() {
    for path in ["../escape", "blobs/../../escape", "/etc/passwd"] {
        let mut img = image();
        img.push(path, Kind::File(b"x".to_vec()));
        refused(&img.tar(), "path traversal");
    }
}

#[test]
fn files_outside_the_layout_format_are_refused() {
    let mut img = image();
    img.push("etc/motd", Kind::File(b"hello".to_vec()));
    refused(&img.tar(), "entry name");
    let mut img = image();
    img.push(
        &format!("blobs/sha512/{}", "ab".repeat(16)),
        Kind::File(b"x".to_vec()),
    );
    refused(&img.tar(), "blob digest algorithm");
}

#[test]
fn a_missing_blob_is_refused() {
    let mut img = image();
    let layer = img.layers[1].clone();
    img.remove(&blob_path(&layer));
    refused(&img.tar(), &format!("referenced blob: sha256:{layer}"));
}

#[test]
fn a_descriptor_size_that_differs_from_its_blob_is_refused() {
    let img = Image::edited("web:1", "one", &[b"layer one"], &|m| {
        m["layers"][0]["size"] = serde_json::json!(4);
    });
    refused(&img.tar(), "descriptor size");
}

#[test]
fn an_entry_larger_than_the_signed_archive_is_refused() {
    let mut img = image();
    img.push(
        &blob_path(&"cd".repeat(32)),
        Kind::Lying {
            claimed: 1 << 40,
            bytes: b"short".to_vec(),
        },
    );
    refused(&img.tar(), "entry size");
}

#[test]
fn broken_layout_files_are_refused() {
    let mut img = image();
    img.remove("index.json");
    refused(&img.tar(), "index.json is missing");
    let mut img = image();
    img.replace(
        "oci-layout",
        Kind::File(br#"{"imageLayoutVersion":"2.0.0"}"#.to_vec()),
    );
    refused(&img.tar(), "imageLayoutVersion");
    let mut img = image();
    img.push("index.json", Kind::File(b"{}".to_vec()));
    refused(&img.tar(), "duplicate entry");
}

#[test]
fn garbage_and_truncated_archives_are_refused_without_a_panic() {
    refused(
        b"this is not a tar archive at all, just text",
        "OCI archive check failed",
    );
    let tar = image().tar();
    refused(&tar[..tar.len() / 2], "OCI archive check failed");
    refused(&[], "oci-layout is missing");
}

#[test]
fn unreferenced_blobs_and_docker_files_are_not_imported() {
    let rig = Rig::new();
    let mut img = image();
    let stray = oci::sha256_hex(b"stray");
    img.push(&blob_path(&stray), Kind::File(b"stray".to_vec()));
    img.push("manifest.json", Kind::File(b"[]".to_vec()));
    let staged = rig.stage_image("web.tar", &img);
    let job = rig.job(&staged);
    let mut installer = rig.installer();
    installer.prepare(&job).unwrap();
    let imported = installer.last_import().unwrap();
    assert_eq!((imported.stored, imported.reused), (4, 0));
    assert_eq!(rig.list("blobs/sha256"), img.blobs());
}
