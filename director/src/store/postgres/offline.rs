//! PURE-2 offline-update bundles and receipts (the SQLite backend's `offline.rs`, in
//! PostgreSQL's dialect). Snapshot versions are the primary key: two Directors signing the
//! same next version leave one refused, never a snapshot replaced.

use super::sql::{
    execute, from_json, from_ms, get, pg, query, query_opt, to_json, unique_violation,
    version_from_sql, version_to_sql,
};
use crate::model::{OfflineBundle, OfflineReceipt};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

pub(super) async fn put(
    c: &impl GenericClient,
    bundle: &OfflineBundle,
    snapshot: (u64, &[u8]),
) -> Result<()> {
    let previous = get_bundle(c, &bundle.name).await?.map_or(0, |b| b.version);
    if bundle.version != previous + 1 {
        return Err(Error::OfflineVersion {
            what: format!("offline-update targets {}", bundle.name),
            new: bundle.version,
            expected: previous + 1,
        });
    }
    let version = version_to_sql("offline-update targets", bundle.version)?;
    execute(
        c,
        "store offline bundle",
        "INSERT INTO offline_bundles (name, version, expires, body, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, NULL)
         ON CONFLICT (name) DO UPDATE SET version = $2, expires = $3, body = $4,
             created_at = $5, revoked_at = NULL",
        &[
            &bundle.name,
            &version,
            &bundle.expires.timestamp_millis(),
            &bundle.body,
            &bundle.created_at.timestamp_millis(),
        ],
    )
    .await?;
    put_snapshot(c, snapshot).await
}

pub(super) async fn revoke(
    c: &impl GenericClient,
    name: &str,
    snapshot: (u64, &[u8]),
    now: i64,
) -> Result<()> {
    let changed = execute(
        c,
        "revoke offline bundle",
        "UPDATE offline_bundles SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
        &[&name, &now],
    )
    .await?;
    if changed != 1 {
        return Err(Error::NoSuchBundle {
            name: name.to_owned(),
        });
    }
    put_snapshot(c, snapshot).await
}

async fn put_snapshot(c: &impl GenericClient, (version, body): (u64, &[u8])) -> Result<()> {
    let expected = latest_snapshot(c).await?.map_or(1, |(v, _)| v + 1);
    let refused = |expected| Error::OfflineVersion {
        what: "offline-update snapshot".into(),
        new: version,
        expected,
    };
    if version != expected {
        return Err(refused(expected));
    }
    let sql_version = version_to_sql("offline-update snapshot", version)?;
    let changed = execute(
        c,
        "store offline-update snapshot",
        "INSERT INTO offline_snapshots (version, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&sql_version, &body],
    )
    .await?;
    if changed == 0 {
        return Err(refused(version + 1));
    }
    Ok(())
}

const COLUMNS: &str = "name, version, expires, body, created_at, revoked_at";

fn bundle(r: &Row) -> Result<OfflineBundle> {
    let w = "offline bundle";
    let revoked_at: Option<i64> = get(r, 5, w)?;
    Ok(OfflineBundle {
        name: get(r, 0, w)?,
        version: version_from_sql("offline bundle version", get(r, 1, w)?)?,
        expires: from_ms("offline bundle expiry", get(r, 2, w)?)?,
        body: get(r, 3, w)?,
        created_at: from_ms("offline bundle creation", get(r, 4, w)?)?,
        revoked_at: revoked_at
            .map(|t| from_ms("offline bundle revocation", t))
            .transpose()?,
    })
}

pub(super) async fn get_bundle(
    c: &impl GenericClient,
    name: &str,
) -> Result<Option<OfflineBundle>> {
    query_opt(
        c,
        "read offline bundle",
        &format!("SELECT {COLUMNS} FROM offline_bundles WHERE name = $1"),
        &[&name],
    )
    .await?
    .map(|r| bundle(&r))
    .transpose()
}

pub(super) async fn list(c: &impl GenericClient) -> Result<Vec<OfflineBundle>> {
    query(
        c,
        "list offline bundles",
        &format!("SELECT {COLUMNS} FROM offline_bundles ORDER BY name"),
        &[],
    )
    .await?
    .iter()
    .map(bundle)
    .collect()
}

pub(super) async fn latest_snapshot(c: &impl GenericClient) -> Result<Option<(u64, Vec<u8>)>> {
    query_opt(
        c,
        "read offline-update snapshot",
        "SELECT version, body FROM offline_snapshots ORDER BY version DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|r| {
        Ok((
            version_from_sql("offline-update snapshot version", get(&r, 0, "snapshot")?)?,
            get(&r, 1, "snapshot")?,
        ))
    })
    .transpose()
}

pub(super) async fn record_receipt(
    c: &impl GenericClient,
    receipt: &OfflineReceipt,
    body: &[u8],
    signed_sha256: &[u8; 32],
) -> Result<i64> {
    let outcome = to_json("receipt outcome", &receipt.outcome)?;
    let stmt = c
        .prepare_cached(
            "INSERT INTO offline_receipts (vin, bundle, result, outcome, received_at, body,
                 signed_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (signed_sha256) DO NOTHING RETURNING id",
        )
        .await
        .map_err(pg("record offline receipt"))?;
    let inserted = c
        .query_opt(
            &stmt,
            &[
                &receipt.vin,
                &receipt.bundle,
                &receipt.result,
                &outcome,
                &receipt.received_at.timestamp_millis(),
                &body,
                &&signed_sha256[..],
            ],
        )
        .await;
    let recorded = || Error::ReceiptRecorded {
        sha256: hex::encode(signed_sha256),
    };
    match inserted {
        Ok(Some(r)) => get(&r, 0, "receipt id"),
        Ok(None) => Err(recorded()),
        Err(e) if unique_violation(&e).is_some() => Err(recorded()),
        Err(e) => Err(super::sql::classify("record offline receipt", e)),
    }
}

pub(super) async fn receipts(c: &impl GenericClient, vin: &str) -> Result<Vec<OfflineReceipt>> {
    let rows = query(
        c,
        "list offline receipts",
        "SELECT id, vin, bundle, result, outcome, received_at FROM offline_receipts
         WHERE vin = $1 ORDER BY id",
        &[&vin],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let w = "offline receipt";
            Ok(OfflineReceipt {
                id: get(r, 0, w)?,
                vin: get(r, 1, w)?,
                bundle: get(r, 2, w)?,
                result: get(r, 3, w)?,
                outcome: from_json("receipt outcome", &get::<String>(r, 4, w)?)?,
                received_at: from_ms("receipt time", get(r, 5, w)?)?,
            })
        })
        .collect()
}
