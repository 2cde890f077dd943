//! What every PostgreSQL table module uses: cached statements, error classification (an
//! unreachable server is [`Error::DatabaseUnavailable`], answered 503; anything else a storage
//! failure) and conversions of stored values.

use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Row, Statement};

pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// The rows of `sql` (a statement prepared once per connection and cached).
pub(super) async fn query(
    c: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg(op))?;
    c.query(&stmt, params).await.map_err(pg(op))
}

/// The one row of `sql`, if any (more than one is an error).
pub(super) async fn query_opt(
    c: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>> {
    let stmt = c.prepare_cached(sql).await.map_err(pg(op))?;
    c.query_opt(&stmt, params).await.map_err(pg(op))
}

/// `sql`'s statements, each prepared once per connection and cached: what a pipeline
/// prepares before it sends anything. A statement still to be prepared would go out behind
/// its Parse round trip, after requests polled later, so a pipeline whose order matters
/// (its first statement takes a lock) prepares them all first.
pub(super) async fn prepare_all<const N: usize>(
    c: &impl GenericClient,
    op: &'static str,
    sql: [&str; N],
) -> Result<[Statement; N]> {
    let mut out = Vec::with_capacity(N);
    for s in sql {
        out.push(c.prepare_cached(s).await.map_err(pg(op))?);
    }
    out.try_into()
        .map_err(|_| Error::corrupt(op, "prepared statements miscounted"))
}

/// How many rows `sql` changed.
pub(super) async fn execute(
    c: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: &[Param<'_>],
) -> Result<u64> {
    let stmt = c.prepare_cached(sql).await.map_err(pg(op))?;
    c.execute(&stmt, params).await.map_err(pg(op))
}

/// Column `i` of `row`; a value of another type than expected is a corrupt row.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize, what: &str) -> Result<T> {
    row.try_get(i).map_err(|e| Error::corrupt(what, e))
}

/// `map_err` for a statement that failed.
pub(super) fn pg(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |e| classify(op, e)
}

/// A failed statement as the Director's error: the server gone or refusing connections is
/// [`Error::DatabaseUnavailable`] (the pool reconnects when it is back); the rest is
/// [`Error::Storage`].
pub(super) fn classify(op: &str, e: tokio_postgres::Error) -> Error {
    if is_unreachable(&e) {
        Error::DatabaseUnavailable {
            op: op.to_owned(),
            detail: e.to_string(),
        }
    } else {
        Error::storage(op.to_owned(), e)
    }
}

fn is_unreachable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
            ]
            .contains(code);
    }
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// The constraint a UNIQUE or PRIMARY KEY violation names, if `e` is one.
pub(super) fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    let db = e.as_db_error()?;
    (*db.code() == SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or(""))
}

/// Whether a transaction failed only because another one ran at the same time (a deadlock
/// or a serialization failure): running it again is the remedy PostgreSQL prescribes.
pub(super) fn is_retryable(e: &Error) -> bool {
    let Error::Storage { source, .. } = e else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|c| {
            *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        })
}

pub(super) fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::corrupt(what, e))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::corrupt(what, e))
}

pub(super) use crate::store::sqlite::{from_ms, ms, version_from_sql, version_to_sql};
