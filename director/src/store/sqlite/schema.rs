//! Schema migrations on SQLite (the list, both dialects: `store/migrations.rs`).
//! `PRAGMA user_version` holds how many of [`MIGRATIONS`] have been applied;
//! opening a database applies the rest in order, each in its own transaction together with the
//! new user_version, so a crash mid-migration leaves the database at the previous version.
//! Never edit a released migration: append a new one.
//!
//! Times are INTEGER milliseconds since the Unix epoch (UTC). Tables are STRICT.

use crate::store::migrations::{latest as latest_version, MIGRATIONS};
use crate::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

/// The schema version this build writes.
pub(super) fn latest() -> i64 {
    latest_version()
}

pub(super) fn user_version(conn: &Connection) -> Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::storage("read PRAGMA user_version", e))
}

/// Apply migrations until the database is at `target` (at most [`latest`]).
pub(super) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let found = user_version(conn)?;
    if found > latest() {
        return Err(Error::SchemaTooNew {
            found,
            supported: latest(),
        });
    }
    for version in (found + 1)..=target.min(latest()) {
        let sql = MIGRATIONS[(version - 1) as usize].sqlite;
        let op = format!("schema migration to version {version}");
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::storage(op.clone(), e))?;
        // Another process may have migrated between our read and our write lock.
        if user_version(&tx)? >= version {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::storage(op.clone(), e))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(|e| Error::storage(op.clone(), e))?;
        tx.commit().map_err(|e| Error::storage(op, e))?;
        tracing::info!(version, "director database migrated");
    }
    Ok(())
}
