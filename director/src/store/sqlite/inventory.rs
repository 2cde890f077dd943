//! Vehicles, ECUs, their last reports, and device tokens.

use super::{db, from_json, from_ms, to_json};
use crate::model::{
    AssignmentStatus, Ecu, EcuRef, EcuState, InstalledImage, NewVehicle, StatusSummary, Vehicle,
    VehicleState,
};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashMap;

pub(super) fn register(conn: &Connection, vehicle: &NewVehicle, now: i64) -> Result<()> {
    let vin = &vehicle.vin;
    if exists(conn, vin)? {
        return Err(Error::VehicleExists { vin: vin.clone() });
    }
    for ecu in &vehicle.ecus {
        let owner: Option<String> = conn
            .prepare_cached("SELECT vin FROM ecus WHERE serial = ?1")
            .and_then(|mut s| s.query_row([&ecu.serial], |r| r.get(0)).optional())
            .map_err(db("look up ECU serial"))?;
        if let Some(owner) = owner {
            return Err(Error::SerialTaken {
                serial: ecu.serial.clone(),
                owner,
            });
        }
    }
    conn.prepare_cached("INSERT INTO vehicles (vin, created_at) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![vin, now]))
        .map_err(db("insert vehicle"))?;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO ecus (serial, vin, hardware_id, public_key, is_primary)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(db("insert ECU"))?;
    for ecu in &vehicle.ecus {
        let key = to_json("ECU public key", &ecu.public_key)?;
        insert
            .execute(params![ecu.serial, vin, ecu.hardware_id, key, ecu.primary])
            .map_err(db("insert ECU"))?;
    }
    Ok(())
}

/// A vehicle with its status counts, one row per vehicle: the counts and the last finished
/// assignment are correlated subqueries (each an index lookup on the vehicle's assignments),
/// so a page of vehicles is one query.
const VEHICLE_SELECT: &str = "SELECT v.vin, v.created_at, v.last_seen,
    (SELECT count(*) FROM assignments a WHERE a.vin = v.vin AND a.status = 'pending'),
    (SELECT count(*) FROM assignments a WHERE a.vin = v.vin AND a.status = 'in_flight'),
    (SELECT count(*) FROM assignments a WHERE a.vin = v.vin AND a.status = 'installed'),
    (SELECT count(*) FROM assignments a WHERE a.vin = v.vin AND a.status = 'failed'),
    (SELECT count(*) FROM assignments a WHERE a.vin = v.vin AND a.status = 'cancelled'),
    (SELECT a.status FROM assignments a
        WHERE a.vin = v.vin AND a.status IN ('installed', 'failed')
        ORDER BY a.updated_at DESC, a.id DESC LIMIT 1),
    v.removed_at
    FROM vehicles v";

struct VehicleRow {
    vin: String,
    created_at: i64,
    last_seen: Option<i64>,
    /// pending, in_flight, installed, failed, cancelled
    counts: [i64; 5],
    last_finished: Option<String>,
    removed_at: Option<i64>,
}

fn vehicle_row(r: &Row<'_>) -> rusqlite::Result<VehicleRow> {
    Ok(VehicleRow {
        vin: r.get(0)?,
        created_at: r.get(1)?,
        last_seen: r.get(2)?,
        counts: [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
        last_finished: r.get(8)?,
        removed_at: r.get(9)?,
    })
}

impl VehicleRow {
    fn into_vehicle(self, ecus: Vec<Ecu>) -> Result<Vehicle> {
        let last_seen = self
            .last_seen
            .map(|t| from_ms("vehicle last_seen", t))
            .transpose()?;
        let status = summary(
            &self.counts,
            self.last_finished.as_deref(),
            last_seen.is_some(),
            &ecus,
        );
        Ok(Vehicle {
            created_at: from_ms("vehicle created_at", self.created_at)?,
            vin: self.vin,
            ecus,
            last_seen,
            status,
            removed_at: self
                .removed_at
                .map(|t| from_ms("vehicle removed_at", t))
                .transpose()?,
        })
    }
}

pub(super) fn get_vehicle(conn: &Connection, vin: &str) -> Result<Option<Vehicle>> {
    let row = conn
        .prepare_cached(&format!("{VEHICLE_SELECT} WHERE v.vin = ?1"))
        .and_then(|mut s| s.query_row([vin], vehicle_row).optional())
        .map_err(db("read vehicle"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut ecus = ecus(conn, "e.vin = ?1", params![vin])?;
    let own = ecus.remove(vin).unwrap_or_default();
    row.into_vehicle(own).map(Some)
}

pub(super) fn list_vehicles(
    conn: &Connection,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Vehicle>> {
    // VINs are never empty, so "" sorts before every one.
    let after = after.unwrap_or("");
    let rows = conn
        .prepare_cached(&format!(
            "{VEHICLE_SELECT} WHERE v.vin > ?1 ORDER BY v.vin LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![after, limit], vehicle_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db("list vehicles"))?;
    let Some(last) = rows.last() else {
        return Ok(Vec::new());
    };
    // The page's ECUs in one range query over the same VINs.
    let mut ecus = ecus(conn, "e.vin > ?1 AND e.vin <= ?2", params![after, last.vin])?;
    rows.into_iter()
        .map(|row| {
            let own = ecus.remove(&row.vin).unwrap_or_default();
            row.into_vehicle(own)
        })
        .collect()
}

type EcuRow = (
    String,
    String,
    String,
    String,
    bool,
    Option<(String, i64, String, String, String, Option<String>, i64)>,
);

/// The ECUs of the vehicles `filter` selects (an SQL condition on `e`), by VIN; each
/// vehicle's primary first, then its secondaries by serial.
fn ecus(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<HashMap<String, Vec<Ecu>>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT e.vin, e.serial, e.hardware_id, e.public_key, e.is_primary,
                    r.filepath, r.length, r.hashes, r.provides, r.attacks_detected,
                    r.last_install, r.reported_at
             FROM ecus e LEFT JOIN ecu_reports r ON r.serial = e.serial
             WHERE {filter} ORDER BY e.vin, e.is_primary DESC, e.serial"
        ))
        .map_err(db("read ECUs"))?;
    let rows = stmt
        .query_map(params, |r| {
            let report = match r.get::<_, Option<String>>(5)? {
                None => None,
                Some(filepath) => Some((
                    filepath,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                )),
            };
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                report,
            ))
        })
        .map_err(db("read ECUs"))?
        .collect::<rusqlite::Result<Vec<EcuRow>>>()
        .map_err(db("read ECUs"))?;
    let mut by_vin: HashMap<String, Vec<Ecu>> = HashMap::new();
    for (vin, serial, hardware_id, key, primary, report) in rows {
        let reported = report
            .map(|(filepath, length, hashes, provides, attacks, last, at)| {
                Ok::<_, Error>(EcuState {
                    installed_image: InstalledImage {
                        filepath,
                        length: u64::try_from(length).map_err(|_| {
                            Error::corrupt("ECU report", format!("negative length {length}"))
                        })?,
                        hashes: from_json("ECU report hashes", &hashes)?,
                    },
                    provides: from_json("ECU report provides", &provides)?,
                    attacks_detected: attacks,
                    last_install: last
                        .map(|l| from_json("ECU report last_install", &l))
                        .transpose()?,
                    reported_at: from_ms("ECU report time", at)?,
                })
            })
            .transpose()?;
        by_vin.entry(vin).or_default().push(Ecu {
            public_key: from_json("ECU public key", &key)?,
            serial,
            hardware_id,
            primary,
            reported,
        });
    }
    Ok(by_vin)
}

/// The status summary from a vehicle's assignment counts (pending, in flight, installed,
/// failed, cancelled), the status of its most recently finished assignment, whether it was
/// ever seen, and its ECUs' reports.
fn summary(
    counts: &[i64; 5],
    last_finished: Option<&str>,
    seen: bool,
    ecus: &[Ecu],
) -> StatusSummary {
    let n = |i: usize| u64::try_from(counts[i]).unwrap_or(0);
    let mut s = StatusSummary {
        pending: n(0),
        in_flight: n(1),
        installed: n(2),
        failed: n(3),
        cancelled: n(4),
        ..StatusSummary::default()
    };
    s.attacks_reported_by = ecus
        .iter()
        .filter(|e| {
            e.reported
                .as_ref()
                .is_some_and(|r| !r.attacks_detected.is_empty())
        })
        .map(|e| e.serial.clone())
        .collect();
    s.state = if !s.attacks_reported_by.is_empty() {
        VehicleState::AttackReported
    } else if !seen {
        VehicleState::NeverSeen
    } else if s.pending + s.in_flight > 0 {
        VehicleState::Updating
    } else if last_finished == Some(AssignmentStatus::Failed.as_str()) {
        VehicleState::UpdateFailed
    } else {
        VehicleState::UpToDate
    };
    s
}

pub(super) fn ecus_with_hardware_id(
    conn: &Connection,
    hardware_id: &str,
    vins: Option<&[String]>,
) -> Result<Vec<EcuRef>> {
    // The VIN list travels as one JSON array parameter (json_each), so any length is one query.
    let vins = vins.map(|v| to_json("campaign VINs", &v)).transpose()?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.vin, e.serial FROM ecus e JOIN vehicles v ON v.vin = e.vin
             WHERE e.hardware_id = ?1 AND v.removed_at IS NULL
               AND (?2 IS NULL OR e.vin IN (SELECT value FROM json_each(?2)))
             ORDER BY e.vin, e.serial",
        )
        .map_err(db("select ECUs by hardware id"))?;
    let refs = stmt
        .query_map(params![hardware_id, vins], |r| {
            Ok(EcuRef {
                vin: r.get(0)?,
                serial: r.get(1)?,
            })
        })
        .map_err(db("select ECUs by hardware id"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("select ECUs by hardware id"));
    refs
}

pub(super) fn vins_without_metadata(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT v.vin FROM vehicles v
             WHERE v.removed_at IS NULL
               AND (SELECT count(*) FROM vehicle_metadata m WHERE m.vin = v.vin) < 3
             ORDER BY v.vin",
        )
        .map_err(db("list vehicles without metadata"))?;
    let vins = stmt
        .query_map([], |r| r.get(0))
        .map_err(db("list vehicles without metadata"))?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db("list vehicles without metadata"));
    vins
}

pub(super) fn list_vins(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT vin FROM vehicles WHERE removed_at IS NULL ORDER BY vin")
        .map_err(db("list vehicles"))?;
    let vins = stmt
        .query_map([], |r| r.get(0))
        .map_err(db("list vehicles"))?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db("list vehicles"));
    vins
}

