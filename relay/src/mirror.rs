//! The Image repository side: a caching mirror under `cache_dir/mirror/` laid out as a
//! repository (`metadata/`, `targets/`), served by `ferry repo serve`'s own code.
//!
//! - Immutable files (every target; metadata named `N.ROLE.json` other than roots) are
//!   fetched upstream on the first request, once however many vehicles wait for it (one
//!   fetch per path at a time: the others wait for it and are served from the cache), into
//!   `cache_dir/partial/` first, resumed with Range and If-Range when a fetch was cut (a
//!   crash, a lost uplink), moved into the mirror once complete. Past `cache_max` the least
//!   recently used go.
//! - Unversioned metadata (`timestamp.json`, `root.json`, `N.root.json` probes, unversioned
//!   delegations) is asked upstream every time; its answer is passed on (a 404 too: that is
//!   how a vehicle learns there is no newer root) and a 200 kept as the last copy, served
//!   when upstream does not answer. The vehicle judges its freshness: an old timestamp
//!   served from here expires on the vehicle, never silently.

use crate::error::{io_at, Error, Result};
use crate::server::Relay;
use axum::body::Body;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Unversioned metadata larger than this is refused (as `ferry repo serve` would never gzip).
const MAX_METADATA: u64 = ferry_image_repo::serve::GZIP_MAX;

/// Response header saying the relay answered from its last copy because upstream did not.
pub const STALE: &str = "ferry-relay-stale";

/// Whether a metadata file name is immutable: `N.ROLE.json` with ROLE not root.
pub fn immutable_metadata(name: &str) -> bool {
    match name.split_once('.') {
        Some((n, rest)) => {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && rest != "root.json"
        }
        None => false,
    }
}

/// Whether a metadata file name is a versioned root (`N.root.json`), which clients probe for.
pub fn root_probe(name: &str) -> bool {
    name.strip_suffix(".root.json")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub async fn metadata(
    State(relay): State<Arc<Relay>>,
    params: RawPathParams,
    method: Method,
    headers: HeaderMap,
) -> Response {
    handle(&relay, false, &params, &method, &headers).await
}

pub async fn targets(
    State(relay): State<Arc<Relay>>,
    params: RawPathParams,
    method: Method,
    headers: HeaderMap,
) -> Response {
    handle(&relay, true, &params, &method, &headers).await
}

async fn handle(
    relay: &Arc<Relay>,
    targets: bool,
    params: &RawPathParams,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let Some((_, raw)) = params.iter().find(|(name, _)| *name == "path") else {
        return ferry_image_repo::serve::not_found_response();
    };
    let Some(segments) = ferry_image_repo::serve::path_segments(raw) else {
        return ferry_image_repo::serve::not_found_response();
    };
    let area = if targets { "targets" } else { "metadata" };
    let file = MirrorFile {
        key: format!("{area}/{}", segments.join("/")),
        url: format!("{}/{area}/{raw}", relay.config.upstream.image_repo),
        targets,
        raw: raw.to_owned(),
    };
    let name = segments.last().map(String::as_str).unwrap_or_default();
    let outcome = if targets || immutable_metadata(name) {
        immutable(relay, &file).await
    } else {
        unversioned(relay, &file).await
    };
    match outcome {
        Ok(stale) => {
            let mut response = ferry_image_repo::serve::respond_in(
                &relay.mirror_dir,
                targets,
                raw,
                method,
                headers,
            )
            .await;
            if stale {
                response
                    .headers_mut()
                    .insert(STALE, HeaderValue::from_static("1"));
            }
            response
        }
        Err(Refusal::NotFound) => ferry_image_repo::serve::not_found_response(),
        Err(Refusal::Failed(e)) => {
            tracing::warn!(path = %file.key, error = %e, "mirror request failed");
            (
                StatusCode::BAD_GATEWAY,
                [(axum::http::header::CACHE_CONTROL, "no-store")],
                format!("relay: {e}\n"),
            )
                .into_response()
        }
    }
}

/// One file of the mirror: its cache key (`targets/a/b`), its upstream URL.
#[derive(Debug, Clone)]
pub struct MirrorFile {
    pub key: String,
    pub url: String,
    pub targets: bool,
    pub raw: String,
}

#[derive(Debug)]
pub enum Refusal {
    NotFound,
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Failed(e)
    }
}

