#![allow(clippy::unwrap_used)]
//! The Image repository's HTTP server on 127.0.0.1, driven by a real HTTP client (reqwest)
//! and, where a client would normalise the path first (`..`, `%2e%2e`), by raw HTTP/1.1.

use ferry_image_repo::serve;
use reqwest::blocking::{Client, Response};
use reqwest::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE, VARY,
};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// Upper bound on every network wait, so a broken server fails a test instead of hanging it.
const WAIT: Duration = Duration::from_secs(30);
const TARGET: &str = "dir/0123abcd.app.bin";
const SECRET: &str = "SECRET KEY MATERIAL";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Server {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    dir: tempfile::TempDir,
    client: Client,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        populate(dir.path());
        let runtime = runtime();
        let listener = runtime
            .block_on(serve::bind("127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let root = dir.path().to_owned();
        runtime.spawn(serve::serve(
            root,
            listener,
            Default::default(),
            std::future::pending(),
        ));
        let client = Client::builder().timeout(WAIT).build().unwrap();
        Server {
            addr,
            runtime: Some(runtime),
            dir,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn get(&self, path: &str, headers: &[(reqwest::header::HeaderName, &str)]) -> Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        request.send().unwrap()
    }

    fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(rel)).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn populate(root: &Path) {
    let write = |rel: &str, bytes: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    let root_json = br#"{"signed":{"_type":"root","version":1},"signatures":[]}"#;
    write("metadata/1.root.json", root_json);
    write("metadata/root.json", root_json);
    write(
        "metadata/timestamp.json",
        br#"{"signed":{"_type":"timestamp","version":3},"signatures":[]}"#,
    );
    write(
        "metadata/3.snapshot.json",
        br#"{"signed":{"_type":"snapshot","version":3},"signatures":[]}"#,
    );
    let targets: String = (0..400)
        .map(|i| format!(r#""dir/{i:04}.bin":{{"length":{i},"hashes":{{"sha256":"{i:064x}"}}}},"#))
        .collect();
    write(
        "metadata/3.targets.json",
        format!(r#"{{"signed":{{"targets":{{{targets}}}}}}}"#).as_bytes(),
    );
    std::fs::create_dir_all(root.join("metadata/sub")).unwrap();
    let image: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&format!("targets/{TARGET}"), &image);
    write("keys/root.pem", SECRET.as_bytes());
    write("staging/x", SECRET.as_bytes());
    write("config.toml", SECRET.as_bytes());
    std::os::unix::fs::symlink(root.join("keys/root.pem"), root.join("targets/escape")).unwrap();
    std::os::unix::fs::symlink(root, root.join("targets/updir")).unwrap();
    std::os::unix::fs::symlink(
        root.join("targets").join(TARGET),
        root.join("targets/alias.bin"),
    )
    .unwrap();
}

/// One request as raw HTTP/1.1, so the path reaches the server exactly as written.
fn raw_get(addr: SocketAddr, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, WAIT).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.split(' ').nth(1).unwrap().parse().unwrap();
    (status, reply)
}

fn header<'a>(response: &'a Response, name: &reqwest::header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

#[test]
fn serves_metadata_and_targets_byte_exactly_and_head_without_body() {
    let server = Server::start();
    let response = server.get("/metadata/1.root.json", &[]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_TYPE), "application/json");
    assert_eq!(header(&response, &ACCEPT_RANGES), "bytes");
    assert_eq!(
        response.bytes().unwrap().as_ref(),
        server.file("metadata/1.root.json")
    );

    let image = server.file(&format!("targets/{TARGET}"));
    let response = server.get(&format!("/targets/{TARGET}"), &[]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_TYPE), "application/octet-stream");
    assert_eq!(header(&response, &ACCEPT_RANGES), "bytes");
    assert_eq!(response.bytes().unwrap().as_ref(), image);

    let response = server
        .client
        .head(server.url(&format!("/targets/{TARGET}")))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_LENGTH), image.len().to_string());
    assert!(response.bytes().unwrap().is_empty());

    // A symlink that stays inside targets/ is an ordinary file.
    let response = server.get("/targets/alias.bin", &[]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().unwrap().as_ref(), image);
}

