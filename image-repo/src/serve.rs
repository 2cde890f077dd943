//! The Image repository's static HTTP server: `GET`/`HEAD` of `DIR/metadata/**` and
//! `DIR/targets/**`, nothing else in DIR (`keys/`, `staging/`, configuration).
//!
//! Behaviour a client can rely on:
//! - Any other path, a directory, a name with an empty, `.` or `..` segment (also
//!   percent-encoded), a backslash or NUL, and a symlink leading out of the served
//!   subdirectory are all 404. Other methods on the two prefixes are 405 with `Allow`.
//! - Files stream from disk; memory does not grow with their size.
//! - One byte range per request (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gives 206; an
//!   unsatisfiable one 416 with `Content-Range: bytes */LEN`; several ranges give the whole
//!   file with 200. `If-Range` is honoured, so a resume across a file change restarts.
//! - Metadata is gzipped when asked for and no `Range` is sent; targets never are.
//! - A slow or idle client is cut off and one address holds a bounded number of connections
//!   ([`ferry_http::Limits`], shared with the Director and the Secondary).
//! - Strong ETags (see `respond`), `Last-Modified`, 304 on `If-None-Match` or
//!   `If-Modified-Since`. Unversioned metadata is `no-cache`; `N.*` metadata and targets
//!   are immutable for a year.

mod file_body;
mod negotiate;
mod path;
mod range;
mod respond;

pub use respond::GZIP_MAX;

use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use respond::{not_found, respond, Area};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("repository directory {path}: {source} (expected a directory holding metadata/ and targets/)")]
    RepoDir { path: PathBuf, source: io::Error },
    #[error("repository directory {path} is not a directory (expected a directory holding metadata/ and targets/)")]
    NotADirectory { path: PathBuf },
    #[error(
        "cannot listen on {addr}: {source} (expected a free local address, e.g. 127.0.0.1:8080)"
    )]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot read the listening socket's address: {0}")]
    LocalAddr(io::Error),
    #[error("limits check failed: {0}")]
    Limits(String),
    #[error("cannot start the async runtime for the server: {0}")]
    Runtime(io::Error),
    #[error("HTTP server on {addr} stopped: {source}")]
    Serve { addr: SocketAddr, source: io::Error },
}

/// Checks that `dir` is a directory the server can serve from.
pub fn check_repo_dir(dir: &Path) -> Result<(), ServeError> {
    let meta = std::fs::metadata(dir).map_err(|source| ServeError::RepoDir {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ServeError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    Ok(())
}

/// Binds `addr`; port 0 picks a free port (read it back with `local_addr`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// The routes, for embedding in another axum application or serving with [`serve`].
pub fn router(dir: PathBuf) -> Router {
    Router::new()
        .route("/metadata/{*path}", get(metadata))
        .route("/targets/{*path}", get(targets))
        .fallback(fallback)
        .layer(middleware::from_fn(log_request))
        .with_state(Arc::new(dir))
}

/// Serves `dir` on `listener` until `shutdown` completes and every open connection has
/// finished (a download in flight runs to its end; a caller wanting a deadline races this
/// future against a timer).
/// Connections are served under `limits` ([`ferry_http`], the Director's limits).
pub async fn serve(
    dir: PathBuf,
    listener: TcpListener,
    limits: ferry_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    check_repo_dir(&dir)?;
    let addr = listener.local_addr().map_err(ServeError::LocalAddr)?;
    tracing::info!(dir = %dir.display(), %addr, "serving the image repository");
    ferry_http::serve(listener, router(dir), limits, shutdown)
        .await
        .map_err(|source| ServeError::Serve { addr, source })
}

type Repo = State<Arc<PathBuf>>;

async fn metadata(
    State(dir): Repo,
    params: RawPathParams,
    method: Method,
    headers: HeaderMap,
) -> Response {
    file(&dir, Area::Metadata, &params, &method, &headers).await
}

async fn targets(
    State(dir): Repo,
    params: RawPathParams,
    method: Method,
    headers: HeaderMap,
) -> Response {
    file(&dir, Area::Targets, &params, &method, &headers).await
}

async fn file(
    dir: &Path,
    area: Area,
    params: &RawPathParams,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    // The raw (still encoded) capture, so `%2F` cannot turn into a path separator unseen.
    match params.iter().find(|(name, _)| *name == "path") {
        Some((_, raw)) => respond(dir, area, raw, method, headers).await,
        None => not_found(),
    }
}

/// Answer GET or HEAD of `raw_path` (still percent-encoded, below `/metadata/` or, with
/// `targets`, `/targets/`) from `repo` exactly as [`router`] does: validators, Range, If-Range,
/// gzip, 404 for anything outside. The gateway relay (ferry-relay) serves its cache with it.
pub async fn respond_in(
    repo: &Path,
    targets: bool,
    raw_path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let area = if targets {
        Area::Targets
    } else {
        Area::Metadata
    };
    respond(repo, area, raw_path, method, headers).await
}

/// The decoded segments of a request path below `/metadata/` or `/targets/`, under the
/// server's rules (no empty, `.` or `..` segment, no encoded `/`, backslash or NUL); `None`
/// for a path [`router`] would answer 404.
pub fn path_segments(raw_path: &str) -> Option<Vec<String>> {
    path::segments(raw_path)
}

/// The 404 [`router`] answers.
pub fn not_found_response() -> Response {
    not_found()
}

async fn fallback() -> Response {
    not_found()
}

/// One debug line per request. Only method, path and status: headers may carry credentials
/// and the query string is not ours to log.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}
