//! One vehicle cannot fill the Director's disk, over real HTTP: refused manifests are kept as a
//! digest and a bounded excerpt, only the newest few per vehicle, and each vehicle has a
//! manifest rate (429 with `Retry-After`). Other vehicles keep checking in meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use common::server::{Server, Transport, WAIT};
use common::tls::no_images;
use ferry_director::http::Limits;
use ferry_director::manifests::ManifestPolicy;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long the flooding vehicle sends.
const FLOOD: Duration = Duration::from_secs(20);

fn start(policy: ManifestPolicy) -> Server {
    // Every client here is 127.0.0.1: the per-address cap is not what this test is about.
    let limits = Limits {
        connections_per_address: usize::MAX,
        ..Limits::default()
    };
    let client = Client::builder().timeout(WAIT).build().unwrap();
    Server::spawn_configured(Transport::Http, limits, policy, client, no_images(), ())
}

/// Bytes the database holds (its pages in use, the WAL's included), read on a connection of
/// its own.
fn used_bytes(server: &Server) -> u64 {
    let conn = rusqlite::Connection::open(server.store.path()).unwrap();
    let (pages, free, size): (i64, i64, i64) = conn
        .query_row(
            "SELECT * FROM pragma_page_count, pragma_freelist_count, pragma_page_size",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    ((pages - free) * size) as u64
}

/// Bytes stored for `vin`'s manifests of `verdict`: bodies (or excerpts), reasons, digests.
fn stored_bytes(server: &Server, vin: &str, verdict: &str) -> (u64, u64) {
    let conn = rusqlite::Connection::open(server.store.path()).unwrap();
    conn.query_row(
        "SELECT count(*), coalesce(sum(length(body) + length(reason)
                + coalesce(length(body_sha256), 0)), 0)
         FROM manifests WHERE vin = ?1 AND verdict = ?2",
        [vin, verdict],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
    .unwrap()
}

#[test]
fn a_vehicle_flooding_refused_manifests_grows_the_database_by_at_most_its_quota() {
    let policy = ManifestPolicy {
        // No rate here: what bounds the database is what is kept of refusals.
        max_per_minute: 0,
        refused_kept: 20,
        refused_excerpt_bytes: 4096,
    };
    let server = start(policy);
    let flooder = server.register("VIN-FLOOD");
    let others: Vec<_> = (1..=3)
        .map(|i| server.register(&format!("VIN-OK{i}")))
        .collect();
    let before = used_bytes(&server);

    let stop = AtomicBool::new(false);
    let sent = AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let url =
        |vin: &str, what: &str| format!("http://{}/api/v1/vehicles/{vin}/{what}", server.addr);
    std::thread::scope(|s| {
        // The flood: 256 KiB of JSON that is no manifest, as fast as one client can.
        s.spawn(|| {
            let client = Client::builder().timeout(WAIT).build().unwrap();
            let body = format!("{{\"x\":\"{}\"}}", "a".repeat(256 * 1024));
            let started = Instant::now();
            while started.elapsed() < FLOOD {
                let r = client
                    .put(url(&flooder.vin, "manifest"))
                    .bearer_auth(&flooder.token)
                    .body(body.clone())
                    .send()
                    .unwrap();
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                sent.fetch_add(1, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Relaxed);
        });
        // Everyone else checks in about once a second and is served.
        for car in &others {
            let (stop, failures) = (&stop, &failures);
            s.spawn(move || {
                let client = Client::builder().timeout(WAIT).build().unwrap();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let get = client
                        .get(url(&car.vin, "metadata/timestamp.json"))
                        .bearer_auth(&car.token)
                        .send();
                    let put = client
                        .put(url(&car.vin, "manifest"))
                        .bearer_auth(&car.token)
                        .body(car.manifest(&format!("n{n}")))
                        .send();
                    for (what, r) in [("timestamp", get), ("manifest", put)] {
                        match r {
                            Ok(r) if r.status() == StatusCode::OK => {}
                            Ok(r) => failures.lock().unwrap().push(format!(
                                "{} {what}: {} {}",
                                car.vin,
                                r.status(),
                                r.text().unwrap_or_default()
                            )),
                            Err(e) => failures
                                .lock()
                                .unwrap()
                                .push(format!("{} {what}: {e}", car.vin)),
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "check-ins failed during the flood: {failures:#?}"
    );

    let sent = sent.into_inner();
    let (kept, flood_bytes) = stored_bytes(&server, &flooder.vin, "refused");
    let (accepted, accepted_bytes) = (0..3).fold((0, 0), |(n, b), i| {
        let (n1, b1) = stored_bytes(&server, &others[i].vin, "accepted");
        (n + n1, b + b1)
    });
    let grown = used_bytes(&server).saturating_sub(before);
    println!(
        "{sent} refused manifests of 256 KiB in {FLOOD:?}: {kept} kept ({flood_bytes} bytes, quota {}); \
         {accepted} check-ins of others accepted; the database grew by {grown} bytes",
        policy.refused_quota()
    );
    assert!(
        sent > u64::from(policy.refused_kept),
        "the flood did not pass the kept count"
    );
    assert_eq!(kept, u64::from(policy.refused_kept));
    assert!(
        flood_bytes <= policy.refused_quota(),
        "{flood_bytes} > {}",
        policy.refused_quota()
    );
    assert!(
        accepted >= 3 * 10,
        "others were not served: {accepted} check-ins"
    );
    // The flood's quota, plus what the others legitimately stored (rows, indexes and the
    // reports they update, generously), plus a few pages.
    let allowed = policy.refused_quota() + 4 * accepted_bytes + 256 * 1024;
    assert!(
        grown <= allowed,
        "the database grew by {grown} bytes; allowed {allowed}"
    );

    // What is kept of each refusal: the digest and length of the whole body, its first bytes.
    let (status, text) = server.admin(
        Method::GET,
        &format!("/vehicles/{}/manifests?limit=1", flooder.vin),
        Some(&server.read),
        None,
    );
    assert_eq!(status, StatusCode::OK, "{text}");
    let listed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &listed[0];
    assert_eq!(entry["verdict"], "refused", "{entry}");
    assert_eq!(entry["size"], 256 * 1024 + 8, "{entry}");
    assert_eq!(entry["stored"], 4096, "{entry}");
    assert_eq!(entry["sha256"].as_str().unwrap().len(), 64, "{entry}");
}

#[test]
fn past_its_rate_a_vehicle_is_told_when_to_come_back() {
    let policy = ManifestPolicy {
        max_per_minute: 3,
        ..ManifestPolicy::DEFAULT
    };
    let server = start(policy);
    let car = server.register("VIN-RATE");
    let other = server.register("VIN-CALM");
    let put = |vin: &str, token: &str, body: Vec<u8>| {
        server.request(
            Method::PUT,
            &format!("/api/v1/vehicles/{vin}/manifest"),
            Some(token),
            Some(body),
        )
    };
    for n in 0..3 {
        let (status, _, body) = put(&car.vin, &car.token, car.manifest(&format!("n{n}")));
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    let before = server.manifests(&car.vin);
    let (status, headers, body) = put(&car.vin, &car.token, car.manifest("n3"));
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert!(text.contains("manifest rate check failed"), "{text}");
    assert!(text.contains("at most 3 per minute"), "{text}");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        server.manifests(&car.vin),
        before,
        "nothing stored of a 429"
    );
    // Another vehicle has a budget of its own.
    let (status, _, _) = put(&other.vin, &other.token, other.manifest("n0"));
    assert_eq!(status, StatusCode::OK);
}
