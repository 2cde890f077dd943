//! `ferry-primary run`, the poll loop, end to end with real processes on 127.0.0.1: one
//! running process installs an assignment, then picks up a second one without a restart, and
//! SIGTERM stops it cleanly (exit status 0). Waits poll the Director's view until a generous
//! deadline, which only guards against a hang: nothing here asserts how long anything takes.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::bins::binary;
use primary_common::{app_bytes, Options, World, APP, FULL, FW, PARTIAL, PRIMARY, TIMEOUT};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The running `ferry-primary run`, killed on drop so a failing test leaves no process.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Poll `done` until it holds; panic naming `what` (with the primary's log) if it never does.
fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "no sign of {what} after {TIMEOUT:?} (a hang guard, not a timing check):\n{}",
            read_log(log)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The loop must still be running while it waits for work.
fn assert_running(child: &mut Child, log: &Path) {
    if let Ok(Some(status)) = child.try_wait() {
        panic!("ferry-primary run exited ({status}):\n{}", read_log(log));
    }
}

/// The Director's last accepted manifest says ECU `serial` runs `target`.
fn reported_running(world: &World, serial: &str, target: &str) -> bool {
    let reported = world.reported(serial);
    reported["installed_image"]["filepath"] == target
}

#[test]
fn the_poll_loop_installs_each_new_assignment_without_a_restart_and_stops_on_sigterm() {
    let world = World::start(Options::default());
    // primary.toml polls every second.
    let log = world.base.join("primary-run.log");
    let child = Command::new(binary("ferry-primary", "ferry-primary"))
        .current_dir(&world.base)
        .args(["--config", "primary.toml", "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut primary = Running { child };
    let pid = primary.child.id();

    // Assigned while the loop already runs: a later cycle installs it everywhere.
    world.assign_all();
    wait_for("the first assignment installed", &log, || {
        assert_running(&mut primary.child, &log);
        [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)]
            .iter()
            .all(|(serial, target)| reported_running(&world, serial, target))
    });
    assert_eq!(
        std::fs::read(world.base.join("ivi-1-apps/demo/demo-2.tar")).unwrap(),
        app_bytes()
    );

    // A newer build of the app, assigned to the same running process.
    let v3: Vec<u8> = app_bytes().iter().map(|b| b ^ 0x5a).collect();
    std::fs::write(world.base.join("demo3.tar"), &v3).unwrap();
    world.republish(
        "demo3.tar",
        "apps/demo-3.tar",
        &[
            "--hardware-id",
            "ivi",
            "--software-name",
            "demo",
            "--version",
            "3",
            "--release-counter",
            "3",
        ],
    );
    world.assign(&[(PRIMARY, "apps/demo-3.tar")]);
    wait_for("the second assignment installed", &log, || {
        assert_running(&mut primary.child, &log);
        reported_running(&world, PRIMARY, "apps/demo-3.tar")
    });
    assert_eq!(
        std::fs::read(world.base.join("ivi-1-apps/demo/demo-3.tar")).unwrap(),
        v3
    );
    // Both updates came from the one process started above.
    assert_running(&mut primary.child, &log);

    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success(), "kill -TERM {pid}: {kill}");
    let mut status = None;
    wait_for("ferry-primary run stopping after SIGTERM", &log, || {
        status = primary.child.try_wait().unwrap();
        status.is_some()
    });
    let text = read_log(&log);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    assert!(text.contains("stopped"), "{text}");
    // Assignments re-signed the Director's metadata while the loop polled it: consistent
    // snapshots mean no cycle saw a targets version its snapshot does not list, so no ECU
    // reports an attack.
    assert!(!text.contains("version check failed"), "{text}");
    for serial in [PRIMARY, FULL, PARTIAL] {
        let reported = world.reported(serial);
        assert_eq!(reported["attacks_detected"], "", "{serial}: {reported}");
    }
    // stderr is no terminal here: progress comes as log lines, one per tenth.
    assert!(text.contains("downloading"), "{text}");
    assert!(text.contains("percent=100"), "{text}");
}
