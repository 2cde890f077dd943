//! Bounded HTTP fetching. Every fetch has a byte cap (metadata size limits, or the signed
//! length of a target), a per-read timeout and a minimum average speed, so neither endless
//! data nor slow retrieval can hold a client. Interrupted bodies resume with HTTP Range.

use crate::error::{Error, Result};
use std::io::Read;
use std::time::{Duration, Instant};

/// The largest read from a response body.
const READ_BUFFER: u64 = 1 << 20;

/// How patient a fetch is.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub connect_timeout: Duration,
    /// Longest wait for any single read.
    pub read_timeout: Duration,
    /// Minimum average bytes/s, enforced once `speed_grace` has passed.
    pub min_bytes_per_sec: u64,
    pub speed_grace: Duration,
    /// How many times an interrupted body is resumed with a Range request.
    pub resume_attempts: u32,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            min_bytes_per_sec: 1024,
            speed_grace: Duration::from_secs(10),
            resume_attempts: 3,
        }
    }
}

/// Why a [`ReadSink`] stopped: reading the body failed (a broken connection, which may be
/// resumed) or the sink refused what it got (never retried).
#[derive(Debug)]
pub enum SinkStop {
    Read(std::io::Error),
    Refused(Error),
}

/// Reads one piece of a response body from the reader it is given; the byte count, 0 at the
/// end of the body.
pub type ReadSink<'a> = dyn FnMut(&mut dyn Read) -> std::result::Result<usize, SinkStop> + 'a;

/// The transport the updater uses. Tests and other transports (a bundle on disk, a relay)
/// implement this; production uses [`HttpFetcher`].
pub trait Fetcher: std::fmt::Debug {
    /// Stream `url` into `sink`, refusing more than `max_len` bytes. Returns the byte count.
    fn fetch(
        &self,
        url: &str,
        max_len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64>;

    /// Like [`Fetcher::fetch`], but `sink` reads each piece of the body itself, straight into
    /// a buffer of its own, so an image's bytes are copied once on their way in, not twice.
    /// The reader it is handed is limited to the bytes still allowed plus one, so more than
    /// `max_len` is still refused, but that one byte may be in the sink's buffer when the
    /// fetch fails: a sink must take nothing as whole unless the fetch returned `Ok`. The
    /// default goes through [`Fetcher::fetch`].
    fn fetch_reading(&self, url: &str, max_len: u64, sink: &mut ReadSink<'_>) -> Result<u64> {
        self.fetch(url, max_len, &mut |mut chunk: &[u8]| {
            while !chunk.is_empty() {
                match sink(&mut chunk) {
                    Ok(0) => return Err(transport(url, "the receiver took no bytes")),
                    Ok(_) => {}
                    Err(SinkStop::Read(e)) => return Err(transport(url, e)),
                    Err(SinkStop::Refused(e)) => return Err(e),
                }
            }
            Ok(())
        })
    }

    /// The whole body of `url`, at most `max_len` bytes.
    fn fetch_bytes(&self, url: &str, max_len: u64) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        self.fetch(url, max_len, &mut |chunk| {
            body.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(body)
    }
}

#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::blocking::Client,
    policy: FetchPolicy,
}

impl HttpFetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self> {
        let client = Self::client_builder(&policy)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(HttpFetcher { client, policy })
    }

    /// The client settings `policy` asks for, to which a caller adds what its server needs
    /// (a bearer token as a default header, a client certificate, a private CA).
    pub fn client_builder(policy: &FetchPolicy) -> reqwest::blocking::ClientBuilder {
        reqwest::blocking::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.read_timeout)
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")))
    }

    /// A fetcher over a client built from [`HttpFetcher::client_builder`].
    pub fn with_client(client: reqwest::blocking::Client, policy: FetchPolicy) -> Self {
        HttpFetcher { client, policy }
    }
}

