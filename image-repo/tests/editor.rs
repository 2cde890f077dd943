//! The editor's rules, each checked through ferry-core's client trusted set reading what was
//! published, as a vehicle would.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use ferry_core::{find_target, TrustedSet};
use ferry_image_repo::{init, DelegateOptions, Error, InitOptions, Repository, TargetOptions};
use ferry_keys::{KeyKind, PrivateKey};
use std::path::Path;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join("metadata").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A client's view: trust 1.root.json, walk the root chain, load top-level roles, look up
/// `target`. Returns the role that signs it and the roles that had to be loaded.
fn client_lookup(dir: &Path, target: &str, at: DateTime<Utc>) -> (Option<String>, Vec<String>) {
    let mut set = TrustedSet::new(&read(dir, "1.root.json"), at).unwrap();
    let mut v = 2;
    while dir.join(format!("metadata/{v}.root.json")).exists() {
        set.update_root(&read(dir, &format!("{v}.root.json")))
            .unwrap();
        v += 1;
    }
    set.update_timestamp(&read(dir, "timestamp.json")).unwrap();
    let sv = set.timestamp().unwrap().snapshot_meta().unwrap().version;
    set.update_snapshot(&read(dir, &format!("{sv}.snapshot.json")), false)
        .unwrap();
    let mut loaded = Vec::new();
    let found = find_target(
        &mut set,
        target,
        &mut |set: &mut TrustedSet, role: &str, parent: &str| {
            loaded.push(role.to_owned());
            let version = set.snapshot().unwrap().role_meta(role).unwrap().version;
            set.update_targets(&read(dir, &format!("{version}.{role}.json")), role, parent)
                .map(|_| ())
        },
    )
    .unwrap();
    (found.map(|f| f.role), loaded)
}

fn new_repo(dir: &Path) -> Repository {
    init(dir, now(), &InitOptions::default()).unwrap().0
}

fn file(dir: &Path, name: &str, content: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn opts(name: &str) -> TargetOptions {
    TargetOptions {
        name: Some(name.into()),
        hardware_ids: vec!["ivi-a53".into()],
        version: Some("1.0".into()),
        ..Default::default()
    }
}

#[test]
fn init_publishes_a_repository_clients_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let repo_dir = tmp.path().join("repo");
    new_repo(&repo_dir);
    for name in [
        "1.root.json",
        "root.json",
        "timestamp.json",
        "1.snapshot.json",
        "1.targets.json",
    ] {
        assert!(repo_dir.join("metadata").join(name).exists(), "{name}");
    }
    let (found, loaded) = client_lookup(&repo_dir, "nothing", now());
    assert_eq!((found, loaded), (None, vec!["targets".to_string()]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(repo_dir.join("keys/root.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(matches!(
        init(&repo_dir, now(), &InitOptions::default()),
        Err(Error::AlreadyExists(_))
    ));
}

#[test]
fn a_target_is_stored_at_spec_paths_with_uptane_custom_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let f = file(tmp.path(), "app.bin", b"application bytes");
    let mut seen = 0;
    let (name, target) = repo
        .add_target(&f, &opts("ecu/ivi/app.bin"), &mut |n| seen = n)
        .unwrap();
    assert_eq!(seen, 17);
    for hash in target.hashes.values() {
        assert_eq!(
            std::fs::read(dir.join(format!("targets/ecu/ivi/{hash}.app.bin"))).unwrap(),
            b"application bytes"
        );
    }
    let report = repo.publish().unwrap();
    assert_eq!(report.roles, vec![("targets".to_string(), 2)]);
    let (found, _) = client_lookup(&dir, &name, now());
    assert_eq!(found.as_deref(), Some("targets"));
    let custom = target.image_custom(&name).unwrap();
    assert_eq!(custom.hardware_ids, ["ivi-a53"]);
    // The domain defaults are written out, not left for readers to derive.
    let written = target.custom.as_ref().unwrap();
    assert_eq!(written["domain"], "app");
    assert_eq!(written["provides"]["data-partition.app.version"], "1.0");
    assert_eq!(
        written["clearsProvides"],
        serde_json::json!(["data-partition.app.*"])
    );

    // Nothing staged: nothing written, versions unchanged.
    let again = Repository::open(&dir, now()).unwrap().publish().unwrap();
    assert_eq!(again, Default::default());
}

#[test]
fn only_an_ostree_pull_target_is_staged_without_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let commit = "ab".repeat(32);
    // Without custom.ostree naming a pull, a fileless target would be an unchecked one.
    let err = repo
        .add_pull_target("os/plain", &commit, &opts("os/plain"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("only an OSTree pull target"), "{err}");
    let mut o = opts("os/ferryos-2");
    o.domain = Some(ferry_core::metadata::uptane::Domain::Ostree);
    o.extra.insert(
        "ostree".into(),
        serde_json::json!({"commit": commit, "delivery": "pull", "url": "https://ostree.example.com/repo"}),
    );
    let (name, target) = repo.add_pull_target("os/ferryos-2", &commit, &o).unwrap();
    assert_eq!(target.length, 0);
    assert_eq!(target.hashes.len(), 1);
    assert_eq!(target.hashes["sha256"], commit);
    assert!(!dir.join("targets/os").exists(), "no file stored");
    repo.publish().unwrap();
    let (found, _) = client_lookup(&dir, &name, now());
    assert_eq!(found.as_deref(), Some("targets"));
    // A pull target naming another commit than its sha256 is refused by core's rule.
    let err = repo
        .add_pull_target("os/ferryos-2b", &"cd".repeat(32), &o)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ostree pull target check failed"), "{err}");
}

#[test]
fn path_escaping_names_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let f = file(tmp.path(), "x.bin", b"x");
    for bad in [
        "../escape.bin",
        "/etc/passwd",
        "a/../../b.bin",
        "a//b",
        "a\\b",
    ] {
        let err = repo.add_target(&f, &opts(bad), &mut |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Metadata(ferry_core::Error::UnsafeTargetPath { .. })
            ),
            "{bad}: {err}"
        );
    }
    assert!(!tmp.path().join("escape.bin").exists());
}

