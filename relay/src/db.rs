//! The relay's durable state, `relay.db` in `cache_dir` (SQLite, WAL, synchronous FULL: a
//! queued manifest answered 202 survives a power cut):
//! - `cache`: every complete file of the mirror, its size and when it was last served (LRU);
//! - `vehicle_files`: the last copy of each Director metadata file each vehicle fetched;
//! - `vehicle_tokens`: the SHA-256 of each vehicle's token once the Director accepted it
//!   through this relay, so the relay can tell the vehicle while the uplink is down;
//! - `packed_tokens`: the SHA-256 of each vehicle's device token secret from a pack
//!   (`ferry relay import`), for a relay that never reached the Director;
//! - `queue`: manifests received while the uplink was down, in arrival order;
//! - `counters` and `state`: hit rate, forwarded count, last sync.

use crate::error::{db, io_at, Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE cache (
        path TEXT PRIMARY KEY NOT NULL,
        size INTEGER NOT NULL,
        last_used INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX cache_lru ON cache(last_used);
    CREATE TABLE vehicle_files (
        vin TEXT NOT NULL,
        file TEXT NOT NULL,
        body BLOB NOT NULL,
        saved_at INTEGER NOT NULL,
        PRIMARY KEY (vin, file)
    ) STRICT;
    CREATE TABLE vehicle_tokens (
        vin TEXT PRIMARY KEY NOT NULL,
        token_sha256 BLOB NOT NULL
    ) STRICT;
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        vin TEXT NOT NULL,
        body BLOB NOT NULL,
        received_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) STRICT;
    CREATE TABLE state (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;",
    // 2: `ferry relay import` (a site never reaching the Director): the SHA-256 of each packed
    // vehicle's device token secret, as the Director stores it.
    "CREATE TABLE packed_tokens (
        vin TEXT PRIMARY KEY NOT NULL,
        secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32)
    ) STRICT;",
];

/// One queued manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub vin: String,
    pub body: Vec<u8>,
    /// RFC 3339: when the relay received it.
    pub received_at: String,
}

#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Versioned role files (`N.snapshot.json`) replace older versions of the same role for a
/// vehicle, so what is kept per vehicle stays bounded; roots are all kept (a vehicle walks
/// them).
fn versioned_role(file: &str) -> Option<&str> {
    let (n, role) = file.split_once('.')?;
    (n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() && role != "root.json").then_some(role)
}

/// Equal byte strings, every byte looked at (digests: the length is public).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The secret of a device token as the Director reads it: `VIN.SECRET` (64 hex digits) names
/// its vehicle, which must be `vin`; anything else is a bare secret.
fn device_token_secret<'a>(token: &'a str, vin: &str) -> Option<&'a str> {
    match token.rsplit_once('.') {
        Some((claimed, secret))
            if !claimed.is_empty()
                && secret.len() == 64
                && secret.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            (claimed == vin).then_some(secret)
        }
        _ => Some(token),
    }
}

