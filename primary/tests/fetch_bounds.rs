//! The fetcher against hostile servers on 127.0.0.1: endless data, slow retrieval, a body cut
//! mid-way (resumed with Range), and a server that ignores Range.
#![allow(clippy::unwrap_used)]

use ferry_primary::{Error, FetchPolicy, Fetcher, HttpFetcher};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Heads = Arc<std::sync::Mutex<Vec<String>>>;

/// Serve each connection with `handler(connection index, requested range start, stream)`.
fn serve(handler: impl Fn(usize, Option<u64>, &mut TcpStream) + Send + Sync + 'static) -> String {
    serve_recording(handler).0
}

/// [`serve`], also recording each request's header lines (lowercased).
fn serve_recording(
    handler: impl Fn(usize, Option<u64>, &mut TcpStream) + Send + Sync + 'static,
) -> (String, Heads) {
    let heads: Heads = Arc::default();
    let recorded = heads.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16) {
            let Ok(mut stream) = stream else { continue };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            let recorded = recorded.clone();
            std::thread::spawn(move || {
                let mut range = None;
                let mut head = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line.to_ascii_lowercase());
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                        range = v.trim().trim_end_matches('-').parse().ok();
                    }
                }
                recorded.lock().unwrap().push(head);
                handler(n, range, &mut stream);
            });
        }
    });
    (format!("http://{addr}/file"), heads)
}

fn policy() -> FetchPolicy {
    FetchPolicy {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
        min_bytes_per_sec: 10_000,
        speed_grace: Duration::from_secs(1),
        resume_attempts: 2,
    }
}

#[test]
fn endless_data_stops_at_the_cap() {
    let url = serve(|_, _, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = [b'x'; 8192];
        while s.write_all(&chunk).is_ok() {}
    });
    let fetcher = HttpFetcher::new(policy()).unwrap();
    let mut received = 0u64;
    let err = fetcher
        .fetch(&url, 100_000, &mut |c| {
            received += c.len() as u64;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 100_000, .. }),
        "{err}"
    );
    assert!(
        received <= 100_000,
        "no byte past the cap reaches the sink ({received})"
    );
}

#[test]
fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let url = serve(|_, _, s| {
        let _ =
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n");
    });
    let err = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 10)
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[test]
fn slow_retrieval_is_aborted() {
    let url = serve(|_, _, s| {
        let _ =
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n");
        for _ in 0..100 {
            if s.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let err = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 100_000)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooSlow {
                minimum: 10_000,
                ..
            }
        ),
        "{err}"
    );
}

const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[test]
fn a_cut_connection_is_resumed_with_range() {
    let url = serve(|n, range, s| {
        if n == 0 {
            // Promise the whole body, send half, hang up.
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                BODY.len()
            );
            let _ = s.write_all(&BODY[..10]);
            return;
        }
        let start = range.unwrap() as usize;
        let _ = write!(
            s,
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            BODY.len() - 1,
            BODY.len(),
            BODY.len() - start
        );
        let _ = s.write_all(&BODY[start..]);
    });
    let body = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 1000)
        .unwrap();
    assert_eq!(body, BODY);
}

#[test]
fn a_server_that_ignores_range_cannot_corrupt_a_resumed_download() {
    let url = serve(|n, _, s| {
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            BODY.len()
        );
        let _ = s.write_all(if n == 0 { &BODY[..10] } else { BODY });
    });
    let err = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 1000)
        .unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
}

#[test]
fn http_errors_name_the_status() {
    let url = serve(|_, _, s| {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    });
    let err = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 10)
        .unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 404, .. }),
        "{err}"
    );
}

#[test]
fn a_resume_asks_for_the_rest_of_the_same_file() {
    let (url, heads) = serve_recording(|n, range, s| {
        if n == 0 {
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                BODY.len()
            );
            let _ = s.write_all(&BODY[..10]);
            return;
        }
        let start = range.unwrap() as usize;
        let _ = write!(
            s,
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            BODY.len() - 1,
            BODY.len(),
            BODY.len() - start
        );
        let _ = s.write_all(&BODY[start..]);
    });
    let body = HttpFetcher::new(policy())
        .unwrap()
        .fetch_bytes(&url, 1000)
        .unwrap();
    assert_eq!(body, BODY);
    let heads = heads.lock().unwrap();
    assert!(heads[1].contains("range: bytes=10-"), "{heads:?}");
    assert!(
        heads[1].contains("if-range: \"v1\""),
        "resume must carry the first ETag: {heads:?}"
    );
}

/// `fetch_reading` with a sink that reads into a buffer of its own, as the image stream does.
fn read_all(url: &str, cap: u64, refuse_after: Option<usize>) -> (Result<u64, Error>, Vec<u8>) {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let result =
        HttpFetcher::new(policy())
            .unwrap()
            .fetch_reading(url, cap, &mut |body: &mut dyn Read| {
                if refuse_after.is_some_and(|limit| got.len() >= limit) {
                    return Err(ferry_primary::SinkStop::Refused(Error::Config(
                        "refused by the sink".into(),
                    )));
                }
                let n = body.read(&mut buf).map_err(ferry_primary::SinkStop::Read)?;
                got.extend_from_slice(&buf[..n]);
                Ok(n)
            });
    (result, got)
}

#[test]
fn reading_sinks_are_bounded_by_the_cap_plus_one_byte() {
    let url = serve(|_, _, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = [b'x'; 8192];
        while s.write_all(&chunk).is_ok() {}
    });
    let (result, got) = read_all(&url, 100_000, None);
    let err = result.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 100_000, .. }),
        "{err}"
    );
    assert_eq!(got.len(), 100_001, "the reader stops one byte past the cap");
}

#[test]
fn a_reading_sink_resumes_after_a_cut_but_a_refusal_is_never_retried() {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let url = serve(move |n, range, s| {
        counted.fetch_add(1, Ordering::SeqCst);
        let start = range.unwrap_or(0) as usize;
        let status = if n == 0 {
            "200 OK"
        } else {
            "206 Partial Content"
        };
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            BODY.len() - 1,
            BODY.len(),
            BODY.len() - start
        );
        // The first connection hangs up half way.
        let end = if n == 0 { 10 } else { BODY.len() };
        let _ = s.write_all(&BODY[start..end]);
    });
    let (result, got) = read_all(&url, 1000, None);
    assert_eq!(result.unwrap(), BODY.len() as u64);
    assert_eq!(got, BODY);
    let before = requests.load(Ordering::SeqCst);
    assert_eq!(before, 2, "one cut, one resume");

    // Refused once some bytes arrived: a broken connection at that point would be resumed.
    let (result, _) = read_all(&url, 1000, Some(1));
    let err = result.unwrap_err();
    assert!(err.to_string().contains("refused by the sink"), "{err}");
    assert_eq!(
        requests.load(Ordering::SeqCst),
        before + 1,
        "a sink's refusal is not a broken connection: no Range retry"
    );
}
