//! Per-vehicle Director metadata: targets naming each ECU's assigned image (`ecuIdentifiers`),
//! then snapshot and timestamp, signed with the Director's online keys and stored so the
//! device API serves exactly these bytes. Versions come from the store and only go up.

use crate::error::{Error, Result};
use crate::model::{Assignment, MetadataRole, Vehicle};
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use ferry_core::metadata::uptane::{DirectorCustom, EcuIdentifier};
use ferry_core::metadata::{
    Document, Expires, Hashes, MetaFile, Signed, Snapshot, TargetFile, Targets, Timestamp,
    SPEC_VERSION,
};
use ferry_keys::Signer;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The Director's online signing keys (the root is signed offline).
#[derive(Debug, Clone)]
pub struct OnlineKeys {
    pub targets: Vec<Arc<dyn Signer>>,
    pub snapshot: Vec<Arc<dyn Signer>>,
    pub timestamp: Vec<Arc<dyn Signer>>,
}

/// How long each per-vehicle role is valid once signed.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub targets: Duration,
    pub snapshot: Duration,
    pub timestamp: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            targets: Duration::days(30),
            snapshot: Duration::days(7),
            timestamp: Duration::days(1),
        }
    }
}

/// Versions written by one signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedVersions {
    pub targets: Option<u64>,
    pub snapshot: Option<u64>,
    pub timestamp: u64,
}

#[derive(Debug)]
pub struct VehicleSigner<'a> {
    store: &'a dyn Store,
    keys: &'a OnlineKeys,
    lifetimes: Lifetimes,
}

fn sign<T: Document>(doc: T, signers: &[Arc<dyn Signer>]) -> Result<Vec<u8>> {
    let mut signed = Signed::new(doc);
    let refs: Vec<&dyn Signer> = signers.iter().map(|s| s.as_ref()).collect();
    signed.sign_all(&refs).map_err(Error::Signing)?;
    signed.to_bytes().map_err(Error::Signing)
}

/// The Director targets of a vehicle: one entry per image at the head of an ECU's queue
/// ([`crate::queue::heads`]: at most one per ECU, as Uptane requires), naming every ECU that
/// installs it. Always names the vehicle, so a targets file with no images cannot be
/// replayed to another vehicle.
pub fn director_targets(
    vehicle: &Vehicle,
    active: &[Assignment],
    version: u64,
    expires: Expires,
) -> Targets {
    let mut targets: BTreeMap<String, TargetFile> = BTreeMap::new();
    for assignment in crate::queue::heads(active) {
        let Some(ecu) = vehicle
            .ecus
            .iter()
            .find(|e| e.serial == assignment.ecu_serial)
        else {
            continue;
        };
        let entry = targets
            .entry(assignment.target_name.clone())
            .or_insert_with(|| TargetFile {
                custom: None,
                hashes: assignment.target.hashes.clone(),
                length: assignment.target.length,
                extra: BTreeMap::new(),
            });
        let mut custom: DirectorCustom = entry
            .custom
            .take()
            .and_then(|c| serde_json::from_value(c).ok())
            .unwrap_or(DirectorCustom {
                ecu_identifiers: BTreeMap::new(),
                extra: BTreeMap::new(),
            });
        custom.ecu_identifiers.insert(
            ecu.serial.clone(),
            EcuIdentifier {
                hardware_id: ecu.hardware_id.clone(),
                extra: BTreeMap::new(),
            },
        );
        entry.custom = serde_json::to_value(custom).ok();
    }
    let mut extra = BTreeMap::new();
    extra.insert(
        "custom".to_owned(),
        serde_json::json!({ "vin": vehicle.vin }),
    );
    Targets {
        type_: "targets".into(),
        delegations: None,
        expires,
        spec_version: SPEC_VERSION.into(),
        targets,
        version,
        extra,
    }
}

impl<'a> VehicleSigner<'a> {
    pub fn new(store: &'a dyn Store, keys: &'a OnlineKeys, lifetimes: Lifetimes) -> Self {
        VehicleSigner {
            store,
            keys,
            lifetimes,
        }
    }

