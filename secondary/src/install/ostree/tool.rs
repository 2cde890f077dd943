//! The `ostree` program, run with a time limit against one sysroot: what the `ostree` domain
//! asks of it, and the parse of `ostree admin status` (the deployment list, in boot order).

use crate::error::{Error, Result};
use crate::install::capture;
use ferry_core::metadata::uptane::is_ostree_checksum;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One deployment of `ostree admin status`, in boot order (index 0 boots by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Its index in the sysroot's list, as `ostree admin undeploy`/`pin` take it.
    pub index: usize,
    pub stateroot: String,
    pub commit: String,
    pub serial: u32,
    pub pinned: bool,
}

impl Deployment {
    /// Its checkout: `SYSROOT/ostree/deploy/STATEROOT/deploy/COMMIT.SERIAL`.
    pub fn path(&self, sysroot: &Path) -> PathBuf {
        sysroot
            .join("ostree/deploy")
            .join(&self.stateroot)
            .join("deploy")
            .join(format!("{}.{}", self.commit, self.serial))
    }
}

/// The remote Ferry keeps for pull targets when `[ostree] remote` names none.
pub const FERRY_REMOTE: &str = "ferry";

#[derive(Debug, Clone)]
pub struct Ostree {
    pub program: PathBuf,
    pub sysroot: PathBuf,
    /// How long one ostree command may run (a delta of a whole OS takes minutes).
    pub limit: Duration,
}

impl Ostree {
    pub fn repo(&self) -> PathBuf {
        self.sysroot.join("ostree/repo")
    }

    fn run(&self, what: &str, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        let program = self.program.display().to_string();
        let done = capture::run_command(cmd, &program, self.limit)?
            .require_success(what, &format!("{program} {}", args.join(" ")))?;
        Ok(done.stdout_text())
    }

    fn sysroot_arg(&self) -> String {
        format!("--sysroot={}", self.sysroot.display())
    }

    fn repo_arg(&self) -> String {
        format!("--repo={}", self.repo().display())
    }

    /// Write the objects of a static delta file into the sysroot's repository.
    pub fn apply_delta(&self, file: &Path) -> Result<()> {
        let file = file.display().to_string();
        self.run(
            "ostree static-delta apply-offline",
            &[&self.repo_arg(), "static-delta", "apply-offline", &file],
        )
        .map(drop)
    }

    /// Pull exactly `commit` (no parents: depth 0) from `url` through `remote`, verifying
    /// every object's checksum as it arrives (ostree always does over HTTP). Without a
    /// configured remote, `ferry` is (re)made pointing at `url`, GPG verification off: the
    /// commit checksum signed in Uptane's metadata is the trust.
    pub fn pull(&self, remote: Option<&str>, url: &str, commit: &str) -> Result<()> {
        let remote = match remote {
            Some(name) => name,
            None => {
                self.run(
                    "ostree remote add",
                    &[
                        &self.repo_arg(),
                        "remote",
                        "add",
                        "--force",
                        "--no-gpg-verify",
                        FERRY_REMOTE,
                        url,
                    ],
                )?;
                FERRY_REMOTE
            }
        };
        self.run(
            "ostree pull",
            &[
                &self.repo_arg(),
                "pull",
                "--depth=0",
                &format!("--url={url}"),
                remote,
                commit,
            ],
        )
        .map(drop)
    }

