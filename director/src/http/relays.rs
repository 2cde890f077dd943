//! The admin API's gateway relay routes (issue #20): register a relay (its token is shown
//! once, its client certificate registered by SHA-256 if given), list them, revoke one.

use super::errors::ApiError;
use super::relayed::relay_token;
use super::{auth, blocking, parse_json, AppState, MAX_ADMIN_BYTES};
use crate::model::Scope;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRelay {
    name: String,
    /// The relay's client certificate, PEM (`ferry director issue-cert --relay NAME`).
    #[serde(default)]
    cert: Option<String>,
}

/// The SHA-256 of the relay certificate `pem` (its DER), refused unless it is one certificate
/// whose CN names relay `name`.
fn relay_cert_sha256(name: &str, pem: &str) -> Result<[u8; 32], ApiError> {
    use rustls::pki_types::pem::PemObject;
    use sha2::Digest;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
        ApiError::bad_request(format!(
            "relay certificate check failed: not a PEM certificate ({e}); expected the cert.pem `ferry director issue-cert --relay {name}` wrote"
        ))
    })?;
    match crate::fleet_ca::certificate_relay(&der) {
        Some(named) if named == name => Ok(sha2::Sha256::digest(&der).into()),
        named => Err(ApiError::bad_request(format!(
            "relay certificate check failed: the certificate {}; expected a certificate for relay {name} (CN relay:{name}, `ferry director issue-cert --relay {name}`)",
            named.map_or("names no relay".to_owned(), |n| format!("is relay {n}'s"))
        ))),
    }
}

/// `POST /api/v1/admin/relays` (write): `{"name": "yard-7", "cert": PEM?}` →
/// `{"name", "token", "cert_sha256"?}`.
pub async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, MAX_ADMIN_BYTES, "an admin request").await?;
    let new: NewRelay = parse_json(&body)?;
    let cert = new
        .cert
        .as_deref()
        .map(|pem| relay_cert_sha256(&new.name, pem))
        .transpose()?;
    let reply = blocking(move || {
        let secret = state.store.add_relay(&new.name, cert.as_ref())?;
        tracing::info!(relay = %new.name, certificate = cert.is_some(), "relay registered");
        let mut reply = serde_json::json!({
            "name": new.name,
            "token": relay_token(&new.name, &secret),
        });
        if let Some(cert) = cert {
            reply["cert_sha256"] = hex::encode(cert).into();
        }
        Ok(reply)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

/// `GET /api/v1/admin/relays` (read).
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let relays = blocking(move || Ok(state.store.list_relays()?)).await?;
    Ok(Json(serde_json::json!({ "relays": relays })).into_response())
}

/// `POST /api/v1/admin/relays/{name}/revoke` (write): the relay's token and certificate are
/// refused from now on.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let reply = blocking(move || {
        state.store.revoke_relay(&name)?;
        tracing::warn!(relay = %name, "relay revoked");
        Ok(serde_json::json!({ "name": name, "revoked": true }))
    })
    .await?;
    Ok(Json(reply).into_response())
}

/// `GET /api/v1/admin/relays/{name}/vehicles` (read): the vehicles last seen through relay
/// `name` (their last relayed manifest came through it, and none came direct since).
pub async fn vehicles(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Read).await?;
    let reply = blocking(move || {
        require_registered(state.store.as_ref(), &name)?;
        let vehicles = state.store.relay_vehicles(&name)?;
        Ok(serde_json::json!({ "relay": name, "vehicles": vehicles }))
    })
    .await?;
    Ok(Json(reply).into_response())
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarriedQuery {
    vin: String,
    received_at: String,
}

/// `POST /api/v1/admin/relays/{name}/manifests?vin=VIN&received_at=RFC3339` (write): a
/// manifest relay `name` queued and `ferry relay export` wrote out, carried across a data
/// diode or on a USB stick (`ferry admin relay import`). Processed as if the relay had
/// forwarded it: its signatures and nonce checked as always, its report times judged at the
/// relay's receipt time; a second import of it is a replay (409).
pub async fn import_manifest(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    query: axum::extract::Query<CarriedQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let body = super::body(body, super::MAX_MANIFEST_BYTES, "a vehicle manifest").await?;
    let CarriedQuery { vin, received_at } = query.0;
    let id = blocking(move || {
        let store = state.store.as_ref();
        require_registered(store, &name)?;
        let now = state.clock.now();
        let judged_at = super::relayed::judge_receipt_time(
            &name,
            &received_at,
            now,
            crate::manifests::DEFAULT_MAX_SKEW,
        )?;
        let vehicle = store.ecu_keys(&vin)?;
        let recorded = crate::manifests::process_manifest_judged(
            store,
            &vin,
            vehicle,
            &body,
            now,
            judged_at,
            crate::manifests::DEFAULT_MAX_SKEW,
            &state.manifests,
        )?;
        if recorded.resign {
            let signer =
                crate::vehicle_metadata::VehicleSigner::new(store, &state.keys, state.lifetimes);
            if let Err(e) = signer.sign_vehicle(&vin, now) {
                tracing::error!(%vin, error = %e, "re-signing after an imported manifest failed");
            }
        }
        if let Err(e) = store.record_relay_vehicle(&vin, &name, now) {
            tracing::error!(%vin, relay = %name, error = %e, "recording the relay's vehicle failed");
        }
        tracing::info!(%vin, relay = %name, %received_at, "manifest carried from a relay imported");
        Ok(recorded.id)
    })
    .await?;
    Ok(Json(serde_json::json!({ "id": id })).into_response())
}

/// Refused, naming the relay, unless `name` is a registered relay that is not revoked.
pub(super) fn require_registered(
    store: &dyn crate::store::Store,
    name: &str,
) -> Result<(), ApiError> {
    let registered = store
        .list_relays()?
        .into_iter()
        .any(|r| r.name == name && r.revoked_at.is_none());
    if !registered {
        return Err(crate::Error::UnknownRelay {
            name: name.to_owned(),
        }
        .into());
    }
    Ok(())
}
