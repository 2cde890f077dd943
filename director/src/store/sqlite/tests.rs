#![allow(clippy::unwrap_used)]

use super::*;
use ferry_core::{Clock, SystemClock};
use ferry_keys::{PublicKey, Scheme};
use rusqlite::Connection;

fn new_vehicle(vin: &str) -> NewVehicle {
    NewVehicle {
        vin: vin.to_owned(),
        ecus: vec![crate::model::NewEcu {
            serial: format!("{vin}-primary"),
            hardware_id: "hw".into(),
            public_key: PublicKey::new(Scheme::Ed25519, "ab".repeat(32)),
            primary: true,
        }],
    }
}

/// Every schema object's SQL, sorted: two databases with equal dumps have equal schemas.
fn schema_dump(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT type, name, coalesce(sql, '') FROM sqlite_master ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| {
        Ok(format!(
            "{} {} {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

/// Record `count` refused manifests of vehicle V1 with `body_len`-byte bodies, each in a
/// write (and so a commit) of its own.
fn record_refused(store: &SqliteStore, count: u64, body_len: usize) {
    for i in 0..count {
        store
            .record_manifest(&IncomingManifest {
                vin: "V1".into(),
                received_at: SystemClock.now(),
                body: vec![b'x'; body_len],
                body_sha256: [0; 32],
                body_length: body_len as u64,
                verdict: crate::model::ManifestVerdict::Refused {
                    nonce: Some(format!("nonce-{i}")),
                    reason: "test".into(),
                    keep: u32::MAX,
                },
            })
            .unwrap();
    }
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn opening_twice_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    store.register_vehicle(&new_vehicle("V1")).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::latest());
    drop(store);
    let before = schema_dump(&raw(&path));

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), schema::latest());
    assert!(store.get_vehicle("V1").unwrap().is_some());
    drop(store);
    assert_eq!(schema_dump(&raw(&path)), before);
}

#[test]
fn a_database_at_every_older_version_migrates_to_latest() {
    let dir = tempfile::tempdir().unwrap();
    let fresh_path = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh_path).unwrap());
    let fresh = schema_dump(&raw(&fresh_path));
    assert!(schema::latest() >= 2, "the test needs several migrations");

    for n in 0..schema::latest() {
        let path = dir.path().join(format!("at-{n}.db"));
        let mut conn = raw(&path);
        schema::migrate_to(&mut conn, n).unwrap();
        assert_eq!(schema::user_version(&conn).unwrap(), n);
        if n >= 1 {
            // Data written by the older schema survives the migration.
            conn.execute(
                "INSERT INTO vehicles (vin, created_at) VALUES ('OLD', 0)",
                [],
            )
            .unwrap();
        }
        drop(conn);

        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            schema::latest(),
            "from {n}"
        );
        assert_eq!(
            store.list_vins().unwrap().len(),
            usize::from(n >= 1),
            "from {n}"
        );
        drop(store);
        assert_eq!(schema_dump(&raw(&path)), fresh, "schema migrated from {n}");
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    drop(SqliteStore::open(&path).unwrap());
    raw(&path)
        .pragma_update(None, "user_version", schema::latest() + 1)
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::SchemaTooNew { found, .. } if found == schema::latest() + 1));
}

#[test]
fn a_vehicles_assignments_are_read_through_its_index_not_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("director.db")).unwrap();
    for active_only in [true, false] {
        let plan: Vec<String> = store
            .pool
            .read("plan", |tx| {
                let mut stmt = tx
                    .prepare(&format!(
                        "EXPLAIN QUERY PLAN {}",
                        super::assignments::list_sql(active_only)
                    ))
                    .unwrap();
                let rows = stmt
                    .query_map(["V1"], |r| r.get::<_, String>(3))
                    .unwrap()
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .unwrap();
                Ok(rows)
            })
            .unwrap();
        // UNIQUE (vin, position) is that index: a SEARCH by VIN, already in position order.
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH assignments USING INDEX")
                    && step.contains("(vin=?)")),
            "active_only={active_only}: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.starts_with("SCAN") || step.contains("TEMP B-TREE")),
            "{plan:?}"
        );
    }
}

