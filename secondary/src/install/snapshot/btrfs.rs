//! The `btrfs` program, run with a time limit: snapshots of the root subvolume and which one
//! boots by default.

use crate::error::Result;
use crate::install::capture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Btrfs {
    pub program: PathBuf,
    pub limit: Duration,
}

impl Btrfs {
    fn run(&self, what: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
        let mut cmd = Command::new(&self.program);
        cmd.args(args);
        let program = self.program.display().to_string();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let done = capture::run_command(cmd, &program, self.limit)?
            .require_success(what, &format!("{program} {}", shown.join(" ")))?;
        Ok(done.stdout_text())
    }

    /// A writable snapshot of `source` at `dest`.
    pub fn snapshot(&self, source: &Path, dest: &Path) -> Result<()> {
        self.run(
            "btrfs subvolume snapshot",
            &[
                "subvolume".as_ref(),
                "snapshot".as_ref(),
                source.as_os_str(),
                dest.as_os_str(),
            ],
        )
        .map(drop)
    }

    pub fn delete(&self, subvolume: &Path) -> Result<()> {
        self.run(
            "btrfs subvolume delete",
            &[
                "subvolume".as_ref(),
                "delete".as_ref(),
                subvolume.as_os_str(),
            ],
        )
        .map(drop)
    }

    /// Make `subvolume` the file system's default (what mounts, and boots, without `subvol=`).
    pub fn set_default(&self, subvolume: &Path) -> Result<()> {
        self.run(
            "btrfs subvolume set-default",
            &[
                "subvolume".as_ref(),
                "set-default".as_ref(),
                subvolume.as_os_str(),
            ],
        )
        .map(drop)
    }

    /// The default subvolume's id on the file system mounted at `mount`.
    pub fn default_id(&self, mount: &Path) -> Result<u64> {
        // "ID 258 gen 12 top level 5 path ferry/snapshots/2"
        let text = self.run(
            "btrfs subvolume get-default",
            &[
                "subvolume".as_ref(),
                "get-default".as_ref(),
                mount.as_os_str(),
            ],
        )?;
        parse_id(&text, "ID ").ok_or_else(|| crate::error::Error::OsCheck {
            check: "btrfs default subvolume",
            found: format!("`btrfs subvolume get-default` printed {:?}", text.trim()),
            expected: "ID N gen ... path ...".into(),
        })
    }

    /// The id of the subvolume holding `path`.
    pub fn id_of(&self, path: &Path) -> Result<u64> {
        let text = self.run(
            "btrfs inspect-internal rootid",
            &[
                "inspect-internal".as_ref(),
                "rootid".as_ref(),
                path.as_os_str(),
            ],
        )?;
        text.trim()
            .parse()
            .map_err(|_| crate::error::Error::OsCheck {
                check: "btrfs subvolume id",
                found: format!("`btrfs inspect-internal rootid` printed {:?}", text.trim()),
                expected: "a decimal id".into(),
            })
    }
}

fn parse_id(text: &str, prefix: &str) -> Option<u64> {
    text.trim()
        .strip_prefix(prefix)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn get_default_output_gives_the_id() {
        assert_eq!(
            super::parse_id("ID 258 gen 12 top level 5 path ferry/snapshots/2\n", "ID "),
            Some(258)
        );
        assert_eq!(super::parse_id("ID 5 (FS_TREE)\n", "ID "), Some(5));
        assert_eq!(super::parse_id("nonsense", "ID "), None);
    }
}
