//! A gateway relay (`ferry relay serve`) in front of a [`World`]'s backend, reached by the
//! vehicle instead of the backend, over uplinks the test can cut ([`uplink::Uplink`]). With
//! network namespaces, the relay and the vehicle's Primary each run in their own
//! ([`netns`], [`vehicle`]), the vehicle's only route out being the relay.
#![allow(dead_code, clippy::unwrap_used)]

pub mod netns;
pub mod uplink;
pub mod vehicle;

use crate::primary_common::{ferry, ferry_ok, run, PrimaryLinks, World, TIMEOUT};
use ferry_tests::daemon::Daemon;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use uplink::Uplink;

pub const RELAY: &str = "yard-7";
/// 100 MiB, as the issue asks of the shared target.
pub const BIG: &str = "apps/big.tar";
pub const BIG_LEN: usize = 100 << 20;

pub fn big_bytes() -> Vec<u8> {
    (0..BIG_LEN as u32).map(|i| (i % 253) as u8).collect()
}

#[derive(Debug)]
pub struct Site {
    pub relay: Daemon,
    /// Where the test's own tools reach the relay.
    pub addr: std::net::SocketAddr,
    /// The relay's URL as the vehicle reaches it.
    pub url: String,
    pub config: PathBuf,
    pub director_link: Uplink,
    pub repo_link: Uplink,
    /// The Secondaries' addresses on the in-vehicle network (forwarders to their
    /// 127.0.0.1 ports), when the Primary runs in the vehicle's namespace.
    pub in_vehicle: Vec<Uplink>,
    /// The vehicle's own network namespace, where the Primary runs.
    pub vehicle: Option<vehicle::VehicleHost>,
    /// The relay's own network namespace; `None`: all on 127.0.0.1 (it could not be made).
    /// Dropped after the relay, which runs in it.
    pub host: Option<netns::RelayHost>,
}

impl Site {
    /// Register relay [`RELAY`] with the Director, start it behind two uplinks, and point
    /// the World's vehicle at it.
    pub fn start(world: &World) -> Site {
        let out = world.admin(true, &["relay", "add", RELAY, "--out", "relay.token"]);
        assert_eq!(out.code, 0, "{out}");
        let host = match netns::RelayHost::make() {
            Ok(host) => Some(host),
            Err(why) => {
                println!("relay test: no network namespace ({why}); falling back to 127.0.0.1, the uplink cut as a TCP link");
                None
            }
        };
        let vehicle = host.as_ref().and_then(|h| match vehicle::VehicleHost::make(h) {
            Ok(v) => Some(v),
            Err(why) => {
                println!("relay test: no vehicle namespace ({why}); the Primary runs in the test's namespace");
                None
            }
        });
        // In its namespace the relay listens on every link: the vehicles' and the test's.
        let (backend_ip, listen_ip) = match &host {
            Some(h) => (h.uplink_backend_ip.as_str(), "0.0.0.0"),
            None => ("127.0.0.1", "127.0.0.1"),
        };
        // The backend's servers listen on 127.0.0.1; these links are their addresses on the
        // uplink (in a namespace: the backend host's end of the veth).
        let director_link = Uplink::start(backend_ip, world.director.addr);
        let repo_link = Uplink::start(backend_ip, world.repo.addr);
        let config = world.base.join("relay.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{listen_ip}:0\"\ncache_dir = \"relay-cache\"\ncache_max = \"1GiB\"\n\
                 retry_every = \"1s\"\n[upstream]\ndirector = \"http://{}\"\n\
                 image_repo = \"http://{}\"\ntoken_file = \"relay.token\"\n\
                 connect_timeout = \"2s\"\nread_timeout = \"10s\"\n",
                director_link.addr, repo_link.addr
            ),
        )
        .unwrap();
        let relay = start_relay(&config, host.as_ref());
        let in_vehicle = match &vehicle {
            Some(v) => world
                .secondaries
                .iter()
                .map(|s| Uplink::start(&v.in_vehicle_ip, s.addr))
                .collect(),
            None => Vec::new(),
        };
        let (addr, url) = addresses(&relay, host.as_ref(), vehicle.as_ref());
        let site = Site {
            relay,
            addr,
            url,
            config,
            director_link,
            repo_link,
            in_vehicle,
            vehicle,
            host,
        };
        site.point_vehicle(world);
        site
    }

    /// primary.toml with both repositories at the relay (and, with a vehicle namespace, the
    /// Secondaries at their in-vehicle addresses).
    pub fn point_vehicle(&self, world: &World) {
        let secondary = |i: usize| match self.in_vehicle.get(i) {
            Some(link) => format!("http://{}", link.addr),
            None => format!("http://{}", world.secondaries[i].addr),
        };
        let secondaries = [secondary(0), secondary(1)];
        world.write_primary_config_with(PrimaryLinks {
            image_url: &self.url,
            director_url: &self.url,
            secondary_urls: [&secondaries[0], &secondaries[1]],
            download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
        });
    }

    /// kill -9 the relay and start it again on the same config and cache (a new port).
    pub fn crash_and_restart(&mut self, world: &World) {
        self.relay.kill9();
        self.relay = start_relay(&self.config, self.host.as_ref());
        (self.addr, self.url) = addresses(&self.relay, self.host.as_ref(), self.vehicle.as_ref());
        self.point_vehicle(world);
    }

    /// The uplink goes down: `ip link set down` in the relay's namespace, or (without one)
    /// both TCP links severed.
    pub fn cut(&self) {
        match &self.host {
            Some(host) => host.uplink(false),
            None => {
                self.director_link.cut();
                self.repo_link.cut();
            }
        }
    }

    pub fn restore(&self) {
        if let Some(host) = &self.host {
            host.uplink(true);
        }
        self.director_link.restore();
        self.repo_link.restore();
    }

    /// `ferry relay status --json`.
    pub fn status(&self, base: &Path) -> Value {
        let addr = self.addr.to_string();
        let out = ferry_ok(
            base,
            &[
                "relay",
                "status",
                "--config",
                self.config.to_str().unwrap(),
                "--addr",
                &addr,
                "--json",
            ],
        );
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// Wait (up to [`TIMEOUT`]) until the relay's queue is empty.
    pub fn wait_drained(&self, base: &Path) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status(base);
            if status["queue_length"] == 0 {
                return status;
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "the queue did not drain: {status}\n--- relay\n{}",
                self.relay.stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A GET through the relay with a plain client: status and body.
    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        crate::primary_common::http(self.addr, "GET", path, None, b"")
    }

    /// `ferry-primary --config primary.toml check --json`, in the vehicle's namespace when
    /// there is one.
    pub fn check(&self, world: &World) -> ferry_tests::process::Output {
        self.check_config(world, "primary.toml")
    }

    /// `ferry-primary --config CONFIG check --json`, as [`Site::check`].
    pub fn check_config(&self, world: &World, config: &str) -> ferry_tests::process::Output {
        let primary = ferry_tests::bins::binary("ferry-primary", "ferry-primary");
        let args = ["--config", config, "check", "--json"];
        match &self.vehicle {
            Some(v) => {
                let mut full = vec!["netns", "exec", v.name.as_str(), primary.to_str().unwrap()];
                full.extend_from_slice(&args);
                run(&world.base, Path::new("ip"), &full)
            }
            None => run(&world.base, &primary, &args),
        }
    }
}

