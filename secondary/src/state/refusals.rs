//! Requests refused from the network: a `PUT /metadata` bundle or a `PUT /image` stream that
//! failed a check, from whoever can reach the ECU's port. Kept for the operator (`GET
//! /status`), apart from the signed version report: an unauthenticated caller must not be able
//! to write into what the ECU signs, nor grow `state.db`. The newest [`KEEP`] are kept, each
//! reason escaped and cut to [`MAX_REASON_CHARS`].

use super::State;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

/// How many refusals are kept (the oldest go first).
pub const KEEP: i64 = 64;

/// The longest reason kept, in characters, after escaping.
pub const MAX_REASON_CHARS: usize = 300;

/// One refused request, as `GET /status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRefusal {
    /// RFC 3339.
    pub at: String,
    /// The caller's address.
    pub peer: String,
    /// `PUT /metadata` or `PUT /image`.
    pub request: String,
    /// The failed check, escaped and bounded ([`excerpt`]).
    pub reason: String,
}

pub(crate) const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS network_refusals (id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, peer TEXT NOT NULL, request TEXT NOT NULL, reason TEXT NOT NULL);
";

/// `text` with every control character, quote and backslash escaped (Rust's `escape_debug`:
/// one line, nothing a terminal or log parser acts on), cut to [`MAX_REASON_CHARS`].
pub fn excerpt(text: &str) -> String {
    let escaped: String = text.chars().flat_map(char::escape_debug).collect();
    match escaped.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => format!(
            "{}… (cut at {MAX_REASON_CHARS} characters)",
            &escaped[..cut]
        ),
        None => escaped,
    }
}

impl State {
    /// Keep one refusal (its reason through [`excerpt`]) and drop all but the newest [`KEEP`].
    pub fn record_network_refusal(
        &mut self,
        at: DateTime<Utc>,
        peer: &str,
        request: &str,
        reason: &str,
    ) -> Result<()> {
        let path = self.path.clone();
        let db = |source| Error::State {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO network_refusals (at, peer, request, reason) VALUES (?1, ?2, ?3, ?4)",
            params![
                at.to_rfc3339(),
                excerpt(peer),
                excerpt(request),
                excerpt(reason)
            ],
        )
        .map_err(db)?;
        tx.execute(
            "DELETE FROM network_refusals WHERE id <= (SELECT MAX(id) FROM network_refusals) - ?1",
            [KEEP],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// The refusals kept, newest first.
    pub fn network_refusals(&self) -> Result<Vec<NetworkRefusal>> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, peer, request, reason FROM network_refusals ORDER BY id DESC")
            .map_err(self.db())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(NetworkRefusal {
                    at: r.get(0)?,
                    peer: r.get(1)?,
                    request: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .map_err(self.db())?;
        rows.collect::<rusqlite::Result<_>>().map_err(self.db())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_one_escaped_bounded_line() {
        assert_eq!(excerpt("plain"), "plain");
        assert_eq!(excerpt("a\nb\u{1b}[2J\"c\\"), "a\\nb\\u{1b}[2J\\\"c\\\\");
        let long = excerpt(&"x".repeat(10_000));
        assert!(long.starts_with(&"x".repeat(MAX_REASON_CHARS)));
        assert!(long.ends_with("(cut at 300 characters)"), "{long}");
        assert!(long.chars().count() < MAX_REASON_CHARS + 40);
    }

    #[test]
    fn only_the_newest_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state =
            State::open(&dir.path().join("state.db"), &Default::default()).expect("open");
        let at = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("time");
        for i in 0..KEEP + 10 {
            state
                .record_network_refusal(at, "127.0.0.1:1", "PUT /metadata", &format!("n{i}"))
                .expect("record");
        }
        let kept = state.network_refusals().expect("read");
        assert_eq!(kept.len() as i64, KEEP);
        assert_eq!(kept[0].reason, format!("n{}", KEEP + 9));
        assert_eq!(kept.last().expect("oldest").reason, "n10");
    }
}