#[test]
fn a_supplier_signs_its_own_role_and_cannot_list_targets_outside_its_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let supplier = PrivateKey::generate(KeyKind::EcdsaP256).unwrap();
    let delegation = DelegateOptions {
        keys: vec![supplier.public_key().clone()],
        paths: vec!["tier1/*".into()],
        threshold: 1,
        terminating: true,
    };
    repo.delegate("tier1", &delegation).unwrap();
    let f = file(tmp.path(), "brake.bin", b"brake controller");
    let mut o = opts("tier1/brake.bin");
    o.role = Some("tier1".into());
    repo.add_target(&f, &o, &mut |_| {}).unwrap();

    // Outside its paths: refused when added.
    let mut outside = opts("os/rootfs.img");
    outside.role = Some("tier1".into());
    let err = repo.add_target(&f, &outside, &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::OutsideDelegation { .. }), "{err}");

    // Not signed by the supplier yet: publish refuses and names the command.
    let err = repo.publish().unwrap_err();
    assert!(
        matches!(err, Error::NotSigned { .. }) && err.to_string().contains("sign-role"),
        "{err}"
    );
    // A key the delegation does not list cannot sign.
    let stranger = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    assert!(matches!(
        repo.sign_role("tier1", &stranger),
        Err(Error::KeyNotAuthorised { .. })
    ));

    // The supplier signs (on its own host: a fresh Repository over the same directory).
    let mut at_supplier = Repository::open(&dir, now()).unwrap();
    at_supplier.sign_role("tier1", &supplier).unwrap();
    let mut repo = Repository::open(&dir, now()).unwrap();
    repo.publish().unwrap();
    let (found, loaded) = client_lookup(&dir, "tier1/brake.bin", now());
    assert_eq!(found.as_deref(), Some("tier1"));
    assert_eq!(loaded, ["targets", "tier1"]);
}

