use std::path::PathBuf;

/// Errors of the Image repository editor, grouped by who is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the request itself is refused (the operator or a supplier asked for something unsafe) ---
    #[error("delegation check failed: target {target} is outside the paths delegated to {role} ({paths})")]
    OutsideDelegation {
        target: String,
        role: String,
        paths: String,
    },
    #[error("version check failed: {role} would be published as version {new}, not above the published version {published}")]
    VersionNotIncreasing {
        role: String,
        published: u64,
        new: u64,
    },
    #[error("signature check failed: {role} has changes signed by {valid} of the {threshold} keys it needs; sign it with `ferry repo sign-role DIR {role} --key KEY`")]
    NotSigned {
        role: String,
        valid: usize,
        threshold: u32,
    },
    #[error("signature check failed: {role} has changes signed by {valid} of the {threshold} keys it needs, and its keys are offline: run its key ceremony (`ferry repo {role} propose DIR --out proposal.json`, `ferry proposal sign` by the holders, `ferry proposal merge`, `ferry repo {role} import DIR FILE`)")]
    NeedsCeremony {
        role: String,
        valid: usize,
        threshold: u32,
    },
    #[error("key check failed: key {keyid} is not one of the keys that may sign {role}")]
    KeyNotAuthorised { keyid: String, role: String },
    #[error("role check failed: no role {0} in this repository")]
    NoSuchRole(String),
    #[error("target check failed: no target {0} in this repository")]
    NoSuchTarget(String),
    #[error("repository check failed: {0}")]
    Invalid(String),
    #[error(transparent)]
    Metadata(#[from] ferry_core::Error),
    #[error(transparent)]
    Keys(#[from] ferry_keys::Error),

    // --- the repository directory or its configuration is at fault ---
    #[error("configuration check failed: {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("repository check failed: {0} is not a Ferry repository (no ferry-repo.toml); run `ferry repo init` first")]
    NotARepository(PathBuf),
    #[error("repository check failed: {0} already holds a repository")]
    AlreadyExists(PathBuf),
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
