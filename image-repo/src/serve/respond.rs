//! One file response: validators, conditional requests, Range, gzip and the streamed body.
//!
//! ETags are strong. Metadata (read into memory anyway, being at most [`GZIP_MAX`]) is tagged
//! by a SHA-256 of its bytes, so a rewrite of `timestamp.json` within one mtime tick still
//! changes the tag; its gzip form is tagged `"<hash>-gzip"`, being another representation.
//! Targets and oversized metadata are streamed and tagged by a SHA-256 of (device, inode,
//! length, mtime in ns), as nginx and Apache do: the editor replaces files by rename, which
//! changes the inode, and target names carry their content hash anyway.

use super::negotiate::{accepts_gzip, not_modified, range_allowed};
use super::path::{open_inside, segments, Opened};
use super::range::{self, Outcome};
use axum::body::{Body, Bytes};
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, LAST_MODIFIED, RANGE, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Metadata up to this size is read into memory and may be gzipped; larger files stream as
/// they are, so one request never holds more than this.
pub const GZIP_MAX: u64 = 64 * 1024 * 1024;

const NO_CACHE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The two served subdirectories of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Area {
    Metadata,
    Targets,
}

impl Area {
    fn dir_name(self) -> &'static str {
        match self {
            Area::Metadata => "metadata",
            Area::Targets => "targets",
        }
    }
}

enum Source {
    Memory(Bytes),
    File(std::fs::File),
}

/// A file found and ready to send, with what identifies its current version.
struct Found {
    source: Source,
    len: u64,
    /// Quoted, for the identity representation.
    etag: String,
    modified: Option<SystemTime>,
}

/// Answers GET or HEAD for `raw_path` (still percent-encoded, below the area's prefix).
pub(super) async fn respond(
    repo: &Path,
    area: Area,
    raw_path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let Some(segments) = segments(raw_path) else {
        return not_found();
    };
    let name = segments.last().cloned().unwrap_or_default();
    let base = repo.join(area.dir_name());
    let found = match tokio::task::spawn_blocking(move || find(area, &base, &segments)).await {
        Ok(Ok(Some(found))) => found,
        Ok(Ok(None)) => return not_found(),
        Ok(Err((real, e))) => {
            tracing::warn!(path = %real.display(), error = %e, "reading a served file failed");
            return internal_error();
        }
        Err(e) => {
            tracing::warn!(error = %e, "file lookup task failed");
            return internal_error();
        }
    };
    let gzip = match &found.source {
        Source::Memory(bytes)
            if area == Area::Metadata && !headers.contains_key(RANGE) && accepts_gzip(headers) =>
        {
            Some(bytes.clone())
        }
        _ => None,
    };
    let etag = if gzip.is_some() {
        format!("{}-gzip\"", found.etag.trim_end_matches('"'))
    } else {
        found.etag.clone()
    };

    let mut response = Response::new(Body::empty());
    let h = response.headers_mut();
    set(h, ETAG, &etag);
    if let Some(modified) = found.modified {
        set(h, LAST_MODIFIED, &httpdate::fmt_http_date(modified));
    }
    set(h, CACHE_CONTROL, cache_control(area, &name));
    if area == Area::Metadata {
        set(h, VARY, "accept-encoding");
    }
    set(h, ACCEPT_RANGES, "bytes");
    if not_modified(headers, &etag, found.modified) {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    set(response.headers_mut(), CONTENT_TYPE, content_type(&name));
    match gzip {
        Some(bytes) => gzipped(response, method, bytes).await,
        None => ranged(response, method, headers, found, &etag),
    }
}

async fn gzipped(mut response: Response, method: &Method, bytes: Bytes) -> Response {
    let compressed = match tokio::task::spawn_blocking(move || gzip_bytes(&bytes)).await {
        Ok(Ok(compressed)) => compressed,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "gzip of metadata failed");
            return internal_error();
        }
        Err(e) => {
            tracing::warn!(error = %e, "gzip task failed");
            return internal_error();
        }
    };
    set(response.headers_mut(), CONTENT_ENCODING, "gzip");
    let len = compressed.len() as u64;
    with_body(response, method, Source::Memory(compressed), 0, len)
}

/// The identity representation, whole or the one byte range asked for.
fn ranged(
    mut response: Response,
    method: &Method,
    headers: &HeaderMap,
    found: Found,
    etag: &str,
) -> Response {
    // RFC 9110 §14.2: GET is the only method with range handling.
    let range = headers
        .get(RANGE)
        .filter(|_| method == Method::GET && range_allowed(headers, etag, found.modified))
        .and_then(|v| v.to_str().ok())
        .map_or(Outcome::Full, |v| range::evaluate(v, found.len));
    match range {
        Outcome::Full => with_body(response, method, found.source, 0, found.len),
        Outcome::Partial { first, last } => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {first}-{last}/{}", found.len);
            set(response.headers_mut(), CONTENT_RANGE, &content_range);
            with_body(response, method, found.source, first, last - first + 1)
        }
        Outcome::Unsatisfiable => {
            *response.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            let h = response.headers_mut();
            set(h, CONTENT_RANGE, &format!("bytes */{}", found.len));
            set(h, CONTENT_TYPE, "text/plain; charset=utf-8");
            // The file's own freshness would let a cache keep this answer for a year.
            set(h, CACHE_CONTROL, "no-store");
            let text = format!(
                "range not satisfiable: the file is {} bytes long\n",
                found.len
            );
            let text = Source::Memory(Bytes::from(text));
            with_body(response, method, text, 0, u64::MAX)
        }
    }
}