/// Make sure the immutable `file` is in the cache: Ok(false) once it is there.
async fn immutable(relay: &Arc<Relay>, file: &MirrorFile) -> std::result::Result<bool, Refusal> {
    let now = relay.now_ms();
    let path = relay.mirror_dir.join(&file.key);
    if blocking(relay, {
        let k = file.key.clone();
        move |r| r.db.touch(&k, now)
    })
    .await?
        && path.is_file()
    {
        blocking(relay, |r| r.db.count("hits", 1)).await?;
        return Ok(false);
    }
    // One fetch per path: whoever comes second waits here, then finds the file cached. The
    // fetch runs on a task of its own holding the path's lock, so it goes on (and keeps
    // others waiting) even when the vehicle that started it gives up.
    let flight = relay.flight(&file.key);
    let guard = flight.clone().lock_owned().await;
    if blocking(relay, {
        let k = file.key.clone();
        move |r| r.db.touch(&k, now)
    })
    .await?
        && path.is_file()
    {
        drop(guard);
        relay.land(&file.key, flight);
        blocking(relay, |r| r.db.count("hits", 1)).await?;
        return Ok(false);
    }
    let (task_relay, task_file) = (relay.clone(), file.clone());
    let task = tokio::spawn(async move {
        let outcome = match blocking(&task_relay, |r| r.db.count("misses", 1)).await {
            Ok(()) => fetch_into_cache(&task_relay, &task_file).await,
            Err(e) => Err(e.into()),
        };
        drop(guard);
        task_relay.land(&task_file.key, flight);
        outcome
    });
    match task.await {
        Ok(outcome) => outcome.map(|()| false),
        Err(e) => Err(Error::Io {
            path: relay.partial_dir.clone(),
            source: std::io::Error::other(format!("the fetch task failed: {e}")),
        }
        .into()),
    }
}

/// Fetch `file` upstream into the cache, resuming a partial copy left by an earlier attempt.
pub async fn fetch_into_cache(
    relay: &Arc<Relay>,
    file: &MirrorFile,
) -> std::result::Result<(), Refusal> {
    let id = hex::encode(Sha256::digest(file.key.as_bytes()));
    let partial = relay.partial_dir.join(&id);
    let tag_file = relay.partial_dir.join(format!("{id}.etag"));
    let have = tokio::fs::metadata(&partial)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let tag = tokio::fs::read_to_string(&tag_file).await.ok();
    let mut request = relay.upstream.client.get(&file.url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        if let Some(tag) = &tag {
            request = request.header(reqwest::header::IF_RANGE, tag.trim());
        }
    }
    let mut response = match request.send().await {
        Ok(r) => {
            relay.upstream.saw(Ok(()), relay.clock.now());
            r
        }
        Err(e) => {
            let reason = ferry_http::with_causes(&e);
            relay.upstream.saw(Err(reason.clone()), relay.clock.now());
            return Err(Error::Upstream {
                url: file.url.clone(),
                reason: format!("{reason}; the file is not cached yet"),
            }
            .into());
        }
    };
    let status = response.status();
    let resume = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => true,
        StatusCode::OK => false,
        StatusCode::NOT_FOUND => return Err(Refusal::NotFound),
        StatusCode::RANGE_NOT_SATISFIABLE => {
            // What we hold is not a prefix of the file any more: start again next time.
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(Error::UpstreamStatus {
                url: file.url.clone(),
                status: status.as_u16(),
            }
            .into());
        }
        other => {
            return Err(Error::UpstreamStatus {
                url: file.url.clone(),
                status: other.as_u16(),
            }
            .into())
        }
    };
    let start = if resume { have } else { 0 };
    if let Some(len) = response.content_length() {
        let max = if file.targets {
            relay.config.cache_max
        } else {
            MAX_METADATA.min(relay.config.cache_max)
        };
        if start + len > max {
            return Err(Error::TooLarge {
                what: file.key.clone(),
                len: start + len,
                max,
            }
            .into());
        }
    }
    if let Some(tag) = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
    {
        // Strong validators only: a weak one cannot make a resume safe.
        if !tag.starts_with("W/") {
            tokio::fs::write(&tag_file, tag)
                .await
                .map_err(io_at(&tag_file))?;
        }
    }
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resume)
        .truncate(!resume)
        .open(&partial)
        .await
        .map_err(io_at(&partial))?;
    if resume {
        tracing::info!(path = %file.key, from = have, "resuming a cut fetch");
    }
    let mut written = start;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                written += chunk.len() as u64;
                if written > relay.config.cache_max {
                    return Err(Error::TooLarge {
                        what: file.key.clone(),
                        len: written,
                        max: relay.config.cache_max,
                    }
                    .into());
                }
                out.write_all(&chunk).await.map_err(io_at(&partial))?;
            }
            Ok(None) => break,
            Err(e) => {
                // Keep what arrived: the next request resumes from there.
                let _ = out.flush().await;
                let reason = ferry_http::with_causes(&e);
                relay.upstream.saw(Err(reason.clone()), relay.clock.now());
                return Err(Error::Upstream {
                    url: file.url.clone(),
                    reason: format!(
                        "the body was cut at byte {written}: {reason}; the next request resumes"
                    ),
                }
                .into());
            }
        }
    }
    out.sync_all().await.map_err(io_at(&partial))?;
    drop(out);
    let dest = relay.mirror_dir.join(&file.key);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_at(parent))?;
    }
    tokio::fs::rename(&partial, &dest)
        .await
        .map_err(io_at(&dest))?;
    let _ = tokio::fs::remove_file(&tag_file).await;
    let now = relay.now_ms();
    let key = file.key.clone();
    blocking(relay, move |r| r.db.insert(&key, written, now)).await?;
    tracing::info!(path = %file.key, bytes = written, "cached");
    evict(relay, &file.key).await?;
    Ok(())
}

