//! Mender artifacts made by the real `mender-artifact` install through Debian's unmodified
//! `single-file` and `directory` Update Modules (/usr/share/mender/modules/v3) on an ECU: the
//! verified artifact is unpacked into the module's tree (payload files in `files/`, the
//! artifact's own headers in `header/`). A `directory` artifact whose update.tar is cut short
//! fails in ArtifactInstall after the module emptied the destination, and the module's
//! ArtifactRollback puts the old files back. A plain target marked as a tar of files
//! (`moduleFiles: "tar"`) installs through `single-file` too. Skips, saying why, without the
//! Debian packages.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/mender.rs"]
mod mender_fixture;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::{Ecu, VerificationMode};
use serde_json::{json, Value};
use std::path::Path;

fn vehicle(test: &str) -> Option<(Vehicle, std::path::PathBuf)> {
    let modules = mender_fixture::modules_dir(test)?;
    let tool = mender_fixture::tool(test)?;
    let mut v = Vehicle::new(VerificationMode::Full);
    v.config.modules.dir = Some(modules);
    Some((v, tool))
}

/// The custom metadata `ferry repo add-target --from-mender` gives an artifact (the mapping
/// itself is tested end to end in tests/tests/mender_e2e.rs).
fn custom(kind: &str, name: &str, counter: u64) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": kind, "name": name,
            "provides": { "artifact_name": name, format!("rootfs-image.{kind}.version"): name },
            "clearsProvides": [format!("rootfs-image.{kind}.*")],
            "mender": { "format": 3, "artifactName": name, "payloadType": kind } })
}

fn offer(v: &mut Vehicle, ecu: &mut Ecu, name: &str, content: &[u8], custom: Value) {
    v.offer(name, content, custom);
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    ecu.receive_image(&mut &content[..]).unwrap();
}

