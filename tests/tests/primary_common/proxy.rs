//! A TCP proxy in front of the Image repository server that breaks the first download of one
//! path in the middle of its body, as a dropped mobile connection would. Every request head
//! is recorded so a test can see the client resumed with `Range`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct CutProxy {
    pub addr: SocketAddr,
    /// Every request head, lower-cased.
    pub heads: Arc<Mutex<Vec<String>>>,
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// Ask the server to close after its answer, so each request has its own connection and
/// a cut never lands in a pooled one.
fn close_after(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

impl CutProxy {
    /// Forward to `upstream`; the first request whose path contains `cut_path` gets only
    /// `cut_after` bytes of its response before the connection is dropped.
    pub fn start(upstream: SocketAddr, cut_path: &str, cut_after: usize) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let recorded = heads.clone();
        let cut_done = Arc::new(AtomicBool::new(false));
        let cut_path = cut_path.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let recorded = recorded.clone();
                let cut_done = cut_done.clone();
                let cut_path = cut_path.clone();
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let first_line = head.lines().next().unwrap_or("").to_owned();
                    recorded.lock().unwrap().push(head.to_ascii_lowercase());
                    let cut =
                        first_line.contains(&cut_path) && !cut_done.swap(true, Ordering::SeqCst);
                    let Ok(mut server) = TcpStream::connect(upstream) else {
                        return;
                    };
                    if server.write_all(close_after(&head).as_bytes()).is_err() {
                        return;
                    }
                    let mut sent = 0usize;
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let n = if cut { n.min(cut_after - sent) } else { n };
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                        if cut && sent >= cut_after {
                            break;
                        }
                    }
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        CutProxy { addr, heads }
    }
}