#[test]
fn connections_have_the_documented_settings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    let (mode, sync, fk, query_only): (String, i64, i64, i64) = store
        .pool
        .read("pragmas", |tx| {
            Ok(tx
                .query_row(
                    "SELECT (SELECT journal_mode FROM pragma_journal_mode),
                            (SELECT synchronous FROM pragma_synchronous),
                            (SELECT foreign_keys FROM pragma_foreign_keys),
                            (SELECT query_only FROM pragma_query_only)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap())
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL by default");
    assert_eq!(fk, 1);
    assert_eq!(query_only, 1, "readers cannot write");
    let (sync, fk): (i64, i64) = store
        .pool
        .write("pragmas", |tx| {
            Ok(tx
                .query_row(
                    "SELECT (SELECT synchronous FROM pragma_synchronous),
                            (SELECT foreign_keys FROM pragma_foreign_keys)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap())
        })
        .unwrap();
    assert_eq!((sync, fk), (2, 1));
    drop(store);

    let normal = SqliteStore::open_with(&path, 1, Durability::Normal).unwrap();
    let sync: i64 = normal
        .pool
        .write("pragmas", |tx| {
            Ok(tx
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap())
        })
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL when asked for");
}

/// The build settings `.cargo/config.toml` gives SQLite (see the module's docs): a checkout
/// that loses them builds a SQLite whose connections contend on global mutexes.
#[test]
fn sqlite_is_built_without_global_cache_and_memory_statistics_mutexes() {
    let conn = Connection::open_in_memory().unwrap();
    let options: Vec<String> = conn
        .prepare("SELECT compile_options FROM pragma_compile_options")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
}

#[test]
fn the_manifest_log_refuses_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    store.register_vehicle(&new_vehicle("V1")).unwrap();
    store
        .record_manifest(&IncomingManifest {
            vin: "V1".into(),
            received_at: SystemClock.now(),
            body: b"{}".to_vec(),
            body_sha256: [0; 32],
            body_length: 2,
            verdict: crate::model::ManifestVerdict::Refused {
                nonce: None,
                reason: "test".into(),
                keep: 100,
            },
        })
        .unwrap();
    let conn = raw(&path);
    let update = conn.execute("UPDATE manifests SET reason = 'changed'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM manifests", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    assert_eq!(store.count_manifests("V1", None).unwrap(), 1);
}

#[test]
fn integrity_check_fails_on_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    store.register_vehicle(&new_vehicle("V1")).unwrap();
    record_refused(&store, 300, 200);
    store.integrity_check().unwrap();
    drop(store);
    // Fold the WAL into the main file, then overwrite the root page of one index (the schema
    // stays readable, so the database still opens).
    let conn = raw(&path);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let page_size: usize = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: usize = conn
        .query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'manifests_by_vin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&path).unwrap();
    // Keep the page header, garble the cells at the end of the page.
    let start = (root - 1) * page_size;
    bytes[start + page_size / 2..start + page_size].fill(0xA5);
    std::fs::write(&path, bytes).unwrap();

    let store = SqliteStore::open(&path).unwrap();
    let err = store.integrity_check().unwrap_err();
    assert!(matches!(err, Error::IntegrityCheck { .. }), "{err}");
}

#[test]
fn ecu_keys_are_the_stored_ones_even_when_changed_behind_the_key_cache() {
    use ferry_keys::{KeyKind, PrivateKey, Signer};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.ecu_keys("V1").unwrap().is_none());
    let first = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let mut vehicle = new_vehicle("V1");
    vehicle.ecus[0].public_key = first.public_key().clone();
    store.register_vehicle(&vehicle).unwrap();
    let keys = store.ecu_keys("V1").unwrap().unwrap();
    assert_eq!(keys.vin, "V1");
    assert_eq!(keys.primary_ecu_serial, "V1-primary");
    assert_eq!(keys.ecu_keys.len(), 1);
    assert_eq!(keys.ecu_keys["V1-primary"].key(), first.public_key());
    assert_eq!(
        keys.ecu_keys["V1-primary"].id(),
        &first.public_key().key_id().unwrap()
    );
    // Read twice, so the parsed key is cached; then another connection replaces it.
    store.ecu_keys("V1").unwrap().unwrap();
    let second = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    raw(&path)
        .execute(
            "UPDATE ecus SET public_key = ?1 WHERE serial = 'V1-primary'",
            [serde_json::to_string(second.public_key()).unwrap()],
        )
        .unwrap();
    let keys = store.ecu_keys("V1").unwrap().unwrap();
    let key = keys.ecu_keys["V1-primary"].key();
    assert_eq!(key, second.public_key());
    assert_eq!(
        keys.ecu_keys["V1-primary"].id(),
        &second.public_key().key_id().unwrap()
    );
    key.verify(b"m", &second.sign(b"m").unwrap()).unwrap();
    assert!(key.verify(b"m", &first.sign(b"m").unwrap()).is_err());
}

#[test]
fn the_wal_is_checkpointed_by_its_own_thread_not_by_the_writers_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.db");
    let store = SqliteStore::open(&path).unwrap();
    store.register_vehicle(&new_vehicle("V1")).unwrap();
    let backstop: u32 = store
        .pool
        .write("read wal_autocheckpoint", |c| {
            c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
                .map_err(|e| Error::storage("wal_autocheckpoint", e))
        })
        .unwrap();
    assert_eq!(backstop, checkpointer::BACKSTOP_PAGES);
    let main_file = || std::fs::metadata(&path).unwrap().len();
    let before = main_file();
    // Each write commits on its own: enough commits for the checkpointer, far fewer WAL
    // pages than the writer's backstop, so only the thread can have copied them.
    record_refused(&store, 2 * checkpointer::EVERY_COMMITS, 2000);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while main_file() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the main database file stayed at {before} bytes: nothing was checkpointed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        store.count_manifests("V1", None).unwrap(),
        2 * checkpointer::EVERY_COMMITS
    );
    drop(store);
}

#[test]
fn try_read_runs_nothing_while_every_reader_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open_with(dir.path().join("director.db"), 1, Durability::Normal).unwrap();
    let one = |c: &Connection| {
        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map_err(|e| Error::storage("select", e))
    };
    let inner = store
        .pool
        .read("hold the only reader", |_| {
            let mut ran = false;
            let out = store.pool.try_read("try", |c| {
                ran = true;
                one(c)
            });
            Ok((out.is_none(), ran))
        })
        .unwrap();
    assert_eq!(inner, (true, false), "try_read must neither wait nor run");
    assert_eq!(store.pool.try_read("try", one).unwrap().unwrap(), 1);
}
