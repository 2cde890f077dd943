//! A Secondary whose install needs a real reboot answers `POST /install` with 202
//! `{"target", "rebootPending": true}` and goes away. The Primary then polls its `/status`
//! until the ECU is back with no install in flight, and reads the outcome it recorded after
//! the reboot (committed, or rolled back naming the failed check). The wait is bounded
//! (`reboot_wait` in primary.toml): an ECU that never comes back fails the install, and the
//! vehicle manifest says what the ECU last reported.

use crate::distribute::EcuLink;
use crate::error::{Error, Result};
use ferry_core::manifest::InstallResult;
use std::time::{Duration, Instant};

/// The default bound on one Secondary's reboot.
pub const DEFAULT: Duration = Duration::from_secs(600);
/// Between two looks at a rebooting ECU.
const POLL: Duration = Duration::from_secs(1);

/// Wait until `ecu` finished installing `target` after its reboot.
pub fn wait(ecu: &mut dyn EcuLink, target: &str, budget: Duration) -> Result<()> {
    let deadline = Instant::now() + budget;
    let serial = ecu.serial().to_owned();
    let failed = |found: String, expected: &str| Error::Reboot {
        serial: serial.clone(),
        target: target.to_owned(),
        found,
        expected: expected.to_owned(),
    };
    tracing::info!(%serial, %target, ?budget, "waiting for the ECU to reboot into its update");
    loop {
        let last = match ecu.status() {
            Ok(status) if status.in_flight.is_none() => {
                return match status.last_install {
                    Some(o) if o.target == target && o.result == InstallResult::Success => Ok(()),
                    Some(o) if o.target == target => Err(failed(
                        format!("{}: {}", o.result, o.detail),
                        "the install committed after the reboot",
                    )),
                    other => Err(failed(
                        format!("last install {other:?}"),
                        "an outcome for the target it rebooted to install",
                    )),
                };
            }
            Ok(status) => format!(
                "install in flight at {}",
                status.in_flight.unwrap_or_default()
            ),
            // Down while it reboots.
            Err(e) => e.to_string(),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(failed(
                format!("still not done after {budget:?} ({last})"),
                "the ECU back with the install finished within reboot_wait",
            ));
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}
