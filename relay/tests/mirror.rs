//! The relay's Image repository mirror against a real upstream (`ferry repo serve`'s router on
//! 127.0.0.1, every request it answers counted): one upstream fetch for many vehicles asking at
//! once, least recently used files evicted past `cache_max`, Range served from the cache.
#![allow(clippy::unwrap_used)]

use axum::extract::Request;
use axum::middleware::{self, Next};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Setup {
    _dir: tempfile::TempDir,
    base: String,
    upstream_hits: Arc<AtomicUsize>,
    relay: Arc<ferry_relay::Relay>,
    cache: std::path::PathBuf,
}

async fn setup(cache_max: &str, files: &[(&str, usize)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("metadata")).unwrap();
    std::fs::create_dir_all(repo.join("targets")).unwrap();
    for (name, len) in files {
        let bytes: Vec<u8> = (0..*len).map(|i| (i % 249) as u8).collect();
        std::fs::write(repo.join("targets").join(name), bytes).unwrap();
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = ferry_image_repo::serve::router(repo).layer(middleware::from_fn(
        move |req: Request, next: Next| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(req).await
            }
        },
    ));
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr: SocketAddr = up.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(up, app).await });
    std::fs::write(dir.path().join("relay.token"), "ferry-relay:t:00").unwrap();
    let config = dir.path().join("relay.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ncache_dir = \"cache\"\ncache_max = \"{cache_max}\"\n\
             [upstream]\ndirector = \"http://127.0.0.1:9\"\nimage_repo = \"http://{up_addr}\"\n\
             token_file = \"relay.token\"\n"
        ),
    )
    .unwrap();
    let relay = ferry_relay::Relay::open(
        ferry_relay::RelayConfig::load(&config).unwrap(),
        Arc::new(ferry_core::SystemClock),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ferry_relay::serve(
        relay.clone(),
        listener,
        std::future::pending(),
    ));
    Setup {
        cache: dir.path().join("cache/mirror/targets"),
        _dir: dir,
        base,
        upstream_hits: hits,
        relay,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_vehicles_at_once_make_one_upstream_fetch() {
    let s = setup("1GiB", &[("big.bin", 8 << 20)]).await;
    let client = reqwest::Client::new();
    let url = format!("{}/targets/big.bin", s.base);
    let gets = (0..8).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.bytes().await.unwrap().len()
        })
    });
    for g in gets {
        assert_eq!(g.await.unwrap(), 8 << 20);
    }
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 1);
    let status = ferry_relay::status::status(&s.relay).unwrap();
    assert_eq!((status.misses, status.hits), (1, 7), "{status:?}");

    // Range from the cache, with the validators `ferry repo serve` gives.
    let r = client
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.headers().contains_key("etag"));
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 100);
    assert_eq!(body[0], 100, "byte 100 of the file");
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 1);
    // Not upstream: 404 passed on; a path outside the repository: 404 without asking.
    let r = client
        .get(format!("{}/targets/nope.bin", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!("{}/targets/%2e%2e/relay.token", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(s.upstream_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_least_recently_used_file_goes_past_cache_max() {
    let mib = 1 << 20;
    let s = setup("3MiB", &[("a", mib), ("b", mib), ("c", mib), ("d", mib)]).await;
    let client = reqwest::Client::new();
    let get = |name: &str| {
        let (client, url) = (client.clone(), format!("{}/targets/{name}", s.base));
        async move {
            let r = client.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            r.bytes().await.unwrap();
        }
    };
    get("a").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    get("b").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    get("c").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    get("a").await; // a is now the most recently used
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    get("d").await; // 4 MiB > 3 MiB: b goes
    let on_disk: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&s.cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(on_disk, ["a", "c", "d"]);
    let status = ferry_relay::status::status(&s.relay).unwrap();
    assert_eq!(
        (status.cache_files, status.cache_bytes),
        (3, 3 * mib as u64)
    );
}
