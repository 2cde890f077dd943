//! Manifests: the append-only log, and what an accepted manifest changes (the SQLite
//! backend's `manifests.rs`, in PostgreSQL's dialect). Recording runs with the vehicle's row
//! locked, so two Directors settling the same vehicle's assignments take turns; the accepted
//! (vin, nonce) unique index makes a nonce count once across all of them.

use super::sql::{execute, from_ms, get, pg, query, query_opt, to_json, unique_violation};
use crate::model::{
    Assignment, EcuState, IncomingManifest, ManifestEntry, ManifestVerdict, MetadataRole,
    RecordedManifest, Verdict,
};
use crate::queue::{settle, Active};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use ferry_core::manifest::EcuVersionReport;
use std::collections::HashSet;

/// Runs inside the caller's write transaction: any error rolls everything back.
pub(super) async fn record(
    c: &impl GenericClient,
    m: &IncomingManifest,
) -> Result<RecordedManifest> {
    let Some(serials) = ecu_serials(c, &m.vin).await? else {
        return Err(Error::UnknownVehicle { vin: m.vin.clone() });
    };
    let (verdict, nonce, reason) = match &m.verdict {
        ManifestVerdict::Accepted { nonce, .. } => (Verdict::Accepted, Some(nonce.as_str()), ""),
        ManifestVerdict::Refused { nonce, reason, .. } => {
            (Verdict::Refused, nonce.as_deref(), reason.as_str())
        }
    };
    let received_at = super::sql::ms(m.received_at);
    let length = i64::try_from(m.body_length).unwrap_or(i64::MAX);
    // ON CONFLICT DO NOTHING: a reused nonce inserts nothing and leaves the transaction
    // usable (an error would abort it), and is then reported as such.
    let stmt = c
        .prepare_cached(
            "INSERT INTO manifests (vin, received_at, nonce, verdict, reason, body,
                 body_sha256, body_length)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (vin, nonce) WHERE verdict = 'accepted' DO NOTHING
             RETURNING id",
        )
        .await
        .map_err(pg("insert manifest"))?;
    let inserted = c
        .query_opt(
            &stmt,
            &[
                &m.vin,
                &received_at,
                &nonce,
                &verdict.as_str(),
                &reason,
                &m.body,
                &&m.body_sha256[..],
                &length,
            ],
        )
        .await;
    let id: i64 = match inserted {
        Ok(Some(row)) => get(&row, 0, "manifest id")?,
        Ok(None) => {
            return Err(Error::NonceReused {
                vin: m.vin.clone(),
                nonce: nonce.unwrap_or_default().to_owned(),
            })
        }
        Err(e) if unique_violation(&e).is_some() => {
            return Err(Error::NonceReused {
                vin: m.vin.clone(),
                nonce: nonce.unwrap_or_default().to_owned(),
            })
        }
        Err(e) => return Err(super::sql::classify("insert manifest", e)),
    };
    let reports = match &m.verdict {
        ManifestVerdict::Accepted { reports, .. } => reports,
        ManifestVerdict::Refused { keep, .. } => {
            keep_newest_refused(c, &m.vin, *keep).await?;
            return Ok(RecordedManifest { id, resign: false });
        }
    };
    let mut active = super::assignments::list(c, &m.vin, true).await?;
    let mut settled = 0;
    for (serial, report) in reports {
        if !serials.contains(serial.as_str()) {
            return Err(Error::ReportFromUnknownEcu {
                vin: m.vin.clone(),
                serial: serial.to_owned(),
            });
        }
        settled += apply_report(c, m, id, serial, report, &mut active).await?;
    }
    execute(
        c,
        "update vehicle last_seen",
        "UPDATE vehicles SET last_seen = GREATEST(coalesce(last_seen, $2), $2) WHERE vin = $1",
        &[&m.vin, &received_at],
    )
    .await?;
    Ok(RecordedManifest {
        id,
        resign: settled > 0 || queue_is_stale(c, &m.vin, &active).await?,
    })
}

/// Delete all but the newest `keep` refused manifests of `vin`.
async fn keep_newest_refused(c: &impl GenericClient, vin: &str, keep: u32) -> Result<()> {
    let oldest_kept = query_opt(
        c,
        "find the oldest refused manifest kept",
        "SELECT id FROM manifests WHERE vin = $1 AND verdict = 'refused'
         ORDER BY id DESC LIMIT 1 OFFSET $2",
        &[&vin, &i64::from(keep.max(1) - 1)],
    )
    .await?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(());
    };
    let oldest_kept: i64 = get(&oldest_kept, 0, "manifest id")?;
    allow_deletion(c, "refused manifests beyond the per-vehicle count").await?;
    execute(
        c,
        "delete refused manifests",
        "DELETE FROM manifests WHERE vin = $1 AND verdict = 'refused' AND id < $2",
        &[&vin, &oldest_kept],
    )
    .await?;
    Ok(())
}

/// Let this transaction delete manifests (the table's trigger refuses a delete unless the
/// transaction-local setting names why; it ends with the transaction).
async fn allow_deletion(c: &impl GenericClient, why: &str) -> Result<()> {
    query(
        c,
        "allow manifest deletion",
        "SELECT set_config('ferry.manifest_deletion', $1, true)",
        &[&why],
    )
    .await
    .map(|_| ())
}

/// Delete manifests received before `before`, except each ECU's latest accepted report's.
pub(super) async fn prune(c: &impl GenericClient, before: i64) -> Result<u64> {
    allow_deletion(c, "retention").await?;
    execute(
        c,
        "delete manifests",
        "DELETE FROM manifests m WHERE m.received_at < $1
           AND NOT EXISTS (SELECT 1 FROM ecu_reports r WHERE r.manifest_id = m.id)",
        &[&before],
    )
    .await
}