#[test]
fn nothing_outside_metadata_and_targets_is_served() {
    let server = Server::start();
    for path in [
        "/",
        "/metadata",
        "/metadata/",
        "/metadata/missing.json",
        "/metadata/sub",
        "/metadata/sub/",
        "/targets/dir",
        "/targets/dir/",
        "/targets//dir/0123abcd.app.bin",
        "/keys/root.pem",
        "/staging/x",
        "/config.toml",
        "/metadata/../keys/root.pem",
        "/metadata/%2e%2e/keys/root.pem",
        "/metadata/%2E%2E/keys/root.pem",
        "/metadata/%2e%2e%2fkeys%2froot.pem",
        "/metadata/./../keys/root.pem",
        "/targets/..%5Ckeys%5Croot.pem",
        "/targets/%00",
        "/targets/escape",
        "/targets/updir/keys/root.pem",
        "/targets/updir/staging/x",
    ] {
        let (status, reply) = raw_get(server.addr, path);
        assert_eq!(status, 404, "{path}: {reply}");
        assert!(!reply.contains(SECRET), "{path} leaked the secret: {reply}");
        assert!(
            !reply.contains(&*server.dir.path().to_string_lossy()),
            "{path}: {reply}"
        );
    }
    let response = server.get("/metadata/missing.json", &[]);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&response, &CACHE_CONTROL), "no-cache");
    assert_eq!(response.text().unwrap(), "not found\n");
}

#[test]
fn other_methods_are_refused() {
    let server = Server::start();
    let response = server
        .client
        .post(server.url("/metadata/root.json"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let response = server
        .client
        .put(server.url("/keys/root.pem"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[test]
fn single_ranges_give_206_and_unsatisfiable_ones_416() {
    let server = Server::start();
    let image = server.file(&format!("targets/{TARGET}"));
    let len = image.len();
    let path = format!("/targets/{TARGET}");
    for (range, first, last) in [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, len - 1),
        ("bytes=-5", len - 5, len - 1),
    ] {
        let response = server.get(&path, &[(RANGE, range)]);
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&response, &CONTENT_RANGE),
            format!("bytes {first}-{last}/{len}")
        );
        assert_eq!(header(&response, &ACCEPT_RANGES), "bytes");
        assert_eq!(response.bytes().unwrap().as_ref(), &image[first..=last]);
    }

    let response = server.get(&path, &[(RANGE, "bytes=999999-")]);
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&response, &CONTENT_RANGE), format!("bytes */{len}"));
    assert_eq!(header(&response, &CACHE_CONTROL), "no-store");

    // Several ranges: the whole file (documented choice).
    let response = server.get(&path, &[(RANGE, "bytes=0-1,5-6")]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().unwrap().as_ref(), image);

    // Metadata honours Range too, on the stored bytes.
    let root = server.file("metadata/root.json");
    let response = server.get("/metadata/root.json", &[(RANGE, "bytes=1-3")]);
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.bytes().unwrap().as_ref(), &root[1..=3]);
}

#[test]
fn an_interrupted_download_resumes_with_range_and_if_range() {
    let server = Server::start();
    let image = server.file(&format!("targets/{TARGET}"));
    let path = format!("/targets/{TARGET}");
    let first = server.get(&path, &[(RANGE, "bytes=0-4095")]);
    let etag = header(&first, &ETAG).to_owned();
    let mut joined = first.bytes().unwrap().to_vec();
    let rest = server.get(&path, &[(RANGE, "bytes=4096-"), (IF_RANGE, &etag)]);
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    joined.extend_from_slice(&rest.bytes().unwrap());
    assert_eq!(joined, image);

    // A validator from another version of the file restarts the download.
    let stale = server.get(&path, &[(RANGE, "bytes=4096-"), (IF_RANGE, "\"stale\"")]);
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.bytes().unwrap().as_ref(), image);
}

