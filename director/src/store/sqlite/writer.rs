//! The writer connection, with group commit.
//!
//! SQLite allows one writer at a time per database, so one writer connection serialises the
//! process's writes instead of having connections fight over the lock with SQLITE_BUSY retries.
//! Transactions start with BEGIN IMMEDIATE: they take SQLite's write lock up front, so a
//! transaction never has to upgrade a read lock (an upgrade that fails with SQLITE_BUSY at once,
//! whatever busy_timeout says, if another process such as the `ferry` CLI writes meanwhile).
//!
//! Group commit: a commit costs a WAL append of every page the transaction touched (and, now
//! and then, a checkpoint); writes that arrive together mostly touch the same pages (the
//! manifests table's last page, the indexes' last pages), so one commit for all of them costs
//! little more than one for each. A write runs in a savepoint of a transaction that stays open
//! while other writes are queued for the connection; the last of them (or the [`MAX_BATCH`]th)
//! commits for all. A write that fails is rolled back to its savepoint without touching the
//! others.
//!
//! What a caller may rely on is unchanged: `write` returns only once the transaction holding
//! its changes has committed, so a 2xx acknowledged after it is as durable as with a commit per
//! write. If that commit (or anything before it) fails, every write of the batch returns the
//! error, failed ones included: they may have read the batch's uncommitted rows (a nonce seen
//! as reused), so their own verdict is void too.
//!
//! Each batch's outcome is its own shared cell, handed to every member, so a member learns
//! exactly its own batch's result however many batches end before it wakes up.

use crate::{Error, Result};
use rusqlite::Connection;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// Most writes one commit takes: bounds how long the first write of a batch waits.
const MAX_BATCH: usize = 32;

#[derive(Debug)]
pub(super) struct Writer {
    inner: Mutex<Inner>,
    /// Writes waiting for `inner`. While any are, a finished write leaves its batch open for
    /// them instead of committing it.
    queued: AtomicUsize,
    /// Transactions committed so far (the checkpointer's cue).
    commits: Arc<AtomicU64>,
}

#[derive(Debug)]
struct Inner {
    conn: Connection,
    open: Option<Batch>,
}

/// The open transaction: how many writes finished in it, and where its outcome goes.
#[derive(Debug)]
struct Batch {
    members: usize,
    outcome: Arc<Outcome>,
}

/// How a batch ended: `None` while open, then committed (`Ok`) or rolled back (`Err`, why).
#[derive(Debug, Default)]
struct Outcome {
    ended: Mutex<Option<std::result::Result<(), String>>>,
    changed: Condvar,
}

impl Outcome {
    fn set(&self, result: std::result::Result<(), String>) {
        *lock(&self.ended) = Some(result);
        self.changed.notify_all();
    }

    fn wait(&self) -> std::result::Result<(), String> {
        let mut ended = lock(&self.ended);
        loop {
            if let Some(result) = ended.as_ref() {
                return result.clone();
            }
            ended = self
                .changed
                .wait(ended)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A panic never leaves the protected data half-changed here (see [`Writer::write`]), so a
/// poisoned lock is taken as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run one statement without results, prepared once per connection.
pub(super) fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Roll back a transaction left open (by a panic, or by a failed COMMIT that SQLite kept
/// open), so the connection can be used again.
pub(super) fn heal(conn: &Connection) {
    if !conn.is_autocommit() {
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "director database: leftover transaction not rolled back");
        }
    }
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Writer {
            inner: Mutex::new(Inner { conn, open: None }),
            queued: AtomicUsize::new(0),
            commits: Arc::default(),
        }
    }

    pub(super) fn commits(&self) -> Arc<AtomicU64> {
        self.commits.clone()
    }

    /// Run `f` in a write transaction: its changes are committed if it returns Ok, and this
    /// returns only once they are; rolled back if it returns an error or panics.
    pub(super) fn write<T>(&self, op: &str, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut guard = lock(&self.inner);
        self.queued.fetch_sub(1, Ordering::SeqCst);
        let inner = &mut *guard;
        let outcome = match &inner.open {
            Some(batch) => batch.outcome.clone(),
            None => {
                heal(&inner.conn);
                exec(&inner.conn, "BEGIN IMMEDIATE")
                    .map_err(|e| Error::storage(format!("{op}: begin write transaction"), e))?;
                let outcome = Arc::<Outcome>::default();
                inner.open = Some(Batch {
                    members: 0,
                    outcome: outcome.clone(),
                });
                outcome
            }
        };
        if let Err(e) = exec(&inner.conn, "SAVEPOINT director_write") {
            self.end(inner, Err(format!("savepoint failed: {e}")));
            return Err(Error::storage(format!("{op}: savepoint"), e));
        }
        let conn = &inner.conn;
        let ran = catch_unwind(AssertUnwindSafe(|| f(conn)));
        let kept = match &ran {
            Ok(Ok(_)) => exec(conn, "RELEASE director_write"),
            _ => exec(conn, "ROLLBACK TO director_write")
                .and_then(|()| exec(conn, "RELEASE director_write")),
        };
        // A hard error (disk full, I/O) makes SQLite roll back the whole transaction: every
        // write of the batch is lost, and each must fail.
        let healthy = kept.map_err(|e| e.to_string()).and_then(|()| {
            if conn.is_autocommit() {
                Err("SQLite rolled the transaction back".to_owned())
            } else {
                Ok(())
            }
        });
        if let Err(reason) = &healthy {
            self.end(inner, Err(reason.clone()));
        } else if let Some(batch) = inner.open.as_mut() {
            batch.members += 1;
            let pass_on = self.queued.load(Ordering::SeqCst) > 0 && batch.members < MAX_BATCH;
            if !pass_on {
                let committed = exec(&inner.conn, "COMMIT").map_err(|e| e.to_string());
                if committed.is_ok() {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
                self.end(inner, committed);
            }
        }
        drop(guard);
        let out = match ran {
            Ok(out) => out,
            // The write is undone and its batch in good hands: let the panic go on.
            Err(panic) => resume_unwind(panic),
        };
        if let Err(reason) = healthy {
            return out.and(Err(Error::storage(format!("{op}: write"), reason)));
        }
        match outcome.wait() {
            Ok(()) => out,
            Err(reason) => Err(Error::storage(format!("{op}: commit"), reason)),
        }
    }

    /// End the open batch with `result` (its COMMIT's, or why it is rolled back) and wake its
    /// members.
    fn end(&self, inner: &mut Inner, result: std::result::Result<(), String>) {
        if let Err(reason) = &result {
            heal(&inner.conn);
            tracing::error!(%reason, "director database: write batch rolled back");
        }
        if let Some(batch) = inner.open.take() {
            batch.outcome.set(result);
        }
    }
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