/// Locates and opens the file, reading metadata into memory. The error carries the real path,
/// for the server log only.
fn find(
    area: Area,
    base: &Path,
    segments: &[String],
) -> Result<Option<Found>, (PathBuf, io::Error)> {
    let Some(Opened {
        mut file,
        meta,
        real,
    }) = open_inside(base, segments).map_err(|e| (base.join(segments.join("/")), e))?
    else {
        return Ok(None);
    };
    let modified = meta.modified().ok().filter(|t| http_date_range(*t));
    if area == Area::Metadata && meta.len() <= GZIP_MAX {
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or_default());
        // Bounded: a file growing while read must not take more than the cap.
        (&mut file)
            .take(GZIP_MAX)
            .read_to_end(&mut bytes)
            .map_err(|e| (real, e))?;
        let etag = quoted_hash(&bytes);
        return Ok(Some(Found {
            len: bytes.len() as u64,
            source: Source::Memory(Bytes::from(bytes)),
            etag,
            modified,
        }));
    }
    Ok(Some(Found {
        len: meta.len(),
        etag: quoted_hash(stat_identity(&meta, modified).as_bytes()),
        source: Source::File(file),
        modified,
    }))
}

/// Sets the body to `len` bytes of `source` from `first` (clamped to what there is); HEAD
/// gets the same headers and no body.
fn with_body(
    mut response: Response,
    method: &Method,
    source: Source,
    first: u64,
    len: u64,
) -> Response {
    let body = match source {
        Source::Memory(bytes) => {
            let start = usize::try_from(first)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(first.saturating_add(len))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let part = bytes.slice(start..end);
            set(
                response.headers_mut(),
                CONTENT_LENGTH,
                &part.len().to_string(),
            );
            Body::from(part)
        }
        Source::File(mut file) => {
            set(response.headers_mut(), CONTENT_LENGTH, &len.to_string());
            if method == Method::HEAD {
                Body::empty()
            } else {
                // lseek does no I/O, so it is fine on the async thread.
                if let Err(e) = file.seek(SeekFrom::Start(first)) {
                    tracing::warn!(error = %e, "seeking in a served file failed");
                    return internal_error();
                }
                super::file_body::body(file, len)
            }
        }
    };
    if method == Method::HEAD {
        return response;
    }
    *response.body_mut() = body;
    response
}

fn gzip_bytes(bytes: &[u8]) -> io::Result<Bytes> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(Bytes::from(encoder.finish()?))
}

fn cache_control(area: Area, name: &str) -> &'static str {
    // `N.name` is never rewritten (consistent snapshots); a target name carries its hash.
    let versioned = name.split_once('.').is_some_and(|(n, rest)| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
    });
    if area == Area::Targets || versioned {
        IMMUTABLE
    } else {
        NO_CACHE
    }
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

fn quoted_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn stat_identity(meta: &std::fs::Metadata, modified: Option<SystemTime>) -> String {
    let nanos = modified
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let (dev, ino) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (dev, ino) = (0u64, 0u64);
    format!("{dev}:{ino}:{}:{nanos}", meta.len())
}

/// HTTP dates cover 1970 to 9999; httpdate panics outside that, so such mtimes are dropped.
fn http_date_range(t: SystemTime) -> bool {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    t.duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|d| d < YEAR_10000)
}

fn set(headers: &mut HeaderMap, name: axum::http::HeaderName, value: &str) {
    // Every value set here is ASCII built by this module; a failure would drop one header,
    // never panic.
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

pub(super) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found\n")
}

fn internal_error() -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error reading the file\n",
    )
}

/// Error responses are not cached: a 404 for `N.root.json` must not outlive the file's
/// publication, since clients probe for the next root version.
fn error(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (CACHE_CONTROL, NO_CACHE),
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{cache_control, Area, IMMUTABLE, NO_CACHE};

    #[test]
    fn versioned_names_are_immutable() {
        assert_eq!(cache_control(Area::Metadata, "1.root.json"), IMMUTABLE);
        assert_eq!(cache_control(Area::Metadata, "12.snapshot.json"), IMMUTABLE);
        assert_eq!(cache_control(Area::Metadata, "root.json"), NO_CACHE);
        assert_eq!(cache_control(Area::Metadata, "timestamp.json"), NO_CACHE);
        assert_eq!(cache_control(Area::Metadata, "v1.root.json"), NO_CACHE);
        assert_eq!(cache_control(Area::Metadata, "1."), NO_CACHE);
        assert_eq!(cache_control(Area::Targets, "abc.img"), IMMUTABLE);
    }
}
