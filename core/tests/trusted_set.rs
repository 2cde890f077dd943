//! One test per client-workflow rule: each builds a repository that breaks exactly one rule
//! and asserts the trusted set refuses it with the error that names that rule.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::Duration;
use common::*;
use ferry_core::metadata::{hashes_of, MetaFile};
use ferry_core::{Error, TimestampUpdate, TrustedSet};

fn loaded(repo: &Repo) -> TrustedSet {
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    set.update_targets(&repo.targets_bytes(), "targets", "root")
        .unwrap();
    set
}

#[test]
fn a_consistent_repository_loads() {
    let repo = Repo::new();
    let set = loaded(&repo);
    assert_eq!(set.targets("targets").unwrap().version, 1);
}

#[test]
fn root_must_be_self_signed_to_threshold() {
    let mut repo = Repo::new();
    let second = key();
    repo.root
        .keys
        .insert(second.key_id().clone(), second.public_key().clone());
    repo.root
        .roles
        .get_mut("root")
        .unwrap()
        .keyids
        .push(second.key_id().clone());
    repo.root.roles.get_mut("root").unwrap().threshold = 2;
    let err = TrustedSet::new(&repo.root_bytes(), now()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Threshold {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn two_signatures_by_one_key_are_refused_and_never_count_twice() {
    let mut repo = Repo::new();
    let other = key();
    repo.root
        .keys
        .insert(other.key_id().clone(), other.public_key().clone());
    repo.root
        .roles
        .get_mut("root")
        .unwrap()
        .keyids
        .push(other.key_id().clone());
    repo.root.roles.get_mut("root").unwrap().threshold = 2;
    // Two signatures by the one key, under its key id, over the right bytes.
    let mut doc: serde_json::Value = serde_json::from_slice(&repo.root_bytes()).unwrap();
    let sig = doc["signatures"][0].clone();
    doc["signatures"].as_array_mut().unwrap().push(sig.clone());
    let bytes = serde_json::to_vec(&doc).unwrap();
    let err = TrustedSet::new(&bytes, now()).unwrap_err();
    assert!(matches!(err, Error::DuplicateSignature { .. }), "{err}");

    // The threshold counter on its own also counts a key id once.
    use ferry_core::metadata::Signature;
    let signatures: Vec<Signature> = vec![
        serde_json::from_value(sig.clone()).unwrap(),
        serde_json::from_value(sig).unwrap(),
    ];
    let keyids = repo.root.roles["root"].keyids.clone();
    let authority = ferry_core::Authority::new("root", &keyids, 2, &repo.root.keys).unwrap();
    let msg = ferry_keys::cjson::to_vec(&repo.root).unwrap();
    let err = ferry_core::verify::check_threshold(&authority, &msg, &signatures).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Threshold {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_signature_by_an_unauthorised_key_does_not_count() {
    let repo = Repo::new();
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    // Timestamp signed by the snapshot key: a valid signature, by the wrong role's key.
    let bytes = sign(&repo.timestamp, &[&repo.snapshot_key]);
    let err = set.update_timestamp(&bytes).unwrap_err();
    assert!(matches!(err, Error::Threshold { valid: 0, .. }), "{err}");
}

#[test]
fn a_tampered_document_fails_its_signature() {
    let repo = Repo::new();
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&repo.timestamp_bytes()).unwrap();
    doc["signed"]["meta"]["snapshot.json"]["version"] = 9.into();
    let err = set
        .update_timestamp(&serde_json::to_vec(&doc).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
}

#[test]
fn unknown_fields_are_signed_and_kept() {
    let mut repo = Repo::new();
    repo.targets
        .extra
        .insert("x-vendor".into(), serde_json::json!({"b": 1, "a": [2]}));
    let set = loaded(&repo);
    let trusted = set.targets("targets").unwrap();
    assert_eq!(
        trusted.extra["x-vendor"],
        serde_json::json!({"a": [2], "b": 1})
    );
    assert_eq!(
        ferry_keys::cjson::to_vec(trusted.signed()).unwrap(),
        ferry_keys::cjson::to_vec(&repo.targets).unwrap()
    );
}

#[test]
fn root_rotation_needs_old_and_new_thresholds_and_version_n_plus_1() {
    let repo = Repo::new();
    let new_key = key();
    let mut v2 = repo.root.clone();
    v2.version = 2;
    v2.keys
        .insert(new_key.key_id().clone(), new_key.public_key().clone());
    v2.roles.get_mut("root").unwrap().keyids = vec![new_key.key_id().clone()];

    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    // Only the new key: the trusted root's threshold is not met.
    let err = set.update_root(&sign(&v2, &[&new_key])).unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
    // Only the old key: the new root's own threshold is not met.
    let err = set
        .update_root(&sign(&v2, &[&repo.root_keys[0]]))
        .unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
    // Skipping a version.
    let mut v3 = v2.clone();
    v3.version = 3;
    let err = set
        .update_root(&sign(&v3, &[&repo.root_keys[0], &new_key]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootVersion {
                expected: 2,
                found: 3
            }
        ),
        "{err}"
    );
    // Both: accepted.
    set.update_root(&sign(&v2, &[&repo.root_keys[0], &new_key]))
        .unwrap();
    assert_eq!(set.root().version, 2);
    // Replaying version 2 (or 1) is not N+1.
    let err = set
        .update_root(&sign(&v2, &[&repo.root_keys[0], &new_key]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootVersion {
                expected: 3,
                found: 2
            }
        ),
        "{err}"
    );
}

#[test]
fn rotated_timestamp_key_drops_the_old_timestamp() {
    // Fast-forward recovery: after the timestamp key rotates, a timestamp signed by the old key
    // (however high its version) no longer verifies, so it cannot block new ones.
    let mut repo = Repo::new();
    let old_ts = {
        let mut t = repo.timestamp.clone();
        t.version = 1000;
        sign(&t, &[&repo.timestamp_key])
    };
    let new_ts_key = key();
    let mut v2 = repo.root.clone();
    v2.version = 2;
    v2.keys
        .insert(new_ts_key.key_id().clone(), new_ts_key.public_key().clone());
    v2.roles.get_mut("timestamp").unwrap().keyids = vec![new_ts_key.key_id().clone()];
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_root(&sign(&v2, &[&repo.root_keys[0]])).unwrap();
    assert!(matches!(
        set.update_timestamp(&old_ts),
        Err(Error::Threshold { .. })
    ));
    repo.timestamp.version = 2;
    set.update_timestamp(&sign(&repo.timestamp, &[&new_ts_key]))
        .unwrap();
}

#[test]
fn expired_metadata_is_refused_for_every_role() {
    let base = Repo::new();
    let later = now() + Duration::days(400);

    let err = {
        let mut set = TrustedSet::new(&base.root_bytes(), later).unwrap();
        set.update_timestamp(&base.timestamp_bytes()).unwrap_err()
    };
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "root"),
        "{err}"
    );

    let mut repo = Repo::new();
    repo.timestamp.expires = expires_in(-1);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    let err = set.update_timestamp(&repo.timestamp_bytes()).unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );
    // The expired timestamp still guards against rollback, but nothing can build on it.
    let err = set
        .update_snapshot(&repo.snapshot_bytes(), false)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "timestamp"),
        "{err}"
    );

    let mut repo = Repo::new();
    repo.snapshot.expires = expires_in(-1);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    let err = set
        .update_snapshot(&repo.snapshot_bytes(), false)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "snapshot"),
        "{err}"
    );

    let mut repo = Repo::new();
    repo.targets.expires = expires_in(-1);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let err = set
        .update_targets(&repo.targets_bytes(), "targets", "root")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Expired { role, .. } if role == "targets"),
        "{err}"
    );
}

