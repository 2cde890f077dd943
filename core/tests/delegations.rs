//! Target search through delegations: only roles on the target's path are loaded, a role
//! cannot vouch for targets outside its paths, terminating delegations stop the search, and
//! hashed bins place each target in exactly one bin.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ferry_core::metadata::{Delegations, MetaFile, SuccinctRoles};
use ferry_core::{find_target, Error, TrustedSet};
use std::collections::BTreeMap;

/// Load top-level metadata, then search `target`, recording which delegated roles were loaded.
fn search(repo: &Repo, target: &str) -> (Result<Option<String>, Error>, Vec<String>) {
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let mut loaded = Vec::new();
    let result = find_target(
        &mut set,
        target,
        &mut |set: &mut TrustedSet, role: &str, parent: &str| {
            loaded.push(role.to_owned());
            let bytes = if role == "targets" {
                repo.targets_bytes()
            } else {
                repo.role_bytes(role)
            };
            set.update_targets(&bytes, role, parent).map(|_| ())
        },
    );
    (result.map(|found| found.map(|f| f.role)), loaded)
}

#[test]
fn only_roles_on_the_targets_path_are_loaded() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    repo.delegate("os", &["os/*"], false);
    repo.delegated
        .get_mut("os")
        .unwrap()
        .0
        .targets
        .insert("os/image.bin".into(), target_file(b"os"));
    let (found, loaded) = search(&repo, "os/image.bin");
    assert_eq!(found.unwrap().as_deref(), Some("os"));
    assert_eq!(
        loaded,
        ["targets", "os"],
        "the apps role must not be fetched"
    );
}

#[test]
fn a_role_cannot_vouch_for_a_target_outside_its_paths() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    // The supplier signs an OS image it was never delegated.
    repo.delegated
        .get_mut("apps")
        .unwrap()
        .0
        .targets
        .insert("os/image.bin".into(), target_file(b"evil"));
    let (found, loaded) = search(&repo, "os/image.bin");
    assert_eq!(found.unwrap(), None);
    assert_eq!(
        loaded,
        ["targets"],
        "a role whose paths do not match is not even loaded"
    );
}

#[test]
fn a_terminating_delegation_hides_later_roles() {
    let mut repo = Repo::new();
    repo.delegate("first", &["fw/*"], true);
    repo.delegate("second", &["fw/*"], false);
    repo.delegated
        .get_mut("second")
        .unwrap()
        .0
        .targets
        .insert("fw/a.bin".into(), target_file(b"a"));
    let (found, loaded) = search(&repo, "fw/a.bin");
    assert_eq!(found.unwrap(), None);
    assert_eq!(loaded, ["targets", "first"]);

    // Not terminating: the search goes on to the next role.
    let mut repo = Repo::new();
    repo.delegate("first", &["fw/*"], false);
    repo.delegate("second", &["fw/*"], false);
    repo.delegated
        .get_mut("second")
        .unwrap()
        .0
        .targets
        .insert("fw/a.bin".into(), target_file(b"a"));
    let (found, loaded) = search(&repo, "fw/a.bin");
    assert_eq!(found.unwrap().as_deref(), Some("second"));
    assert_eq!(loaded, ["targets", "first", "second"]);
}

#[test]
fn a_delegated_role_signed_by_the_wrong_key_is_refused() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    repo.delegated.get_mut("apps").unwrap().1 = vec![std::rc::Rc::new(key())];
    let (found, _) = search(&repo, "apps/x");
    assert!(matches!(found, Err(Error::Threshold { .. })), "{found:?}");
}

#[test]
fn a_delegated_role_missing_from_snapshot_is_refused() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    repo.snapshot.meta.remove("apps.json");
    let (found, _) = search(&repo, "apps/x");
    assert!(
        matches!(found, Err(Error::NotInSnapshot { .. })),
        "{found:?}"
    );
}

#[test]
fn hashed_bins_load_exactly_one_bin() {
    let mut repo = Repo::new();
    let bins_key = std::rc::Rc::new(key());
    let bins = SuccinctRoles {
        bit_length: 4,
        keyids: vec![bins_key.key_id().clone()],
        name_prefix: "bin".into(),
        threshold: 1,
        extra: BTreeMap::new(),
    };
    let target = "apps/analytics-3.0.tar";
    let home = bins.bin_for(target);
    assert!(bins.is_bin(&home) && !bins.is_bin("bin-10") && !bins.is_bin("bin-g"));
    for name in bins.bin_names() {
        let mut meta = repo.targets.clone();
        meta.targets.clear();
        if name == home {
            meta.targets
                .insert(target.into(), target_file(b"analytics"));
        }
        repo.snapshot
            .meta
            .insert(format!("{name}.json"), MetaFile::new(1));
        repo.delegated.insert(name, (meta, vec![bins_key.clone()]));
    }
    repo.targets.delegations = Some(Delegations {
        keys: key_map(&[&bins_key]),
        roles: None,
        succinct_roles: Some(bins),
        extra: BTreeMap::new(),
    });
    let (found, loaded) = search(&repo, target);
    assert_eq!(found.unwrap(), Some(home.clone()));
    assert_eq!(loaded, vec!["targets".to_string(), home]);
}

