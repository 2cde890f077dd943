//! The admin API: inventory, assignments and status, behind admin bearer tokens.

use super::errors::ApiError;
use super::{auth, blocking, parse_json, AppState};
use crate::error::Error;
use crate::model::{NewVehicle, Scope};
use crate::plan::{plan, Requested};
use crate::vehicle_metadata::VehicleSigner;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::metadata::TargetFile;
use serde::Deserialize;

/// `POST /api/v1/admin/vehicles/{vin}/assignments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    #[serde(default)]
    campaign: Option<String>,
    targets: Vec<AssignTarget>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignTarget {
    ecu_serial: String,
    target_name: String,
    /// As the Image repository signed it, with its Uptane custom (hardwareIds, depends, ...).
    target: TargetFile,
}

fn unknown_vehicle(vin: &str) -> ApiError {
    Error::UnknownVehicle {
        vin: vin.to_owned(),
    }
    .into()
}

/// `POST /api/v1/admin/vehicles`
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let new: NewVehicle = parse_json(&body)?;
    let token = blocking(move || {
        let store = state.store.as_ref();
        store.register_vehicle(&new)?;
        let secret = store.issue_device_token(&new.vin)?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&new.vin, chrono::Utc::now())?;
        tracing::info!(vin = %new.vin, ecus = new.ecus.len(), "vehicle registered");
        Ok(serde_json::json!({
            "vin": new.vin,
            "device_token": auth::device_token(&new.vin, &secret),
        }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(token)).into_response())
}

/// `GET /api/v1/admin/vehicles`
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let vehicles = blocking(move || {
        let store = state.store.as_ref();
        let mut vehicles = Vec::new();
        for vin in store.list_vins()? {
            if let Some(v) = store.get_vehicle(&vin)? {
                vehicles.push(v);
            }
        }
        Ok(vehicles)
    })
    .await?;
    Ok(Json(vehicles).into_response())
}

/// `GET /api/v1/admin/vehicles/{vin}`
pub async fn vehicle(
    State(state): State<AppState>,
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

/// `POST /api/v1/admin/vehicles/{vin}/assignments`
pub async fn assign(
    State(state): State<AppState>,
    Path(vin): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let request: AssignRequest = parse_json(&body)?;
    if request.targets.is_empty() {
        return Err(ApiError::bad_request(
            "assignment check failed: no targets; expected at least one target",
        ));
    }
    let requested: Vec<Requested> = request
        .targets
        .into_iter()
        .map(|t| Requested {
            ecu_serial: t.ecu_serial,
            target_name: t.target_name,
            target: t.target,
        })
        .collect();
    let assignments = blocking(move || {
        let store = state.store.as_ref();
        let vehicle = store
            .get_vehicle(&vin)?
            .ok_or_else(|| unknown_vehicle(&vin))?;
        let planned = match plan(&vehicle, &requested, request.campaign.as_deref()) {
            Ok(p) => p,
            // A target whose custom metadata cannot be read is the operator's refusal too.
            Err(e @ Error::Manifest(_)) => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    e.to_string(),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let added = store.add_assignments(&vin, &planned)?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&vin, chrono::Utc::now())?;
        tracing::info!(%vin, count = added.len(), "assignments added");
        Ok(added)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(assignments)).into_response())
}

/// `DELETE /api/v1/admin/vehicles/{vin}/assignments`
pub async fn cancel(
    State(state): State<AppState>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let cancelled = blocking(move || {
        let store = state.store.as_ref();
        if store.get_vehicle(&vin)?.is_none() {
            return Err(unknown_vehicle(&vin));
        }
        let cancelled = store.cancel_assignments(&vin, "cancelled by the operator")?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&vin, chrono::Utc::now())?;
        tracing::info!(%vin, cancelled, "assignments cancelled");
        Ok(cancelled)
    })
    .await?;
    Ok(Json(serde_json::json!({ "cancelled": cancelled })).into_response())
}

/// `GET /api/v1/admin/vehicles/{vin}/status`
pub async fn status(
    State(state): State<AppState>,
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
        Ok(serde_json::json!({ "vehicle": vehicle, "assignments": assignments }))
    })
    .await?;
    Ok(Json(status).into_response())
}
