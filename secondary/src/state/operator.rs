//! What an operator changes on the ECU outside an install (`ferry-secondary rollback --to`),
//! recorded as an install is: the image the domain now runs, the provides and the outcome,
//! in one transaction. Release counters stay: they guard what may be offered, not what runs.

use super::{InstalledImage, State};
use crate::error::{Error, Result};
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
        let (hashes, custom) = self.image_json(image)?;
        let path = self.path.clone();
        let db = move |source| Error::State { path, source };
        let tx = self.conn.transaction().map_err(db.clone())?;
        super::write_running(&tx, domain, image, (&hashes, &custom), provides)
            .map_err(db.clone())?;
        tx.execute(
            "UPDATE outcome SET target = ?1, result = 'rolled-back', detail = ?2,
             attacks_detected = '' WHERE id = 1",
            [&image.target, detail],
        )
        .map_err(db.clone())?;
        tx.commit().map_err(db)
    }
}
