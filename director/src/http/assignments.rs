//! Assignment routes: one vehicle's targets, a campaign over a hardware id, and cancelling.
//! The admin names targets; length, hashes and custom metadata come from the Image
//! repository's verified metadata ([`AppState::targets`]), and every vehicle's targets are
//! planned ([`plan`]: hardware ids, depends order) and stored all or nothing, then re-signed.

use super::errors::ApiError;
use super::{auth, blocking, parse_json, AppState, MAX_ADMIN_BYTES};
use crate::error::{Error, Fault};
use crate::model::{Assignment, NewAssignment, Scope, Vehicle};
use crate::plan::{plan, Requested};
use crate::vehicle_metadata::VehicleSigner;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::metadata::TargetFile;
use ferry_core::Clock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `POST /api/v1/admin/vehicles/{vin}/assignments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    #[serde(default)]
    campaign: Option<String>,
    targets: Vec<AssignTarget>,
}

/// One target for one ECU, by name only: a `target` with length and hashes is refused (400),
/// since only the Image repository may say what a target is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignTarget {
    ecu_serial: String,
    target_name: String,
}

/// `POST /api/v1/admin/campaigns` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CampaignRequest {
    name: String,
    target_name: String,
    hardware_id: String,
    /// The vehicles to consider; every vehicle of the fleet if absent.
    #[serde(default)]
    vins: Option<Vec<String>>,
}

/// What a campaign did to one vehicle.
#[derive(Debug, Serialize)]
struct VehicleResult {
    vin: String,
    /// "assigned", "refused" (a check failed: `reason` names it) or "failed" (the Director
    /// could not store or sign; the detail is in its log).
    result: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    assignments: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct CampaignReport {
    campaign: String,
    target_name: String,
    hardware_id: String,
    assigned: usize,
    refused: usize,
    failed: usize,
    vehicles: Vec<VehicleResult>,
}

/// The HTTP answer to an assignment error. Image repository trouble is a bad gateway (the
/// Director depends on it and it failed or could not be trusted); a target it did not publish,
/// or one whose hardware, depends or custom metadata do not fit, is unprocessable.
fn refusal(e: Error) -> ApiError {
    let status = match &e {
        Error::ImageRepoMetadata { .. } | Error::ImageRepoFetch { .. } => StatusCode::BAD_GATEWAY,
        Error::TargetNotPublished { .. } | Error::Manifest(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::AssignmentNotActive { .. } => StatusCode::CONFLICT,
        // The Director's own configuration: the admin must see what is missing.
        Error::ImageRepoConfig { .. } => StatusCode::SERVICE_UNAVAILABLE,
        _ => return e.into(),
    };
    tracing::warn!(status = status.as_u16(), error = %e, "assignment refused");
    ApiError::new(status, e.to_string())
}

/// Whether `e` is the Director's own failure (storage, signing, its configuration) rather
/// than a check refusing the request.
fn on_our_side(e: &Error) -> bool {
    e.fault() == Fault::Storage
        || matches!(
            e,
            Error::Signing(_) | Error::ImageRepoConfig { .. } | Error::SchemaTooNew { .. }
        )
}

/// Store `planned` for `vin` and re-sign its metadata, all or nothing: if signing fails the
/// new assignments are cancelled again (kept, for the record, as cancelled with the reason),
/// so no active assignment waits on metadata that was never signed.
fn store_and_sign(
    state: &AppState,
    vin: &str,
    planned: &[NewAssignment],
) -> crate::Result<Vec<Assignment>> {
    let store = state.store.as_ref();
    let added = store.add_assignments(vin, planned)?;
    let signed = VehicleSigner::new(store, &state.keys, state.lifetimes)
        .sign_vehicle(vin, state.clock.now());
    if let Err(e) = signed {
        for a in &added {
            if let Err(undo) = store.cancel_assignment(a.id, "metadata signing failed") {
                tracing::error!(id = a.id, %vin, error = %undo, "could not undo an assignment after a signing failure");
            }
        }
        return Err(e);
    }
    Ok(added)
}

fn unknown_vehicle(vin: &str) -> Error {
    Error::UnknownVehicle {
        vin: vin.to_owned(),
    }
}

/// `POST /api/v1/admin/vehicles/{vin}/assignments`
pub async fn assign(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let request: AssignRequest = parse_json(&body)?;
    if request.targets.is_empty() {
        return Err(ApiError::bad_request(
            "assignment check failed: no targets; expected at least one target",
        ));
    }
    let assignments = blocking(move || {
        let vehicle = state
            .store
            .get_vehicle(&vin)?
            .ok_or_else(|| unknown_vehicle(&vin))?;
        // A serial typo is refused before the Image repository is asked anything.
        for t in &request.targets {
            if !vehicle.ecus.iter().any(|e| e.serial == t.ecu_serial) {
                return Err(Error::UnknownEcu {
                    vin: vin.clone(),
                    serial: t.ecu_serial.clone(),
                }
                .into());
            }
        }
        let names: Vec<&str> = request
            .targets
            .iter()
            .map(|t| t.target_name.as_str())
            .collect();
        let files = state.targets.targets(&names).map_err(refusal)?;
        let requested: Vec<Requested> = request
            .targets
            .iter()
            .zip(files)
            .map(|(t, target)| Requested {
                ecu_serial: t.ecu_serial.clone(),
                target_name: t.target_name.clone(),
                target,
            })
            .collect();
        let planned = plan(&vehicle, &requested, request.campaign.as_deref()).map_err(refusal)?;
        let added = store_and_sign(&state, &vin, &planned)?;
        tracing::info!(%vin, count = added.len(), "assignments added");
        Ok(added)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(assignments)).into_response())
}

/// `POST /api/v1/admin/campaigns`: `target_name` on every ECU of `hardware_id`, in the listed
/// vehicles or across the fleet. Each vehicle is planned and stored on its own; the answer
/// lists each vehicle's result: 201 if any was assigned, 422 if every one was refused.
pub async fn campaign(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let request: CampaignRequest = parse_json(&body)?;
    if request.name.trim().is_empty() || request.hardware_id.is_empty() {
        return Err(ApiError::bad_request(
            "campaign check failed: empty name or hardware_id; expected both",
        ));
    }
    if request.vins.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_request(
            "campaign check failed: vins is empty; expected at least one VIN, or no vins for the whole fleet",
        ));
    }
    let report = blocking(move || run_campaign(&state, request)).await?;
    let status = if report.assigned > 0 {
        StatusCode::CREATED
    } else if report.failed > 0 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)).into_response())
}

fn run_campaign(state: &AppState, request: CampaignRequest) -> Result<CampaignReport, ApiError> {
    let target = state
        .targets
        .target(&request.target_name)
        .map_err(refusal)?;
    let store = state.store.as_ref();
    let mut selected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ecu in store.ecus_with_hardware_id(&request.hardware_id, request.vins.as_deref())? {
        selected.entry(ecu.vin).or_default().push(ecu.serial);
    }
    // Listed vehicles with nothing to install on are reported, not silently skipped.
    for vin in request.vins.iter().flatten() {
        selected.entry(vin.clone()).or_default();
    }
    let mut report = CampaignReport {
        campaign: request.name.clone(),
        target_name: request.target_name.clone(),
        hardware_id: request.hardware_id.clone(),
        assigned: 0,
        refused: 0,
        failed: 0,
        vehicles: Vec::with_capacity(selected.len()),
    };
    for (vin, serials) in selected {
        let outcome = campaign_vehicle(state, &request, &target, &vin, &serials);
        let result = match outcome {
            Ok(added) => {
                report.assigned += 1;
                VehicleResult {
                    vin,
                    result: "assigned",
                    assignments: added.iter().map(|a| a.id).collect(),
                    reason: None,
                }
            }
            Err(e) if !on_our_side(&e) => {
                report.refused += 1;
                VehicleResult {
                    vin,
                    result: "refused",
                    assignments: Vec::new(),
                    reason: Some(e.to_string()),
                }
            }
            Err(e) => {
                tracing::error!(%vin, error = %e, "campaign assignment failed on the server side");
                report.failed += 1;
                VehicleResult {
                    vin,
                    result: "failed",
                    assignments: Vec::new(),
                    reason: Some("internal error: the Director could not store or sign this vehicle's assignments; the detail is in its log".into()),
                }
            }
        };
        report.vehicles.push(result);
    }
    tracing::info!(
        campaign = %report.campaign,
        assigned = report.assigned,
        refused = report.refused,
        failed = report.failed,
        "campaign run"
    );
    Ok(report)
}

/// Plan, store and sign one vehicle of a campaign.
fn campaign_vehicle(
    state: &AppState,
    request: &CampaignRequest,
    target: &TargetFile,
    vin: &str,
    serials: &[String],
) -> crate::Result<Vec<Assignment>> {
    let vehicle: Vehicle = state
        .store
        .get_vehicle(vin)?
        .ok_or_else(|| unknown_vehicle(vin))?;
    if serials.is_empty() {
        return Err(Error::InvalidAssignment {
            reason: format!(
                "vehicle {vin} has no ECU with hardware id {}; expected at least one",
                request.hardware_id
            ),
        });
    }
    let requested: Vec<Requested> = serials
        .iter()
        .map(|serial| Requested {
            ecu_serial: serial.clone(),
            target_name: request.target_name.clone(),
            target: target.clone(),
        })
        .collect();
    let planned = plan(&vehicle, &requested, Some(&request.name))?;
    store_and_sign(state, vin, &planned)
}

/// `DELETE /api/v1/admin/vehicles/{vin}/assignments`: every active assignment of the vehicle.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let cancelled = blocking(move || {
        let store = state.store.as_ref();
        if store.get_vehicle(&vin)?.is_none() {
            return Err(unknown_vehicle(&vin).into());
        }
        let cancelled = store.cancel_assignments(&vin, "cancelled by the operator")?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&vin, state.clock.now())?;
        tracing::info!(%vin, cancelled, "assignments cancelled");
        Ok(cancelled)
    })
    .await?;
    Ok(Json(serde_json::json!({ "cancelled": cancelled })).into_response())
}

/// `DELETE /api/v1/admin/assignments/{id}`: one active assignment; answers it as cancelled.
pub async fn cancel_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "assignment check failed: {id:?} is not an assignment id; expected a number"
        ))
    })?;
    let cancelled = blocking(move || {
        let store = state.store.as_ref();
        let cancelled = store
            .cancel_assignment(id, "cancelled by the operator")
            .map_err(refusal)?;
        VehicleSigner::new(store, &state.keys, state.lifetimes)
            .sign_vehicle(&cancelled.vin, state.clock.now())?;
        tracing::info!(id, vin = %cancelled.vin, "assignment cancelled");
        Ok(cancelled)
    })
    .await?;
    Ok(Json(cancelled).into_response())
}
