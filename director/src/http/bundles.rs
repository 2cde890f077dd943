//! The admin API's PURE-2 offline-update bundles ([`crate::offline`]).

use super::errors::ApiError;
use super::{auth, blocking, parse_json, AppState, MAX_ADMIN_BYTES};
use crate::model::Scope;
use crate::offline::BundleRequest;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::Clock;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    name: String,
    /// hardwareId → target name.
    targets: BTreeMap<String, String>,
    /// How long the bundle is valid, e.g. "30d" (default 30 days).
    #[serde(default)]
    expires: Option<String>,
}

/// `POST /api/v1/admin/bundles`
pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let request: Create = parse_json(&body)?;
    let lifetime = match &request.expires {
        None => chrono::Duration::days(30),
        Some(text) => humantime::parse_duration(text)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "bundle check failed: expires {text:?} is not a duration; expected e.g. \"30d\""
                ))
            })?,
    };
    let answer = blocking(move || {
        let now = state.clock.now();
        let expires = now.checked_add_signed(lifetime).ok_or_else(|| {
            ApiError::bad_request("bundle check failed: expires is too far in the future")
        })?;
        let signed = crate::offline::create(
            state.store.as_ref(),
            &state.offline_keys,
            state.targets.as_ref(),
            &BundleRequest {
                name: request.name,
                targets: request.targets.into_iter().collect(),
                expires,
            },
            now,
        )?;
        Ok(serde_json::json!({
            "bundle": signed.bundle,
            "snapshot_version": signed.snapshot_version,
        }))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /api/v1/admin/bundles`
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let bundles = blocking(move || Ok(state.store.offline_bundles()?)).await?;
    Ok(Json(serde_json::json!({ "bundles": bundles })).into_response())
}

/// `GET /api/v1/admin/bundles/{name}`: everything the Director puts on a stick for it: its
/// signed offline-update targets, the latest offline-update snapshot, every director root.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let answer = blocking(move || {
        let store = state.store.as_ref();
        let bundle = store
            .offline_bundle(&name)?
            .ok_or(crate::Error::NoSuchBundle { name: name.clone() })?;
        let (snapshot_version, snapshot) = store
            .latest_offline_snapshot()?
            .ok_or(crate::Error::NoSuchBundle { name: name.clone() })?;
        let latest = store.latest_root()?.map_or(0, |(v, _)| v);
        let mut roots = Vec::new();
        for v in 1..=latest {
            let bytes = store.get_root(v)?.ok_or_else(|| {
                crate::Error::corrupt("director roots", format!("version {v} is missing"))
            })?;
            roots.push(text(bytes)?);
        }
        Ok(serde_json::json!({
            "bundle": bundle,
            "targets": text(bundle.body.clone())?,
            "snapshot_version": snapshot_version,
            "snapshot": text(snapshot)?,
            "roots": roots,
        }))
    })
    .await?;
    Ok(Json(answer).into_response())
}

/// `POST /api/v1/admin/bundles/{name}/revoke`
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let answer = blocking(move || {
        let (version, _) = crate::offline::revoke(
            state.store.as_ref(),
            &state.offline_keys,
            &name,
            state.clock.now(),
        )?;
        Ok(serde_json::json!({ "revoked": name, "snapshot_version": version }))
    })
    .await?;
    Ok(Json(answer).into_response())
}

/// Signed metadata as JSON text (it is UTF-8 JSON: the Director wrote it).
fn text(bytes: Vec<u8>) -> Result<String, ApiError> {
    String::from_utf8(bytes)
        .map_err(|_| crate::Error::corrupt("offline-update metadata", "not UTF-8").into())
}

/// `POST /api/v1/admin/receipts`: one receipt a technician brought back from a vehicle.
pub async fn import_receipt(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, super::MAX_MANIFEST_BYTES, "a receipt").await?;
    let receipt = blocking(move || {
        Ok(crate::offline::import_receipt(
            state.store.as_ref(),
            &body,
            state.clock.now(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}
