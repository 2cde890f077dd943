//! Manifests: the append-only log, and what an accepted manifest changes.

use super::{db, from_ms, is_unique_violation, ms, to_json};
use crate::model::{
    Assignment, EcuState, IncomingManifest, ManifestEntry, ManifestVerdict, MetadataRole,
    RecordedManifest, Verdict,
};
use crate::queue::{settle, Active};
use crate::{Error, Result};
use ferry_core::manifest::EcuVersionReport;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// Runs inside the caller's write transaction: any error rolls everything back.
pub(super) fn record(conn: &Connection, m: &IncomingManifest) -> Result<RecordedManifest> {
    let Some(serials) = ecu_serials(conn, &m.vin)? else {
        return Err(Error::UnknownVehicle { vin: m.vin.clone() });
    };
    let (verdict, nonce, reason) = match &m.verdict {
        ManifestVerdict::Accepted { nonce, .. } => (Verdict::Accepted, Some(nonce.as_str()), ""),
        ManifestVerdict::Refused { nonce, reason, .. } => {
            (Verdict::Refused, nonce.as_deref(), reason.as_str())
        }
    };
    let received_at = ms(m.received_at);
    let length = i64::try_from(m.body_length).unwrap_or(i64::MAX);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO manifests (vin, received_at, nonce, verdict, reason, body,
                 body_sha256, body_length)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut s| {
            s.execute(params![
                m.vin,
                received_at,
                nonce,
                verdict.as_str(),
                reason,
                m.body,
                &m.body_sha256[..],
                length
            ])
        });
    match inserted {
        Ok(_) => {}
        // The only unique index on manifests is the accepted (vin, nonce) one.
        Err(e) if verdict == Verdict::Accepted && is_unique_violation(&e) => {
            return Err(Error::NonceReused {
                vin: m.vin.clone(),
                nonce: nonce.unwrap_or_default().to_owned(),
            })
        }
        Err(e) => return Err(Error::storage("insert manifest", e)),
    }
    let id = conn.last_insert_rowid();
    let reports = match &m.verdict {
        ManifestVerdict::Accepted { reports, .. } => reports,
        ManifestVerdict::Refused { keep, .. } => {
            keep_newest_refused(conn, &m.vin, *keep)?;
            return Ok(RecordedManifest { id, resign: false });
        }
    };
    // The vehicle's active assignments, read once for all its ECUs (most vehicles have none,
    // and the read is then one index probe); what the reports settle leaves this list.
    let mut active = super::assignments::list(conn, &m.vin, true)?;
    let mut settled = 0;
    for (serial, report) in reports {
        if !serials.contains(serial.as_str()) {
            return Err(Error::ReportFromUnknownEcu {
                vin: m.vin.clone(),
                serial: serial.to_owned(),
            });
        }
        settled += apply_report(conn, m, id, serial, report, &mut active)?;
    }
    conn.prepare_cached(
        "UPDATE vehicles SET last_seen = max(coalesce(last_seen, ?2), ?2) WHERE vin = ?1",
    )
    .and_then(|mut s| s.execute(params![m.vin, received_at]))
    .map_err(db("update vehicle last_seen"))?;
    Ok(RecordedManifest {
        id,
        resign: settled > 0 || queue_is_stale(conn, &m.vin, &active)?,
    })
}

/// Delete all but the newest `keep` refused manifests of `vin` (refused manifests are no
/// one's latest report, so nothing refers to them).
fn keep_newest_refused(conn: &Connection, vin: &str, keep: u32) -> Result<()> {
    let oldest_kept: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM manifests WHERE vin = ?1 AND verdict = 'refused'
             ORDER BY id DESC LIMIT 1 OFFSET ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![vin, keep.max(1) - 1], |r| r.get(0))
                .optional()
        })
        .map_err(db("find the oldest refused manifest kept"))?;
    let Some(oldest_kept) = oldest_kept else {
        return Ok(());
    };
    deleting(
        conn,
        "refused manifests beyond the per-vehicle count",
        |conn| {
            conn.prepare_cached(
                "DELETE FROM manifests WHERE vin = ?1 AND verdict = 'refused' AND id < ?2",
            )
            .and_then(|mut s| s.execute(params![vin, oldest_kept]))
            .map(|n| n as u64)
        },
    )
    .map(|_| ())
}

/// Run `delete` with manifest deletion allowed (the table's trigger refuses a delete unless
/// `manifest_deletions` has a row), inside the caller's transaction.
fn deleting(
    conn: &Connection,
    why: &str,
    delete: impl FnOnce(&Connection) -> rusqlite::Result<u64>,
) -> Result<u64> {
    conn.prepare_cached("INSERT INTO manifest_deletions (why) VALUES (?1)")
        .and_then(|mut s| s.execute([why]))
        .map_err(db("allow manifest deletion"))?;
    let deleted = delete(conn).map_err(db("delete manifests"))?;
    conn.prepare_cached("DELETE FROM manifest_deletions")
        .and_then(|mut s| s.execute([]))
        .map_err(db("end manifest deletion"))?;
    Ok(deleted)
}

/// Delete manifests received before `before`, except each ECU's latest accepted report's.
pub(super) fn prune(conn: &Connection, before: i64) -> Result<u64> {
    deleting(conn, "retention", |conn| {
        conn.prepare_cached(
            "DELETE FROM manifests WHERE received_at < ?1
               AND id NOT IN (SELECT manifest_id FROM ecu_reports)",
        )
        .and_then(|mut s| s.execute([before]))
        .map(|n| n as u64)
    })
}

