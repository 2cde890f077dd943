//! Ferry against the real Mender client (Debian's `mender` 3.4, standalone `mender install` /
//! `mender commit`) on the same artifacts, made by the real `mender-artifact`, through the
//! same Update Module (issue #21):
//! - the sequence of module calls, recorded by the module itself, is the same for an
//!   artifact that installs and for one whose ArtifactInstall fails and is rolled back;
//! - so is each call's environment (what the client added to or changed in the environment
//!   it was started with, and the working directory) and that of an artifact state script;
//! - four artifacts (installable with a group and an extra provide, installable without a
//!   group, depends unmet, another group required) get the same verdicts, and the provides afterwards are the
//!   same as `mender show-provides` reports.
//!
//! Ferry runs as deployed: a real Director, Image repository, `ferry-primary` and a
//! `ferry-secondary` whose `[modules] dir` is Debian's module directory, targets published
//! with `ferry repo add-target --from-mender`. Mender 3.4 only loads modules from
//! /usr/share/mender/modules/v3 and needs /etc/mender/artifact_info, so the test puts its
//! recording module there (removed afterwards) and creates artifact_info if it is missing.
//! Skips, saying why, without the Debian packages or write access to those directories.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MODULES: &str = "/usr/share/mender/modules/v3";
const ARTIFACT_INFO: &str = "/etc/mender/artifact_info";

