//! The Director's HTTP API (DESIGN.md "Servers and ports"): the device API, authenticated by
//! the device certificate over mutual TLS ([`serve_tls`]) or, over plain HTTP on loopback
//! ([`serve`]), by a per-vehicle bearer token; and the admin API under `/api/v1/admin/`,
//! authenticated by admin bearer tokens with a read or write scope on either transport.
//!
//! Device API:
//! - `GET /api/v1/vehicles/{vin}/metadata/{N.root|root|timestamp|snapshot|targets}.json`,
//!   and `offline-update-snapshot.json` (PURE-2: the latest, 404 when there is none)
//! - `PUT /api/v1/vehicles/{vin}/manifest` (body at most [`MAX_MANIFEST_BYTES`], read only
//!   once the caller is authenticated and within its vehicle's manifest rate: 429 with
//!   `Retry-After` past it)
//!
//! Admin API:
//! - `POST /api/v1/admin/vehicles` (write), `GET /api/v1/admin/vehicles` (read),
//!   `GET /api/v1/admin/vehicles/{vin}` (read), `DELETE /api/v1/admin/vehicles/{vin}` (write:
//!   remove, history kept), `POST /api/v1/admin/vehicles/{vin}/device-token` (write: a new
//!   token, the old one refused at once)
//! - `POST|DELETE /api/v1/admin/vehicles/{vin}/assignments` (write): targets named by the
//!   admin, looked up in the Image repository ([`AppState::targets`])
//! - `POST /api/v1/admin/campaigns` (write), `DELETE /api/v1/admin/assignments/{id}` (write)
//! - `GET /api/v1/admin/vehicles/{vin}/status` (read),
//!   `GET /api/v1/admin/vehicles/{vin}/manifests` (read)
//! - `POST /api/v1/admin/bundles` (write): sign a PURE-2 offline-update bundle
//!   (`{"name", "targets": {"HARDWARE_ID": "TARGET"}, "expires": "30d"}`); `GET
//!   /api/v1/admin/bundles` (read); `GET /api/v1/admin/bundles/{name}` (read: its signed
//!   offline-update targets, the latest offline-update snapshot and every director root);
//!   `POST /api/v1/admin/bundles/{name}/revoke` (write); `POST /api/v1/admin/receipts`
//!   (write: a vehicle's signed receipt of an offline install, recorded once)
//! - `POST /api/v1/admin/relays` (write: register a gateway relay, `{"name"}`, its token shown
//!   once), `GET /api/v1/admin/relays` (read), `POST /api/v1/admin/relays/{name}/revoke`
//!   (write), `GET /api/v1/admin/relays/{name}/vehicles` (read: the vehicles last seen
//!   through it). A relay speaks on the device API for vehicles ([`relayed`]), never here.
//!   `POST /api/v1/admin/relays/{name}/manifests?vin=&received_at=` (write): a manifest the
//!   relay queued, carried across a diode (`ferry admin relay import`).
//!   `POST /api/v1/admin/relays/{name}/vehicles/{vin}/pack` (write): the vehicle's Director
//!   metadata and device token hash, for a relay that never reaches the Director
//!   (`ferry admin relay pack`; [`relay_pack`]).
//!   `POST /api/v1/admin/relays/{name}/exports/verify?mac=HEX` (write): the MAC over an export
//!   index, checked before its manifests are imported ([`relay_export`]).
//! - `POST /api/v1/admin/manifests/prune` (write): `{"older_than": "90d"}`, never an ECU's
//!   latest report
//!
//! Request bodies are read only after the caller is authenticated (an unauthenticated upload
//! is answered 401 without reading it), whole, up to the route's cap and at the rate
//! `[http]` sets ([`ferry_http::read_body`]). Every 401 and 403 is logged at warn with the
//! caller's address and the check that failed (never the credential).
//!
//! Store calls are blocking and run on tokio's blocking pool.

mod admin;
mod assignments;
mod auth;
mod bundles;
mod device;
mod errors;
mod rate;
mod relay_export;
mod relay_pack;
pub mod relayed;
mod relays;
mod tls;

pub use auth::device_token;
pub use errors::ApiError;
pub use ferry_http::Limits;
pub use rate::ManifestRate;
pub use tls::{serve_tls, ClientIdentity, RelayCertificate, TlsSettings, HANDSHAKE_TIMEOUT};

use crate::image_repo::TargetSource;
use crate::manifests::ManifestPolicy;
use crate::store::Store;
use crate::vehicle_metadata::{Lifetimes, OnlineKeys};
use axum::routing::{get, post, put};
use axum::Router;
use ferry_core::Clock;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The largest manifest body accepted (413 above).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;

