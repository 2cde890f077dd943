//! Everything the Secondary refuses or fails at, grouped by who is at fault. Each message names
//! the check that failed and what was expected.

use ferry_core::provides::DependsError;
use std::path::PathBuf;

/// Who is at fault: decides what the version report records and which HTTP status answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Metadata or image failed a security check: reported in `attacks_detected`.
    Attack,
    /// A valid update this ECU does not accept (depends not met, wrong order of requests).
    Refused,
    /// The request itself is too large.
    TooLarge,
    /// Configuration or local state.
    Local,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- bad metadata, a bad image, or an attack ---
    #[error(transparent)]
    Metadata(#[from] ferry_core::Error),
    /// A metadata check failed by one repository's metadata, named with that repository.
    #[error("{repo} repository metadata: {source}")]
    RepoMetadata {
        repo: &'static str,
        #[source]
        source: ferry_core::Error,
    },
    #[error("bundle format check failed: {0}")]
    Bundle(String),
    #[error("bundle check failed: {repo} {role} is not in the metadata bundle")]
    NotInBundle { repo: &'static str, role: String },
    #[error("bundle size check failed: {repo} {role} is longer than the {limit} bytes allowed")]
    MetadataTooLong {
        repo: &'static str,
        role: String,
        limit: u64,
    },
    #[error("image length check failed: image for {target} is longer than the {limit} bytes signed (endless data)")]
    EndlessData { target: String, limit: u64 },
    /// A container image archive that is not a sound OCI image layout (install/container).
    #[error("OCI archive check failed: {check}: {detail}")]
    OciArchive { check: &'static str, detail: String },
    /// A Mender artifact that is not sound format version 3, or that Ferry cannot honour
    /// (`crate::mender`).
    #[error("Mender artifact check failed: {check}: {detail}")]
    MenderArtifact { check: &'static str, detail: String },

    // --- a valid update this ECU will not take now ---
    #[error(transparent)]
    Depends(#[from] DependsError),
    #[error("request order check failed: {0}")]
    Order(&'static str),
    #[error("offline update check failed: this partial-verification ECU pins no offline-update-targets key (offline_targets_key in its config), so it takes no offline bundle")]
    OfflineNotProvisioned,
    /// A target this ECU's installer for its domain cannot take (a Mender artifact for a
    /// domain that does not unpack artifacts).
    #[error("target kind check failed: target {target}: {detail}")]
    TargetKind { target: String, detail: String },
    #[error("domain check failed: target {target} is for domain {domain:?}; this ECU installs: {installed}")]
    NoInstaller {
        target: String,
        domain: String,
        installed: String,
    },
    /// A runtime hook, health check or update module exited non-zero.
    #[error("{what} failed: {program} {status}, expected exit status 0; stderr: {stderr}")]
    Command {
        what: String,
        program: String,
        status: String,
        stderr: String,
    },
    /// An update module broke the Update Module protocol or cannot do what was asked.
    #[error("update module {module} check failed at {state}: {detail}")]
    UpdateModule {
        module: String,
        state: &'static str,
        detail: String,
    },
    /// An `os` domain check (slot contents, boot slot, boot count, health check).
    #[error("{check} check failed: {found}, expected {expected}")]
    OsCheck {
        check: &'static str,
        found: String,
        expected: String,
    },
    #[error("boot control check failed: {what}: {reason}")]
    BootControl { what: String, reason: String },
    #[error("install of {target} failed at {step}: {detail}; {outcome}")]
    InstallFailed {
        target: String,
        step: &'static str,
        detail: String,
        outcome: &'static str,
    },

    // --- too large a request ---
    #[error("request size check failed: {what} is longer than the {limit} bytes allowed")]
    TooLarge { what: &'static str, limit: u64 },

    // --- misconfiguration or local I/O ---
    #[error("configuration check failed: {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("key check failed: {}", with_path(.path, .source))]
    Key {
        path: PathBuf,
        source: ferry_keys::Error,
    },
    #[error("state database {path}: {source}")]
    State {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database {path}: stored {what} is unreadable: {reason}")]
    StateCorrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `source`, preceded by `path` unless it names the path itself (most key errors do).
fn with_path(path: &std::path::Path, source: &dyn std::fmt::Display) -> String {
    let text = source.to_string();
    let shown = path.display().to_string();
    if text.contains(&shown) {
        text
    } else {
        format!("{shown}: {text}")
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// This error named with `repo` ("Director" or "Image"), when it is a metadata check.
    pub(crate) fn in_repo(self, repo: &'static str) -> Error {
        match self {
            Error::Metadata(source) => Error::RepoMetadata { repo, source },
            other => other,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            Error::Metadata(e) | Error::RepoMetadata { source: e, .. }
                if e.fault() != ferry_core::Fault::BadMetadata =>
            {
                Fault::Local
            }
            Error::Metadata(_)
            | Error::RepoMetadata { .. }
            | Error::Bundle(_)
            | Error::NotInBundle { .. }
            | Error::MetadataTooLong { .. }
            | Error::EndlessData { .. }
            | Error::OciArchive { .. }
            | Error::MenderArtifact { .. } => Fault::Attack,
            Error::Depends(_)
            | Error::Order(_)
            | Error::NoInstaller { .. }
            | Error::TargetKind { .. }
            | Error::OfflineNotProvisioned => Fault::Refused,
            Error::TooLarge { .. } => Fault::TooLarge,
            Error::InstallFailed { .. }
            | Error::OsCheck { .. }
            | Error::BootControl { .. }
            | Error::Command { .. }
            | Error::UpdateModule { .. }
            | Error::Config { .. }
            | Error::Key { .. }
            | Error::State { .. }
            | Error::StateCorrupt { .. }
            | Error::Io { .. } => Fault::Local,
        }
    }
}
