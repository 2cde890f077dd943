//! `POST /api/v1/admin/relays/{name}/vehicles/{vin}/pack` (write): what a relay that never
//! reaches the Director needs to serve vehicle `vin` (issue #20, `ferry admin relay pack`):
//!
//! ```json
//! {"relay": "yard-7", "vin": "VIN-1", "device_token_sha256": "HEX or null",
//!  "files": {"1.root.json": "HEX", "root.json": "HEX", "timestamp.json": "HEX",
//!            "snapshot.json": "HEX", "7.snapshot.json": "HEX", "targets.json": "HEX", ...}}
//! ```
//!
//! Every file is hex of the exact bytes the device API would serve (the vehicle checks their
//! hashes and signatures, so they travel byte for byte); the versioned names of the current
//! snapshot and targets are there too, for vehicles that ask by version. The token hash lets
//! the relay tell the vehicle from a stranger while it has no Director to ask. Write scope:
//! the pending assignments the targets file names are put in flight, as a vehicle's own fetch
//! would.

use super::errors::ApiError;
use super::{auth, blocking, AppState};
use crate::model::{AssignmentStatus, MetadataRole, Scope};
use crate::store;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The version a signed metadata file says it is.
fn version_of(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes).ok()?["signed"]["version"].as_u64()
}

pub async fn pack(
    State(state): State<Arc<AppState>>,
    Path((name, vin)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    auth::admin(&state, &headers, Scope::Write).await?;
    let reply = blocking(move || {
        let store = state.store.as_ref();
        super::relays::require_registered(store, &name)?;
        let (files, pending) = store::read(store, "relay pack", |view| -> Result<_, ApiError> {
            if view.ecu_keys(&vin)?.is_none() {
                return Err(crate::Error::UnknownVehicle { vin: vin.clone() }.into());
            }
            let mut files = BTreeMap::new();
            if let Some((latest, bytes)) = view.latest_root()? {
                for n in 1..latest {
                    if let Some(b) = view.get_root(n)? {
                        files.insert(format!("{n}.root.json"), b);
                    }
                }
                files.insert(format!("{latest}.root.json"), bytes.clone());
                files.insert("root.json".to_owned(), bytes);
            }
            for (role, file) in [
                (MetadataRole::Timestamp, "timestamp"),
                (MetadataRole::Snapshot, "snapshot"),
                (MetadataRole::Targets, "targets"),
            ] {
                let Some(m) = view.get_vehicle_metadata(&vin, role)? else {
                    return Err(ApiError::not_found(format!(
                        "metadata check failed: vehicle {vin} has no signed {file}.json yet; expected a vehicle whose metadata the Director signed"
                    )));
                };
                if role != MetadataRole::Timestamp {
                    if let Some(v) = version_of(&m.bytes) {
                        files.insert(format!("{v}.{file}.json"), m.bytes.clone());
                    }
                }
                files.insert(format!("{file}.json"), m.bytes);
            }
            if let Some((_, b)) = view.latest_offline_snapshot()? {
                files.insert("offline-update-snapshot.json".to_owned(), b);
            }
            let pending: Vec<_> = view
                .active_assignments(&vin)?
                .into_iter()
                .filter(|a| a.status == AssignmentStatus::Pending)
                .collect();
            Ok((files, pending))
        })??;
        let ids = crate::queue::served_ids(pending, &files["targets.json"]);
        if !ids.is_empty() {
            store.mark_in_flight(&ids)?;
        }
        let token = store.device_token_hash(&vin)?.map(hex::encode);
        tracing::info!(relay = %name, %vin, files = files.len(), "vehicle packed for a relay");
        let files: BTreeMap<String, String> =
            files.into_iter().map(|(k, v)| (k, hex::encode(v))).collect();
        Ok(serde_json::json!({
            "relay": name,
            "vin": vin,
            "device_token_sha256": token,
            "files": files,
        }))
    })
    .await?;
    Ok(Json(reply).into_response())
}
