//! A static file server on 127.0.0.1 (an ephemeral port) for tests: an archive-mode OSTree
//! repository is plain files, and `ostree pull` fetches them with HTTP GET, as from any web
//! server. One thread per connection, one request per connection (`Connection: close`),
//! stopped when dropped. Shared by path with ferry-secondary's own tests.

// Test fixture: a failed step is a failed test, with the step named by the panic.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Debug)]
pub struct StaticServer {
    /// `http://127.0.0.1:PORT/`
    pub url: String,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Every request line served, in order.
    requests: Arc<Mutex<Vec<String>>>,
    accept: Option<JoinHandle<()>>,
}

impl StaticServer {
    /// Serve the files under `root`.
    pub fn start(root: &Path) -> StaticServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root, flag, log) = (root.to_owned(), stop.clone(), requests.clone());
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, log) = (root.clone(), log.clone());
                std::thread::spawn(move || serve(conn, &root, &log));
            }
        });
        StaticServer {
            url: format!("http://{addr}/"),
            addr,
            stop,
            requests,
            accept: Some(accept),
        }
    }

    /// The request lines served so far (`GET /objects/ab/cd….commit`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// `root` joined with the request path, or `None` for a path that leaves it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let rel = Path::new(path.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

fn serve(conn: TcpStream, root: &Path, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The headers: read and ignored, up to the blank line (bounded).
    let mut header = String::new();
    for _ in 0..100 {
        header.clear();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let line = line.trim().to_owned();
    log.lock().unwrap().push(line.clone());
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let file = resolve(root, path)
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::read(p).ok());
    let mut out = conn;
    let (status, body) = match (method, file) {
        ("GET" | "HEAD", Some(bytes)) => ("200 OK", bytes),
        ("GET" | "HEAD", None) => ("404 Not Found", Vec::new()),
        _ => ("405 Method Not Allowed", Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = out.write_all(head.as_bytes());
    if method == "GET" {
        let _ = out.write_all(&body);
    }
    let _ = out.flush();
}
