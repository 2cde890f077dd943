use std::path::PathBuf;

/// Errors of the Primary's fetching and updating, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the repository or the network path is at fault (or hostile) ---
    #[error(transparent)]
    Metadata(#[from] ferry_core::Error),
    #[error("download check failed: {url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error(
        "download check failed: {url} is larger than the {limit} bytes allowed (endless data)"
    )]
    TooLarge { url: String, limit: u64 },
    #[error("download speed check failed: {url} delivered {bytes} bytes in {seconds}s, below the minimum of {minimum} bytes/s (slow retrieval)")]
    TooSlow {
        url: String,
        bytes: u64,
        seconds: u64,
        minimum: u64,
    },
    #[error("download failed: {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("target lookup failed: {0} is not listed by any role on its delegation path")]
    TargetNotFound(String),
    #[error("root rotation check failed: more than {0} root versions in one update")]
    TooManyRootRotations(u64),

    // --- local state or configuration is at fault ---
    #[error("trusted metadata check failed: no trusted root in {0} (run init first)")]
    NoTrustedRoot(PathBuf),
    #[error("configuration check failed: {0}")]
    Config(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
