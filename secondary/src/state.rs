//! The ECU's `state.db` (SQLite, WAL): trusted metadata exactly as received, release counters,
//! the installed image and provides, the last install's outcome, the latest verified time and
//! the install journal. Whatever must change together changes in one transaction: new trusted
//! metadata with the verified time; the installed image with provides and release counters.
//!
//! Schema (version 3, `PRAGMA user_version`; an older database is migrated at open):
//! - `roots(repo, version, bytes)`: every root accepted, per repository (`director`, `image`)
//! - `metadata(repo, role, bytes)`: the trusted timestamp, snapshot, targets and delegated roles
//! - `clock(id = 1, max_time)`: the latest time metadata was verified at (unix seconds)
//! - `release_counters(image, counter)`: highest releaseCounter installed, per image key
//! - `installed(id = 1, target, length, hashes, custom)`: the latest target installed (the
//!   Uptane report's `installed_image`)
//! - `installed_domains(domain, target, length, hashes, custom)`: what each domain runs (v2)
//! - `provides(key, value)`
//! - `outcome(id = 1, target, result, detail, attacks_detected)`: the last install and the
//!   failed check of the last refused update
//! - `journal(id, state, target, started_at, domain)`: install transitions, each written before
//!   it runs (history; `domain` since v2)
//! - `install_txn(id = 1, domain, target, state, reason, job)`: the install in flight, if any:
//!   what a restart resumes ([`journal`], v2)
//! - `network_refusals(id, at, peer, request, reason)`: requests refused from the network,
//!   never signed, the newest few kept ([`refusals`], v3)

pub(crate) mod confirm;
pub(crate) mod journal;
mod operator;
pub(crate) mod refusals;

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::manifest::InstallResult;
use ferry_core::metadata::uptane::Domain;
use ferry_core::metadata::Hashes;
use ferry_core::uptane::Running;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The two repositories whose metadata an ECU keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repo {
    Director,
    Image,
}

impl Repo {
    pub fn as_str(self) -> &'static str {
        match self {
            Repo::Director => "director",
            Repo::Image => "image",
        }
    }
}

/// New trusted metadata of one repository, committed only once the whole bundle verified.
#[derive(Debug, Clone, Default)]
pub struct MetadataChanges {
    pub roots: Vec<(u64, Vec<u8>)>,
    pub put: BTreeMap<String, Vec<u8>>,
    pub removed: Vec<String>,
}

/// The image this ECU runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledImage {
    pub target: String,
    pub length: u64,
    pub hashes: Hashes,
    /// The Image repository's custom metadata of the target, as JSON.
    pub custom: serde_json::Value,
}

impl InstalledImage {
    /// What "already installed" needs to know of it.
    pub fn running(&self) -> Running<'_> {
        Running {
            target: &self.target,
            length: self.length,
            hashes: &self.hashes,
        }
    }
}

/// How the last update ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub target: String,
    pub result: InstallResult,
    pub detail: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS roots (repo TEXT NOT NULL, version INTEGER NOT NULL,
    bytes BLOB NOT NULL, PRIMARY KEY (repo, version));
CREATE TABLE IF NOT EXISTS metadata (repo TEXT NOT NULL, role TEXT NOT NULL,
    bytes BLOB NOT NULL, PRIMARY KEY (repo, role));
