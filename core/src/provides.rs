//! Mender-style provides/depends (DESIGN.md): a target's depends must be met by the ECU's
//! provides before one byte is downloaded, and a successful install clears and overlays
//! provides. Refusals use Mender's wording so operators recognise them.

use crate::metadata::uptane::DependsValue;
use std::collections::BTreeMap;

/// Why a target's depends are not met. The text is Mender's, plus the fact that matters most
/// to the operator: nothing was changed on the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependsError {
    #[error("depends check failed: Missing '{key}' in provides, required by target depends. System not modified.")]
    Missing { key: String },
    #[error("depends check failed: Provides value '{value}' doesn't match any of '{key}' target depends ({accepted}). System not modified.")]
    Mismatch {
        key: String,
        value: String,
        accepted: String,
    },
}

/// Every depends key must be provided, with one of the accepted values.
pub fn check_depends(
    depends: &BTreeMap<String, DependsValue>,
    provides: &BTreeMap<String, String>,
) -> Result<(), DependsError> {
    for (key, wanted) in depends {
        let Some(value) = provides.get(key) else {
            return Err(DependsError::Missing { key: key.clone() });
        };
        if !wanted.accepted().iter().any(|a| a == value) {
            return Err(DependsError::Mismatch {
                key: key.clone(),
                value: value.clone(),
                accepted: wanted.accepted().join(", "),
            });
        }
    }
    Ok(())
}

/// Provides after a successful install: drop every key matching a `clears` pattern (`*` is zero
/// or more characters, anything else literal), then overlay `new`.
pub fn merge_provides(
    current: &BTreeMap<String, String>,
    clears: &[String],
    new: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> = current
        .iter()
        .filter(|(k, _)| !clears.iter().any(|p| star_match(p, k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    merged.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// `*`-only wildcard match over the whole string, linear backtracking.
fn star_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn missing_and_mismatched_depends_use_menders_words() {
        let provides = map(&[("rootfs-image.python.version", "3.11")]);
        let depends: BTreeMap<String, DependsValue> = [(
            "rootfs-image.cuda.version".to_string(),
            DependsValue::One("11.8".into()),
        )]
        .into();
        let err = check_depends(&depends, &provides).unwrap_err();
        assert_eq!(
            err.to_string(),
            "depends check failed: Missing 'rootfs-image.cuda.version' in provides, required by target depends. System not modified."
        );
        let depends: BTreeMap<String, DependsValue> = [(
            "rootfs-image.python.version".to_string(),
            DependsValue::AnyOf(vec!["3.12".into(), "3.13".into()]),
        )]
        .into();
        let err = check_depends(&depends, &provides).unwrap_err();
        assert!(err
            .to_string()
            .contains("Provides value '3.11' doesn't match any of 'rootfs-image.python.version' target depends (3.12, 3.13)"));
        assert!(check_depends(&depends, &map(&[("rootfs-image.python.version", "3.13")])).is_ok());
    }

    #[test]
    fn an_os_swap_clears_os_claims_and_keeps_app_claims() {
        let current = map(&[
            ("rootfs-image.version", "1"),
            ("rootfs-image.cuda.version", "11.8"),
            ("data-partition.demo-app.version", "1.0"),
        ]);
        let merged = merge_provides(
            &current,
            &["rootfs-image.*".into()],
            &map(&[("rootfs-image.version", "2")]),
        );
        assert_eq!(
            merged,
            map(&[
                ("data-partition.demo-app.version", "1.0"),
                ("rootfs-image.version", "2")
            ])
        );
    }

    #[test]
    fn star_matches_zero_or_more_characters() {
        assert!(star_match("a.*", "a."));
        assert!(star_match("a.*.v", "a.x.y.v"));
        assert!(!star_match("a.*", "b.x"));
        assert!(star_match("*", ""));
        assert!(!star_match("rootfs-image.*", "rootfs-image"));
    }
}
