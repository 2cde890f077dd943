//! The world's processes: `ferry` itself (current_exe) run as servers, daemons and one-shot
//! commands, with stderr in `DIR/logs/NAME.log`. Nothing may outlive the world:
//! - every child is killed and reaped when its [`Proc`] drops (normal end, error, panic);
//! - SIGINT/SIGTERM to this process kills and reaps every live child before exiting
//!   ([`stop_children_on_signal`]);
//! - each child holds a pipe from us on stdin and exits when it closes
//!   ([`exit_with_parent_if_asked`]), which covers even a SIGKILL of this process.

use crate::error::{io_at, Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Set on children: watch stdin and exit when the parent's end closes.
const EXIT_WITH_PARENT: &str = "FERRY_EXIT_WITH_PARENT";

/// Every child that may still run, for the signal handler (weak: a dropped [`Proc`] has
/// already reaped its child).
static LIVE: Mutex<Vec<Weak<Mutex<Child>>>> = Mutex::new(Vec::new());

/// Kill and reap `child` if it still runs.
fn stop(child: &Mutex<Child>) {
    if let Ok(mut c) = child.lock() {
        if let Ok(None) = c.try_wait() {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
}

/// Kill and reap every live child. Returns how many there were.
pub fn stop_all() -> usize {
    let live: Vec<_> = match LIVE.lock() {
        Ok(mut l) => l.drain(..).filter_map(|w| w.upgrade()).collect(),
        Err(_) => return 0,
    };
    for child in &live {
        stop(child);
    }
    live.len()
}

/// On SIGINT or SIGTERM: kill and reap every child, then exit 130. Call once, early.
pub fn stop_children_on_signal() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Check(format!("cannot start the signal watcher: {e}")))?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            let interrupt = tokio::signal::ctrl_c();
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot watch SIGTERM; SIGINT only");
                        let _ = interrupt.await;
                        return;
                    }
                };
            tokio::select! {
                _ = interrupt => {}
                _ = term.recv() => {}
            }
        });
        let n = stop_all();
        eprintln!("interrupted: stopped {n} child process(es)");
        std::process::exit(130);
    });
    Ok(())
}

/// In a child started by a world: exit as soon as the parent's end of stdin closes.
pub fn exit_with_parent_if_asked() {
    if std::env::var_os(EXIT_WITH_PARENT).is_none() {
        return;
    }
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(1);
    });
}

/// A running child of the world: killed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    pub log: PathBuf,
    child: Arc<Mutex<Child>>,
    /// Our end of its stdin: closing it tells the child to exit.
    _stdin: Option<ChildStdin>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        stop(&self.child);
    }
}

/// The last `n` lines of a log file (empty if unreadable).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Starts `ferry ARGS...` processes in one directory.
#[derive(Debug)]
pub struct Launcher {
    pub exe: PathBuf,
    pub dir: PathBuf,
    /// RUST_LOG for the children (their logs go to files, so `info` costs the user nothing).
    pub log_level: String,
    /// (name, pid) of every child started, running or finished.
    started: Mutex<Vec<(String, u32)>>,
}

impl Launcher {
    pub fn new(dir: &Path) -> Result<Launcher> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::Check(format!("locating the ferry executable failed: {e}")))?;
        let log_level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
        Ok(Launcher {
            exe,
            dir: dir.to_owned(),
            log_level,
            started: Mutex::new(Vec::new()),
        })
    }

    /// (name, pid) of every child started so far, running or finished.
    pub fn started(&self) -> Vec<(String, u32)> {
        self.started.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Start `ferry args...` with stdout piped, stderr to `logs/NAME.log`.
    pub fn spawn(&self, name: &str, args: &[&str]) -> Result<(Proc, std::process::ChildStdout)> {
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(io_at(&logs))?;
        let log = logs.join(format!("{name}.log"));
        let mut child = Command::new(&self.exe)
            .args(args)
            .current_dir(&self.dir)
            .env(EXIT_WITH_PARENT, "1")
            .env("RUST_LOG", &self.log_level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(File::create(&log).map_err(io_at(&log))?))
            .spawn()
            .map_err(|e| Error::Check(format!("starting {name} (ferry {args:?}) failed: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let pid = child.id();
        if let Ok(mut started) = self.started.lock() {
            started.push((name.to_owned(), pid));
        }
        let child = Arc::new(Mutex::new(child));
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&child));
        }
        let proc = Proc {
            log,
            child,
            _stdin: stdin,
        };
        let stdout =
            stdout.ok_or_else(|| Error::Check(format!("{name}: no stdout pipe to read")))?;
        Ok((proc, stdout))
    }

    /// Start a server and read its address from its first stdout line
    /// (`{"listening":"ADDR"}` or `... http://ADDR`).
    pub fn server(&self, name: &str, args: &[&str]) -> Result<(Proc, SocketAddr)> {
        let (proc, stdout) = self.spawn(name, args)?;
        let (tx, rx) = mpsc::channel();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        let first = rx.recv_timeout(START_TIMEOUT).ok();
        match first.as_deref().and_then(address_in) {
            Some(addr) => Ok((proc, addr)),
            None => Err(Error::Check(format!(
                "{name}: expected its address on the first stdout line within {START_TIMEOUT:?}, \
                 got {first:?}; log {}:\n{}",
                proc.log.display(),
                tail(&proc.log, 20)
            ))),
        }
    }

    /// Run `ferry args...` to its end (at most `limit`): its exit status and stdout.
    pub fn run(&self, name: &str, args: &[&str], limit: Duration) -> Result<(ExitStatus, String)> {
        let (proc, mut stdout) = self.spawn(name, args)?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let start = Instant::now();
        // Poll rather than block in wait(), so the signal handler can take the lock.
        let status = loop {
            let done = proc.child.lock().ok().and_then(|mut c| c.try_wait().ok());
            if let Some(Some(status)) = done {
                break status;
            }
            if start.elapsed() > limit {
                return Err(Error::Check(format!(
                    "{name}: expected it to finish within {limit:?}; stopped it. Log {}:\n{}",
                    proc.log.display(),
                    tail(&proc.log, 20)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = reader.join().unwrap_or_default();
        Ok((status, out))
    }
}

/// The address in a server's first line: the JSON `listening` field, or after `://`.
fn address_in(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v.get("listening")?.as_str()?.parse().ok();
    }
    let (_, rest) = line.rsplit_once("://")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::address_in;

    #[test]
    fn addresses_are_read_from_json_and_url_lines() {
        let a = "127.0.0.1:4000".parse().ok();
        assert_eq!(address_in(r#"{"listening":"127.0.0.1:4000"}"#), a);
        assert_eq!(address_in("serving img on http://127.0.0.1:4000"), a);
        assert_eq!(address_in("starting"), None);
    }
}
