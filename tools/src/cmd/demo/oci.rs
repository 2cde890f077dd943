//! A small but real OCI image layout, built in code for the demo's container domain: an
//! uncompressed layer tar, an image config naming it, a manifest, `index.json` and
//! `oci-layout`, every blob under `blobs/sha256/<its digest>`, all in one tar archive.
//! The Secondary's container installer checks every digest and size, so this has to be a
//! layout a runtime would load, not filler bytes. Every header is fixed (mtime 0, uid 0,
//! fixed modes) and serde_json writes object keys sorted, so each run publishes the same
//! hashes.

use crate::error::{Error, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The archive and the id the Secondary's store files it under (sha256 of `index.json`).
#[derive(Debug, Clone)]
pub struct Layout {
    pub archive: Vec<u8>,
    pub id: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({
        "mediaType": media_type,
        "digest": format!("sha256:{}", sha256_hex(bytes)),
        "size": bytes.len(),
    })
}

fn tar_error(e: std::io::Error) -> Error {
    Error::Check(format!("building the demo's OCI archive: {e}"))
}

/// A tar of `entries` (path, bytes, mode), with directory entries for `dirs` first.
fn tar(dirs: &[&str], entries: &[(&str, &[u8], u32)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, size: usize, mode: u32| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for dir in dirs {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        builder
            .append_data(&mut h, dir, std::io::empty())
            .map_err(tar_error)?;
    }
    for (path, bytes, mode) in entries {
        let mut h = header(tar::EntryType::Regular, bytes.len(), *mode);
        builder
            .append_data(&mut h, path, *bytes)
            .map_err(tar_error)?;
    }
    builder.into_inner().map_err(tar_error)
}

/// An image `name:tag` whose one layer holds `files` (path below `/`, bytes, mode).
pub fn image(name: &str, tag: &str, files: &[(&str, &[u8], u32)]) -> Result<Layout> {
    // The layer is a plain filesystem tar; uncompressed, so its diff_id is its digest.
    let mut dirs: Vec<String> = Vec::new();
    for (path, _, _) in files {
        let mut parent = std::path::Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(format!("{}/", p.display()));
            parent = p.parent();
        }
    }
    dirs.sort();
    dirs.dedup();
    let dir_refs: Vec<&str> = dirs.iter().map(String::as_str).collect();
    let layer = tar(&dir_refs, files)?;
    let entrypoint = files.iter().find(|(_, _, mode)| mode & 0o111 != 0);
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": entrypoint.map(|(p, _, _)| vec![format!("/{p}")]),
            "Labels": { "org.opencontainers.image.version": tag },
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))] },
    })
    .to_string()
    .into_bytes();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": descriptor(CONFIG, &config),
        "layers": [descriptor(LAYER, &layer)],
    })
    .to_string()
    .into_bytes();
    let mut top = descriptor(MANIFEST, &manifest);
    top["annotations"] = json!({ "org.opencontainers.image.ref.name": format!("{name}:{tag}") });
    let index = json!({ "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [top] })
    .to_string()
    .into_bytes();
    let blobs: Vec<(String, &[u8])> = [&config, &layer, &manifest]
        .into_iter()
        .map(|b| (format!("blobs/sha256/{}", sha256_hex(b)), b.as_slice()))
        .collect();
    let mut entries: Vec<(&str, &[u8], u32)> = vec![
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#, 0o644),
        ("index.json", &index, 0o644),
    ];
    entries.extend(blobs.iter().map(|(p, b)| (p.as_str(), *b, 0o644)));
    Ok(Layout {
        archive: tar(&["blobs/", "blobs/sha256/"], &entries)?,
        id: sha256_hex(&index),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_deterministic_and_every_blob_is_named_by_its_digest() {
        let files: &[(&str, &[u8], u32)] = &[("usr/bin/run", b"#!/bin/sh\n", 0o755)];
        let a = image("svc", "1.0", files).unwrap();
        assert_eq!(a.archive, image("svc", "1.0", files).unwrap().archive);
        let mut archive = tar::Archive::new(a.archive.as_slice());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(hex, sha256_hex(&bytes), "{path}");
            }
            if path == "index.json" {
                assert_eq!(a.id, sha256_hex(&bytes));
            }
            names.push(path);
        }
        // oci-layout, index.json, two directories, config + layer + manifest.
        assert_eq!(names.len(), 7, "{names:?}");
    }
}