#[test]
fn malformed_delegations_are_refused() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    let d = repo.targets.delegations.as_mut().unwrap();
    let dup = d.roles.as_ref().unwrap()[0].clone();
    d.roles.as_mut().unwrap().push(dup);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let err = set
        .update_targets(&repo.targets_bytes(), "targets", "root")
        .unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn a_role_delegated_by_two_roles_is_refused_on_the_second_path() {
    // targets -> a (a/*) -> shared (a/*), signed by the key `a` names for it;
    // targets -> b (b/*) -> shared (b/*), for which `b` names another key, which never signed.
    let mut repo = Repo::new();
    repo.delegate("a", &["a/*"], false);
    repo.delegate("b", &["b/*"], false);
    let (a_key, b_key) = (key(), key());
    for (delegator, path, key) in [("a", "a/*", &a_key), ("b", "b/*", &b_key)] {
        let (meta, _) = repo.delegated.get_mut(delegator).unwrap();
        add_delegation(meta, "shared", &[path], false, key);
    }
    let mut shared = repo.targets.clone();
    shared.delegations = None;
    shared.targets = [("b/evil.bin".to_string(), target_file(b"evil"))].into();
    repo.delegated
        .insert("shared".into(), (shared, vec![std::rc::Rc::new(a_key)]));
    repo.snapshot
        .meta
        .insert("shared.json".into(), MetaFile::new(1));

    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    let mut load = |set: &mut TrustedSet, role: &str, parent: &str| {
        let bytes = if role == "targets" {
            repo.targets_bytes()
        } else {
            repo.role_bytes(role)
        };
        set.update_targets(&bytes, role, parent).map(|_| ())
    };
    // First path: a/x.bin walks targets -> a -> shared, which `a`'s key signed: loaded.
    assert!(find_target(&mut set, "a/x.bin", &mut load)
        .unwrap()
        .is_none());
    assert!(set.targets("shared").is_some());
    // Second path: b/evil.bin walks targets -> b -> shared. `shared` was never signed by the
    // key `b` delegates to, so it must not vouch for b/evil.bin.
    let err = find_target(&mut set, "b/evil.bin", &mut load).unwrap_err();
    assert!(matches!(err, Error::DelegatedTwice { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("delegation check failed"), "{text}");
    assert!(
        text.contains("shared") && text.contains("through b"),
        "{text}"
    );

    // On a fresh trusted set the b path alone is refused too: b's key never signed shared.
    let mut fresh = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    fresh.update_timestamp(&repo.timestamp_bytes()).unwrap();
    fresh
        .update_snapshot(&repo.snapshot_bytes(), false)
        .unwrap();
    let err = find_target(&mut fresh, "b/evil.bin", &mut load).unwrap_err();
    assert!(matches!(err, Error::Threshold { .. }), "{err}");
}

#[test]
fn a_delegated_roles_refusal_names_the_role_not_targets() {
    let mut repo = Repo::new();
    repo.delegate("apps", &["apps/*"], false);
    let mut set = TrustedSet::new(&repo.root_bytes(), now()).unwrap();
    set.update_timestamp(&repo.timestamp_bytes()).unwrap();
    set.update_snapshot(&repo.snapshot_bytes(), false).unwrap();
    set.update_targets(&repo.targets_bytes(), "targets", "root")
        .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&repo.role_bytes("apps")).unwrap();
    let sig = doc["signatures"][0].clone();
    doc["signatures"].as_array_mut().unwrap().push(sig);
    let err = set
        .update_targets(&serde_json::to_vec(&doc).unwrap(), "apps", "targets")
        .unwrap_err();
    assert!(
        matches!(&err, Error::DuplicateSignature { role, .. } if role == "apps"),
        "{err}"
    );
    let err = set
        .update_targets(
            br#"{"signed": {"_type": "targets", "version": "one"}, "signatures": []}"#,
            "apps",
            "targets",
        )
        .unwrap_err();
    assert!(err.to_string().contains("apps is malformed"), "{err}");
}
