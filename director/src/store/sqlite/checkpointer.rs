//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses `wal_autocheckpoint`
//! pages: that commit copies the WAL into the database file and fsyncs both while it holds the
//! writer, so every write queued behind it (each a vehicle's manifest, its request open) waits
//! for the disk, and under load both cores sat partly idle meanwhile. Here a thread with its
//! own connection checkpoints instead, in PASSIVE mode (it neither waits for nor blocks the
//! writer or the readers), once the writer has committed [`EVERY_COMMITS`] times, or
//! [`AT_MOST`] after the first commit it has not yet checkpointed. The writer keeps SQLite's
//! automatic checkpoint at [`BACKSTOP_PAGES`], far beyond what this thread lets build up, so
//! the WAL stays bounded should the thread ever fall behind.

use crate::Result;
use rusqlite::Connection;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The writer's own automatic checkpoint, in WAL pages: only reached if this thread falls
/// behind (about 40 MB with 4 KiB pages).
pub(super) const BACKSTOP_PAGES: u32 = 10_000;

/// Commits after which the thread checkpoints (a manifest's commit appends a few pages).
pub(super) const EVERY_COMMITS: u64 = 64;

/// Longest a committed page waits for its checkpoint when few commits come.
const AT_MOST: Duration = Duration::from_secs(5);

/// How often the thread looks at the commit count.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Checkpoint through `conn` (a read-write connection of its own) as `commits`, the
    /// writer's count of commits, grows.
    pub(super) fn start(conn: Connection, commits: Arc<AtomicU64>) -> Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = std::thread::Builder::new()
            .name("director-checkpoint".into())
            .spawn({
                let stop = stop.clone();
                move || run(&conn, &commits, &stop)
            })
            .map_err(|e| crate::Error::storage("start the WAL checkpoint thread", e))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panic in the thread is already reported by the panic hook; the connections
            // closing after this checkpoint what is left.
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, commits: &AtomicU64, stop: &(Mutex<bool>, Condvar)) {
    let (stopped, wake) = stop;
    let mut done = commits.load(Ordering::Relaxed);
    let mut oldest: Option<Instant> = None;
    // Warned once per run of failures (a full disk would fail every attempt).
    let mut failing = false;
    let mut guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        guard = wake
            .wait_timeout(guard, POLL)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *guard {
            return;
        }
        let now = commits.load(Ordering::Relaxed);
        if now == done {
            continue;
        }
        let since = *oldest.get_or_insert_with(Instant::now);
        if now - done < EVERY_COMMITS && since.elapsed() < AT_MOST {
            continue;
        }
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        }) {
            Ok((frames, copied)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("director database: WAL checkpoints work again");
                }
                tracing::trace!(frames, copied, "director database: WAL checkpoint");
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "director database: WAL checkpoint failed; retried after the next commits (the writer's own checkpoint at the backstop remains)");
                }
            }
        }
        done = now;
        oldest = None;
    }
}
