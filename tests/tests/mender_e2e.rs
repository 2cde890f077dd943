//! Mender artifacts and Debian's unmodified Update Modules end to end (issue #21): a real
//! Director, Image repository, `ferry-primary` and a `ferry-secondary` (full verification)
//! whose `[modules] dir` is Debian's /usr/share/mender/modules/v3. Artifacts are made by the
//! real `mender-artifact write module-image` and published with `ferry repo add-target
//! --from-mender`, which takes the target's custom metadata from the artifact's headers.
//! - a `-T single-file` artifact installs through the `single-file` module, and a second one
//!   replaces it; the ECU reports the artifact's provides (Mender's own names), and the
//!   group of the first stays when the second has none, as on Mender 3.4;
//! - a `-T directory` artifact installs through the `directory` module; one whose update.tar
//!   is cut short fails in ArtifactInstall, the module's ArtifactRollback puts the old files
//!   back and the Director hears the rollback;
//! - a `rootfs-image` artifact (`mender-artifact write rootfs-image`) installs into the os
//!   domain's inactive slot, its provides reported;
//! - an artifact with `--depends rootfs-image.cuda.version:11.8` is refused before download,
//!   with Mender's words, `System not modified`.
//!
//! Skips, saying why, without Debian's mender-client and mender-artifact.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::*;
use std::path::Path;
use std::process::Command;

const MODULES: &str = "/usr/share/mender/modules/v3";

fn tools_present(test: &str) -> bool {
    let artifact = Command::new("mender-artifact").arg("--version").output();
    let modules = ["single-file", "directory"]
        .iter()
        .all(|m| Path::new(MODULES).join(m).is_file());
    let ok = artifact.is_ok_and(|o| o.status.success()) && modules;
    if !ok {
        eprintln!("SKIP {test}: needs Debian's mender-artifact and mender-client ({MODULES}/single-file, directory)");
    }
    ok
}

