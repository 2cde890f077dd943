//! Manifests: the append-only log, and what an accepted manifest changes (the SQLite
//! backend's `manifests.rs`, in PostgreSQL's dialect). Recording runs with the vehicle's row
//! locked, so two Directors settling the same vehicle's assignments take turns; the accepted
//! (vin, nonce) unique index makes a nonce count once across all of them.

use super::sql::{
    execute, from_ms, get, pg, prepare_all, query, query_opt, to_json, unique_violation, Param,
};
use crate::model::{
    Assignment, EcuState, IncomingManifest, ManifestEntry, ManifestVerdict, MetadataRole,
    RecordedManifest, Verdict,
};
use crate::queue::{settle, Active};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use ferry_core::manifest::EcuVersionReport;
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::Row;

/// Runs inside the caller's write transaction: any error rolls everything back.
pub(super) async fn record(
    c: &impl GenericClient,
    m: &IncomingManifest,
) -> Result<RecordedManifest> {
    match &m.verdict {
        ManifestVerdict::Accepted { nonce, reports } => record_accepted(c, m, nonce, reports).await,
        ManifestVerdict::Refused {
            nonce,
            reason,
            keep,
        } => record_refused(c, m, nonce.as_deref(), reason, *keep).await,
    }
}

/// Locks the vehicle's row for the rest of the transaction and reads its ECUs' serials: no
/// row if `$1` is not registered or was removed; one row of NULL for a vehicle without ECUs.
const LOCK_VEHICLE: &str = "SELECT e.serial FROM vehicles v LEFT JOIN ecus e ON e.vin = v.vin
     WHERE v.vin = $1 AND v.removed_at IS NULL FOR NO KEY UPDATE OF v";

/// An accepted manifest and its ECUs' reports, in one statement: the reports reference the
/// manifest's id, and are written only if the manifest is (ON CONFLICT DO NOTHING: a reused
/// nonce inserts nothing, leaves the transaction usable, and returns no row). Only the
/// vehicle's own ECUs are written: a serial that is not one of them is refused by the caller.
const INSERT_ACCEPTED: &str = "WITH m AS (
        INSERT INTO manifests (vin, received_at, nonce, verdict, reason, body, body_sha256,
                               body_length)
        VALUES ($1, $2, $3, 'accepted', '', $4, $5, $6)
        ON CONFLICT (vin, nonce) WHERE verdict = 'accepted' DO NOTHING
        RETURNING id
     ), r AS (
        INSERT INTO ecu_reports (serial, manifest_id, filepath, length, hashes, provides,
                                 attacks_detected, last_install, reported_at)
        SELECT u.serial, m.id, u.filepath, u.length, u.hashes, u.provides, u.attacks,
               u.last_install, $2
        FROM m, UNNEST($7::text[], $8::text[], $9::int8[], $10::text[], $11::text[],
                       $12::text[], $13::text[])
                AS u(serial, filepath, length, hashes, provides, attacks, last_install)
             JOIN ecus e ON e.serial = u.serial AND e.vin = $1
        ON CONFLICT (serial) DO UPDATE SET
           manifest_id = excluded.manifest_id, filepath = excluded.filepath,
           length = excluded.length, hashes = excluded.hashes, provides = excluded.provides,
           attacks_detected = excluded.attacks_detected, last_install = excluded.last_install,
           reported_at = excluded.reported_at
     )
     SELECT id FROM m";

const LAST_SEEN: &str =
    "UPDATE vehicles SET last_seen = GREATEST(coalesce(last_seen, $2), $2) WHERE vin = $1";

/// Whether the served targets name any ECU (no row: nothing served yet). Read instead of
/// the targets themselves, which are needed only when this says yes or a queue has a head.
const TARGETS_NAME_AN_ECU: &str = "SELECT position('\"ecuIdentifiers\"'::bytea IN body) > 0
     FROM vehicle_metadata WHERE vin = $1 AND role = 'targets'";

