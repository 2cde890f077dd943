//! The Director's domain types: what the inventory holds and what the admin API will show.
//! All serialisable; times are UTC.

use chrono::{DateTime, Utc};
use ferry_core::manifest::EcuVersionReport;
use ferry_core::manifest::InstallResult;
use ferry_core::metadata::{Hashes, TargetFile};
use ferry_keys::{IdentifiedKey, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A registered vehicle with its ECUs and a summary of its update status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub vin: String,
    /// The primary first, then the secondaries by serial.
    pub ecus: Vec<Ecu>,
    pub created_at: DateTime<Utc>,
    /// When the last accepted manifest arrived.
    pub last_seen: Option<DateTime<Utc>>,
    pub status: StatusSummary,
    /// When the vehicle was removed (`ferry admin vehicle remove`): nothing is served to it
    /// any more; its history stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<DateTime<Utc>>,
}

impl Vehicle {
    pub fn primary(&self) -> Option<&Ecu> {
        self.ecus.iter().find(|e| e.primary)
    }

    /// What manifest verification needs (`ferry_core::manifest::check_vehicle_manifest`);
    /// fails if an ECU's key has no key id (registration refuses such keys).
    pub fn registered(&self) -> ferry_keys::Result<ferry_core::manifest::RegisteredVehicle> {
        Ok(ferry_core::manifest::RegisteredVehicle {
            vin: self.vin.clone(),
            primary_ecu_serial: self.primary().map(|e| e.serial.clone()).unwrap_or_default(),
            ecu_keys: self
                .ecus
                .iter()
                .map(|e| Ok((e.serial.clone(), IdentifiedKey::new(e.public_key.clone())?)))
                .collect::<ferry_keys::Result<_>>()?,
        })
    }
}

/// One ECU of a vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ecu {
    pub serial: String,
    pub hardware_id: String,
    pub public_key: PublicKey,
    pub primary: bool,
    /// What the ECU said in the last accepted manifest; `None` before the first.
    pub reported: Option<EcuState>,
}

/// Where an ECU is: its vehicle and serial (what a campaign selects).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EcuRef {
    pub vin: String,
    pub serial: String,
}

/// An ECU's state as of its last accepted version report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcuState {
    pub installed_image: InstalledImage,
    pub provides: BTreeMap<String, String>,
    /// Empty when the ECU detected no attack.
    pub attacks_detected: String,
    pub last_install: Option<LastInstall>,
    /// When the Director received the report (the Director's clock, not the ECU's).
    pub reported_at: DateTime<Utc>,
}

impl EcuState {
    pub fn from_report(report: &EcuVersionReport, reported_at: DateTime<Utc>) -> Self {
        EcuState {
            installed_image: InstalledImage {
                filepath: report.installed_image.filepath.clone(),
                length: report.installed_image.fileinfo.length,
                hashes: report.installed_image.fileinfo.hashes.clone(),
            },
            provides: report.provides.clone(),
            attacks_detected: report.attacks_detected.clone(),
            last_install: report.last_install.as_ref().map(|l| LastInstall {
                target: l.target.clone(),
                result: l.result,
                detail: l.detail.clone(),
            }),
            reported_at,
        }
    }
}

/// The image an ECU runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledImage {
    pub filepath: String,
    pub length: u64,
    pub hashes: Hashes,
}

impl InstalledImage {
    /// Whether this is `target`: same name and length, every hash both list equal, and at
    /// least one hash in common (a name alone proves nothing).
    pub fn is(&self, target_name: &str, target: &TargetFile) -> bool {
        let mut common = 0;
        for (alg, digest) in &self.hashes {
            if let Some(expected) = target.hashes.get(alg) {
                if !expected.eq_ignore_ascii_case(digest) {
                    return false;
                }
                common += 1;
            }
        }
        self.filepath == target_name && self.length == target.length && common > 0
    }
}

/// How the last install on an ECU ended, as the ECU reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastInstall {
    pub target: String,
    pub result: InstallResult,
    pub detail: String,
}

impl LastInstall {
    /// Whether the install did not leave the target running.
    pub fn failed(&self) -> bool {
        self.result.failed()
    }
}

/// Counts of a vehicle's assignments and an overall state, for fleet listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSummary {
    pub state: VehicleState,
    pub pending: u64,
    pub in_flight: u64,
    pub installed: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Serials of ECUs whose last report names a detected attack.
    pub attacks_reported_by: Vec<String>,
}

/// One word for a vehicle's situation, most urgent first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleState {
    /// An ECU's last report names a detected attack.
    AttackReported,
    /// No accepted manifest yet.
    #[default]
    NeverSeen,
    /// Assignments are pending or in flight.
    Updating,
    /// Nothing active, and the most recently finished assignment failed.
    UpdateFailed,
    /// Nothing active, and nothing failed last.
    UpToDate,
}

/// What the operator registers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewVehicle {
    pub vin: String,
    pub ecus: Vec<NewEcu>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEcu {
    pub serial: String,
    pub hardware_id: String,
    pub public_key: PublicKey,
    pub primary: bool,
}

/// Where an assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStatus {
    /// Created; not yet in targets metadata the vehicle fetched.
    Pending,
    /// Served to the vehicle in its targets metadata.
    InFlight,
    Installed,
    Failed,
    Cancelled,
}

