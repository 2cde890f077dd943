//! The install journal in `state.db`: the install in flight (`install_txn`, at most one) and
//! the history of every transition (`journal`). A state is written, and synced (SQLite
//! `synchronous = FULL`), before the step it names runs, so after a power loss the row says
//! which step may have been cut short; [`crate::install::resume`] decides what to do with it.
//! The job is stored whole (target, signed length and hashes, custom) so a restart can finish
//! a commit or a rollback without the Primary or the metadata that announced it.

use super::{Outcome, State};
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::metadata::Hashes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What a restart needs to finish an install: everything the verified assignment said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub target: String,
    pub domain: String,
    pub length: u64,
    pub hashes: Hashes,
    /// The Image repository's custom metadata of the target, as signed.
    pub custom: serde_json::Value,
    pub counter_keys: Vec<String>,
    pub release_counter: u64,
    /// The staged image. Gone after a restart (staging is discarded at start), which is why
    /// a restart never resumes a step that reads it.
    pub image: PathBuf,
}

/// The install in flight: the last state journaled, and why it is failing, if it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub state: String,
    pub reason: Option<String>,
    pub job: JobRecord,
}

impl State {
    /// The custom metadata `job` was journaled with, decoded.
    pub fn job_custom(&self, job: &JobRecord) -> Result<ferry_core::metadata::uptane::ImageCustom> {
        serde_json::from_value(job.custom.clone())
            .map_err(|e| self.corrupt("install journal custom", e))
    }
}

/// Move the install in flight to `state` and append it to the history, inside the caller's
/// transaction. The first failure reason sticks: later steps of a rollback keep naming the
/// check that started it.
pub(crate) fn advance_in(
    conn: &Connection,
    state: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let changed = conn.execute(
        "UPDATE install_txn SET state = ?1, reason = COALESCE(reason, ?2) WHERE id = 1",
        params![state, reason],
    )?;
    if changed > 0 {
        conn.execute(
            "INSERT INTO journal (state, target, started_at, domain)
             SELECT ?1, target, ?2, domain FROM install_txn WHERE id = 1",
            params![state, now.timestamp()],
        )?;
    }
    Ok(())
}

impl State {
    /// Start an install at `state` (the first step). Refused while another is in flight: a
    /// restart must finish that one first.
    pub fn begin_install(
        &mut self,
        job: &JobRecord,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if let Some(other) = self.in_flight()? {
            return Err(Error::Order(if other.job.target == job.target {
                "this target's install is already in flight"
            } else {
                "another install is in flight; it finishes before a new one starts"
            }));
        }
        let text =
            serde_json::to_string(job).map_err(|e| self.corrupt("install journal job", e))?;
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        tx.execute(
            "INSERT INTO install_txn (id, domain, target, state, reason, job)
             VALUES (1, ?1, ?2, 'begin', NULL, ?3)",
            params![job.domain, job.target, text],
        )
        .map_err(db.clone())?;
        advance_in(&tx, state, None, now).map_err(db.clone())?;
        tx.commit().map_err(db)
    }

    /// Journal `state` for the install in flight, before it runs.
    pub fn advance(&mut self, state: &str, reason: Option<&str>, now: DateTime<Utc>) -> Result<()> {
        advance_in(&self.conn, state, reason, now).map_err(self.db())
    }

    /// A failed install's outcome, and journaling `failure`, in one transaction.
    pub fn record_install_failure(&mut self, outcome: &Outcome, now: DateTime<Utc>) -> Result<()> {
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        tx.execute(
            "UPDATE outcome SET target = ?1, result = ?2, detail = ?3, attacks_detected = ''
             WHERE id = 1",
            [
                outcome.target.as_str(),
                outcome.result.as_str(),
                &outcome.detail,
            ],
        )
        .map_err(db.clone())?;
        advance_in(&tx, "failure", None, now).map_err(db.clone())?;
        tx.commit().map_err(db)
    }

    /// The install is over (cleanup ran): nothing to resume.
    pub fn end_install(&mut self) -> Result<()> {
        self.conn
            .execute("DELETE FROM install_txn WHERE id = 1", [])
            .map_err(self.db())?;
        Ok(())
    }

    /// The install in flight, if any.
    pub fn in_flight(&self) -> Result<Option<InFlight>> {
        let row: Option<(String, Option<String>, String)> = self
            .conn
            .query_row(
                "SELECT state, reason, job FROM install_txn WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.db())?;
        let Some((state, reason, job)) = row else {
            return Ok(None);
        };
        let job = serde_json::from_str(&job).map_err(|e| self.corrupt("install journal job", e))?;
        Ok(Some(InFlight { state, reason, job }))
    }

    /// The journal, oldest first: (state, target).
    pub fn journal_entries(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, target FROM journal ORDER BY id")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
    }
}