impl Db {
    pub fn open(dir: &Path) -> Result<Db> {
        std::fs::create_dir_all(dir).map_err(io_at(dir))?;
        let path = dir.join("relay.db");
        let mut conn = Connection::open(&path).map_err(db("open relay.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(db("configure relay.db"))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db("read the schema version"))?;
        if found > MIGRATIONS.len() as i64 {
            return Err(Error::Config {
                path,
                reason: format!(
                    "schema version {found} is newer than this build's {}; expected a relay at least as new as the one that wrote it",
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = conn.transaction().map_err(db("migrate relay.db"))?;
            tx.execute_batch(sql).map_err(db("migrate relay.db"))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(db("migrate relay.db"))?;
            tx.commit().map_err(db("migrate relay.db"))?;
        }
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (a transaction not
        // committed is rolled back), so a poisoned lock is taken over.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // --- the mirror's index ---

    /// Mark `path` used now; false if it is not in the cache.
    pub fn touch(&self, path: &str, now: i64) -> Result<bool> {
        let n = self
            .lock()
            .execute(
                "UPDATE cache SET last_used = ?2 WHERE path = ?1",
                params![path, now],
            )
            .map_err(db("mark a cached file used"))?;
        Ok(n > 0)
    }

    pub fn insert(&self, path: &str, size: u64, now: i64) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO cache (path, size, last_used) VALUES (?1, ?2, ?3)
                 ON CONFLICT (path) DO UPDATE SET size = ?2, last_used = ?3",
                params![path, size as i64, now],
            )
            .map_err(db("index a cached file"))?;
        Ok(())
    }

    pub fn remove(&self, path: &str) -> Result<()> {
        self.lock()
            .execute("DELETE FROM cache WHERE path = ?1", params![path])
            .map_err(db("drop a cached file"))?;
        Ok(())
    }

    /// Total bytes and file count of the cache.
    pub fn cache_size(&self) -> Result<(u64, u64)> {
        self.lock()
            .query_row(
                "SELECT coalesce(sum(size), 0), count(*) FROM cache",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(db("measure the cache"))
    }

    /// Cached paths, least recently used first.
    pub fn lru(&self, limit: u32) -> Result<Vec<(String, u64)>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT path, size FROM cache ORDER BY last_used, path LIMIT ?1")
            .map_err(db("list the cache"))?;
        let rows = stmt
            .query_map(params![limit], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(db("list the cache"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("list the cache"));
        rows
    }

    // --- the Director side ---

    pub fn save_vehicle_file(&self, vin: &str, file: &str, body: &[u8], now: i64) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn
            .transaction()
            .map_err(db("keep a vehicle's metadata"))?;
        if let Some(role) = versioned_role(file) {
            tx.execute(
                "DELETE FROM vehicle_files WHERE vin = ?1 AND file LIKE ?2 AND file <> ?3
                   AND file GLOB '[0-9]*'",
                params![vin, format!("%.{role}"), file],
            )
            .map_err(db("keep a vehicle's metadata"))?;
        }
        tx.execute(
            "INSERT INTO vehicle_files (vin, file, body, saved_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (vin, file) DO UPDATE SET body = ?3, saved_at = ?4",
            params![vin, file, body, now],
        )
        .map_err(db("keep a vehicle's metadata"))?;
        tx.commit().map_err(db("keep a vehicle's metadata"))
    }

    pub fn vehicle_file(&self, vin: &str, file: &str) -> Result<Option<Vec<u8>>> {
        self.lock()
            .query_row(
                "SELECT body FROM vehicle_files WHERE vin = ?1 AND file = ?2",
                params![vin, file],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("read a vehicle's metadata"))
    }

    /// Remember `token` as `vin`'s: the Director just accepted it through this relay.
    pub fn confirm_token(&self, vin: &str, token: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO vehicle_tokens (vin, token_sha256) VALUES (?1, ?2)
                 ON CONFLICT (vin) DO UPDATE SET token_sha256 = ?2",
                params![vin, sha256(token.as_bytes())],
            )
            .map_err(db("remember a confirmed vehicle token"))?;
        Ok(())
    }

    pub fn forget_token(&self, vin: &str) -> Result<()> {
        let conn = self.lock();
        conn.execute("DELETE FROM vehicle_tokens WHERE vin = ?1", params![vin])
            .map_err(db("forget a vehicle token"))?;
        conn.execute("DELETE FROM packed_tokens WHERE vin = ?1", params![vin])
            .map_err(db("forget a packed vehicle token"))?;
        Ok(())
    }

    /// Whether `token` is the one the Director last accepted for `vin` through this relay, or
    /// the one a pack (`ferry relay import`) says is `vin`'s.
    pub fn token_confirmed(&self, vin: &str, token: &str) -> Result<bool> {
        let conn = self.lock();
        let stored: Option<Vec<u8>> = conn
            .query_row(
                "SELECT token_sha256 FROM vehicle_tokens WHERE vin = ?1",
                params![vin],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("look up a vehicle token"))?;
        if stored.is_some_and(|s| same(&s, &sha256(token.as_bytes()))) {
            return Ok(true);
        }
        let packed: Option<Vec<u8>> = conn
            .query_row(
                "SELECT secret_sha256 FROM packed_tokens WHERE vin = ?1",
                params![vin],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("look up a packed vehicle token"))?;
        Ok(packed.is_some_and(|p| {
            device_token_secret(token, vin)
                .is_some_and(|secret| same(&p, &sha256(secret.as_bytes())))
        }))
    }

    /// Record `vin`'s device token secret hash from a pack (replacing any earlier one).
    pub fn pack_token(&self, vin: &str, secret_sha256: &[u8]) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO packed_tokens (vin, secret_sha256) VALUES (?1, ?2)
                 ON CONFLICT (vin) DO UPDATE SET secret_sha256 = ?2",
                params![vin, secret_sha256],
            )
            .map_err(db("record a packed vehicle token"))?;
        Ok(())
    }

    // --- the queue ---

    /// Queue a manifest; its position (1 = next to go). Refused past `max`.
    pub fn enqueue(
        &self,
        vin: &str,
        body: &[u8],
        received_at: &str,
        max: u64,
    ) -> Result<(i64, u64)> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db("queue a manifest"))?;
        let len: i64 = tx
            .query_row("SELECT count(*) FROM queue", [], |r| r.get(0))
            .map_err(db("queue a manifest"))?;
        if len as u64 >= max {
            return Err(Error::QueueFull { len: len as u64 });
        }
        tx.execute(
            "INSERT INTO queue (vin, body, received_at) VALUES (?1, ?2, ?3)",
            params![vin, body, received_at],
        )
        .map_err(db("queue a manifest"))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(db("queue a manifest"))?;
        Ok((id, len as u64 + 1))
    }

    pub fn queue_head(&self) -> Result<Option<Queued>> {
        self.lock()
            .query_row(
                "SELECT id, vin, body, received_at FROM queue ORDER BY id LIMIT 1",
                [],
                |r| {
                    Ok(Queued {
                        id: r.get(0)?,
                        vin: r.get(1)?,
                        body: r.get(2)?,
                        received_at: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db("read the queue"))
    }

    /// Every queued manifest, in order.
    pub fn queued(&self) -> Result<Vec<Queued>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT id, vin, body, received_at FROM queue ORDER BY id")
            .map_err(db("read the queue"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Queued {
                    id: r.get(0)?,
                    vin: r.get(1)?,
                    body: r.get(2)?,
                    received_at: r.get(3)?,
                })
            })
            .map_err(db("read the queue"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db("read the queue"));
        rows
    }

    /// Length of the queue and its oldest receipt time.
    pub fn queue_stats(&self) -> Result<(u64, Option<String>)> {
        self.lock()
            .query_row(
                "SELECT count(*), (SELECT received_at FROM queue ORDER BY id LIMIT 1) FROM queue",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(db("measure the queue"))
    }

    /// Take a forwarded manifest off the queue and count it under `counter`.
    pub fn dequeue(&self, id: i64, counter: &str) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db("dequeue a manifest"))?;
        tx.execute("DELETE FROM queue WHERE id = ?1", params![id])
            .map_err(db("dequeue a manifest"))?;
        bump(&tx, counter, 1)?;
        tx.commit().map_err(db("dequeue a manifest"))
    }

    // --- counters and state ---

    pub fn count(&self, name: &str, by: i64) -> Result<()> {
        bump(&self.lock(), name, by)
    }

    pub fn counter(&self, name: &str) -> Result<i64> {
        self.lock()
            .query_row(
                "SELECT value FROM counters WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(db("read a counter"))
    }

    pub fn set_state(&self, name: &str, value: &str) -> Result<()> {
        self.lock()
            .execute(
                "INSERT INTO state (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = ?2",
                params![name, value],
            )
            .map_err(db("record state"))?;
        Ok(())
    }

    pub fn state(&self, name: &str) -> Result<Option<String>> {
        self.lock()
            .query_row(
                "SELECT value FROM state WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(db("read state"))
    }
}

fn bump(conn: &Connection, name: &str, by: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = value + ?2",
        params![name, by],
    )
    .map_err(db("count"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_keeps_arrival_order_across_reopen_and_limits_its_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path()).expect("open");
        assert_eq!(db.enqueue("A", b"1", "t1", 3).expect("q").1, 1);
        assert_eq!(db.enqueue("B", b"2", "t2", 3).expect("q").1, 2);
        assert_eq!(db.enqueue("A", b"3", "t3", 3).expect("q").1, 3);
        assert!(matches!(
            db.enqueue("A", b"4", "t4", 3),
            Err(Error::QueueFull { len: 3 })
        ));
        drop(db);
        let db = Db::open(dir.path()).expect("reopen");
        let head = db.queue_head().expect("head").expect("one");
        assert_eq!((head.vin.as_str(), head.body.as_slice()), ("A", &b"1"[..]));
        db.dequeue(head.id, "forwarded").expect("dequeue");
        let rest: Vec<_> = db
            .queued()
            .expect("queued")
            .into_iter()
            .map(|q| q.body)
            .collect();
        assert_eq!(rest, vec![b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(db.queue_stats().expect("stats"), (2, Some("t2".into())));
        assert_eq!(db.counter("forwarded").expect("counter"), 1);
    }

    #[test]
    fn a_vehicle_keeps_one_version_of_each_role_and_every_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path()).expect("open");
        for f in [
            "1.root.json",
            "2.root.json",
            "3.snapshot.json",
            "timestamp.json",
        ] {
            db.save_vehicle_file("V", f, f.as_bytes(), 0).expect("save");
        }
        db.save_vehicle_file("V", "4.snapshot.json", b"4", 0)
            .expect("save");
        assert_eq!(db.vehicle_file("V", "3.snapshot.json").expect("read"), None);
        assert_eq!(
            db.vehicle_file("V", "4.snapshot.json").expect("read"),
            Some(b"4".to_vec())
        );
        assert!(db.vehicle_file("V", "1.root.json").expect("read").is_some());
        assert!(db
            .vehicle_file("V", "timestamp.json")
            .expect("read")
            .is_some());
        assert!(db
            .vehicle_file("W", "timestamp.json")
            .expect("read")
            .is_none());
        assert!(!db.token_confirmed("V", "t").expect("tok"));
        db.confirm_token("V", "t").expect("confirm");
        assert!(db.token_confirmed("V", "t").expect("tok"));
        assert!(!db.token_confirmed("V", "u").expect("tok"));
    }
}
