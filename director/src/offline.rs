//! PURE-2 offline-update bundles (uptane/pures pure2.md) on the Director: an
//! offline-update targets file per bundle, listing images by hardwareId, and the
//! offline-update snapshot that lists every bundle not revoked. A vehicle that updates online
//! fetches the latest snapshot every cycle, so a revoked or superseded bundle stops verifying
//! on every vehicle that has been online since.
//!
//! Both roles are signed with the `[keys] offline_update` keys (online by default, as PURE-2
//! allows; an OEM that keeps them offline signs through the ceremony flow instead).

use crate::image_repo::TargetSource;
use crate::model::OfflineBundle;
use crate::store::Store;
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::metadata::{
    Document, MetaFile, OfflineSnapshot, OfflineTargets, RoleType, Root, Signed, TargetFile,
    SPEC_VERSION,
};
use ferry_keys::Signer;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Bundle names become file names on the stick (`NAME.json`): letters, digits, `-`, `_`,
/// `.`, at most 64, not starting with a dot.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name != OFFLINE_SNAPSHOT_FILE_STEM;
    if ok {
        Ok(())
    } else {
        Err(Error::Bundle {
            reason: format!(
                "name {name:?} is not usable; expected 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
            ),
        })
    }
}

const OFFLINE_SNAPSHOT_FILE_STEM: &str = "offline-update-snapshot";

/// What a bundle directs: one image per hardwareId.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    pub name: String,
    /// (hardwareId, target name)
    pub targets: Vec<(String, String)>,
    pub expires: DateTime<Utc>,
}

/// A bundle as signed: what goes on the stick from the Director.
#[derive(Debug, Clone)]
pub struct SignedBundle {
    pub bundle: OfflineBundle,
    pub snapshot_version: u64,
    pub snapshot: Vec<u8>,
}

/// One bundle operation at a time in this process (each reads the bundle list and signs the
/// next snapshot version); the store refuses a version taken by another process.
static BUNDLES: Mutex<()> = Mutex::new(());

/// Sign bundle `request` (the next version of its name) and the snapshot that lists it.
pub fn create(
    store: &dyn Store,
    keys: &[Arc<dyn Signer>],
    images: &dyn TargetSource,
    request: &BundleRequest,
    now: DateTime<Utc>,
) -> Result<SignedBundle> {
    check_name(&request.name)?;
    if request.expires <= now {
        return Err(Error::Bundle {
            reason: format!(
                "expiry {} is not in the future (now {now})",
                request.expires.to_rfc3339()
            ),
        });
    }
    let targets = bundle_targets(images, &request.targets)?;
    let _one = BUNDLES.lock().unwrap_or_else(PoisonError::into_inner);
    let root = crate::root::latest_root(store, now)?;
    let version = store
        .offline_bundle(&request.name)?
        .map_or(1, |b| b.version + 1);
    let doc = OfflineTargets {
        type_: "offline-update-targets".into(),
        expires: ferry_core::metadata::Expires(request.expires),
        spec_version: SPEC_VERSION.into(),
        targets,
        version,
        extra: BTreeMap::new(),
    };
    let body = sign(doc, keys, &root, RoleType::OfflineUpdateTargets)?;
    let bundle = OfflineBundle {
        name: request.name.clone(),
        version,
        expires: request.expires,
        body,
        created_at: now,
        revoked_at: None,
    };
    let mut live: Vec<OfflineBundle> = store
        .offline_bundles()?
        .into_iter()
        .filter(|b| b.revoked_at.is_none() && b.name != bundle.name)
        .collect();
    live.push(bundle.clone());
    let (snapshot_version, snapshot) = next_snapshot(store, keys, &root, &live, now)?;
    store.put_offline_bundle(&bundle, (snapshot_version, &snapshot))?;
    tracing::info!(name = %bundle.name, version, snapshot_version, "offline-update bundle signed");
    Ok(SignedBundle {
        bundle,
        snapshot_version,
        snapshot,
    })
}

