//! What manifest verification needs of a vehicle, in one query; keys parsed through the
//! shared [`KeyCache`] (keyed by the stored JSON, so never stale across Directors).

use super::sql::{get, query};
use crate::store::key_cache::KeyCache;
use crate::Result;
use deadpool_postgres::GenericClient;
use ferry_core::manifest::RegisteredVehicle;
use std::collections::BTreeMap;

pub(super) async fn ecu_keys(
    c: &impl GenericClient,
    cache: &KeyCache,
    vin: &str,
) -> Result<Option<RegisteredVehicle>> {
    let rows = query(
        c,
        "read ECU keys",
        "SELECT e.serial, e.public_key, e.is_primary
         FROM vehicles v LEFT JOIN ecus e ON e.vin = v.vin
         WHERE v.vin = $1 AND v.removed_at IS NULL",
        &[&vin],
    )
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut vehicle = RegisteredVehicle {
        vin: vin.to_owned(),
        primary_ecu_serial: String::new(),
        ecu_keys: BTreeMap::new(),
    };
    for r in &rows {
        let serial: Option<String> = get(r, 0, "ECU serial")?;
        let key: Option<String> = get(r, 1, "ECU public key")?;
        let primary: Option<bool> = get(r, 2, "ECU primary flag")?;
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
