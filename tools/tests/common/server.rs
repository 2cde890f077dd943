//! `python3 -m http.server` on 127.0.0.1 with its request log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::python;

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// `python3 -u -m http.server 0 --bind 127.0.0.1 --directory REPO`, killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
    syncs: AtomicUsize,
}

/// One line of http.server's request log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// URL-decoded path without the leading '/', e.g. "metadata/2.team one.json".
    pub path: String,
    pub status: u16,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let mut child = Command::new(python())
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start http.server");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // "Serving HTTP on 127.0.0.1 port 40759 (http://127.0.0.1:40759/) ..."
                let port = line
                    .split(" port ")
                    .nth(1)
                    .and_then(|r| r.split(' ').next());
                if let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) {
                    let _ = tx.send(port);
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log").push(line);
            }
        });
        let port = match rx.recv_timeout(SERVER_START_TIMEOUT) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "http.server did not report its port: {:?}",
                    log.lock().expect("log")
                );
            }
        };
        Server {
            child,
            port,
            log,
            syncs: AtomicUsize::new(0),
        }
    }

    pub fn metadata_url(&self) -> String {
        format!("http://127.0.0.1:{}/metadata", self.port)
    }

    pub fn targets_url(&self) -> String {
        format!("http://127.0.0.1:{}/targets", self.port)
    }

    /// Position in the log after every request made so far has been logged: a marker request
    /// is sent and awaited, so the log is complete up to here.
    pub fn mark(&self) -> usize {
        let n = self.syncs.fetch_add(1, Ordering::SeqCst);
        let marker = format!("/__sync__/{n}");
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to http.server");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(s, "GET {marker} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send marker");
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let log = self.log.lock().expect("log");
                if let Some(i) = log
                    .iter()
                    .position(|l| l.contains(&format!("\"GET {marker} ")))
                {
                    return i + 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "http.server never logged {marker}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Requests logged between two marks (markers excluded).
    pub fn requests(&self, from: usize, to: usize) -> Vec<Request> {
        let log = self.log.lock().expect("log");
        log[from..to]
            .iter()
            .filter_map(|l| parse_log_line(l))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1 - - [date] "GET /path HTTP/1.1" 200 -` → Request; None for other lines.
fn parse_log_line(line: &str) -> Option<Request> {
    let quoted = line.split('"').nth(1)?;
    let rest = line.split('"').nth(2)?;
    let mut parts = quoted.split(' ');
    let method = parts.next()?.to_string();
    let raw = parts.next()?;
    let status = rest.split_whitespace().next()?.parse().ok()?;
    if raw.starts_with("/__sync__/") {
        return None;
    }
    Some(Request {
        method,
        path: percent_decode(raw.trim_start_matches('/')),
        status,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