/// Replace `vin`'s device token hash: the token it was issued before is refused from this
/// commit on.
pub(super) fn set_device_token_hash(conn: &Connection, vin: &str, hash: &[u8; 32]) -> Result<()> {
    let n = conn
        .prepare_cached(
            "UPDATE vehicles SET device_token_sha256 = ?2 WHERE vin = ?1 AND removed_at IS NULL",
        )
        .and_then(|mut s| s.execute(params![vin, &hash[..]]))
        .map_err(db("store device token hash"))?;
    if n == 0 {
        return Err(not_active(conn, vin)?);
    }
    Ok(())
}

/// Why `vin` is not an active vehicle: removed, or never registered.
fn not_active(conn: &Connection, vin: &str) -> Result<Error> {
    let vin = vin.to_owned();
    Ok(if exists(conn, &vin)? {
        Error::VehicleRemoved { vin }
    } else {
        Error::UnknownVehicle { vin }
    })
}

/// Fail unless `vin` is registered and not removed.
pub(super) fn check_active(conn: &Connection, vin: &str) -> Result<()> {
    let active = conn
        .prepare_cached("SELECT 1 FROM vehicles WHERE vin = ?1 AND removed_at IS NULL")
        .and_then(|mut s| s.exists([vin]))
        .map_err(db("look up vehicle"))?;
    if active {
        Ok(())
    } else {
        Err(not_active(conn, vin)?)
    }
}

