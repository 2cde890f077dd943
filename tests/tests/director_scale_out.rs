//! Several Directors, one PostgreSQL database (issue #23): two `ferry director serve`
//! processes on one config whose `[database] url` is a real PostgreSQL server, behind the
//! test's own round-robin. Assignments made through one are served by the other (a real
//! Primary updates through it); 200 simulated vehicles check in through both, alternating,
//! until one Director is killed with SIGKILL mid-load. Then: every acknowledged manifest is
//! in the database under its acknowledged id, no vehicle ever saw a version of its timestamp
//! or targets go backwards or one version with two contents, and the survivor kept serving.
//! No duration is asserted.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_director::{PgSettings, PgStore, Store};
use ferry_tests::daemon::Daemon;
use ferry_tests::http::request;
use ferry_tests::vehicle_sim::SimVehicle;
use primary_common::{ferry, Options, World, APP, FW, PRIMARY};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const VEHICLES: usize = 200;
const THREADS: usize = 16;
/// Check-ins before the kill, and after it.
const BEFORE_KILL: Duration = Duration::from_secs(3);
const AFTER_KILL: Duration = Duration::from_secs(2);

/// What one vehicle saw and had acknowledged.
#[derive(Default)]
struct Seen {
    /// role -> version -> SHA-256 of the bytes served.
    versions: BTreeMap<&'static str, BTreeMap<u64, [u8; 32]>>,
    /// role -> the last version seen, to check it never goes down.
    last: BTreeMap<&'static str, u64>,
    /// (manifest id, nonce) of each acknowledged manifest.
    acked: Vec<(i64, String)>,
    /// Check-ins completed through the survivor after the kill.
    after_kill: u64,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    <sha2::Sha256 as sha2::Digest>::digest(b).into()
}

fn version_of(body: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["signed"]["version"].as_u64().unwrap()
}

#[test]
fn two_directors_share_one_postgresql_and_the_survivor_of_a_kill_keeps_serving() {
    let Some(url) = primary_common::postgres_database("scale_out") else {
        return;
    };
    let mut world = World::start(Options {
        postgres: Some(url),
        ..Options::default()
    });
    // The simulated vehicles check in back to back: no per-vehicle manifest rate limit.
    let config = world.base.join("d/director.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[manifests]\nmax_per_minute = 0\n");
    std::fs::write(&config, text).unwrap();
    world.restart_director();
    let mut b = Daemon::start({
        let mut cmd = Command::new(ferry());
        cmd.args(["director", "serve", "--config"])
            .arg(world.base.join("d/director.toml"))
            .arg("--json");
        cmd
    });
    let a_addr = world.director.addr;
    let b_addr = b.addr;

    // Assigned through A, served by B: the Primary, pointed at B, installs everything.
    world.assign_all();
    world.write_primary_config_with(primary_common::PrimaryLinks {
        image_url: &format!("http://{}", world.repo.addr),
        director_url: &format!("http://{b_addr}"),
        secondary_urls: [
            &format!("http://{}", world.secondaries[0].addr),
            &format!("http://{}", world.secondaries[1].addr),
        ],
        download: "min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n",
    });
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["result"], "updated", "{report}");
    let status = world.primary_status();
    for ecu in status["ecus"].as_array().unwrap() {
        let expected = if ecu["serial"] == PRIMARY { APP } else { FW };
        assert_eq!(ecu["status"]["installed"]["target"], expected, "{ecu}");
    }

    // 200 vehicles, registered through A and B in turn.
    let admin = world.write_token();
    let cars: Vec<(SimVehicle, String)> = (0..VEHICLES)
        .map(|i| {
            let car = SimVehicle::new(&format!("SCALE-{i:04}"), 1);
            let via = if i % 2 == 0 { a_addr } else { b_addr };
            let body = car.registration().to_string();
            let r = request(
                via,
                "POST",
                "/api/v1/admin/vehicles",
                Some(&admin),
                body.as_bytes(),
            )
            .unwrap();
            assert_eq!(r.status, 201, "register {}: {}", car.vin, r.text());
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let token = v["device_token"].as_str().unwrap().to_owned();
            (car, token)
        })
        .collect();

    let a_dead = AtomicBool::new(false);
    let seen: Vec<Mutex<Seen>> = (0..VEHICLES).map(|_| Mutex::default()).collect();
    let start = Instant::now();
    let kill_at = start + BEFORE_KILL;
    let end = kill_at + AFTER_KILL;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (cars, seen, a_dead) = (&cars, &seen, &a_dead);
            s.spawn(move || {
                let mut k = 0usize;
                while Instant::now() < end {
                    for i in (t..VEHICLES).step_by(THREADS) {
                        k += 1;
                        let dead = a_dead.load(Ordering::SeqCst);
                        // Round-robin; A once dead is skipped (a load balancer's health check).
                        let via: SocketAddr = if dead || (i + k) % 2 == 1 {
                            b_addr
                        } else {
                            a_addr
                        };
                        check_in(&cars[i], via, b_addr, &seen[i], dead, k);
                    }
                }
            });
        }
        // The kill, mid-load.
        std::thread::sleep(kill_at.saturating_duration_since(Instant::now()));
        world.director.kill9();
        a_dead.store(true, Ordering::SeqCst);
    });

    // Every acknowledged manifest is in the database under its id; B still serves.
    let store = PgStore::open(&PgSettings::new(url)).unwrap();
    let mut acked_total = 0;
    let mut after_kill = 0;
    for ((car, _), seen) in cars.iter().zip(&seen) {
        let seen = seen.lock().unwrap();
        let stored: BTreeMap<i64, Option<String>> = store
            .list_manifests(&car.vin, 100_000)
            .unwrap()
            .into_iter()
            .map(|m| (m.id, m.nonce))
            .collect();
        for (id, nonce) in &seen.acked {
            assert_eq!(
                stored.get(id),
                Some(&Some(nonce.clone())),
                "{}: manifest {id}",
                car.vin
            );
        }
        acked_total += seen.acked.len();
        after_kill += seen.after_kill;
    }
    eprintln!("{acked_total} manifests acknowledged, {after_kill} check-ins through the survivor after the kill");
    assert!(
        acked_total >= VEHICLES,
        "every vehicle checked in at least once"
    );
    assert!(after_kill > 0, "the survivor served after the kill");
    assert!(b.running(), "the survivor is still running: {}", b.stderr());
}

