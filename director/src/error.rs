//! The Director's one error type, grouped by who is at fault: the device (or an attacker
//! speaking for it), the operator, or the storage underneath. Every message names the check
//! that failed and what was expected, so an HTTP status and a log line can be derived from it.

/// A boxed backend error, so the [`crate::store::Store`] trait does not leak one database
/// library into its callers (a PostgreSQL backend will bring another).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the device is at fault, or an attacker replays or forges what it sends ---
    #[error("nonce check failed: vehicle {vin} already sent an accepted manifest with nonce {nonce:?}; expected a fresh nonce every update cycle")]
    NonceReused { vin: String, nonce: String },
    #[error("manifest check failed: report from ECU {serial}, which is not registered to vehicle {vin}; expected reports only from the vehicle's registered ECUs")]
    ReportFromUnknownEcu { vin: String, serial: String },
    #[error(transparent)]
    Manifest(#[from] ferry_core::Error),
    #[error("hardware check failed: target {target} is for hardware ids {allowed:?}; ECU {serial} is {hardware_id:?}")]
    HardwareMismatch {
        target: String,
        serial: String,
        hardware_id: String,
        allowed: Vec<String>,
    },
    #[error("assignment of {target} to ECU {serial} refused: {source}")]
    Depends {
        target: String,
        serial: String,
        #[source]
        source: ferry_core::provides::DependsError,
    },
    #[error("time check failed: ECU {serial} reports time {reported}, more than {max_skew_secs}s from the Director's clock {now}")]
    ReportTime {
        serial: String,
        reported: String,
        now: String,
        max_skew_secs: i64,
    },
    /// Signing per-vehicle metadata failed: a key or configuration problem on our side.
    #[error("metadata signing failed: {0}")]
    Signing(#[source] ferry_core::Error),

    // --- the Image repository is at fault (or unreachable, or an attacker speaks for it);
    //     the admin API answers these with 502 (see http/admin.rs) ---
    #[error("image repository check failed: {source}; expected metadata that verifies against the pinned Image repository root")]
    ImageRepoMetadata {
        #[source]
        source: ferry_core::Error,
    },
    #[error("image repository check failed: fetching {url}: {reason}; expected the Image repository to serve it")]
    ImageRepoFetch { url: String, reason: String },

    // --- the operator asked for something the inventory refuses ---
    #[error("image repository check failed: target {target} is not in the Image repository's signed metadata; expected a target published there")]
    TargetNotPublished { target: String },
    #[error("image repository check failed: {reason}")]
    ImageRepoConfig { reason: String },
    #[error("registration check failed: VIN {vin:?} {reason}")]
    InvalidVin { vin: String, reason: &'static str },
    #[error("registration check failed: vehicle {vin} is already registered; expected a new VIN")]
    VehicleExists { vin: String },
    #[error("vehicle check failed: no vehicle {vin} is registered; expected the VIN of a registered vehicle")]
    UnknownVehicle { vin: String },
    #[error(
        "registration check failed: vehicle {vin} lists {found} primary ECUs; expected exactly one"
    )]
    PrimaryCount { vin: String, found: usize },
    #[error("registration check failed: ECU {serial:?} of vehicle {vin}: {reason}")]
    InvalidEcu {
        vin: String,
        serial: String,
        reason: String,
    },
    #[error("registration check failed: ECU serial {serial} is listed twice for vehicle {vin}; expected each serial once")]
    SerialRepeated { vin: String, serial: String },
    #[error("registration check failed: ECU serial {serial} already belongs to vehicle {owner}; expected serials unique across the fleet")]
    SerialTaken { serial: String, owner: String },
    #[error("assignment check failed: vehicle {vin} has no ECU {serial}; expected one of the vehicle's registered ECUs")]
    UnknownEcu { vin: String, serial: String },
    #[error("assignment check failed: {reason}")]
    InvalidAssignment { reason: String },
    #[error("assignment check failed: ECU {serial} of vehicle {vin} already has an active assignment of {target}; expected at most one pending or in-flight assignment per target and ECU")]
    AssignmentExists {
        vin: String,
        serial: String,
        target: String,
    },
    #[error(
        "assignment check failed: no assignment {id}; expected the id of an existing assignment"
    )]
    UnknownAssignment { id: i64 },
    #[error("assignment check failed: assignment {id} is {status}; expected pending or in_flight")]
    AssignmentNotActive { id: i64, status: String },
    #[error("version check failed: {role} metadata of vehicle {vin} would be stored as version {new}; expected a version above the stored {stored}")]
    MetadataVersion {
        vin: String,
        role: String,
        stored: u64,
        new: u64,
    },
    #[error("version check failed: director root would be stored as version {new}; expected version {expected} (root versions are stored one after another, each exactly once)")]
    RootVersion { new: u64, expected: u64 },
    #[error("version check failed: {what} would be stored as version {new}; expected version {expected} (another signing got there first? try again)")]
    OfflineVersion {
        what: String,
        new: u64,
        expected: u64,
    },
    #[error("bundle check failed: no offline-update bundle {name:?} (or it is revoked already)")]
    NoSuchBundle { name: String },
    #[error("bundle check failed: {reason}")]
    Bundle { reason: String },
    #[error("receipt check failed: {reason}")]
    Receipt { reason: String },
    #[error("receipt check failed: this receipt (sha256 {sha256}) is recorded already; a receipt counts once")]
    ReceiptRecorded { sha256: String },
    #[error("config check failed: {path}: {reason}")]
    Config {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("root chain check failed: {0}; expected version 1 signed by its own root threshold, or the next version signed by the previous root's threshold and its own")]
    RootChain(#[source] ferry_core::Error),
    #[error("root check failed: {reason}")]
    RootSpec { reason: String },
    #[error("root check failed: no director root is stored; expected `ferry director root import` of 1.root.json first")]
    NoRoot,
    #[error("online key check failed: {authorised} of the {role} keys given are authorised by director root {root_version}; expected at least its threshold {threshold}")]
    OnlineKeys {
        role: &'static str,
        root_version: u64,
        authorised: u32,
        threshold: u32,
    },
    #[error("version check failed: {what} version {version} does not fit the store; expected 1 to 2^63-1")]
    VersionOutOfRange { what: String, version: u64 },
    #[error("admin token check failed: no admin token {id}; expected the id of an existing token")]
    UnknownAdminToken { id: i64 },
    #[error("admin token check failed: token name {name:?} {reason}")]
    InvalidTokenName { name: String, reason: &'static str },
    #[error("admin token check failed: the expiry {expires_at} is not after now ({now}); expected a time in the future, e.g. --expires 90d")]
    TokenExpiry { expires_at: String, now: String },
    #[error("vehicle check failed: vehicle {vin} was removed; expected a registered vehicle that was not removed")]
    VehicleRemoved { vin: String },
    #[error("migrate check failed: {target} already holds data (table {table} is not empty); expected an empty database to copy into")]
    MigrateTarget { target: String, table: &'static str },
    #[error("migrate check failed: table {table} has {sqlite} rows in SQLite but {postgres} in PostgreSQL after the copy; expected the same count (nothing was committed)")]
    MigrateCount {
        table: &'static str,
        sqlite: u64,
        postgres: u64,
    },
    #[error("schema check failed: the database is at schema version {found}, newer than the {supported} this build knows; expected a Director at least as new as the one that last wrote it")]
    SchemaTooNew { found: i64, supported: i64 },

    // --- the fleet CA, certificates and TLS material the operator supplied ---
    #[error("fleet CA check failed: {reason}")]
    FleetCa { reason: String },
    #[error("certificate check failed: {reason}")]
    Certificate { reason: String },
    #[error("TLS check failed: {reason}")]
    Tls { reason: String },
    /// Reading, decrypting or writing a private key file (ferry-keys names the check).
    #[error(transparent)]
    KeyFile(ferry_keys::Error),

    // --- the storage underneath is at fault ---
    #[error("storage check failed: {op}: {source}")]
    Storage {
        op: String,
        #[source]
        source: BoxError,
    },
    /// The database server cannot be reached or refuses connections (PostgreSQL): answered
    /// 503; the store reconnects when it is back.
    #[error("database check failed: {op}: the database is unavailable ({detail}); expected a reachable database server")]
    DatabaseUnavailable { op: String, detail: String },
    #[error("storage check failed: stored {what} could not be read back: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("integrity check failed: PRAGMA integrity_check reported {report:?}; expected \"ok\"")]
    IntegrityCheck { report: String },
    #[error("relay check failed: relay name {name:?} {reason}")]
    InvalidRelayName { name: String, reason: &'static str },
    #[error("relay check failed: relay {name} is already registered; expected a new name")]
    RelayExists { name: String },
    #[error("relay check failed: no relay {name} is registered; expected the name of a registered relay")]
    UnknownRelay { name: String },
    #[error("randomness check failed: the OS random source failed: {0}")]
    Random(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Who is at fault, for mapping to HTTP status codes and log levels.
    pub fn fault(&self) -> Fault {
        use Error::*;
        match self {
            NonceReused { .. } | ReportFromUnknownEcu { .. } | Manifest(_) | ReportTime { .. } => {
                Fault::Device
            }
            Storage { .. }
            | DatabaseUnavailable { .. }
            | Corrupt { .. }
            | IntegrityCheck { .. }
            | Random(_) => Fault::Storage,
            _ => Fault::Operator,
        }
    }

    pub(crate) fn storage(op: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Storage {
            op: op.into(),
            source: source.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// Who caused an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The vehicle sent something refused (possibly an attack).
    Device,
    /// The operator's request is refused.
    Operator,
    /// The database or the system under it failed.
    Storage,
}
