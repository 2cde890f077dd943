//! tough 0.24's client (`tough::RepositoryLoader`) loads a repository this crate wrote and reads
//! a target's bytes: DESIGN.md wants our repositories to load in tough as well as python-tuf.
//!
//! The repository is read through file:// URLs (tough's default transport), so the test needs
//! no server and no HTTP client feature of tough; the HTTP path is covered by the python-tuf
//! tests in tools/tests/repo_interop*.rs. Expiry is real here (tough checks it against the
//! system clock), so the repository is made at the system clock's time.
//!
//! Known difference (DESIGN.md "Why our own verification engine"): with consistent snapshots
//! tough fetches a target `dir/file` from `HASH.dir/file`, where the TUF spec (and Ferry, and
//! python-tuf) use `dir/HASH.file`. So tough reads top-level targets only;
//! `subdirectory_target_is_where_the_spec_puts_it_not_where_tough_looks` pins that down.
#![allow(clippy::unwrap_used)]

use ferry_core::{Clock, SystemClock};
use ferry_image_repo::{init, InitOptions, Repository, TargetOptions};
use ferry_keys::{KeyKind, PrivateKey};
use std::path::{Path, PathBuf};
use tough::{IntoVec, RepositoryLoader, TargetName};
use url::Url;

fn payload(tag: &str, len: usize) -> Vec<u8> {
    tag.bytes().cycle().take(len).collect()
}

fn add(repo: &mut Repository, work: &Path, name: &str, data: &[u8]) {
    let src = work.join(name.replace('/', "_"));
    std::fs::write(&src, data).unwrap();
    let options = TargetOptions {
        name: Some(name.into()),
        hardware_ids: vec!["ecu-m4".into()],
        release_counter: 4,
        // Both hashes: tough must accept a target signed with sha256 and sha512.
        sha512: true,
        ..TargetOptions::default()
    };
    repo.add_target(&src, &options, &mut |_| {}).unwrap();
}

/// A repository with no delegations: `init`, two targets, `publish`.
struct Fixture {
    _tmp: tempfile::TempDir,
    work: PathBuf,
    dir: PathBuf,
    repo: Repository,
}

fn fixture(targets: &[(&str, &[u8])]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_owned();
    let dir = work.join("repo");
    let (mut repo, _) = init(&dir, SystemClock.now(), &InitOptions::default()).unwrap();
    for (name, data) in targets {
        add(&mut repo, &work, name, data);
    }
    repo.publish().unwrap();
    Fixture {
        _tmp: tmp,
        work,
        dir,
        repo,
    }
}

fn dir_url(path: &Path) -> Url {
    Url::from_directory_path(path).unwrap()
}

/// tough's client, trusting `trusted_root`, reading DIR/metadata and DIR/targets. The client's
/// datastore lives as long as the returned directory.
async fn load(dir: &Path, trusted_root: &[u8]) -> (tough::Repository, tempfile::TempDir) {
    let datastore = tempfile::tempdir().unwrap();
    let repo = RepositoryLoader::new(
        &trusted_root,
        dir_url(&dir.join("metadata")),
        dir_url(&dir.join("targets")),
    )
    .datastore(datastore.path())
    .load()
    .await
    .unwrap_or_else(|e| panic!("tough refused the repository: {e}"));
    (repo, datastore)
}

async fn read(repo: &tough::Repository, name: &str) -> tough::error::Result<Option<Vec<u8>>> {
    let name = TargetName::new(name).unwrap();
    match repo.read_target(&name).await? {
        Some(stream) => Ok(Some(stream.into_vec().await?)),
        None => Ok(None),
    }
}