/// The recording module in Mender's module directory, and artifact_info if this test made
/// it; both removed on drop.
struct Installed {
    module: PathBuf,
    artifact_info: Option<PathBuf>,
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.module);
        if let Some(p) = &self.artifact_info {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A module that appends each call's state to `log` and its environment to [`env_log`]
/// (the file tree written `TREE`), answers the queries as a module that supports rollback
/// and needs no reboot, and fails ArtifactInstall when its payload holds `fail-install`.
fn install_module(name: &str, log: &Path) -> std::io::Result<Installed> {
    let module = Path::new(MODULES).join(name);
    std::fs::write(
        &module,
        format!(
            "#!/bin/sh\necho \"$1\" >> '{log}'\n\
             {{ echo \"== $1\"; echo \"CWD=$(pwd -P)\"; tr '\\0' '\\n' < /proc/$$/environ; }} | sed \"s|$2|TREE|g\" >> '{env}'\n\
             case \"$1\" in\n\
             SupportsRollback) echo Yes;;\nNeedsArtifactReboot) echo No;;\n\
             ArtifactInstall) [ -f \"$2/files/fail-install\" ] && exit 1;;\nesac\nexit 0\n",
            log = log.display(),
            env = env_log(log).display(),
        ),
    )?;
    std::fs::set_permissions(&module, std::fs::Permissions::from_mode(0o755))?;
    let mut installed = Installed {
        module,
        artifact_info: None,
    };
    if !Path::new(ARTIFACT_INFO).exists() {
        std::fs::create_dir_all("/etc/mender")?;
        std::fs::write(ARTIFACT_INFO, "artifact_name=factory\n")?;
        installed.artifact_info = Some(ARTIFACT_INFO.into());
    }
    Ok(installed)
}

/// Where the module and the state script write the environment of each call: as it was
/// exec'd (`/proc/$$/environ`), before the shell adjusts PWD to its working directory.
fn env_log(log: &Path) -> PathBuf {
    log.with_extension("env")
}

/// An artifact state script (ArtifactInstall_Enter_00) that records its environment.
fn env_script(dir: &Path, log: &Path) -> PathBuf {
    let script = dir.join("ArtifactInstall_Enter_00");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ echo \"== script ArtifactInstall_Enter_00 $#\"; echo \"CWD=$(pwd -P)\"; tr '\\0' '\\n' < /proc/$$/environ; }} >> '{}'\n",
            env_log(log).display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Each call's environment as recorded since the last take (emptied): what the client set
/// that differs from the test's own environment (which both clients inherit; RUST_LOG is
/// the one variable the test gives ferry-secondary alone), and the working directory.
fn take_envs(log: &Path) -> Vec<(String, BTreeMap<String, String>)> {
    let path = env_log(log);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let ours: BTreeMap<String, String> = std::env::vars().collect();
    let mut calls: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for line in text.lines() {
        if let Some(call) = line.strip_prefix("== ") {
            calls.push((call.to_owned(), BTreeMap::new()));
        } else if let (Some((key, value)), Some((_, env))) =
            (line.split_once('='), calls.last_mut())
        {
            if key != "RUST_LOG" && ours.get(key).map(String::as_str) != Some(value) {
                env.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    calls
}

fn tools_present(test: &str) -> bool {
    let ok = ["mender", "mender-artifact"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        eprintln!("SKIP {test}: needs Debian's mender-client and mender-artifact");
    }
    ok
}

/// The real Mender client, standalone, with its own data directory.
struct Mender {
    dir: PathBuf,
}

impl Mender {
    fn new(dir: PathBuf) -> Mender {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("data/device_type"), "device_type=tcu\n").unwrap();
        std::fs::write(
            dir.join("mender.conf"),
            format!(
                "{{\"DeviceTypeFile\": \"{}\"}}\n",
                dir.join("data/device_type").display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("fallback.conf"), "{}\n").unwrap();
        Mender { dir }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("mender")
            .arg("--config")
            .arg(self.dir.join("mender.conf"))
            .arg("--fallback-config")
            .arg(self.dir.join("fallback.conf"))
            .arg("--data")
            .arg(self.dir.join("data"))
            .arg("--no-syslog")
            .args(args)
            .output()
            .unwrap()
    }

    /// `mender install` then, if it succeeded, `mender commit`; whether both succeeded.
    fn install(&self, artifact: &Path) -> bool {
        let out = self.run(&["install", artifact.to_str().unwrap()]);
        if !out.status.success() {
            return false;
        }
        self.run(&["commit"]).status.success()
    }

    fn provides(&self) -> BTreeMap<String, String> {
        let out = self.run(&["show-provides"]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// `mender-artifact write module-image -T kind -n name -t tcu` with a payload file named
/// `payload` and `extra` arguments, written as `out`.
fn artifact(dir: &Path, kind: &str, name: &str, payload: &str, extra: &[&str]) -> PathBuf {
    let work = dir.join(format!("in-{name}"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join(payload), b"payload\n").unwrap();
    let out = dir.join(format!("{name}.mender"));
    let mut args = vec![
        "write",
        "module-image",
        "-T",
        kind,
        "-n",
        name,
        "-t",
        "tcu",
        "-o",
        out.to_str().unwrap(),
        "-f",
        payload,
    ];
    args.extend_from_slice(extra);
    let done = Command::new("mender-artifact")
        .current_dir(&work)
        .args(&args)
        .output()
        .unwrap();
    assert!(done.status.success(), "mender-artifact {args:?}: {done:?}");
    out
}

/// The calls `log` recorded since the last take, emptied.
fn take_calls(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    text.lines().map(str::to_owned).collect()
}

/// Ferry's verdict: published with --from-mender, assigned, one cycle; whether it installed.
fn ferry_install(world: &World, file: &Path) -> bool {
    let name = file.file_name().unwrap().to_str().unwrap();
    std::fs::copy(file, world.base.join(name)).unwrap();
    let target = format!("apps/{name}");
    world.republish(name, &target, &["--from-mender"]);
    let assigned = world.admin(
        true,
        &["assign", VIN, "--target", &format!("{FULL}={target}")],
    );
    if assigned.code != 0 {
        return false;
    }
    let out = world.check();
    let full = world.reported(FULL);
    out.code == 0 && full["last_install"]["result"] == "success"
}

/// The provides that Mender's artifacts of `kind` govern, as the ECU reports them.
fn ferry_provides(world: &World, kind: &str) -> BTreeMap<String, String> {
    let full = world.reported(FULL);
    full["provides"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| {
            *k == "artifact_name"
                || *k == "artifact_group"
                || *k == "other.key"
                || k.starts_with(&format!("rootfs-image.{kind}."))
        })
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn ferry_and_the_real_mender_client_call_the_module_alike_and_agree_on_verdicts_and_provides() {
    let test =
        "ferry_and_the_real_mender_client_call_the_module_alike_and_agree_on_verdicts_and_provides";
    if !tools_present(test) {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let log = scratch.path().join("calls.log");
    let kind = format!("ferry-parity-{}", std::process::id());
    let _module = match install_module(&kind, &log) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIP {test}: cannot put a module into {MODULES} or write {ARTIFACT_INFO} ({e}); Mender 3.4 reads modules from nowhere else");
            return;
        }
    };
    let world = World::start(Options {
        full_extra_toml: Some(
            "[modules]\ndir = \"/usr/share/mender/modules/v3\"\n[initial_provides]\nartifact_name = \"factory\"\n",
        ),
        ..Options::default()
    });
    let mender = Mender::new(scratch.path().join("mender"));
    let d = scratch.path();

    // The module's calls and their environments, for an install (with a state script) and
    // for a failed install rolled back.
    let script = env_script(d, &log);
    let with_script = ["-s", script.to_str().unwrap()];
    for (name, payload, installs) in [("p-1", "app.conf", true), ("p-2", "fail-install", false)] {
        let extra: &[&str] = if installs { &with_script } else { &[] };
        let file = artifact(d, &kind, name, payload, extra);
        take_calls(&log);
        take_envs(&log);
        assert_eq!(mender.install(&file), installs, "mender on {name}");
        let (by_mender, envs_by_mender) = (take_calls(&log), take_envs(&log));
        assert_eq!(ferry_install(&world, &file), installs, "ferry on {name}");
        let (by_ferry, envs_by_ferry) = (take_calls(&log), take_envs(&log));
        eprintln!("{name}: mender {by_mender:?}, ferry {by_ferry:?}");
        assert!(!by_mender.is_empty(), "the module recorded Mender's calls");
        assert_eq!(by_ferry, by_mender, "module calls for {name}");
        eprintln!("{name} environments: mender {envs_by_mender:?}, ferry {envs_by_ferry:?}");
        // What the check is made of: Mender runs the module in its tree with PWD set.
        let download = &envs_by_mender[0];
        assert_eq!(download.1.get("CWD").map(String::as_str), Some("TREE"));
        assert_eq!(download.1.get("PWD").map(String::as_str), Some("TREE"));
        if installs {
            assert!(
                envs_by_mender
                    .iter()
                    .any(|(call, _)| call.starts_with("script ")),
                "the state script ran under Mender"
            );
        }
        assert_eq!(envs_by_ferry, envs_by_mender, "environments for {name}");
    }

    // Four artifacts: same verdicts, same provides after each.
    let cases: [(&str, Vec<&str>, bool); 4] = [
        (
            "g-1",
            vec!["-g", "fleet-a", "--provides", "other.key:1"],
            true,
        ),
        ("g-2", vec![], true),
        (
            "g-3",
            vec!["--depends", "rootfs-image.cuda.version:11.8"],
            false,
        ),
        ("g-4", vec!["--depends-groups", "fleet-b"], false),
    ];
    for (name, extra, installs) in cases {
        let file = artifact(d, &kind, name, "app.conf", &extra);
        assert_eq!(mender.install(&file), installs, "mender on {name}");
        assert_eq!(ferry_install(&world, &file), installs, "ferry on {name}");
        take_calls(&log);
        let by_mender = mender.provides();
        eprintln!("after {name}: mender {by_mender:?}");
        assert_eq!(
            ferry_provides(&world, &kind),
            by_mender,
            "provides after {name}"
        );
    }
    let last = mender.provides();
    assert_eq!(last["artifact_name"], "g-2", "{last:?}");
    assert_eq!(last["artifact_group"], "fleet-a", "{last:?}");
    assert_eq!(last["other.key"], "1", "{last:?}");
}