/// Whether `vin`'s stored targets fail to name exactly each ECU's queue head, `active` being
/// its active assignments now. Read in the manifest's own write transaction, on the writer's
/// warm page cache, rather than in a read transaction of its own (whose page cache every
/// commit of the writer discards).
fn queue_is_stale(conn: &Connection, vin: &str, active: &[Assignment]) -> Result<bool> {
    let heads = crate::queue::head_pairs(active);
    if heads.is_empty() {
        // Nothing active, as for most vehicles most of the time: stale only if the served
        // targets name an ECU. SQLite looks for the key in place (no copy of the body, no
        // parse); only a hit is parsed, to be sure.
        let names_an_ecu: Option<bool> = conn
            .prepare_cached(
                "SELECT instr(body, CAST('\"ecuIdentifiers\"' AS BLOB)) > 0
                 FROM vehicle_metadata WHERE vin = ?1 AND role = 'targets'",
            )
            .and_then(|mut s| s.query_row([vin], |r| r.get(0)).optional())
            .map_err(db("look for ECUs named by the served targets"))?;
        if names_an_ecu != Some(true) {
            return Ok(false);
        }
    }
    let served = super::metadata::get(conn, vin, MetadataRole::Targets)?
        .map(|m| m.bytes)
        .unwrap_or_default();
    Ok(crate::queue::served_pairs(&served) != heads)
}

/// The serials of `vin`'s ECUs as this transaction sees them (one query for the vehicle and all
/// its ECUs, instead of one per reporting ECU); `None` if `vin` is not registered.
fn ecu_serials(conn: &Connection, vin: &str) -> Result<Option<HashSet<String>>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.serial FROM vehicles v LEFT JOIN ecus e ON e.vin = v.vin
             WHERE v.vin = ?1 AND v.removed_at IS NULL",
        )
        .map_err(db("look up the vehicle's ECUs"))?;
    let rows = stmt
        .query_map([vin], |r| r.get::<_, Option<String>>(0))
        .map_err(db("look up the vehicle's ECUs"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("look up the vehicle's ECUs"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    // A vehicle without ECUs is one row of NULL: registered, with no serial.
    Ok(Some(rows.into_iter().flatten().collect()))
}

fn apply_report(
    conn: &Connection,
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
    conn.prepare_cached(
        "INSERT INTO ecu_reports (serial, manifest_id, filepath, length, hashes, provides,
                                  attacks_detected, last_install, reported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (serial) DO UPDATE SET
            manifest_id = excluded.manifest_id, filepath = excluded.filepath,
            length = excluded.length, hashes = excluded.hashes, provides = excluded.provides,
            attacks_detected = excluded.attacks_detected, last_install = excluded.last_install,
            reported_at = excluded.reported_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            serial,
            manifest_id,
            state.installed_image.filepath,
            length,
            hashes,
            provides,
            state.attacks_detected,
            last_install,
            ms(m.received_at),
        ])
    })
    .map_err(db("store ECU report"))?;
    update_assignments(conn, serial, &state, ms(m.received_at), active)
}

/// Settle the ECU's active assignments (in `active`, the vehicle's) against its report
/// ([`crate::queue::settle`] says which become installed or failed), and take the settled
/// ones out of `active`; returns how many left the active set.
fn update_assignments(
    conn: &Connection,
    serial: &str,
    state: &EcuState,
    now: i64,
    active: &mut Vec<Assignment>,
) -> Result<u64> {
    let mine: Vec<Active> = active
        .iter()
        .filter(|a| a.ecu_serial == serial)
        .map(Active::from)
        .collect();
    if mine.is_empty() {
        return Ok(0);
    }
    let settled = settle(state, &mine);
    super::assignments::set_settled(conn, &settled, now)?;
    active.retain(|a| !settled.iter().any(|s| s.id == a.id));
    Ok(settled.len() as u64)
}

pub(super) fn list(conn: &Connection, vin: &str, limit: u32) -> Result<Vec<ManifestEntry>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, received_at, nonce, verdict, reason, body, body_length, body_sha256
             FROM manifests WHERE vin = ?1 ORDER BY id DESC LIMIT ?2",
        )
        .map_err(db("list manifests"))?;
    let rows = stmt
        .query_map(params![vin, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<Vec<u8>>>(7)?,
            ))
        })
        .map_err(db("list manifests"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list manifests"))?;
    rows.into_iter()
        .map(|(id, at, nonce, verdict, reason, body, length, sha256)| {
            Ok(ManifestEntry {
                id,
                vin: vin.to_owned(),
                received_at: from_ms("manifest received_at", at)?,
                nonce,
                verdict: parse_verdict(&verdict)?,
                reason,
                body,
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

pub(super) fn count(conn: &Connection, vin: &str, verdict: Option<Verdict>) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM manifests WHERE vin = ?1 AND (?2 IS NULL OR verdict = ?2)",
        )
        .and_then(|mut s| s.query_row(params![vin, verdict.map(Verdict::as_str)], |r| r.get(0)))
        .map_err(db("count manifests"))?;
    Ok(n.max(0) as u64)
}