fn transport(url: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

impl Fetcher for HttpFetcher {
    fn fetch(
        &self,
        url: &str,
        max_len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<u64> {
        // Large reads for images (fewer wake-ups per GiB), no more than needed for metadata;
        // never empty, or the first read would look like the end of the body.
        let size = usize::try_from(max_len.min(READ_BUFFER))
            .unwrap_or(1)
            .max(1);
        let mut buf = vec![0u8; size];
        let mut seen: u64 = 0;
        self.fetch_reading(url, max_len, &mut |body| {
            let n = body.read(&mut buf).map_err(SinkStop::Read)?;
            // The byte that shows the cap was passed is refused by the caller; it never
            // reaches `sink`.
            let within = usize::try_from(max_len.saturating_sub(seen)).map_or(n, |w| w.min(n));
            seen += n as u64;
            if within > 0 {
                sink(&buf[..within]).map_err(SinkStop::Refused)?;
            }
            Ok(n)
        })
    }

    fn fetch_reading(&self, url: &str, max_len: u64, sink: &mut ReadSink<'_>) -> Result<u64> {
        let start = Instant::now();
        let mut total: u64 = 0;
        let mut attempts = 0;
        // The first response's strong ETag: a resume asks for the rest of *that* file
        // (If-Range), so a file replaced between attempts restarts instead of being spliced.
        let mut etag: Option<reqwest::header::HeaderValue> = None;
        loop {
            let mut request = self.client.get(url);
            if total > 0 {
                request = request.header(reqwest::header::RANGE, format!("bytes={total}-"));
                if let Some(tag) = &etag {
                    request = request.header(reqwest::header::IF_RANGE, tag.clone());
                }
            }
            let mut response = request.send().map_err(|e| transport(url, e))?;
            let status = response.status();
            if total == 0 {
                etag = response
                    .headers()
                    .get(reqwest::header::ETAG)
                    .filter(|t| !t.as_bytes().starts_with(b"W/"))
                    .cloned();
            }
            if total > 0 && status != reqwest::StatusCode::PARTIAL_CONTENT {
                return Err(transport(url, format!("cannot resume at byte {total}: server answered {status} to a Range request")));
            }
            if !status.is_success() {
                return Err(Error::HttpStatus {
                    url: url.to_owned(),
                    status: status.as_u16(),
                });
            }
            if response
                .content_length()
                .is_some_and(|len| total + len > max_len)
            {
                return Err(Error::TooLarge {
                    url: url.to_owned(),
                    limit: max_len,
                });
            }
            match self.read_body(url, &mut response, max_len, start, &mut total, sink) {
                Ok(()) => return Ok(total),
                Err(Error::Transport { reason, .. })
                    if total > 0 && attempts < self.policy.resume_attempts =>
                {
                    attempts += 1;
                    tracing::warn!(url, total, attempts, %reason, "download interrupted; resuming");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl HttpFetcher {
    fn read_body(
        &self,
        url: &str,
        response: &mut reqwest::blocking::Response,
        max_len: u64,
        start: Instant,
        total: &mut u64,
        sink: &mut ReadSink<'_>,
    ) -> Result<()> {
        loop {
            // One byte past the limit is what shows it was passed.
            let room = max_len.saturating_sub(*total).saturating_add(1);
            let n = match sink(&mut response.by_ref().take(room)) {
                Ok(n) => n,
                Err(SinkStop::Read(e)) => return Err(transport(url, e)),
                Err(SinkStop::Refused(e)) => return Err(e),
            };
            if n == 0 {
                return Ok(());
            }
            *total += n as u64;
            if *total > max_len {
                return Err(Error::TooLarge {
                    url: url.to_owned(),
                    limit: max_len,
                });
            }
            let elapsed = start.elapsed();
            if elapsed > self.policy.speed_grace {
                let rate = *total / elapsed.as_secs().max(1);
                if rate < self.policy.min_bytes_per_sec {
                    return Err(Error::TooSlow {
                        url: url.to_owned(),
                        bytes: *total,
                        seconds: elapsed.as_secs(),
                        minimum: self.policy.min_bytes_per_sec,
                    });
                }
            }
        }
    }
}
