//! Signed metadata: the latest targets, snapshot and timestamp of each vehicle, and every
//! version of the (fleet-wide) director root.

use super::{db, from_ms, inventory, ms, version_from_sql, version_to_sql};
use crate::model::{ExpiringMetadata, MetadataRole, StoredMetadata};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn put(
    conn: &Connection,
    vin: &str,
    role: MetadataRole,
    version: u64,
    expires: DateTime<Utc>,
    bytes: &[u8],
) -> Result<()> {
    let sql_version = version_to_sql(&format!("{role} metadata of vehicle {vin}"), version)?;
    if !inventory::exists(conn, vin)? {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        });
    }
    if let Some(stored) = stored_version(conn, vin, role)? {
        if version <= stored {
            return Err(Error::MetadataVersion {
                vin: vin.to_owned(),
                role: role.to_string(),
                stored,
                new: version,
            });
        }
    }
    if role != MetadataRole::Timestamp {
        keep_superseded(conn, vin, role)?;
    }
    conn.prepare_cached(
        "INSERT INTO vehicle_metadata (vin, role, version, expires, body)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (vin, role) DO UPDATE SET
            version = excluded.version, expires = excluded.expires, body = excluded.body",
    )
    .and_then(|mut s| s.execute(params![vin, role.as_str(), sql_version, ms(expires), bytes]))
    .map_err(db("store vehicle metadata"))?;
    Ok(())
}

/// Superseded versions of a vehicle's targets and snapshot kept besides the latest. A vehicle
/// mid-refresh names the version it read moments ago; keeping the last few means only a burst
/// of re-signings within that moment can make it miss one, and then it gets a 404 (a failed
/// fetch, retried next cycle), never bytes that do not match what it verified.
const SUPERSEDED_KEPT: i64 = 2;

/// Move the current `role` metadata of `vin` (about to be replaced) into the history, keeping
/// only the newest [`SUPERSEDED_KEPT`] there.
fn keep_superseded(conn: &Connection, vin: &str, role: MetadataRole) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO vehicle_metadata_history (vin, role, version, body)
         SELECT vin, role, version, body FROM vehicle_metadata WHERE vin = ?1 AND role = ?2",
    )
    .and_then(|mut s| s.execute([vin, role.as_str()]))
    .map_err(db("keep superseded vehicle metadata"))?;
    conn.prepare_cached(
        "DELETE FROM vehicle_metadata_history WHERE vin = ?1 AND role = ?2 AND version NOT IN
            (SELECT version FROM vehicle_metadata_history WHERE vin = ?1 AND role = ?2
             ORDER BY version DESC LIMIT ?3)",
    )
    .and_then(|mut s| s.execute(params![vin, role.as_str(), SUPERSEDED_KEPT]))
    .map_err(db("prune superseded vehicle metadata"))?;
    Ok(())
}

/// Version `version` of `vin`'s `role` metadata: the latest, or one still kept in the history.
pub(super) fn get_version(
    conn: &Connection,
    vin: &str,
    role: MetadataRole,
    version: u64,
) -> Result<Option<Vec<u8>>> {
    let Ok(sql_version) = i64::try_from(version) else {
        return Ok(None);
    };
    conn.prepare_cached(
        "SELECT body FROM vehicle_metadata WHERE vin = ?1 AND role = ?2 AND version = ?3
         UNION ALL
         SELECT body FROM vehicle_metadata_history WHERE vin = ?1 AND role = ?2 AND version = ?3
         LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(params![vin, role.as_str(), sql_version], |r| r.get(0))
            .optional()
    })
    .map_err(db("read a version of vehicle metadata"))
}

fn stored_version(conn: &Connection, vin: &str, role: MetadataRole) -> Result<Option<u64>> {
    conn.prepare_cached("SELECT version FROM vehicle_metadata WHERE vin = ?1 AND role = ?2")
        .and_then(|mut s| {
            s.query_row([vin, role.as_str()], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map_err(db("read vehicle metadata version"))?
        .map(|v| version_from_sql("vehicle metadata version", v))
        .transpose()
}

pub(super) fn get(
    conn: &Connection,
    vin: &str,
    role: MetadataRole,
) -> Result<Option<StoredMetadata>> {
    let row: Option<(i64, i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT version, expires, body FROM vehicle_metadata WHERE vin = ?1 AND role = ?2",
        )
        .and_then(|mut s| {
            s.query_row([vin, role.as_str()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(db("read vehicle metadata"))?;
    row.map(|(version, expires, bytes)| {
        Ok(StoredMetadata {
            version: version_from_sql("vehicle metadata version", version)?,
            expires: from_ms("vehicle metadata expiry", expires)?,
            bytes,
        })
    })
    .transpose()
}

pub(super) fn expiring_before(
    conn: &Connection,
    t: DateTime<Utc>,
) -> Result<Vec<ExpiringMetadata>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT vin, role, version, expires FROM vehicle_metadata
             WHERE expires < ?1 ORDER BY expires, vin, role",
        )
        .map_err(db("list expiring metadata"))?;
    let rows = stmt
        .query_map([ms(t)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db("list expiring metadata"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list expiring metadata"))?;
    rows.into_iter()
        .map(|(vin, role, version, expires)| {
            Ok(ExpiringMetadata {
                vin,
                role: role
                    .parse()
                    .map_err(|e| Error::corrupt("vehicle metadata role", e))?,
                version: version_from_sql("vehicle metadata version", version)?,
                expires: from_ms("vehicle metadata expiry", expires)?,
            })
        })
        .collect()
}

pub(super) fn put_root(conn: &Connection, version: u64, bytes: &[u8]) -> Result<()> {
    let sql_version = version_to_sql("director root", version)?;
    let expected = latest_version(conn)?.map_or(1, |v| v + 1);
    if version != expected {
        return Err(Error::RootVersion {
            new: version,
            expected,
        });
    }
    conn.prepare_cached("INSERT INTO director_roots (version, body) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![sql_version, bytes]))
        .map_err(db("store director root"))?;
    Ok(())
}

fn latest_version(conn: &Connection) -> Result<Option<u64>> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT max(version) FROM director_roots")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db("read latest director root version"))?;
    v.map(|v| version_from_sql("director root version", v))
        .transpose()
}

pub(super) fn get_root(conn: &Connection, version: u64) -> Result<Option<Vec<u8>>> {
    let Ok(v) = i64::try_from(version) else {
        return Ok(None);
    };
    conn.prepare_cached("SELECT body FROM director_roots WHERE version = ?1")
        .and_then(|mut s| s.query_row([v], |r| r.get(0)).optional())
        .map_err(db("read director root"))
}

pub(super) fn latest_root(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT version, body FROM director_roots ORDER BY version DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(db("read latest director root"))?;
    row.map(|(v, body)| Ok((version_from_sql("director root version", v)?, body)))
        .transpose()
}
