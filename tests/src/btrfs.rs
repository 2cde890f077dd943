//! A real btrfs file system for tests: an image file made with `truncate` and `mkfs.btrfs`,
//! loop-mounted by the test (unmounted, and its loop device detached, on drop, also when the
//! test fails), holding root snapshot 1 under `ferry/snapshots/` as the default subvolume.
//! Shared by path with ferry-secondary's own tests.

// Test fixture: a failed step is a failed test, with the step named by the panic.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A mounted btrfs file system; unmounted on drop.
#[derive(Debug)]
pub struct Btrfs {
    pub mount: PathBuf,
    image: PathBuf,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

impl Btrfs {
    /// A `size_mib` file system in `dir`, or why it cannot be made here (no btrfs-progs, no
    /// loop devices, no btrfs in the kernel, not root).
    pub fn new(dir: &Path, size_mib: u64) -> Result<Btrfs, String> {
        let image = dir.join("btrfs.img");
        let mount = dir.join("top");
        std::fs::create_dir_all(&mount).map_err(|e| e.to_string())?;
        run(
            "truncate",
            &["-s", &format!("{size_mib}M"), image.to_str().unwrap()],
        )?;
        run("mkfs.btrfs", &["-q", image.to_str().unwrap()])?;
        run(
            "mount",
            &[
                "-o",
                "loop",
                image.to_str().unwrap(),
                mount.to_str().unwrap(),
            ],
        )?;
        Ok(Btrfs { mount, image })
    }

    /// Create snapshot 1 from the files of `populate` and make it the default subvolume.
    pub fn first_root(&self, populate: impl FnOnce(&Path)) -> PathBuf {
        let dir = self.mount.join("ferry/snapshots");
        std::fs::create_dir_all(&dir).unwrap();
        let first = dir.join("1");
        run("btrfs", &["subvolume", "create", first.to_str().unwrap()]).unwrap();
        populate(&first);
        run(
            "btrfs",
            &["subvolume", "set-default", first.to_str().unwrap()],
        )
        .unwrap();
        first
    }

    /// Bytes in use on the file system, after the transaction is on disk.
    pub fn used_bytes(&self) -> u64 {
        run(
            "btrfs",
            &["filesystem", "sync", self.mount.to_str().unwrap()],
        )
        .unwrap();
        let out = run(
            "df",
            &["-B1", "--output=used", self.mount.to_str().unwrap()],
        )
        .unwrap();
        out.lines().last().unwrap().trim().parse().unwrap()
    }

    /// The snapshot numbers under `ferry/snapshots`, ascending.
    pub fn snapshots(&self) -> Vec<u64> {
        let mut found: Vec<u64> = std::fs::read_dir(self.mount.join("ferry/snapshots"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        found.sort_unstable();
        found
    }

    /// The default subvolume's path below the top level ("ferry/snapshots/2").
    pub fn default_path(&self) -> String {
        let out = run(
            "btrfs",
            &["subvolume", "get-default", self.mount.to_str().unwrap()],
        )
        .unwrap();
        out.rsplit(" path ").next().unwrap_or_default().to_owned()
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        // The loop device mount set up is detached with the unmount (autoclear).
        if run("umount", &[self.mount.to_str().unwrap()]).is_err() {
            let _ = run("umount", &["-l", self.mount.to_str().unwrap()]);
        }
        let _ = std::fs::remove_file(&self.image);
    }
}

/// A tar of a root file system: `files` as (path, bytes), each a regular file of mode 0644.
pub fn rootfs_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}
