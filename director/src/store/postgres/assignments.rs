//! Assignments (the SQLite backend's `assignments.rs`, in PostgreSQL's dialect). Every write
//! runs with the vehicle's row locked ([`inventory::lock_active`]), so positions and queues
//! of one vehicle change one transaction at a time across Directors.

use super::inventory;
use super::sql::{execute, from_json, from_ms, get, query, query_opt, to_json};
use crate::model::{Assignment, AssignmentStatus, NewAssignment};
use crate::queue::{Active, Settled};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use ferry_core::metadata::TargetFile;
use std::collections::BTreeMap;
use tokio_postgres::Row;

const COLUMNS: &str = "id, vin, ecu_serial, target_name, target, position, status, detail, \
                       campaign, created_at, updated_at";

fn decode(r: &Row) -> Result<Assignment> {
    let w = "assignment";
    let status: String = get(r, 6, w)?;
    Ok(Assignment {
        id: get(r, 0, w)?,
        vin: get(r, 1, w)?,
        ecu_serial: get(r, 2, w)?,
        target_name: get(r, 3, w)?,
        target: from_json("assignment target", &get::<String>(r, 4, w)?)?,
        position: get(r, 5, w)?,
        status: status
            .parse()
            .map_err(|e| Error::corrupt("assignment status", e))?,
        detail: get(r, 7, w)?,
        campaign: get(r, 8, w)?,
        created_at: from_ms("assignment created_at", get(r, 9, w)?)?,
        updated_at: from_ms("assignment updated_at", get(r, 10, w)?)?,
    })
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

pub(super) async fn add(
    c: &impl GenericClient,
    vin: &str,
    new: &[NewAssignment],
    now: i64,
) -> Result<Vec<Assignment>> {
    inventory::lock_active(c, vin).await?;
    if new.is_empty() {
        return Err(Error::InvalidAssignment {
            reason: format!("no assignments given for vehicle {vin}; expected at least one"),
        });
    }
    let last: i64 = get(
        &query(
            c,
            "read last assignment position",
            "SELECT coalesce(max(position), 0)::bigint FROM assignments WHERE vin = $1",
            &[&vin],
        )
        .await?[0],
        0,
        "assignment position",
    )?;
    let mut added = Vec::with_capacity(new.len());
    for (i, a) in new.iter().enumerate() {
        check_new(vin, a)?;
        let on_vehicle = query_opt(
            c,
            "look up assigned ECU",
            "SELECT 1 FROM ecus WHERE serial = $1 AND vin = $2",
            &[&a.ecu_serial, &vin],
        )
        .await?
        .is_some();
        if !on_vehicle {
            return Err(Error::UnknownEcu {
                vin: vin.to_owned(),
                serial: a.ecu_serial.clone(),
            });
        }
        let target = to_json("assignment target", &a.target)?;
        // The one active assignment per ECU and target is the unique index's to enforce; a
        // conflict inserts nothing (no aborted transaction) and is reported as such.
        let row = query_opt(
            c,
            "insert assignment",
            &format!(
                "INSERT INTO assignments (vin, ecu_serial, target_name, target, position, status,
                                          campaign, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7)
                 ON CONFLICT (ecu_serial, target_name) WHERE status IN ('pending', 'in_flight')
                 DO NOTHING
                 RETURNING {COLUMNS}"
            ),
            &[
                &vin,
                &a.ecu_serial,
                &a.target_name,
                &target,
                &(last + 1 + i as i64),
                &a.campaign,
                &now,
            ],
        )
        .await?;
        match row {
            Some(r) => added.push(decode(&r)?),
            None => {
                return Err(Error::AssignmentExists {
                    vin: vin.to_owned(),
                    serial: a.ecu_serial.clone(),
                    target: a.target_name.clone(),
                })
            }
        }
    }
    Ok(added)
}

async fn get_one(c: &impl GenericClient, id: i64) -> Result<Option<Assignment>> {
    query_opt(
        c,
        "read assignment",
        &format!("SELECT {COLUMNS} FROM assignments WHERE id = $1"),
        &[&id],
    )
    .await?
    .map(|r| decode(&r))
    .transpose()
}

pub(super) async fn list(
    c: &impl GenericClient,
    vin: &str,
    active_only: bool,
) -> Result<Vec<Assignment>> {
    decode_all(&query(c, "list assignments", &list_sql(active_only), &[&vin]).await?)
}

/// The statement of [`list`] (taking the VIN as `$1`), for a caller that sends it in a
/// pipeline; its rows go through [`decode_all`].
pub(super) fn list_sql(active_only: bool) -> String {
    let filter = if active_only {
        "AND status IN ('pending', 'in_flight')"
    } else {
        ""
    };
    format!("SELECT {COLUMNS} FROM assignments WHERE vin = $1 {filter} ORDER BY position")
}