/// Revoke bundle `name`: the next snapshot no longer lists it.
pub fn revoke(
    store: &dyn Store,
    keys: &[Arc<dyn Signer>],
    name: &str,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<u8>)> {
    let _one = BUNDLES.lock().unwrap_or_else(PoisonError::into_inner);
    let root = crate::root::latest_root(store, now)?;
    let live: Vec<OfflineBundle> = store
        .offline_bundles()?
        .into_iter()
        .filter(|b| b.revoked_at.is_none())
        .collect();
    if !live.iter().any(|b| b.name == name) {
        return Err(Error::NoSuchBundle {
            name: name.to_owned(),
        });
    }
    let rest: Vec<OfflineBundle> = live.into_iter().filter(|b| b.name != name).collect();
    let (version, snapshot) = next_snapshot(store, keys, &root, &rest, now)?;
    store.revoke_offline_bundle(name, (version, &snapshot))?;
    tracing::info!(
        name,
        snapshot_version = version,
        "offline-update bundle revoked"
    );
    Ok((version, snapshot))
}

/// The Image repository's entry for each image, its custom metadata narrowed to the
/// hardwareIds this bundle installs it on. One image per hardwareId; the image must be one
/// the Image repository signed for that hardwareId.
fn bundle_targets(
    images: &dyn TargetSource,
    picks: &[(String, String)],
) -> Result<BTreeMap<String, TargetFile>> {
    if picks.is_empty() {
        return Err(Error::Bundle {
            reason: "no targets; expected at least one HARDWARE_ID=TARGET".into(),
        });
    }
    let mut by_hardware: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out: BTreeMap<String, TargetFile> = BTreeMap::new();
    for (hardware_id, name) in picks {
        if let Some(first) = by_hardware.insert(hardware_id, name) {
            return Err(Error::Bundle {
                reason: format!(
                    "hardwareId {hardware_id:?} is given two images, {first} and {name}; expected one image per hardwareId"
                ),
            });
        }
        let signed = images.target(name)?;
        let custom = signed.image_custom(name).map_err(|e| Error::Bundle {
            reason: format!("target {name} in the Image repository: {e}"),
        })?;
        if !custom.hardware_ids.iter().any(|h| h == hardware_id) {
            return Err(Error::Bundle {
                reason: format!(
                    "target {name} is signed by the Image repository for hardwareIds {:?}, not {hardware_id:?}",
                    custom.hardware_ids
                ),
            });
        }
        let entry = out.entry(name.clone()).or_insert_with(|| TargetFile {
            custom: Some(serde_json::json!({ "hardwareIds": [] })),
            hashes: signed.hashes.clone(),
            length: signed.length,
            extra: BTreeMap::new(),
        });
        if let Some(ids) = entry
            .custom
            .as_mut()
            .and_then(|c| c.get_mut("hardwareIds"))
            .and_then(|h| h.as_array_mut())
        {
            ids.push(hardware_id.clone().into());
        }
    }
    Ok(out)
}

/// The next offline-update snapshot listing `live`, valid as long as the longest-lived of
/// them (a stick carries this snapshot: it must outlive its bundle).
fn next_snapshot(
    store: &dyn Store,
    keys: &[Arc<dyn Signer>],
    root: &Root,
    live: &[OfflineBundle],
    now: DateTime<Utc>,
) -> Result<(u64, Vec<u8>)> {
    let version = store.latest_offline_snapshot()?.map_or(1, |(v, _)| v + 1);
    let mut meta = BTreeMap::new();
    for b in live {
        let mut file = MetaFile::new(b.version);
        file.length = Some(b.body.len() as u64);
        let mut hashes = ferry_core::metadata::Hashes::new();
        hashes.insert(
            "sha256".into(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&b.body)),
        );
        file.hashes = Some(hashes);
        meta.insert(format!("{}.json", b.name), file);
    }
    let expires = live
        .iter()
        .map(|b| b.expires)
        .max()
        .unwrap_or(now + chrono::Duration::days(1));
    let doc = OfflineSnapshot {
        type_: "offline-update-snapshot".into(),
        expires: ferry_core::metadata::Expires(expires),
        meta,
        spec_version: SPEC_VERSION.into(),
        version,
        extra: BTreeMap::new(),
    };
    Ok((
        version,
        sign(doc, keys, root, RoleType::OfflineUpdateSnapshot)?,
    ))
}

