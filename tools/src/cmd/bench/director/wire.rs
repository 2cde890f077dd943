//! The simulated vehicles' HTTP/1.1: requests written from bytes prepared before the timed
//! window, responses read with a small parser (status line, `Content-Length`, body).
//!
//! Why not a full HTTP client: the vehicles share this machine's cores with the Director, and
//! every cycle they spend building URLs and header maps is taken from the Director being
//! measured. This client does the least a primary must: one TCP connection per check-in (a
//! primary polling every 30 minutes finds its previous connection long closed), its three
//! requests on it back to back, the whole of every response read.

use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head read (the Director's are a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;

/// A request as it goes on the wire, prepared in advance.
#[derive(Debug, Clone)]
pub struct Request(Vec<u8>);

impl Request {
    /// `METHOD path` with the device token and, for a body, its type and length.
    pub fn new(method: &str, path: &str, host: SocketAddr, token: &str, body: &[u8]) -> Request {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n"
        );
        if !body.is_empty() || method != "GET" {
            head.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Request(bytes)
    }
}

/// One connection to the Director.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect to {addr}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Send `request` and read the whole response; anything but a 2xx is an error naming the
    /// status and the Director's message.
    pub async fn send(&mut self, request: &Request, what: &str) -> Result<(), String> {
        self.stream
            .write_all(&request.0)
            .await
            .map_err(|e| format!("{what}: sending: {e}"))?;
        let (status, body) = self.response().await.map_err(|e| format!("{what}: {e}"))?;
        if !(200..300).contains(&status) {
            return Err(format!(
                "{what}: HTTP {status}: {}",
                String::from_utf8_lossy(body)
            ));
        }
        Ok(())
    }

    /// Read one response: its status and body.
    async fn response(&mut self) -> Result<(u16, &[u8]), String> {
        self.buf.clear();
        let head_len = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(format!(
                    "response check failed: no end of headers in {MAX_HEAD} bytes"
                ));
            }
            self.fill().await?;
        };
        let (status, length) = parse_head(&self.buf[..head_len])?;
        while self.buf.len() < head_len + length {
            self.fill().await?;
        }
        Ok((status, &self.buf[head_len..head_len + length]))
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err("response check failed: the connection closed mid-response".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status code and `Content-Length` of a response head. The Director always sends a
/// length (its bodies are complete byte strings); a chunked response is refused by name.
fn parse_head(head: &[u8]) -> Result<(u16, usize), String> {
    let text = std::str::from_utf8(head)
        .map_err(|_| "response check failed: the head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("response check failed: bad status line in {text:?}"))?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "response check failed: transfer-encoding {}; expected a Content-Length",
                value.trim()
            ));
        }
    }
    let length = length.ok_or_else(|| "response check failed: no Content-Length".to_owned())?;
    Ok((status, length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_to_status_and_length() {
        let head =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 12\r\n\r\n";
        assert_eq!(parse_head(head), Ok((200, 12)));
        let head = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(parse_head(head), Ok((404, 0)));
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn requests_carry_the_token_and_body_length() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("address");
        let get = Request::new("GET", "/a", addr, "VIN.s", b"");
        let text = String::from_utf8(get.0).expect("UTF-8");
        assert_eq!(
            text,
            "GET /a HTTP/1.1\r\nhost: 127.0.0.1:8080\r\nauthorization: Bearer VIN.s\r\n\r\n"
        );
        let put = Request::new("PUT", "/m", addr, "VIN.s", b"{}");
        let text = String::from_utf8(put.0).expect("UTF-8");
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
    }
}
