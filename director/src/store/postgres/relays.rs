//! Gateway relays (the SQLite backend's `relays.rs`, in PostgreSQL's dialect): a name, the
//! SHA-256 of the relay's token (never the token) and of its client certificate, if any.

use super::sql::{execute, from_ms, get, pg, query, query_opt, unique_violation};
use crate::model::Relay;
use crate::{Error, Result};
use deadpool_postgres::GenericClient;

pub(super) async fn add(
    c: &impl GenericClient,
    name: &str,
    hash: &[u8; 32],
    cert_sha256: Option<&[u8; 32]>,
    now: i64,
) -> Result<()> {
    let stmt = c
        .prepare_cached(
            "INSERT INTO relays (name, secret_sha256, created_at, cert_sha256) VALUES ($1, $2, $3, $4)",
        )
        .await
        .map_err(pg("register relay"))?;
    let cert = cert_sha256.map(|c| &c[..]);
    match c.execute(&stmt, &[&name, &&hash[..], &now, &cert]).await {
        Ok(_) => Ok(()),
        Err(e) if unique_violation(&e).is_some() => Err(Error::RelayExists {
            name: name.to_owned(),
        }),
        Err(e) => Err(pg("register relay")(e)),
    }
}

/// The stored SHA-256 of the unrevoked relay `name`'s token secret (its export MAC key).
pub(super) async fn secret_hash(c: &impl GenericClient, name: &str) -> Result<Option<Vec<u8>>> {
    let row = query_opt(
        c,
        "look up relay",
        "SELECT secret_sha256 FROM relays WHERE name = $1 AND revoked_at IS NULL",
        &[&name],
    )
    .await?;
    row.map(|r| get::<Vec<u8>>(&r, 0, "relay token hash"))
        .transpose()
}

/// Whether `secret` is the token of the unrevoked relay `name`, compared in constant time.
pub(super) async fn verify(c: &impl GenericClient, name: &str, secret: &str) -> Result<bool> {
    let row = query_opt(
        c,
        "look up relay",
        "SELECT secret_sha256 FROM relays WHERE name = $1 AND revoked_at IS NULL",
        &[&name],
    )
    .await?;
    let presented = crate::secret::hash(secret);
    match row {
        None => Ok(false),
        Some(row) => {
            let stored: Vec<u8> = get(&row, 0, "relay token hash")?;
            Ok(crate::secret::ct_eq(&stored, &presented))
        }
    }
}

/// Whether `sha256` is the client certificate registered for the unrevoked relay `name`.
pub(super) async fn verify_cert(
    c: &impl GenericClient,
    name: &str,
    sha256: &[u8; 32],
) -> Result<bool> {
    let row = query_opt(
        c,
        "look up relay",
        "SELECT cert_sha256 FROM relays WHERE name = $1 AND revoked_at IS NULL",
        &[&name],
    )
    .await?;
    match row {
        None => Ok(false),
        Some(row) => {
            let stored: Option<Vec<u8>> = get(&row, 0, "relay certificate hash")?;
            Ok(stored.is_some_and(|h| crate::secret::ct_eq(&h, sha256)))
        }
    }
}

pub(super) async fn list(c: &impl GenericClient) -> Result<Vec<Relay>> {
    let rows = query(
        c,
        "list relays",
        "SELECT name, created_at, revoked_at, cert_sha256 FROM relays ORDER BY name",
        &[],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let revoked: Option<i64> = get(r, 2, "relay revoked_at")?;
            let cert: Option<Vec<u8>> = get(r, 3, "relay certificate hash")?;
            Ok(Relay {
                name: get(r, 0, "relay name")?,
                created_at: from_ms("relay created_at", get(r, 1, "relay created_at")?)?,
                revoked_at: revoked
                    .map(|t| from_ms("relay revoked_at", t))
                    .transpose()?,
                cert_sha256: cert.map(hex::encode),
            })
        })
        .collect()
}

pub(super) async fn revoke(c: &impl GenericClient, name: &str, now: i64) -> Result<()> {
    let n = execute(
        c,
        "revoke relay",
        "UPDATE relays SET revoked_at = coalesce(revoked_at, $2) WHERE name = $1",
        &[&name, &now],
    )
    .await?;
    if n == 0 {
        return Err(Error::UnknownRelay {
            name: name.to_owned(),
        });
    }
    Ok(())
}

pub(super) async fn record_vehicle(
    c: &impl GenericClient,
    vin: &str,
    relay: &str,
    at: i64,
) -> Result<()> {
    execute(
        c,
        "record a relay's vehicle",
        "INSERT INTO relay_vehicles (vin, relay, seen_at) VALUES ($1, $2, $3)
         ON CONFLICT (vin) DO UPDATE SET relay = $2,
             seen_at = GREATEST(relay_vehicles.seen_at, $3)",
        &[&vin, &relay, &at],
    )
    .await?;
    Ok(())
}

/// The vehicles whose last relayed manifest came through `name`, unless a manifest reached
/// the Director later (their `last_seen` is past it).
pub(super) async fn vehicles(c: &impl GenericClient, name: &str) -> Result<Vec<String>> {
    let rows = query(
        c,
        "list a relay's vehicles",
        "SELECT r.vin FROM relay_vehicles r JOIN vehicles v ON v.vin = r.vin
         WHERE r.relay = $1 AND r.seen_at >= coalesce(v.last_seen, 0) ORDER BY r.vin",
        &[&name],
    )
    .await?;
    rows.iter().map(|r| get(r, 0, "relay vehicle")).collect()
}
