//! A whole vehicle and backend as real processes on 127.0.0.1, set up only through the CLIs:
//! an Image repository (`ferry repo ... serve`), a Director (`ferry director init`, offline
//! root, tokens, `serve`), the vehicle registered and assigned with `ferry admin`, two
//! `ferry-secondary` daemons (one full, one partial verification) and `ferry-primary`.
#![allow(dead_code, clippy::unwrap_used)]

pub mod attack;
pub mod forged;
pub mod mitm;
pub mod proxy;

use ferry_tests::bins::binary;
use ferry_tests::daemon::Daemon;
use ferry_tests::process::{run_bounded, Output};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(120);
pub const VIN: &str = "WVW-E2E-1";
pub const PRIMARY: &str = "ivi-1";
pub const FULL: &str = "tcu-full";
pub const PARTIAL: &str = "tcu-partial";
/// The primary's app: 1 MiB, so a download can be cut in the middle.
pub const APP: &str = "apps/demo-2.tar";
pub const FW: &str = "tcu/fw-2.bin";

pub fn app_bytes() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 251) as u8).collect()
}

pub fn ferry() -> PathBuf {
    binary("ferry-tools", "ferry")
}

pub fn run(dir: &Path, program: &Path, args: &[&str]) -> Output {
    run_bounded(Command::new(program).current_dir(dir).args(args), TIMEOUT)
}

pub fn ferry_ok(dir: &Path, args: &[&str]) -> Output {
    let out = run(dir, &ferry(), args);
    assert_eq!(out.code, 0, "ferry {args:?}\n{out}");
    out
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(path, perms).unwrap();
}

/// Options of a world.
#[derive(Debug, Default, Clone, Copy)]
pub struct Options {
    /// Pin the partial Secondary to a key that is not the Director's targets key.
    pub wrong_partial_key: bool,
    /// Serve the Director over mutual TLS: the vehicle authenticates with a device
    /// certificate from the fleet CA, the operator with an operator certificate.
    pub tls: bool,
    /// Sign the Image repository's targets role with two keys, threshold two (`t1.pem`,
    /// `t2.pem` in the base directory), so one stolen key is not enough.
    pub image_targets_threshold_2: bool,
    /// Short connection limits on the Director, `ferry repo serve` and both Secondaries
    /// ([`SHORT_LIMITS`]), for the slow-client tests.
    pub short_limits: bool,
    /// The full Secondary's app health check always fails, so its install rolls back.
    pub full_install_fails: bool,
    /// Mutual TLS on the in-vehicle link: both Secondaries serve `[tls]` with a certificate of
    /// a vehicle CA (`vca.pem`), the Primary calls them with `[vehicle_tls]` and a client
    /// certificate of that CA (`pri-tls/`).
    pub vehicle_tls: bool,
    /// The Director root carries the PURE-2 offline-update roles, signed by
    /// `d/keys/offline-update.pem` (which `ferry director init` makes).
    pub offline_roles: bool,
    /// More TOML for the full Secondary's config (a domain's section, say).
    pub full_extra_toml: Option<&'static str>,
    /// The Director keeps its data in this PostgreSQL database (`[database] url`) instead of
    /// SQLite (see [`postgres_database`]).
    pub postgres: Option<&'static str>,
    /// `ferry repo serve` logs every request (RUST_LOG debug for the repository server), so a
    /// test can count what reached the Image repository ([`World::repo_requests`]).
    pub log_requests: bool,
}

/// A fresh PostgreSQL database for a world's Director, or `None` (printed why) when no
/// server can be had.
pub fn postgres_database(test: &str) -> Option<&'static str> {
    ferry_director::store::postgres::cluster::test_database(test)
        .map(|url| &*Box::leak(url.into_boxed_str()))
}

/// The `[http]` lines of [`Options::short_limits`]: heads and bodies get 2 s, one address 50
/// connections.
pub const SHORT_LIMITS: &str = "header_read_timeout = \"2s\"\nbody_timeout = \"2s\"\n\
                                min_body_rate = 1024\nconnections_per_address = 50\n";

