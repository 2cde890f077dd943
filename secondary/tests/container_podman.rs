//! README's podman recipe for the container domain, run against real podman: the hooks load
//! the verified OCI layout with `podman load` and start it with `podman run --replace`; v1
//! installs and runs, v2 failing its health check is rolled back and v1 runs again.
//!
//! The hooks are README's lines unchanged; what is particular to a test host goes where a user
//! would put it, in containers.conf and storage.conf, named by CONTAINERS_CONF and
//! CONTAINERS_STORAGE_CONF for this process (and so for the hooks it runs): every bit of
//! podman's state in a temporary directory (vfs storage, which needs no overlay mounts),
//! runc with the cgroupfs manager (crun refuses hybrid cgroup hierarchies: "cgroups in hybrid
//! mode not supported"), no network, and ulimits below the host's (podman's defaults raise
//! them, which a container without CAP_SYS_RESOURCE's room cannot: "setrlimit ... operation
//! not permitted"). Skips, saying why, without podman, runc or a static busybox, or where
//! `podman info` fails.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "fixtures/engine.rs"]
mod engine;
#[path = "fixtures/oci.rs"]
mod oci;

use engine::{cli, on_path, static_busybox};

/// Removes every container of the private podman when the test ends, passed or not, so no
/// conmon or app process outlives it (the temporary directory then goes with the storage).
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (ok, out) = cli("podman", &["rm", "--all", "--force", "--time", "0"]);
        if !ok {
            eprintln!("podman rm --all --force: {out}");
        }
    }
}

#[test]
fn podman_recipe_installs_v1_and_rolls_back_v2_failing_its_health_check() {
    let missing: Vec<&str> = ["podman", "runc"]
        .into_iter()
        .filter(|p| on_path(p).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!("skipped: {missing:?} not installed (apt-get install podman runc)");
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
    let storage = state.join("storage.conf");
    std::fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            state.join("root").display(),
            state.join("run").display()
        ),
    )
    .unwrap();
    let containers = state.join("containers.conf");
    std::fs::write(
        &containers,
        format!(
            "[containers]\nnetns = \"none\"\n\
             default_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\ntmp_dir = \"{}\"\n",
            state.join("tmp").display()
        ),
    )
    .unwrap();
    // This file's only test sets these, before anything it starts reads them.
    std::env::set_var("CONTAINERS_CONF", &containers);
    std::env::set_var("CONTAINERS_STORAGE_CONF", &storage);
    let (ok, out) = cli("podman", &["info", "--format", "{{.Version.Version}}"]);
    if !ok {
        eprintln!("skipped: podman cannot start here: {out}");
        return;
    }
    eprintln!("podman {out}");
    let _cleanup = Cleanup;
    engine::v1_installs_and_v2_failing_its_health_check_rolls_back("podman", &busybox);
}
