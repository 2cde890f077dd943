//! A tiny connection pool: one writer connection behind a mutex and a few reader connections,
//! each behind its own mutex.
//!
//! Why this shape: SQLite allows one writer at a time per database anyway, so a single writer
//! connection serialises writes in-process instead of having connections fight over the lock
//! with SQLITE_BUSY retries; in WAL mode readers never block the writer nor wait for it, so
//! reads (metadata fetches, the bulk of device traffic) scale over the reader connections.
//! Every operation holds exactly one connection mutex and takes no other lock while holding
//! it, so there is no lock ordering to get wrong and no deadlock. Write transactions start
//! with BEGIN IMMEDIATE: they take SQLite's write lock up front, so a transaction never has to
//! upgrade a read lock (an upgrade that fails with SQLITE_BUSY immediately, regardless of
//! busy_timeout, if another process such as the `ferry` CLI writes at the same moment).
//!
//! A panic inside an operation poisons its mutex; the connection is still sound (the open
//! transaction was rolled back when it was dropped during unwinding), so the poison is cleared.

use crate::{Error, Result};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

#[derive(Debug)]
pub(super) struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    pub(super) fn new(writer: Connection, readers: Vec<Connection>) -> Self {
        Pool {
            writer: Mutex::new(writer),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next_reader: AtomicUsize::new(0),
        }
    }

    /// Run `f` in one write transaction: committed if `f` returns Ok, rolled back otherwise.
    pub(super) fn write<T>(
        &self,
        op: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::storage(format!("{op}: begin write transaction"), e))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(|e| Error::storage(format!("{op}: commit"), e))?;
        Ok(out)
    }

    /// Run `f` in one read transaction on a reader connection, so everything it reads comes
    /// from one consistent snapshot.
    pub(super) fn read<T>(
        &self,
        op: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.reader();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| Error::storage(format!("{op}: begin read transaction"), e))?;
        let out = f(&tx)?;
        // Ending a read transaction cannot lose anything; a failure here still means the
        // connection is in trouble, so report it.
        tx.finish()
            .map_err(|e| Error::storage(format!("{op}: end read transaction"), e))?;
        Ok(out)
    }

    /// A free reader if there is one (starting from a rotating index, to spread the load),
    /// otherwise wait for the one at that index.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        lock(&self.readers[start])
    }
}