CREATE TABLE IF NOT EXISTS clock (id INTEGER PRIMARY KEY CHECK (id = 1),
    max_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS release_counters (image TEXT PRIMARY KEY,
    counter INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS installed (id INTEGER PRIMARY KEY CHECK (id = 1),
    target TEXT NOT NULL, length INTEGER NOT NULL, hashes TEXT NOT NULL, custom TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS provides (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcome (id INTEGER PRIMARY KEY CHECK (id = 1),
    target TEXT, result TEXT, detail TEXT, attacks_detected TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL, target TEXT NOT NULL, started_at INTEGER NOT NULL);
INSERT OR IGNORE INTO outcome (id, attacks_detected) VALUES (1, '');
";

/// Version 1 to 2: installed state per domain, and the install in flight.
const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS installed_domains (domain TEXT PRIMARY KEY, target TEXT NOT NULL,
    length INTEGER NOT NULL, hashes TEXT NOT NULL, custom TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS install_txn (id INTEGER PRIMARY KEY CHECK (id = 1),
    domain TEXT NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
    job TEXT NOT NULL);
ALTER TABLE journal ADD COLUMN domain TEXT NOT NULL DEFAULT '';
";

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) conn: Connection,
    pub(crate) path: PathBuf,
}

impl State {
    /// Open (creating if needed) `path`. A new database gets `initial_provides`.
    pub fn open(path: &Path, initial_provides: &BTreeMap<String, String>) -> Result<State> {
        let conn = Connection::open(path).map_err(|source| Error::State {
            path: path.to_owned(),
            source,
        })?;
        let mut state = State {
            conn,
            path: path.to_owned(),
        };
        state.init(initial_provides)?;
        Ok(state)
    }

    pub(crate) fn db(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |source| Error::State {
            path: self.path.clone(),
            source,
        }
    }

    pub(crate) fn corrupt(&self, what: &'static str, reason: impl ToString) -> Error {
        Error::StateCorrupt {
            path: self.path.clone(),
            what,
            reason: reason.to_string(),
        }
    }

    fn init(&mut self, initial_provides: &BTreeMap<String, String>) -> Result<()> {
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(db.clone())?;
        // Durability over speed: a power cut must not lose an install record.
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(db.clone())?;
        let tx = self.conn.transaction().map_err(db.clone())?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db.clone())?;
        if version == 0 {
            tx.execute_batch(SCHEMA).map_err(db.clone())?;
            for (k, v) in initial_provides {
                tx.execute("INSERT INTO provides (key, value) VALUES (?1, ?2)", [k, v])
                    .map_err(db.clone())?;
            }
            tx.execute_batch("PRAGMA user_version = 1")
                .map_err(db.clone())?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2).map_err(db.clone())?;
            // The one image a version-1 ECU recorded becomes its domain's (an app when the
            // target named none, as the ECU installed it).
            let old: Option<(String, i64, String, String)> = tx
                .query_row(
                    "SELECT target, length, hashes, custom FROM installed WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()
                .map_err(db.clone())?;
            if let Some((target, length, hashes, custom)) = old {
                let domain = serde_json::from_str::<serde_json::Value>(&custom)
                    .ok()
                    .and_then(|c| c["domain"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| Domain::DEFAULT.as_str().to_owned());
                tx.execute(
                    "INSERT OR REPLACE INTO installed_domains (domain, target, length, hashes,
                     custom) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![domain, target, length, hashes, custom],
                )
                .map_err(db.clone())?;
            }
            tx.execute_batch("PRAGMA user_version = 2")
                .map_err(db.clone())?;
        }
        if version < 3 {
            tx.execute_batch(refusals::SCHEMA_V3).map_err(db.clone())?;
            tx.execute_batch("PRAGMA user_version = 3")
                .map_err(db.clone())?;
        }
        tx.commit().map_err(db)
    }

    /// The newest trusted root of `repo`.
    pub fn root(&self, repo: Repo) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT bytes FROM roots WHERE repo = ?1 ORDER BY version DESC LIMIT 1",
                [repo.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    pub fn metadata(&self, repo: Repo, role: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .query_row(
                "SELECT bytes FROM metadata WHERE repo = ?1 AND role = ?2",
                [repo.as_str(), role],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
    }

    /// The latest time metadata was verified at.
    pub fn verified_time(&self) -> Result<Option<DateTime<Utc>>> {
        let secs: Option<i64> = self
            .conn
            .query_row("SELECT max_time FROM clock WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(self.db())?;
        secs.map(|s| DateTime::from_timestamp(s, 0).ok_or_else(|| self.corrupt("verified time", s)))
            .transpose()
    }

    /// Keep new trusted metadata of both repositories and the time it verified at, all or
    /// nothing. The stored time only moves forward.
    pub fn commit_metadata(
        &mut self,
        changes: &[(Repo, &MetadataChanges)],
        verified_at: DateTime<Utc>,
    ) -> Result<()> {
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        for (repo, change) in changes {
            let repo = repo.as_str();
            for (version, bytes) in &change.roots {
                tx.execute(
                    "INSERT OR REPLACE INTO roots (repo, version, bytes) VALUES (?1, ?2, ?3)",
                    params![repo, *version as i64, bytes],
                )
                .map_err(db.clone())?;
            }
            for role in &change.removed {
                tx.execute(
                    "DELETE FROM metadata WHERE repo = ?1 AND role = ?2",
                    [repo, role],
                )
                .map_err(db.clone())?;
            }
            for (role, bytes) in &change.put {
                tx.execute(
                    "INSERT OR REPLACE INTO metadata (repo, role, bytes) VALUES (?1, ?2, ?3)",
                    params![repo, role, bytes],
                )
                .map_err(db.clone())?;
            }
        }
        tx.execute(
            "INSERT INTO clock (id, max_time) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET max_time = MAX(max_time, excluded.max_time)",
            [verified_at.timestamp()],
        )
        .map_err(db.clone())?;
        tx.commit().map_err(db)
    }

    /// Every release counter this ECU keeps, by identity ([`ferry_core::uptane::counter_keys`]).
    pub fn release_counters(&self) -> Result<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image, counter FROM release_counters")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(self.db())?;
        let mut counters = BTreeMap::new();
        for row in rows {
            let (image, counter) = row.map_err(self.db())?;
            counters.insert(image, counter.max(0) as u64);
        }
        Ok(counters)
    }

    pub fn installed(&self) -> Result<Option<InstalledImage>> {
        let row: Option<(String, i64, String, String)> = self
            .conn
            .query_row(
                "SELECT target, length, hashes, custom FROM installed WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.db())?;
        let Some((target, length, hashes, custom)) = row else {
            return Ok(None);
        };
        Ok(Some(InstalledImage {
            target,
            length: length.max(0) as u64,
            hashes: serde_json::from_str(&hashes)
                .map_err(|e| self.corrupt("installed image hashes", e))?,
            custom: serde_json::from_str(&custom)
                .map_err(|e| self.corrupt("installed image custom", e))?,
        }))
    }

    pub fn provides(&self) -> Result<BTreeMap<String, String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM provides ORDER BY key")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<BTreeMap<String, String>>>()
            .map_err(self.db())
    }

    /// What each domain runs, by domain.
    pub fn installed_domains(&self) -> Result<BTreeMap<String, InstalledImage>> {
        let mut stmt = self
            .conn
            .prepare("SELECT domain, target, length, hashes, custom FROM installed_domains")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(self.db())?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (domain, target, length, hashes, custom) = row.map_err(self.db())?;
            let image = InstalledImage {
                target,
                length: length.max(0) as u64,
                hashes: serde_json::from_str(&hashes)
                    .map_err(|e| self.corrupt("installed domain hashes", e))?,
                custom: serde_json::from_str(&custom)
                    .map_err(|e| self.corrupt("installed domain custom", e))?,
            };
            out.insert(domain, image);
        }
        Ok(out)
    }

    /// A successful install in `domain`: the latest installed image, the domain's image, the
    /// merged provides, the release counters and the outcome, in one transaction (DESIGN.md:
    /// provides update with the install state). An install in flight moves to `cleanup` in
    /// the same transaction, so a restart never commits twice nor forgets the commit.
    pub fn record_install(
        &mut self,
        domain: &str,
        image: &InstalledImage,
        provides: &BTreeMap<String, String>,
        counters: (&[String], u64),
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (counter_keys, counter) = counters;
        let (hashes, custom) = self.image_json(image)?;
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        write_running(&tx, domain, image, (&hashes, &custom), provides).map_err(db.clone())?;
        for key in counter_keys {
            tx.execute(
                "INSERT INTO release_counters (image, counter) VALUES (?1, ?2)
                 ON CONFLICT (image) DO UPDATE SET counter = MAX(counter, excluded.counter)",
                params![key, counter as i64],
            )
            .map_err(db.clone())?;
        }
        tx.execute(
            "UPDATE outcome SET target = ?1, result = 'success', detail = ?2 WHERE id = 1",
            [&image.target, detail],
        )
        .map_err(db.clone())?;
        journal::advance_in(&tx, "cleanup", None, now).map_err(db.clone())?;
        tx.commit().map_err(db)
    }

    /// An image's hashes and custom metadata as the columns store them.
    pub(crate) fn image_json(&self, image: &InstalledImage) -> Result<(String, String)> {
        let hashes = serde_json::to_string(&image.hashes)
            .map_err(|e| self.corrupt("installed image hashes", e))?;
        let custom = serde_json::to_string(&image.custom)
            .map_err(|e| self.corrupt("installed image custom", e))?;
        Ok((hashes, custom))
    }

    /// A refused or failed update. `attack` also records the failed check as the report's
    /// `attacks_detected`; anything else clears it.
    pub fn record_failure(&mut self, outcome: &Outcome, attack: bool) -> Result<()> {
        let attacks = if attack { outcome.detail.as_str() } else { "" };
        self.conn
            .execute(
                "UPDATE outcome SET target = ?1, result = ?2, detail = ?3, attacks_detected = ?4
                 WHERE id = 1",
                [
                    outcome.target.as_str(),
                    outcome.result.as_str(),
                    &outcome.detail,
                    attacks,
                ],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// The last install's outcome, and the failed check of the last refused update ("" if
    /// the last update was not refused as an attack).
    pub fn outcome(&self) -> Result<(Option<Outcome>, String)> {
        let (target, result, detail, attacks): (
            Option<String>,
            Option<String>,
            Option<String>,
            String,
        ) = self
            .conn
            .query_row(
                "SELECT target, result, detail, attacks_detected FROM outcome WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(self.db())?;
        let outcome = match (target, result, detail) {
            (Some(target), Some(result), Some(detail)) => Some(Outcome {
                target,
                result: InstallResult::parse(&result).ok_or_else(|| Error::StateCorrupt {
                    path: self.path.clone(),
                    what: "last install result",
                    reason: format!("{result:?}; expected success, failure or rolled-back"),
                })?,
                detail,
            }),
            _ => None,
        };
        Ok((outcome, attacks))
    }
}

/// Inside the caller's transaction: `domain` runs `image` (also the latest installed image)
/// with `provides`, replacing the provides before. Shared by an install's commit and an
/// operator's rollback, so the two cannot drift apart.
pub(crate) fn write_running(
    tx: &rusqlite::Transaction<'_>,
    domain: &str,
    image: &InstalledImage,
    (hashes, custom): (&str, &str),
    provides: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO installed (id, target, length, hashes, custom)
         VALUES (1, ?1, ?2, ?3, ?4)",
        params![image.target, image.length as i64, hashes, custom],
    )?;
    tx.execute(
        "INSERT OR REPLACE INTO installed_domains (domain, target, length, hashes, custom)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![domain, image.target, image.length as i64, hashes, custom],
    )?;
    tx.execute("DELETE FROM provides", [])?;
    for (k, v) in provides {
        tx.execute("INSERT INTO provides (key, value) VALUES (?1, ?2)", [k, v])?;
    }
    Ok(())
}