#[test]
fn timestamp_rollback_is_refused_and_equal_version_changes_nothing() {
    let mut repo = Repo::new();
    repo.timestamp.version = 5;
    repo.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::new(3));
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    assert_eq!(
        set.update_timestamp(&repo.timestamp_bytes()).unwrap(),
        TimestampUpdate::Unchanged
    );

    let mut older = repo.timestamp.clone();
    older.version = 4;
    let err = set
        .update_timestamp(&sign(&older, &[&repo.timestamp_key]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rollback {
                trusted: 5,
                new: 4,
                ..
            }
        ),
        "{err}"
    );

    let mut snapshot_back = repo.timestamp.clone();
    snapshot_back.version = 6;
    snapshot_back
        .meta
        .insert("snapshot.json".into(), MetaFile::new(2));
    let err = set
        .update_timestamp(&sign(&snapshot_back, &[&repo.timestamp_key]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rollback {
                trusted: 3,
                new: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn snapshot_rollback_and_dropped_roles_are_refused() {
    let mut repo = Repo::new();
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::new(4));
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();

    let mut rolled = repo.snapshot.clone();
    rolled.meta.insert("targets.json".into(), MetaFile::new(3));
    let err = set
        .update_snapshot(&sign(&rolled, &[&repo.snapshot_key]), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rollback {
                trusted: 4,
                new: 3,
                ..
            }
        ),
        "{err}"
    );

    let mut dropped = repo.snapshot.clone();
    dropped.meta.clear();
    let err = set
        .update_snapshot(&sign(&dropped, &[&repo.snapshot_key]), false)
        .unwrap_err();
    assert!(matches!(err, Error::SnapshotDropsRole { .. }), "{err}");
}

#[test]
fn mix_and_match_versions_are_refused() {
    // Snapshot v2 served where timestamp names v1.
    let mut repo = Repo::new();
    repo.snapshot.version = 2;
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    let err = set
        .update_snapshot(&repo.snapshot_bytes(), false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                listed_in: "timestamp",
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );

    // Targets v2 served where snapshot names v1.
    let mut repo = Repo::new();
    repo.targets.version = 2;
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let err = set
        .update_targets(&repo.targets_bytes(), "targets", "root")
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionMismatch {
                listed_in: "snapshot",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_hashes_or_length_of_metadata_are_refused() {
    let mut repo = Repo::new();
    let snapshot_bytes = repo.snapshot_bytes();
    let mut meta = MetaFile::new(1);
    meta.length = Some(snapshot_bytes.len() as u64);
    meta.hashes = Some(hashes_of(b"something else"));
    repo.timestamp
        .meta
        .insert("snapshot.json".into(), meta.clone());
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    let err = set.update_snapshot(&snapshot_bytes, false).unwrap_err();
    assert!(matches!(err, Error::Hash { .. }), "{err}");
    // From the local cache the hashes are not re-checked (timestamp may have moved on).
    set.update_snapshot(&snapshot_bytes, true).unwrap();

    let mut repo = Repo::new();
    let targets_bytes = repo.targets_bytes();
    let mut meta = MetaFile::new(1);
    meta.length = Some(targets_bytes.len() as u64 - 1);
    repo.snapshot.meta.insert("targets.json".into(), meta);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let err = set
        .update_targets(&targets_bytes, "targets", "root")
        .unwrap_err();
    assert!(matches!(err, Error::TooLong { .. }), "{err}");
}

#[test]
fn wrong_type_and_malformed_input_are_errors_not_panics() {
    let repo = Repo::new();
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    let err = set.update_timestamp(&repo.snapshot_bytes()).unwrap_err();
    assert!(matches!(err, Error::WrongType { .. }), "{err}");
    for junk in [
        &b""[..],
        b"{",
        b"[]",
        b"{\"signed\":1,\"signatures\":[]}",
        &[b'['; 100_000][..],
    ] {
        assert!(set.update_timestamp(junk).is_err());
    }
    let mut doc: serde_json::Value = serde_json::from_slice(&repo.timestamp_bytes()).unwrap();
    doc["signed"]["version"] = serde_json::json!(1.5);
    assert!(matches!(
        set.update_timestamp(&serde_json::to_vec(&doc).unwrap()),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn out_of_order_updates_are_refused() {
    let repo = Repo::new();
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    assert!(matches!(
        set.update_snapshot(&repo.snapshot_bytes(), false),
        Err(Error::Order(_))
    ));
    let mut set = loaded(&repo);
    assert!(matches!(
        set.update_root(&repo.root_bytes()),
        Err(Error::Order(_))
    ));
    assert!(matches!(
        set.update_timestamp(&repo.timestamp_bytes()),
        Err(Error::Order(_))
    ));
}

#[test]
fn an_empty_hashes_object_in_meta_is_refused() {
    let mut repo = Repo::new();
    let mut meta = MetaFile::new(1);
    meta.hashes = Some(Default::default());
    repo.timestamp
        .meta
        .insert("snapshot.json".into(), meta.clone());
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    let err = set.update_timestamp(&repo.timestamp_bytes()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("meta snapshot.json: hashes is empty"),
        "{text}"
    );
    assert!(
        set.timestamp().is_none(),
        "nothing trusted from a refused timestamp"
    );

    let mut repo = Repo::new();
    repo.snapshot.meta.insert("targets.json".into(), meta);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    let err = set
        .update_snapshot(&repo.snapshot_bytes(), false)
        .unwrap_err();
    assert!(err.to_string().contains("hashes is empty"), "{err}");
}

#[test]
fn a_signed_document_naming_a_key_twice_is_refused() {
    // The signature covers the canonical form of what a last-wins parser keeps, so an earlier
    // copy of `version` rides along unsigned: genuine signature, ambiguous document.
    let repo = Repo::new();
    let genuine = String::from_utf8(repo.timestamp_bytes()).unwrap();
    let forged = genuine.replacen("\"signed\":{", "\"signed\":{\"version\":99,", 1);
    assert_ne!(genuine, forged, "the test edits the signed part");
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    let err = set.update_timestamp(forged.as_bytes()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("duplicate key check failed") && text.contains("\"version\""),
        "{text}"
    );
    assert!(set.timestamp().is_none());
    set.update_timestamp(genuine.as_bytes()).unwrap();

    let root = String::from_utf8(repo.root_bytes()).unwrap();
    let forged = root.replacen(
        "\"signed\":{",
        "\"signed\":{\"expires\":\"2999-01-01T00:00:00Z\",",
        1,
    );
    let err = TrustedSet::new(forged.as_bytes(), now()).unwrap_err();
    assert!(
        err.to_string().contains("duplicate key check failed"),
        "{err}"
    );
}

#[test]
fn a_root_listing_unusable_keys_of_no_role_loads() {
    // Keys no role names are never used to verify anything: an unknown type or a public value
    // that cannot be read is no reason to refuse the root (nor to count 0 valid signatures).
    let repo = Repo::new();
    for key in [
        serde_json::json!({"keytype": "ed448", "scheme": "ed448", "keyval": {"public": "00"}}),
        serde_json::json!({"keytype": "rsa", "scheme": "rsassa-pss-sha256", "keyval": {"public": "not pem"}}),
        serde_json::json!({"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "zz"}}),
    ] {
        let mut doc: serde_json::Value = serde_json::from_slice(&repo.root_bytes()).unwrap();
        doc["signed"]["keys"]["ab"] = key.clone();
        let root: ferry_core::metadata::Root =
            serde_json::from_value(doc["signed"].clone()).unwrap();
        let bytes = sign(&root, &[&repo.root_keys[0]]);
        let set = TrustedSet::new(&bytes, now());
        assert!(set.is_ok(), "{key}: {:?}", set.err().map(|e| e.to_string()));
    }
}
