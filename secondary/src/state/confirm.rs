//! Application confirmation in the install journal (`confirm = "app"`). The daemon journals
//! `confirm` when the new version runs; `ferry-secondary confirm`, another process, moves it
//! to `confirmed`; the daemon commits, or at the deadline moves it to `rollback`. Both moves
//! are one conditional `UPDATE ... WHERE state = 'confirm'` in a transaction, so whichever
//! lands first wins and the other sees it lost: a confirmation is never both accepted and
//! rolled back. The window starts at the `confirm` row's time in `journal`, which survives a
//! restart, so a restart neither loses the wait nor extends it.

use super::journal::advance_in;
use super::State;
use crate::error::{Error, Result};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

impl State {
    /// When `confirm` was last journaled for the install in flight, if it is there now
    /// (`confirm` or `confirmed`): (state, time).
    pub fn confirm_window(&self) -> Result<Option<(String, DateTime<Utc>)>> {
        let row: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT t.state, (SELECT started_at FROM journal WHERE state = 'confirm'
                   ORDER BY id DESC LIMIT 1)
                 FROM install_txn t WHERE t.id = 1 AND t.state IN ('confirm', 'confirmed')",
                [],
                |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
            )
            .optional()
            .map_err(self.db())?;
        let Some((state, at)) = row else {
            return Ok(None);
        };
        let at = Utc
            .timestamp_opt(at, 0)
            .single()
            .ok_or_else(|| self.corrupt("install journal confirm time", at))?;
        Ok(Some((state, at)))
    }

    /// Move the install in flight from `confirm` to `to` (`confirmed`, or `rollback` with
    /// `reason`), only if it is still at `confirm`: whether it moved.
    pub fn leave_confirm(
        &mut self,
        to: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        // IMMEDIATE: the write lock before the read, so the other process cannot move the
        // state between them.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db.clone())?;
        let waiting: Option<String> = tx
            .query_row(
                "SELECT state FROM install_txn WHERE id = 1 AND state = 'confirm'",
                params![],
                |r| r.get(0),
            )
            .optional()
            .map_err(db.clone())?;
        if waiting.is_none() {
            return Ok(false);
        }
        advance_in(&tx, to, reason, now).map_err(db.clone())?;
        tx.commit().map_err(db)?;
        Ok(true)
    }
}
