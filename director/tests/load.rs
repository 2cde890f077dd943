//! Load test (the Director issue's "Done when"): 200 simulated vehicles with 3 ECUs each check
//! in concurrently over loopback for a bounded time. Each check-in fetches timestamp.json and
//! targets.json with the vehicle's device token, then signs and PUTs a manifest with a fresh
//! nonce. Nothing may be lost: every request succeeds, every acknowledged manifest is in the
//! database under the id it was acknowledged with, and every vehicle's metadata verifies
//! from the director root. No duration is asserted; the check-in count is printed.
#![allow(clippy::unwrap_used)]

mod common;

use ferry_core::manifest::VehicleManifest;
use ferry_core::metadata::Signed;
use ferry_core::TrustedSet;
use ferry_core::{Clock, SystemClock};
use ferry_director::http::{device_token, serve, AppState, Limits};
use ferry_director::image_repo::TargetSource;
use ferry_director::model::{NewEcu, NewVehicle, Verdict};
use ferry_director::vehicle_metadata::{Lifetimes, VehicleSigner};
use ferry_director::{SqliteStore, Store};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const VEHICLES: usize = 200;
/// How long the vehicles keep checking in (each also does at least [`MIN_CHECK_INS`]).
const RUN: Duration = Duration::from_secs(3);
const MIN_CHECK_INS: usize = 2;
/// Bound on any one request: a stuck server fails the test instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// One simulated vehicle: a primary and two secondaries, all ed25519 (fast to sign, so the
/// clients do not starve the server of the two cores).
struct Car {
    vin: String,
    token: String,
    ecus: Vec<(String, PrivateKey)>,
}

impl Car {
    fn primary(&self) -> &(String, PrivateKey) {
        &self.ecus[0]
    }

    /// A manifest of every ECU's report with `nonce`, signed by the primary.
    fn manifest(&self, nonce: &str) -> Vec<u8> {
        let now = SystemClock.now();
        let reports: Vec<_> = self
            .ecus
            .iter()
            .map(|(serial, key)| common::report(serial, nonce, now, key))
            .collect();
        let (primary, key) = self.primary();
        let mut m = Signed::new(VehicleManifest::new(&self.vin, primary, &reports).unwrap());
        m.sign(key as &dyn Signer).unwrap();
        m.to_bytes().unwrap()
    }
}

/// Nothing is assigned in this test, so the Director needs no Image repository.
#[derive(Debug)]
struct NoImages;

impl TargetSource for NoImages {
    fn target(&self, name: &str) -> ferry_director::Result<ferry_core::metadata::TargetFile> {
        Err(ferry_director::Error::TargetNotPublished {
            target: name.to_owned(),
        })
    }
}

/// What one vehicle saw during the run.
#[derive(Default)]
struct Seen {
    /// Acknowledged manifests: stored id → (nonce, body sent).
    acknowledged: BTreeMap<i64, (String, Vec<u8>)>,
    /// Every request that did not succeed, described.
    failures: Vec<String>,
    /// The metadata bytes of the first check-in; every later one must serve the same.
    timestamp: Vec<u8>,
    targets: Vec<u8>,
}

/// Register `count` vehicles straight through the store, each with a device token and signed
/// metadata (the admin API is not needed for this test).
fn register(store: &dyn Store, keys: &ferry_director::vehicle_metadata::OnlineKeys) -> Vec<Car> {
    let signer = VehicleSigner::new(store, keys, Lifetimes::default());
    (0..VEHICLES)
        .map(|i| {
            let vin = format!("LOAD{i:04}");
            let ecus: Vec<(String, PrivateKey)> = ["p", "s1", "s2"]
                .iter()
                .map(|suffix| {
                    (
                        format!("{vin}-{suffix}"),
                        PrivateKey::generate(KeyKind::Ed25519).unwrap(),
                    )
                })
                .collect();
            store
                .register_vehicle(&NewVehicle {
                    vin: vin.clone(),
                    ecus: ecus
                        .iter()
                        .enumerate()
                        .map(|(n, (serial, key))| NewEcu {
                            serial: serial.clone(),
                            hardware_id: if n == 0 { "ivi" } else { "tcu" }.into(),
                            public_key: key.public_key().clone(),
                            primary: n == 0,
                        })
                        .collect(),
                })
                .unwrap();
            let secret = store.issue_device_token(&vin).unwrap();
            signer.sign_vehicle(&vin, SystemClock.now()).unwrap();
            Car {
                token: device_token(&vin, &secret),
                vin,
                ecus,
            }
        })
        .collect()
}

