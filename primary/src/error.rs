use std::path::PathBuf;

/// Errors of the Primary, grouped by who is at fault. Each names the check that failed.
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

    // --- an offline bundle (a stick: untrusted until its metadata verified) ---
    #[error("bundle check failed: {path} is not in the bundle")]
    BundleMissing { path: String },
    #[error("bundle check failed: {path}: {reason}")]
    BundleUnsafe { path: String, reason: String },
    #[error("bundle check failed: {path} is larger than the {limit} bytes allowed")]
    BundleTooLarge { path: String, limit: u64 },

    // --- a valid update an ECU of this vehicle does not take ---
    #[error("{0}")]
    Depends(#[from] ferry_core::provides::DependsError),

    // --- an ECU refused or failed ---
    /// The primary's own ECU (the Secondary library in-process).
    #[error("ECU {serial}: {source}")]
    OwnEcu {
        serial: String,
        source: Box<ferry_secondary::Error>,
    },
    /// A Secondary answered with an error status; `reason` is its text, naming the check.
    #[error("ECU {serial}: {step} refused (HTTP {status}): {reason}")]
    Secondary {
        serial: String,
        step: &'static str,
        status: u16,
        reason: String,
    },
    /// A Secondary rebooting to finish an install did not come back with it installed.
    #[error("ECU {serial}: reboot check failed for {target}: {found}; expected {expected}")]
    Reboot {
        serial: String,
        target: String,
        found: String,
        expected: String,
    },
    #[error("ECU {serial}: {step} failed: {reason}")]
    SecondaryTransport {
        serial: String,
        step: &'static str,
        reason: String,
    },
    #[error("ECU identity check failed: {url} says it is {found:?}; expected ECU {expected:?}")]
    SecondaryIdentity {
        url: String,
        expected: String,
        found: String,
    },
    /// Used only inside a stream, to stop the download when an ECU stopped receiving; the
    /// ECU's own error is what is reported.
    #[error("image stream check failed: an ECU stopped receiving {target} before its end")]
    StreamStopped { target: String },
    #[error("partial bundle check failed: ECU {failed} is not ready ({reason}); no ECU installs")]
    NotAllReady { failed: String, reason: String },
    #[error("install check failed: {0}")]
    InstallsFailed(String),

    // --- the Director refused the vehicle manifest ---
    #[error("manifest upload failed: {url} answered HTTP {status}: {reason}")]
    ManifestRefused {
        url: String,
        status: u16,
        reason: String,
    },

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

impl Error {
    /// The own ECU's error, boxed (the Secondary's errors are large).
    pub fn own_ecu(serial: &str, source: ferry_secondary::Error) -> Error {
        Error::OwnEcu {
            serial: serial.to_owned(),
            source: Box::new(source),
        }
    }

    /// Whether the error is a failed security check on metadata or an image (what a version
    /// report lists in `attacks_detected`), as opposed to an unmet depends, a network
    /// failure or a local fault.
    pub fn is_attack(&self) -> bool {
        match self {
            Error::Metadata(e) => e.fault() == ferry_core::Fault::BadMetadata,
            // Slow retrieval is an attack on freshness (TUF), not only a bad network.
            Error::TooLarge { .. } | Error::TooSlow { .. } | Error::TargetNotFound(_) => true,
            // A link, a path out of the bundle, endless data: a stick built to attack.
            Error::BundleUnsafe { .. } | Error::BundleTooLarge { .. } => true,
            Error::OwnEcu { source, .. } => source.fault() == ferry_secondary::Fault::Attack,
            // 422: the Secondary's answer for a failed security check.
            Error::Secondary { status, .. } => *status == 422,
            _ => false,
        }
    }
}
