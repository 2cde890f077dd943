//! Vehicles, ECUs, their last reports, and device tokens (the SQLite backend's
//! `inventory.rs`, in PostgreSQL's dialect).

use super::sql::{execute, from_json, from_ms, get, pg, query, query_opt, to_json};
use crate::model::{
    AssignmentStatus, Ecu, EcuRef, EcuState, InstalledImage, NewVehicle, StatusSummary, Vehicle,
    VehicleState,
};
use crate::{Error, Result};
use deadpool_postgres::GenericClient;
use std::collections::HashMap;
use tokio_postgres::Row;

pub(super) async fn register(c: &impl GenericClient, vehicle: &NewVehicle, now: i64) -> Result<()> {
    let vin = &vehicle.vin;
    if exists(c, vin).await? {
        return Err(Error::VehicleExists { vin: vin.clone() });
    }
    for ecu in &vehicle.ecus {
        let owner = query_opt(
            c,
            "look up ECU serial",
            "SELECT vin FROM ecus WHERE serial = $1",
            &[&ecu.serial],
        )
        .await?;
        if let Some(owner) = owner {
            return Err(Error::SerialTaken {
                serial: ecu.serial.clone(),
                owner: get(&owner, 0, "ECU owner")?,
            });
        }
    }
    // Another Director registering the same VIN or serial at the same moment: the loser's
    // insert violates the key, and gets the error the checks above give.
    let inserted = c
        .execute(
            "INSERT INTO vehicles (vin, created_at) VALUES ($1, $2)",
            &[vin, &now],
        )
        .await;
    if let Err(e) = inserted {
        return Err(match super::sql::unique_violation(&e) {
            Some(_) => Error::VehicleExists { vin: vin.clone() },
            None => super::sql::classify("insert vehicle", e),
        });
    }
    for ecu in &vehicle.ecus {
        let key = to_json("ECU public key", &ecu.public_key)?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO ecus (serial, vin, hardware_id, public_key, is_primary)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .await
            .map_err(pg("insert ECU"))?;
        let inserted = c
            .execute(
                &stmt,
                &[&ecu.serial, vin, &ecu.hardware_id, &key, &ecu.primary],
            )
            .await;
        if let Err(e) = inserted {
            return Err(match super::sql::unique_violation(&e) {
                Some(_) => Error::SerialTaken {
                    serial: ecu.serial.clone(),
                    owner: "another vehicle registered at the same time".into(),
                },
                None => super::sql::classify("insert ECU", e),
            });
        }
    }
    Ok(())
}

/// A vehicle with its status counts, one row per vehicle (see the SQLite backend).
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
    counts: [i64; 5],
    last_finished: Option<String>,
    removed_at: Option<i64>,
}