    fn next_version(&self, vin: &str, role: MetadataRole) -> Result<u64> {
        Ok(self
            .store
            .get_vehicle_metadata(vin, role)?
            .map_or(0, |m| m.version)
            + 1)
    }

    /// Sign the vehicle's targets from its active assignments, then snapshot and timestamp.
    /// Called whenever the vehicle's assignments change: added, cancelled, or settled by a
    /// manifest (the next one queued on an ECU is served only once this runs).
    pub fn sign_vehicle(&self, vin: &str, now: DateTime<Utc>) -> Result<SignedVersions> {
        let _turn = self.store.signing_turn(vin)?;
        let vehicle = self
            .store
            .get_vehicle(vin)?
            .ok_or_else(|| Error::UnknownVehicle {
                vin: vin.to_owned(),
            })?;
        let active = self.store.active_assignments(vin)?;
        let targets_version = self.next_version(vin, MetadataRole::Targets)?;
        let expires = Expires::after(now, self.lifetimes.targets);
        let targets = director_targets(&vehicle, &active, targets_version, expires);
        let bytes = sign(targets, &self.keys.targets)?;
        self.store.put_vehicle_metadata(
            vin,
            MetadataRole::Targets,
            targets_version,
            expires.0,
            &bytes,
        )?;

        let snapshot_version = self.next_version(vin, MetadataRole::Snapshot)?;
        let expires = Expires::after(now, self.lifetimes.snapshot);
        let snapshot = Snapshot {
            type_: "snapshot".into(),
            expires,
            meta: [("targets.json".to_string(), MetaFile::new(targets_version))].into(),
            spec_version: SPEC_VERSION.into(),
            version: snapshot_version,
            extra: BTreeMap::new(),
        };
        let bytes = sign(snapshot, &self.keys.snapshot)?;
        self.store.put_vehicle_metadata(
            vin,
            MetadataRole::Snapshot,
            snapshot_version,
            expires.0,
            &bytes,
        )?;
        let timestamp = self.sign_timestamp(vin, snapshot_version, &bytes, now)?;
        Ok(SignedVersions {
            targets: Some(targets_version),
            snapshot: Some(snapshot_version),
            timestamp,
        })
    }

    /// Re-sign only the timestamp over the current snapshot (the refresher's job: a vehicle
    /// whose assignments did not change must still see fresh metadata).
    pub fn refresh_timestamp(&self, vin: &str, now: DateTime<Utc>) -> Result<u64> {
        let _turn = self.store.signing_turn(vin)?;
        let snapshot = self
            .store
            .get_vehicle_metadata(vin, MetadataRole::Snapshot)?
            .ok_or_else(|| Error::UnknownVehicle {
                vin: vin.to_owned(),
            })?;
        self.sign_timestamp(vin, snapshot.version, &snapshot.bytes, now)
    }

    fn sign_timestamp(
        &self,
        vin: &str,
        snapshot_version: u64,
        snapshot_bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let mut meta = MetaFile::new(snapshot_version);
        meta.length = Some(snapshot_bytes.len() as u64);
        let mut hashes = Hashes::new();
        hashes.insert(
            "sha256".into(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(snapshot_bytes)),
        );
        meta.hashes = Some(hashes);
        let version = self.next_version(vin, MetadataRole::Timestamp)?;
        let expires = Expires::after(now, self.lifetimes.timestamp);
        let timestamp = Timestamp {
            type_: "timestamp".into(),
            expires,
            meta: [("snapshot.json".to_string(), meta)].into(),
            spec_version: SPEC_VERSION.into(),
            version,
            extra: BTreeMap::new(),
        };
        let bytes = sign(timestamp, &self.keys.timestamp)?;
        self.store.put_vehicle_metadata(
            vin,
            MetadataRole::Timestamp,
            version,
            expires.0,
            &bytes,
        )?;
        Ok(version)
    }
}