/// The ECU reports of an accepted manifest as the columns of [`INSERT_ACCEPTED`]'s UNNEST.
#[derive(Default)]
struct ReportColumns {
    serials: Vec<String>,
    filepaths: Vec<String>,
    lengths: Vec<i64>,
    hashes: Vec<String>,
    provides: Vec<String>,
    attacks: Vec<String>,
    last_installs: Vec<Option<String>>,
}

impl ReportColumns {
    fn push(&mut self, serial: &str, state: &EcuState) -> Result<()> {
        let length = i64::try_from(state.installed_image.length).map_err(|_| {
            Error::corrupt(
                "ECU report",
                format!("image length {} too large", state.installed_image.length),
            )
        })?;
        self.serials.push(serial.to_owned());
        self.filepaths.push(state.installed_image.filepath.clone());
        self.lengths.push(length);
        self.hashes
            .push(to_json("hashes", &state.installed_image.hashes)?);
        self.provides.push(to_json("provides", &state.provides)?);
        self.attacks.push(state.attacks_detected.clone());
        self.last_installs.push(
            state
                .last_install
                .as_ref()
                .map(|l| to_json("last_install", l))
                .transpose()?,
        );
        Ok(())
    }
}

/// An accepted manifest: the vehicle locked, the manifest and its reports stored, the
/// vehicle's active assignments and last-seen time read and written, all sent at once (one
/// round trip: PostgreSQL runs them in the order sent, the lock first, so what is read after
/// it is what the previous holder committed). Then, only if there is something to settle or
/// the served targets may be stale, what that needs.
async fn record_accepted(
    c: &impl GenericClient,
    m: &IncomingManifest,
    nonce: &str,
    reports: &BTreeMap<String, EcuVersionReport>,
) -> Result<RecordedManifest> {
    let received_at = super::sql::ms(m.received_at);
    let length = i64::try_from(m.body_length).unwrap_or(i64::MAX);
    let states: Vec<(&str, EcuState)> = reports
        .iter()
        .map(|(serial, report)| {
            (
                serial.as_str(),
                EcuState::from_report(report, m.received_at),
            )
        })
        .collect();
    let mut columns = ReportColumns::default();
    for (serial, state) in &states {
        columns.push(serial, state)?;
    }
    let active_sql = super::assignments::list_sql(true);
    let [lock, insert, active, seen, names] = prepare_all(
        c,
        "prepare manifest recording",
        [
            LOCK_VEHICLE,
            INSERT_ACCEPTED,
            &active_sql,
            LAST_SEEN,
            TARGETS_NAME_AN_ECU,
        ],
    )
    .await?;
    let sha256 = &m.body_sha256[..];
    let by_vin: &[Param<'_>] = &[&m.vin];
    let insert_params: &[Param<'_>] = &[
        &m.vin,
        &received_at,
        &nonce,
        &m.body,
        &sha256,
        &length,
        &columns.serials,
        &columns.filepaths,
        &columns.lengths,
        &columns.hashes,
        &columns.provides,
        &columns.attacks,
        &columns.last_installs,
    ];
    let seen_params: &[Param<'_>] = &[&m.vin, &received_at];
    let (lock, inserted, active, seen, names) = tokio::join!(
        biased;
        c.query(&lock, by_vin),
        c.query_opt(&insert, insert_params),
        c.query(&active, by_vin),
        c.execute(&seen, seen_params),
        c.query_opt(&names, by_vin),
    );
    // The answers in the order sent: the first failure is the cause (the ones after it
    // fail because the transaction is aborted).
    let Some(serials) = serials_of(&lock.map_err(pg("lock the vehicle and read its ECUs"))?)?
    else {
        return Err(Error::UnknownVehicle { vin: m.vin.clone() });
    };
    let id: i64 = match inserted {
        Ok(Some(row)) => get(&row, 0, "manifest id")?,
        Ok(None) => return Err(nonce_reused(m, Some(nonce))),
        Err(e) if unique_violation(&e).is_some() => return Err(nonce_reused(m, Some(nonce))),
        Err(e) => return Err(super::sql::classify("insert manifest", e)),
    };
    if let Some((serial, _)) = states.iter().find(|(s, _)| !serials.contains(*s)) {
        return Err(Error::ReportFromUnknownEcu {
            vin: m.vin.clone(),
            serial: (*serial).to_owned(),
        });
    }
    let mut active = super::assignments::decode_all(&active.map_err(pg("list assignments"))?)?;
    seen.map_err(pg("update vehicle last_seen"))?;
    let names_an_ecu = match names.map_err(pg("look for ECUs named by the served targets"))? {
        Some(r) => get::<bool>(&r, 0, "targets")?,
        None => false,
    };
    let mut settled = 0;
    for (serial, state) in &states {
        settled += settle_ecu(c, serial, state, received_at, &mut active).await?;
    }
    Ok(RecordedManifest {
        id,
        resign: settled > 0 || queue_is_stale(c, &m.vin, &active, names_an_ecu).await?,
    })
}

fn nonce_reused(m: &IncomingManifest, nonce: Option<&str>) -> Error {
    Error::NonceReused {
        vin: m.vin.clone(),
        nonce: nonce.unwrap_or_default().to_owned(),
    }
}

/// A refused manifest: stored (with the vehicle locked, as every write), and the vehicle's
/// oldest refused ones beyond `keep` deleted. Nothing else changes.
async fn record_refused(
    c: &impl GenericClient,
    m: &IncomingManifest,
    nonce: Option<&str>,
    reason: &str,
    keep: u32,
) -> Result<RecordedManifest> {
    if serials_of(
        &query(
            c,
            "lock the vehicle and read its ECUs",
            LOCK_VEHICLE,
            &[&m.vin],
        )
        .await?,
    )?
    .is_none()
    {
        return Err(Error::UnknownVehicle { vin: m.vin.clone() });
    }
    let received_at = super::sql::ms(m.received_at);
    let length = i64::try_from(m.body_length).unwrap_or(i64::MAX);
    // ON CONFLICT as for an accepted one, although the index covers accepted rows only.
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
                &Verdict::Refused.as_str(),
                &reason,
                &m.body,
                &&m.body_sha256[..],
                &length,
            ],
        )
        .await;
    let id: i64 = match inserted {
        Ok(Some(row)) => get(&row, 0, "manifest id")?,
        Ok(None) => return Err(nonce_reused(m, nonce)),
        Err(e) if unique_violation(&e).is_some() => return Err(nonce_reused(m, nonce)),
        Err(e) => return Err(super::sql::classify("insert manifest", e)),
    };
    keep_newest_refused(c, &m.vin, keep).await?;
    Ok(RecordedManifest { id, resign: false })
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

/// Whether `vin`'s stored targets fail to name exactly each ECU's queue head (`names_an_ecu`:
/// whether they name any ECU, read with the lock).
async fn queue_is_stale(
    c: &impl GenericClient,
    vin: &str,
    active: &[Assignment],
    names_an_ecu: bool,
) -> Result<bool> {
    let heads = crate::queue::head_pairs(active);
    if heads.is_empty() && !names_an_ecu {
        return Ok(false);
    }
    let served = super::metadata::get(c, vin, MetadataRole::Targets)
        .await?
        .map(|m| m.bytes)
        .unwrap_or_default();
    Ok(crate::queue::served_pairs(&served) != heads)
}

/// The serials from [`LOCK_VEHICLE`]'s rows; `None` if the vehicle is not registered.
fn serials_of(rows: &[Row]) -> Result<Option<HashSet<String>>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let mut serials = HashSet::new();
    for r in rows {
        if let Some(serial) = get::<Option<String>>(r, 0, "ECU serial")? {
            serials.insert(serial);
        }
    }
    Ok(Some(serials))
}

/// Settle `serial`'s active assignments against its reported state; how many settled.
async fn settle_ecu(
    c: &impl GenericClient,
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
