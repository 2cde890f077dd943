//! The relay's state and routes, and serving them until shutdown.

use crate::config::{RelayConfig, VehicleTls};
use crate::db::Db;
use crate::device::DeviceCertificate;
use crate::error::{io_at, Result};
use crate::upstream::Upstream;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, put};
use axum::Router;
use ferry_core::Clock;
use ferry_http::tls::ServerTls;
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What every handler shares.
#[derive(Debug)]
pub struct Relay {
    pub config: RelayConfig,
    pub db: Db,
    pub upstream: Upstream,
    pub clock: Arc<dyn Clock>,
    /// The cache, laid out as a repository (`metadata/`, `targets/`).
    pub mirror_dir: PathBuf,
    /// Fetches in progress (or cut): `partial/<sha256 of the path>` and its `.etag`.
    pub partial_dir: PathBuf,
    /// One lock per path being fetched (single flight).
    flights: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    wake: tokio::sync::Notify,
}

impl Relay {
    pub fn open(config: RelayConfig, clock: Arc<dyn Clock>) -> Result<Arc<Relay>> {
        let db = Db::open(&config.cache_dir)?;
        let mirror_dir = config.cache_dir.join("mirror");
        let partial_dir = config.cache_dir.join("partial");
        for dir in [&mirror_dir, &partial_dir] {
            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        }
        let upstream = Upstream::new(config.upstream.clone())?;
        Ok(Arc::new(Relay {
            config,
            db,
            upstream,
            clock,
            mirror_dir,
            partial_dir,
            flights: Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
        }))
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// The lock of `key`'s fetch, made if none is in progress.
    pub(crate) fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.entry(key.to_owned()).or_default().clone()
    }

    /// Forget `key`'s lock once nobody holds or waits for it, so the map stays small.
    pub(crate) fn land(&self, key: &str, flight: Arc<tokio::sync::Mutex<()>>) {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        // The caller's and the map's: nobody else waits.
        if Arc::strong_count(&flight) <= 2 {
            flights.remove(key);
        }
    }

    pub(crate) fn wake_forwarder(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn forwarder_woken(&self) {
        self.wake.notified().await;
    }
}

pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route("/metadata/{*path}", get(crate::mirror::metadata))
        .route("/targets/{*path}", get(crate::mirror::targets))
        .route(
            "/api/v1/vehicles/{vin}/metadata/{file}",
            get(crate::device::metadata),
        )
        .route(
            "/api/v1/vehicles/{vin}/manifest",
            put(crate::device::manifest),
        )
        .route("/relay/status", get(crate::status::handler))
        .fallback(fallback)
        .layer(middleware::from_fn(log_request))
        .with_state(relay)
}

async fn fallback() -> Response {
    crate::mirror::text(
        axum::http::StatusCode::NOT_FOUND,
        "route check failed: no such route; expected /metadata/, /targets/ or the Director's device API\n".into(),
    )
}

/// One debug line per request: method, path, status (never headers: they carry tokens).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// Serve on `listener` until `shutdown`, forwarding the queue in the background.
pub async fn serve(
    relay: Arc<Relay>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(relay, listener, None, shutdown).await
}

/// The `[tls]` listener's setup: the relay's server certificate and key, and the fleet CA
/// device certificates must chain to (ferry-http's mutual TLS, as the Director's).
pub fn vehicle_tls(config: &VehicleTls) -> Result<ServerTls> {
    ServerTls::from_files(
        &config.cert,
        &config.key,
        &config.ca_cert,
        "fleet CA certificate",
    )
    .map(|tls| tls.with_handshake_timeout(config.handshake_timeout))
    .map_err(|reason| crate::Error::Config {
        path: config.cert.clone(),
        reason: format!("[tls] {reason}"),
    })
}

/// As [`serve`], and on `tls`'s listener over mutual TLS too: there each request carries
/// the [`DeviceCertificate`] of its connection.
pub async fn serve_with_tls(
    relay: Arc<Relay>,
    listener: TcpListener,
    tls: Option<(TcpListener, ServerTls)>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let forwarder = tokio::spawn(crate::forward::run(relay.clone()));
    let limits = relay.config.http;
    // One shutdown for both listeners.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let until = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let plain = ferry_http::serve(
        listener,
        router(relay.clone()),
        limits,
        until(stopped.clone()),
    );
    let result = match tls {
        None => plain.await,
        Some((tls_listener, tls)) => {
            if let Ok(addr) = tls_listener.local_addr() {
                tracing::info!(%addr, "serving vehicles over mutual TLS");
            }
            let identify = |connection: &rustls::ServerConnection| {
                let leaf = connection.peer_certificates()?.first()?;
                Some(DeviceCertificate::of(leaf.as_ref()))
            };
            let secure = ferry_http::tls::serve_tls(
                tls_listener,
                router(relay),
                limits,
                tls,
                identify,
                until(stopped),
            );
            let (plain, secure) = tokio::join!(plain, secure);
            plain.and(secure)
        }
    };
    forwarder.abort();
    result
}
