//! The relay's one error type, grouped by who is at fault: its configuration, its upstream,
//! its own disk.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- configuration ---
    #[error("relay configuration check failed: {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    // --- upstream (unreachable, or answering what the relay cannot use) ---
    #[error("upstream check failed: {url}: {reason}")]
    Upstream { url: String, reason: String },
    #[error("upstream check failed: {url} answered {status}; expected 200")]
    UpstreamStatus { url: String, status: u16 },
    #[error("cache check failed: {what} is {len} bytes, more than the cache holds ({max} bytes, cache_max); expected a smaller file or a larger cache_max")]
    TooLarge { what: String, len: u64, max: u64 },

    // --- the relay's own storage ---
    #[error("relay storage failed: {op}: {source}")]
    Db {
        op: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("relay storage failed: {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("relay check failed: the queue holds {len} manifests, its limit (max_queue); expected the uplink to drain it")]
    QueueFull { len: u64 },
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Db {
        op: op.to_owned(),
        source,
    }
}
