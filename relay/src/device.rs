//! The Director side: the device API relayed.
//!
//! A vehicle calls the relay as it would the Director (`[director] url` pointed here, its
//! credential unchanged). Upstream, the relay authenticates with its own credential (token or
//! certificate) and:
//! - on the plain listener, forwards the vehicle's device token (`Ferry-Device-Authorization`),
//!   so the Director checks the vehicle exactly as if it had called directly; each token the
//!   Director accepts is remembered (as a SHA-256) so that, while the uplink is down, the
//!   relay can still tell the vehicle from a stranger;
//! - on the `[tls]` listener, the vehicle is its device certificate, which chains to the fleet
//!   CA and names its VIN (checked here as the Director checks it), and the relay vouches
//!   for it (`Ferry-Relayed-Vin`): the Director never sees the vehicle's key.
//!
//! Uplink down (no answer, or a 502/503/504 from a gateway in front of the Director):
//! - metadata: the last copy the relay saw for that vehicle (header `Ferry-Relay-Stale`), or a
//!   404 naming why (a probe for a root never seen: the vehicle goes on with the one it has);
//! - manifests: queued durably and answered 202 `{"queued": POSITION}`; forwarded in arrival
//!   order by [`crate::forward`]. While anything is queued, new manifests queue behind it.

use crate::error::Error;
use crate::mirror::{blocking, read_bounded, text, STALE};
use crate::server::Relay;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

/// The largest manifest taken (the Director's own limit).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// The largest Director metadata file relayed.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;

/// A vehicle on the relay's `[tls]` listener: the VINs its verified device certificate names
/// (as the Director reads them, [`ferry_keys::certificate_vins`]); carried on each request of
/// the connection.
#[derive(Debug, Clone)]
pub struct DeviceCertificate {
    pub vins: Vec<String>,
}

impl DeviceCertificate {
    /// The identity of a connection whose client certificate (DER) the TLS layer verified.
    pub fn of(der: &[u8]) -> DeviceCertificate {
        let vins = ferry_keys::certificate_vins(der).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "device certificate names no vehicle the relay can read");
            Vec::new()
        });
        DeviceCertificate { vins }
    }
}

/// How the vehicle proved who it is to the relay.
enum Vehicle {
    /// Its device token, forwarded to the Director, which judges it.
    Token(String),
    /// Its device certificate, which names the vehicle: the relay vouches for it.
    Certificate,
}

impl Vehicle {
    /// The vehicle calling for `vin`: its certificate on the TLS listener (it must name
    /// `vin`, 403 otherwise), its bearer token elsewhere (401 without one).
    fn of(
        cert: Option<Extension<DeviceCertificate>>,
        headers: &HeaderMap,
        vin: &str,
    ) -> Result<Vehicle, (StatusCode, String)> {
        match cert {
            Some(Extension(cert)) if cert.vins.iter().any(|v| v == vin) => Ok(Vehicle::Certificate),
            Some(Extension(cert)) => {
                tracing::warn!(path_vin = %vin, cert_vins = ?cert.vins, "device certificate of another vehicle refused");
                Err((
                    StatusCode::FORBIDDEN,
                    format!("device certificate check failed: the certificate names {:?}; expected the certificate of vehicle {vin}, named in the path\n", cert.vins),
                ))
            }
            None => bearer(headers)
                .map(Vehicle::Token)
                .ok_or_else(|| (StatusCode::UNAUTHORIZED, NO_TOKEN.to_owned())),
        }
    }

    /// `request` to the Director, naming the vehicle as this credential allows.
    fn name(&self, request: reqwest::RequestBuilder, vin: &str) -> reqwest::RequestBuilder {
        match self {
            Vehicle::Token(token) => {
                request.header("ferry-device-authorization", format!("Bearer {token}"))
            }
            Vehicle::Certificate => request.header("ferry-relayed-vin", vin),
        }
    }

