//! Connections that send no request in time are closed (`ConnectionLimits`), over real TCP:
//! otherwise each such client holds one of the Director's file descriptors for as long as it
//! likes. The limit here is short; the reads wait up to [`WAIT`], which is below the 30 s
//! default, so a limit that was not applied fails these tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::server::{Server, Transport, WAIT};
use common::tls::no_images;
use ferry_director::http::ConnectionLimits;
use reqwest::blocking::Client;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const LIMIT: Duration = Duration::from_millis(500);

fn start() -> Server {
    let limits = ConnectionLimits {
        header_read_timeout: LIMIT,
    };
    Server::spawn_limited(Transport::Http, limits, Client::new(), no_images(), ())
}

fn connect(server: &Server) -> TcpStream {
    let tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp
}

/// Everything the server sends until it closes the connection; fails if it is still open
/// after [`WAIT`].
fn until_closed(tcp: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    match tcp.read_to_end(&mut received) {
        Ok(_) => received,
        // Closing with bytes of ours unread makes the kernel reset the connection.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => received,
        Err(e) => panic!("the connection was not closed within {WAIT:?}: {e}"),
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_dropped() {
    let server = start();
    let mut slow = connect(&server);
    // A request line and one header, then nothing: the head never ends.
    slow.write_all(b"GET /api/v1/vehicles/VIN-1/metadata/timestamp.json HTTP/1.1\r\nHost: d\r\n")
        .unwrap();
    let received = until_closed(&mut slow);
    assert!(
        !received.starts_with(b"HTTP/1.1 2"),
        "an unfinished request was served: {}",
        String::from_utf8_lossy(&received)
    );

    // The server goes on serving.
    let mut next = connect(&server);
    next.write_all(b"GET /nowhere HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = until_closed(&mut next);
    assert!(
        reply.starts_with(b"HTTP/1.1 404"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn a_kept_alive_connection_left_idle_is_closed() {
    let server = start();
    let mut idle = connect(&server);
    // One whole request, keep-alive (HTTP/1.1's default), then silence.
    idle.write_all(b"GET /nowhere HTTP/1.1\r\nHost: d\r\n\r\n")
        .unwrap();
    let received = until_closed(&mut idle);
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(
        text.contains("no such route"),
        "the request was answered in full before the close: {text}"
    );
}

#[test]
fn a_connection_that_never_sends_a_byte_is_closed() {
    let server = start();
    let mut silent = connect(&server);
    assert!(until_closed(&mut silent).is_empty());
}
