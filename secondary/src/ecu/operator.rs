//! The operator's commands on an ECU at rest (`ferry-secondary snapshots`, `rollback --to`):
//! they read and change its state without opening it as the daemon does (which would resume
//! an install), and refuse while an install is in flight.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::install::snapshot::{Kept, SnapshotInstaller};
use crate::state::{InstalledImage, State};
use ferry_core::metadata::uptane::ImageCustom;
use ferry_core::provides::merge_provides;

fn snapshot_installer(config: &Config) -> Result<SnapshotInstaller> {
    let section = config.snapshot.as_ref().ok_or_else(|| Error::OsCheck {
        check: "snapshot domain",
        found: "no [snapshot] section in the configuration".into(),
        expected: "an ECU whose root is btrfs snapshots".into(),
    })?;
    SnapshotInstaller::from_config(section, &config.data_dir)
}

/// The kept snapshots, oldest first.
pub fn kept_snapshots(config: &Config) -> Result<Vec<Kept>> {
    snapshot_installer(config)?.kept()
}

/// Make kept snapshot `to` the one that boots and record that the ECU runs its image: the
/// snapshot domain's image, the provides it brings (as its install set them) and a
/// rolled-back outcome naming the operator, which the next version report carries.
pub fn rollback_snapshot(config: &Config, to: u64) -> Result<InstalledImage> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| Error::io(&config.data_dir, e))?;
    let mut state = State::open(&config.state_db(), &config.initial_provides)?;
    if let Some(flight) = state.in_flight()? {
        return Err(Error::OsCheck {
            check: "snapshot rollback",
            found: format!(
                "an install of {} is in flight (at {})",
                flight.job.target, flight.state
            ),
            expected: "no install in flight: wait until it commits or rolls back".into(),
        });
    }
    let mut installer = snapshot_installer(config)?;
    let image = installer.rollback_to(to)?;
    let custom: ImageCustom = serde_json::from_value(image.custom.clone())
        .map_err(|e| state.corrupt("snapshot record custom", e))?;
    let provides = merge_provides(
        &state.provides()?,
        &custom.effective_clears(),
        &custom.effective_provides(),
    );
    let detail = format!(
        "rolled back to snapshot {to} ({}) by the operator",
        image.target
    );
    state.record_rollback("snapshot", &image, &provides, &detail)?;
    Ok(image)
}