impl AssignmentStatus {
    pub const ALL: [AssignmentStatus; 5] = [
        AssignmentStatus::Pending,
        AssignmentStatus::InFlight,
        AssignmentStatus::Installed,
        AssignmentStatus::Failed,
        AssignmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStatus::Pending => "pending",
            AssignmentStatus::InFlight => "in_flight",
            AssignmentStatus::Installed => "installed",
            AssignmentStatus::Failed => "failed",
            AssignmentStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, AssignmentStatus::Pending | AssignmentStatus::InFlight)
    }
}

impl fmt::Display for AssignmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssignmentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown assignment status {s:?}"))
    }
}

/// Install `target_name` on one ECU.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewAssignment {
    pub ecu_serial: String,
    pub target_name: String,
    /// Length, hashes and custom metadata as the Image repository signed them.
    pub target: TargetFile,
    pub campaign: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: i64,
    pub vin: String,
    pub ecu_serial: String,
    pub target_name: String,
    pub target: TargetFile,
    /// Install order within the vehicle (lower first).
    pub position: i64,
    pub status: AssignmentStatus,
    /// Why it failed or was cancelled, or what the ECU said.
    pub detail: String,
    pub campaign: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What recording a manifest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordedManifest {
    /// The stored manifest's id.
    pub id: i64,
    /// Whether the vehicle must be re-signed: an assignment was settled (or the next one
    /// queued on that ECU is never served), or the stored targets do not name exactly each
    /// ECU's queue head (a signing that failed or lost a race, or targets signed before
    /// queues existed).
    pub resign: bool,
}

/// A manifest as it arrived, with the Director's verdict on it.
#[derive(Debug, Clone)]
pub struct IncomingManifest {
    pub vin: String,
    pub received_at: DateTime<Utc>,
    /// The request body as received: whole for an accepted manifest, at most the policy's
    /// excerpt for a refused one ([`crate::manifests::ManifestPolicy`]).
    pub body: Vec<u8>,
    /// The SHA-256 and length of the whole body as received.
    pub body_sha256: [u8; 32],
    pub body_length: u64,
    pub verdict: ManifestVerdict,
}

#[derive(Debug, Clone)]
pub enum ManifestVerdict {
    /// Every signature and check passed (`check_vehicle_manifest`); the reports are verified.
    Accepted {
        nonce: String,
        reports: BTreeMap<String, EcuVersionReport>,
    },
    /// Refused; stored for audit, changes nothing else.
    Refused {
        /// The nonce, if the manifest could be read that far.
        nonce: Option<String>,
        reason: String,
        /// How many refused manifests of the vehicle to keep, this one included: the oldest
        /// beyond go, so a vehicle cannot grow the database without bound.
        keep: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Refused,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Refused => "refused",
        }
    }
}

/// A stored manifest (the table is append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub id: i64,
    pub vin: String,
    pub received_at: DateTime<Utc>,
    pub nonce: Option<String>,
    pub verdict: Verdict,
    pub reason: String,
    /// What is kept of the body: all of it, or an excerpt of a refused one.
    pub body: Vec<u8>,
    /// The whole body's length and SHA-256 (hex), when recorded (manifests stored before
    /// schema 7 have neither).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_sha256: Option<String>,
}

/// The per-vehicle Director roles (root is global: one director root for the fleet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataRole {
    Targets,
    Snapshot,
    Timestamp,
}

impl MetadataRole {
    pub const ALL: [MetadataRole; 3] = [
        MetadataRole::Targets,
        MetadataRole::Snapshot,
        MetadataRole::Timestamp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MetadataRole::Targets => "targets",
            MetadataRole::Snapshot => "snapshot",
            MetadataRole::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for MetadataRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetadataRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown metadata role {s:?}"))
    }
}

/// Signed metadata as stored: the latest version of one role of one vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMetadata {
    pub version: u64,
    pub expires: DateTime<Utc>,
    pub bytes: Vec<u8>,
}

/// A vehicle role whose stored metadata expires soon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiringMetadata {
    pub vin: String,
    pub role: MetadataRole,
    pub version: u64,
    pub expires: DateTime<Utc>,
}

/// What an admin token may do. `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
        }
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(self, needed: Scope) -> bool {
        self >= needed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            _ => Err(format!("unknown token scope {s:?}")),
        }
    }
}

/// A registered gateway relay as listed (never its token's secret): it may speak for vehicles
/// on the device API, never on the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relay {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Hex SHA-256 of the client certificate registered for it (mutual TLS), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
}

/// An admin token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminToken {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Refused from this time on; `None`: until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A PURE-2 offline-update bundle as the Director keeps it: the latest signed version of its
/// offline-update targets file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OfflineBundle {
    pub name: String,
    pub version: u64,
    pub expires: DateTime<Utc>,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A vehicle's signed receipt of an offline install, as recorded: applied offline via
/// `bundle`, reported late.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfflineReceipt {
    pub id: i64,
    pub vin: String,
    pub bundle: String,
    /// The receipt's result (`success`, `failure`, ...) as the Primary wrote it.
    pub result: String,
    /// The receipt's whole `offline_bundle` outcome: version, digest, detail, per-ECU results.
    pub outcome: serde_json::Value,
    /// When the Director received it (the install itself happened earlier, offline).
    pub received_at: DateTime<Utc>,
}
