//! The operator's commands on an ECU at rest (`ferry-secondary snapshots`, `rollback --to`):
//! they read and change its state without opening it as the daemon does (which would resume
//! an install), and refuse while an install is in flight. `ferry-secondary confirm` is the
//! exception: it runs beside the daemon and only moves an install waiting for confirmation
//! to `confirmed` (SQLite serializes the two processes' writes).

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

/// What `ferry-secondary confirm` confirmed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Confirmed {
    pub domain: String,
    pub name: String,
    pub target: String,
    pub version: Option<String>,
}

fn not_confirmed(found: String, expected: String) -> Error {
    Error::OsCheck {
        check: "application confirmation",
        found,
        expected,
    }
}

/// The application confirms the install of `domain` `name` (and `version`, when given) that
/// waits for it: journal `confirmed`, which the daemon commits at its next look. Refused by
/// name, changing nothing, when no install waits, when the waiting one is another domain,
/// name or version, or when its window closed at `now` (the daemon rolls it back).
pub fn confirm_install(
    config: &Config,
    domain: &str,
    name: &str,
    version: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Confirmed> {
    let expected = || match version {
        Some(v) => format!("an install of {domain} {name} version {v} waiting for confirmation"),
        None => format!("an install of {domain} {name} waiting for confirmation"),
    };
    if !config.state_db().exists() {
        return Err(not_confirmed("no state database".into(), expected()));
    }
    let mut state = State::open(&config.state_db(), &config.initial_provides)?;
    let Some(flight) = state.in_flight()? else {
        return Err(not_confirmed("no install in flight".into(), expected()));
    };
    let Some((at, since)) = state.confirm_window()? else {
        return Err(not_confirmed(
            format!(
                "the install of {} is at {}, not waiting for confirmation",
                flight.job.target, flight.state
            ),
            expected(),
        ));
    };
    let custom = state.job_custom(&flight.job)?;
    let waiting = crate::install::confirm::job_name(&flight.job.target, custom.name.as_deref());
    let waiting_version = custom.version.clone();
    let found = || {
        format!(
            "{} {waiting} version {} ({}) waits",
            flight.job.domain,
            waiting_version.as_deref().unwrap_or("-"),
            flight.job.target
        )
    };
    let version_differs = version.is_some_and(|v| waiting_version.as_deref() != Some(v));
    if flight.job.domain != domain || waiting != name || version_differs {
        return Err(not_confirmed(found(), expected()));
    }
    if at == crate::install::Step::Confirmed.as_str() {
        return Ok(Confirmed {
            domain: domain.to_owned(),
            name: name.to_owned(),
            target: flight.job.target,
            version: waiting_version,
        });
    }
    let window = match domain {
        "container" => crate::install::confirm::window(
            config.container.confirm,
            config.container.confirm_timeout_secs,
        ),
        "app" => {
            crate::install::confirm::window(config.app.confirm, config.app.confirm_timeout_secs)
        }
        _ => None,
    }
    .unwrap_or_default();
    let deadline = since + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    if now >= deadline {
        return Err(not_confirmed(
            format!(
                "{}; its window of {} s closed at {}",
                found(),
                window.as_secs(),
                deadline.to_rfc3339()
            ),
            "a confirmation within the window (the daemon rolls it back)".into(),
        ));
    }
    if !state.leave_confirm(crate::install::Step::Confirmed.as_str(), None, now)? {
        return Err(not_confirmed(
            "the install left the confirmation wait meanwhile (rolled back at its deadline)".into(),
            expected(),
        ));
    }
    tracing::info!(%domain, %name, target = %flight.job.target, "application confirmed the install");
    Ok(Confirmed {
        domain: domain.to_owned(),
        name: name.to_owned(),
        target: flight.job.target,
        version: waiting_version,
    })
}