fn vehicle_row(r: &Row) -> Result<VehicleRow> {
    let w = "vehicle";
    Ok(VehicleRow {
        vin: get(r, 0, w)?,
        created_at: get(r, 1, w)?,
        last_seen: get(r, 2, w)?,
        counts: [
            get(r, 3, w)?,
            get(r, 4, w)?,
            get(r, 5, w)?,
            get(r, 6, w)?,
            get(r, 7, w)?,
        ],
        last_finished: get(r, 8, w)?,
        removed_at: get(r, 9, w)?,
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

pub(super) async fn get_vehicle(c: &impl GenericClient, vin: &str) -> Result<Option<Vehicle>> {
    let row = query_opt(
        c,
        "read vehicle",
        &format!("{VEHICLE_SELECT} WHERE v.vin = $1"),
        &[&vin],
    )
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut ecus = ecus(c, "e.vin = $1", &[&vin]).await?;
    let own = ecus.remove(vin).unwrap_or_default();
    vehicle_row(&row)?.into_vehicle(own).map(Some)
}

pub(super) async fn list_vehicles(
    c: &impl GenericClient,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Vehicle>> {
    let after = after.unwrap_or("");
    let rows = query(
        c,
        "list vehicles",
        &format!("{VEHICLE_SELECT} WHERE v.vin > $1 ORDER BY v.vin LIMIT $2"),
        &[&after, &i64::from(limit)],
    )
    .await?
    .iter()
    .map(vehicle_row)
    .collect::<Result<Vec<_>>>()?;
    let Some(last) = rows.last() else {
        return Ok(Vec::new());
    };
    let mut ecus = ecus(c, "e.vin > $1 AND e.vin <= $2", &[&after, &last.vin]).await?;
    rows.into_iter()
        .map(|row| {
            let own = ecus.remove(&row.vin).unwrap_or_default();
            row.into_vehicle(own)
        })
        .collect()
}

/// The ECUs of the vehicles `filter` selects (an SQL condition on `e`), by VIN; each
/// vehicle's primary first, then its secondaries by serial.
async fn ecus(
    c: &impl GenericClient,
    filter: &str,
    params: &[super::sql::Param<'_>],
) -> Result<HashMap<String, Vec<Ecu>>> {
    let rows = query(
        c,
        "read ECUs",
        &format!(
            "SELECT e.vin, e.serial, e.hardware_id, e.public_key, e.is_primary,
                    r.filepath, r.length, r.hashes, r.provides, r.attacks_detected,
                    r.last_install, r.reported_at
             FROM ecus e LEFT JOIN ecu_reports r ON r.serial = e.serial
             WHERE {filter} ORDER BY e.vin, e.is_primary DESC, e.serial"
        ),
        params,
    )
    .await?;
    let mut by_vin: HashMap<String, Vec<Ecu>> = HashMap::new();
    for r in &rows {
        let w = "ECU";
        let filepath: Option<String> = get(r, 5, w)?;
        let reported = match filepath {
            None => None,
            Some(filepath) => {
                let length: i64 = get(r, 6, w)?;
                let last: Option<String> = get(r, 10, w)?;
                Some(EcuState {
                    installed_image: InstalledImage {
                        filepath,
                        length: u64::try_from(length).map_err(|_| {
                            Error::corrupt("ECU report", format!("negative length {length}"))
                        })?,
                        hashes: from_json("ECU report hashes", &get::<String>(r, 7, w)?)?,
                    },
                    provides: from_json("ECU report provides", &get::<String>(r, 8, w)?)?,
                    attacks_detected: get(r, 9, w)?,
                    last_install: last
                        .map(|l| from_json("ECU report last_install", &l))
                        .transpose()?,
                    reported_at: from_ms("ECU report time", get(r, 11, w)?)?,
                })
            }
        };
        let vin: String = get(r, 0, w)?;
        by_vin.entry(vin).or_default().push(Ecu {
            public_key: from_json("ECU public key", &get::<String>(r, 3, w)?)?,
            serial: get(r, 1, w)?,
            hardware_id: get(r, 2, w)?,
            primary: get(r, 4, w)?,
            reported,
        });
    }
    Ok(by_vin)
}

/// The status summary (the same rules as the SQLite backend's).
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

pub(super) async fn ecus_with_hardware_id(
    c: &impl GenericClient,
    hardware_id: &str,
    vins: Option<&[String]>,
) -> Result<Vec<EcuRef>> {
    let vins: Option<Vec<String>> = vins.map(<[String]>::to_vec);
    let rows = query(
        c,
        "select ECUs by hardware id",
        "SELECT e.vin, e.serial FROM ecus e JOIN vehicles v ON v.vin = e.vin
         WHERE e.hardware_id = $1 AND v.removed_at IS NULL
           AND ($2::text[] IS NULL OR e.vin = ANY($2::text[]))
         ORDER BY e.vin, e.serial",
        &[&hardware_id, &vins],
    )
    .await?;
    rows.iter()
        .map(|r| {
            Ok(EcuRef {
                vin: get(r, 0, "ECU")?,
                serial: get(r, 1, "ECU")?,
            })
        })
        .collect()
}

async fn strings(c: &impl GenericClient, op: &'static str, sql: &str) -> Result<Vec<String>> {
    query(c, op, sql, &[])
        .await?
        .iter()
        .map(|r| get(r, 0, "VIN"))
        .collect()
}

pub(super) async fn vins_without_metadata(c: &impl GenericClient) -> Result<Vec<String>> {
    strings(
        c,
        "list vehicles without metadata",
        "SELECT v.vin FROM vehicles v
         WHERE v.removed_at IS NULL
           AND (SELECT count(*) FROM vehicle_metadata m WHERE m.vin = v.vin) < 3
         ORDER BY v.vin",
    )
    .await
}

pub(super) async fn list_vins(c: &impl GenericClient) -> Result<Vec<String>> {
    strings(
        c,
        "list vehicles",
        "SELECT vin FROM vehicles WHERE removed_at IS NULL ORDER BY vin",
    )
    .await
}

pub(super) async fn set_device_token_hash(
    c: &impl GenericClient,
    vin: &str,
    hash: &[u8; 32],
) -> Result<()> {
    let n = execute(
        c,
        "store device token hash",
        "UPDATE vehicles SET device_token_sha256 = $2 WHERE vin = $1 AND removed_at IS NULL",
        &[&vin, &&hash[..]],
    )
    .await?;
    if n == 0 {
        return Err(not_active(c, vin).await?);
    }
    Ok(())
}

async fn not_active(c: &impl GenericClient, vin: &str) -> Result<Error> {
    let vin = vin.to_owned();
    Ok(if exists(c, &vin).await? {
        Error::VehicleRemoved { vin }
    } else {
        Error::UnknownVehicle { vin }
    })
}

/// Fail unless `vin` is registered and not removed; lock its row until the transaction ends,
/// so that the writes of one vehicle (manifests, assignments) take turns across Directors.
pub(super) async fn lock_active(c: &impl GenericClient, vin: &str) -> Result<()> {
    let row = query_opt(
        c,
        "lock vehicle",
        "SELECT removed_at IS NULL FROM vehicles WHERE vin = $1 FOR NO KEY UPDATE",
        &[&vin],
    )
    .await?;
    match row {
        Some(r) if get::<bool>(&r, 0, "vehicle")? => Ok(()),
        Some(_) => Err(Error::VehicleRemoved {
            vin: vin.to_owned(),
        }),
        None => Err(Error::UnknownVehicle {
            vin: vin.to_owned(),
        }),
    }
}

pub(super) async fn remove(c: &impl GenericClient, vin: &str, now: i64) -> Result<u64> {
    lock_active(c, vin).await?;
    let cancelled = super::assignments::cancel_vehicle(c, vin, "vehicle removed", now).await?;
    execute(
        c,
        "mark vehicle removed",
        "UPDATE vehicles SET removed_at = $2, device_token_sha256 = NULL WHERE vin = $1",
        &[&vin, &now],
    )
    .await?;
    for table in ["vehicle_metadata", "vehicle_metadata_history"] {
        execute(
            c,
            "drop a removed vehicle's metadata",
            &format!("DELETE FROM {table} WHERE vin = $1"),
            &[&vin],
        )
        .await?;
    }
    Ok(cancelled)
}

pub(super) async fn device_token_hash(
    c: &impl GenericClient,
    vin: &str,
) -> Result<Option<Vec<u8>>> {
    let row = query_opt(
        c,
        "read device token hash",
        "SELECT device_token_sha256 FROM vehicles WHERE vin = $1",
        &[&vin],
    )
    .await?;
    row.map(|r| get::<Option<Vec<u8>>>(&r, 0, "device token hash"))
        .transpose()
        .map(Option::flatten)
}

pub(super) async fn exists(c: &impl GenericClient, vin: &str) -> Result<bool> {
    Ok(query_opt(
        c,
        "look up vehicle",
        "SELECT 1 FROM vehicles WHERE vin = $1",
        &[&vin],
    )
    .await?
    .is_some())
}
