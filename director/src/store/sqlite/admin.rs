//! Admin API tokens: a name, a scope, and the SHA-256 of the secret (never the secret).

use super::{db, from_ms};
use crate::model::{AdminToken, Scope};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn create(
    conn: &Connection,
    name: &str,
    scope: Scope,
    hash: &[u8; 32],
    now: i64,
    expires_at: Option<i64>,
) -> Result<i64> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(Error::InvalidTokenName {
            name: name.to_owned(),
            reason:
                "is blank or has control characters; expected a label such as \"ci\" or \"alice\"",
        });
    }
    if let Some(at) = expires_at.filter(|at| *at <= now) {
        let text = |t: i64| from_ms("time", t).map_or_else(|_| t.to_string(), |t| t.to_rfc3339());
        return Err(Error::TokenExpiry {
            expires_at: text(at),
            now: text(now),
        });
    }
    conn.prepare_cached(
        "INSERT INTO admin_tokens (name, scope, secret_sha256, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![name, scope.as_str(), &hash[..], now, expires_at]))
    .map_err(db("insert admin token"))?;
    Ok(conn.last_insert_rowid())
}

/// Looked up by the hash of the presented secret: an attacker timing the index lookup learns
/// about SHA-256 outputs of their own guesses, not about the stored secret. The stored hash is
/// compared again in constant time all the same. A revoked token, or one expired at `now`, is
/// no token.
pub(super) fn check(conn: &Connection, presented: &[u8; 32], now: i64) -> Result<Option<Scope>> {
    let row: Option<(Vec<u8>, String)> = conn
        .prepare_cached(
            "SELECT secret_sha256, scope FROM admin_tokens
             WHERE secret_sha256 = ?1 AND revoked_at IS NULL
               AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .and_then(|mut s| {
            s.query_row(params![&presented[..], now], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db("look up admin token"))?;
    match row {
        Some((stored, scope)) if crate::secret::ct_eq(&stored, presented) => Ok(Some(
            scope
                .parse()
                .map_err(|e| Error::corrupt("admin token scope", e))?,
        )),
        _ => Ok(None),
    }
}

pub(super) fn revoke(conn: &Connection, id: i64, now: i64) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, now]))
        .map_err(db("revoke admin token"))?;
    if n == 0 {
        return Err(Error::UnknownAdminToken { id });
    }
    Ok(())
}

pub(super) fn list(conn: &Connection) -> Result<Vec<AdminToken>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, scope, created_at, revoked_at, expires_at FROM admin_tokens
             ORDER BY id",
        )
        .map_err(db("list admin tokens"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .map_err(db("list admin tokens"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list admin tokens"))?;
    rows.into_iter()
        .map(|(id, name, scope, created, revoked, expires)| {
            Ok(AdminToken {
                id,
                name,
                scope: scope
                    .parse()
                    .map_err(|e| Error::corrupt("admin token scope", e))?,
                created_at: from_ms("admin token created_at", created)?,
                revoked_at: revoked
                    .map(|t| from_ms("admin token revoked_at", t))
                    .transpose()?,
                expires_at: expires
                    .map(|t| from_ms("admin token expires_at", t))
                    .transpose()?,
            })
        })
        .collect()
}
