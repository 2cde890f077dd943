//! The relay's uplink as the test controls it: a TCP link from the relay to one backend
//! server that the test cuts (every open connection severed, new ones refused, as when the
//! link goes down), restores, or lets carry only so many bytes more before it fails (a link
//! lost in the middle of a download). Every request line and Range header that crossed it
//! is recorded.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Uplink {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bytes the link still carries toward the relay; negative: no limit.
    budget: Arc<AtomicI64>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    /// Request lines and Range headers seen, lower-cased, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Uplink {
    /// A link listening on `bind` (an IP address of the backend host) toward `to`.
    pub fn start(bind: &str, to: SocketAddr) -> Uplink {
        let listener = TcpListener::bind((bind, 0)).unwrap();
        let link = Uplink {
            addr: listener.local_addr().unwrap(),
            up: Arc::new(AtomicBool::new(true)),
            budget: Arc::new(AtomicI64::new(-1)),
            open: Arc::default(),
            seen: Arc::default(),
        };
        let l = link.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !l.up.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                {
                    let mut open = l.open.lock().unwrap();
                    open.push(client.try_clone().unwrap());
                    open.push(server.try_clone().unwrap());
                }
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let seen = l.seen.clone();
                std::thread::spawn(move || pump_requests(client, server, seen));
                let link = l.clone();
                std::thread::spawn(move || link.pump_answers(s2, c2));
            }
        });
        link
    }

    /// The link goes down: open connections die, new ones are refused.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.budget.store(-1, Ordering::SeqCst);
        self.up.store(true, Ordering::SeqCst);
    }

    /// The link carries `bytes` more toward the relay, then goes down.
    pub fn fail_after(&self, bytes: i64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    pub fn saw(&self, needle: &str) -> Vec<String> {
        let needle = needle.to_ascii_lowercase();
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .cloned()
            .collect()
    }

    fn pump_answers(&self, mut from: TcpStream, mut to: TcpStream) {
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let budget = self.budget.load(Ordering::SeqCst);
            let n = if budget >= 0 {
                let allowed = (n as i64).min(budget) as usize;
                self.budget.fetch_sub(allowed as i64, Ordering::SeqCst);
                if allowed < n || budget - allowed as i64 <= 0 {
                    let _ = to.write_all(&buf[..allowed]);
                    self.cut();
                    break;
                }
                allowed
            } else {
                n
            };
            if !self.up.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    }
}

/// Copy the relay's requests upstream, noting request lines and Range headers.
fn pump_requests(mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in String::from_utf8_lossy(&buf[..n]).split("\r\n") {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("get ")
                || lower.starts_with("put ")
                || lower.starts_with("range:")
                || lower.starts_with("if-range:")
            {
                seen.lock().unwrap().push(lower);
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