/// Whether `vin`'s stored targets fail to name exactly each ECU's queue head.
async fn queue_is_stale(c: &impl GenericClient, vin: &str, active: &[Assignment]) -> Result<bool> {
    let heads = crate::queue::head_pairs(active);
    if heads.is_empty() {
        let names_an_ecu = query_opt(
            c,
            "look for ECUs named by the served targets",
            "SELECT position('\"ecuIdentifiers\"'::bytea IN body) > 0
             FROM vehicle_metadata WHERE vin = $1 AND role = 'targets'",
            &[&vin],
        )
        .await?;
        let names = match names_an_ecu {
            Some(r) => get::<bool>(&r, 0, "targets")?,
            None => false,
        };
        if !names {
            return Ok(false);
        }
    }
    let served = super::metadata::get(c, vin, MetadataRole::Targets)
        .await?
        .map(|m| m.bytes)
        .unwrap_or_default();
    Ok(crate::queue::served_pairs(&served) != heads)
}

/// The serials of `vin`'s ECUs, with the vehicle's row locked for the rest of the transaction
/// (one query for both); `None` if `vin` is not registered or was removed.
async fn ecu_serials(c: &impl GenericClient, vin: &str) -> Result<Option<HashSet<String>>> {
    let rows = query(
        c,
        "lock the vehicle and read its ECUs",
        "SELECT e.serial FROM vehicles v LEFT JOIN ecus e ON e.vin = v.vin
         WHERE v.vin = $1 AND v.removed_at IS NULL FOR NO KEY UPDATE OF v",
        &[&vin],
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    // A vehicle without ECUs is one row of NULL: registered, with no serial.
    let mut serials = HashSet::new();
    for r in &rows {
        if let Some(serial) = get::<Option<String>>(r, 0, "ECU serial")? {
            serials.insert(serial);
        }
    }
    Ok(Some(serials))
}

async fn apply_report(
    c: &impl GenericClient,
    m: &IncomingManifest,
    manifest_id: i64,
    serial: &str,
    report: &EcuVersionReport,
    active: &mut Vec<Assignment>,
) -> Result<u64> {
    let state = EcuState::from_report(report, m.received_at);
    let length = i64::try_from(state.installed_image.length).map_err(|_| {
        Error::corrupt(
            "ECU report",
            format!("image length {} too large", state.installed_image.length),
        )
    })?;
    let last_install = state
        .last_install
        .as_ref()
        .map(|l| to_json("last_install", l))
        .transpose()?;
    let hashes = to_json("hashes", &state.installed_image.hashes)?;
    let provides = to_json("provides", &state.provides)?;
    let now = super::sql::ms(m.received_at);
    execute(
        c,
        "store ECU report",
        "INSERT INTO ecu_reports (serial, manifest_id, filepath, length, hashes, provides,
                                  attacks_detected, last_install, reported_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (serial) DO UPDATE SET
            manifest_id = excluded.manifest_id, filepath = excluded.filepath,
            length = excluded.length, hashes = excluded.hashes, provides = excluded.provides,
            attacks_detected = excluded.attacks_detected, last_install = excluded.last_install,
            reported_at = excluded.reported_at",
        &[
            &serial,
            &manifest_id,
            &state.installed_image.filepath,
            &length,
            &hashes,
            &provides,
            &state.attacks_detected,
            &last_install,
            &now,
        ],
    )
    .await?;
    let mine: Vec<Active> = active
        .iter()
        .filter(|a| a.ecu_serial == serial)
        .map(Active::from)
        .collect();
    if mine.is_empty() {
        return Ok(0);
    }
    let settled = settle(&state, &mine);
    super::assignments::set_settled(c, &settled, now).await?;
    active.retain(|a| !settled.iter().any(|s| s.id == a.id));
    Ok(settled.len() as u64)
}

pub(super) async fn list(
    c: &impl GenericClient,
    vin: &str,
    limit: u32,
) -> Result<Vec<ManifestEntry>> {
    let rows = query(
        c,
        "list manifests",
        "SELECT id, received_at, nonce, verdict, reason, body, body_length, body_sha256
         FROM manifests WHERE vin = $1 ORDER BY id DESC LIMIT $2",
        &[&vin, &i64::from(limit)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let w = "manifest";
            let length: Option<i64> = get(r, 6, w)?;
            let sha256: Option<Vec<u8>> = get(r, 7, w)?;
            Ok(ManifestEntry {
                id: get(r, 0, w)?,
                vin: vin.to_owned(),
                received_at: from_ms("manifest received_at", get(r, 1, w)?)?,
                nonce: get(r, 2, w)?,
                verdict: parse_verdict(&get::<String>(r, 3, w)?)?,
                reason: get(r, 4, w)?,
                body: get(r, 5, w)?,
                body_length: length.and_then(|l| u64::try_from(l).ok()),
                body_sha256: sha256.map(hex::encode),
            })
        })
        .collect()
}

fn parse_verdict(s: &str) -> Result<Verdict> {
    match s {
        "accepted" => Ok(Verdict::Accepted),
        "refused" => Ok(Verdict::Refused),
        _ => Err(Error::corrupt(
            "manifest verdict",
            format!("unknown verdict {s:?}"),
        )),
    }
}

pub(super) async fn count(
    c: &impl GenericClient,
    vin: &str,
    verdict: Option<Verdict>,
) -> Result<u64> {
    let rows = query(
        c,
        "count manifests",
        "SELECT count(*) FROM manifests WHERE vin = $1 AND ($2::text IS NULL OR verdict = $2)",
        &[&vin, &verdict.map(Verdict::as_str)],
    )
    .await?;
    let n: i64 = get(&rows[0], 0, "manifest count")?;
    Ok(n.max(0) as u64)
}
