//! Binding Director metadata to its vehicle. The Director signs every vehicle's metadata with
//! the same online keys, so a signature alone does not say whose metadata it is: the targets
//! name their VIN (`signed.custom.vin`) and each ECU checks it against its own configured VIN
//! before any of the set is kept. Without this, another vehicle's genuine metadata with higher
//! versions would be trusted and freeze this vehicle's own as a "rollback".

use crate::metadata::Targets;
use crate::{Error, Result};

/// The VIN Director `targets` were signed for, if they name one.
pub fn targets_vin(targets: &Targets) -> Option<&str> {
    targets
        .extra
        .get("custom")
        .and_then(|c| c.get("vin"))
        .and_then(|v| v.as_str())
}

/// Refuse Director targets that do not name `vin`.
pub fn check_vehicle(targets: &Targets, vin: &str) -> Result<()> {
    match targets_vin(targets) {
        Some(found) if found == vin => Ok(()),
        found => Err(Error::VehicleBinding {
            expected: vin.to_owned(),
            found: found.map(str::to_owned),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn targets(custom: serde_json::Value) -> Targets {
        serde_json::from_value(
            serde_json::json!({"_type": "targets", "spec_version": "1.0.0",
            "version": 3, "expires": "2030-01-01T00:00:00Z", "targets": {}, "custom": custom}),
        )
        .unwrap()
    }

    #[test]
    fn only_targets_naming_this_vin_are_accepted() {
        assert!(check_vehicle(&targets(serde_json::json!({"vin": "VIN1"})), "VIN1").is_ok());
        let err = check_vehicle(&targets(serde_json::json!({"vin": "VIN2"})), "VIN1").unwrap_err();
        assert!(
            err.to_string().contains("vehicle binding check failed"),
            "{err}"
        );
        assert!(
            err.to_string().contains("VIN2") && err.to_string().contains("VIN1"),
            "{err}"
        );
        let err = check_vehicle(&targets(serde_json::json!({})), "VIN1").unwrap_err();
        assert!(err.to_string().contains("name no VIN"), "{err}");
    }
}
