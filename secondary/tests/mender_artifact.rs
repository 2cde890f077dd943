//! The Mender artifact reader (`ferry_secondary::mender`): artifacts written by the real
//! `mender-artifact` in each compression it offers (none, gzip, xz) read back with their
//! headers and payload files; zstd ones (which Debian's mender-artifact cannot write) are
//! built here. Each way an artifact can be wrong or beyond what Ferry honours is refused,
//! naming the check: a payload or header that fails the manifest, a part the manifest does
//! not list or lists but the artifact lacks, another format version, two payloads, augmented
//! headers, a state script for a state artifacts cannot have, a payload file name that is not
//! one plain name.
#![allow(clippy::unwrap_used)]

#[path = "fixtures/mender.rs"]
mod mender_fixture;

use ferry_secondary::mender::{self, DiscardPayload, Limits, PayloadSink};
use mender_fixture::{Parts, Zip};
use std::io::Read;

#[derive(Default)]
struct Collect(Vec<(String, Vec<u8>)>);

impl PayloadSink for Collect {
    fn file(
        &mut self,
        name: &str,
        _size: u64,
        content: &mut dyn Read,
    ) -> ferry_secondary::Result<()> {
        let mut bytes = Vec::new();
        content.read_to_end(&mut bytes).unwrap();
        self.0.push((name.to_owned(), bytes));
        Ok(())
    }
}

fn refused(bytes: &[u8]) -> String {
    mender::read(bytes, &Limits::default(), &mut DiscardPayload)
        .unwrap_err()
        .to_string()
}

#[test]
fn artifacts_written_by_mender_artifact_read_back_in_each_compression() {
    let Some(tool) = mender_fixture::tool("artifacts_written_by_mender_artifact_read_back") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args: Vec<String> =
        mender_fixture::single_file_inputs(d, "app.conf", b"level = 3\n", &d.join("dest"));
    std::fs::write(
        d.join("meta.json"),
        r#"{"service": "app", "restart": true}"#,
    )
    .unwrap();
    for compression in ["none", "gzip", "lzma"] {
        let out = format!("app-{compression}.mender");
        let mut all: Vec<String> = [
            "--compression",
            compression,
            "write",
            "module-image",
            "-T",
            "single-file",
            "-n",
            "app-1.0",
            "-t",
            "ecu-a",
            "-t",
            "ecu-b",
            "-o",
            &out,
            "-g",
            "fleet-1",
            "--depends-groups",
            "fleet-0",
            "--provides",
            "data-partition.app.version:1.0",
            "--depends",
            "rootfs-image.cuda.version:11.8",
            "-m",
            "meta.json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.append(&mut args.clone());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        mender_fixture::write(&tool, d, &refs);
        let bytes = std::fs::read(d.join(&out)).unwrap();
        let mut sink = Collect::default();
        let a = mender::read(bytes.as_slice(), &Limits::default(), &mut sink).unwrap();
        assert_eq!(a.name, "app-1.0", "{compression}");
        assert_eq!(a.group.as_deref(), Some("fleet-1"));
        assert_eq!(a.device_types, ["ecu-a", "ecu-b"]);
        assert_eq!(a.depends_groups, Some(vec!["fleet-0".to_owned()]));
        assert_eq!(a.payload_type, "single-file");
        assert_eq!(a.provides["data-partition.app.version"], "1.0");
        assert_eq!(a.provides["rootfs-image.single-file.version"], "app-1.0");
        assert_eq!(
            serde_json::to_value(&a.depends).unwrap(),
            serde_json::json!({"rootfs-image.cuda.version": "11.8"})
        );
        assert_eq!(
            a.clears,
            Some(vec!["rootfs-image.single-file.*".to_owned()])
        );
        assert_eq!(a.meta_data.as_ref().unwrap()["restart"], true);
        let names: Vec<&str> = a.files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["app.conf", "dest_dir", "filename", "permissions"]);
        assert_eq!(sink.0[0], ("app.conf".to_owned(), b"level = 3\n".to_vec()));
        // The headers alone, without the payload.
        let h = mender::read_headers(bytes.as_slice(), &Limits::default()).unwrap();
        assert_eq!(h.name, "app-1.0");
        assert!(h.files.is_empty());
        // One payload byte changed: the manifest check names the file.
        let mut tampered = bytes.clone();
        if compression == "none" {
            let at = tampered
                .windows(10)
                .position(|w| w == b"level = 3\n")
                .unwrap();
            tampered[at] = b'L';
            let err = refused(&tampered);
            assert!(
                err.contains("manifest checksum: data/0000/app.conf has sha256"),
                "{err}"
            );
        }
    }
}

