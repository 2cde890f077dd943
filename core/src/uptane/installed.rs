//! What an ECU already runs, and the release counters it keeps: the two facts about an ECU's
//! past that decide whether an offered image is new, and whether it is allowed.

use crate::metadata::uptane::ImageCustom;
use crate::metadata::{Hashes, TargetFile};
use std::collections::BTreeMap;

/// An image an ECU runs, as far as "already installed" needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Running<'a> {
    pub target: &'a str,
    pub length: u64,
    pub hashes: &'a Hashes,
}

/// Whether any of `running` is the offered target: same name, same length, and every hash the
/// offer lists equal (case aside). The Director re-sends a target until it sees the ECU's
/// report, so an ECU that already runs it has nothing to do.
pub fn already_installed<'a>(
    running: impl IntoIterator<Item = Running<'a>>,
    name: &str,
    offered: &TargetFile,
) -> bool {
    running.into_iter().any(|r| {
        r.target == name
            && r.length == offered.length
            && !offered.hashes.is_empty()
            && offered
                .hashes
                .iter()
                .all(|(alg, h)| r.hashes.get(alg).is_some_and(|x| x.eq_ignore_ascii_case(h)))
    })
}

/// The identities a release counter guards for a target: its file name, and (when it names
/// one) the image's domain and software name, so neither an older file nor an older build of
/// the same software under a new file name passes. A target without a domain is keyed with an
/// empty domain, as ECUs have stored it since release counters began.
pub fn counter_keys(target: &str, custom: &ImageCustom) -> Vec<String> {
    let mut keys = vec![format!("target:{target}")];
    if let Some(name) = &custom.name {
        let domain = custom.domain.as_ref().map_or("", |d| d.as_str());
        keys.push(format!("image:{domain}:{name}"));
    }
    keys
}

/// The releaseCounter an offered target may not go below: the highest counter kept under any
/// of its identities (`counters` maps identity to counter, as the ECU keeps them).
pub fn release_floor(counters: &BTreeMap<String, u64>, target: &str, custom: &ImageCustom) -> u64 {
    counter_keys(target, custom)
        .iter()
        .filter_map(|k| counters.get(k).copied())
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn custom(v: serde_json::Value) -> ImageCustom {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_floor_is_the_counter_of_the_same_file_or_the_same_software() {
        let counters = BTreeMap::from([
            ("target:apps/demo-2.tar".to_string(), 5),
            ("image:app:demo".to_string(), 5),
        ]);
        let demo =
            custom(serde_json::json!({"hardwareIds": ["i"], "domain": "app", "name": "demo"}));
        let maps =
            custom(serde_json::json!({"hardwareIds": ["i"], "domain": "app", "name": "maps"}));
        assert_eq!(release_floor(&counters, "apps/demo-1.tar", &demo), 5);
        assert_eq!(release_floor(&counters, "apps/demo-2.tar", &maps), 5);
        assert_eq!(release_floor(&counters, "apps/maps.tar", &maps), 0);
        assert_eq!(release_floor(&BTreeMap::new(), "apps/demo-1.tar", &demo), 0);
    }

    #[test]
    fn a_target_runs_only_with_the_same_name_length_and_hashes() {
        let hashes: Hashes = [("sha256".to_string(), "AB".to_string())].into();
        let running = [Running {
            target: "a.bin",
            length: 3,
            hashes: &hashes,
        }];
        let offer = |length: u64, hash: &str| -> TargetFile {
            serde_json::from_value(
                serde_json::json!({"length": length, "hashes": {"sha256": hash}}),
            )
            .unwrap()
        };
        assert!(already_installed(running, "a.bin", &offer(3, "ab")));
        assert!(!already_installed(running, "a.bin", &offer(3, "cd")));
        assert!(!already_installed(running, "a.bin", &offer(4, "ab")));
        assert!(!already_installed(running, "b.bin", &offer(3, "ab")));
    }
}
