//! Gateway relays (issue #20): a name, the SHA-256 of the relay's token (never the token) and
//! of its client certificate, if it has one.

use super::{db, from_ms, is_unique_violation};
use crate::model::Relay;
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn add(
    conn: &Connection,
    name: &str,
    hash: &[u8; 32],
    cert_sha256: Option<&[u8; 32]>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO relays (name, secret_sha256, created_at, cert_sha256) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![name, &hash[..], now, cert_sha256.map(|c| &c[..])]))
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::RelayExists {
                name: name.to_owned(),
            }
        } else {
            Error::storage("register relay", e)
        }
    })?;
    Ok(())
}

/// The stored SHA-256 of the unrevoked relay `name`'s token secret (its export MAC key).
pub(super) fn secret_hash(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT secret_sha256 FROM relays WHERE name = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(db("look up relay"))
}

/// Whether `secret` is the token of the unrevoked relay `name`, compared in constant time.
pub(super) fn verify(conn: &Connection, name: &str, secret: &str) -> Result<bool> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT secret_sha256 FROM relays WHERE name = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(db("look up relay"))?;
    let presented = crate::secret::hash(secret);
    Ok(stored.is_some_and(|h| crate::secret::ct_eq(&h, &presented)))
}

/// Whether `sha256` is the client certificate registered for the unrevoked relay `name`.
pub(super) fn verify_cert(conn: &Connection, name: &str, sha256: &[u8; 32]) -> Result<bool> {
    let stored: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT cert_sha256 FROM relays WHERE name = ?1 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
        .map_err(db("look up relay"))?;
    Ok(stored
        .flatten()
        .is_some_and(|h| crate::secret::ct_eq(&h, sha256)))
}

pub(super) fn list(conn: &Connection) -> Result<Vec<Relay>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, created_at, revoked_at, cert_sha256 FROM relays ORDER BY name",
        )
        .map_err(db("list relays"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
            ))
        })
        .map_err(db("list relays"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list relays"))?;
    rows.into_iter()
        .map(|(name, created, revoked, cert)| {
            Ok(Relay {
                name,
                created_at: from_ms("relay created_at", created)?,
                revoked_at: revoked
                    .map(|t| from_ms("relay revoked_at", t))
                    .transpose()?,
                cert_sha256: cert.map(hex::encode),
            })
        })
        .collect()
}

pub(super) fn revoke(conn: &Connection, name: &str, now: i64) -> Result<()> {
    let n = conn
        .prepare_cached("UPDATE relays SET revoked_at = coalesce(revoked_at, ?2) WHERE name = ?1")
        .and_then(|mut s| s.execute(params![name, now]))
        .map_err(db("revoke relay"))?;
    if n == 0 {
        return Err(Error::UnknownRelay {
            name: name.to_owned(),
        });
    }
    Ok(())
}

pub(super) fn record_vehicle(conn: &Connection, vin: &str, relay: &str, at: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO relay_vehicles (vin, relay, seen_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (vin) DO UPDATE SET relay = ?2, seen_at = max(seen_at, ?3)",
    )
    .and_then(|mut s| s.execute(params![vin, relay, at]))
    .map_err(db("record a relay's vehicle"))?;
    Ok(())
}

/// The vehicles whose last relayed manifest came through `name`, unless a manifest reached
/// the Director later (their `last_seen` is past it).
pub(super) fn vehicles(conn: &Connection, name: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.vin FROM relay_vehicles r JOIN vehicles v ON v.vin = r.vin
             WHERE r.relay = ?1 AND r.seen_at >= coalesce(v.last_seen, 0) ORDER BY r.vin",
        )
        .map_err(db("list a relay's vehicles"))?;
    let rows = stmt
        .query_map(params![name], |r| r.get::<_, String>(0))
        .map_err(db("list a relay's vehicles"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list a relay's vehicles"));
    rows
}