#[test]
fn metadata_is_gzipped_on_request_and_targets_never() {
    let server = Server::start();
    let original = server.file("metadata/3.targets.json");
    let response = server.get("/metadata/3.targets.json", &[(ACCEPT_ENCODING, "gzip")]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_ENCODING), "gzip");
    assert_eq!(header(&response, &VARY), "accept-encoding");
    assert_eq!(header(&response, &CONTENT_TYPE), "application/json");
    let compressed = response.bytes().unwrap();
    assert!(compressed.len() < original.len() / 2);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(compressed.as_ref())
        .read_to_end(&mut decoded)
        .unwrap();
    assert_eq!(decoded, original);

    let head = server
        .client
        .head(server.url("/metadata/3.targets.json"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .unwrap();
    assert_eq!(header(&head, &CONTENT_ENCODING), "gzip");
    assert_eq!(header(&head, &CONTENT_LENGTH), compressed.len().to_string());

    let plain = server.get("/metadata/3.targets.json", &[(ACCEPT_ENCODING, "gzip;q=0")]);
    assert_eq!(header(&plain, &CONTENT_ENCODING), "");
    assert_eq!(header(&plain, &VARY), "accept-encoding");
    assert_eq!(plain.bytes().unwrap().as_ref(), original);

    // A Range applies to the stored bytes, so it turns gzip off.
    let ranged = server.get(
        "/metadata/3.targets.json",
        &[(ACCEPT_ENCODING, "gzip"), (RANGE, "bytes=0-9")],
    );
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&ranged, &CONTENT_ENCODING), "");
    assert_eq!(ranged.bytes().unwrap().as_ref(), &original[..10]);

    let image = server.file(&format!("targets/{TARGET}"));
    let target = server.get(&format!("/targets/{TARGET}"), &[(ACCEPT_ENCODING, "gzip")]);
    assert_eq!(header(&target, &CONTENT_ENCODING), "");
    assert_eq!(header(&target, &VARY), "");
    assert_eq!(target.bytes().unwrap().as_ref(), image);
}

#[test]
fn validators_give_304() {
    let server = Server::start();
    for (path, encoding) in [
        ("/metadata/timestamp.json", "identity"),
        ("/metadata/timestamp.json", "gzip"),
        (&format!("/targets/{TARGET}") as &str, "identity"),
    ] {
        let first = server.get(path, &[(ACCEPT_ENCODING, encoding)]);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = header(&first, &ETAG).to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong tag: {etag}"
        );
        let modified = header(&first, &LAST_MODIFIED).to_owned();
        assert!(!modified.is_empty());
        let again = server.get(path, &[(ACCEPT_ENCODING, encoding), (IF_NONE_MATCH, &etag)]);
        assert_eq!(
            again.status(),
            StatusCode::NOT_MODIFIED,
            "{path} {encoding}"
        );
        assert_eq!(header(&again, &ETAG), etag);
        assert!(again.bytes().unwrap().is_empty());
        let since = server.get(
            path,
            &[(ACCEPT_ENCODING, encoding), (IF_MODIFIED_SINCE, &modified)],
        );
        assert_eq!(
            since.status(),
            StatusCode::NOT_MODIFIED,
            "{path} {encoding}"
        );
        let other = server.get(
            path,
            &[(ACCEPT_ENCODING, encoding), (IF_NONE_MATCH, "\"x\"")],
        );
        assert_eq!(other.status(), StatusCode::OK);
    }

    let identity = server.get("/metadata/timestamp.json", &[]);
    let gzip = server.get("/metadata/timestamp.json", &[(ACCEPT_ENCODING, "gzip")]);
    assert_ne!(header(&identity, &ETAG), header(&gzip, &ETAG));

    // Rewritten in place with the same length: the content-hash tag still changes.
    let etag = header(&identity, &ETAG).to_owned();
    let old = server.file("metadata/timestamp.json");
    let new = String::from_utf8(old)
        .unwrap()
        .replace("\"version\":3", "\"version\":4");
    std::fs::write(server.dir.path().join("metadata/timestamp.json"), new).unwrap();
    let changed = server.get("/metadata/timestamp.json", &[(IF_NONE_MATCH, &etag)]);
    assert_eq!(changed.status(), StatusCode::OK);
    assert!(changed.text().unwrap().contains("\"version\":4"));
}

