//! A man in the middle as a TCP proxy: in front of a repository (a malicious mirror) or of a
//! Secondary (the in-vehicle network). Each request's first line goes to a rule that says
//! what the attacker does with it; every request line and request body is recorded, so a
//! test can replay what the vehicle sent.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the attacker does with one request.
#[derive(Debug, Clone)]
pub enum Act {
    /// Pass it through untouched.
    Forward,
    /// Answer 200 with these bytes instead of the server's (substituted metadata).
    Serve(Vec<u8>),
    /// Forward, but hand the answer back one byte per `delay` (slow retrieval).
    Trickle(Duration),
    /// Answer 200 with no length and a body that never ends (endless data).
    Endless,
    /// Forward the request with the byte at body offset `n` flipped (a tampered transfer).
    FlipRequestByte(usize),
}

/// One request the proxy saw: its first line and the body it had.
#[derive(Debug, Clone)]
pub struct Seen {
    pub line: String,
    pub body: Vec<u8>,
}

type Rule = dyn Fn(&str) -> Act + Send + Sync;

#[derive(Debug)]
pub struct Mitm {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mitm {
    /// Proxy to `upstream`, asking `rule` about every request line (`PUT /path HTTP/1.1`).
    pub fn start(upstream: SocketAddr, rule: impl Fn(&str) -> Act + Send + Sync + 'static) -> Mitm {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let rule: Arc<Rule> = Arc::new(rule);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (rule, record) = (rule.clone(), record.clone());
                std::thread::spawn(move || serve(client, upstream, &*rule, &record));
            }
        });
        Mitm { addr, seen }
    }

    /// Bodies of the requests whose line contains `needle`, oldest first.
    pub fn bodies(&self, needle: &str) -> Vec<Vec<u8>> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.line.contains(needle))
            .map(|s| s.body.clone())
            .collect()
    }
}

/// The request head (up to the blank line), read byte by byte so no body byte is consumed.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })
}

/// One request per connection upstream: `Connection: close`, so the server ends each answer
/// by closing and the proxy never has to parse a response.
fn close_after(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

fn serve(mut client: TcpStream, upstream: SocketAddr, rule: &Rule, record: &Mutex<Vec<Seen>>) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let line = head.lines().next().unwrap_or("").to_owned();
    let act = rule(&line);
    // A body with a length is read whole (manifests, metadata); a chunked one (an image
    // streamed to a Secondary) is passed through as it comes.
    let mut body = vec![0u8; content_length(&head).unwrap_or(0)];
    if client.read_exact(&mut body).is_err() {
        return;
    }
    record.lock().unwrap().push(Seen {
        line: line.clone(),
        body: body.clone(),
    });
    match act {
        Act::Serve(bytes) => {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                bytes.len()
            );
            let _ = client.write_all(answer.as_bytes());
            let _ = client.write_all(&bytes);
        }
        Act::Endless => {
            let _ = client.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let zeros = [0u8; 16 * 1024];
            while client.write_all(&zeros).is_ok() {}
        }
        Act::Forward | Act::Trickle(_) | Act::FlipRequestByte(_) => {
            let Ok(mut server) = TcpStream::connect(upstream) else {
                return;
            };
            if let Act::FlipRequestByte(n) = act {
                if let Some(b) = body.get_mut(n) {
                    *b ^= 0x20;
                }
            }
            if server.write_all(close_after(&head).as_bytes()).is_err()
                || server.write_all(&body).is_err()
            {
                return;
            }
            pass_rest_of_request(&client, &server, &act);
            let delay = match act {
                Act::Trickle(d) => Some(d),
                _ => None,
            };
            copy_answer(&mut server, &mut client, delay);
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// Whatever else the client sends (a chunked body) goes upstream from another thread; with
/// `FlipRequestByte`, the byte at that offset of the stream after the head is flipped.
fn pass_rest_of_request(client: &TcpStream, server: &TcpStream, act: &Act) {
    let (Ok(mut from), Ok(mut to)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let flip = match act {
        Act::FlipRequestByte(n) => Some(*n),
        _ => None,
    };
    std::thread::spawn(move || {
        let mut offset = 0usize;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(at) = flip.filter(|at| (offset..offset + n).contains(at)) {
                buf[at - offset] ^= 0x20;
            }
            offset += n;
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
}

fn copy_answer(server: &mut TcpStream, client: &mut TcpStream, delay: Option<Duration>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let Some(delay) = delay else {
            if client.write_all(&buf[..n]).is_err() {
                return;
            }
            continue;
        };
        for byte in &buf[..n] {
            if client.write_all(std::slice::from_ref(byte)).is_err() {
                return;
            }
            std::thread::sleep(delay);
        }
    }
}
