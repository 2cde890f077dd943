//! Assignments: which target each ECU of a vehicle is to install, in which order, and how far
//! it got. (Manifests move them to installed or failed: see `manifests.rs`.)

use super::{db, from_json, from_ms, inventory, is_unique_violation, to_json};
use crate::model::{Assignment, AssignmentStatus, NewAssignment};
use crate::queue::{Active, Settled};
use crate::{Error, Result};
use ferry_core::metadata::TargetFile;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::BTreeMap;

const COLUMNS: &str = "id, vin, ecu_serial, target_name, target, position, status, detail, \
                       campaign, created_at, updated_at";

struct RawAssignment {
    id: i64,
    vin: String,
    ecu_serial: String,
    target_name: String,
    target: String,
    position: i64,
    status: String,
    detail: String,
    campaign: Option<String>,
    created_at: i64,
    updated_at: i64,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawAssignment> {
    Ok(RawAssignment {
        id: r.get(0)?,
        vin: r.get(1)?,
        ecu_serial: r.get(2)?,
        target_name: r.get(3)?,
        target: r.get(4)?,
        position: r.get(5)?,
        status: r.get(6)?,
        detail: r.get(7)?,
        campaign: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

impl RawAssignment {
    fn decode(self) -> Result<Assignment> {
        Ok(Assignment {
            id: self.id,
            vin: self.vin,
            ecu_serial: self.ecu_serial,
            target_name: self.target_name,
            target: from_json("assignment target", &self.target)?,
            position: self.position,
            status: self
                .status
                .parse()
                .map_err(|e| Error::corrupt("assignment status", e))?,
            detail: self.detail,
            campaign: self.campaign,
            created_at: from_ms("assignment created_at", self.created_at)?,
            updated_at: from_ms("assignment updated_at", self.updated_at)?,
        })
    }
}

fn check_new(vin: &str, a: &NewAssignment) -> Result<()> {
    let reason = if a.target_name.is_empty() || a.target_name.chars().any(char::is_control) {
        format!(
            "target name {:?} for ECU {} of vehicle {vin} is empty or has control characters; expected an Image repository target name",
            a.target_name, a.ecu_serial
        )
    } else if a.target.hashes.is_empty() {
        format!(
            "target {} for ECU {} of vehicle {vin} lists no hashes; expected the length and hashes the Image repository signed",
            a.target_name, a.ecu_serial
        )
    } else {
        return Ok(());
    };
    Err(Error::InvalidAssignment { reason })
}

pub(super) fn add(
    conn: &Connection,
    vin: &str,
    new: &[NewAssignment],
    now: i64,
) -> Result<Vec<Assignment>> {
    inventory::check_active(conn, vin)?;
    if new.is_empty() {
        return Err(Error::InvalidAssignment {
            reason: format!("no assignments given for vehicle {vin}; expected at least one"),
        });
    }
    let last: i64 = conn
        .prepare_cached("SELECT coalesce(max(position), 0) FROM assignments WHERE vin = ?1")
        .and_then(|mut s| s.query_row([vin], |r| r.get(0)))
        .map_err(db("read last assignment position"))?;
    let mut ids = Vec::with_capacity(new.len());
    for (i, a) in new.iter().enumerate() {
        check_new(vin, a)?;
        let on_vehicle = conn
            .prepare_cached("SELECT 1 FROM ecus WHERE serial = ?1 AND vin = ?2")
            .and_then(|mut s| s.exists([&a.ecu_serial, vin]))
            .map_err(db("look up assigned ECU"))?;
        if !on_vehicle {
            return Err(Error::UnknownEcu {
                vin: vin.to_owned(),
                serial: a.ecu_serial.clone(),
            });
        }
        let target = to_json("assignment target", &a.target)?;
        let inserted = conn
            .prepare_cached(
                "INSERT INTO assignments (vin, ecu_serial, target_name, target, position, status,
                                          campaign, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    vin,
                    a.ecu_serial,
                    a.target_name,
                    target,
                    last + 1 + i as i64,
                    a.campaign,
                    now
                ])
            });
        match inserted {
            Ok(_) => ids.push(conn.last_insert_rowid()),
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::AssignmentExists {
                    vin: vin.to_owned(),
                    serial: a.ecu_serial.clone(),
                    target: a.target_name.clone(),
                })
            }
            Err(e) => return Err(Error::storage("insert assignment", e)),
        }
    }
    ids.into_iter()
        .map(|id| {
            get(conn, id)?.ok_or_else(|| Error::corrupt("assignment", "vanished after insert"))
        })
        .collect()
}

fn get(conn: &Connection, id: i64) -> Result<Option<Assignment>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM assignments WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], raw).optional())
        .map_err(db("read assignment"))?
        .map(RawAssignment::decode)
        .transpose()
}

/// The query of [`list`] (`?1`: the VIN).
pub(super) fn list_sql(active_only: bool) -> String {
    let filter = if active_only {
        "AND status IN ('pending', 'in_flight')"
    } else {
        ""
    };
    format!("SELECT {COLUMNS} FROM assignments WHERE vin = ?1 {filter} ORDER BY position")
}