/// Where the Primary reaches each party, and its download limits.
#[derive(Debug, Clone, Copy)]
pub struct PrimaryLinks<'a> {
    pub image_url: &'a str,
    pub director_url: &'a str,
    /// The full and the partial Secondary.
    pub secondary_urls: [&'a str; 2],
    /// The `[download]` section's lines.
    pub download: &'a str,
}

#[derive(Debug)]
pub struct World {
    _tmp: tempfile::TempDir,
    pub base: PathBuf,
    pub repo: Daemon,
    pub director: Daemon,
    pub secondaries: Vec<Daemon>,
    pub director_url: String,
    tls: bool,
    vehicle_tls: bool,
    write_token: PathBuf,
    read_token: PathBuf,
}

impl World {
    pub fn start(options: Options) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let b = base.as_path();

        // The Image repository, with the primary's app and the TCUs' firmware.
        let mut init = vec!["repo", "init", "img"];
        if options.image_targets_threshold_2 {
            for key in ["t1.pem", "t2.pem"] {
                let gen = ["key", "gen", "--type", "ed25519", "--out", key];
                ferry_ok(b, &[&gen[..], &["--insecure-plaintext"]].concat());
            }
            init.extend(["--key", "targets=t1.pem", "--key", "targets=t2.pem"]);
            init.extend(["--threshold", "targets=2"]);
        }
        ferry_ok(b, &init);
        std::fs::write(b.join("demo.tar"), app_bytes()).unwrap();
        std::fs::write(b.join("fw.bin"), b"tcu firmware 2").unwrap();
        add_target(
            b,
            "demo.tar",
            APP,
            &[
                "--hardware-id",
                "ivi",
                "--software-name",
                "demo",
                "--version",
                "2",
                "--release-counter",
                "2",
            ],
        );
        add_target(b, "fw.bin", FW, &["--hardware-id", "tcu", "--version", "2"]);
        ferry_ok(b, &["repo", "publish", "img"]);
        let mut cmd = Command::new(ferry());
        cmd.args(["repo", "serve"])
            .arg(b.join("img"))
            .args(["--listen", "127.0.0.1:0"]);
        if options.short_limits {
            cmd.args(["--header-read-timeout", "2s", "--body-timeout", "2s"])
                .args(["--connections-per-address", "50"]);
        }
        if options.log_requests {
            cmd.env("RUST_LOG", "ferry_image_repo=debug");
        }
        let repo = Daemon::start(cmd);

        // The Director: online keys from init, root version 1 signed by an offline key.
        ferry_ok(b, &["director", "init", "d", "--listen", "127.0.0.1:0"]);
        if let Some(url) = options.postgres {
            // Before anything is stored (the admin tokens are): everything goes to PostgreSQL.
            let config = b.join("d/director.toml");
            let mut text = std::fs::read_to_string(&config).unwrap();
            text.push_str(&format!("\n[database]\nurl = \"{url}\"\n"));
            std::fs::write(&config, text).unwrap();
        }
        ferry_ok(
            b,
            &[
                "key",
                "gen",
                "--type",
                "ed25519",
                "--out",
                "root.key",
                "--insecure-plaintext",
            ],
        );
        ferry_ok(
            b,
            &[
                "director",
                "root",
                "init",
                "--root-key",
                "root.key",
                "--targets-key",
                "d/keys/targets.pem",
                "--snapshot-key",
                "d/keys/snapshot.pem",
                "--timestamp-key",
                "d/keys/timestamp.pem",
                "--out",
                "d/roots/1.root.json",
            ]
            .into_iter()
            .chain(
                options
                    .offline_roles
                    .then_some(["--offline-update-key", "d/keys/offline-update.pem"])
                    .into_iter()
                    .flatten(),
            )
            .collect::<Vec<_>>(),
        );
        let token = |name: &str, scope: &str| {
            let out = ferry_ok(
                b,
                &[
                    "director",
                    "token",
                    "create",
                    "--config",
                    "d/director.toml",
                    "--name",
                    name,
                    "--scope",
                    scope,
                    "--json",
                ],
            );
            let v: Value = serde_json::from_str(&out.stdout).unwrap();
            let path = b.join(format!("{name}.token"));
            private_file(&path, v["token"].as_str().unwrap());
            path
        };
        let write_token = token("ops", "write");
        let read_token = token("dashboard", "read");
        let config = b.join("d/director.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        if options.short_limits {
            let at = text.find("[http]").unwrap();
            text.truncate(at);
            text.push_str(&format!("[http]\n{SHORT_LIMITS}"));
        }
        text.push_str(&format!(
            "\n[image_repo]\nurl = \"http://{}\"\nroot = \"../img/metadata/1.root.json\"\n",
            repo.addr
        ));
        if options.tls {
            tls_setup(b);
            text.push_str(
                "\n[tls]\nca_cert = \"../ca.pem\"\ncert = \"server.pem\"\nkey = \"server.key\"\n",
            );
        }
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(ferry());
        cmd.args(["director", "serve", "--config"])
            .arg(&config)
            .arg("--json");
        let director = Daemon::start(cmd);
        let scheme = if options.tls { "https" } else { "http" };
        let director_url = format!("{scheme}://{}", director.addr);

