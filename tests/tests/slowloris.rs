//! Slow clients against every Ferry server, as real processes on 127.0.0.1: the Director,
//! `ferry repo serve` and a Secondary, each under short limits
//! ([`primary_common::SHORT_LIMITS`]: heads and bodies 2 s, 50 connections per address).
//!
//! A few hundred connections from 127.0.0.1 each send half a request head or a whole head
//! and a trickle of its body, and then nothing. Meanwhile a request from 127.0.0.2 (all of
//! 127/8 is loopback) is answered; every slow connection is closed by the server within
//! [`WAIT`] (the limits are a fraction of it); then 127.0.0.1 itself is served again, and a
//! whole update cycle of the vehicle succeeds under the same limits.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::{Options, World, VIN};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Slow connections per server.
const ATTACKERS: usize = 300;
/// How long a slow connection may stay open before the test fails: well past the 2 s limits.
const WAIT: Duration = Duration::from_secs(30);

/// A TCP connection to `to` from the local address `from` (port chosen by the kernel).
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let tcp = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((from, 0))).unwrap();
        socket.connect(to).await.unwrap().into_std().unwrap()
    });
    tcp.set_nonblocking(false).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    tcp
}

/// What the server sent before it closed `tcp`; fails if it is still open after [`WAIT`].
fn until_closed(tcp: &mut TcpStream, what: &str) -> String {
    let mut received = Vec::new();
    match tcp.read_to_end(&mut received) {
        Ok(_) => {}
        // Closing with bytes of ours unread makes the kernel reset the connection.
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("{what}: a slow connection was still open after {WAIT:?}: {e}"),
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// One whole request from `from`: the status line's code.
fn request(from: [u8; 4], to: SocketAddr, head: &str) -> u16 {
    let mut tcp = connect_from(from, to);
    tcp.write_all(head.as_bytes()).unwrap();
    let answer = until_closed(&mut tcp, "a legitimate request");
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

/// The slow requests: every other one stops inside its head; the rest send a whole head
/// announcing `slow_body` (when the server has a route that reads one) and 10 bytes of it.
fn attack(to: SocketAddr, slow_body: Option<&str>) -> Vec<TcpStream> {
    (0..ATTACKERS)
        .map(|i| {
            let mut tcp = connect_from([127, 0, 0, 1], to);
            let text = match slow_body {
                Some(head) if i % 2 == 1 => {
                    format!("{head}Content-Length: 1000000\r\n\r\n0123456789")
                }
                _ => "GET /metadata/root.json HTTP/1.1\r\nHost: a\r\n".to_owned(),
            };
            // A connection over the per-address cap may be closed before this is written.
            let _ = tcp.write_all(text.as_bytes());
            tcp
        })
        .collect()
}

/// Attack `to`; a request from another address is served meanwhile, every slow connection is
/// closed within [`WAIT`] (a cut-off body answered 408), and 127.0.0.1 is served again.
fn survives(name: &str, to: SocketAddr, slow_body: Option<&str>, legit: &str) {
    let held = attack(to, slow_body);
    assert_eq!(
        request([127, 0, 0, 2], to, legit),
        200,
        "{name}: served during the attack"
    );
    let mut cut_bodies = 0;
    for mut tcp in held {
        let answer = until_closed(&mut tcp, name);
        assert!(
            !answer.starts_with("HTTP/1.1 2"),
            "{name}: a slow request was served: {answer}"
        );
        if answer.starts_with("HTTP/1.1 408") {
            assert!(
                answer.contains("request body check failed"),
                "{name}: {answer}"
            );
            cut_bodies += 1;
        }
    }
    if slow_body.is_some() {
        assert!(cut_bodies > 0, "{name}: no slow body was answered 408");
    }
    assert_eq!(
        request([127, 0, 0, 1], to, legit),
        200,
        "{name}: served after the attack"
    );
    println!("{name}: {ATTACKERS} slow connections closed, {cut_bodies} bodies cut off with 408");
}

#[test]
fn slow_clients_are_cut_off_and_everyone_else_is_served() {
    let world = World::start(Options {
        short_limits: true,
        ..Options::default()
    });
    let token = std::fs::read_to_string(world.base.join("device.token")).unwrap();
    let token = token.trim();

    let director = world.director.addr;
    survives(
        "director",
        director,
        Some(&format!(
            "PUT /api/v1/vehicles/{VIN}/manifest HTTP/1.1\r\nHost: d\r\nAuthorization: Bearer {token}\r\n"
        )),
        &format!(
            "GET /api/v1/vehicles/{VIN}/metadata/1.root.json HTTP/1.1\r\nHost: d\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    survives(
        "ferry repo serve",
        world.repo.addr,
        None,
        "GET /metadata/1.root.json HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
    );
    survives(
        "secondary",
        world.secondaries[0].addr,
        Some("PUT /metadata HTTP/1.1\r\nHost: s\r\n"),
        "GET /info HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
    );

    // The same limits let a whole update through.
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
}