/// Where the test reaches `relay`, and its URL for the vehicle: in namespaces, its addresses
/// on the test's link and on the vehicles' (it listens on both); else its one address.
fn addresses(
    relay: &Daemon,
    host: Option<&netns::RelayHost>,
    vehicle: Option<&vehicle::VehicleHost>,
) -> (std::net::SocketAddr, String) {
    let port = relay.addr.port();
    let addr = match host {
        Some(h) => format!("{}:{port}", h.site_relay_ip).parse().unwrap(),
        None => relay.addr,
    };
    let url = match vehicle {
        Some(v) => format!("http://{}:{port}", v.relay_ip),
        None => format!("http://{addr}"),
    };
    (addr, url)
}

pub fn start_relay(config: &Path, host: Option<&netns::RelayHost>) -> Daemon {
    let mut cmd = match host {
        Some(h) => h.command(&ferry()),
        None => Command::new(ferry()),
    };
    cmd.args(["relay", "serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "ferry_relay=debug");
    Daemon::start(cmd)
}

/// A second vehicle, VIN-2: one primary ECU `ivi-2` (hardware ivi), no Secondary, behind the
/// relay. Returns its config file name.
pub fn second_vehicle(world: &World, site: &Site) -> &'static str {
    let b = world.base.as_path();
    ferry_ok(
        b,
        &[
            "key",
            "gen",
            "--type",
            "ed25519",
            "--out",
            "ivi-2.key",
            "--insecure-plaintext",
        ],
    );
    let out = world.admin(
        true,
        &[
            "vehicle",
            "add",
            "--vin",
            "VIN-2",
            "--primary",
            "ivi-2:ivi:ivi-2.key",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let token = b.join("device2.token");
    std::fs::write(&token, out.stdout.trim()).unwrap();
    let mut perms = std::fs::metadata(&token).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&token, perms).unwrap();
    let url = &site.url;
    std::fs::write(
        b.join("primary2.toml"),
        format!(
            "vin = \"VIN-2\"\ndata_dir = \"primary2-state\"\npoll_interval = \"1s\"\n\
             [director]\nurl = \"{url}\"\nroot = \"d/roots/1.root.json\"\ntoken_file = \"device2.token\"\n\
             [image_repo]\nurl = \"{url}\"\nroot = \"img/metadata/1.root.json\"\n\
             [ecu]\nserial = \"ivi-2\"\nhardware_id = \"ivi\"\nkey = \"ivi-2.key\"\napps_dir = \"ivi-2-apps\"\n\
             [download]\nmin_bytes_per_sec = 1\nspeed_grace = \"60s\"\n"
        ),
    )
    .unwrap();
    "primary2.toml"
}

/// The consistent-snapshot path of target `name` below /targets/ (`dir/HASH.file`).
pub fn stored_path(world: &World, name: &str) -> String {
    let file = world.stored_target_files(name).pop().unwrap();
    let (dir, _) = name.rsplit_once('/').unwrap_or(("", name));
    let file = file.file_name().unwrap().to_str().unwrap().to_owned();
    if dir.is_empty() {
        file
    } else {
        format!("{dir}/{file}")
    }
}
