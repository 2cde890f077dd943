//! Moving an installation from SQLite to PostgreSQL (`ferry director migrate`): every table
//! copied row by row (ids, versions and hashes as they are) in one PostgreSQL transaction,
//! then each table counted on both sides. Memory stays bounded: rows stream from SQLite.

use super::sql::classify;
use super::PgStore;
use crate::{Error, Result};
use tokio_postgres::types::ToSql;

#[derive(Clone, Copy)]
enum Ty {
    Int,
    Text,
    Blob,
    /// SQLite's 0/1 integer, PostgreSQL's boolean.
    Bool,
}

/// The tables of the latest schema, parents before children, with their columns.
const TABLES: &[(&str, &[(&str, Ty)])] = {
    use Ty::*;
    &[
        (
            "vehicles",
            &[
                ("vin", Text),
                ("created_at", Int),
                ("last_seen", Int),
                ("device_token_sha256", Blob),
                ("removed_at", Int),
            ],
        ),
        (
            "ecus",
            &[
                ("serial", Text),
                ("vin", Text),
                ("hardware_id", Text),
                ("public_key", Text),
                ("is_primary", Bool),
            ],
        ),
        (
            "manifests",
            &[
                ("id", Int),
                ("vin", Text),
                ("received_at", Int),
                ("nonce", Text),
                ("verdict", Text),
                ("reason", Text),
                ("body", Blob),
                ("body_sha256", Blob),
                ("body_length", Int),
            ],
        ),
        (
            "ecu_reports",
            &[
                ("serial", Text),
                ("manifest_id", Int),
                ("filepath", Text),
                ("length", Int),
                ("hashes", Text),
                ("provides", Text),
                ("attacks_detected", Text),
                ("last_install", Text),
                ("reported_at", Int),
            ],
        ),
        (
            "assignments",
            &[
                ("id", Int),
                ("vin", Text),
                ("ecu_serial", Text),
                ("target_name", Text),
                ("target", Text),
                ("position", Int),
                ("status", Text),
                ("detail", Text),
                ("campaign", Text),
                ("created_at", Int),
                ("updated_at", Int),
            ],
        ),
        (
            "vehicle_metadata",
            &[
                ("vin", Text),
                ("role", Text),
                ("version", Int),
                ("expires", Int),
                ("body", Blob),
            ],
        ),
        (
            "vehicle_metadata_history",
            &[
                ("vin", Text),
                ("role", Text),
                ("version", Int),
                ("body", Blob),
            ],
        ),
        ("director_roots", &[("version", Int), ("body", Blob)]),
        (
            "admin_tokens",
            &[
                ("id", Int),
                ("name", Text),
                ("scope", Text),
                ("secret_sha256", Blob),
                ("created_at", Int),
                ("revoked_at", Int),
                ("expires_at", Int),
            ],
        ),
        (
            "offline_bundles",
            &[
                ("name", Text),
                ("version", Int),
                ("expires", Int),
                ("body", Blob),
                ("created_at", Int),
                ("revoked_at", Int),
            ],
        ),
        ("offline_snapshots", &[("version", Int), ("body", Blob)]),
        (
            "offline_receipts",
            &[
                ("id", Int),
                ("vin", Text),
                ("bundle", Text),
                ("result", Text),
                ("outcome", Text),
                ("received_at", Int),
                ("body", Blob),
                ("signed_sha256", Blob),
            ],
        ),
        (
            "relays",
            &[
                ("name", Text),
                ("secret_sha256", Blob),
                ("created_at", Int),
                ("revoked_at", Int),
                ("cert_sha256", Blob),
            ],
        ),
        (
            "relay_vehicles",
            &[("vin", Text), ("relay", Text), ("seen_at", Int)],
        ),
    ]
};

/// Tables whose ids PostgreSQL generates: their sequences continue after the copied ids.
const IDENTITY: &[&str] = &[
    "manifests",
    "assignments",
    "admin_tokens",
    "offline_receipts",
];

fn value(row: &rusqlite::Row<'_>, i: usize, ty: Ty) -> rusqlite::Result<Box<dyn ToSql + Sync>> {
    Ok(match ty {
        Ty::Int => Box::new(row.get::<_, Option<i64>>(i)?),
        Ty::Text => Box::new(row.get::<_, Option<String>>(i)?),
        Ty::Blob => Box::new(row.get::<_, Option<Vec<u8>>>(i)?),
        Ty::Bool => Box::new(row.get::<_, Option<bool>>(i)?),
    })
}

/// How many rows one table holds on each side after the copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub sqlite: u64,
    pub postgres: u64,
}

impl PgStore {
    /// Copy everything in the SQLite database `from` (migrated to the latest schema first)
    /// into this store, which must hold no data yet; then count every table on both sides.
    /// Fails, leaving this store as it was, on any difference.
    pub fn import_sqlite(&self, from: &std::path::Path) -> Result<Vec<Copied>> {
        // Bring an older file to the latest schema, with the SQLite store's own migrations.
        drop(crate::store::SqliteStore::open(from)?);
        let sqlite =
            rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| Error::storage(format!("open {}", from.display()), e))?;
        let read =
            |op: &str, e: rusqlite::Error| Error::storage(format!("{op} {}", from.display()), e);
        self.block(async {
            let mut client = self.client("migrate: connect").await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| classify("migrate: begin", e))?;
            for (table, _) in TABLES {
                let row = tx
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .map_err(|e| classify("migrate: count the target's rows", e))?;
                if row.get::<_, i64>(0) != 0 {
                    return Err(Error::MigrateTarget {
                        target: self.target.clone(),
                        table,
                    });
                }
            }
            for (table, columns) in TABLES {
                let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
                let placeholders: Vec<String> =
                    (1..=names.len()).map(|i| format!("${i}")).collect();
                let insert = tx
                    .prepare(&format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.join(", "),
                        placeholders.join(", ")
                    ))
                    .await
                    .map_err(|e| classify("migrate: prepare insert", e))?;
                let mut stmt = sqlite
                    .prepare(&format!("SELECT {} FROM {table}", names.join(", ")))
                    .map_err(|e| read("read", e))?;
                let mut rows = stmt.query([]).map_err(|e| read("read", e))?;
                while let Some(row) = rows.next().map_err(|e| read("read", e))? {
                    let values = columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| value(row, i, *ty))
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(|e| read("read", e))?;
                    let params: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|v| v.as_ref()).collect();
                    tx.execute(&insert, &params)
                        .await
                        .map_err(|e| classify("migrate: insert", e))?;
                }
            }
            for table in IDENTITY {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                    ),
                    &[],
                )
                .await
                .map_err(|e| classify("migrate: continue the ids", e))?;
            }
            let mut copied = Vec::new();
            for (table, _) in TABLES {
                let sqlite_rows: i64 = sqlite
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                    .map_err(|e| read("count", e))?;
                let pg_rows: i64 = tx
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                    .await
                    .map_err(|e| classify("migrate: count", e))?
                    .get(0);
                let entry = Copied {
                    table,
                    sqlite: sqlite_rows.max(0) as u64,
                    postgres: pg_rows.max(0) as u64,
                };
                if entry.sqlite != entry.postgres {
                    return Err(Error::MigrateCount {
                        table,
                        sqlite: entry.sqlite,
                        postgres: entry.postgres,
                    });
                }
                copied.push(entry);
            }
            tx.commit()
                .await
                .map_err(|e| classify("migrate: commit", e))?;
            Ok(copied)
        })
    }
}
