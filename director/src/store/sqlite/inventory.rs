//! Vehicles, ECUs, their last reports, and device tokens.

use super::{db, from_json, from_ms, now_ms, to_json};
use crate::model::{
    AssignmentStatus, Ecu, EcuState, InstalledImage, NewVehicle, StatusSummary, Vehicle,
    VehicleState,
};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn register(conn: &Connection, vehicle: &NewVehicle) -> Result<()> {
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
        .and_then(|mut s| s.execute(params![vin, now_ms()]))
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

pub(super) fn get_vehicle(conn: &Connection, vin: &str) -> Result<Option<Vehicle>> {
    let row: Option<(i64, Option<i64>)> = conn
        .prepare_cached("SELECT created_at, last_seen FROM vehicles WHERE vin = ?1")
        .and_then(|mut s| {
            s.query_row([vin], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db("read vehicle"))?;
    let Some((created_at, last_seen)) = row else {
        return Ok(None);
    };
    let ecus = ecus(conn, vin)?;
    let last_seen = last_seen
        .map(|t| from_ms("vehicle last_seen", t))
        .transpose()?;
    let status = summary(conn, vin, last_seen.is_some(), &ecus)?;
    Ok(Some(Vehicle {
        vin: vin.to_owned(),
        ecus,
        created_at: from_ms("vehicle created_at", created_at)?,
        last_seen,
        status,
    }))
}

type EcuRow = (
    String,
    String,
    String,
    bool,
    Option<(String, i64, String, String, String, Option<String>, i64)>,
);

fn ecus(conn: &Connection, vin: &str) -> Result<Vec<Ecu>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.serial, e.hardware_id, e.public_key, e.is_primary,
                    r.filepath, r.length, r.hashes, r.provides, r.attacks_detected,
                    r.last_install, r.reported_at
             FROM ecus e LEFT JOIN ecu_reports r ON r.serial = e.serial
             WHERE e.vin = ?1 ORDER BY e.is_primary DESC, e.serial",
        )
        .map_err(db("read ECUs"))?;
    let rows = stmt
        .query_map([vin], |r| {
            let report = match r.get::<_, Option<String>>(4)? {
                None => None,
                Some(filepath) => Some((
                    filepath,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                )),
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, report))
        })
        .map_err(db("read ECUs"))?
        .collect::<rusqlite::Result<Vec<EcuRow>>>()
        .map_err(db("read ECUs"))?;
    rows.into_iter()
        .map(|(serial, hardware_id, key, primary, report)| {
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
            Ok(Ecu {
                public_key: from_json("ECU public key", &key)?,
                serial,
                hardware_id,
                primary,
                reported,
            })
        })
        .collect()
}

fn summary(conn: &Connection, vin: &str, seen: bool, ecus: &[Ecu]) -> Result<StatusSummary> {
    let mut s = StatusSummary::default();
    let mut stmt = conn
        .prepare_cached("SELECT status, count(*) FROM assignments WHERE vin = ?1 GROUP BY status")
        .map_err(db("count assignments"))?;
    let counts = stmt
        .query_map([vin], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(db("count assignments"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("count assignments"))?;
    for (status, n) in counts {
        let n = n.max(0) as u64;
        match status
            .parse::<AssignmentStatus>()
            .map_err(|e| Error::corrupt("assignment status", e))?
        {
            AssignmentStatus::Pending => s.pending = n,
            AssignmentStatus::InFlight => s.in_flight = n,
            AssignmentStatus::Installed => s.installed = n,
            AssignmentStatus::Failed => s.failed = n,
            AssignmentStatus::Cancelled => s.cancelled = n,
        }
    }
    s.attacks_reported_by = ecus
        .iter()
        .filter(|e| {
            e.reported
                .as_ref()
                .is_some_and(|r| !r.attacks_detected.is_empty())
        })
        .map(|e| e.serial.clone())
        .collect();
    let last_finished: Option<String> = conn
        .prepare_cached(
            "SELECT status FROM assignments WHERE vin = ?1 AND status IN ('installed', 'failed')
             ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .and_then(|mut st| st.query_row([vin], |r| r.get(0)).optional())
        .map_err(db("read last finished assignment"))?;
    s.state = if !s.attacks_reported_by.is_empty() {
        VehicleState::AttackReported
    } else if !seen {
        VehicleState::NeverSeen
    } else if s.pending + s.in_flight > 0 {
        VehicleState::Updating
    } else if last_finished.as_deref() == Some("failed") {
        VehicleState::UpdateFailed
    } else {
        VehicleState::UpToDate
    };
    Ok(s)
}

pub(super) fn list_vins(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT vin FROM vehicles ORDER BY vin")
        .map_err(db("list vehicles"))?;
    let vins = stmt
        .query_map([], |r| r.get(0))
        .map_err(db("list vehicles"))?
        .collect::<rusqlite::Result<Vec<String>>>()
        .map_err(db("list vehicles"));
    vins
}

pub(super) fn set_device_token_hash(conn: &Connection, vin: &str, hash: &[u8; 32]) -> Result<()> {
    let n = conn
        .prepare_cached("UPDATE vehicles SET device_token_sha256 = ?2 WHERE vin = ?1")
        .and_then(|mut s| s.execute(params![vin, &hash[..]]))
        .map_err(db("store device token hash"))?;
    if n == 0 {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        });
    }
    Ok(())
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
