//! PURE-2 offline-update bundles: the signed offline-update targets of each bundle and the
//! offline-update snapshots that list them.

use super::{db, from_ms, is_unique_violation, version_from_sql, version_to_sql};
use crate::model::{OfflineBundle, OfflineReceipt};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Store a new version of bundle `bundle.name` and the snapshot `snapshot` that lists it, in
/// the caller's transaction. The snapshot must be the next version: two signings racing for
/// the same version leave one of them refused, not a snapshot replaced.
pub(super) fn put(conn: &Connection, bundle: &OfflineBundle, snapshot: (u64, &[u8])) -> Result<()> {
    let previous = get(conn, &bundle.name)?.map_or(0, |b| b.version);
    if bundle.version != previous + 1 {
        return Err(Error::OfflineVersion {
            what: format!("offline-update targets {}", bundle.name),
            new: bundle.version,
            expected: previous + 1,
        });
    }
    let version = version_to_sql("offline-update targets", bundle.version)?;
    conn.prepare_cached(
        "INSERT INTO offline_bundles (name, version, expires, body, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)
         ON CONFLICT (name) DO UPDATE SET version = ?2, expires = ?3, body = ?4,
             created_at = ?5, revoked_at = NULL",
    )
    .and_then(|mut s| {
        s.execute(params![
            bundle.name,
            version,
            bundle.expires.timestamp_millis(),
            bundle.body,
            bundle.created_at.timestamp_millis(),
        ])
    })
    .map_err(db("store offline bundle"))?;
    put_snapshot(conn, snapshot)
}

/// Mark `name` revoked and store the snapshot that no longer lists it.
pub(super) fn revoke(
    conn: &Connection,
    name: &str,
    snapshot: (u64, &[u8]),
    now: i64,
) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE offline_bundles SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![name, now]))
        .map_err(db("revoke offline bundle"))?;
    if changed != 1 {
        return Err(Error::NoSuchBundle {
            name: name.to_owned(),
        });
    }
    put_snapshot(conn, snapshot)
}

fn put_snapshot(conn: &Connection, (version, body): (u64, &[u8])) -> Result<()> {
    let expected = latest_snapshot(conn)?.map_or(1, |(v, _)| v + 1);
    if version != expected {
        return Err(Error::OfflineVersion {
            what: "offline-update snapshot".into(),
            new: version,
            expected,
        });
    }
    let sql_version = version_to_sql("offline-update snapshot", version)?;
    conn.prepare_cached("INSERT INTO offline_snapshots (version, body) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![sql_version, body]))
        .map_err(db("store offline-update snapshot"))?;
    Ok(())
}

const COLUMNS: &str = "name, version, expires, body, created_at, revoked_at";

/// name, version, expires, body, created_at, revoked_at as stored.
type Row = (String, i64, i64, Vec<u8>, i64, Option<i64>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn bundle((name, version, expires, body, created_at, revoked_at): Row) -> Result<OfflineBundle> {
    Ok(OfflineBundle {
        version: version_from_sql("offline bundle version", version)?,
        expires: from_ms("offline bundle expiry", expires)?,
        created_at: from_ms("offline bundle creation", created_at)?,
        revoked_at: revoked_at
            .map(|t| from_ms("offline bundle revocation", t))
            .transpose()?,
        name,
        body,
    })
}

pub(super) fn get(conn: &Connection, name: &str) -> Result<Option<OfflineBundle>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM offline_bundles WHERE name = ?1"
    ))
    .and_then(|mut s| s.query_row([name], row).optional())
    .map_err(db("read offline bundle"))?
    .map(bundle)
    .transpose()
}

pub(super) fn list(conn: &Connection) -> Result<Vec<OfflineBundle>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM offline_bundles ORDER BY name"
        ))
        .map_err(db("list offline bundles"))?;
    let rows = stmt
        .query_map([], row)
        .map_err(db("list offline bundles"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list offline bundles"))?;
    rows.into_iter().map(bundle).collect()
}

pub(super) fn latest_snapshot(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT version, body FROM offline_snapshots ORDER BY version DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db("read offline-update snapshot"))?;
    row.map(|(v, b)| Ok((version_from_sql("offline-update snapshot version", v)?, b)))
        .transpose()
}

/// Record a verified receipt; the same signed content twice is refused, however it was
/// re-encoded (`signed_sha256` is the digest of its canonical signed part).
pub(super) fn record_receipt(
    conn: &Connection,
    receipt: &OfflineReceipt,
    body: &[u8],
    signed_sha256: &[u8; 32],
) -> Result<i64> {
    let outcome = super::to_json("receipt outcome", &receipt.outcome)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO offline_receipts (vin, bundle, result, outcome, received_at, body,
                 signed_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                receipt.vin,
                receipt.bundle,
                receipt.result,
                outcome,
                receipt.received_at.timestamp_millis(),
                body,
                &signed_sha256[..]
            ])
        });
    match inserted {
        Ok(_) => Ok(conn.last_insert_rowid()),
        Err(e) if is_unique_violation(&e) => Err(Error::ReceiptRecorded {
            sha256: hex::encode(signed_sha256),
        }),
        Err(e) => Err(Error::storage("record offline receipt", e)),
    }
}

pub(super) fn receipts(conn: &Connection, vin: &str) -> Result<Vec<OfflineReceipt>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, vin, bundle, result, outcome, received_at FROM offline_receipts
             WHERE vin = ?1 ORDER BY id",
        )
        .map_err(db("list offline receipts"))?;
    let rows = stmt
        .query_map([vin], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(db("list offline receipts"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list offline receipts"))?;
    rows.into_iter()
        .map(|(id, vin, bundle, result, outcome, at)| {
            Ok(OfflineReceipt {
                id,
                vin,
                bundle,
                result,
                outcome: super::from_json("receipt outcome", &outcome)?,
                received_at: from_ms("receipt time", at)?,
            })
        })
        .collect()
}
