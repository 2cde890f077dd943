//! `POST /api/v1/admin/relays/{name}/exports/verify?mac=HEX` (write): check the MAC over the
//! index of what relay `name` exported (`ferry relay export`), before `ferry admin relay
//! import` sends one manifest of it. The body is index.json's exact bytes; the MAC is
//! HMAC-SHA-256 keyed with the SHA-256 of the relay's token secret, which is what the Director
//! stores of it. A dropped, reordered or re-dated entry on the way fails here, naming the check.

use super::errors::ApiError;
use super::{auth, blocking, AppState};
use crate::model::Scope;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

/// The largest index taken: ~250 bytes an entry, a relay's whole queue (max_queue 100,000).
const MAX_INDEX_BYTES: usize = 64 << 20;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MacQuery {
    mac: String,
}

pub async fn verify(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(MacQuery { mac }): Query<MacQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let index = super::body(body, MAX_INDEX_BYTES, "a relay export index").await?;
    let reply = blocking(move || {
        let presented = hex::decode(mac.trim()).map_err(|_| {
            ApiError::bad_request("index MAC check failed: the MAC is not hex; expected the 64 hex digits of index.mac")
        })?;
        let Some(key) = state.store.relay_secret_hash(&name)? else {
            return Err(crate::Error::UnknownRelay { name }.into());
        };
        let doc: serde_json::Value = serde_json::from_slice(&index).map_err(|e| {
            ApiError::bad_request(format!(
                "index check failed: index.json is not JSON ({e}); expected what `ferry relay export` writes"
            ))
        })?;
        if doc["relay"] != name.as_str() {
            return Err(ApiError::bad_request(format!(
                "index check failed: the index is relay {}'s; expected relay {name}'s",
                doc["relay"]
            )));
        }
        let mut check = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|_| ApiError::bad_request("index MAC check failed: no key"))?;
        check.update(&index);
        // Constant-time comparison.
        if check.verify_slice(&presented).is_err() {
            tracing::warn!(relay = %name, "relay export index refused: MAC mismatch");
            return Err(ApiError::bad_request(format!(
                "index MAC check failed: index.json is not what relay {name} wrote (changed on the way, or written with another token); expected the HMAC-SHA-256 in index.mac under relay {name}'s token"
            )));
        }
        let manifests = doc["manifests"].as_array().map_or(0, Vec::len);
        tracing::info!(relay = %name, manifests, "relay export index verified");
        Ok(serde_json::json!({ "relay": name, "verified": true, "manifests": manifests }))
    })
    .await?;
    Ok(Json(reply).into_response())
}