#[test]
fn every_compression_reads_when_built_part_by_part() {
    for zip in [Zip::None, Zip::Gzip, Zip::Xz, Zip::Zstd] {
        let mut parts = Parts::module(
            "directory",
            "conf-2",
            &[("update.tar", b"tar bytes"), ("dest_dir", b"/srv/conf\n")],
        );
        parts.zip = zip;
        parts.meta_data = Some(r#"{"k": [1, 2]}"#.into());
        let mut sink = Collect::default();
        let a = mender::read(parts.build().as_slice(), &Limits::default(), &mut sink).unwrap();
        assert_eq!(a.payload_type, "directory", "{zip:?}");
        assert_eq!(
            a.files,
            [("update.tar".to_owned(), 9), ("dest_dir".to_owned(), 10)]
        );
        assert_eq!(sink.0[1].1, b"/srv/conf\n");
        assert_eq!(a.meta_data_raw.as_deref(), Some(&br#"{"k": [1, 2]}"#[..]));
    }
}

fn base() -> Parts {
    Parts::module("single-file", "app-1", &[("app.conf", b"x = 1\n")])
}

#[test]
fn a_part_that_fails_the_manifest_is_refused_by_name() {
    let mut p = base();
    p.wrong_hash = vec!["data/0000/app.conf".into()];
    assert!(refused(&p.build()).contains("manifest checksum: data/0000/app.conf"));
    let mut p = base();
    p.wrong_hash = vec!["header.tar.gz".into()];
    assert!(refused(&p.build()).contains("manifest checksum: header.tar.gz"));
    let mut p = base();
    p.wrong_hash = vec!["version".into()];
    assert!(refused(&p.build()).contains("manifest checksum: version"));
    let mut p = base();
    p.unlisted = vec!["data/0000/app.conf".into()];
    let err = refused(&p.build());
    assert!(
        err.contains("carries data/0000/app.conf, which its manifest does not list"),
        "{err}"
    );
    // Listed, but not carried: the manifest gains a line for a file the payload lacks.
    let manifest_line = format!("{}  data/0000/gone\n", "00".repeat(32));
    let with_extra = {
        let bytes = base().build();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                (name, b)
            })
            .collect();
        entries[1].1.extend_from_slice(manifest_line.as_bytes());
        let refs: Vec<(&str, &[u8])> = entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        mender_fixture::tar(&refs)
    };
    let err = refused(&with_extra);
    assert!(
        err.contains("the manifest lists data/0000/gone, which the artifact does not carry"),
        "{err}"
    );
}

#[test]
fn what_ferry_cannot_honour_is_refused_by_name() {
    let mut p = base();
    p.version = r#"{"format":"mender","version":2}"#.into();
    assert!(refused(&p.build()).contains(
        "artifact version: format \"mender\" version 2; expected format \"mender\" version 3"
    ));

    let mut p = base();
    p.outer_extra = vec![("data/0001.tar.gz".into(), Vec::new())];
    let err = refused(&p.build());
    assert!(
        err.contains("payload count: the artifact carries data/0001.tar.gz"),
        "{err}"
    );

    let mut p = base();
    p.header_info = p.header_info.replace(
        r#"[{"type":"single-file"}]"#,
        r#"[{"type":"single-file"},{"type":"single-file"}]"#,
    );
    assert!(refused(&p.build()).contains("header-info lists 2 payloads"));

    let mut p = base();
    p.outer_extra = vec![("header-augment.tar.gz".into(), Vec::new())];
    assert!(refused(&p.build())
        .contains("augmented header: the artifact carries header-augment.tar.gz"));

    let mut p = base();
    p.header_extra = vec![("scripts/Download_Enter_00".into(), b"#!/bin/sh\n".to_vec())];
    let err = refused(&p.build());
    assert!(
        err.contains("artifact state scripts: \"Download_Enter_00\"; expected <State>_<Enter|Leave|Error>_<NN>"),
        "{err}"
    );
    let mut p = base();
    p.header_extra = vec![(
        "scripts/ArtifactInstall_Enter_00".into(),
        b"#!/bin/sh\n".to_vec(),
    )];
    let a = mender::read(
        p.build().as_slice(),
        &Limits::default(),
        &mut DiscardPayload,
    )
    .unwrap();
    assert_eq!(a.scripts[0].0, "ArtifactInstall_Enter_00");

    let mut p = base();
    p.files = vec![("../escape".into(), b"x".to_vec())];
    assert!(refused(&p.build())
        .contains("payload file name: \"../escape\"; expected one plain file name"));

    let mut p = base();
    p.type_info = p.type_info.replace("single-file", "directory");
    assert!(refused(&p.build())
        .contains("header-info names payload type \"single-file\", type-info \"directory\""));
}

#[test]
fn sizes_are_bounded() {
    let p = Parts::module("single-file", "big", &[("a", &[7u8; 4096]), ("b", b"1")]);
    let limits = Limits {
        max_payload_bytes: 4096,
        ..Limits::default()
    };
    let err = mender::read(p.build().as_slice(), &limits, &mut DiscardPayload)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("payload size: the payload files add up to more than 4096 bytes"),
        "{err}"
    );
    let limits = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let err = mender::read(p.build().as_slice(), &limits, &mut DiscardPayload)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 1 payload files"), "{err}");
    let limits = Limits {
        max_header_bytes: 100,
        ..Limits::default()
    };
    let err = mender::read(p.build().as_slice(), &limits, &mut DiscardPayload)
        .unwrap_err()
        .to_string();
    assert!(err.contains("artifact header"), "{err}");
}
