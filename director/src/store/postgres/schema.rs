//! Schema migrations on PostgreSQL (the list, both dialects: `store/migrations.rs`).
//! `ferry_schema` holds how many have been applied. Each runs in its own transaction, all under
//! one advisory lock, so Directors starting together migrate once: the others wait, then find
//! the work done.

use super::sql::{classify, get};
use crate::store::migrations::{latest, MIGRATIONS};
use crate::{Error, Result};

/// Advisory-lock class of the migration lock (`pg_advisory_lock(class, 0)`); the other
/// classes are in `locks.rs`.
const MIGRATION_LOCK: i32 = 0x4665_0001;

/// The schema version recorded in the database (0 for an empty one).
pub(super) async fn version(c: &impl deadpool_postgres::GenericClient) -> Result<i64> {
    let op = "read the schema version";
    let exists = c
        .query_one("SELECT to_regclass('ferry_schema') IS NOT NULL", &[])
        .await
        .map_err(|e| classify(op, e))?;
    if !get::<bool>(&exists, 0, "schema table")? {
        return Ok(0);
    }
    let row = c
        .query_opt("SELECT version FROM ferry_schema", &[])
        .await
        .map_err(|e| classify(op, e))?;
    row.map_or(Ok(0), |r| get(&r, 0, "schema version"))
}

/// Apply migrations until the database is at `target` (at most [`latest`]); refuse a database
/// newer than this build. The whole walk holds a session advisory lock: Directors starting
/// together take turns, and each transaction starts after the lock is held, so it sees what
/// the Director before it committed (catalog included).
pub(super) async fn migrate_to(client: &mut deadpool_postgres::Object, target: i64) -> Result<()> {
    let op = "take the schema migration lock";
    client
        .execute("SELECT pg_advisory_lock($1, 0)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| classify(op, e))?;
    let result = migrate_locked(client, target).await;
    let unlocked = client
        .query_one("SELECT pg_advisory_unlock($1, 0)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| classify("release the schema migration lock", e))
        .and_then(|r| get::<bool>(&r, 0, "advisory unlock"));
    match (result, unlocked) {
        (Err(e), _) => Err(e),
        (Ok(()), Ok(true)) => Ok(()),
        // The connection may still hold the lock: the caller fails to open, and the
        // connection closes with it, which releases the lock.
        (Ok(()), Ok(false)) => Err(Error::storage(
            "release the schema migration lock",
            "pg_advisory_unlock returned false; expected the lock this session took",
        )),
        (Ok(()), Err(e)) => Err(e),
    }
}

async fn migrate_locked(client: &mut deadpool_postgres::Object, target: i64) -> Result<()> {
    let found = version(&*client).await?;
    if found > latest() {
        return Err(Error::SchemaTooNew {
            found,
            supported: latest(),
        });
    }
    for version in (found + 1)..=target.min(latest()) {
        let op = format!("schema migration to version {version}");
        let tx = client.transaction().await.map_err(|e| classify(&op, e))?;
        if version == 1 {
            tx.batch_execute("CREATE TABLE ferry_schema (version BIGINT NOT NULL)")
                .await
                .map_err(|e| classify(&op, e))?;
            tx.execute("INSERT INTO ferry_schema (version) VALUES (0)", &[])
                .await
                .map_err(|e| classify(&op, e))?;
        }
        tx.batch_execute(MIGRATIONS[(version - 1) as usize].postgres)
            .await
            .map_err(|e| classify(&op, e))?;
        tx.execute("UPDATE ferry_schema SET version = $1", &[&version])
            .await
            .map_err(|e| classify(&op, e))?;
        tx.commit().await.map_err(|e| classify(&op, e))?;
        tracing::info!(version, "director database (PostgreSQL) migrated");
    }
    Ok(())
}
