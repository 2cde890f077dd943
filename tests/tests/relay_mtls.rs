//! A gateway relay on mutual TLS (issue #20): real `ferry director serve` over mutual TLS,
//! `ferry repo serve`, `ferry relay serve` and the vehicle's daemons on 127.0.0.1. The relay
//! is its own certificate of the fleet CA toward the Director (no token in its config) and
//! serves vehicles over mutual TLS with their device certificates. The Director takes the
//! relay's certificate only while it is registered and unrevoked, never as a vehicle's and
//! never on the admin API. The Director records which relay a vehicle's manifests came
//! through, so `ferry admin relay pack --relay NAME` needs no `--vin` for it.
#![allow(clippy::unwrap_used)]

mod primary_common;
mod relay_common;

use ferry_tests::daemon::Daemon;
use primary_common::{ferry_ok, Options, PrimaryLinks, World, FULL, PARTIAL, PRIMARY, VIN};
use relay_common::uplink::Uplink;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;

const RELAY: &str = "yard-7";

/// `ferry director issue-cert --relay NAME` into `NAME-cert/`.
fn issue_relay_cert(base: &Path, name: &str) -> String {
    let dir = format!("{name}-cert");
    ferry_ok(
        base,
        &[
            "director",
            "issue-cert",
            "--relay",
            name,
            "--ca-cert",
            "ca.pem",
            "--ca-key",
            "ca.key",
            "--out-dir",
            &dir,
        ],
    );
    dir
}

/// A relay on mutual TLS both ways, with the client certificate in `cert_dir`.
struct MtlsSite {
    relay: Daemon,
    config: std::path::PathBuf,
    plain: SocketAddr,
    tls: SocketAddr,
    director_link: Uplink,
}

impl MtlsSite {
    fn start(world: &World, cert_dir: &str) -> MtlsSite {
        let b = world.base.as_path();
        if !b.join("relay-server.pem").exists() {
            ferry_ok(
                b,
                &[
                    "director",
                    "ca",
                    "server-cert",
                    "--ca-cert",
                    "ca.pem",
                    "--ca-key",
                    "ca.key",
                    "--name",
                    "127.0.0.1",
                    "--out-cert",
                    "relay-server.pem",
                    "--out-key",
                    "relay-server.key",
                ],
            );
        }
        // The Director's server certificate names 127.0.0.1, so the cuttable link is there too.
        let director_link = Uplink::start("127.0.0.1", world.director.addr);
        let config = b.join(format!("relay-{cert_dir}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ncache_dir = \"cache-{cert_dir}\"\ncache_max = \"1GiB\"\n\
                 retry_every = \"1s\"\n[upstream]\ndirector = \"https://{}\"\n\
                 image_repo = \"http://{}\"\nca_cert = \"ca.pem\"\ncert = \"{cert_dir}/cert.pem\"\n\
                 key = \"{cert_dir}/key.pem\"\nconnect_timeout = \"2s\"\nread_timeout = \"10s\"\n\
                 [tls]\nlisten = \"127.0.0.1:0\"\nca_cert = \"ca.pem\"\ncert = \"relay-server.pem\"\n\
                 key = \"relay-server.key\"\n",
                director_link.addr, world.repo.addr
            ),
        )
        .unwrap();
        let relay = relay_common::start_relay(&config, None);
        let tls = relay.address_on_line(1);
        let site = MtlsSite {
            config,
            plain: relay.addr,
            tls,
            relay,
            director_link,
        };
        // The vehicle keeps its device certificate and the fleet CA; only the URLs change.
        let secondaries = [
            format!("http://{}", world.secondaries[0].addr),
            format!("http://{}", world.secondaries[1].addr),
        ];
        world.write_primary_config_with(PrimaryLinks {
            image_url: &format!("http://{}", site.plain),
            director_url: &format!("https://{}", site.tls),
            secondary_urls: [&secondaries[0], &secondaries[1]],
            download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
        });
        site
    }

    fn status(&self, base: &Path) -> Value {
        let out = ferry_ok(
            base,
            &[
                "relay",
                "status",
                "--config",
                self.config.to_str().unwrap(),
                "--addr",
                &self.plain.to_string(),
                "--json",
            ],
        );
        serde_json::from_str(&out.stdout).unwrap()
    }
}

