//! A kill -9 of `ferry director serve` while vehicles post manifests, then a restart: every
//! manifest the Director acknowledged with a 2xx is in the database, and the database passes
//! `PRAGMA integrity_check`.
#![allow(clippy::unwrap_used)]

mod director_common;

use director_common::DirectorDir;
use ferry_director::model::Verdict;
use ferry_director::{SqliteStore, Store};
use ferry_tests::vehicle_sim::SimVehicle;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VEHICLES: usize = 20;
/// Acknowledged manifests to collect before the kill.
const BEFORE_KILL: usize = 200;

#[test]
fn acknowledged_manifests_survive_a_kill_9_and_the_database_passes_integrity_check() {
    let dir = DirectorDir::init();
    let mut director = dir.serve();
    let vehicles: Vec<(SimVehicle, String)> = (0..VEHICLES)
        .map(|i| {
            let v = SimVehicle::new(&format!("KILL{i:03}"), 2);
            let token = director.register(&dir.write_token, &v.registration());
            (v, token)
        })
        .collect();

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url = director.url.clone();
    let threads: Vec<_> = vehicles
        .into_iter()
        .map(|(v, token)| {
            let (acked, count, stop, url) =
                (acked.clone(), count.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let nonce = format!("{}-{n}", v.vin);
                    let sent = http
                        .put(format!("{url}/api/v1/vehicles/{}/manifest", v.vin))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(v.manifest(&nonce))
                        .send();
                    match sent {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().unwrap().push((v.vin.clone(), nonce));
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => panic!("manifest {nonce} refused: {}", r.status()),
                        // The Director is gone (killed): what was not acknowledged need not exist.
                        Err(_) => break,
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::Relaxed) < BEFORE_KILL && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    director.daemon.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= BEFORE_KILL,
        "only {} manifests acknowledged before the deadline\n{}",
        acked.len(),
        director.daemon.stderr()
    );

    // Restart on the same data, and check it serves again.
    let restarted = dir.serve();
    let store = SqliteStore::open(dir.database()).unwrap();
    store.integrity_check().unwrap();
    let mut missing = Vec::new();
    for vin in acked.iter().map(|(vin, _)| vin).collect::<BTreeSet<_>>() {
        let stored: BTreeSet<String> = store
            .list_manifests(vin, 1_000_000)
            .unwrap()
            .into_iter()
            .filter(|m| m.verdict == Verdict::Accepted)
            .filter_map(|m| m.nonce)
            .collect();
        for (_, nonce) in acked.iter().filter(|(v, _)| v == vin) {
            if !stored.contains(nonce) {
                missing.push(nonce.clone());
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    println!(
        "{} acknowledged manifests from {VEHICLES} vehicles all present after kill -9",
        acked.len()
    );

    // The restarted Director takes new manifests (nonces stay fresh).
    let v = SimVehicle::new("AFTER-RESTART", 1);
    let token = restarted.register(&dir.write_token, &v.registration());
    let status = restarted
        .put_manifest(&v.vin, &token, v.manifest("after-1"))
        .unwrap();
    assert!(status.is_success(), "{status}");
}
