//! Schema migrations. `PRAGMA user_version` holds how many of [`MIGRATIONS`] have been applied;
//! opening a database applies the rest in order, each in its own transaction together with the
//! new user_version, so a crash mid-migration leaves the database at the previous version.
//! Never edit a released migration: append a new one.
//!
//! Times are INTEGER milliseconds since the Unix epoch (UTC). Tables are STRICT.

use crate::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: vehicles and their ECUs.
    "CREATE TABLE vehicles (
        vin TEXT PRIMARY KEY NOT NULL,
        created_at INTEGER NOT NULL,
        last_seen INTEGER,
        device_token_sha256 BLOB CHECK (device_token_sha256 IS NULL OR length(device_token_sha256) = 32)
    ) STRICT;
    CREATE TABLE ecus (
        serial TEXT PRIMARY KEY NOT NULL,
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        hardware_id TEXT NOT NULL,
        public_key TEXT NOT NULL,
        is_primary INTEGER NOT NULL CHECK (is_primary IN (0, 1)),
        UNIQUE (serial, vin)
    ) STRICT;
    CREATE INDEX ecus_by_vin ON ecus(vin);
    CREATE UNIQUE INDEX ecus_one_primary ON ecus(vin) WHERE is_primary = 1;",
    // 2: manifests (append-only) and each ECU's last accepted report.
    "CREATE TABLE manifests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        received_at INTEGER NOT NULL,
        nonce TEXT,
        verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'refused')),
        reason TEXT NOT NULL,
        body BLOB NOT NULL,
        CHECK (verdict = 'refused' OR nonce IS NOT NULL)
    ) STRICT;
    CREATE UNIQUE INDEX manifests_accepted_nonce ON manifests(vin, nonce) WHERE verdict = 'accepted';
    CREATE INDEX manifests_by_vin ON manifests(vin, id);
    CREATE TRIGGER manifests_no_update BEFORE UPDATE ON manifests
        BEGIN SELECT RAISE(ABORT, 'manifests are append-only'); END;
    CREATE TRIGGER manifests_no_delete BEFORE DELETE ON manifests
        BEGIN SELECT RAISE(ABORT, 'manifests are append-only'); END;
    CREATE TABLE ecu_reports (
        serial TEXT PRIMARY KEY NOT NULL REFERENCES ecus(serial),
        manifest_id INTEGER NOT NULL REFERENCES manifests(id),
        filepath TEXT NOT NULL,
        length INTEGER NOT NULL,
        hashes TEXT NOT NULL,
        provides TEXT NOT NULL,
        attacks_detected TEXT NOT NULL,
        last_install TEXT,
        reported_at INTEGER NOT NULL
    ) STRICT;",
    // 3: assignments.
    "CREATE TABLE assignments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        ecu_serial TEXT NOT NULL,
        target_name TEXT NOT NULL,
        target TEXT NOT NULL,
        position INTEGER NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending', 'in_flight', 'installed', 'failed', 'cancelled')),
        detail TEXT NOT NULL DEFAULT '',
        campaign TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (vin, position),
        FOREIGN KEY (ecu_serial, vin) REFERENCES ecus(serial, vin)
    ) STRICT;
    CREATE UNIQUE INDEX assignments_one_active ON assignments(ecu_serial, target_name)
        WHERE status IN ('pending', 'in_flight');
    CREATE INDEX assignments_by_ecu ON assignments(ecu_serial, status);",
    // 4: signed metadata: the latest of each per-vehicle role, and every director root.
    "CREATE TABLE vehicle_metadata (
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        role TEXT NOT NULL CHECK (role IN ('targets', 'snapshot', 'timestamp')),
        version INTEGER NOT NULL CHECK (version >= 1),
        expires INTEGER NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (vin, role)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX vehicle_metadata_by_expiry ON vehicle_metadata(expires);
    CREATE TABLE director_roots (
        version INTEGER PRIMARY KEY CHECK (version >= 1),
        body BLOB NOT NULL
    ) STRICT;",
    // 5: admin API tokens.
    "CREATE TABLE admin_tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
        secret_sha256 BLOB NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;",
    // 6: the last superseded versions of each vehicle's targets and snapshot, so a vehicle
    // that read a timestamp (or snapshot) just before a re-signing still finds the version it
    // names (consistent snapshots: `N.snapshot.json`, `N.targets.json`).
    "CREATE TABLE vehicle_metadata_history (
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        role TEXT NOT NULL CHECK (role IN ('targets', 'snapshot')),
        version INTEGER NOT NULL CHECK (version >= 1),
        body BLOB NOT NULL,
        PRIMARY KEY (vin, role, version)
    ) STRICT, WITHOUT ROWID;",
    // 7: what a careless operator and a hostile vehicle needed (issue #17): admin tokens that
    // expire, vehicles removed with their history kept, refused manifests kept as a digest and
    // a bounded excerpt, and old manifests pruned by retention (a deletion is allowed only
    // while `manifest_deletions` has a row, which only retention and the refused-manifest
    // ring write, inside their own transaction).
    "ALTER TABLE admin_tokens ADD COLUMN expires_at INTEGER;
    ALTER TABLE vehicles ADD COLUMN removed_at INTEGER;
    ALTER TABLE manifests ADD COLUMN body_sha256 BLOB
        CHECK (body_sha256 IS NULL OR length(body_sha256) = 32);
    ALTER TABLE manifests ADD COLUMN body_length INTEGER;
    CREATE TABLE manifest_deletions (why TEXT NOT NULL) STRICT;
    DROP TRIGGER manifests_no_delete;
    CREATE TRIGGER manifests_no_delete BEFORE DELETE ON manifests
        WHEN NOT EXISTS (SELECT 1 FROM manifest_deletions)
        BEGIN SELECT RAISE(ABORT, 'manifests are append-only (retention and the refused-manifest ring excepted)'); END;
    CREATE INDEX manifests_refused_by_vin ON manifests(vin, id) WHERE verdict = 'refused';
    CREATE INDEX manifests_by_time ON manifests(received_at);",
    // 8: PURE-2 offline-update bundles (issue #19): each bundle's signed offline-update
    // targets (the latest version of each name; a revoked one stays for the record), every
    // offline-update snapshot, which lists the bundles not revoked, and the signed receipts
    // vehicles wrote after offline installs (each recorded once).
    "CREATE TABLE offline_bundles (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL CHECK (version >= 1),
        expires INTEGER NOT NULL,
        body BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;
    CREATE TABLE offline_snapshots (
        version INTEGER PRIMARY KEY CHECK (version >= 1),
        body BLOB NOT NULL
    ) STRICT;
    CREATE TABLE offline_receipts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vin TEXT NOT NULL REFERENCES vehicles(vin),
        bundle TEXT NOT NULL,
        result TEXT NOT NULL,
        outcome TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        body BLOB NOT NULL,
        signed_sha256 BLOB NOT NULL UNIQUE CHECK (length(signed_sha256) = 32)
    ) STRICT;
    CREATE INDEX offline_receipts_by_vin ON offline_receipts(vin, id);",
    // 9: gateway relays (issue #20): each registered relay's name and the SHA-256 of its
    // token. A relay speaks for vehicles only; its token is never an admin token.
    "CREATE TABLE relays (
        name TEXT PRIMARY KEY NOT NULL,
        secret_sha256 BLOB NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    ) STRICT;",
];

/// The schema version this build writes.
pub(super) fn latest() -> i64 {
    MIGRATIONS.len() as i64
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
        let sql = MIGRATIONS[(version - 1) as usize];
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