/// One check-in of `car` through `via`: timestamp and targets fetched (their versions
/// checked against what this vehicle saw before), then a manifest with a fresh nonce. A
/// request to A that fails because A was killed is not acknowledged and not an error; any
/// failure through B is.
fn check_in(
    car: &(SimVehicle, String),
    via: SocketAddr,
    b: SocketAddr,
    seen: &Mutex<Seen>,
    a_was_dead: bool,
    k: usize,
) {
    let (car, token) = car;
    let may_fail = via != b;
    let mut fetched = Vec::new();
    for role in ["timestamp", "targets"] {
        let path = format!("/api/v1/vehicles/{}/metadata/{role}.json", car.vin);
        match request(via, "GET", &path, Some(token), b"") {
            Ok(r) if r.status == 200 => fetched.push((role, r.body)),
            Ok(r) if !may_fail => panic!("{} {role} through B: {} {}", car.vin, r.status, r.text()),
            Err(e) if !may_fail => panic!("{} {role} through B: {e}", car.vin),
            _ => return,
        }
    }
    {
        let mut seen = seen.lock().unwrap();
        for (role, body) in &fetched {
            let version = version_of(body);
            let last = seen.last.get(role).copied().unwrap_or(0);
            assert!(
                version >= last,
                "{} {role} went back from {last} to {version}",
                car.vin
            );
            seen.last.insert(role, version);
            let digest = sha256(body);
            let known = *seen
                .versions
                .entry(role)
                .or_default()
                .entry(version)
                .or_insert(digest);
            assert_eq!(
                known, digest,
                "{} {role} v{version} served with two contents",
                car.vin
            );
        }
    }
    let nonce = format!("{}-{k}", car.vin);
    let path = format!("/api/v1/vehicles/{}/manifest", car.vin);
    match request(via, "PUT", &path, Some(token), &car.manifest(&nonce)) {
        Ok(r) if r.status == 200 => {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            let mut seen = seen.lock().unwrap();
            seen.acked.push((v["id"].as_i64().unwrap(), nonce));
            if a_was_dead {
                seen.after_kill += 1;
            }
        }
        Ok(r) if !may_fail => panic!("{} manifest through B: {} {}", car.vin, r.status, r.text()),
        Err(e) if !may_fail => panic!("{} manifest through B: {e}", car.vin),
        _ => {}
    }
}