async fn get(
    client: &reqwest::Client,
    addr: SocketAddr,
    car: &Car,
    file: &str,
) -> Result<Vec<u8>, String> {
    let url = format!("http://{addr}/api/v1/vehicles/{}/metadata/{file}", car.vin);
    let response = client
        .get(url)
        .bearer_auth(&car.token)
        .send()
        .await
        .map_err(|e| format!("GET {file}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {file} body: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {file}: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body.to_vec())
}

async fn put_manifest(
    client: &reqwest::Client,
    addr: SocketAddr,
    car: &Car,
    body: Vec<u8>,
) -> Result<i64, String> {
    let url = format!("http://{addr}/api/v1/vehicles/{}/manifest", car.vin);
    let response = client
        .put(url)
        .bearer_auth(&car.token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("PUT manifest: {e}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("PUT manifest body: {e}"))?;
    if !status.is_success() {
        return Err(format!("PUT manifest: {status}: {text}"));
    }
    let reply: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("PUT manifest reply {text:?}: {e}"))?;
    reply["id"]
        .as_i64()
        .ok_or_else(|| format!("PUT manifest reply without an id: {text}"))
}

/// One vehicle's loop: check in until the deadline, and at least [`MIN_CHECK_INS`] times.
async fn drive(
    client: reqwest::Client,
    addr: SocketAddr,
    car: Arc<Car>,
    deadline: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let mut n = 0usize;
    while n < MIN_CHECK_INS || Instant::now() < deadline {
        n += 1;
        let check_in = async {
            let timestamp = get(&client, addr, &car, "timestamp.json").await?;
            let targets = get(&client, addr, &car, "targets.json").await?;
            if seen.timestamp.is_empty() {
                seen.timestamp = timestamp;
                seen.targets = targets;
            } else if seen.timestamp != timestamp || seen.targets != targets {
                return Err("metadata changed during the run although nothing was assigned".into());
            }
            let nonce = format!("{}-{n}", car.vin);
            let body = car.manifest(&nonce);
            let id = put_manifest(&client, addr, &car, body.clone()).await?;
            if seen.acknowledged.insert(id, (nonce, body)).is_some() {
                return Err(format!("manifest id {id} acknowledged twice"));
            }
            Ok::<(), String>(())
        };
        if let Err(e) = check_in.await {
            seen.failures.push(format!("{} check-in {n}: {e}", car.vin));
        }
    }
    seen
}

/// The vehicle's metadata verifies from the director root: timestamp → snapshot → targets,
/// and the targets name this vehicle.
fn verify_metadata(root: &[u8], car: &Car, seen: &Seen, snapshot: &[u8]) {
    let mut set = TrustedSet::new(root, SystemClock.now()).unwrap();
    set.update_timestamp(&seen.timestamp)
        .unwrap_or_else(|e| panic!("{}: timestamp: {e}", car.vin));
    set.update_snapshot(snapshot, false)
        .unwrap_or_else(|e| panic!("{}: snapshot: {e}", car.vin));
    let targets = set
        .update_targets(&seen.targets, "targets", "root")
        .unwrap_or_else(|e| panic!("{}: targets: {e}", car.vin));
    assert_eq!(targets.extra["custom"]["vin"], car.vin.as_str());
}

#[test]
fn two_hundred_vehicles_checking_in_concurrently_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("director.db")).unwrap());
    let (root, keys, _) = common::director_root(store.as_ref(), SystemClock.now());
    let cars: Vec<Arc<Car>> = register(store.as_ref(), &keys)
        .into_iter()
        .map(Arc::new)
        .collect();

    // The Director on its own runtime, the vehicles on another, as in a real deployment.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(
        store.clone(),
        keys,
        Lifetimes::default(),
        Arc::new(NoImages),
        Arc::new(SystemClock),
    )
    // Each simulated vehicle checks in far more often than a real one: no manifest rate.
    .with_manifest_policy(ferry_director::manifests::ManifestPolicy::DEFAULT.without_rate());
    // Every simulated vehicle connects from 127.0.0.1: no per-address cap here.
    let limits = Limits {
        connections_per_address: usize::MAX,
        ..Limits::default()
    };
    server.spawn(serve(listener, state, limits, std::future::pending()));

    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + RUN;
    let seen: Vec<Seen> = clients.block_on(async {
        let tasks: Vec<_> = cars
            .iter()
            .map(|car| tokio::spawn(drive(client.clone(), addr, car.clone(), deadline)))
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.unwrap());
        }
        seen
    });
    let elapsed = started.elapsed();

    let failures: Vec<&String> = seen.iter().flat_map(|s| &s.failures).collect();
    assert!(
        failures.is_empty(),
        "{} failed check-ins, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    let check_ins: usize = seen.iter().map(|s| s.acknowledged.len()).sum();
    println!(
        "{check_ins} check-ins by {VEHICLES} vehicles in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        check_ins as f64 / elapsed.as_secs_f64()
    );

    // Every acknowledged manifest is in the database, accepted, under the id it was
    // acknowledged with, with the nonce and bytes that were sent; and nothing else is there.
    for (car, seen) in cars.iter().zip(&seen) {
        assert!(seen.acknowledged.len() >= MIN_CHECK_INS, "{}", car.vin);
        let stored = store
            .list_manifests(
                &car.vin,
                u32::try_from(seen.acknowledged.len() + 10).unwrap(),
            )
            .unwrap();
        assert_eq!(stored.len(), seen.acknowledged.len(), "{}", car.vin);
        for entry in &stored {
            let (nonce, body) = seen.acknowledged.get(&entry.id).unwrap_or_else(|| {
                panic!(
                    "{}: stored manifest {} never acknowledged",
                    car.vin, entry.id
                )
            });
            assert_eq!(
                entry.verdict,
                Verdict::Accepted,
                "{}: {}",
                car.vin,
                entry.reason
            );
            assert_eq!(entry.nonce.as_deref(), Some(nonce.as_str()), "{}", car.vin);
            assert_eq!(
                &entry.body, body,
                "{}: manifest {} bytes",
                car.vin, entry.id
            );
        }
        assert_eq!(
            store
                .count_manifests(&car.vin, Some(Verdict::Accepted))
                .unwrap(),
            seen.acknowledged.len() as u64,
            "{}",
            car.vin
        );
    }

    // Every vehicle's metadata, as served during the run, verifies from the director root.
    let snapshots: Vec<Vec<u8>> = clients.block_on(async {
        let mut out = Vec::new();
        for car in &cars {
            out.push(get(&client, addr, car, "snapshot.json").await.unwrap());
        }
        out
    });
    for ((car, seen), snapshot) in cars.iter().zip(&seen).zip(&snapshots) {
        verify_metadata(&root, car, seen, snapshot);
    }
    store.integrity_check().unwrap();
    drop(clients);
    server.shutdown_timeout(Duration::from_secs(5));
}
