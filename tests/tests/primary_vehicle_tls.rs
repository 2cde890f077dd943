//! Mutual TLS on the in-vehicle link, end to end with real processes on 127.0.0.1: both
//! Secondaries serve `[tls]` with a certificate of a vehicle CA and accept only clients whose
//! certificate chains to it; the Primary calls them with `[vehicle_tls]`, trusting that CA
//! alone. A whole update installs over it; plain HTTP, and a Primary whose client certificate
//! another CA issued, get nothing.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::{vehicle_tls_setup, Options, World, FULL, FW, PARTIAL};
use std::io::{Read, Write};
use std::net::TcpStream;

#[test]
fn an_update_installs_over_mutual_tls_and_strangers_are_refused_at_the_handshake() {
    let world = World::start(Options {
        vehicle_tls: true,
        ..Options::default()
    });
    let b = world.base.as_path();

    // Plain HTTP on the TLS port: no HTTP answer.
    let mut tcp = TcpStream::connect(world.secondaries[0].addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    tcp.write_all(b"GET /info HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    // A Primary whose client certificate another CA issued is refused by every Secondary.
    vehicle_tls_setup(b, "xca", "stranger");
    let config = std::fs::read_to_string(b.join("primary.toml")).unwrap();
    std::fs::write(
        b.join("primary.toml"),
        config
            .replace("pri-tls/cert.pem", "stranger/cert.pem")
            .replace("pri-tls/key.pem", "stranger/key.pem"),
    )
    .unwrap();
    world.assign_all();
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains(&format!("ECU {FULL}")), "{out}");
    // The Secondary ends the handshake (the other CA's signature does not verify).
    assert!(out.stderr.contains("fatal alert"), "{out}");
    world.assert_nothing_installed();

    // The vehicle's own certificate: the update installs on every ECU.
    std::fs::write(b.join("primary.toml"), config).unwrap();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    for serial in [FULL, PARTIAL] {
        let reported = world.reported(serial);
        assert_eq!(
            reported["installed_image"]["filepath"], FW,
            "{serial}: {reported}"
        );
    }
}