/// A client trusting the fleet CA and presenting the certificate in `dir`.
fn client(base: &Path, dir: &str) -> reqwest::blocking::Client {
    let ca = std::fs::read(base.join("ca.pem")).unwrap();
    let mut pem = std::fs::read(base.join(dir).join("cert.pem")).unwrap();
    pem.extend(std::fs::read(base.join(dir).join("key.pem")).unwrap());
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GET `url` with `headers`: status and body text.
fn get(client: &reqwest::blocking::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn register(world: &World, name: &str, cert_dir: &str) {
    let out = world.admin(
        true,
        &[
            "relay",
            "add",
            name,
            "--out",
            &format!("{name}.token"),
            "--cert",
            &format!("{cert_dir}/cert.pem"),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
}

fn tls_world() -> World {
    World::start(Options {
        tls: true,
        ..Options::default()
    })
}

#[test]
fn a_vehicle_behind_a_relay_on_mutual_tls_installs_and_its_queued_manifest_reaches_the_director() {
    let world = tls_world();
    let cert_dir = issue_relay_cert(&world.base, RELAY);
    register(&world, RELAY, &cert_dir);
    let site = MtlsSite::start(&world, &cert_dir);
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}\n--- relay\n{}", site.relay.stderr());
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "updated", "{report}");
    for serial in [PRIMARY, FULL, PARTIAL] {
        assert!(
            world.reported(serial)["installed_image"]["filepath"].is_string(),
            "{serial}"
        );
    }
    let director = world.director_status();
    for a in director["assignments"].as_array().unwrap() {
        assert_eq!(a["status"], "installed", "{director}");
    }
    // The vehicle's manifest went through the relay (its request log).
    let logged = site.relay.stderr();
    assert!(
        logged.contains(&format!("/api/v1/vehicles/{VIN}/manifest")),
        "{logged}"
    );

    // Uplink down: the cycle completes on the last copies, the manifest queues; uplink up:
    // the relay vouches for the vehicle with its certificate and the Director takes it.
    let before = world.admin(false, &["manifests", "list", VIN, "--json"]);
    let before: Value = serde_json::from_str(&before.stdout).unwrap();
    site.director_link.cut();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}\n--- relay\n{}", site.relay.stderr());
    assert!(out.stderr.contains("queued by a relay"), "{out}");
    assert_eq!(site.status(&world.base)["queue_length"], 1);
    site.director_link.restore();
    let start = std::time::Instant::now();
    while site.status(&world.base)["queue_length"] != 0 {
        assert!(
            start.elapsed() < primary_common::TIMEOUT,
            "the queue did not drain\n--- relay\n{}",
            site.relay.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let after = world.admin(false, &["manifests", "list", VIN, "--json"]);
    let after: Value = serde_json::from_str(&after.stdout).unwrap();
    assert_eq!(
        after.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1,
        "{after}"
    );
    assert_eq!(site.status(&world.base)["forwarded"], 1);

    // The Director knows the relay's site: a pack names no VIN and carries this vehicle.
    let out = world.admin(
        true,
        &[
            "relay",
            "pack",
            "--relay",
            RELAY,
            "--image-repo",
            &format!("http://{}", world.repo.addr),
            "--out",
            "site-pack",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let packed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(packed["vehicles"], serde_json::json!([VIN]), "{packed}");
}

#[test]
fn a_relay_certificate_speaks_for_vehicles_only_while_registered_and_never_as_an_operator() {
    let world = tls_world();
    let b = world.base.as_path();
    let cert_dir = issue_relay_cert(b, RELAY);
    register(&world, RELAY, &cert_dir);
    let listed = world.admin(false, &["relay", "list", "--json"]);
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(
        listed["relays"][0]["cert_sha256"].as_str().map(str::len),
        Some(64),
        "{listed}"
    );
    let relay = client(b, &cert_dir);
    let metadata = format!(
        "{}/api/v1/vehicles/{VIN}/metadata/timestamp.json",
        world.director_url
    );

    // Registered: it vouches for a vehicle, and is no vehicle itself.
    let (status, body) = get(&relay, &metadata, &[("ferry-relayed-vin", VIN)]);
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&relay, &metadata, &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("relay check failed"), "{body}");

    // Never an operator, whatever admin token it holds.
    let admin = relay
        .get(format!("{}/api/v1/admin/vehicles", world.director_url))
        .bearer_auth(world.write_token())
        .send()
        .unwrap();
    let status = admin.status().as_u16();
    let body = admin.text().unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin certificate check failed"), "{body}");

    // A certificate registered under another name is refused at registration.
    let out = world.admin(
        true,
        &[
            "relay",
            "add",
            "depot-2",
            "--out",
            "depot-2.token",
            "--cert",
            &format!("{cert_dir}/cert.pem"),
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("relay certificate check failed"),
        "{out}"
    );

    // A relay certificate of the fleet CA that was never registered: the vehicle behind it
    // (real relay, real vehicle certificate) is refused, the refusal naming the check.
    let stranger = issue_relay_cert(b, "stranger");
    let site = MtlsSite::start(&world, &stranger);
    let vehicle = client(b, "vehicle-cert");
    let through = format!(
        "https://{}/api/v1/vehicles/{VIN}/metadata/timestamp.json",
        site.tls
    );
    let (status, body) = get(&vehicle, &through, &[]);
    assert_eq!(status, 403, "{body}\n--- relay\n{}", site.relay.stderr());
    assert!(body.contains("relay certificate check failed"), "{body}");
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    drop(site);

    // Registered relay, through the real relay: accepted; revoked: refused, naming the check.
    let site = MtlsSite::start(&world, &cert_dir);
    let through = format!(
        "https://{}/api/v1/vehicles/{VIN}/metadata/timestamp.json",
        site.tls
    );
    let (status, body) = get(&vehicle, &through, &[]);
    assert_eq!(status, 200, "{body}\n--- relay\n{}", site.relay.stderr());
    // The relay checks the vehicle's certificate as the Director would: another VIN is refused.
    let other = through.replace(VIN, "VIN-OTHER");
    let (status, body) = get(&vehicle, &other, &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("device certificate check failed"), "{body}");
    let out = world.admin(true, &["relay", "revoke", RELAY]);
    assert_eq!(out.code, 0, "{out}");
    let (status, body) = get(&relay, &metadata, &[("ferry-relayed-vin", VIN)]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("relay certificate check failed"), "{body}");
    let (status, body) = get(&vehicle, &through, &[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("relay certificate check failed"), "{body}");
}
