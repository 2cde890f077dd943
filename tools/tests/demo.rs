//! `ferry demo` (issue #7): the real binary end to end. It must exit 0 with a summary that
//! shows what each ECU installed and the cuda-dependent target refused in Mender's words,
//! and no process it started may outlive it: not after a normal run, not after Ctrl-C, not
//! after a SIGKILL of the demo itself. Never a timed assertion: waits are bounded only so
//! a broken build fails instead of hanging.
#![allow(clippy::unwrap_used)]

use ferry_tests::process::run_bounded;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on one demo run (debug build; it takes seconds).
const TIMEOUT: Duration = Duration::from_secs(300);
const MISSING: &str = "Missing 'rootfs-image.cuda.version' in provides, required by target depends";

fn ferry() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferry"))
}

/// Pids of live processes whose command line names `dir` (every child of the demo does).
fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        // A zombie has an empty cmdline and is gone once reaped; it holds no port.
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Wait (bounded) until no process names `dir`; the survivors if the bound passes.
fn wait_all_gone(dir: &Path) -> Vec<(u32, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = processes_in(dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Assert nothing is left; survivors are killed first, so a failing test leaves none either.
fn assert_none_left(left: Vec<(u32, String)>, when: &str) {
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    assert_eq!(left, vec![], "processes left behind {when}");
}

#[test]
fn demo_installs_every_domain_refuses_the_cuda_target_and_leaves_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("demo");
    let out = run_bounded(
        Command::new(ferry())
            .args(["demo", "--json", "--dir"])
            .arg(&dir),
        TIMEOUT,
    );
    assert_eq!(out.code, 0, "{out}");
    let s: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(s["ok"], true, "{s}");
    assert_eq!(s["kept"], true, "{s}");
    assert_eq!(
        s["installed_domains"],
        serde_json::json!(["app", "container", "os"]),
        "{s}"
    );

    let ecu = |serial: &str| -> Value {
        s["ecus"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["serial"] == serial)
            .unwrap_or_else(|| panic!("no ECU {serial} in {s}"))
            .clone()
    };
    // Each ECU's domains as the Director lists them installed, and its provides as it says.
    let tcu = ecu("tcu-1");
    assert_eq!(
        tcu["domains"],
        serde_json::json!({"app": "apps/demo-app-1.0.tar",
                           "container": "containers/telemetry-5.0.tar"}),
        "{tcu}"
    );
    assert_eq!(tcu["installed"], "containers/telemetry-5.0.tar", "{tcu}");
    assert_eq!(
        tcu["provides"],
        serde_json::json!({"data-partition.demo-app.version": "1.0",
                           "data-partition.telemetry.version": "5.0",
                           "rootfs-image.version": "4.2"}),
        "{tcu}"
    );
    let adas = ecu("adas-1");
    assert_eq!(
        adas["domains"],
        serde_json::json!({"app": "apps/lane-assist-3.1.tar", "os": "os/adas-rootfs-2.0.img"}),
        "{adas}"
    );
    assert_eq!(adas["installed"], "os/adas-rootfs-2.0.img", "{adas}");
    // The os image cleared rootfs-image.* (the factory 1.0 is gone, no cuda came with 2.0);
    // the persistent app's claim survived the OS swap.
    assert_eq!(
        adas["provides"],
        serde_json::json!({"data-partition.lane-assist.version": "3.1",
                           "rootfs-image.version": "2.0"}),
        "{adas}"
    );
    let ivi = ecu("ivi-1");
    assert_eq!(ivi["role"], "primary");
    assert_eq!(ivi["provides"]["rootfs-image.version"], "2026.1", "{ivi}");
    // What the ECUs' files show, checked by the demo and kept in the directory.
    let checks = s["checks"].to_string();
    for needle in [
        "adas-1 booted slot b",
        "holds os/adas-rootfs-2.0.img byte for byte",
        "tcu-1 runs telemetry as OCI image",
    ] {
        assert!(checks.contains(needle), "missing {needle:?} in {checks}");
    }
    let bootenv = std::fs::read_to_string(dir.join("adas-1-state/bootenv")).unwrap();
    assert!(
        bootenv.lines().any(|l| l == "boot_slot=b")
            && bootenv.lines().any(|l| l == "upgrade_available=0"),
        "{bootenv}"
    );
    let live =
        std::fs::read_to_string(dir.join("tcu-1-state/containers/refs/current/telemetry")).unwrap();
    let layout = dir
        .join("tcu-1-state/containers/images/telemetry")
        .join(live.trim());
    assert!(layout.join("index.json").is_file(), "{}", layout.display());

    let refused = s["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{s}");
    let r = &refused[0];
    assert_eq!(r["target"], "apps/inference-1.0.tar", "{r}");
    assert_eq!(r["depends"]["rootfs-image.cuda.version"], "11.8", "{r}");
    for reason in [&r["reason"], &r["director_reason"]] {
        let text = reason.as_str().unwrap();
        assert!(
            text.contains(MISSING) && text.contains("System not modified"),
            "{r}"
        );
    }
    // The story went to stderr and names the checks and the refusal.
    for needle in [
        "✓ Director metadata verified",
        "✗ the Primary refused it",
        MISSING,
    ] {
        assert!(out.stderr.contains(needle), "missing {needle:?}:\n{out}");
    }
    assert!(dir.join("logs/director-serve.log").is_file(), "logs kept");

    // Every process it started is gone: none of the recorded pids names the directory, and
    // no process on the machine does.
    let pids: Vec<u64> = s["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.len() >= 5, "servers, secondaries and cycles: {s}");
    assert_none_left(processes_in(&dir), "after the demo");
}

/// The held demo, killed on drop so a failing assertion leaves no demo running.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `ferry demo --keep-running` and read its story until it says it is still running.
fn start_held(dir: &Path) -> Held {
    let mut child = Command::new(ferry())
        .args(["demo", "--keep-running", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut story = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        story.push_str(&line);
        story.push('\n');
        if line.contains("Ctrl-C stops everything") {
            return Held(child);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the demo ended without holding:\n{story}");
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn ctrl_c_stops_every_process_of_the_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("demo");
    let mut demo = start_held(&dir);
    assert!(
        processes_in(&dir).len() >= 4,
        "the servers run while it holds"
    );
    signal(demo.0.id(), "-INT");
    let status = demo.0.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status}");
    // The handler reaped every child before exiting.
    assert_none_left(processes_in(&dir), "after Ctrl-C");
}

#[test]
fn children_exit_with_the_demo_even_when_it_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("demo");
    let mut demo = start_held(&dir);
    assert!(
        processes_in(&dir).len() >= 4,
        "the servers run while it holds"
    );
    signal(demo.0.id(), "-KILL");
    demo.0.wait().unwrap();
    // No handler runs on SIGKILL: each child sees its stdin close and exits by itself.
    assert_none_left(wait_all_gone(&dir), "after SIGKILL");
}

#[test]
fn a_failing_step_stops_every_process_already_started() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap().join("demo");
    // A Director already in the way: the Image repository server is up by the time the
    // Director step refuses to overwrite it.
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("d/director.toml"), "# someone else's\n").unwrap();
    let out = run_bounded(
        Command::new(ferry()).args(["demo", "--dir"]).arg(&dir),
        TIMEOUT,
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("director.toml exists; expected a directory without a Director"),
        "{out}"
    );
    assert!(out.stdout.contains("✓ serving metadata/"), "{out}");
    assert!(out.stdout.contains("every process is stopped"), "{out}");
    assert_none_left(processes_in(&dir), "after a failed step");
}
