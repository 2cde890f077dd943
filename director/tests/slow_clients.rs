//! Connections that send no request or body in time are closed, and one address holds at
//! most its share of connections (`ferry_http::Limits`), over real TCP:
//! otherwise each such client holds one of the Director's file descriptors for as long as it
//! likes. The limit here is short; the reads wait up to [`WAIT`], which is below the 30 s
//! default, so a limit that was not applied fails these tests.
#![allow(clippy::unwrap_used)]

mod common;

use common::server::{Server, Transport, WAIT};
use common::tls::no_images;
use ferry_director::http::Limits;
use reqwest::blocking::Client;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const LIMIT: Duration = Duration::from_millis(500);

fn start() -> Server {
    let limits = Limits {
        header_read_timeout: LIMIT,
        ..Limits::DEFAULT
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

/// A server whose bodies get `LIMIT` and must then keep up 1 KiB/s, and that takes `cap`
/// connections per address.
fn start_with(cap: usize) -> Server {
    let limits = Limits {
        header_read_timeout: WAIT,
        body_timeout: LIMIT,
        min_body_rate: 1024,
        connections_per_address: cap,
    };
    Server::spawn_limited(Transport::Http, limits, Client::new(), no_images(), ())
}

/// Everything the server answered, as text, once it closed the connection.
fn answer(tcp: &mut TcpStream) -> String {
    String::from_utf8_lossy(&until_closed(tcp)).into_owned()
}

#[test]
fn a_manifest_body_that_trickles_is_cut_off_with_408() {
    let server = start_with(8);
    let car = server.register("VIN-SLOW");
    let mut slow = connect(&server);
    let head = format!(
        "PUT /api/v1/vehicles/{}/manifest HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"signatures\"",
        car.vin, car.token
    );
    slow.write_all(head.as_bytes()).unwrap();
    // Then nothing: the body never reaches its announced length.
    let text = answer(&mut slow);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request body check failed"), "{text}");
    assert!(text.contains("1 s per 1024 bytes"), "{text}");
    assert_eq!(
        server.manifests(&car.vin),
        0,
        "nothing of a cut-off body is kept"
    );
}

#[test]
fn an_unauthenticated_upload_is_refused_before_its_body_is_read() {
    let server = start_with(8);
    let car = server.register("VIN-AUTH");
    // 100 MB announced, not one byte of it sent: the answer comes from the head alone.
    for (token, status) in [
        (String::new(), "401"),
        ("Authorization: Bearer wrong\r\n".to_owned(), "401"),
    ] {
        let mut tcp = connect(&server);
        let head = format!(
            "PUT /api/v1/vehicles/{}/manifest HTTP/1.1\r\nHost: d\r\n{token}\
             Content-Length: 100000000\r\n\r\n",
            car.vin
        );
        tcp.write_all(head.as_bytes()).unwrap();
        let text = answer(&mut tcp);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{text}");
        assert!(text.contains("device token check failed"), "{text}");
    }
    // The same for an admin write.
    let mut tcp = connect(&server);
    tcp.write_all(
        b"POST /api/v1/admin/vehicles HTTP/1.1\r\nHost: d\r\nContent-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    let text = answer(&mut tcp);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("admin token check failed"), "{text}");

    // Authenticated and too large: 413 in Ferry's words, naming the limit.
    let mut tcp = connect(&server);
    let head = format!(
        "PUT /api/v1/vehicles/{}/manifest HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100000000\r\n\r\n",
        car.vin, car.token
    );
    tcp.write_all(head.as_bytes()).unwrap();
    let text = answer(&mut tcp);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.contains("request body check failed: the body is over 1048576 bytes"),
        "{text}"
    );
    assert!(text.contains("a vehicle manifest"), "{text}");
}

#[test]
fn one_address_holds_at_most_its_cap_and_others_are_served() {
    const CAP: usize = 4;
    let server = start_with(CAP);
    // Idle connections from 127.0.0.1 (the head timeout here is WAIT, so they stay).
    let held: Vec<TcpStream> = (0..CAP).map(|_| connect(&server)).collect();
    // The next one from the same address is closed without an answer (connections are
    // accepted in order, so the held ones are counted first).
    let mut over = connect(&server);
    let _ = over.write_all(b"GET /nowhere HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
    assert_eq!(
        answer(&mut over),
        "",
        "a connection over the cap was served"
    );

    // Another address (all of 127/8 is loopback) is served meanwhile.
    let other = std::net::SocketAddr::from(([127, 0, 0, 2], 0));
    let mut next = bind_and_connect(other, server.addr);
    next.write_all(b"GET /nowhere HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(answer(&mut next).starts_with("HTTP/1.1 404"));

    // A closed connection frees its slot (once the server has seen it close).
    drop(held);
    let served = (0..200).any(|_| {
        let mut again = connect(&server);
        let _ = again.write_all(b"GET /nowhere HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n");
        let served = answer(&mut again).starts_with("HTTP/1.1 404");
        if !served {
            std::thread::sleep(Duration::from_millis(100));
        }
        served
    });
    assert!(served, "slots of closed connections were never freed");
}

/// A TCP connection to `to` from the local address `from`.
fn bind_and_connect(from: std::net::SocketAddr, to: std::net::SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let tcp = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(from).unwrap();
        socket.connect(to).await.unwrap().into_std().unwrap()
    });
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp
}
