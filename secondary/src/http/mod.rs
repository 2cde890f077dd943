//! The Secondary's HTTP API (DESIGN.md "Servers and ports"), spoken by the Primary:
//!
//! - `GET /info`: serial, hardwareId, public key (TUF key JSON), key id, verification mode
//! - `PUT /metadata`: a metadata bundle ([`crate::verify`]); at most `max_metadata_bytes` (413
//!   above); answers `{"target": name | null, "length", "hashes"}`
//! - `PUT /image`: the pending target's image, streamed (never buffered whole), refused as soon
//!   as it runs past the signed length (413)
//! - `POST /install`: install the received image; answers the installed image, or 202 with
//!   `{"target", "rebootPending": true}` while a real reboot finishes it, or
//!   `{"target", "confirmPending": true}` while it waits for the application's confirmation
//! - `GET /status`: installed image, per-domain images, provides, pending target, install in
//!   flight, last install, verified time, and the requests refused from the network (with the
//!   caller's address; never in the signed report)
//! - `GET /report?nonce=N`: the signed ECU version report carrying nonce N
//!
//! Plain HTTP by default; with `[tls]`, mutual TLS ([`serve_tls`]): Uptane does not require
//! an authenticated in-vehicle link, integrators may want one.
//!
//! Refusals answer plain text naming the failed check: 422 for a failed security check, 409 for
//! a valid update this ECU will not take (depends, order of requests), 413 for too large a
//! body, 500 for a local failure. A refused bundle or image changes nothing: a verified
//! target and the image received for it stay ready for `POST /install`. The ECU's work (SQLite, file I/O) runs on the blocking pool.

pub mod confirm_api;
mod errors;
mod handlers;

pub use errors::ApiError;

use crate::ecu::Ecu;
use axum::routing::{get, post, put};
use axum::Router;
use ferry_core::Clock;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ecu: Arc<Mutex<Ecu>>,
    /// Where handlers read the time: the system clock in the daemon, a fixed one in tests.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// What the handlers get: the shared state and the routes' settings.
#[derive(Clone, Debug)]
pub(crate) struct HandlerState {
    pub(crate) app: AppState,
    pub(crate) max_metadata_bytes: usize,
}

impl axum::extract::FromRef<HandlerState> for AppState {
    fn from_ref(state: &HandlerState) -> AppState {
        state.app.clone()
    }
}

impl AppState {
    pub fn new(ecu: Ecu, clock: Arc<dyn Clock>) -> Self {
        AppState {
            ecu: Arc::new(Mutex::new(ecu)),
            clock,
        }
    }
}

/// The Secondary's routes. `max_metadata_bytes` caps `PUT /metadata`. They expect to be
/// served by [`serve`] (each request carrying the caller's address).
pub fn router(state: AppState, max_metadata_bytes: usize) -> Router {
    Router::new()
        .route("/info", get(handlers::info))
        .route("/metadata", put(handlers::metadata))
        // The image is bounded by its signed length as it streams, not by a fixed cap.
        .route("/image", put(handlers::image))
        .route("/install", post(handlers::install))
        .route("/status", get(handlers::status))
        .route("/report", get(handlers::report))
        .with_state(HandlerState {
            app: state,
            max_metadata_bytes,
        })
}

/// Serve on `listener` under `limits` until `shutdown` completes; requests in flight finish
/// first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    max_metadata_bytes: usize,
    limits: ferry_http::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    ferry_http::serve(
        listener,
        router(state, max_metadata_bytes),
        limits,
        shutdown,
    )
    .await
}

/// [`serve`] over mutual TLS (`[tls]` in `secondary.toml`): only a client whose certificate
/// chains to the configured client CA gets past the handshake.
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    max_metadata_bytes: usize,
    limits: ferry_http::Limits,
    tls: ferry_http::tls::ServerTls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(state, max_metadata_bytes);
    ferry_http::tls::serve_tls(listener, router, limits, tls, |_| None::<()>, shutdown).await
}