#[test]
fn cache_control_follows_versioning() {
    let server = Server::start();
    for (path, expected) in [
        ("/metadata/timestamp.json", "no-cache"),
        ("/metadata/root.json", "no-cache"),
        ("/metadata/1.root.json", IMMUTABLE),
        ("/metadata/3.snapshot.json", IMMUTABLE),
        ("/metadata/3.targets.json", IMMUTABLE),
        (&format!("/targets/{TARGET}") as &str, IMMUTABLE),
        ("/metadata/2.root.json", "no-cache"),
    ] {
        let response = server.get(path, &[]);
        assert_eq!(header(&response, &CACHE_CONTROL), expected, "{path}");
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The server runs in this process, so its memory is this process's VmRSS. Sampled every MiB
/// while the client reads with a small buffer: a server buffering the file would show the
/// whole 64 MiB before or during the transfer.
#[test]
fn a_64_mib_target_streams_in_bounded_memory() {
    const MIB: usize = 1024 * 1024;
    let server = Server::start();
    let path = server.dir.path().join("targets/big.img");
    let mut expected = Sha256::new();
    let mut out = std::fs::File::create(&path).unwrap();
    let mut chunk = vec![0u8; MIB];
    for i in 0..64u32 {
        for (j, b) in chunk.iter_mut().enumerate() {
            *b = (j as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(i)
                .to_le_bytes()[1];
        }
        out.write_all(&chunk).unwrap();
        expected.update(&chunk);
    }
    drop((out, chunk));
    // Warm up runtime threads and the connection pool before the baseline.
    assert_eq!(
        server.get("/metadata/root.json", &[]).status(),
        StatusCode::OK
    );
    let before = vm_rss_kib();

    let mut response = server.get("/targets/big.img", &[]);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, &CONTENT_LENGTH), (64 * MIB).to_string());
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let (mut total, mut next_sample, mut peak) = (0usize, 0usize, before);
    loop {
        let n = response.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
        if total >= next_sample {
            peak = peak.max(vm_rss_kib());
            next_sample += MIB;
        }
    }
    assert_eq!(total, 64 * MIB);
    assert_eq!(hasher.finalize(), expected.finalize());
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("VmRSS before {before} KiB, peak {peak} KiB, growth {growth_mib} MiB");
    assert!(
        growth_mib < 32,
        "memory grew by {growth_mib} MiB serving 64 MiB"
    );
}

#[test]
fn serve_returns_after_shutdown_and_refuses_a_missing_dir() {
    let server_dir = tempfile::tempdir().unwrap();
    populate(server_dir.path());
    let runtime = runtime();
    let listener = runtime
        .block_on(serve::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let signal = runtime.spawn_blocking(move || stopped.recv_timeout(WAIT));
    let shutdown = async move {
        let _ = signal.await;
    };
    let task = runtime.spawn(serve::serve(
        server_dir.path().to_owned(),
        listener,
        Default::default(),
        shutdown,
    ));
    // A pooled keep-alive connection must not hold the shutdown up.
    let client = Client::builder().timeout(WAIT).build().unwrap();
    let response = client
        .get(format!("http://{addr}/metadata/root.json"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().unwrap();
    stop.send(()).unwrap();
    let deadline = Instant::now() + WAIT;
    while !task.is_finished() {
        assert!(
            Instant::now() < deadline,
            "serve did not return after shutdown"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.block_on(task).unwrap().unwrap();

    let listener = runtime
        .block_on(serve::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let missing = server_dir.path().join("no-such-repo");
    let error = runtime
        .block_on(serve::serve(
            missing.clone(),
            listener,
            Default::default(),
            std::future::pending(),
        ))
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&*missing.to_string_lossy()), "{message}");
    assert!(message.contains("expected a directory"), "{message}");
    runtime.shutdown_timeout(Duration::from_secs(5));
}
