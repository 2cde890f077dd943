//! The device API: per-vehicle metadata and manifest upload.

use super::errors::ApiError;
use super::{auth, blocking, AppState, MAX_MANIFEST_BYTES};
use crate::manifests::{process_manifest_judged, DEFAULT_MAX_SKEW};
use crate::model::{Assignment, AssignmentStatus, MetadataRole};
use crate::queue::served_ids;
use crate::store::{self, Prefetch};
use crate::vehicle_metadata::VehicleSigner;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_core::Clock;
use std::sync::Arc;

/// Which metadata file a device asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    RootVersion(u64),
    LatestRoot,
    Role(MetadataRole),
    /// `N.snapshot.json` or `N.targets.json`: the version a vehicle read of in the metadata
    /// above it (consistent snapshots), so a re-signing mid-refresh cannot mix versions.
    RoleVersion(MetadataRole, u64),
    /// PURE-2: the latest offline-update snapshot (the same for every vehicle).
    OfflineSnapshot,
}

fn parse_file(file: &str) -> Option<File> {
    match file {
        "root.json" => Some(File::LatestRoot),
        "timestamp.json" => Some(File::Role(MetadataRole::Timestamp)),
        "snapshot.json" => Some(File::Role(MetadataRole::Snapshot)),
        "targets.json" => Some(File::Role(MetadataRole::Targets)),
        "offline-update-snapshot.json" => Some(File::OfflineSnapshot),
        _ => {
            let (n, name) = file.split_once('.')?;
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = n.parse().ok().filter(|n| *n >= 1)?;
            match name {
                "root.json" => Some(File::RootVersion(n)),
                "snapshot.json" => Some(File::RoleVersion(MetadataRole::Snapshot, n)),
                "targets.json" => Some(File::RoleVersion(MetadataRole::Targets, n)),
                _ => None,
            }
        }
    }
}

impl File {
    fn is_targets(self) -> bool {
        matches!(
            self,
            File::Role(MetadataRole::Targets) | File::RoleVersion(MetadataRole::Targets, _)
        )
    }
}

const METADATA_REQUEST: &str = "device metadata request";