pub(super) fn list(conn: &Connection, vin: &str, active_only: bool) -> Result<Vec<Assignment>> {
    let mut stmt = conn
        .prepare_cached(&list_sql(active_only))
        .map_err(db("list assignments"))?;
    let rows = stmt
        .query_map([vin], raw)
        .map_err(db("list assignments"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("list assignments"))?;
    rows.into_iter().map(RawAssignment::decode).collect()
}

pub(super) fn cancel_vehicle(conn: &Connection, vin: &str, detail: &str, now: i64) -> Result<u64> {
    if !inventory::exists(conn, vin)? {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        });
    }
    let n = conn
        .prepare_cached(
            "UPDATE assignments SET status = 'cancelled', detail = ?2, updated_at = ?3
             WHERE vin = ?1 AND status IN ('pending', 'in_flight')",
        )
        .and_then(|mut s| s.execute(params![vin, detail, now]))
        .map_err(db("cancel assignments"))?;
    Ok(n as u64)
}

pub(super) fn cancel_one(conn: &Connection, id: i64, detail: &str, now: i64) -> Result<Assignment> {
    let current = get(conn, id)?.ok_or(Error::UnknownAssignment { id })?;
    if !current.status.is_active() {
        return Err(Error::AssignmentNotActive {
            id,
            status: current.status.to_string(),
        });
    }
    conn.prepare_cached(
        "UPDATE assignments SET status = 'cancelled', detail = ?2, updated_at = ?3 WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![id, detail, now]))
    .map_err(db("cancel assignment"))?;
    // What was queued behind it on its ECU and needed it is failed now, in the same
    // transaction, rather than served to an ECU that could only refuse it.
    let queue = active_of_ecu(conn, &current.vin, &current.ecu_serial)?;
    let why = format!(
        "{} (assignment {id}) before it in the ECU's queue was cancelled",
        current.target_name
    );
    let provides = reported_provides(conn, &current.ecu_serial)?;
    let unmet = crate::queue::unmet_without(&why, &provides, &queue.iter().collect::<Vec<_>>());
    set_settled(conn, &unmet, now)?;
    get(conn, id)?.ok_or(Error::UnknownAssignment { id })
}

/// What the ECU last reported it provides (nothing if it never reported).
fn reported_provides(conn: &Connection, serial: &str) -> Result<BTreeMap<String, String>> {
    let json: Option<String> = conn
        .prepare_cached("SELECT provides FROM ecu_reports WHERE serial = ?1")
        .and_then(|mut s| s.query_row([serial], |r| r.get(0)).optional())
        .map_err(db("read the ECU's reported provides"))?;
    json.map_or_else(
        || Ok(BTreeMap::new()),
        |j| from_json("ECU report provides", &j),
    )
}

/// The ECU's active assignments (its queue), as a report or a cancel is checked against them.
fn active_of_ecu(conn: &Connection, vin: &str, serial: &str) -> Result<Vec<Active>> {
    // The partial index of active assignments (schema version 3) holds exactly these rows
    // under the ECU's serial. Left to itself the planner picks the (ecu_serial, status) index
    // and walks the IN list through a temporary B-tree, opened and freed on every call: three
    // times per check-in, on the writer everyone waits for.
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, position, target_name, target, status FROM assignments
             INDEXED BY assignments_one_active
             WHERE vin = ?1 AND ecu_serial = ?2 AND status IN ('pending', 'in_flight')",
        )
        .map_err(db("read active assignments"))?;
    let rows = stmt
        .query_map([vin, serial], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .map_err(db("read active assignments"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("read active assignments"))?;
    rows.into_iter()
        .map(|(id, position, target_name, target, status)| {
            Ok(Active {
                id,
                position,
                target: from_json::<TargetFile>("assignment target", &target)?,
                target_name,
                status: status
                    .parse()
                    .map_err(|e| Error::corrupt("assignment status", e))?,
            })
        })
        .collect()
}

/// Store what [`crate::queue`] settled.
pub(super) fn set_settled(conn: &Connection, settled: &[Settled], now: i64) -> Result<()> {
    let mut update = conn
        .prepare_cached(
            "UPDATE assignments SET status = ?2, detail = ?3, updated_at = ?4 WHERE id = ?1",
        )
        .map_err(db("update assignment"))?;
    for s in settled {
        update
            .execute(params![s.id, s.status.as_str(), s.detail, now])
            .map_err(db("update assignment"))?;
    }
    Ok(())
}

pub(super) fn mark_in_flight(conn: &Connection, ids: &[i64], now: i64) -> Result<u64> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE assignments SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = ?4",
        )
        .map_err(db("mark assignment in flight"))?;
    let mut changed = 0;
    for id in ids {
        changed += stmt
            .execute(params![
                id,
                AssignmentStatus::InFlight.as_str(),
                now,
                AssignmentStatus::Pending.as_str()
            ])
            .map_err(db("mark assignment in flight"))? as u64;
    }
    Ok(changed)
}
