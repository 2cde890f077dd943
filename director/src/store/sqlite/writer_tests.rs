//! Group commit: every acknowledged write is committed (visible on another connection when
//! `write` returns), failures undo only themselves, and a failed commit fails its whole batch.
#![allow(clippy::unwrap_used)]

use super::*;
use std::sync::atomic::Ordering;

/// A writer on a fresh WAL database with a parent table `p` (row 1) and a child table `t`
/// whose foreign key is checked at commit (deferred), and a second connection to read with.
fn writer() -> (tempfile::TempDir, Writer, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("writer.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;
         CREATE TABLE p (id INTEGER PRIMARY KEY);
         INSERT INTO p VALUES (1);
         CREATE TABLE t (k INTEGER PRIMARY KEY,
                         p INTEGER NOT NULL REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .unwrap();
    let reader = Connection::open(&path).unwrap();
    (dir, Writer::new(conn), reader)
}

fn insert(c: &Connection, k: i64, parent: i64) -> Result<()> {
    c.execute("INSERT INTO t (k, p) VALUES (?1, ?2)", [k, parent])
        .map(|_| ())
        .map_err(|e| Error::storage("insert", e))
}

fn stored(reader: &Connection, k: i64) -> bool {
    reader
        .query_row("SELECT count(*) FROM t WHERE k = ?1", [k], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
        == 1
}

fn count(reader: &Connection) -> i64 {
    reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn every_acknowledged_write_is_committed_and_failures_undo_only_themselves() {
    let (dir, writer, _) = writer();
    let path = dir.path().join("writer.db");
    std::thread::scope(|s| {
        for t in 0..8i64 {
            let (writer, path) = (&writer, &path);
            s.spawn(move || {
                let reader = Connection::open(path).unwrap();
                for i in 0..50i64 {
                    let k = t * 1000 + i;
                    writer.write("insert", |c| insert(c, k, 1)).unwrap();
                    // Committed, not merely written: another connection sees it.
                    assert!(
                        stored(&reader, k),
                        "write {k} acknowledged before its commit"
                    );
                    // A duplicate key fails, and rolls back only its own first row.
                    let failed = writer.write("duplicate", |c| {
                        insert(c, k + 500, 1)?;
                        insert(c, k, 1)
                    });
                    assert!(failed.is_err());
                }
            });
        }
    });
    let reader = Connection::open(&path).unwrap();
    assert_eq!(count(&reader), 8 * 50);
}

#[test]
fn a_failed_commit_fails_every_write_of_its_batch_and_stores_none_of_them() {
    let (_dir, writer, reader) = writer();
    let inside = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let good = s.spawn(|| {
            writer.write("good", |c| {
                insert(c, 1, 1)?;
                inside.store(true, Ordering::SeqCst);
                // Stay in the transaction until the bad write is queued behind this one, so
                // both are in one batch and the bad one commits it.
                while writer.queued.load(Ordering::SeqCst) == 0 {
                    std::thread::yield_now();
                }
                Ok(())
            })
        });
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Parent 99 does not exist: the deferred foreign key fails at COMMIT.
        let bad = writer.write("bad", |c| insert(c, 2, 99));
        let good = good.join().unwrap();
        let good_err = good.unwrap_err().to_string();
        assert!(good_err.contains("good: commit"), "{good_err}");
        let bad_err = bad.unwrap_err().to_string();
        assert!(bad_err.contains("bad: commit"), "{bad_err}");
    });
    assert_eq!(count(&reader), 0);
    // The connection is usable again.
    writer.write("after", |c| insert(c, 3, 1)).unwrap();
    assert!(stored(&reader, 3));
}

#[test]
fn a_panicking_write_is_undone_and_the_writer_still_works() {
    let (_dir, writer, reader) = writer();
    writer.write("insert", |c| insert(c, 1, 1)).unwrap();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = writer.write("panics", |c| -> Result<()> {
            insert(c, 2, 1)?;
            panic!("bug in a write");
        });
    }));
    assert!(panicked.is_err());
    writer.write("insert", |c| insert(c, 3, 1)).unwrap();
    let keys: Vec<i64> = reader
        .prepare("SELECT k FROM t ORDER BY k")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(keys, [1, 3]);
}
