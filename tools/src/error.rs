use std::path::PathBuf;

/// Errors of the `ferry` tool: those of the crates it drives, plus its own I/O and usage errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keys(#[from] ferry_keys::Error),
    #[error(transparent)]
    Core(#[from] ferry_core::Error),
    #[error(transparent)]
    Primary(#[from] ferry_primary::Error),
    #[error(transparent)]
    ImageRepo(#[from] ferry_image_repo::Error),
    #[error(transparent)]
    Director(#[from] ferry_director::Error),
    #[error(transparent)]
    Serve(#[from] ferry_image_repo::serve::ServeError),
    #[error(transparent)]
    Relay(#[from] ferry_relay::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin API {path}{}: {reason}", status.map(|s| format!(" answered {s}")).unwrap_or_default())]
    Admin {
        path: String,
        status: Option<u16>,
        reason: String,
    },
    #[error("usage: {0}")]
    Usage(String),
    /// A benchmark that could not measure what it set out to (the message names the check).
    #[error("bench: {0}")]
    Bench(String),
    /// A check of `ferry demo` or its world that failed: the message names the check and
    /// what was expected.
    #[error("{0}")]
    Check(String),
    /// The command printed its own report and asks for this exit code (e.g. 3: a ceremony is
    /// due); nothing more is printed.
    #[error("exit code {0}")]
    Exit(u8),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach a path to an I/O error.
pub fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