        // ECU keys, and the vehicle registered with them.
        for ecu in [PRIMARY, FULL, PARTIAL, "wrong"] {
            ferry_ok(
                b,
                &[
                    "key",
                    "gen",
                    "--type",
                    "ed25519",
                    "--out",
                    &format!("{ecu}.key"),
                    "--insecure-plaintext",
                ],
            );
        }
        let mut world = World {
            _tmp: tmp,
            base: base.clone(),
            repo,
            director,
            secondaries: Vec::new(),
            director_url,
            tls: options.tls,
            vehicle_tls: options.vehicle_tls,
            write_token,
            read_token,
        };
        let out = world.admin(
            true,
            &[
                "vehicle",
                "add",
                "--vin",
                VIN,
                "--primary",
                &format!("{PRIMARY}:ivi:{PRIMARY}.key"),
                "--secondary",
                &format!("{FULL}:tcu:{FULL}.key"),
                "--secondary",
                &format!("{PARTIAL}:tcu:{PARTIAL}.key"),
            ],
        );
        assert_eq!(out.code, 0, "{out}");
        private_file(&b.join("device.token"), out.stdout.trim());
        if options.tls {
            ferry_ok(
                b,
                &[
                    "director",
                    "issue-cert",
                    "--config",
                    "d/director.toml",
                    "--vin",
                    VIN,
                    "--out-dir",
                    "vehicle-cert",
                    "--ca-cert",
                    "ca.pem",
                    "--ca-key",
                    "ca.key",
                ],
            );
        }

        // The partial Secondary pins the Director's targets key (public half).
        let pinned = if options.wrong_partial_key {
            "wrong.key"
        } else {
            "d/keys/targets.pem"
        };
        let out = ferry_ok(b, &["key", "pub", pinned, "--json"]);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        std::fs::write(b.join("director-targets.pub.json"), v["public"].to_string()).unwrap();

