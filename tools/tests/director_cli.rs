//! The Director as an operator runs it, through the `ferry` CLI only: init, an offline root,
//! tokens, `ferry director serve`, `ferry admin ...`, a root rotation that changes an online
//! key (the vehicle walks to the new root and verifies metadata signed with the new key), and
//! the configurations `serve` refuses.
#![allow(clippy::unwrap_used)]

mod director_common;

use director_common::{ferry_in, ferry_ok, DirectorDir};
use ferry_core::TrustedSet;
use ferry_core::{Clock, SystemClock};
use ferry_tests::vehicle_sim::SimVehicle;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::path::Path;

fn write_pub(dir: &Path, name: &str, key: &ferry_keys::PrivateKey) -> String {
    let path = dir.join(name);
    std::fs::write(&path, key.public_key().to_spki_pem().unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

fn admin(dir: &DirectorDir, url: &str, token: &str, args: &[&str]) -> director_common::Output {
    let token_file = dir.base.join(format!("{}.token", &token[..8]));
    std::fs::write(&token_file, token).unwrap();
    let mut full = vec![
        "admin",
        "--url",
        url,
        "--token-file",
        token_file.to_str().unwrap(),
    ];
    full.extend_from_slice(args);
    ferry_in(&dir.base, &full)
}

#[test]
fn an_operator_registers_lists_shows_and_reads_status_through_ferry_admin() {
    let dir = DirectorDir::init();
    let director = dir.serve();
    let v = SimVehicle::new("WVW-CLI-1", 1);
    let p = write_pub(&dir.base, "p.pub.pem", &v.ecus[0].key);
    let s = write_pub(&dir.base, "s.pub.pem", &v.ecus[1].key);
    let primary = format!("{}:ivi:{p}", v.ecus[0].serial);
    let secondary = format!("{}:tcu:{s}", v.ecus[1].serial);

    // A read-only token cannot register.
    let out = admin(
        &dir,
        &director.url,
        &dir.read_token,
        &["vehicle", "add", "--vin", &v.vin, "--primary", &primary],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("answered 403"), "{out}");
    assert!(out.stderr.contains("admin token check failed"), "{out}");

    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &[
            "vehicle",
            "add",
            "--vin",
            &v.vin,
            "--primary",
            &primary,
            "--secondary",
            &secondary,
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let device_token = out.stdout.trim().to_owned();
    assert!(device_token.starts_with("WVW-CLI-1."), "{out}");

    // The device token works on the device API; the vehicle reports once.
    let (status, _) = director.metadata(&v.vin, "timestamp.json", &device_token);
    assert_eq!(status, StatusCode::OK);
    let status = director
        .put_manifest(&v.vin, &device_token, v.manifest("n-1"))
        .unwrap();
    assert!(status.is_success(), "{status}");

    let out = admin(
        &dir,
        &director.url,
        &dir.read_token,
        &["vehicle", "list", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list[0]["vin"], v.vin, "{list}");

    let out = admin(&dir, &director.url, &dir.read_token, &["vehicle", "list"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("WVW-CLI-1"), "{out}");

    let out = admin(
        &dir,
        &director.url,
        &dir.read_token,
        &["vehicle", "show", &v.vin],
    );
    assert_eq!(out.code, 0, "{out}");
    for needle in [
        v.ecus[0].serial.as_str(),
        v.ecus[1].serial.as_str(),
        "factory.img",
        "rootfs-image.version=1.0",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle}: {out}");
    }

    let out = admin(
        &dir,
        &director.url,
        &dir.read_token,
        &["status", &v.vin, "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        status["vehicle"]["status"]["state"], "up_to_date",
        "{status}"
    );

    let out = admin(
        &dir,
        &director.url,
        &dir.read_token,
        &["vehicle", "show", "NO-SUCH-VIN"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("answered 404"), "{out}");
}

#[test]
fn a_root_rotation_with_a_new_timestamp_key_is_followed_by_the_vehicle() {
    let dir = DirectorDir::init();
    let v = SimVehicle::new("WVW-ROT-1", 0);
    let token = {
        let director = dir.serve();
        director.register(&dir.write_token, &v.registration())
    };
    let root1 = std::fs::read(dir.base.join("d/roots/1.root.json")).unwrap();

    // Offline: a new root key and a new timestamp key; version 2 signed by old and new.
    ferry_ok(
        &dir.base,
        &[
            "key",
            "gen",
            "--type",
            "ed25519",
            "--out",
            "root2.key",
            "--insecure-plaintext",
        ],
    );
    ferry_ok(
        &dir.base,
        &[
            "key",
            "gen",
            "--type",
            "ecdsa-p256",
            "--out",
            "ts2.pem",
            "--insecure-plaintext",
        ],
    );
    // Signed by the new root key alone: refused before anything is written.
    let out = ferry_in(
        &dir.base,
        &[
            "director",
            "root",
            "rotate",
            "--previous",
            "d/roots/1.root.json",
            "--sign-key",
            "root2.key",
            "--root-key",
            "root2.key",
            "--timestamp-key",
            "ts2.pem",
            "--out",
            "bad.root.json",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(!dir.base.join("bad.root.json").exists());
    ferry_ok(
        &dir.base,
        &[
            "director",
            "root",
            "rotate",
            "--previous",
            "d/roots/1.root.json",
            "--sign-key",
            "root.key",
            "--root-key",
            "root2.key",
            "--timestamp-key",
            "ts2.pem",
            "--out",
            "2.root.json",
        ],
    );
    ferry_ok(
        &dir.base,
        &[
            "director",
            "root",
            "import",
            "--config",
            "d/director.toml",
            "2.root.json",
        ],
    );

    // The old timestamp key is no longer authorised: serve refuses to start.
    let out = ferry_in(
        &dir.base,
        &["director", "serve", "--config", "d/director.toml"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("online key check failed"), "{out}");

    // Swap the key in the config (file mode stays 0600), restart: everything is re-signed.
    std::fs::rename(
        dir.base.join("ts2.pem"),
        dir.base.join("d/keys/timestamp.pem"),
    )
    .unwrap();
    let director = dir.serve();
    let (status, root2) = director.metadata(&v.vin, "2.root.json", &token);
    assert_eq!(status, StatusCode::OK);
    let mut trusted = TrustedSet::new(&root1, SystemClock.now()).unwrap();
    trusted.update_root(&root2).unwrap();
    let (status, ts) = director.metadata(&v.vin, "timestamp.json", &token);
    assert_eq!(status, StatusCode::OK);
    trusted.update_timestamp(&ts).unwrap();
    let (_, snapshot) = director.metadata(&v.vin, "snapshot.json", &token);
    trusted.update_snapshot(&snapshot, false).unwrap();
    let (_, targets) = director.metadata(&v.vin, "targets.json", &token);
    trusted.update_targets(&targets, "targets", "root").unwrap();
}

#[test]
fn serve_refuses_a_readable_key_file_and_a_public_address_without_tls() {
    let dir = DirectorDir::init();
    let key = dir.base.join("d/keys/snapshot.pem");
    let mut perms = std::fs::metadata(&key).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&key, perms.clone()).unwrap();
    let out = ferry_in(
        &dir.base,
        &["director", "serve", "--config", "d/director.toml"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("key file mode check failed"), "{out}");
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key, perms).unwrap();

    let config = std::fs::read_to_string(&dir.config).unwrap();
    std::fs::write(&dir.config, config.replace("127.0.0.1:0", "0.0.0.0:0")).unwrap();
    let out = ferry_in(
        &dir.base,
        &["director", "serve", "--config", "d/director.toml"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("without [tls]"), "{out}");
}

/// An Image repository made with `ferry repo` and served by `ferry repo serve`, named in the
/// Director's config.
fn image_repo(dir: &DirectorDir) -> ferry_tests::daemon::Daemon {
    let base = &dir.base;
    ferry_ok(base, &["repo", "init", "img"]);
    std::fs::write(base.join("os.img"), vec![7u8; 4096]).unwrap();
    std::fs::write(base.join("nav.tar"), b"navigation 3.0").unwrap();
    std::fs::write(base.join("fw.bin"), b"tcu firmware 7").unwrap();
    for args in [
        &[
            "os.img",
            "--name",
            "os/rootfs-2.img",
            "--hardware-id",
            "ivi",
            "--domain",
            "os",
            "--version",
            "2.0",
        ][..],
        &[
            "nav.tar",
            "--name",
            "apps/nav-3.tar",
            "--hardware-id",
            "ivi",
            "--domain",
            "app",
            "--version",
            "3.0",
            "--depends",
            "rootfs-image.version=2.0",
        ][..],
        &[
            "fw.bin",
            "--name",
            "tcu/fw-7.bin",
            "--hardware-id",
            "tcu",
            "--version",
            "7",
        ][..],
    ] {
        let mut full = vec!["repo", "add-target", "img"];
        full.extend_from_slice(args);
        ferry_ok(base, &full);
    }
    ferry_ok(base, &["repo", "publish", "img"]);
    let mut cmd = std::process::Command::new(director_common::ferry_bin());
    cmd.args(["repo", "serve"])
        .arg(base.join("img"))
        .args(["--listen", "127.0.0.1:0"]);
    let server = ferry_tests::daemon::Daemon::start(cmd);
    let mut config = std::fs::read_to_string(&dir.config).unwrap();
    config.push_str(&format!(
        "\n[image_repo]\nurl = \"http://{}\"\nroot = \"../img/metadata/1.root.json\"\n",
        server.addr
    ));
    std::fs::write(&dir.config, config).unwrap();
    server
}

#[test]
fn an_operator_assigns_runs_a_campaign_and_cancels_through_ferry_admin() {
    let dir = DirectorDir::init();
    let _repo = image_repo(&dir);
    let director = dir.serve();
    let cars: Vec<SimVehicle> = (1..=3)
        .map(|i| SimVehicle::new(&format!("CAMP{i}"), 1))
        .collect();
    for car in &cars {
        director.register(&dir.write_token, &car.registration());
    }
    let (w, url) = (&dir.write_token, &director.url);
    let p1 = format!("{}=apps/nav-3.tar", cars[0].ecus[0].serial);
    let o1 = format!("{}=os/rootfs-2.img", cars[0].ecus[0].serial);

    // The app comes first in the request; the Director orders the os it depends on first and
    // copies length and hashes from the Image repository's signed metadata.
    let out = admin(
        &dir,
        url,
        w,
        &[
            "assign",
            &cars[0].vin,
            "--target",
            &p1,
            "--target",
            &o1,
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let planned: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(planned[0]["target_name"], "os/rootfs-2.img", "{planned}");
    assert_eq!(planned[1]["target_name"], "apps/nav-3.tar", "{planned}");
    assert_eq!(planned[0]["target"]["length"], 4096, "{planned}");
    let os_sha = director_common::sha256_hex(&vec![7u8; 4096]);
    assert_eq!(
        planned[0]["target"]["hashes"]["sha256"], os_sha,
        "{planned}"
    );
    let app_id = planned[1]["id"].as_i64().unwrap();

    // Refusals name their check.
    let p2 = cars[1].ecus[0].serial.clone();
    let s2 = cars[1].ecus[1].serial.clone();
    for (target, needle) in [
        (format!("{p2}=apps/nav-3.tar"), "required by target depends"),
        (format!("{s2}=os/rootfs-2.img"), "hardware check failed"),
        (
            format!("{p2}=os/no-such.img"),
            "not in the Image repository",
        ),
    ] {
        let out = admin(&dir, url, w, &["assign", &cars[1].vin, "--target", &target]);
        assert_ne!(out.code, 0, "{target}: {out}");
        assert!(
            out.stderr.contains(needle),
            "{target}: expected {needle:?}: {out}"
        );
    }

    // A campaign over every tcu of the fleet.
    let out = admin(
        &dir,
        url,
        w,
        &[
            "campaign",
            "--name",
            "tcu7",
            "--target",
            "tcu/fw-7.bin",
            "--hardware-id",
            "tcu",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["assigned"], 3, "{report}");

    // One target per ECU at a time: the app waits behind the os, pending and queued.
    let status_json = || -> Value {
        let out = admin(
            &dir,
            url,
            &dir.read_token,
            &["status", &cars[0].vin, "--json"],
        );
        serde_json::from_str(&out.stdout).unwrap()
    };
    let status = status_json();
    let queued: Vec<(&Value, &Value, &Value)> = status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (&a["target_name"], &a["status"], &a["queued"]))
        .collect();
    assert!(
        queued.contains(&(&json!("apps/nav-3.tar"), &json!("pending"), &json!(true)))
            && queued.contains(&(&json!("os/rootfs-2.img"), &json!("pending"), &json!(false))),
        "{status}"
    );
    let out = admin(&dir, url, &dir.read_token, &["status", &cars[0].vin]);
    assert!(out.stdout.contains("pending (queued)"), "{out}");
    // `assign` shows the queue of what it added, too: another app behind the os.
    let p3 = format!("{}=apps/nav-3.tar", cars[1].ecus[0].serial);
    let o3 = format!("{}=os/rootfs-2.img", cars[1].ecus[0].serial);
    let out = admin(
        &dir,
        url,
        w,
        &["assign", &cars[1].vin, "--target", &p3, "--target", &o3],
    );
    assert_eq!(out.code, 0, "{out}");
    let rows: Vec<&str> = out.stdout.lines().collect();
    assert!(
        rows.iter()
            .any(|r| r.contains("apps/nav-3.tar") && r.contains("pending (queued)"))
            && rows
                .iter()
                .any(|r| r.contains("os/rootfs-2.img") && !r.contains("queued")),
        "{out}"
    );

    // Cancel one assignment, then all of a vehicle's.
    let out = admin(&dir, url, w, &["cancel", "--id", &app_id.to_string()]);
    assert_eq!(out.code, 0, "{out}");
    let status = status_json();
    let app = status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app_id)
        .unwrap();
    assert_eq!(app["status"], "cancelled", "{status}");
    let out = admin(&dir, url, w, &["cancel", &cars[2].vin, "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let reply: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(reply["cancelled"], 1, "{reply}");
    let out = admin(&dir, url, &dir.read_token, &["status", &cars[0].vin]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("cancelled") && out.stdout.contains("tcu7"),
        "{out}"
    );
}

/// `[tls]` in director.toml, with a fleet CA, a server certificate and device and operator
/// certificates made by the CLI.
#[test]
fn over_mutual_tls_a_vehicle_uses_its_certificate_and_not_another_vehicles() {
    let dir = DirectorDir::init();
    let b = &dir.base;
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
    let ca = ["--ca-cert", "ca.pem", "--ca-key", "ca.key"];
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
    let mut config = std::fs::read_to_string(&dir.config).unwrap();
    config.push_str(
        "\n[tls]\nca_cert = \"../ca.pem\"\ncert = \"server.pem\"\nkey = \"server.key\"\n",
    );
    std::fs::write(&dir.config, config).unwrap();

    // Register two vehicles over HTTPS with an operator certificate and ferry admin.
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
    let director = dir.serve();
    let url = format!("https://{}", director.daemon.addr);
    let cars = [SimVehicle::new("TLS-A", 0), SimVehicle::new("TLS-B", 0)];
    for car in &cars {
        let p = write_pub(b, &format!("{}.pub", car.vin), &car.ecus[0].key);
        let primary = format!("{}:ivi:{p}", car.ecus[0].serial);
        let out = admin(
            &dir,
            &url,
            &dir.write_token,
            &[
                "--ca-cert",
                "ca.pem",
                "--client-cert",
                "op/cert.pem",
                "--client-key",
                "op/key.pem",
                "vehicle",
                "add",
                "--vin",
                &car.vin,
                "--primary",
                &primary,
            ],
        );
        assert_eq!(out.code, 0, "{out}");
    }
    // A certificate for an unregistered VIN is not issued.
    let mut args = vec![
        "director",
        "issue-cert",
        "--config",
        "d/director.toml",
        "--vin",
        "NOT-REGISTERED",
        "--out-dir",
        "x",
    ];
    args.extend(ca);
    let out = ferry_in(b, &args);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("no vehicle NOT-REGISTERED is registered"),
        "{out}"
    );
    let mut args = vec![
        "director",
        "issue-cert",
        "--config",
        "d/director.toml",
        "--vin",
        "TLS-A",
        "--out-dir",
        "a",
    ];
    args.extend(ca);
    ferry_ok(b, &args);

    let client = |cert_dir: &str| {
        let mut pem = std::fs::read(b.join(cert_dir).join("cert.pem")).unwrap();
        pem.extend(std::fs::read(b.join(cert_dir).join("key.pem")).unwrap());
        reqwest::blocking::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(b.join("ca.pem")).unwrap()).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap()
    };
    let a = client("a");
    let get = |vin: &str| {
        a.get(format!(
            "{url}/api/v1/vehicles/{vin}/metadata/timestamp.json"
        ))
        .send()
        .unwrap()
    };
    assert_eq!(get("TLS-A").status(), StatusCode::OK);
    let other = get("TLS-B");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(other
        .text()
        .unwrap()
        .contains("device certificate check failed"));
    let put = a
        .put(format!("{url}/api/v1/vehicles/TLS-B/manifest"))
        .header("content-type", "application/json")
        .body(cars[1].manifest("forged"))
        .send()
        .unwrap();
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    let put = a
        .put(format!("{url}/api/v1/vehicles/TLS-A/manifest"))
        .header("content-type", "application/json")
        .body(cars[0].manifest("own"))
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    // Without a client certificate there is no TLS session at all.
    let anonymous = reqwest::blocking::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(b.join("ca.pem")).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(anonymous
        .get(format!(
            "{url}/api/v1/vehicles/TLS-A/metadata/timestamp.json"
        ))
        .bearer_auth("TLS-A.0000")
        .send()
        .is_err());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn secrets_go_to_owner_only_files_and_vehicles_can_be_cut_off() {
    let dir = DirectorDir::init();
    // `director init` and `serve` keep keys and the database to the Director's user.
    assert_eq!(mode(&dir.base.join("d/keys")), 0o700);
    assert_eq!(mode(&dir.base.join("d/data")), 0o700);
    let director = dir.serve();
    assert_eq!(mode(&dir.database()), 0o600);

    // Tokens to files of mode 0600, never over an existing file; expiry shown.
    let create = |extra: &[&str]| {
        let mut args = vec![
            "director",
            "token",
            "create",
            "--config",
            "d/director.toml",
            "--name",
            "ci",
            "--scope",
            "read",
        ];
        args.extend_from_slice(extra);
        ferry_in(&dir.base, &args)
    };
    let out = create(&["--out", "ci.token", "--expires", "90d"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("written to ci.token (mode 0600)"),
        "{out}"
    );
    assert!(out.stdout.contains("expires 20"), "{out}");
    assert!(
        !out.stdout.contains(&dir.write_token[..8]),
        "no secret printed"
    );
    let token_file = dir.base.join("ci.token");
    assert_eq!(mode(&token_file), 0o600);
    let secret = std::fs::read_to_string(&token_file).unwrap();
    let out = create(&["--out", "ci.token"]);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("the file exists"), "{out}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), secret);
    let out = ferry_ok(
        &dir.base,
        &[
            "director",
            "token",
            "list",
            "--config",
            "d/director.toml",
            "--json",
        ],
    );
    let listed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["expires_at"].is_string()));

    // A vehicle's device token to a file; replaced; the vehicle removed.
    let v = SimVehicle::new("WVW-CUT-1", 1);
    let p = write_pub(&dir.base, "p.pub.pem", &v.ecus[0].key);
    let primary = format!("{}:ivi:{p}", v.ecus[0].serial);
    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &[
            "vehicle",
            "add",
            "--vin",
            &v.vin,
            "--primary",
            &primary,
            "--out",
            "cut.token",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(mode(&dir.base.join("cut.token")), 0o600);
    let old = std::fs::read_to_string(dir.base.join("cut.token")).unwrap();
    let old = old.trim();
    assert_eq!(
        director.metadata(&v.vin, "timestamp.json", old).0,
        StatusCode::OK
    );
    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &["vehicle", "revoke-token", &v.vin, "--out", "cut2.token"],
    );
    assert_eq!(out.code, 0, "{out}");
    let new = std::fs::read_to_string(dir.base.join("cut2.token")).unwrap();
    assert_eq!(
        director.metadata(&v.vin, "timestamp.json", old).0,
        StatusCode::UNAUTHORIZED
    );
    // The refusal is logged at warn with the caller and the check, never the token.
    let logged = (0..50).find_map(|_| {
        let log = director.daemon.stderr();
        let line = log
            .lines()
            .find(|l| {
                l.contains("request refused: authentication")
                    && l.contains("device token check failed")
            })
            .map(str::to_owned);
        if line.is_none() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        line.map(|l| (l, log))
    });
    let (line, log) = logged.expect("no warn line for the 401");
    assert!(
        line.contains("WARN") && line.contains("peer=127.0.0.1:"),
        "{line}"
    );
    let secret = old.rsplit('.').next().unwrap();
    assert!(!log.contains(secret), "a token reached the log");
    assert_eq!(
        director.metadata(&v.vin, "timestamp.json", new.trim()).0,
        StatusCode::OK
    );
    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &["vehicle", "remove", &v.vin],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("its history is kept"), "{out}");
    assert_eq!(
        director.metadata(&v.vin, "timestamp.json", new.trim()).0,
        StatusCode::NOT_FOUND
    );
    let out = admin(&dir, &director.url, &dir.read_token, &["vehicle", "list"]);
    assert!(out.stdout.contains("removed 20"), "{out}");

    // Retention: nothing here is 90 days old; a bad duration is named.
    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &["manifests", "prune", "--older-than", "90d", "--json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let pruned: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(pruned["deleted"], 0, "{out}");
    let out = admin(
        &dir,
        &director.url,
        &dir.write_token,
        &["manifests", "prune", "--older-than", "soon"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("retention check failed"), "{out}");

    // A Director that is not there: the cause is named, not hidden.
    drop(director);
    let out = admin(
        &dir,
        "http://127.0.0.1:9",
        &dir.read_token,
        &["vehicle", "list"],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.to_lowercase().contains("connection refused"),
        "{out}"
    );
}
