//! Signed metadata (the SQLite backend's `metadata.rs`, in PostgreSQL's dialect). A stored
//! version is read `FOR UPDATE` before it is replaced and the upsert only ever raises it, so
//! two Directors can never both store the same version of a vehicle's role: the second one
//! fails its version check.

use super::sql::{
    execute, from_ms, get as col, ms, query, query_opt, version_from_sql, version_to_sql,
};
use crate::model::{ExpiringMetadata, MetadataRole, StoredMetadata};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

pub(super) async fn put(
    c: &impl GenericClient,
    vin: &str,
    role: MetadataRole,
    version: u64,
    expires: DateTime<Utc>,
    bytes: &[u8],
) -> Result<()> {
    let sql_version = version_to_sql(&format!("{role} metadata of vehicle {vin}"), version)?;
    if !super::inventory::exists(c, vin).await? {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        });
    }
    let version_error = |stored| Error::MetadataVersion {
        vin: vin.to_owned(),
        role: role.to_string(),
        stored,
        new: version,
    };
    let stored = query_opt(
        c,
        "read vehicle metadata version",
        "SELECT version FROM vehicle_metadata WHERE vin = $1 AND role = $2 FOR UPDATE",
        &[&vin, &role.as_str()],
    )
    .await?
    .map(|r| version_from_sql("vehicle metadata version", col(&r, 0, "version")?))
    .transpose()?;
    if let Some(stored) = stored {
        if version <= stored {
            return Err(version_error(stored));
        }
    }
    if role != MetadataRole::Timestamp {
        keep_superseded(c, vin, role).await?;
    }
    // A first version inserted by another Director since the read above: no row changes, and
    // the version check fails as above.
    let changed = execute(
        c,
        "store vehicle metadata",
        "INSERT INTO vehicle_metadata (vin, role, version, expires, body)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (vin, role) DO UPDATE SET
            version = excluded.version, expires = excluded.expires, body = excluded.body
         WHERE vehicle_metadata.version < excluded.version",
        &[&vin, &role.as_str(), &sql_version, &ms(expires), &bytes],
    )
    .await?;
    if changed == 0 {
        let stored = get(c, vin, role).await?.map_or(version, |m| m.version);
        return Err(version_error(stored));
    }
    Ok(())
}

/// Superseded versions kept besides the latest (as in the SQLite backend).
const SUPERSEDED_KEPT: i64 = 2;

async fn keep_superseded(c: &impl GenericClient, vin: &str, role: MetadataRole) -> Result<()> {
    execute(
        c,
        "keep superseded vehicle metadata",
        "INSERT INTO vehicle_metadata_history (vin, role, version, body)
         SELECT vin, role, version, body FROM vehicle_metadata WHERE vin = $1 AND role = $2
         ON CONFLICT (vin, role, version) DO UPDATE SET body = excluded.body",
        &[&vin, &role.as_str()],
    )
    .await?;
    execute(
        c,
        "prune superseded vehicle metadata",
        "DELETE FROM vehicle_metadata_history WHERE vin = $1 AND role = $2 AND version NOT IN
            (SELECT version FROM vehicle_metadata_history WHERE vin = $1 AND role = $2
             ORDER BY version DESC LIMIT $3)",
        &[&vin, &role.as_str(), &SUPERSEDED_KEPT],
    )
    .await?;
    Ok(())
}

pub(super) async fn get_version(
    c: &impl GenericClient,
    vin: &str,
    role: MetadataRole,
    version: u64,
) -> Result<Option<Vec<u8>>> {
    let Ok(sql_version) = i64::try_from(version) else {
        return Ok(None);
    };
    query_opt(
        c,
        "read a version of vehicle metadata",
        "(SELECT body FROM vehicle_metadata WHERE vin = $1 AND role = $2 AND version = $3
          UNION ALL
          SELECT body FROM vehicle_metadata_history WHERE vin = $1 AND role = $2 AND version = $3)
         LIMIT 1",
        &[&vin, &role.as_str(), &sql_version],
    )
    .await?
    .map(|r| col(&r, 0, "vehicle metadata"))
    .transpose()
}

pub(super) async fn get(
    c: &impl GenericClient,
    vin: &str,
    role: MetadataRole,
) -> Result<Option<StoredMetadata>> {
    let row = query_opt(
        c,
        "read vehicle metadata",
        "SELECT version, expires, body FROM vehicle_metadata WHERE vin = $1 AND role = $2",
        &[&vin, &role.as_str()],
    )
    .await?;
    row.map(|r| {
        let w = "vehicle metadata";
        Ok(StoredMetadata {
            version: version_from_sql("vehicle metadata version", col(&r, 0, w)?)?,
            expires: from_ms("vehicle metadata expiry", col(&r, 1, w)?)?,
            bytes: col(&r, 2, w)?,
        })
    })
    .transpose()
}

pub(super) async fn expiring_before(
    c: &impl GenericClient,
    t: DateTime<Utc>,
) -> Result<Vec<ExpiringMetadata>> {
    let rows = query(
        c,
        "list expiring metadata",
        "SELECT vin, role, version, expires FROM vehicle_metadata
         WHERE expires < $1 ORDER BY expires, vin, role",
        &[&ms(t)],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let w = "vehicle metadata";
            Ok(ExpiringMetadata {
                vin: col(r, 0, w)?,
                role: col::<String>(r, 1, w)?
                    .parse()
                    .map_err(|e| Error::corrupt("vehicle metadata role", e))?,
                version: version_from_sql("vehicle metadata version", col(r, 2, w)?)?,
                expires: from_ms("vehicle metadata expiry", col(r, 3, w)?)?,
            })
        })
        .collect()
}

pub(super) async fn put_root(c: &impl GenericClient, version: u64, bytes: &[u8]) -> Result<()> {
    let sql_version = version_to_sql("director root", version)?;
    let expected = latest_root(c).await?.map_or(1, |(v, _)| v + 1);
    if version != expected {
        return Err(Error::RootVersion {
            new: version,
            expected,
        });
    }
    // Two Directors importing the same root: the second inserts nothing and is told so.
    let changed = execute(
        c,
        "store director root",
        "INSERT INTO director_roots (version, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&sql_version, &bytes],
    )
    .await?;
    if changed == 0 {
        return Err(Error::RootVersion {
            new: version,
            expected: version + 1,
        });
    }
    Ok(())
}

pub(super) async fn get_root(c: &impl GenericClient, version: u64) -> Result<Option<Vec<u8>>> {
    let Ok(v) = i64::try_from(version) else {
        return Ok(None);
    };
    query_opt(
        c,
        "read director root",
        "SELECT body FROM director_roots WHERE version = $1",
        &[&v],
    )
    .await?
    .map(|r| col(&r, 0, "director root"))
    .transpose()
}

pub(super) async fn latest_root(c: &impl GenericClient) -> Result<Option<(u64, Vec<u8>)>> {
    query_opt(
        c,
        "read latest director root",
        "SELECT version, body FROM director_roots ORDER BY version DESC LIMIT 1",
        &[],
    )
    .await?
    .map(|r| {
        Ok((
            version_from_sql("director root version", col(&r, 0, "director root")?)?,
            col(&r, 1, "director root")?,
        ))
    })
    .transpose()
}