#[tokio::test]
async fn tough_loads_the_repository_and_reads_a_target() {
    let firmware = payload("ecu-firmware-7|", 200_000);
    let other = payload("gateway|", 3_000);
    let f = fixture(&[("ecu-firmware.bin", &firmware), ("gateway.bin", &other)]);
    let root = std::fs::read(f.dir.join("metadata/1.root.json")).unwrap();

    let (tough, _datastore) = load(&f.dir, &root).await;
    assert_eq!(u64::from(tough.root().signed.version), 1);
    assert!(tough.root().signed.consistent_snapshot);
    let mut listed: Vec<String> = tough
        .targets()
        .signed
        .targets
        .keys()
        .map(|n| n.raw().to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, ["ecu-firmware.bin", "gateway.bin"]);
    // Uptane custom metadata survives tough's parsing.
    let target = &tough.targets().signed.targets[&TargetName::new("ecu-firmware.bin").unwrap()];
    assert_eq!(
        target.custom["hardwareIds"],
        serde_json::json!(["ecu-m4"]),
        "{:?}",
        target.custom
    );
    assert_eq!(target.custom["releaseCounter"], 4);

    let got = read(&tough, "ecu-firmware.bin").await.unwrap().unwrap();
    assert!(
        got == firmware,
        "tough read {} bytes that differ",
        got.len()
    );
    let got = read(&tough, "gateway.bin").await.unwrap().unwrap();
    assert!(got == other);
    assert!(read(&tough, "absent.bin").await.unwrap().is_none());
}

#[tokio::test]
async fn tough_walks_a_root_rotation_and_reads_a_later_target() {
    let first = payload("v1|", 5_000);
    let mut f = fixture(&[("rootfs-1.img", &first)]);
    let shipped_root = std::fs::read(f.dir.join("metadata/1.root.json")).unwrap();

    let new_keys: Vec<(PathBuf, PrivateKey)> = ["root-a.pem", "root-b.pem"]
        .iter()
        .map(|name| {
            let path = f.work.join(name);
            let key = PrivateKey::generate(KeyKind::Ed25519).unwrap();
            key.write_file(&path, None).unwrap();
            (path, key)
        })
        .collect();
    f.repo.rotate("root", &new_keys, 2).unwrap();
    let second = payload("v2|", 6_000);
    add(&mut f.repo, &f.work, "rootfs-2.img", &second);
    f.repo.publish().unwrap();

    let (tough, _datastore) = load(&f.dir, &shipped_root).await;
    assert_eq!(u64::from(tough.root().signed.version), 2);
    assert_eq!(
        u64::from(tough.root().signed.roles[&tough::schema::RoleType::Root].threshold),
        2
    );
    let got = read(&tough, "rootfs-2.img").await.unwrap().unwrap();
    assert!(got == second);
    let got = read(&tough, "rootfs-1.img").await.unwrap().unwrap();
    assert!(got == first);
}

/// The documented layout difference, pinned so that a tough release that follows the spec
/// (or a change of our layout) shows up here: tough loads the metadata of a subdirectory
/// target, but looks for its file at `targets/HASH.dir/file`, which Ferry does not write.
#[tokio::test]
async fn subdirectory_target_is_where_the_spec_puts_it_not_where_tough_looks() {
    let app = payload("ivi-app|", 4_000);
    let f = fixture(&[("apps/ivi/app.bin", &app)]);
    let root = std::fs::read(f.dir.join("metadata/1.root.json")).unwrap();
    let (tough, _datastore) = load(&f.dir, &root).await;
    let target = &tough.targets().signed.targets[&TargetName::new("apps/ivi/app.bin").unwrap()];
    let sha256 = hex::encode(&target.hashes.sha256);
    assert!(
        f.dir
            .join(format!("targets/apps/ivi/{sha256}.app.bin"))
            .is_file(),
        "Ferry stores it at the spec path dir/HASH.file"
    );
    assert!(!f
        .dir
        .join(format!("targets/{sha256}.apps/ivi/app.bin"))
        .exists());
    let err = read(&tough, "apps/ivi/app.bin")
        .await
        .expect_err("tough found a subdirectory target; drop the layout note above");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{sha256}.apps")),
        "tough failed for another reason than the HASH.dir/file path: {text}"
    );
}
