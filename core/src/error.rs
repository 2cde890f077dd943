use chrono::{DateTime, Utc};

/// Everything ferry-core can refuse, grouped by who is at fault. Each message names the check
/// that failed and what was expected, so a log line is enough to tell an attack from a mistake.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- bad metadata or an attack: the repository (or someone in the middle) is at fault ---
    #[error("metadata format check failed: {role} is malformed: {reason}")]
    Malformed { role: String, reason: String },
    #[error("metadata type check failed: expected _type {expected:?}, found {found:?}")]
    WrongType { expected: String, found: String },
    #[error("signature threshold check failed: {role} has {valid} valid signature(s) from distinct authorised keys, needs {threshold}")]
    Threshold {
        role: String,
        valid: usize,
        threshold: u32,
    },
    #[error("signature check failed: {role} carries more than one signature by key {keyid}")]
    DuplicateSignature { role: String, keyid: String },
    #[error("expiry check failed: {role} expired at {expires} (now {now})")]
    Expired {
        role: String,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    },
    #[error("root rotation check failed: expected root version {expected}, got {found}")]
    RootVersion { expected: u64, found: u64 },
    #[error("rollback check failed: {role} version {new} is lower than trusted version {trusted}")]
    Rollback {
        role: String,
        trusted: u64,
        new: u64,
    },
    #[error("version check failed: {role} version {found} does not match version {expected} listed in {listed_in}")]
    VersionMismatch {
        role: String,
        expected: u64,
        found: u64,
        listed_in: &'static str,
    },
    #[error("snapshot check failed: snapshot does not list {role}")]
    NotInSnapshot { role: String },
    #[error("snapshot rollback check failed: new snapshot no longer lists {role}")]
    SnapshotDropsRole { role: String },
    #[error("length check failed: {what} is {found} bytes, expected {expected}")]
    Length {
        what: String,
        expected: u64,
        found: u64,
    },
    #[error("length check failed: {what} is longer than the {limit} bytes allowed")]
    TooLong { what: String, limit: u64 },
    #[error("hash check failed: {what} {algorithm} is {found}, expected {expected}")]
    Hash {
        what: String,
        algorithm: String,
        expected: String,
        found: String,
    },
    #[error("hash check failed: {what} lists unsupported hash algorithm {algorithm:?} (supported: sha256, sha512)")]
    UnsupportedHash { what: String, algorithm: String },
    #[error("hash check failed: {what} lists no hashes")]
    NoHashes { what: String },
    #[error("delegation check failed: {delegator} does not delegate to {role}")]
    NotDelegated { role: String, delegator: String },
    #[error("delegation check failed: {role} was verified as delegated by {first}; reached again through {second}, whose keys and threshold it was never checked against (a role delegated by two roles is refused on the second path)")]
    DelegatedTwice {
        role: String,
        first: String,
        second: String,
    },
    #[error("delegation check failed: target {target} is outside the paths delegated to {role}")]
    OutsideDelegation { target: String, role: String },
    #[error("target path check failed: {path:?} {reason}")]
    UnsafeTargetPath { path: String, reason: &'static str },
    #[error("spec version check failed: {role} has spec_version {found:?}, expected 1.x")]
    SpecVersion { role: String, found: String },

    // --- Uptane: Director targets, and Director against Image repository (uptane_checks) ---
    #[error("director delegation check failed: Director targets delegate to {roles}; Director targets never delegate")]
    DirectorDelegates { roles: String },
    #[error("director ECU check failed: ECU {serial:?} is named by two targets, {first} and {second}; expected at most one target per ECU")]
    DuplicateEcu {
        serial: String,
        first: String,
        second: String,
    },
    #[error("director ECU check failed: target {target} names ECU {serial:?}, which is not part of this vehicle")]
    EcuNotInVehicle { serial: String, target: String },
    #[error("image match check failed: target {target} is not listed by the Image repository on its delegation path")]
    NotInImageRepo { target: String },
    #[error("image match length check failed: target {target} is {director} bytes in the Director's targets, {image} in the Image repository's")]
    DirectorImageLength {
        target: String,
        director: u64,
        image: u64,
    },
    #[error("image match hash check failed: target {target} {algorithm} is {director} in the Director's targets, expected the Image repository's {image}")]
    DirectorImageHash {
        target: String,
        algorithm: String,
        director: String,
        image: String,
    },
    #[error("ostree pull target check failed: target {target} has {found}, expected {expected}")]
    OstreePull {
        target: String,
        found: String,
        expected: String,
    },
    #[error("hardwareId check failed: target {target} for ECU {ecu:?} is for {found}, expected hardwareId {expected:?}")]
    HardwareId {
        target: String,
        ecu: String,
        expected: String,
        found: String,
    },
    #[error("releaseCounter check failed: target {target} has releaseCounter {offered}, lower than the installed {installed}")]
    ReleaseCounter {
        target: String,
        installed: u64,
        offered: u64,
    },

    #[error("offline-update check failed: Director root v{version} has no offline-update-snapshot and offline-update-targets roles; this vehicle cannot take offline updates")]
    OfflineRoles { version: u64 },
    #[error("offline-update snapshot check failed: bundle {name} is not listed by the offline-update snapshot v{version} (revoked, superseded, or for another fleet)")]
    NotInOfflineSnapshot { name: String, version: u64 },
    #[error("offline-update targets check failed: hardwareId {hardware_id:?} is named by two images, {first} and {second}; expected at most one image per hardwareId")]
    OfflineHardwareTwice {
        hardware_id: String,
        first: String,
        second: String,
    },
    #[error("offline bundle name check failed: {name:?} {reason}; expected letters, digits, '.', '_' or '-', not the name of another metadata file")]
    OfflineBundleName { name: String, reason: &'static str },
    #[error("vehicle binding check failed: Director targets are for {}, expected this vehicle's VIN {expected:?}", found.as_ref().map_or("no vehicle (they name no VIN)".to_owned(), |v| format!("VIN {v:?}")))]
    VehicleBinding {
        expected: String,
        found: Option<String>,
    },
    #[error("manifest check failed: manifest is for VIN {found:?}, expected {expected:?}")]
    ManifestVin { expected: String, found: String },
    #[error("manifest check failed: primary ECU serial is {found:?}, expected the registered primary {expected:?}")]
    ManifestPrimary { expected: String, found: String },
    #[error("manifest check failed: ECU {serial:?} is not registered to this vehicle")]
    UnknownEcu { serial: String },
    #[error("manifest check failed: no version report from registered ECU {serial:?}")]
    MissingEcu { serial: String },
    #[error(
        "manifest check failed: report listed under ECU {listed:?} is signed for ECU {found:?}"
    )]
    EcuSerialMismatch { listed: String, found: String },
    #[error("manifest check failed: ECU {serial:?} reports nonce {found:?}, the primary's cycle nonce is {expected:?}")]
    NonceMismatch {
        serial: String,
        expected: String,
        found: String,
    },

    // --- key ceremonies: a proposal or a holder's signature is wrong ---
    #[error("proposal check failed: {reason}")]
    Proposal { reason: String },
    #[error("proposal digest check failed: the signature by key {keyid} was made for proposal sha256 {signed_for}, this proposal is {actual}: the proposal changed after it was signed; collect signatures on the proposal as it is now")]
    ProposalChanged {
        keyid: String,
        signed_for: String,
        actual: String,
    },
    #[error("signer check failed: key {keyid} is not one this proposal asks for; expected one of {expected}")]
    KeyNotRequested { keyid: String, expected: String },
    #[error("signature check failed: the signature by key {keyid} is invalid: {reason}")]
    SignatureInvalid { keyid: String, reason: String },
    #[error("signature threshold check failed: {missing}")]
    ProposalShort { missing: String },

    // --- the caller broke the workflow order: a bug in the client, not the repository ---
    #[error("client workflow order violated: {0}")]
    Order(&'static str),
    #[error("authority check failed: {role} {reason}")]
    Authority { role: String, reason: &'static str },

    #[error(transparent)]
    Keys(#[from] ferry_keys::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Who is at fault for a core [`Error`]. Core does no I/O, so it is one of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The metadata (its repository, or someone in the middle): a failed security check.
    /// An ECU counts these in `attacks_detected`.
    BadMetadata,
    /// The caller used the API out of order or with an impossible authority: a bug here.
    Misuse,
}

impl Error {
    /// Who is at fault: callers decide on this, never on the variant list themselves.
    pub fn fault(&self) -> Fault {
        match self {
            Error::Order(_) | Error::Authority { .. } => Fault::Misuse,
            _ => Fault::BadMetadata,
        }
    }

    /// The error of parsing a delegated targets role, named by the role (the parser knows
    /// only the document kind, `targets`).
    pub(crate) fn for_role(self, role: &str) -> Self {
        match self {
            Error::DuplicateSignature { keyid, .. } => Error::DuplicateSignature {
                role: role.to_owned(),
                keyid,
            },
            Error::Malformed { reason, .. } => Error::Malformed {
                role: role.to_owned(),
                reason,
            },
            other => other,
        }
    }

    pub(crate) fn malformed(role: impl Into<String>, reason: impl ToString) -> Self {
        Error::Malformed {
            role: role.into(),
            reason: reason.to_string(),
        }
    }
}