pub(super) fn decode_all(rows: &[Row]) -> Result<Vec<Assignment>> {
    rows.iter().map(decode).collect()
}

pub(super) async fn cancel_vehicle(
    c: &impl GenericClient,
    vin: &str,
    detail: &str,
    now: i64,
) -> Result<u64> {
    // Removed vehicles included (removal cancels through here); locked like every write.
    let locked = query_opt(
        c,
        "lock vehicle",
        "SELECT 1 FROM vehicles WHERE vin = $1 FOR NO KEY UPDATE",
        &[&vin],
    )
    .await?;
    if locked.is_none() {
        return Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        });
    }
    execute(
        c,
        "cancel assignments",
        "UPDATE assignments SET status = 'cancelled', detail = $2, updated_at = $3
         WHERE vin = $1 AND status IN ('pending', 'in_flight')",
        &[&vin, &detail, &now],
    )
    .await
}

pub(super) async fn cancel_one(
    c: &impl GenericClient,
    id: i64,
    detail: &str,
    now: i64,
) -> Result<Assignment> {
    let current = get_one(c, id)
        .await?
        .ok_or(Error::UnknownAssignment { id })?;
    // The vehicle's writes take turns; the status read again under its lock.
    inventory::lock_active(c, &current.vin)
        .await
        .or_else(|e| match e {
            Error::VehicleRemoved { .. } => Ok(()),
            e => Err(e),
        })?;
    let current = get_one(c, id)
        .await?
        .ok_or(Error::UnknownAssignment { id })?;
    if !current.status.is_active() {
        return Err(Error::AssignmentNotActive {
            id,
            status: current.status.to_string(),
        });
    }
    execute(
        c,
        "cancel assignment",
        "UPDATE assignments SET status = 'cancelled', detail = $2, updated_at = $3 WHERE id = $1",
        &[&id, &detail, &now],
    )
    .await?;
    let queue = active_of_ecu(c, &current.vin, &current.ecu_serial).await?;
    let why = format!(
        "{} (assignment {id}) before it in the ECU's queue was cancelled",
        current.target_name
    );
    let provides = reported_provides(c, &current.ecu_serial).await?;
    let unmet = crate::queue::unmet_without(&why, &provides, &queue.iter().collect::<Vec<_>>());
    set_settled(c, &unmet, now).await?;
    get_one(c, id).await?.ok_or(Error::UnknownAssignment { id })
}

async fn reported_provides(
    c: &impl GenericClient,
    serial: &str,
) -> Result<BTreeMap<String, String>> {
    let row = query_opt(
        c,
        "read the ECU's reported provides",
        "SELECT provides FROM ecu_reports WHERE serial = $1",
        &[&serial],
    )
    .await?;
    match row {
        None => Ok(BTreeMap::new()),
        Some(r) => from_json("ECU report provides", &get::<String>(&r, 0, "provides")?),
    }
}

async fn active_of_ecu(c: &impl GenericClient, vin: &str, serial: &str) -> Result<Vec<Active>> {
    let rows = query(
        c,
        "read active assignments",
        "SELECT id, position, target_name, target, status FROM assignments
         WHERE vin = $1 AND ecu_serial = $2 AND status IN ('pending', 'in_flight')",
        &[&vin, &serial],
    )
    .await?;
    rows.iter()
        .map(|r| {
            let w = "assignment";
            Ok(Active {
                id: get(r, 0, w)?,
                position: get(r, 1, w)?,
                target_name: get(r, 2, w)?,
                target: from_json::<TargetFile>("assignment target", &get::<String>(r, 3, w)?)?,
                status: get::<String>(r, 4, w)?
                    .parse()
                    .map_err(|e| Error::corrupt("assignment status", e))?,
            })
        })
        .collect()
}

/// Store what [`crate::queue`] settled.
pub(super) async fn set_settled(
    c: &impl GenericClient,
    settled: &[Settled],
    now: i64,
) -> Result<()> {
    for s in settled {
        execute(
            c,
            "update assignment",
            "UPDATE assignments SET status = $2, detail = $3, updated_at = $4 WHERE id = $1",
            &[&s.id, &s.status.as_str(), &s.detail, &now],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn mark_in_flight(c: &impl GenericClient, ids: &[i64], now: i64) -> Result<u64> {
    execute(
        c,
        "mark assignments in flight",
        "UPDATE assignments SET status = $2, updated_at = $3 WHERE id = ANY($1) AND status = $4",
        &[
            &ids,
            &AssignmentStatus::InFlight.as_str(),
            &now,
            &AssignmentStatus::Pending.as_str(),
        ],
    )
    .await
}