        if options.vehicle_tls {
            vehicle_tls_setup(b, "vca", "pri-tls");
        }
        for (serial, mode) in [(FULL, "full"), (PARTIAL, "partial")] {
            if options.offline_roles && mode == "partial" {
                // PURE-2: a partial Secondary pins the offline-update-targets key too.
                let out = ferry_ok(b, &["key", "pub", "d/keys/offline-update.pem", "--json"]);
                let v: Value = serde_json::from_str(&out.stdout).unwrap();
                std::fs::write(b.join("offline-targets.pub.json"), v["public"].to_string())
                    .unwrap();
            }
            let anchors = if mode == "full" {
                "director_root = \"d/roots/1.root.json\"\nimage_root = \"img/metadata/1.root.json\"\n"
            } else if options.offline_roles {
                "director_targets_key = \"director-targets.pub.json\"\n\
                 offline_targets_key = \"offline-targets.pub.json\"\n"
            } else {
                "director_targets_key = \"director-targets.pub.json\"\n"
            };
            let toml = format!(
                "vin = \"{VIN}\"\nserial = \"{serial}\"\nhardware_id = \"tcu\"\nkey = \"{serial}.key\"\n\
                 listen = \"127.0.0.1:0\"\ndata_dir = \"{serial}-state\"\nverification = \"{mode}\"\n\
                 {anchors}apps_dir = \"{serial}-apps\"\n"
            );
            let toml = if options.full_install_fails && serial == FULL {
                format!("{toml}app_health_check = [\"false\"]\n")
            } else {
                toml
            };
            let toml = if options.short_limits {
                format!("{toml}\n[http]\n{SHORT_LIMITS}")
            } else {
                toml
            };
            let toml = if options.vehicle_tls {
                format!(
                    "{toml}\n[tls]\ncert = \"sec-tls.pem\"\nkey = \"sec-tls.key\"\nclient_ca = \"vca.pem\"\n"
                )
            } else {
                toml
            };
            let toml = match options.full_extra_toml {
                Some(extra) if serial == FULL => format!("{toml}\n{extra}\n"),
                _ => toml,
            };
            let path = b.join(format!("{serial}.toml"));
            std::fs::write(&path, toml).unwrap();
            let mut cmd = Command::new(binary("ferry-secondary", "ferry-secondary"));
            cmd.arg("--config").arg(&path).env("RUST_LOG", "info");
            world.secondaries.push(Daemon::start(cmd));
        }
        let image_url = format!("http://{}", world.repo.addr);
        world.write_primary_config(&image_url);
        world
    }

    /// primary.toml, with the Image repository at `image_url` (a proxy, in some tests).
    pub fn write_primary_config(&self, image_url: &str) {
        let scheme = if self.vehicle_tls { "https" } else { "http" };
        let secondaries = [
            format!("{scheme}://{}", self.secondaries[0].addr),
            format!("{scheme}://{}", self.secondaries[1].addr),
        ];
        self.write_primary_config_with(PrimaryLinks {
            image_url,
            director_url: &self.director_url,
            secondary_urls: [&secondaries[0], &secondaries[1]],
            download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
        });
    }

    /// Stop the Director and start it again on the same config (a new port): a root placed
    /// in roots_dir is imported at start. The Primary is pointed at the new address.
    pub fn restart_director(&mut self) {
        self.director.kill9();
        let mut cmd = Command::new(ferry());
        cmd.args(["director", "serve", "--config"])
            .arg(self.base.join("d/director.toml"))
            .arg("--json");
        self.director = Daemon::start(cmd);
        let scheme = if self.tls { "https" } else { "http" };
        self.director_url = format!("{scheme}://{}", self.director.addr);
        let image_url = format!("http://{}", self.repo.addr);
        self.write_primary_config(&image_url);
    }

    /// primary.toml with every link given (a man in the middle on any of them, in attack
    /// tests) and the `[download]` section's body.
    pub fn write_primary_config_with(&self, links: PrimaryLinks<'_>) {
        let auth = if self.tls {
            "ca_cert = \"ca.pem\"\ncert = \"vehicle-cert/cert.pem\"\nkey = \"vehicle-cert/key.pem\"\n"
        } else {
            "token_file = \"device.token\"\n"
        };
        let vehicle_tls = if self.vehicle_tls {
            "[vehicle_tls]\nca_cert = \"vca.pem\"\ncert = \"pri-tls/cert.pem\"\nkey = \"pri-tls/key.pem\"\n"
        } else {
            ""
        };
        let PrimaryLinks {
            image_url,
            director_url,
            secondary_urls: [full, partial],
            download,
        } = links;
        let toml = format!(
            "vin = \"{VIN}\"\ndata_dir = \"primary-state\"\npoll_interval = \"1s\"\n\
             [director]\nurl = \"{director_url}\"\nroot = \"d/roots/1.root.json\"\n{auth}\
             [image_repo]\nurl = \"{image_url}\"\nroot = \"img/metadata/1.root.json\"\n\
             [ecu]\nserial = \"{PRIMARY}\"\nhardware_id = \"ivi\"\nkey = \"{PRIMARY}.key\"\napps_dir = \"{PRIMARY}-apps\"\n\
             [[secondaries]]\nserial = \"{FULL}\"\nurl = \"{full}\"\n\
             [[secondaries]]\nserial = \"{PARTIAL}\"\nurl = \"{partial}\"\n\
             {vehicle_tls}[download]\n{download}",
        );
        std::fs::write(self.base.join("primary.toml"), toml).unwrap();
    }

    /// The write-scope admin token's secret.
    pub fn write_token(&self) -> String {
        std::fs::read_to_string(&self.write_token)
            .unwrap()
            .trim()
            .to_owned()
    }

    /// `ferry admin ...` with the write (or read) admin token.
    pub fn admin(&self, write: bool, args: &[&str]) -> Output {
        let token = if write {
            &self.write_token
        } else {
            &self.read_token
        };
        let mut full = vec![
            "admin",
            "--url",
            &self.director_url,
            "--token-file",
            token.to_str().unwrap(),
        ];
        if self.tls {
            full.extend([
                "--ca-cert",
                "ca.pem",
                "--client-cert",
                "op/cert.pem",
                "--client-key",
                "op/key.pem",
            ]);
        }
        full.extend_from_slice(args);
        run(&self.base, &ferry(), &full)
    }

    /// Assign `ECU=TARGET` pairs.
    pub fn assign(&self, pairs: &[(&str, &str)]) {
        let specs: Vec<String> = pairs.iter().map(|(e, t)| format!("{e}={t}")).collect();
        let mut args = vec!["assign", VIN];
        for s in &specs {
            args.extend(["--target", s.as_str()]);
        }
        let out = self.admin(true, &args);
        assert_eq!(out.code, 0, "{out}");
    }

    /// Assign the app to the primary and the firmware to both Secondaries.
    pub fn assign_all(&self) {
        self.assign(&[(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)]);
    }

    /// `ferry-primary --config primary.toml check --json`.
    pub fn check(&self) -> Output {
        run(
            &self.base,
            &binary("ferry-primary", "ferry-primary"),
            &["--config", "primary.toml", "check", "--json"],
        )
    }

    /// `ferry-primary status --json`.
    pub fn primary_status(&self) -> Value {
        let out = run(
            &self.base,
            &binary("ferry-primary", "ferry-primary"),
            &["--config", "primary.toml", "status", "--json"],
        );
        assert_eq!(out.code, 0, "{out}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `ferry admin status VIN --json`: the Director's view from the last accepted manifest.
    pub fn director_status(&self) -> Value {
        let out = self.admin(false, &["status", VIN, "--json"]);
        assert_eq!(out.code, 0, "{out}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// `GET /status` of Secondary `serial` (FULL or PARTIAL).
    pub fn secondary_status(&self, serial: &str) -> Value {
        let i = usize::from(serial == PARTIAL);
        let (status, body) = http(self.secondaries[i].addr, "GET", "/status", None, b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// What the Director last heard from ECU `serial`.
    pub fn reported(&self, serial: &str) -> Value {
        let status = self.director_status();
        status["vehicle"]["ecus"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["serial"] == serial)
            .unwrap_or_else(|| panic!("no ECU {serial} in {status}"))["reported"]
            .clone()
    }

    /// Nothing installed on any ECU, as each ECU says (primary status) and on disk.
    pub fn assert_nothing_installed(&self) {
        let status = self.primary_status();
        for ecu in status["ecus"].as_array().unwrap() {
            assert!(ecu["status"]["installed"].is_null(), "{ecu}");
        }
        for serial in [PRIMARY, FULL, PARTIAL] {
            let apps = self.base.join(format!("{serial}-apps"));
            let entries = std::fs::read_dir(&apps).map(|d| d.count()).unwrap_or(0);
            assert_eq!(entries, 0, "{} is not empty", apps.display());
        }
    }

    /// Re-add `name` (from `file` in the base directory) with `args`, and publish.
    /// Nothing of a refused image is left anywhere: the Primary streams without a copy of its
    /// own, and every ECU dropped what it received.
    pub fn assert_nothing_staged(&self) {
        for staging in [
            "primary-state/staging",
            "primary-state/ecu/staging",
            "tcu-full-state/staging",
            "tcu-partial-state/staging",
        ] {
            let left: Vec<_> = std::fs::read_dir(self.base.join(staging))
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{staging}: {left:?}");
        }
    }

    pub fn republish(&self, file: &str, name: &str, args: &[&str]) {
        add_target(&self.base, file, name, args);
        ferry_ok(&self.base, &["repo", "publish", "img"]);
    }

    /// How many requests the Image repository server logged whose path contains `needle`
    /// (needs [`Options::log_requests`]).
    pub fn repo_requests(&self, needle: &str) -> usize {
        self.repo
            .stderr()
            .lines()
            .filter(|l| l.contains(" request") && l.contains("path=") && l.contains(needle))
            .count()
    }

    /// Every stored copy of target `name` under img/targets (consistent snapshots keep one
    /// file per hash: `dir/HASH.file`).
    pub fn stored_target_files(&self, name: &str) -> Vec<PathBuf> {
        let (dir, file) = name.rsplit_once('/').unwrap_or(("", name));
        let dir = self.base.join("img/targets").join(dir);
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .ends_with(&format!(".{file}"))
                    || p.file_name().unwrap() == file
            })
            .collect();
        assert!(
            !files.is_empty(),
            "no stored copy of {name} in {}",
            dir.display()
        );
        files
    }
}

/// A fleet CA, the Director's server certificate for 127.0.0.1 and an operator certificate.
fn tls_setup(b: &Path) {
    let ca = ["--ca-cert", "ca.pem", "--ca-key", "ca.key"];
    ferry_ok(
        b,
        &[
            "director",
            "ca",
            "init",
            "--out-cert",
            "ca.pem",
            "--out-key",
            "ca.key",
            "--insecure-plaintext",
        ],
    );
    let mut args = vec!["director", "ca", "server-cert"];
    args.extend(ca);
    args.extend([
        "--name",
        "127.0.0.1",
        "--out-cert",
        "d/server.pem",
        "--out-key",
        "d/server.key",
    ]);
    ferry_ok(b, &args);
    let mut args = vec![
        "director",
        "issue-cert",
        "--operator",
        "ops",
        "--out-dir",
        "op",
    ];
    args.extend(ca);
    ferry_ok(b, &args);
}

/// A CA `{ca}.pem`/`{ca}.key` for the in-vehicle link, the Secondaries' server certificate
/// `sec-tls.pem` (for 127.0.0.1) and a client certificate for the Primary in `{client}/`.
pub fn vehicle_tls_setup(b: &Path, ca: &str, client: &str) {
    let (cert, key) = (format!("{ca}.pem"), format!("{ca}.key"));
    ferry_ok(
        b,
        &[
            "director",
            "ca",
            "init",
            "--out-cert",
            &cert,
            "--out-key",
            &key,
            "--insecure-plaintext",
        ],
    );
    let with_ca = ["--ca-cert", cert.as_str(), "--ca-key", key.as_str()];
    if !b.join("sec-tls.pem").exists() {
        let mut args = vec!["director", "ca", "server-cert", "--name", "127.0.0.1"];
        args.extend(["--out-cert", "sec-tls.pem", "--out-key", "sec-tls.key"]);
        args.extend(with_ca);
        ferry_ok(b, &args);
    }
    let mut args = vec![
        "director",
        "issue-cert",
        "--operator",
        "primary",
        "--out-dir",
        client,
    ];
    args.extend(with_ca);
    ferry_ok(b, &args);
}

pub fn add_target(base: &Path, file: &str, name: &str, args: &[&str]) {
    let mut full = vec!["repo", "add-target", "img", file, "--name", name];
    full.extend_from_slice(args);
    ferry_ok(base, &full);
}

/// One HTTP/1.1 request on its own connection; returns the status and the body.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, answer[split + 4..].to_vec())
}
