//! What an operator changes on the ECU outside an install (`ferry-secondary rollback --to`),
//! recorded as an install is: the image the domain now runs, the provides and the outcome,
//! in one transaction. Release counters stay: they guard what may be offered, not what runs.

use super::{InstalledImage, State};
use crate::error::{Error, Result};
use rusqlite::params;
use std::collections::BTreeMap;

impl State {
    /// `domain` now runs `image` (an older one the operator went back to) with `provides`;
    /// the last install's result is rolled-back with `detail`.
    pub fn record_rollback(
        &mut self,
        domain: &str,
        image: &InstalledImage,
        provides: &BTreeMap<String, String>,
        detail: &str,
    ) -> Result<()> {
        let hashes = serde_json::to_string(&image.hashes)
            .map_err(|e| self.corrupt("installed image hashes", e))?;
        let custom = serde_json::to_string(&image.custom)
            .map_err(|e| self.corrupt("installed image custom", e))?;
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        tx.execute(
            "INSERT OR REPLACE INTO installed (id, target, length, hashes, custom)
             VALUES (1, ?1, ?2, ?3, ?4)",
            params![image.target, image.length as i64, hashes, custom],
        )
        .map_err(db.clone())?;
        tx.execute(
            "INSERT OR REPLACE INTO installed_domains (domain, target, length, hashes, custom)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![domain, image.target, image.length as i64, hashes, custom],
        )
        .map_err(db.clone())?;
        tx.execute("DELETE FROM provides", []).map_err(db.clone())?;
        for (k, v) in provides {
            tx.execute("INSERT INTO provides (key, value) VALUES (?1, ?2)", [k, v])
                .map_err(db.clone())?;
        }
        tx.execute(
            "UPDATE outcome SET target = ?1, result = 'rolled-back', detail = ?2,
             attacks_detected = '' WHERE id = 1",
            [&image.target, detail],
        )
        .map_err(db.clone())?;
        tx.commit().map_err(db)
    }
}
