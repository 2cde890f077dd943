//! What manifest verification needs of a vehicle ([`crate::Store::ecu_keys`]): its primary's
//! serial and every ECU's key, in one query; and a cache of parsed keys, so a check-in does
//! not parse each ECU's key JSON and its verifying key (an ed25519 point decompression), nor
//! compute its key id (canonical JSON and SHA-256), again.
//!
//! The cache is keyed by a key's JSON exactly as the database holds it, not by VIN or serial:
//! an ECU whose key changes in the database (through this process or any other) reads other
//! text and misses, so an entry can never be stale and nothing needs invalidating. The query
//! still runs on every check-in: the ECU set and keys are always the database's current ones.

use super::db;
pub(super) use crate::store::key_cache::KeyCache;
use crate::Result;
use ferry_core::manifest::RegisteredVehicle;
use rusqlite::Connection;
use std::collections::BTreeMap;

/// `vin`'s ECU keys and primary serial, `None` if `vin` is not registered or was removed
/// (a removed vehicle is unknown to the device API).
pub(super) fn ecu_keys(
    conn: &Connection,
    cache: &KeyCache,
    vin: &str,
) -> Result<Option<RegisteredVehicle>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT e.serial, e.public_key, e.is_primary
             FROM vehicles v LEFT JOIN ecus e ON e.vin = v.vin
             WHERE v.vin = ?1 AND v.removed_at IS NULL",
        )
        .map_err(db("read ECU keys"))?;
    let rows = stmt
        .query_map([vin], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<bool>>(2)?,
            ))
        })
        .map_err(db("read ECU keys"))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db("read ECU keys"))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut vehicle = RegisteredVehicle {
        vin: vin.to_owned(),
        primary_ecu_serial: String::new(),
        ecu_keys: BTreeMap::new(),
    };
    // A vehicle without ECUs is one row of NULLs: no keys, so every manifest is refused.
    for (serial, key, primary) in rows {
        let (Some(serial), Some(key)) = (serial, key) else {
            continue;
        };
        if primary == Some(true) {
            vehicle.primary_ecu_serial = serial.clone();
        }
        vehicle.ecu_keys.insert(serial, cache.key(&key)?);
    }
    Ok(Some(vehicle))
}
