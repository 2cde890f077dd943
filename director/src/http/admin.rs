//! The admin API's inventory routes: vehicles, their status and manifests, behind admin
//! bearer tokens. (Assignments and campaigns: `assignments.rs`.)

use super::errors::ApiError;
use super::{auth, blocking, parse_json, AppState, MAX_ADMIN_BYTES};
use crate::error::Error;
use crate::model::{NewVehicle, Scope, Verdict};
use crate::vehicle_metadata::VehicleSigner;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::Clock;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Page size of the listings when the query names none, and the most one may ask for.
pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

fn unknown_vehicle(vin: &str) -> ApiError {
    Error::UnknownVehicle {
        vin: vin.to_owned(),
    }
    .into()
}

/// `POST /api/v1/admin/vehicles`
pub async fn register(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let new: NewVehicle = parse_json(&body)?;
    let token = blocking(move || {
        let store = state.store.as_ref();
        store.register_vehicle(&new)?;
        let secret = store.issue_device_token(&new.vin)?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&new.vin, state.clock.now())?;
        tracing::info!(vin = %new.vin, ecus = new.ecus.len(), "vehicle registered");
        Ok(serde_json::json!({
            "vin": new.vin,
            "device_token": auth::device_token(&new.vin, &secret),
        }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

/// `POST /api/v1/admin/vehicles/{vin}/device-token`: a new device token for `vin`; the one
/// it had is refused from this answer on.
pub async fn revoke_device_token(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let token = blocking(move || {
        let secret = state.store.issue_device_token(&vin)?;
        tracing::warn!(%vin, "device token replaced; the previous one is refused from now on");
        Ok(serde_json::json!({
            "vin": vin,
            "device_token": auth::device_token(&vin, &secret),
        }))
    })
    .await?;
    Ok(Json(token).into_response())
}

/// `DELETE /api/v1/admin/vehicles/{vin}`: remove a vehicle. Its device token and signed
/// metadata go and its active assignments are cancelled; its history (ECUs, manifests,
/// assignments) stays readable here.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let removed = blocking(move || {
        let cancelled = state.store.remove_vehicle(&vin)?;
        tracing::warn!(%vin, cancelled, "vehicle removed");
        Ok(serde_json::json!({"vin": vin, "removed": true, "cancelled": cancelled}))
    })
    .await?;
    Ok(Json(removed).into_response())
}

/// `POST /api/v1/admin/manifests/prune` with `{"older_than": "90d"}`: delete manifests
/// received longer ago than that, accepted or refused, except each ECU's latest report's.
pub async fn prune_manifests(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Prune {
        older_than: String,
    }
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let request: Prune = parse_json(&body)?;
    let age = humantime::parse_duration(&request.older_than)
        .ok()
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "retention check failed: older_than {:?} is not a duration; expected e.g. \"90d\"",
                request.older_than
            ))
        })?;
    let before = state.clock.now().checked_sub_signed(age).ok_or_else(|| {
        ApiError::bad_request(
            "retention check failed: older_than reaches before the epoch; expected e.g. \"90d\"",
        )
    })?;
    let deleted = blocking(move || Ok(state.store.prune_manifests(before)?)).await?;
    tracing::info!(deleted, before = %before.to_rfc3339(), "manifests pruned");
    Ok(Json(serde_json::json!({
        "deleted": deleted,
        "before": before.to_rfc3339(),
    }))
    .into_response())
}

/// `?after=&limit=` of the paged listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

impl Page {
    /// The page size: [`DEFAULT_PAGE`] if not given, refused outside 1..=[`MAX_PAGE`].
    fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "paging check failed: limit {n}; expected 1 to {MAX_PAGE}"
            ))),
        }
    }
}

/// The query string, or a 400 naming what is wrong with it.
fn page(query: Result<Query<Page>, QueryRejection>) -> Result<Page, ApiError> {
    query.map(|Query(p)| p).map_err(|e| {
        ApiError::bad_request(format!(
            "query check failed: {e}; expected at most after=VIN and limit=N"
        ))
    })
}