#[test]
fn a_staged_role_whose_version_went_down_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let f = file(tmp.path(), "a.bin", b"a");
    repo.add_target(&f, &opts("a.bin"), &mut |_| {}).unwrap();
    repo.publish().unwrap(); // targets v2
    repo.add_target(&f, &opts("b.bin"), &mut |_| {}).unwrap(); // staged v3
    let staged = dir.join("staging/targets.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&staged).unwrap()).unwrap();
    doc["signed"]["version"] = 1.into();
    std::fs::write(&staged, serde_json::to_vec(&doc).unwrap()).unwrap();
    let err = Repository::open(&dir, now())
        .unwrap()
        .publish()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionNotIncreasing {
                published: 2,
                new: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn hashed_bins_publish_only_the_touched_bin() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let f = file(tmp.path(), "a.bin", b"a");
    repo.add_target(&f, &opts("early/a.bin"), &mut |_| {})
        .unwrap();
    repo.make_bins(16, None).unwrap();
    let first = repo.publish().unwrap();
    assert_eq!(first.roles.len(), 17, "targets and 16 bins");
    let (found, loaded) = client_lookup(&dir, "early/a.bin", now());
    assert!(
        found.unwrap().starts_with("bins-"),
        "existing targets moved into their bin"
    );
    assert_eq!(loaded.len(), 2);

    let mut repo = Repository::open(&dir, now()).unwrap();
    let g = file(tmp.path(), "b.bin", b"b");
    repo.add_target(&g, &opts("late/b.bin"), &mut |_| {})
        .unwrap();
    let report = repo.publish().unwrap();
    assert_eq!(report.roles.len(), 1, "{report:?}");
    assert!(report.roles[0].0.starts_with("bins-"));
    let (found, loaded) = client_lookup(&dir, "late/b.bin", now());
    assert_eq!(found.as_deref(), Some(report.roles[0].0.as_str()));
    assert_eq!(
        loaded,
        vec!["targets".to_string(), report.roles[0].0.clone()]
    );
}

#[test]
fn refresh_resigns_what_is_about_to_expire_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    repo.make_bins(4, None).unwrap();
    repo.publish().unwrap();
    // Twelve hours in nothing is within 1h of expiry.
    let later = now() + Duration::hours(12);
    let quiet = Repository::open(&dir, later)
        .unwrap()
        .refresh(std::time::Duration::from_secs(3600))
        .unwrap();
    assert_eq!(quiet, Default::default());
    // Six and a half days in: the timestamp (1 day) has expired, snapshot and bins (7 days) are
    // within a day of it.
    let later = now() + Duration::hours(156);
    let report = Repository::open(&dir, later)
        .unwrap()
        .refresh(std::time::Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(report.roles.len(), 4, "every bin: {report:?}");
    assert!(report.snapshot.is_some() && report.timestamp.is_some());
    let (found, _) = client_lookup(&dir, "x", later);
    assert_eq!(found, None);
    let again = Repository::open(&dir, later)
        .unwrap()
        .refresh(std::time::Duration::from_secs(86_400))
        .unwrap();
    assert_eq!(again, Default::default(), "second refresh changes nothing");
}

#[test]
fn rotation_is_signed_by_old_and_new_root_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo");
    let mut repo = new_repo(&dir);
    let k1 = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let k2 = PrivateKey::generate(KeyKind::Rsa3072).unwrap();
    let (p1, p2) = (
        tmp.path().join("new-root-1.pem"),
        tmp.path().join("new-root-2.pem"),
    );
    k1.write_file(&p1, None).unwrap();
    k2.write_file(&p2, None).unwrap();
    let report = repo.rotate("root", &[(p1, k1), (p2, k2)], 2).unwrap();
    assert!(
        report.roles.contains(&("root".to_string(), 2)),
        "{report:?}"
    );
    // A client trusting v1 walks to v2 (old and new thresholds both checked there).
    let (_, loaded) = client_lookup(&dir, "x", now());
    assert_eq!(loaded, ["targets"]);
    let root2: serde_json::Value = serde_json::from_slice(&read(&dir, "2.root.json")).unwrap();
    assert_eq!(
        root2["signatures"].as_array().unwrap().len(),
        3,
        "one old and two new root signatures"
    );

    // Rotating the timestamp key: the next timestamp is signed by the new key only.
    let mut repo = Repository::open(&dir, now()).unwrap();
    let t = PrivateKey::generate(KeyKind::Ed25519).unwrap();
    let tp = tmp.path().join("ts.pem");
    t.write_file(&tp, None).unwrap();
    let tid = t.key_id().clone();
    repo.rotate("timestamp", &[(tp, t)], 1).unwrap();
    let ts: serde_json::Value = serde_json::from_slice(&read(&dir, "timestamp.json")).unwrap();
    assert_eq!(ts["signatures"][0]["keyid"], tid.as_str());
    client_lookup(&dir, "x", now());
}
