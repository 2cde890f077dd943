//! A real OSTree sysroot for tests, made with Debian's `ostree`: `admin init-fs`, `os-init`,
//! version 1 committed to a build repository (archive mode, as a vendor's build keeps it),
//! pulled into the sysroot and deployed as the factory OS; further versions committed and
//! shipped as static deltas (`static-delta generate --inline`). Shared by path with
//! ferry-secondary's own tests.

// Test fixture: a failed step is a failed test, with the step named by the panic.
#![allow(clippy::unwrap_used)]

use ferry_secondary::install::ostree::{parse_status, Deployment};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The stateroot the fixture's OS is deployed in.
pub const STATEROOT: &str = "ferryos";

/// Whether `ostree` runs here; says why not when it does not.
pub fn ostree_available() -> bool {
    match Command::new("ostree").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ => {
            eprintln!("SKIP: the ostree program is not installed (apt-get install ostree)");
            false
        }
    }
}

pub fn ostree(args: &[&str]) -> String {
    let out = Command::new("ostree").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ostree {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Deployments are immutable (chattr +i): undo that before the temporary directory goes.
#[derive(Debug)]
pub struct Unfreeze(pub PathBuf);

impl Drop for Unfreeze {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

/// A sysroot with version 1 deployed (the factory OS), and the build repository the
/// versions are committed to.
#[derive(Debug)]
pub struct Os {
    pub sysroot: PathBuf,
    pub build: PathBuf,
    dir: PathBuf,
}

/// `ostree admin init-fs` and `os-init` of [`STATEROOT`] at `sysroot`.
pub fn init_sysroot(sysroot: &Path) {
    std::fs::create_dir_all(sysroot).unwrap();
    ostree(&["admin", "init-fs", sysroot.to_str().unwrap()]);
    ostree(&[
        "admin",
        "os-init",
        &format!("--sysroot={}", sysroot.display()),
        STATEROOT,
    ]);
}

/// The deployments of the sysroot at `sysroot`, in boot order.
pub fn deployments_of(sysroot: &Path) -> Vec<Deployment> {
    parse_status(&ostree(&[
        "admin",
        "status",
        &format!("--sysroot={}", sysroot.display()),
    ]))
    .unwrap()
}

impl Os {
    /// A sysroot with version 1 deployed (the factory OS).
    pub fn new(dir: &Path) -> Os {
        let os = Os::without_deployment(dir);
        let c1 = os.commit("1", true);
        // The factory image: version 1 pulled into the sysroot and deployed.
        ostree(&[
            "pull-local",
            &format!("--repo={}", os.repo().display()),
            os.build.to_str().unwrap(),
            &c1,
        ]);
        ostree(&[
            "admin",
            "deploy",
            &format!("--sysroot={}", os.sysroot.display()),
            &format!("--os={STATEROOT}"),
            &c1,
        ]);
        os
    }

    /// The build repository and a sysroot with the stateroot made but nothing deployed.
    pub fn without_deployment(dir: &Path) -> Os {
        let sysroot = dir.join("sysroot");
        let build = dir.join("build-repo");
        init_sysroot(&sysroot);
        ostree(&[
            "init",
            &format!("--repo={}", build.display()),
            "--mode=archive",
        ]);
        Os {
            sysroot,
            build,
            dir: dir.to_owned(),
        }
    }

    pub fn repo(&self) -> PathBuf {
        self.sysroot.join("ostree/repo")
    }

    /// Commit an OS tree of `version` to the build repository; `healthy` puts the file the
    /// health check looks for in it.
    pub fn commit(&self, version: &str, healthy: bool) -> String {
        let tree = self.dir.join(format!("tree-{version}"));
        for d in ["usr/lib/modules/6.1.0", "usr/etc", "usr/bin"] {
            std::fs::create_dir_all(tree.join(d)).unwrap();
        }
        std::fs::write(tree.join("usr/lib/modules/6.1.0/vmlinuz"), b"kernel 6.1").unwrap();
        let release = format!("ID=ferryos\nNAME=FerryOS\nVERSION_ID={version}\n");
        std::fs::write(tree.join("usr/lib/os-release"), &release).unwrap();
        std::fs::write(tree.join("usr/etc/os-release"), &release).unwrap();
        std::fs::write(tree.join("usr/bin/app"), format!("app {version}")).unwrap();
        if healthy {
            std::fs::write(tree.join("usr/lib/healthy"), b"yes").unwrap();
        }
        ostree(&[
            "commit",
            &format!("--repo={}", self.build.display()),
            &format!("--branch={STATEROOT}/stable"),
            &format!("--subject=v{version}"),
            &format!("--tree=dir={}", tree.display()),
        ])
    }

    /// A static delta file from `from` (from nothing: `None`) to `to`, as a vendor's build
    /// makes it.
    pub fn delta_from(&self, from: Option<&str>, to: &str) -> Vec<u8> {
        let file = self
            .dir
            .join(format!("{}-{to}.delta", from.unwrap_or("empty")));
        let from = match from {
            Some(from) => format!("--from={from}"),
            None => "--empty".to_owned(),
        };
        ostree(&[
            "static-delta",
            "generate",
            &format!("--repo={}", self.build.display()),
            "--inline",
            "--min-fallback-size=0",
            &from,
            &format!("--to={to}"),
            &format!("--filename={}", file.display()),
        ]);
        std::fs::read(file).unwrap()
    }

    pub fn delta(&self, from: &str, to: &str) -> Vec<u8> {
        self.delta_from(Some(from), to)
    }

    pub fn deployments(&self) -> Vec<Deployment> {
        deployments_of(&self.sysroot)
    }

    pub fn commits(&self) -> Vec<String> {
        self.deployments().into_iter().map(|d| d.commit).collect()
    }
}
