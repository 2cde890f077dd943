//! The processes of `ferry bench install`: one-shot CLI runs that must succeed, and daemons
//! that print their address on their first stdout line and are killed on drop, so no path
//! (error or panic) leaves a process behind.

use crate::error::{io_at, Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a daemon may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The sibling binary `name` next to the running `ferry`.
pub fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::Bench(format!("locating the ferry executable failed: {e}")))?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::Bench(format!(
            "{} not found next to {}: build it with `cargo build --release -p ferry-secondary \
             -p ferry-primary` (or the same profile as this ferry)",
            path.display(),
            exe.display()
        )))
    }
}

/// The last `n` lines of the log file at `path` (empty if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run `program args` in `dir`, stderr to `dir/logs/NAME.log`; its stdout if it exits 0.
pub fn run_ok(dir: &Path, program: &Path, args: &[&str], name: &str) -> Result<String> {
    let log = log_file(dir, name)?;
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::from(File::create(&log).map_err(io_at(&log))?))
        .output()
        .map_err(|e| Error::Bench(format!("starting {} failed: {e}", program.display())))?;
    if !out.status.success() {
        return Err(Error::Bench(format!(
            "{} {} failed ({}):\n{}",
            program.display(),
            args.join(" "),
            out.status,
            tail(&log, 20)
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| Error::Bench(format!("{name}: stdout is not UTF-8")))
}

fn log_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(io_at(&logs))?;
    Ok(logs.join(format!("{name}.log")))
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct Guard {
    pub child: Child,
    pub log: PathBuf,
}

impl Guard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Start `cmd` in `dir` with stderr logged to `dir/logs/NAME.log`, stdout piped.
pub fn spawn(dir: &Path, mut cmd: Command, name: &str) -> Result<Guard> {
    let log = log_file(dir, name)?;
    let child = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(File::create(&log).map_err(io_at(&log))?))
        .spawn()
        .map_err(|e| Error::Bench(format!("starting {name} failed: {e}")))?;
    Ok(Guard { child, log })
}

/// A server: started, and its address read from its first stdout line.
#[derive(Debug)]
pub struct Daemon {
    pub guard: Guard,
    pub addr: SocketAddr,
}

/// The address in a server's first line: the JSON `listening` field, or after `://`.
fn address_in(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v.get("listening")?.as_str()?.parse().ok();
    }
    let (_, rest) = line.rsplit_once("://")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

impl Daemon {
    pub fn start(dir: &Path, cmd: Command, name: &str) -> Result<Daemon> {
        let mut guard = spawn(dir, cmd, name)?;
        let out = guard
            .child
            .stdout
            .take()
            .ok_or_else(|| Error::Bench(format!("{name}: no stdout pipe")))?;
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let first = rx.recv_timeout(START_TIMEOUT).ok();
        let Some(addr) = first.as_deref().and_then(address_in) else {
            let _ = guard.child.kill();
            let _ = guard.child.wait();
            return Err(Error::Bench(format!(
                "{name} did not print its address within {START_TIMEOUT:?} (first line \
                 {first:?}):\n{}",
                tail(&guard.log, 20)
            )));
        };
        Ok(Daemon { guard, addr })
    }
}