/// Remove `vin`: its device token and its signed metadata go (nothing is served to it any
/// more, and the refresher no longer signs for it), its active assignments are cancelled;
/// the vehicle, its ECUs, manifests and assignments stay as history. Returns how many
/// assignments were cancelled.
pub(super) fn remove(conn: &Connection, vin: &str, now: i64) -> Result<u64> {
    check_active(conn, vin)?;
    let cancelled = super::assignments::cancel_vehicle(conn, vin, "vehicle removed", now)?;
    conn.prepare_cached(
        "UPDATE vehicles SET removed_at = ?2, device_token_sha256 = NULL WHERE vin = ?1",
    )
    .and_then(|mut s| s.execute(params![vin, now]))
    .map_err(db("mark vehicle removed"))?;
    for table in ["vehicle_metadata", "vehicle_metadata_history"] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE vin = ?1"))
            .and_then(|mut s| s.execute([vin]))
            .map_err(db("drop a removed vehicle's metadata"))?;
    }
    Ok(cancelled)
}

pub(super) fn device_token_hash(conn: &Connection, vin: &str) -> Result<Option<Vec<u8>>> {
    let hash: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT device_token_sha256 FROM vehicles WHERE vin = ?1")
        .and_then(|mut s| s.query_row([vin], |r| r.get(0)).optional())
        .map_err(db("read device token hash"))?;
    Ok(hash.flatten())
}

/// Whether `vin` is registered.
pub(super) fn exists(conn: &Connection, vin: &str) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM vehicles WHERE vin = ?1")
        .and_then(|mut s| s.exists([vin]))
        .map_err(db("look up vehicle"))
}
