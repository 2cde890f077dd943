//! README's docker recipe for the container domain, run against a real, private dockerd: the
//! hooks copy the verified OCI layout into the daemon with `skopeo copy oci:...
//! docker-daemon:...` (`docker load` cannot read an OCI layout) and start it with `docker
//! run`; v1 installs and runs, v2 failing its health check is rolled back and v1 runs again.
//!
//! The daemon is the test's own: `dockerd --bridge=none --iptables=false --ip6tables=false
//! --storage-driver=vfs` with its data, exec root, pid file and socket in a temporary
//! directory, the cgroupfs driver, and ulimits below the host's; DOCKER_HOST, set for this
//! process and so for the hooks, points README's unchanged lines at it. Skips, saying why,
//! without dockerd, docker, skopeo or a static busybox, or where the daemon does not answer.
//! The one thing written outside the temporary directory is skopeo's blob-info cache in
//! /var/lib/containers/cache: skopeo 1.9 has no option to move it.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/engine.rs"]
mod engine;
#[path = "fixtures/oci.rs"]
mod oci;

use engine::{cli, on_path, static_busybox};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long dockerd may take to answer on its socket, and to stop, before the test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

/// The private daemon: its containers removed and it stopped (SIGTERM, then SIGKILL) when the
/// test ends, passed or not.
struct Daemon {
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // it ended on its own (a skip): nothing of it left to stop
        }
        let (ok, out) = cli("docker", &["rm", "--force", "web"]);
        if !ok && !out.contains("No such container") {
            eprintln!("docker rm --force web: {out}");
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("dockerd did not stop on SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tail of dockerd's log, for a skip message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

#[test]
fn docker_recipe_installs_v1_and_rolls_back_v2_failing_its_health_check() {
    let missing: Vec<&str> = ["dockerd", "docker", "skopeo"]
        .into_iter()
        .filter(|p| on_path(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (apt-get install docker.io skopeo)");
        return;
    }
    let busybox = match static_busybox() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path();
    let socket = state.join("docker.sock");
    let log = state.join("dockerd.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let arg = |name: &str, path: &str| format!("--{name}={}", state.join(path).display());
    let child = Command::new("dockerd")
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--storage-driver=vfs",
            "--exec-opt=native.cgroupdriver=cgroupfs",
            "--default-ulimit=nofile=1024:1024",
            "--default-ulimit=nproc=1024:1024",
            &arg("data-root", "data"),
            &arg("exec-root", "exec"),
            &arg("pidfile", "dockerd.pid"),
            &format!("--host=unix://{}", socket.display()),
        ])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn();
    let child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipped: dockerd cannot start: {e}");
            return;
        }
    };
    // This file's only test sets it, before anything it starts reads it.
    std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display()));
    let mut daemon = Daemon { child };
    let deadline = Instant::now() + PATIENCE;
    let version = loop {
        let (ok, out) = cli(
            "docker",
            &[
                "version",
                "--format",
                "docker {{.Client.Version}}, dockerd {{.Server.Version}}",
            ],
        );
        if ok {
            break out;
        }
        let exited = daemon.child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() >= deadline {
            eprintln!(
                "skipped: dockerd did not answer ({}): {out}\n{}",
                exited.map_or("still starting".to_owned(), |s| s.to_string()),
                log_tail(&log)
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, skopeo) = cli("skopeo", &["--version"]);
    eprintln!("{version}, {skopeo}");
    engine::v1_installs_and_v2_failing_its_health_check_rolls_back("docker", &busybox);
}