fn mender_artifact(dir: &Path, args: &[&str]) {
    let out = Command::new("mender-artifact")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mender-artifact {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A single-file artifact `name` installing `content` as `<dest>/app.conf`, with `extra`
/// arguments; returns its file name under `world.base`.
fn single_file(world: &World, name: &str, content: &str, dest: &Path, extra: &[&str]) -> String {
    let dir = world.base.join(format!("in-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.conf"), content).unwrap();
    std::fs::write(dir.join("dest_dir"), format!("{}\n", dest.display())).unwrap();
    std::fs::write(dir.join("filename"), "app.conf\n").unwrap();
    std::fs::write(dir.join("permissions"), "640\n").unwrap();
    let out = format!("../{name}.mender");
    let mut args = vec![
        "write",
        "module-image",
        "-T",
        "single-file",
        "-n",
        name,
        "-t",
        "tcu",
        "-o",
        &out,
        "-f",
        "app.conf",
        "-f",
        "dest_dir",
        "-f",
        "filename",
        "-f",
        "permissions",
    ];
    args.extend_from_slice(extra);
    mender_artifact(&dir, &args);
    format!("{name}.mender")
}

/// A directory artifact `name` unpacking `update_tar` into `dest`.
fn directory(world: &World, name: &str, update_tar: &[u8], dest: &Path) -> String {
    let dir = world.base.join(format!("in-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("update.tar"), update_tar).unwrap();
    std::fs::write(dir.join("dest_dir"), format!("{}\n", dest.display())).unwrap();
    let out = format!("../{name}.mender");
    mender_artifact(
        &dir,
        &[
            "write",
            "module-image",
            "-T",
            "directory",
            "-n",
            name,
            "-t",
            "tcu",
            "-o",
            &out,
            "-f",
            "update.tar",
            "-f",
            "dest_dir",
        ],
    );
    format!("{name}.mender")
}

fn tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    ferry_tests::parsers::tar_of(files)
}

/// Publish `file` as `apps/<file>` from its headers; returns the target name.
fn publish(world: &World, file: &str) -> String {
    let name = format!("apps/{file}");
    world.republish(file, &name, &["--from-mender"]);
    name
}

fn world() -> World {
    World::start(Options {
        full_extra_toml: Some("[modules]\ndir = \"/usr/share/mender/modules/v3\"\n"),
        ..Options::default()
    })
}

#[test]
fn mender_artifacts_install_and_roll_back_through_debians_modules() {
    if !tools_present("mender_artifacts_install_and_roll_back_through_debians_modules") {
        return;
    }
    let world = world();
    let dest = world.base.join("etc-app");

    // The target's custom metadata, as --from-mender took it from the headers.
    let v1 = single_file(&world, "app-1.0", "level = 1\n", &dest, &["-g", "fleet-a"]);
    let t1 = publish(&world, &v1);
    let listed = ferry_ok(&world.base, &["repo", "list", "img", "--json"]);
    let targets: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let custom = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == t1.as_str())
        .unwrap()["custom"]
        .clone();
    assert_eq!(
        custom["hardwareIds"],
        serde_json::json!(["tcu"]),
        "{custom}"
    );
    assert_eq!(custom["domain"], "single-file", "{custom}");
    assert_eq!(custom["provides"]["artifact_name"], "app-1.0", "{custom}");
    assert_eq!(custom["provides"]["artifact_group"], "fleet-a", "{custom}");
    assert_eq!(
        custom["provides"]["rootfs-image.single-file.version"], "app-1.0",
        "{custom}"
    );
    assert_eq!(
        custom["clearsProvides"],
        serde_json::json!(["rootfs-image.single-file.*"]),
        "{custom}"
    );
    assert_eq!(custom["mender"]["payloadType"], "single-file", "{custom}");

    world.assign(&[(FULL, &t1)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(dest.join("app.conf")).unwrap(),
        "level = 1\n"
    );
    let full = world.reported(FULL);
    assert_eq!(full["installed_image"]["filepath"], t1.as_str(), "{full}");
    assert_eq!(full["provides"]["artifact_name"], "app-1.0", "{full}");
    assert_eq!(full["provides"]["artifact_group"], "fleet-a", "{full}");
    assert_eq!(
        full["provides"]["rootfs-image.single-file.version"], "app-1.0",
        "{full}"
    );

    // A second artifact, without a group: it replaces the file; the group stays, as it
    // does on Mender 3.4.
    let v2 = single_file(&world, "app-2.0", "level = 2\n", &dest, &[]);
    let t2 = publish(&world, &v2);
    world.assign(&[(FULL, &t2)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(dest.join("app.conf")).unwrap(),
        "level = 2\n"
    );
    let full = world.reported(FULL);
    assert_eq!(full["provides"]["artifact_name"], "app-2.0", "{full}");
    assert_eq!(
        full["provides"]["rootfs-image.single-file.version"], "app-2.0",
        "{full}"
    );
    assert_eq!(full["provides"]["artifact_group"], "fleet-a", "{full}");

    // directory: v1 installs; v2's update.tar is cut inside its second file, so the module's
    // tar fails after it emptied the destination, and ArtifactRollback restores it.
    let conf = world.base.join("srv-conf");
    let good = tar(&[("a.conf", b"a = 1\n"), ("b.conf", b"b = 1\n")]);
    let d1 = publish(&world, &directory(&world, "conf-1", &good, &conf));
    world.assign(&[(FULL, &d1)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(conf.join("a.conf")).unwrap(),
        "a = 1\n"
    );
    let big = vec![b'x'; 8192];
    let mut cut = tar(&[("a.conf", b"a = 2\n"), ("b.conf", &big)]);
    cut.truncate(512 + 512 + 512 + 4096);
    let d2 = publish(&world, &directory(&world, "conf-2", &cut, &conf));
    world.assign(&[(FULL, &d2)]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(
        std::fs::read_to_string(conf.join("a.conf")).unwrap(),
        "a = 1\n"
    );
    assert_eq!(
        std::fs::read_to_string(conf.join("b.conf")).unwrap(),
        "b = 1\n"
    );
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], d2.as_str(), "{full}");
    assert_eq!(full["last_install"]["result"], "rolled-back", "{full}");
    let detail = full["last_install"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("update module directory in state ArtifactInstall failed"),
        "{full}"
    );
    assert_eq!(full["provides"]["artifact_name"], "conf-1", "{full}");
}

#[test]
fn an_artifact_whose_depends_are_unmet_is_refused_before_download() {
    if !tools_present("an_artifact_whose_depends_are_unmet_is_refused_before_download") {
        return;
    }
    let world = World::start(Options {
        full_extra_toml: Some("[modules]\ndir = \"/usr/share/mender/modules/v3\"\n"),
        log_requests: true,
        ..Options::default()
    });
    let dest = world.base.join("etc-app");
    let file = single_file(
        &world,
        "cuda-app-1",
        "gpu = yes\n",
        &dest,
        &["--depends", "rootfs-image.cuda.version:11.8"],
    );
    let target = publish(&world, &file);
    // The Director refuses the assignment (the ECU has reported no such provide).
    let out = world.admin(
        true,
        &["assign", VIN, "--target", &format!("{FULL}={target}")],
    );
    assert_ne!(out.code, 0, "{out}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains(
            "Missing 'rootfs-image.cuda.version' in provides, required by target depends"
        ),
        "{said}"
    );
    assert!(said.contains("System not modified"), "{said}");
    assert_eq!(world.repo_requests(&file), 0, "nothing was downloaded");
    assert!(!dest.exists());
}

#[test]
fn a_rootfs_image_artifact_installs_into_the_os_domains_inactive_slot() {
    if !tools_present("a_rootfs_image_artifact_installs_into_the_os_domains_inactive_slot") {
        return;
    }
    let world = World::start(Options {
        full_extra_toml: Some(
            "[os]\nslots = [\"full-slot-a.img\", \"full-slot-b.img\"]\nboot = \"file\"\nboot_env = \"full-bootenv\"\n",
        ),
        ..Options::default()
    });
    let b = &world.base;
    std::fs::write(b.join("full-slot-a.img"), b"factory image").unwrap();
    let dir = b.join("in-rootfs");
    std::fs::create_dir_all(&dir).unwrap();
    let image: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("rootfs.ext4"), &image).unwrap();
    mender_artifact(
        &dir,
        &[
            "write",
            "rootfs-image",
            "-f",
            "rootfs.ext4",
            "-n",
            "release-2",
            "-t",
            "tcu",
            "-o",
            "../release-2.mender",
        ],
    );
    let target = "os/release-2.mender";
    world.republish("release-2.mender", target, &["--from-mender"]);
    let listed = ferry_ok(b, &["repo", "list", "img", "--json"]);
    let targets: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let custom = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target)
        .unwrap()["custom"]
        .clone();
    assert_eq!(custom["domain"], "os", "{custom}");
    assert_eq!(
        custom["provides"]["rootfs-image.version"], "release-2",
        "{custom}"
    );
    assert_eq!(custom["mender"]["payloadType"], "rootfs-image", "{custom}");

    world.assign(&[(FULL, target)]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        std::fs::read(b.join("full-slot-b.img")).unwrap() == image,
        "slot b holds the artifact's image"
    );
    let env = std::fs::read_to_string(b.join("full-bootenv")).unwrap();
    assert!(env.contains("boot_slot=b"), "{env}");
    let full = world.reported(FULL);
    assert_eq!(full["installed_image"]["filepath"], target, "{full}");
    assert_eq!(
        full["provides"]["rootfs-image.version"], "release-2",
        "{full}"
    );
    assert_eq!(full["provides"]["artifact_name"], "release-2", "{full}");
}