/// Drop the least recently used files until the cache fits `cache_max` (never `keep`, just
/// fetched for a waiting vehicle).
async fn evict(relay: &Arc<Relay>, keep: &str) -> Result<()> {
    let max = relay.config.cache_max;
    loop {
        let (size, _) = blocking(relay, |r| r.db.cache_size()).await?;
        if size <= max {
            return Ok(());
        }
        let victims = blocking(relay, |r| r.db.lru(2)).await?;
        let Some((key, _)) = victims.into_iter().find(|(k, _)| k != keep) else {
            return Ok(());
        };
        let path = relay.mirror_dir.join(&key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(&path)(e)),
        }
        let k = key.clone();
        blocking(relay, move |r| r.db.remove(&k)).await?;
        tracing::info!(path = %key, "evicted (cache_max)");
    }
}

/// Pass unversioned metadata through; Ok(true) when answered from the last copy.
async fn unversioned(relay: &Arc<Relay>, file: &MirrorFile) -> std::result::Result<bool, Refusal> {
    let dest = relay.mirror_dir.join(&file.key);
    let answered = relay.upstream.client.get(&file.url).send().await;
    let probe = file.key.rsplit('/').next().is_some_and(root_probe);
    let stale = |why: String| -> std::result::Result<bool, Refusal> {
        if dest.is_file() {
            tracing::info!(path = %file.key, why = %why, "upstream did not answer; serving the last copy");
            Ok(true)
        } else if probe {
            // A root the relay never saw: as far as it can tell there is none, and the vehicle
            // goes on with the root it has (its expiry bounds how long that can last).
            tracing::info!(path = %file.key, why = %why, "upstream did not answer; no such root seen");
            Err(Refusal::NotFound)
        } else {
            Err(Error::Upstream {
                url: file.url.clone(),
                reason: format!("{why}; and the relay holds no copy"),
            }
            .into())
        }
    };
    let response = match answered {
        Ok(r) => r,
        Err(e) => {
            let reason = ferry_http::with_causes(&e);
            relay.upstream.saw(Err(reason.clone()), relay.clock.now());
            return stale(reason);
        }
    };
    relay.upstream.saw(Ok(()), relay.clock.now());
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        return Err(Refusal::NotFound);
    }
    if crate::upstream::is_outage(status) {
        return stale(format!("upstream answered {status}"));
    }
    if status != StatusCode::OK {
        return Err(Error::UpstreamStatus {
            url: file.url.clone(),
            status: status.as_u16(),
        }
        .into());
    }
    let body = match read_bounded(response, MAX_METADATA).await {
        Ok(b) => b,
        Err(e) => return stale(e),
    };
    write_atomically(&dest, &body).await?;
    Ok(false)
}

/// A response body up to `max` bytes.
pub async fn read_bounded(
    mut response: reqwest::Response,
    max: u64,
) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ferry_http::with_causes(&e))?
    {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(format!("the body is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Replace `dest` with `bytes` so a reader sees the old or the new file, never half of one.
pub async fn write_atomically(dest: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_at(parent))?;
    }
    let tmp: PathBuf = dest.with_extension("relay-tmp");
    tokio::fs::write(&tmp, bytes).await.map_err(io_at(&tmp))?;
    tokio::fs::rename(&tmp, dest).await.map_err(io_at(dest))
}

/// Run store work on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    relay: &Arc<Relay>,
    f: impl FnOnce(&Relay) -> Result<T> + Send + 'static,
) -> Result<T> {
    let relay = relay.clone();
    tokio::task::spawn_blocking(move || f(&relay))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::from("relay.db"),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// A body of text for a plain refusal.
pub(crate) fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Body::from(message),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::immutable_metadata;

    #[test]
    fn versioned_non_root_metadata_is_immutable() {
        assert!(immutable_metadata("3.snapshot.json"));
        assert!(immutable_metadata("12.targets.json"));
        assert!(immutable_metadata("4.bin-0a.json"));
        assert!(!immutable_metadata("2.root.json"));
        assert!(!immutable_metadata("timestamp.json"));
        assert!(!immutable_metadata("root.json"));
        assert!(!immutable_metadata("x.targets.json"));
        assert!(!immutable_metadata(".targets.json"));
        assert!(super::root_probe("2.root.json"));
        assert!(!super::root_probe("root.json"));
        assert!(!super::root_probe("x.root.json"));
    }
}