/// The largest admin request body accepted (413 above).
pub const MAX_ADMIN_BYTES: usize = 4 << 20;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: OnlineKeys,
    pub lifetimes: Lifetimes,
    /// Where assignments get length, hashes and custom metadata: the Image repository.
    pub targets: Arc<dyn TargetSource>,
    /// Where handlers read the time: the system clock in the daemon, a fixed one in tests.
    pub clock: Arc<dyn Clock>,
    /// How many manifests a vehicle may send and what is kept of refused ones.
    pub manifests: ManifestPolicy,
    /// The per-vehicle manifest budget ([`ManifestPolicy::max_per_minute`]).
    pub manifest_rate: Arc<ManifestRate>,
    /// PURE-2: the offline-update roles' keys (`[keys] offline_update`; none: no bundles).
    pub offline_keys: Arc<Vec<Arc<dyn ferry_keys::Signer>>>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        keys: OnlineKeys,
        lifetimes: Lifetimes,
        targets: Arc<dyn TargetSource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AppState {
            store,
            keys,
            lifetimes,
            targets,
            clock,
            manifests: ManifestPolicy::DEFAULT,
            manifest_rate: Arc::new(ManifestRate::new(ManifestPolicy::DEFAULT.max_per_minute)),
            offline_keys: Arc::new(Vec::new()),
        }
    }

    /// The same state signing offline-update bundles with `keys`.
    pub fn with_offline_keys(mut self, keys: Vec<Arc<dyn ferry_keys::Signer>>) -> Self {
        self.offline_keys = Arc::new(keys);
        self
    }

    /// The same state taking and keeping manifests as `policy` says (the default is
    /// [`ManifestPolicy::DEFAULT`]).
    pub fn with_manifest_policy(mut self, policy: ManifestPolicy) -> Self {
        self.manifests = policy;
        self.manifest_rate = Arc::new(ManifestRate::new(policy.max_per_minute));
        self
    }
}

/// The Director's routes. The handlers share one `Arc` of the state: axum clones the state
/// for every request, and an `AppState` clone allocates (the online keys' lists).
pub fn router(state: AppState) -> Router {
    let device = Router::new()
        .route(
            "/api/v1/vehicles/{vin}/metadata/{file}",
            get(device::metadata),
        )
        .route("/api/v1/vehicles/{vin}/manifest", put(device::manifest));
    let admin = Router::new()
        .route(
            "/api/v1/admin/vehicles",
            post(admin::register).get(admin::list),
        )
        .route(
            "/api/v1/admin/vehicles/{vin}",
            get(admin::vehicle).delete(admin::remove),
        )
        .route(
            "/api/v1/admin/vehicles/{vin}/device-token",
            post(admin::revoke_device_token),
        )
        .route(
            "/api/v1/admin/vehicles/{vin}/assignments",
            post(assignments::assign).delete(assignments::cancel),
        )
        .route("/api/v1/admin/vehicles/{vin}/status", get(admin::status))
        .route(
            "/api/v1/admin/vehicles/{vin}/manifests",
            get(admin::manifests),
        )
        .route("/api/v1/admin/campaigns", post(assignments::campaign))
        .route(
            "/api/v1/admin/manifests/prune",
            post(admin::prune_manifests),
        )
        .route(
            "/api/v1/admin/assignments/{id}",
            axum::routing::delete(assignments::cancel_one),
        )
        .route(
            "/api/v1/admin/bundles",
            post(bundles::create).get(bundles::list),
        )
        .route("/api/v1/admin/bundles/{name}", get(bundles::show))
        .route("/api/v1/admin/receipts", post(bundles::import_receipt))
        .route("/api/v1/admin/bundles/{name}/revoke", post(bundles::revoke))
        .route("/api/v1/admin/relays", post(relays::add).get(relays::list))
        .route("/api/v1/admin/relays/{name}/revoke", post(relays::revoke))
        .route(
            "/api/v1/admin/relays/{name}/vehicles",
            get(relays::vehicles),
        )
        .route(
            "/api/v1/admin/relays/{name}/manifests",
            post(relays::import_manifest),
        )
        .route(
            "/api/v1/admin/relays/{name}/vehicles/{vin}/pack",
            post(relay_pack::pack),
        )
        .route(
            "/api/v1/admin/relays/{name}/exports/verify",
            post(relay_export::verify),
        )
        .route_layer(axum::middleware::from_fn(auth::refuse_relay_certificates));
    device
        .merge(admin)
        .fallback(fallback)
        .layer(axum::middleware::from_fn(errors::log_refusal))
        .with_state(Arc::new(state))
}

async fn fallback() -> ApiError {
    ApiError::not_found("route check failed: no such route; expected a Director API path")
}

/// Serve the Director on `listener` until `shutdown` completes and open connections finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the director");
    }
    ferry_http::serve(listener, router(state), limits, shutdown).await
}

/// Read a request body whole, up to `limit` bytes (413 above, 408 when it comes too slowly).
pub(crate) async fn body(
    body: axum::body::Body,
    limit: usize,
    what: &'static str,
) -> Result<axum::body::Bytes, ApiError> {
    ferry_http::read_body(body, limit, what)
        .await
        .map_err(|refusal| ApiError::new(refusal.status(), refusal.to_string()))
}

/// Run blocking store work on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("blocking task failed: {e}")))?
}

/// Parse a JSON request body, naming what is wrong with it (400).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "request body check failed: {e}; expected the JSON document this route takes"
        ))
    })
}