    /// Whether a pull of `commit` stopped before all of its objects arrived: ostree marks
    /// such a commit `state/COMMIT.commitpartial` until the pull completes.
    pub fn is_partial(&self, commit: &str) -> Result<bool> {
        let marker = self
            .repo()
            .join("state")
            .join(format!("{commit}.commitpartial"));
        match std::fs::symlink_metadata(&marker) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&marker, e)),
        }
    }

    /// Whether the repository holds `commit`'s commit object. (`ostree rev-parse` of a full
    /// checksum echoes it whether or not the object is there; `show` loads the object.)
    pub fn has_commit(&self, commit: &str) -> Result<bool> {
        let mut cmd = Command::new(&self.program);
        cmd.args([&self.repo_arg(), "show", commit]);
        let done = capture::run_command(cmd, &self.program.display().to_string(), self.limit)?;
        Ok(done.success)
    }

    /// Pin `commit` in the repository under `reference`, so no prune takes it.
    pub fn set_ref(&self, reference: &str, commit: &str) -> Result<()> {
        self.run(
            "ostree refs --create",
            &[
                &self.repo_arg(),
                "refs",
                "--force",
                &format!("--create={reference}"),
                commit,
            ],
        )
        .map(drop)
    }

    pub fn delete_ref(&self, reference: &str) -> Result<()> {
        let refs = self.run("ostree refs", &[&self.repo_arg(), "refs"])?;
        if refs.lines().any(|l| l.trim() == reference) {
            self.run(
                "ostree refs --delete",
                &[&self.repo_arg(), "refs", "--delete", reference],
            )?;
        }
        Ok(())
    }

    /// `ostree admin deploy` of `commit` for `stateroot`: it becomes deployment 0.
    pub fn deploy(&self, stateroot: &str, commit: &str) -> Result<()> {
        self.run(
            "ostree admin deploy",
            &[
                "admin",
                "deploy",
                &self.sysroot_arg(),
                &format!("--os={stateroot}"),
                commit,
            ],
        )
        .map(drop)
    }

    pub fn undeploy(&self, index: usize) -> Result<()> {
        self.run(
            "ostree admin undeploy",
            &["admin", "undeploy", &self.sysroot_arg(), &index.to_string()],
        )
        .map(drop)
    }

    pub fn pin(&self, index: usize, pinned: bool) -> Result<()> {
        let index = index.to_string();
        let mut args = vec!["admin", "pin"];
        let sysroot = self.sysroot_arg();
        args.push(&sysroot);
        if !pinned {
            args.push("--unpin");
        }
        args.push(&index);
        self.run("ostree admin pin", &args).map(drop)
    }

    /// The sysroot's deployments, in boot order.
    pub fn deployments(&self) -> Result<Vec<Deployment>> {
        let text = self.run(
            "ostree admin status",
            &["admin", "status", &self.sysroot_arg()],
        )?;
        parse_status(&text)
    }
}

/// The deployments of `ostree admin status` output: a line `[* ]STATEROOT COMMIT.SERIAL
/// [(annotations)]` per deployment, followed by indented detail lines (`origin refspec`,
/// `Version`, `Pinned: yes`).
pub fn parse_status(text: &str) -> Result<Vec<Deployment>> {
    let mut found: Vec<Deployment> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start_matches(['*', ' ']);
        let mut words = trimmed.split_whitespace();
        let (Some(stateroot), Some(id)) = (words.next(), words.next()) else {
            continue;
        };
        if let Some((commit, serial)) = id.split_once('.') {
            if is_ostree_checksum(commit) {
                let serial = serial.parse().map_err(|_| Error::OsCheck {
                    check: "ostree deployment list",
                    found: format!("deployment {id:?} in `ostree admin status`"),
                    expected: "COMMIT.SERIAL with a decimal serial".into(),
                })?;
                found.push(Deployment {
                    index: found.len(),
                    stateroot: stateroot.to_owned(),
                    commit: commit.to_owned(),
                    serial,
                    pinned: false,
                });
                continue;
            }
        }
        if trimmed.trim() == "Pinned: yes" {
            if let Some(last) = found.last_mut() {
                last.pinned = true;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_lists_deployments_in_boot_order_with_pins() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let text = format!(
            "* torizon {a}.0 (pending)\n    Version: 6.1\n    origin refspec: {a}\n  \
             torizon {b}.1 (rollback)\n    origin refspec: main\n    Pinned: yes\n"
        );
        let d = parse_status(&text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].index, d[0].commit.as_str(), d[0].serial), (0, &*a, 0));
        assert!(!d[0].pinned);
        assert_eq!((d[1].index, d[1].commit.as_str(), d[1].serial), (1, &*b, 1));
        assert!(d[1].pinned);
        assert_eq!(parse_status("No deployments.\n").unwrap(), vec![]);
    }
}
