//! Connections with the Director's settings ([`connect`]) and a tiny pool of them: the writer
//! ([`Writer`], group commit) and a few reader connections, each behind its own mutex.
//!
//! Why this shape: in WAL mode readers never block the writer nor wait for it, so reads
//! (metadata fetches, the bulk of device traffic) scale over the reader connections while the
//! single writer serialises writes in-process. Every operation holds at most one connection
//! mutex and takes no other connection's lock while holding it, so there is no lock ordering to
//! get wrong and no deadlock.
//!
//! Transactions are begun and ended with cached statements rather than rusqlite's
//! `Transaction`, which parses `BEGIN`/`COMMIT` afresh each time.
//!
//! A panic inside a read poisons its reader's mutex; the connection is still sound (the read
//! transaction left open is rolled back by its next user), so the poison is cleared.

use super::checkpointer::BACKSTOP_PAGES;
use super::writer::{exec, heal, Writer};
use super::Durability;
use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

/// How long a connection waits for another process's lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (rusqlite's default is 16; the manifest path alone
/// uses about as many on the writer).
const STATEMENT_CACHE: usize = 64;

#[derive(Debug)]
pub(super) struct Pool {
    writer: Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    pub(super) fn new(writer: Connection, readers: Vec<Connection>) -> Self {
        for conn in std::iter::once(&writer).chain(&readers) {
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        }
        Pool {
            writer: Writer::new(writer),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next_reader: AtomicUsize::new(0),
        }
    }

    /// Run `f` in a write transaction: committed if `f` returns Ok (and this returns only once
    /// it is), rolled back otherwise (see [`Writer::write`]).
    pub(super) fn write<T>(&self, op: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.writer.write(op, f)
    }

    /// How many transactions the writer has committed, counted as they commit.
    pub(super) fn commits(&self) -> Arc<AtomicU64> {
        self.writer.commits()
    }

    /// Run `f` in one read transaction on a reader connection, so everything it reads comes
    /// from one consistent snapshot.
    pub(super) fn read<T>(&self, op: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.free_reader().unwrap_or_else(|| {
            let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
            lock(&self.readers[start])
        });
        read_on(&conn, op, f)
    }

    /// [`Pool::read`] if a reader connection is free right now; `None` (and `f` not run)
    /// rather than wait for one. For callers that must not block, such as an async task.
    pub(super) fn try_read<T>(
        &self,
        op: &str,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Option<Result<T>> {
        let conn = self.free_reader()?;
        Some(read_on(&conn, op, f))
    }

    /// A reader no one holds, looked for from a rotating index to spread the load.
    fn free_reader(&self) -> Option<MutexGuard<'_, Connection>> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        (0..n).find_map(|i| match self.readers[(start + i) % n].try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })
    }
}

/// `f` in one read transaction on `conn`.
fn read_on<T>(conn: &Connection, op: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    heal(conn);
    exec(conn, "BEGIN").map_err(|e| Error::storage(format!("{op}: begin read transaction"), e))?;
    let out = f(conn);
    // Ending a read transaction cannot lose anything; a failure here still means the
    // connection is in trouble, so report it (after the operation's own error, if any).
    let ended = exec(conn, "COMMIT");
    heal(conn);
    let out = out?;
    ended.map_err(|e| Error::storage(format!("{op}: end read transaction"), e))?;
    Ok(out)
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Creates the file, switches it to WAL, runs every write.
    Writer,
    /// Reads only: SQLite itself refuses a write on it.
    Reader,
    /// Runs WAL checkpoints ([`super::checkpointer`]).
    Checkpointer,
}

/// One connection with the Director's settings. The writer creates the file and switches it to
/// WAL (a property of the file, so readers opened afterwards see it too).
pub(super) fn connect(path: &Path, role: Role, durability: Durability) -> Result<Connection> {
    let op = |what: &str| format!("open {}: {what}", path.display());
    let writer = role == Role::Writer;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    if writer {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| Error::storage(op("connect"), e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Error::storage(op("busy_timeout"), e))?;
    if writer {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| Error::storage(op("journal_mode=WAL"), e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::storage(
                op("journal_mode=WAL"),
                format!("SQLite kept journal mode {mode:?}; expected \"wal\""),
            ));
        }
    }
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(|e| Error::storage(op("synchronous"), e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| Error::storage(op("foreign_keys=ON"), e))?;
    match role {
        // Checkpoints are the checkpointer's; the writer's own is only a backstop.
        Role::Writer => conn
            .pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
            .map_err(|e| Error::storage(op("wal_autocheckpoint"), e))?,
        // Readers never write: a bug that tries is refused by SQLite itself.
        Role::Reader => conn
            .pragma_update(None, "query_only", "ON")
            .map_err(|e| Error::storage(op("query_only"), e))?,
        Role::Checkpointer => {}
    }
    Ok(conn)
}