/// Sign `doc` with the keys the root lists for `role`, refusing if they fall short of its
/// threshold (the Director never hands out metadata a vehicle would reject).
fn sign<T: Document>(
    doc: T,
    keys: &[Arc<dyn Signer>],
    root: &Root,
    role: RoleType,
) -> Result<Vec<u8>> {
    if !root.has_offline_roles() {
        return Err(Error::Bundle {
            reason: format!(
                "director root v{} has no offline-update roles; rotate the root to one that names offline-update-snapshot and offline-update-targets keys (ferry director root propose --add-key offline-update-snapshot=PUB --add-key offline-update-targets=PUB)",
                root.version
            ),
        });
    }
    let authority = root.authority(role).map_err(Error::RootChain)?;
    let signers: Vec<&dyn Signer> = keys
        .iter()
        .filter(|k| authority.keyids().contains(k.key_id()))
        .map(|k| k.as_ref())
        .collect();
    if signers.len() < authority.threshold() as usize {
        return Err(Error::Bundle {
            reason: format!(
                "{} needs {} key(s) the director root v{} names; [keys] offline_update holds {} of them",
                role.name(),
                authority.threshold(),
                root.version,
                signers.len()
            ),
        });
    }
    let mut signed = Signed::new(doc);
    signed.sign_all(&signers).map_err(Error::Signing)?;
    signed.to_bytes().map_err(Error::Signing)
}

/// The receipt field a Primary writes the bundle and its results under (its vehicle manifest
/// carries it beside the ECUs' signed reports).
pub const RECEIPT_FIELD: &str = "offline_bundle";

/// Check and record a vehicle's receipt of an offline install: a vehicle manifest signed by
/// the vehicle's registered Primary key, every ECU report signed by its registered key, naming
/// a bundle this Director signed (and, for the version it holds, the digest it signed). It is
/// recorded as applied offline, reported late; it changes no assignment and no ECU's latest
/// report (the next online manifest does that). The same receipt twice is refused.
pub fn import_receipt(
    store: &dyn Store,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<crate::model::OfflineReceipt> {
    use ferry_core::manifest::{check_vehicle_manifest, VehicleManifest};
    let parsed =
        ferry_core::metadata::Parsed::<VehicleManifest>::from_bytes(body).map_err(|e| {
            Error::Receipt {
                reason: format!("not a signed vehicle manifest: {e}"),
            }
        })?;
    let vin = parsed.unverified().vin.clone();
    let outcome = parsed
        .unverified()
        .extra
        .get(RECEIPT_FIELD)
        .cloned()
        .ok_or_else(|| Error::Receipt {
            reason: format!("the manifest of {vin} has no {RECEIPT_FIELD}; expected the receipt a Primary writes after an offline install"),
        })?;
    let vehicle = store
        .ecu_keys(&vin)?
        .ok_or_else(|| Error::UnknownVehicle { vin: vin.clone() })?;
    check_vehicle_manifest(body, &vehicle).map_err(|e| Error::Receipt {
        reason: format!("{e}"),
    })?;
    let name = outcome["name"].as_str().unwrap_or_default().to_owned();
    let bundle = store.offline_bundle(&name)?.ok_or_else(|| Error::Receipt {
        reason: format!("the receipt names bundle {name:?}, which this Director never signed"),
    })?;
    if outcome["version"].as_u64() == Some(bundle.version) {
        let signed = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bundle.body));
        let named = outcome["digest"]["sha256"].as_str().unwrap_or_default();
        if named != signed {
            return Err(Error::Receipt {
                reason: format!(
                    "the receipt names bundle {name} v{} with sha256 {named:?}; the Director signed {signed}",
                    bundle.version
                ),
            });
        }
    }
    let mut receipt = crate::model::OfflineReceipt {
        id: 0,
        vin,
        bundle: name,
        result: outcome["result"].as_str().unwrap_or("unknown").to_owned(),
        outcome,
        received_at: now,
    };
    // A receipt is the same receipt however it was re-encoded on the way: its identity is
    // the digest of its canonical signed part, which the signatures cover.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| Error::Receipt {
        reason: format!("not JSON: {e}"),
    })?;
    let canonical = ferry_core::cjson::to_vec(&value["signed"]).map_err(|e| Error::Receipt {
        reason: format!("no canonical form: {e}"),
    })?;
    let signed_sha256: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&canonical).into();
    receipt.id = store.record_offline_receipt(&receipt, body, &signed_sha256)?;
    tracing::info!(vin = %receipt.vin, bundle = %receipt.bundle, result = %receipt.result, "offline receipt recorded (applied offline, reported late)");
    Ok(receipt)
}