/// `GET /api/v1/vehicles/{vin}/metadata/{file}`
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    Path((vin, file)): Path<(String, String)>,
    caller: auth::DeviceCaller,
) -> Result<Response, ApiError> {
    let which = parse_file(&file);
    let store = state.store.clone();
    // Read on this async task when a reader connection is free: the read is a few point
    // lookups (tens of µs), and neither the reader's mutex (tried, never waited for) nor a
    // WAL read transaction waits for another thread. The hand-off to the blocking pool and
    // back it saves cost the Director ~10% of its CPU per check-in under `ferry bench
    // director`. When every reader is taken, the read waits on the blocking pool instead.
    let found = store::try_read(store.as_ref(), METADATA_REQUEST, |view| {
        lookup(view, &caller, &vin, &file, which)
    });
    let (bytes, pending) = match found {
        Some(found) => found??,
        None => {
            let store = store.clone();
            blocking(move || {
                store::read(store.as_ref(), METADATA_REQUEST, |view| {
                    lookup(view, &caller, &vin, &file, which)
                })?
            })
            .await?
        }
    };
    let bytes = if pending.is_empty() {
        bytes
    } else {
        blocking(move || {
            // The bytes are parsed only when something is pending: most fetches find
            // nothing to mark.
            let ids = served_ids(pending, &bytes);
            if !ids.is_empty() {
                store.mark_in_flight(&ids)?;
            }
            Ok(bytes)
        })
        .await?
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// The credential, the file and the pending assignments a targets file puts in flight, from
/// one view.
fn lookup(
    view: &dyn store::View,
    caller: &auth::DeviceCaller,
    vin: &str,
    file: &str,
    which: Option<File>,
) -> Result<(Vec<u8>, Vec<Assignment>), ApiError> {
    // What this request reads, announced up front: one round trip on PostgreSQL. The data
    // is handed out only after the credential check below passes.
    let (file_read, queue_read) = match which {
        Some(File::Role(role)) => (
            Some(Prefetch::Metadata(vin, role)),
            (role == MetadataRole::Targets).then_some(Prefetch::ActiveAssignments(vin)),
        ),
        _ => (None, None),
    };
    let reads: Vec<Prefetch> = [caller.first_read(vin), file_read, queue_read]
        .into_iter()
        .flatten()
        .collect();
    view.prefetch(&reads)?;
    caller.check(view, vin)?;
    let which = which.ok_or_else(|| {
        ApiError::not_found(format!(
            "metadata check failed: no file {file:?}; expected N.root.json, root.json, timestamp.json, [N.]snapshot.json, [N.]targets.json or offline-update-snapshot.json"
        ))
    })?;
    let bytes = match which {
        File::RootVersion(n) => view.get_root(n)?,
        File::LatestRoot => view.latest_root()?.map(|(_, b)| b),
        File::Role(role) => view.get_vehicle_metadata(vin, role)?.map(|m| m.bytes),
        File::RoleVersion(role, n) => view.get_vehicle_metadata_version(vin, role, n)?,
        File::OfflineSnapshot => view.latest_offline_snapshot()?.map(|(_, b)| b),
    };
    let Some(bytes) = bytes else {
        return Err(ApiError::not_found(format!(
            "metadata check failed: no {file} for vehicle {vin}"
        )));
    };
    let pending = if which.is_targets() {
        view.active_assignments(vin)?
            .into_iter()
            .filter(|a| a.status == AssignmentStatus::Pending)
            .collect()
    } else {
        Vec::new()
    };
    Ok((bytes, pending))
}

/// `PUT /api/v1/vehicles/{vin}/manifest`
pub async fn manifest(
    State(state): State<Arc<AppState>>,
    Path(vin): Path<String>,
    caller: auth::DeviceCaller,
    body: Body,
) -> Result<Response, ApiError> {
    // Who is calling, before one byte of the body is read: an unauthenticated upload is
    // answered 401 whatever its size.
    let (check_state, check_vin, check_caller) = (state.clone(), vin.clone(), caller.clone());
    blocking(move || {
        // Checked again with the keys once the body is in: no snapshot needed here.
        store::read_each(
            check_state.store.as_ref(),
            "device manifest request",
            |view| check_caller.check(view, &check_vin),
        )?
    })
    .await?;
    // Within the vehicle's manifest budget, before the body is read: a flood costs the
    // Director a head and one lookup per request, and the database nothing.
    let per_minute = state.manifest_rate.per_minute();
    if let Err(wait) = state.manifest_rate.take(&vin, state.clock.now()) {
        let secs = wait.as_secs().max(1);
        tracing::warn!(%vin, per_minute, "manifest refused: rate limit");
        let mut refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "manifest rate check failed: vehicle {vin} sent more than {per_minute} manifests in a minute; expected at most {per_minute} per minute (retry after {secs} s)"
            ),
        );
        refusal.retry_after = Some(secs);
        return Err(refusal);
    }
    let body = super::body(body, MAX_MANIFEST_BYTES, "a vehicle manifest").await?;
    let id = blocking(move || {
        let store = state.store.as_ref();
        // The credential (again: it may have been revoked while the body arrived) and the keys
        // the manifest is checked against, from one snapshot.
        let vehicle = store::read(store, "device manifest request", |view| {
            let reads: Vec<Prefetch> = caller
                .first_read(&vin)
                .into_iter()
                .chain([Prefetch::EcuKeys(&vin)])
                .collect();
            view.prefetch(&reads)?;
            caller.check(view, &vin)?;
            Ok::<_, ApiError>(view.ecu_keys(&vin)?)
        })??;
        let now = state.clock.now();
        // A manifest a relay held while its uplink was down is judged at its receipt time.
        let judged_at = match caller.relay() {
            Some(relay) => {
                let at = relay.judged_at(now, DEFAULT_MAX_SKEW)?;
                tracing::info!(%vin, relay = %relay.name, received_at = %at, "manifest forwarded by a relay");
                at
            }
            None => now,
        };
        let policy = &state.manifests;
        let recorded = process_manifest_judged(
            store,
            &vin,
            vehicle,
            &body,
            now,
            judged_at,
            DEFAULT_MAX_SKEW,
            policy,
        )?;
        // The relay's site: this vehicle is behind it (for `ferry admin relay pack`). The
        // manifest is recorded whatever happens here.
        if let Some(relay) = caller.relay() {
            if let Err(e) = store.record_relay_vehicle(&vin, &relay.name, now) {
                tracing::error!(%vin, relay = %relay.name, error = %e, "recording the relay's vehicle failed");
            }
        }
        // Settled assignments (or targets that miss a queue head) mean the next one queued on
        // an ECU is served only once the vehicle is re-signed. The manifest is recorded
        // whatever happens here: a failed re-signing is logged, not the device's fault, and
        // the vehicle's next manifest finds the targets stale and tries again.
        if recorded.resign {
            let signer = VehicleSigner::new(store, &state.keys, state.lifetimes);
            if let Err(e) = signer.sign_vehicle(&vin, now) {
                tracing::error!(%vin, error = %e, "re-signing after a manifest failed; the next manifest retries");
            }
        }
        Ok(recorded.id)
    })
    .await?;
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "id": id })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_parse() {
        assert_eq!(parse_file("3.root.json"), Some(File::RootVersion(3)));
        assert_eq!(parse_file("root.json"), Some(File::LatestRoot));
        assert_eq!(
            parse_file("targets.json"),
            Some(File::Role(MetadataRole::Targets))
        );
        assert_eq!(
            parse_file("7.targets.json"),
            Some(File::RoleVersion(MetadataRole::Targets, 7))
        );
        assert_eq!(
            parse_file("2.snapshot.json"),
            Some(File::RoleVersion(MetadataRole::Snapshot, 2))
        );
        for bad in [
            "3.timestamp.json",
            "0.targets.json",
            "1.2.targets.json",
            "99999999999999999999.snapshot.json",
            "0.root.json",
            "-1.root.json",
            "+1.root.json",
            ".root.json",
            "x.json",
        ] {
            assert_eq!(parse_file(bad), None, "{bad}");
        }
    }
}
