//! Admin API tokens (the SQLite backend's `admin.rs`, in PostgreSQL's dialect).

use super::sql::{execute, from_ms, get, query, query_opt};
use crate::model::{AdminToken, Scope};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;

pub(super) async fn create(
    c: &impl GenericClient,
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
    let rows = query(
        c,
        "insert admin token",
        "INSERT INTO admin_tokens (name, scope, secret_sha256, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[&name, &scope.as_str(), &&hash[..], &now, &expires_at],
    )
    .await?;
    get(&rows[0], 0, "admin token id")
}

/// Looked up by the hash of the presented secret, compared again in constant time (as in the
/// SQLite backend).
pub(super) async fn check(
    c: &impl GenericClient,
    presented: &[u8; 32],
    now: i64,
) -> Result<Option<Scope>> {
    let row = query_opt(
        c,
        "look up admin token",
        "SELECT secret_sha256, scope FROM admin_tokens
         WHERE secret_sha256 = $1 AND revoked_at IS NULL
           AND (expires_at IS NULL OR expires_at > $2)",
        &[&&presented[..], &now],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let stored: Vec<u8> = get(&row, 0, "admin token")?;
    if !crate::secret::ct_eq(&stored, presented) {
        return Ok(None);
    }
    get::<String>(&row, 1, "admin token")?
        .parse()
        .map(Some)
        .map_err(|e| Error::corrupt("admin token scope", e))
}

pub(super) async fn revoke(c: &impl GenericClient, id: i64, now: i64) -> Result<()> {
    let n = execute(
        c,
        "revoke admin token",
        "UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
        &[&id, &now],
    )
    .await?;
    if n == 0 {
        return Err(Error::UnknownAdminToken { id });
    }
    Ok(())
}

pub(super) async fn list(c: &impl GenericClient) -> Result<Vec<AdminToken>> {
    let rows = query(
        c,
        "list admin tokens",
        "SELECT id, name, scope, created_at, revoked_at, expires_at FROM admin_tokens
         ORDER BY id",
        &[],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let w = "admin token";
            let revoked: Option<i64> = get(r, 4, w)?;
            let expires: Option<i64> = get(r, 5, w)?;
            Ok(AdminToken {
                id: get(r, 0, w)?,
                name: get(r, 1, w)?,
                scope: get::<String>(r, 2, w)?
                    .parse()
                    .map_err(|e| Error::corrupt("admin token scope", e))?,
                created_at: from_ms("admin token created_at", get(r, 3, w)?)?,
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
