//! The Director on PostgreSQL when the database goes away: requests are answered 503 naming
//! the failed check (never a hang, never a 500), and once the server is back the same
//! Director serves again without a restart (the pool reconnects).
#![allow(clippy::unwrap_used)]

mod common;

use ferry_core::{Clock, SystemClock};
use ferry_director::http::{device_token, serve, AppState, Limits};
use ferry_director::image_repo::Unconfigured;
use ferry_director::model::{NewEcu, NewVehicle};
use ferry_director::store::postgres::cluster::{create_database, TempCluster};
use ferry_director::vehicle_metadata::{Lifetimes, VehicleSigner};
use ferry_director::{PgSettings, PgStore, Store};
use ferry_keys::{KeyKind, PrivateKey};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn while_postgresql_is_down_requests_get_503_and_the_director_recovers_when_it_is_back() {
    // A server of this test's own: it is stopped and started again.
    let mut cluster = match TempCluster::start(false) {
        Ok(c) => c,
        Err(why) if std::env::var("FERRY_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("PostgreSQL is required: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: no PostgreSQL server: {why}");
            return;
        }
    };
    let url = create_database(&cluster.url("postgres"), "outage").unwrap();
    let mut settings = PgSettings::new(url);
    settings.connect_timeout = Duration::from_secs(2);
    settings.acquire_timeout = Duration::from_secs(2);
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&settings).unwrap());
    let (_, keys, _) = common::director_root(store.as_ref(), SystemClock.now());
    store
        .register_vehicle(&NewVehicle {
            vin: "VIN1".into(),
            ecus: vec![NewEcu {
                serial: "VIN1-p".into(),
                hardware_id: "hw".into(),
                public_key: PrivateKey::generate(KeyKind::Ed25519)
                    .unwrap()
                    .public_key()
                    .clone(),
                primary: true,
            }],
        })
        .unwrap();
    let token = device_token("VIN1", &store.issue_device_token("VIN1").unwrap());
    VehicleSigner::new(store.as_ref(), &keys, Lifetimes::default())
        .sign_vehicle("VIN1", SystemClock.now())
        .unwrap();

    let server = common::server::runtime(2);
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(
        store.clone(),
        keys,
        Lifetimes::default(),
        Arc::new(Unconfigured),
        Arc::new(SystemClock),
    );
    server.spawn(serve(
        listener,
        state,
        Limits::default(),
        std::future::pending(),
    ));
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = || {
        client
            .get(format!(
                "http://{addr}/api/v1/vehicles/VIN1/metadata/timestamp.json"
            ))
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    assert_eq!(get().status(), 200);

    cluster.stop().unwrap();
    for _ in 0..3 {
        let r = get();
        assert_eq!(r.status(), 503);
        let body = r.text().unwrap();
        assert!(body.contains("database check failed"), "{body}");
    }

    cluster.restart().unwrap();
    // The pool drops the connections the server closed and opens new ones: the first
    // request after the restart may still meet a dead one (503), never a wrong answer.
    let back = (0..20).any(|_| {
        let ok = get().status() == 200;
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(back, "the Director serves again once PostgreSQL is back");
    server.shutdown_timeout(Duration::from_secs(5));
}