/// `GET /api/v1/admin/vehicles?after=VIN&limit=N`: vehicles by VIN, a page at a time. A full
/// page carries a `Link: <...?after=LAST&limit=N>; rel="next"` header (RFC 8288); the body
/// stays a plain array of vehicles.
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let page = page(query)?;
    let limit = page.limit()?;
    let vehicles =
        blocking(move || Ok(state.store.list_vehicles(page.after.as_deref(), limit)?)).await?;
    let next = (vehicles.len() == limit as usize)
        .then(|| vehicles.last())
        .flatten()
        .map(|last| {
            // VINs are URL-path safe (registration checks them), so they need no escaping.
            format!(
                "</api/v1/admin/vehicles?after={}&limit={limit}>; rel=\"next\"",
                last.vin
            )
        });
    let mut response = Json(vehicles).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// `GET /api/v1/admin/vehicles/{vin}`
pub async fn vehicle(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let vehicle = blocking(move || {
        state
            .store
            .get_vehicle(&vin)?
            .ok_or_else(|| unknown_vehicle(&vin))
    })
    .await?;
    Ok(Json(vehicle).into_response())
}

/// `GET /api/v1/admin/vehicles/{vin}/status`: the vehicle and every assignment, each with
/// `queued` (pending behind another assignment of its ECU: see [`crate::queue`]).
pub async fn status(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let status = blocking(move || {
        let store = state.store.as_ref();
        let vehicle = store
            .get_vehicle(&vin)?
            .ok_or_else(|| unknown_vehicle(&vin))?;
        let assignments = store.assignments(&vin)?;
        let heads = crate::queue::heads(&assignments);
        // `queued` tells a pending assignment waiting behind another on its ECU from the one
        // served next; `status` keeps its stored values for existing clients.
        let assignments = assignments
            .iter()
            .map(|a| {
                let mut listed = serde_json::to_value(a).map_err(|e| {
                    Error::storage("list assignments", format!("assignment {}: {e}", a.id))
                })?;
                listed["queued"] = crate::queue::is_queued(a, &heads).into();
                Ok(listed)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let receipts = store.offline_receipts(&vin)?;
        Ok(serde_json::json!({
            "vehicle": vehicle,
            "assignments": assignments,
            "offline_receipts": receipts,
        }))
    })
    .await?;
    Ok(Json(status).into_response())
}

/// A stored manifest as listed: its verdict and why, without the body.
#[derive(Debug, Serialize)]
struct ManifestSummary {
    id: i64,
    received_at: chrono::DateTime<chrono::Utc>,
    nonce: Option<String>,
    verdict: Verdict,
    reason: String,
    /// The size in bytes of the body as received.
    size: u64,
    /// The bytes stored of it: all, or the excerpt kept of a refused manifest.
    stored: usize,
    /// The SHA-256 (hex) of the body as received, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
}

/// `GET /api/v1/admin/vehicles/{vin}/manifests?limit=N`: the latest manifests, newest first.
pub async fn manifests(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Page>, QueryRejection>,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let page = page(query)?;
    if page.after.is_some() {
        return Err(ApiError::bad_request(
            "query check failed: after is not supported here; expected only limit=N",
        ));
    }
    let limit = page.limit()?;
    let manifests = blocking(move || {
        let store = state.store.as_ref();
        if store.get_vehicle(&vin)?.is_none() {
            return Err(unknown_vehicle(&vin));
        }
        Ok(store
            .list_manifests(&vin, limit)?
            .into_iter()
            .map(|m| ManifestSummary {
                id: m.id,
                received_at: m.received_at,
                nonce: m.nonce,
                verdict: m.verdict,
                reason: m.reason,
                size: m.body_length.unwrap_or(m.body.len() as u64),
                stored: m.body.len(),
                sha256: m.body_sha256,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(manifests).into_response())
}