fn single_file(tool: &Path, dir: &Path, name: &str, content: &[u8], dest: &Path) -> Vec<u8> {
    let mut args: Vec<String> = [
        "write",
        "module-image",
        "-T",
        "single-file",
        "-n",
        name,
        "-t",
        HW,
        "-o",
        "out.mender",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(mender_fixture::single_file_inputs(
        dir, "app.conf", content, dest,
    ));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    mender_fixture::write(tool, dir, &refs);
    std::fs::read(dir.join("out.mender")).unwrap()
}

fn directory(tool: &Path, dir: &Path, name: &str, update_tar: &[u8], dest: &Path) -> Vec<u8> {
    std::fs::write(dir.join("update.tar"), update_tar).unwrap();
    std::fs::write(dir.join("dest_dir"), format!("{}\n", dest.display())).unwrap();
    mender_fixture::write(
        tool,
        dir,
        &[
            "write",
            "module-image",
            "-T",
            "directory",
            "-n",
            name,
            "-t",
            HW,
            "-o",
            "out.mender",
            "-f",
            "update.tar",
            "-f",
            "dest_dir",
        ],
    );
    std::fs::read(dir.join("out.mender")).unwrap()
}

#[test]
fn a_single_file_artifact_installs_through_debians_module() {
    let Some((mut v, tool)) = vehicle("a_single_file_artifact_installs_through_debians_module")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("etc-app");
    let mut ecu = v.ecu();
    let v1 = single_file(&tool, work.path(), "app-1", b"level = 1\n", &dest);
    offer(
        &mut v,
        &mut ecu,
        "apps/app-1.mender",
        &v1,
        custom("single-file", "app-1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read(dest.join("app.conf")).unwrap(),
        b"level = 1\n"
    );
    let provides = ecu.status().unwrap().provides;
    assert_eq!(provides["artifact_name"], "app-1");
    assert_eq!(provides["rootfs-image.single-file.version"], "app-1");

    let v2 = single_file(&tool, work.path(), "app-2", b"level = 2\n", &dest);
    offer(
        &mut v,
        &mut ecu,
        "apps/app-2.mender",
        &v2,
        custom("single-file", "app-2", 2),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read(dest.join("app.conf")).unwrap(),
        b"level = 2\n"
    );
    // The module keeps the artifact name Mender would: the artifact's, not the target's.
    let current = v
        .config
        .data_dir
        .join("modules/single-file/current_artifact_name");
    assert_eq!(std::fs::read_to_string(current).unwrap(), "app-2\n");
}

#[test]
fn a_directory_artifact_that_fails_rolls_back_through_debians_module() {
    let Some((mut v, tool)) =
        vehicle("a_directory_artifact_that_fails_rolls_back_through_debians_module")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("srv-conf");
    let mut ecu = v.ecu();
    let good = mender_fixture::tar(&[("a.conf", b"a = 1\n"), ("b.conf", b"b = 1\n")]);
    let v1 = directory(&tool, work.path(), "conf-1", &good, &dest);
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-1.mender",
        &v1,
        custom("directory", "conf-1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(std::fs::read(dest.join("a.conf")).unwrap(), b"a = 1\n");
    assert_eq!(std::fs::read(dest.join("b.conf")).unwrap(), b"b = 1\n");

    // update.tar cut in the middle of its second file: the module has already replaced the
    // directory when tar fails.
    let big = vec![b'x'; 8192];
    let mut cut = mender_fixture::tar(&[("a.conf", b"a = 2\n"), ("b.conf", &big)]);
    cut.truncate(512 + 512 + 512 + 4096);
    let v2 = directory(&tool, work.path(), "conf-2", &cut, &dest);
    offer(
        &mut v,
        &mut ecu,
        "conf/conf-2.mender",
        &v2,
        custom("directory", "conf-2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains("update module directory in state ArtifactInstall failed"),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(std::fs::read(dest.join("a.conf")).unwrap(), b"a = 1\n");
    assert_eq!(std::fs::read(dest.join("b.conf")).unwrap(), b"b = 1\n");
    let status = ecu.status().unwrap();
    assert_eq!(
        status.last_install.unwrap().result,
        InstallResult::RolledBack
    );
    assert_eq!(status.provides["artifact_name"], "conf-1");
}

#[test]
fn a_plain_tar_target_gives_a_module_several_files() {
    let Some((mut v, _tool)) = vehicle("a_plain_tar_target_gives_a_module_several_files") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("etc-app");
    let dest_dir = format!("{}\n", dest.display());
    let files = mender_fixture::tar(&[
        ("./app.conf", b"level = 7\n"),
        ("./dest_dir", dest_dir.as_bytes()),
        ("./filename", b"app.conf\n"),
    ]);
    let mut ecu = v.ecu();
    let custom = json!({ "hardwareIds": [HW], "releaseCounter": 1, "domain": "single-file",
                         "name": "app", "version": "7", "moduleFiles": "tar",
                         "metaData": {"note": "several files"} });
    offer(&mut v, &mut ecu, "apps/app-7.tar", &files, custom);
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read(dest.join("app.conf")).unwrap(),
        b"level = 7\n"
    );
}

#[test]
fn a_mender_artifact_for_a_built_in_domain_is_refused_before_download() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let mut ecu = v.ecu();
    let mut custom = custom("single-file", "app-1", 1);
    custom["domain"] = json!("app");
    v.offer("apps/app-1.mender", b"not read", custom);
    let err = ecu
        .receive_metadata(&v.bundle(), now())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target kind check failed: target apps/app-1.mender: it is a Mender artifact, and this ECU's app installer does not unpack Mender artifacts"),
        "{err}"
    );
}

/// A module that reads its payload through `stream-next` in Download (as Mender's streaming
/// modules do) and installs what it read; with `quit_early` it reads the first line of
/// stream-next and leaves without reading the stream.
fn streaming_module(root: &Path, quit_early: bool) -> std::path::PathBuf {
    let dir = root.join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    let download = if quit_early {
        "cat stream-next >/dev/null".to_owned()
    } else {
        format!(
            "while :; do s=$(cat stream-next); [ -z \"$s\" ] && break; \
             echo \"$s\" >> '{log}'; cat \"$s\" > \"tmp/$(basename \"$s\")\"; done",
            log = root.join("streams.log").display()
        )
    };
    let script = format!(
        "#!/bin/sh\nset -eu\ncase \"$1\" in\n\
         Download) {download} ;;\n\
         ArtifactInstall) test ! -e files || test -z \"$(ls files)\"; mkdir -p '{dest}'; cp tmp/* '{dest}/' ;;\n\
         SupportsRollback) echo No ;;\n\
         esac\n",
        dest = root.join("streamed").display()
    );
    let path = dir.join("stream-reader");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_module_reading_stream_next_gets_each_payload_file_as_a_stream() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let root = v.dir.path().to_owned();
    v.config.modules.dir = Some(streaming_module(&root, false));
    let mut ecu = v.ecu();
    let artifact = mender_fixture::Parts::module(
        "stream-reader",
        "s-1",
        &[("a.bin", b"first stream"), ("b.bin", &[7u8; 100_000])],
    )
    .build();
    offer(
        &mut v,
        &mut ecu,
        "apps/s-1.mender",
        &artifact,
        custom("stream-reader", "s-1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read_to_string(root.join("streams.log")).unwrap(),
        "streams/a.bin\nstreams/b.bin\n"
    );
    assert_eq!(
        std::fs::read(root.join("streamed/a.bin")).unwrap(),
        b"first stream"
    );
    assert_eq!(
        std::fs::read(root.join("streamed/b.bin")).unwrap(),
        [7u8; 100_000]
    );
}

#[test]
fn a_module_that_leaves_a_stream_unread_fails_its_download() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let root = v.dir.path().to_owned();
    v.config.modules.dir = Some(streaming_module(&root, true));
    let mut ecu = v.ecu();
    let artifact =
        mender_fixture::Parts::module("stream-reader", "s-1", &[("a.bin", b"unread")]).build();
    offer(
        &mut v,
        &mut ecu,
        "apps/s-1.mender",
        &artifact,
        custom("stream-reader", "s-1", 1),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains("the module finished Download without reading streams/a.bin"),
        "{err}"
    );
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!root.join("streamed").exists());
}

#[test]
fn artifact_state_scripts_run_around_the_module_states() {
    let Some((mut v, tool)) = vehicle("artifact_state_scripts_run_around_the_module_states") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let dest = d.join("etc-app");
    let log = d.join("scripts.log");
    let mut ecu = v.ecu();
    let make = |name: &str, content: &[u8], scripts: Vec<String>| {
        let mut args: Vec<String> = [
            "write",
            "module-image",
            "-T",
            "single-file",
            "-n",
            name,
            "-t",
            HW,
            "-o",
            "out.mender",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(mender_fixture::single_file_inputs(
            d, "app.conf", content, &dest,
        ));
        args.extend(scripts);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        mender_fixture::write(&tool, d, &refs);
        std::fs::read(d.join("out.mender")).unwrap()
    };
    let all = [
        "ArtifactInstall_Enter_00",
        "ArtifactInstall_Enter_01_second",
        "ArtifactInstall_Leave_00",
        "ArtifactInstall_Error_00",
        "ArtifactCommit_Enter_00",
        "ArtifactCommit_Leave_00",
        "ArtifactRollback_Enter_00",
        "ArtifactRollback_Leave_00",
        "ArtifactFailure_Enter_00",
        "ArtifactFailure_Leave_00",
    ];
    let v1 = make(
        "app-1",
        b"level = 1\n",
        mender_fixture::state_scripts(&d.join("scripts-1"), &all, &[], &log),
    );
    offer(
        &mut v,
        &mut ecu,
        "apps/app-1.mender",
        &v1,
        custom("single-file", "app-1", 1),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactInstall_Enter_00\nArtifactInstall_Enter_01_second\nArtifactInstall_Leave_00\n\
         ArtifactCommit_Enter_00\nArtifactCommit_Leave_00\n"
    );
    std::fs::remove_file(&log).unwrap();

    // The second Enter script fails: the install fails before the module's ArtifactInstall,
    // the Error script runs, then the rollback's and the failure's scripts.
    let v2 = make(
        "app-2",
        b"level = 2\n",
        mender_fixture::state_scripts(
            &d.join("scripts-2"),
            &all,
            &["ArtifactInstall_Enter_01_second"],
            &log,
        ),
    );
    offer(
        &mut v,
        &mut ecu,
        "apps/app-2.mender",
        &v2,
        custom("single-file", "app-2", 2),
    );
    let err = ecu.install(now()).unwrap_err().to_string();
    assert!(
        err.contains("artifact state script ArtifactInstall_Enter_01_second failed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ArtifactInstall_Enter_00\nArtifactInstall_Enter_01_second\nArtifactInstall_Error_00\n\
         ArtifactRollback_Enter_00\nArtifactRollback_Leave_00\n\
         ArtifactFailure_Enter_00\nArtifactFailure_Leave_00\n"
    );
    assert_eq!(
        std::fs::read(dest.join("app.conf")).unwrap(),
        b"level = 1\n"
    );
    assert!(!v
        .config
        .data_dir
        .join("modules/single-file/scripts")
        .exists());
}

/// A module for `protocol = "mender-4"`: logs each call to `calls.log`; answers
/// ProvidePayloadFileSizes with Yes unless `root/no-sizes` exists; in either download
/// state logs each stream-next line to `streams.log` and fails if a stream's length differs
/// from the size its line gives.
fn sized_module(root: &Path) -> std::path::PathBuf {
    let dir = root.join("modules");
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!(
        "#!/bin/sh\nset -eu\necho \"$1\" >> '{root}/calls.log'\ncase \"$1\" in\n\
         ProvidePayloadFileSizes) if [ -e '{root}/no-sizes' ]; then echo No; else echo Yes; fi ;;\n\
         Download|DownloadWithFileSizes) while :; do l=$(cat stream-next); [ -z \"$l\" ] && break; \
           echo \"$l\" >> '{root}/streams.log'; set -- $l; n=$(cat \"$1\" | wc -c); \
           if [ $# -eq 2 ] && [ \"$n\" -ne \"$2\" ]; then echo \"size $2, read $n\" >&2; exit 1; fi; done ;;\n\
         SupportsRollback) echo Yes ;;\n\
         esac\n",
        root = root.display()
    );
    let path = dir.join("sized-reader");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn with_the_mender_4_protocol_a_module_is_asked_for_file_sizes_and_gets_them() {
    let mut v = Vehicle::new(VerificationMode::Full);
    let root = v.dir.path().to_owned();
    v.config.modules.dir = Some(sized_module(&root));
    v.config.modules.protocol = ferry_secondary::install::module::Protocol::Mender4;
    let mut ecu = v.ecu();
    let take = |file: &str| {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        let _ = std::fs::remove_file(root.join(file));
        text
    };
    let files: [(&str, &[u8]); 2] = [("a.bin", b"first stream"), ("b.bin", &[7u8; 100_000])];
    let artifact = mender_fixture::Parts::module("sized-reader", "z-1", &files).build();
    offer(
        &mut v,
        &mut ecu,
        "apps/z-1.mender",
        &artifact,
        custom("sized-reader", "z-1", 1),
    );
    ecu.install(now()).unwrap();
    // Mender 4's order: sizes asked first, SupportsRollback after NeedsArtifactReboot.
    assert_eq!(
        take("calls.log"),
        "ProvidePayloadFileSizes\nDownloadWithFileSizes\nArtifactInstall\nNeedsArtifactReboot\nSupportsRollback\nArtifactCommit\nCleanup\n"
    );
    assert_eq!(
        take("streams.log"),
        "streams/a.bin 12\nstreams/b.bin 100000\n"
    );

    // A module answering No gets plain Download and lines without sizes.
    std::fs::write(root.join("no-sizes"), b"").unwrap();
    let artifact = mender_fixture::Parts::module("sized-reader", "z-2", &files).build();
    offer(
        &mut v,
        &mut ecu,
        "apps/z-2.mender",
        &artifact,
        custom("sized-reader", "z-2", 2),
    );
    ecu.install(now()).unwrap();
    assert_eq!(
        take("calls.log"),
        "ProvidePayloadFileSizes\nDownload\nArtifactInstall\nNeedsArtifactReboot\nSupportsRollback\nArtifactCommit\nCleanup\n"
    );
    assert_eq!(take("streams.log"), "streams/a.bin\nstreams/b.bin\n");
}
