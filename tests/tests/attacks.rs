//! The Uptane attack catalogue (Uptane Standard 2.1.0 §4.3, plus key compromise; issue #7):
//! one end-to-end test per attack, against real processes on 127.0.0.1 (Director, Image
//! repository server, `ferry-primary`, two `ferry-secondary` daemons), with the attacker as a
//! compromised mirror, a man in the middle, or the holder of some keys. Each test first
//! installs a good v1 on every ECU, mounts the attack on v2, and asserts that the check it
//! names refuses it, that every ECU still runs v1 with the same provides, and that the
//! manifest the Director accepted says so. README.md maps each attack to its test.
#![allow(clippy::unwrap_used)]

mod primary_common;

mod attacks {
    mod arbitrary_software;
    mod director_compromise;
    mod endless_data;
    mod freeze;
    mod image_repo_compromise;
    mod image_rollback;
    mod key_threshold;
    mod manifest_replay;
    mod metadata_rollback;
    mod mix_and_match;
    mod partial_bundle;
    mod slow_retrieval;
    mod wrong_hardware_id;
}