    /// Whether, with the Director out of reach, the relay may act for this vehicle: a token
    /// the Director accepted through this relay before (or a pack carried), or a device
    /// certificate of the fleet CA (the TLS layer checked it).
    fn known(&self, db: &crate::db::Db, vin: &str) -> crate::error::Result<bool> {
        match self {
            Vehicle::Token(token) => db.token_confirmed(vin, token),
            Vehicle::Certificate => Ok(true),
        }
    }
}

/// The device's bearer token.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// A VIN or a metadata file name the relay will put in a URL and a database key.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

const NO_TOKEN: &str =
    "device token check failed: no bearer token; expected `Authorization: Bearer <device token>`\n";

fn internal(e: Error) -> Response {
    tracing::error!(error = %e, "relay request failed on the relay's side");
    text(StatusCode::INTERNAL_SERVER_ERROR, format!("relay: {e}\n"))
}

/// The upstream answer passed on as it is (status, type, body, Retry-After).
fn passed(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: Vec<u8>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    for name in [header::CONTENT_TYPE, header::RETRY_AFTER] {
        if let Some(v) = headers
            .get(name.as_str())
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            response.headers_mut().insert(name, v);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /api/v1/vehicles/{vin}/metadata/{file}`
pub async fn metadata(
    State(relay): State<Arc<Relay>>,
    Path((vin, file)): Path<(String, String)>,
    cert: Option<Extension<DeviceCertificate>>,
    headers: HeaderMap,
) -> Response {
    let vehicle = match Vehicle::of(cert, &headers, &vin) {
        Ok(v) => Arc::new(v),
        Err((status, why)) => return text(status, why),
    };
    if !plain(&vin) || !plain(&file) {
        return text(
            StatusCode::NOT_FOUND,
            "metadata check failed: no such vehicle or file\n".into(),
        );
    }
    let url = format!(
        "{}/api/v1/vehicles/{vin}/metadata/{file}",
        relay.config.upstream.director
    );
    let sent = vehicle
        .name(relay.upstream.director(reqwest::Method::GET, &url), &vin)
        .send()
        .await;
    let why = match sent {
        Ok(response) if !crate::upstream::is_outage(response.status()) => {
            relay.upstream.saw(Ok(()), relay.clock.now());
            let status = response.status();
            let head = response.headers().clone();
            let body = match read_bounded(response, MAX_METADATA_BYTES).await {
                Ok(b) => b,
                Err(e) => return text(StatusCode::BAD_GATEWAY, format!("relay: {url}: {e}\n")),
            };
            if status == reqwest::StatusCode::OK {
                let now = relay.now_ms();
                let (v, f, b, who) = (vin.clone(), file.clone(), body.clone(), vehicle.clone());
                let kept = blocking(&relay, move |r| {
                    r.db.save_vehicle_file(&v, &f, &b, now)?;
                    match who.as_ref() {
                        Vehicle::Token(t) => r.db.confirm_token(&v, t),
                        Vehicle::Certificate => Ok(()),
                    }
                })
                .await;
                if let Err(e) = kept {
                    return internal(e);
                }
            } else if status == reqwest::StatusCode::UNAUTHORIZED
                && matches!(*vehicle, Vehicle::Token(_))
            {
                let v = vin.clone();
                if let Err(e) = blocking(&relay, move |r| r.db.forget_token(&v)).await {
                    return internal(e);
                }
            }
            return passed(status, &head, body);
        }
        Ok(response) => {
            relay.upstream.saw(Ok(()), relay.clock.now());
            format!("upstream answered {}", response.status())
        }
        Err(e) => {
            let reason = ferry_http::with_causes(&e);
            relay.upstream.saw(Err(reason.clone()), relay.clock.now());
            reason
        }
    };
    // Upstream is not there: the last copy, to a vehicle the Director accepted before.
    let (v, f) = (vin.clone(), file.clone());
    let found = blocking(&relay, move |r| {
        if !vehicle.known(&r.db, &v)? {
            return Ok(None);
        }
        Ok(Some(r.db.vehicle_file(&v, &f)?))
    })
    .await;
    match found {
        Err(e) => internal(e),
        Ok(None) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("relay check failed: the Director is unreachable ({why}) and this relay never saw it accept this vehicle's token; expected a vehicle that checked in through the relay before\n"),
        ),
        Ok(Some(None)) => text(
            StatusCode::NOT_FOUND,
            format!("relay: the Director is unreachable ({why}) and the relay holds no {file} of vehicle {vin}\n"),
        ),
        Ok(Some(Some(body))) => {
            tracing::info!(%vin, %file, "director unreachable; serving the last copy");
            let mut response = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
                body,
            )
                .into_response();
            response.headers_mut().insert(STALE, HeaderValue::from_static("1"));
            response
        }
    }
}

/// `PUT /api/v1/vehicles/{vin}/manifest`
pub async fn manifest(
    State(relay): State<Arc<Relay>>,
    Path(vin): Path<String>,
    cert: Option<Extension<DeviceCertificate>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let vehicle = match Vehicle::of(cert, &headers, &vin) {
        Ok(v) => Arc::new(v),
        Err((status, why)) => return text(status, why),
    };
    if !plain(&vin) {
        return text(
            StatusCode::NOT_FOUND,
            "vehicle check failed: not a VIN\n".into(),
        );
    }
    let body = match ferry_http::read_body(body, MAX_MANIFEST_BYTES, "a vehicle manifest").await {
        Ok(b) => b.to_vec(),
        Err(refusal) => {
            return text(
                StatusCode::from_u16(refusal.status().as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
                format!("{refusal}\n"),
            )
        }
    };
    let queued = match blocking(&relay, |r| r.db.queue_stats()).await {
        Ok((len, _)) => len,
        Err(e) => return internal(e),
    };
    // Straight through while nothing waits ahead of it.
    if queued == 0 {
        let url = format!(
            "{}/api/v1/vehicles/{vin}/manifest",
            relay.config.upstream.director
        );
        let sent = vehicle
            .name(relay.upstream.director(reqwest::Method::PUT, &url), &vin)
            .header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if !crate::upstream::is_outage(response.status()) => {
                relay.upstream.saw(Ok(()), relay.clock.now());
                let status = response.status();
                let head = response.headers().clone();
                let answer = read_bounded(response, 1 << 20).await.unwrap_or_default();
                if status.is_success() {
                    let (v, who) = (vin.clone(), vehicle.clone());
                    let now = relay.clock.now().to_rfc3339();
                    if let Err(e) = blocking(&relay, move |r| {
                        if let Vehicle::Token(t) = who.as_ref() {
                            r.db.confirm_token(&v, t)?;
                        }
                        r.db.set_state("last_sync", &now)
                    })
                    .await
                    {
                        return internal(e);
                    }
                }
                return passed(status, &head, answer);
            }
            Ok(response) => {
                let why = format!("upstream answered {}", response.status());
                relay.upstream.saw(Err(why), relay.clock.now());
            }
            Err(e) => relay
                .upstream
                .saw(Err(ferry_http::with_causes(&e)), relay.clock.now()),
        }
    }
    enqueue(&relay, vin, vehicle, body).await
}

async fn enqueue(
    relay: &Arc<Relay>,
    vin: String,
    vehicle: Arc<Vehicle>,
    body: Vec<u8>,
) -> Response {
    let received_at = relay.clock.now().to_rfc3339();
    let max = relay.config.max_queue;
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    let v = vin.clone();
    let at = received_at.clone();
    let outcome = blocking(relay, move |r| {
        if !vehicle.known(&r.db, &v)? {
            return Ok(None);
        }
        r.db.enqueue(&v, &body, &at, max).map(Some)
    })
    .await;
    match outcome {
        Ok(None) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay check failed: the Director is unreachable and this relay never saw it accept this vehicle's token; expected a vehicle that checked in through the relay before\n".into(),
        ),
        Ok(Some((id, position))) => {
            tracing::info!(%vin, id, position, sha256 = %digest, "manifest queued");
            relay.wake_forwarder();
            (
                StatusCode::ACCEPTED,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(serde_json::json!({
                    "queued": position,
                    "id": id,
                    "received_at": received_at,
                })),
            )
                .into_response()
        }
        Err(e @ Error::QueueFull { .. }) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        Err(e) => internal(e),
    }
}
