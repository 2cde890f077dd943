//! A long-running process under test (a server): started with its first stdout line naming
//! the address it bound (`... http://ADDR` or `{"listening": "ADDR"}`), stderr kept for
//! failure messages, killed on drop so no test leaves a process behind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a server may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    /// Every stdout line, the first included (a server may print a second address).
    stdout: Arc<Mutex<Vec<String>>>,
}

/// The address in a server's first line: after `http://` or `https://`, or the JSON
/// `listening` field.
fn address_in(line: &str) -> Option<SocketAddr> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v.get("listening")?.as_str()?.parse().ok();
    }
    let (_, rest) = line.rsplit_once("://")?;
    rest.trim().trim_end_matches('/').parse().ok()
}

impl Daemon {
    /// Start `cmd` and wait for its address; panics (with its stderr) if it prints none.
    pub fn start(mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let err = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("stderr buffer");
                s.push_str(&line);
                s.push('\n');
            }
        });
        // Keep reading (and dropping) stdout after the first line so the server never
        // blocks on a full pipe.
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stdout);
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("stdout lines").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let first = rx.recv_timeout(START_TIMEOUT);
        let Some(addr) = first.as_deref().ok().and_then(address_in) else {
            let _ = child.kill();
            let status = child.wait();
            thread::sleep(Duration::from_millis(100));
            panic!(
                "{cmd:?} did not print its address within {START_TIMEOUT:?}: first line \
                 {first:?}, status {status:?}\n--- stderr\n{}",
                stderr.lock().expect("stderr buffer")
            );
        };
        Daemon {
            child,
            addr,
            stderr,
            stdout,
        }
    }

    /// The address in stdout line `n` (0: the first, [`Daemon::addr`]), waiting for it up to
    /// [`START_TIMEOUT`]; panics (with stderr) if none comes.
    pub fn address_on_line(&self, n: usize) -> SocketAddr {
        let start = std::time::Instant::now();
        loop {
            let line = self.stdout.lock().expect("stdout lines").get(n).cloned();
            if let Some(addr) = line.as_deref().and_then(address_in) {
                return addr;
            }
            assert!(
                start.elapsed() < START_TIMEOUT,
                "no address on stdout line {n} (line {line:?})\n--- stderr\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// SIGKILL: no shutdown handler runs, as in a crash or a power cut of the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
