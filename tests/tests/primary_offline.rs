//! PURE-2 offline bundles on a real vehicle: `ferry-primary offline --bundle DIR|FILE.tar` and
//! `ferry-primary run` watching `[offline] source`, with the Primary's own ECU, a full and a
//! partial `ferry-secondary` daemon on 127.0.0.1, and no network to any backend (the
//! Director's URL points at nothing). The Image repository is made with `ferry repo`; the
//! Director's side of a bundle (a root v1 with the offline-update roles, the offline-update
//! snapshot and targets) is signed here with keys the test holds, in the bundle layout the
//! Director writes.
#![allow(clippy::unwrap_used)]

mod primary_common;

use chrono::{Duration, Utc};
use ferry_core::metadata::{
    hashes_of, Expires, MetaFile, OfflineSnapshot, OfflineTargets, RoleKeys, Root, Signed,
    TargetFile, SPEC_VERSION,
};
use ferry_keys::{KeyKind, PrivateKey, Signer};
use ferry_tests::bins::binary;
use ferry_tests::daemon::Daemon;
use ferry_tests::process::Output;
use primary_common::{ferry_ok, http, run, FULL, PARTIAL, PRIMARY, TIMEOUT, VIN};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const APP: &str = "apps/demo-2.tar";
const FW: &str = "tcu/fw-2.bin";
const APP3: &str = "apps/demo-3.tar";
const FW3: &str = "tcu/fw-3.bin";

fn app_bytes(seed: u8) -> Vec<u8> {
    (0..256u32 << 10).map(|i| (i % 251) as u8 ^ seed).collect()
}

fn key() -> PrivateKey {
    PrivateKey::generate(KeyKind::Ed25519).unwrap()
}

fn sign<T: ferry_core::metadata::Role>(meta: T, keys: &[&PrivateKey]) -> Vec<u8> {
    let mut signed = Signed::new(meta);
    for k in keys {
        signed.sign(*k as &dyn Signer).unwrap();
    }
    signed.to_bytes().unwrap()
}

fn expires_in(days: i64) -> Expires {
    Expires::after(Utc::now(), Duration::days(days))
}

fn private_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(path, perms).unwrap();
}

/// One image of a bundle: its target name, the hardwareIds it is for, its bytes.
#[derive(Clone)]
struct Image {
    target: &'static str,
    hardware_ids: Vec<&'static str>,
    bytes: Vec<u8>,
}

fn image(target: &'static str, hardware_id: &'static str, bytes: Vec<u8>) -> Image {
    Image {
        target,
        hardware_ids: vec![hardware_id],
        bytes,
    }
}

/// What the Director would put in a bundle.
struct Spec<'a> {
    name: &'a str,
    /// The offline-update targets file's version, and the one the offline snapshot lists.
    version: u64,
    listed_version: u64,
    snapshot_version: u64,
    /// Other bundles the offline snapshot lists.
    also_listed: Vec<(&'a str, u64)>,
    images: Vec<Image>,
    days: i64,
    /// Signs the offline-update targets (the offline-update key unless a test says not).
    targets_key: &'a PrivateKey,
}

/// A vehicle (Primary, full and partial Secondary) that has never been online, with the
/// Director's keys and an Image repository the test controls.
struct Vehicle {
    _tmp: tempfile::TempDir,
    base: PathBuf,
    online: PrivateKey,
    offline: PrivateKey,
    secondaries: Vec<Daemon>,
}

impl Vehicle {
    fn new() -> Vehicle {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().to_path_buf();
        let b = base.as_path();

        // The Image repository, with the app for the IVI and firmware for both TCUs.
        ferry_ok(b, &["repo", "init", "img"]);
        std::fs::write(b.join("demo2.tar"), app_bytes(0)).unwrap();
        std::fs::write(b.join("fw2.bin"), b"tcu firmware 2").unwrap();
        let app = ["--hardware-id", "ivi", "--software-name", "demo"];
        add_target(
            b,
            "demo2.tar",
            APP,
            &[&app[..], &["--version", "2", "--release-counter", "2"]].concat(),
        );
        add_target(
            b,
            "fw2.bin",
            FW,
            &["--hardware-id", "tcu", "--version", "2"],
        );
        ferry_ok(b, &["repo", "publish", "img"]);

        // The Director's root v1 with the PURE-2 roles, shipped with every ECU.
        let (root_key, online, offline) = (key(), key(), key());
        let keys = [&root_key, &online, &offline]
            .iter()
            .map(|k| (k.key_id().clone(), k.public_key().clone()))
            .collect();
        let role = |k: &PrivateKey| RoleKeys {
            keyids: vec![k.key_id().clone()],
            threshold: 1,
            extra: BTreeMap::new(),
        };
        let root = Root {
            type_: "root".into(),
            consistent_snapshot: true,
            expires: expires_in(365),
            keys,
            roles: [
                ("root", role(&root_key)),
                ("targets", role(&online)),
                ("snapshot", role(&online)),
                ("timestamp", role(&online)),
                ("offline-update-snapshot", role(&offline)),
                ("offline-update-targets", role(&offline)),
            ]
            .into_iter()
            .map(|(r, k)| (r.to_owned(), k))
            .collect(),
            spec_version: SPEC_VERSION.into(),
            version: 1,
            extra: BTreeMap::new(),
        };
        std::fs::create_dir_all(b.join("d")).unwrap();
        std::fs::write(b.join("d/1.root.json"), sign(root, &[&root_key])).unwrap();
        // A partial Secondary pins the Director's targets key and its offline-update key.
        for (file, k) in [
            ("director-targets.pub.json", &online),
            ("offline-targets.pub.json", &offline),
        ] {
            std::fs::write(b.join(file), serde_json::to_vec(k.public_key()).unwrap()).unwrap();
        }

        for ecu in [PRIMARY, FULL, PARTIAL] {
            let out = format!("{ecu}.key");
            let gen = ["key", "gen", "--type", "ed25519", "--out", &out];
            ferry_ok(b, &[&gen[..], &["--insecure-plaintext"]].concat());
        }
        let mut secondaries = Vec::new();
        for (serial, mode) in [(FULL, "full"), (PARTIAL, "partial")] {
            let anchors = if mode == "full" {
                "director_root = \"d/1.root.json\"\nimage_root = \"img/metadata/1.root.json\"\n"
            } else {
                "director_targets_key = \"director-targets.pub.json\"\n\
                 offline_targets_key = \"offline-targets.pub.json\"\n"
            };
            let toml = format!(
                "vin = \"{VIN}\"\nserial = \"{serial}\"\nhardware_id = \"tcu\"\nkey = \"{serial}.key\"\n\
                 listen = \"127.0.0.1:0\"\ndata_dir = \"{serial}-state\"\nverification = \"{mode}\"\n\
                 {anchors}apps_dir = \"{serial}-apps\"\n"
            );
            let path = b.join(format!("{serial}.toml"));
            std::fs::write(&path, toml).unwrap();
            let mut cmd = Command::new(binary("ferry-secondary", "ferry-secondary"));
            cmd.arg("--config").arg(&path).env("RUST_LOG", "info");
            secondaries.push(Daemon::start(cmd));
        }
        // No backend is reachable: the Director's URL answers nothing.
        private_file(&b.join("device.token"), "unused");
        let vehicle = Vehicle {
            _tmp: tmp,
            base,
            online,
            offline,
            secondaries,
        };
        vehicle.write_primary_config("");
        vehicle
    }

    fn write_primary_config(&self, extra: &str) {
        let [full, partial] = [0, 1].map(|i| format!("http://{}", self.secondaries[i].addr));
        let toml = format!(
            "vin = \"{VIN}\"\ndata_dir = \"primary-state\"\npoll_interval = \"1s\"\n\
             [director]\nurl = \"http://127.0.0.1:9\"\nroot = \"d/1.root.json\"\ntoken_file = \"device.token\"\n\
             [image_repo]\nurl = \"http://127.0.0.1:9\"\nroot = \"img/metadata/1.root.json\"\n\
             [ecu]\nserial = \"{PRIMARY}\"\nhardware_id = \"ivi\"\nkey = \"{PRIMARY}.key\"\napps_dir = \"{PRIMARY}-apps\"\n\
             [[secondaries]]\nserial = \"{FULL}\"\nurl = \"{full}\"\n\
             [[secondaries]]\nserial = \"{PARTIAL}\"\nurl = \"{partial}\"\n{extra}"
        );
        std::fs::write(self.base.join("primary.toml"), toml).unwrap();
    }

    fn spec(&self, name: &'static str, images: Vec<Image>) -> Spec<'_> {
        Spec {
            name,
            version: 1,
            listed_version: 1,
            snapshot_version: 1,
            also_listed: Vec::new(),
            images,
            days: 30,
            targets_key: &self.offline,
        }
    }

    /// The images of version 2: the app for the IVI, firmware for the TCUs.
    fn v2(&self) -> Vec<Image> {
        vec![
            image(APP, "ivi", app_bytes(0)),
            image(FW, "tcu", b"tcu firmware 2".to_vec()),
        ]
    }

    /// The Image repository's latest `N.ROLE.json`.
    fn latest(&self, role: &str) -> Vec<u8> {
        let dir = self.base.join("img/metadata");
        let suffix = format!(".{role}.json");
        let newest = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(&suffix)?.parse::<u64>().ok()
            })
            .max()
            .unwrap();
        std::fs::read(dir.join(format!("{newest}{suffix}"))).unwrap()
    }

    fn offline_snapshot(&self, version: u64, listed: &[(&str, u64)], days: i64) -> Vec<u8> {
        let snapshot = OfflineSnapshot {
            type_: "offline-update-snapshot".into(),
            expires: expires_in(days),
            meta: listed
                .iter()
                .map(|(n, v)| (format!("{n}.json"), MetaFile::new(*v)))
                .collect(),
            spec_version: SPEC_VERSION.into(),
            version,
            extra: BTreeMap::new(),
        };
        sign(snapshot, &[&self.offline])
    }

    /// Write the bundle `spec` describes as a directory `sticks/DIR`, in the PURE-2 layout.
    fn bundle(&self, dir: &str, spec: &Spec<'_>) -> PathBuf {
        let out = self.base.join("sticks").join(dir);
        let director = out.join(".well-known/metadata/director");
        let image_repo = out.join(".well-known/metadata/image-repo");
        for d in [&director, &image_repo, &out.join("receipts")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::copy(
            self.base.join("d/1.root.json"),
            director.join("1.root.json"),
        )
        .unwrap();
        let mut listed = vec![(spec.name, spec.listed_version)];
        listed.extend(spec.also_listed.iter().copied());
        std::fs::write(
            director.join("offline-update-snapshot.json"),
            self.offline_snapshot(spec.snapshot_version, &listed, spec.days),
        )
        .unwrap();
        let targets = OfflineTargets {
            type_: "offline-update-targets".into(),
            expires: expires_in(spec.days),
            spec_version: SPEC_VERSION.into(),
            targets: spec
                .images
                .iter()
                .map(|i| {
                    // sha256 only, as `ferry repo` signs it (the Director lists what the
                    // Image repository does).
                    let mut hashes = hashes_of(&i.bytes);
                    hashes.retain(|algorithm, _| algorithm == "sha256");
                    let file = TargetFile {
                        custom: Some(serde_json::json!({ "hardwareIds": i.hardware_ids })),
                        hashes,
                        length: i.bytes.len() as u64,
                        extra: BTreeMap::new(),
                    };
                    (i.target.to_owned(), file)
                })
                .collect(),
            version: spec.version,
            extra: BTreeMap::new(),
        };
        std::fs::write(
            director.join(format!("{}.json", spec.name)),
            sign(targets, &[spec.targets_key]),
        )
        .unwrap();
        std::fs::copy(
            self.base.join("img/metadata/1.root.json"),
            image_repo.join("1.root.json"),
        )
        .unwrap();
        std::fs::write(image_repo.join("snapshot.json"), self.latest("snapshot")).unwrap();
        std::fs::write(image_repo.join("targets.json"), self.latest("targets")).unwrap();
        let mut files = serde_json::Map::new();
        for i in &spec.images {
            let path = out.join(".well-known/images").join(i.target);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &i.bytes).unwrap();
            files.insert(
                format!(".well-known/images/{}", i.target),
                serde_json::json!({"length": i.bytes.len(), "sha256": ferry_tests::sha256_hex(&i.bytes)}),
            );
        }
        let index = serde_json::json!({"ferry_bundle": 1, "name": spec.name,
            "created": Utc::now().to_rfc3339(), "files": files});
        std::fs::write(out.join("bundle.json"), index.to_string()).unwrap();
        out
    }

    /// `ferry-primary offline --bundle PATH --json ARGS`: the output and its JSON report.
    fn offline(&self, bundle: &Path, args: &[&str]) -> (Output, Value) {
        let mut all = vec![
            "--config",
            "primary.toml",
            "offline",
            "--bundle",
            bundle.to_str().unwrap(),
            "--json",
        ];
        all.extend_from_slice(args);
        let out = run(&self.base, &binary("ferry-primary", "ferry-primary"), &all);
        let report = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{out}"));
        (out, report)
    }

    fn status(&self) -> Value {
        let out = run(
            &self.base,
            &binary("ferry-primary", "ferry-primary"),
            &["--config", "primary.toml", "status", "--json"],
        );
        assert_eq!(out.code, 0, "{out}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// ECU serial → installed target, as each ECU says.
    fn installed(&self) -> BTreeMap<String, Value> {
        self.status()["ecus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["serial"].as_str().unwrap().to_owned(),
                    e["status"]["installed"]["target"].clone(),
                )
            })
            .collect()
    }

    /// Nothing installed anywhere and nothing left staged.
    fn assert_nothing_installed(&self) {
        for (serial, target) in self.installed() {
            assert!(target.is_null(), "{serial} installed {target}");
        }
        for serial in [PRIMARY, FULL, PARTIAL] {
            let apps = self.base.join(format!("{serial}-apps"));
            let entries = std::fs::read_dir(&apps).map(|d| d.count()).unwrap_or(0);
            assert_eq!(entries, 0, "{} is not empty", apps.display());
        }
        for staging in [
            "primary-state/ecu/staging",
            "tcu-full-state/staging",
            "tcu-partial-state/staging",
        ] {
            let left: Vec<_> = std::fs::read_dir(self.base.join(staging))
                .map(|d| d.map(|e| e.unwrap().path()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{staging}: {left:?}");
        }
    }

    /// `ferry-primary offline` refuses `bundle`, naming `check`, with nothing installed.
    fn assert_refused(&self, bundle: &Path, args: &[&str], check: &str) -> Value {
        let (out, report) = self.offline(bundle, args);
        assert_ne!(out.code, 0, "{out}");
        assert_eq!(report["result"], "refused", "{out}");
        let detail = report["detail"].as_str().unwrap();
        assert!(
            detail.contains(check),
            "expected {check:?} in: {detail}\n{out}"
        );
        assert!(out.stderr.contains(check), "{out}");
        self.assert_nothing_installed();
        report
    }
}

fn add_target(base: &Path, file: &str, name: &str, args: &[&str]) {
    let mut full = vec!["repo", "add-target", "img", file, "--name", name];
    full.extend_from_slice(args);
    ferry_ok(base, &full);
}

/// A `.tar` of bundle directory `dir` (its tree under one top-level directory, as `tar -C
/// sticks -cf x.tar NAME` makes it).
fn tar_of(dir: &Path, out: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(out).unwrap());
    builder.follow_symlinks(false);
    builder
        .append_dir_all(dir.file_name().unwrap(), dir)
        .unwrap();
    builder.finish().unwrap();
}

/// A receipt: signed by the Primary's key over its canonical `signed` part, with every ECU's
/// report and the bundle's outcome.
fn check_receipt(v: &Vehicle, path: &Path, name: &str, targets_file: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let receipt: Value = serde_json::from_slice(&bytes).unwrap();
    let signed = &receipt["signed"];
    assert_eq!(signed["vin"], VIN);
    assert_eq!(signed["primary_ecu_serial"], PRIMARY);
    let key =
        ferry_keys::PrivateKey::read_file(v.base.join(format!("{PRIMARY}.key")), None).unwrap();
    let sig = &receipt["signatures"][0];
    assert_eq!(sig["keyid"], key.key_id().as_str());
    let message = ferry_keys::cjson::to_vec(signed).unwrap();
    let raw = hex::decode(sig["sig"].as_str().unwrap()).unwrap();
    key.public_key().verify(&message, &raw).unwrap();
    let outcome = &signed["offline_bundle"];
    assert_eq!(outcome["name"], name);
    let digest = ferry_tests::sha256_hex(&std::fs::read(targets_file).unwrap());
    assert_eq!(outcome["digest"]["sha256"], digest.as_str());
    for serial in [PRIMARY, FULL, PARTIAL] {
        assert!(
            signed["ecu_version_manifests"][serial]["signatures"].is_array(),
            "no signed report of {serial} in {signed}"
        );
    }
    receipt
}

#[test]
fn a_bundle_installs_on_every_ecu_from_a_directory_then_from_a_tar_with_receipts() {
    let v = Vehicle::new();
    let spec = v.spec("workshop", v.v2());
    let stick = v.bundle("workshop", &spec);
    let (out, report) = v.offline(&stick, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(report["result"], "updated", "{out}");
    let installed = v.installed();
    assert_eq!(installed[PRIMARY], APP, "{installed:?}");
    assert_eq!(installed[FULL], FW, "{installed:?}");
    assert_eq!(installed[PARTIAL], FW, "{installed:?}");
    assert_eq!(
        std::fs::read(v.base.join("ivi-1-apps/demo/demo-2.tar")).unwrap(),
        app_bytes(0)
    );
    // The receipt on the stick, and the same kept for the next online cycle.
    let path = stick.join(format!("receipts/{VIN}-1.json"));
    assert_eq!(report["receipt"], path.to_str().unwrap(), "{out}");
    let targets_file = stick.join(".well-known/metadata/director/workshop.json");
    let receipt = check_receipt(&v, &path, "workshop", &targets_file);
    let outcome = &receipt["signed"]["offline_bundle"];
    assert_eq!(outcome["result"], "updated");
    for (serial, target) in [(PRIMARY, APP), (FULL, FW), (PARTIAL, FW)] {
        assert_eq!(outcome["ecus"][serial]["result"], "success", "{outcome}");
        assert_eq!(outcome["ecus"][serial]["target"], target, "{outcome}");
        let report = &receipt["signed"]["ecu_version_manifests"][serial]["signed"];
        assert_eq!(report["installed_image"]["filepath"], target, "{report}");
    }
    let kept = std::fs::read(v.base.join("primary-state/offline-receipts/1.json")).unwrap();
    assert_eq!(kept, std::fs::read(&path).unwrap());
    let status = v.status();
    assert_eq!(status["last_offline"]["name"], "workshop", "{status}");
    assert_eq!(status["last_offline"]["result"], "updated", "{status}");
    assert_eq!(status["pending_receipts"], 1, "{status}");
    // The vehicle now trusts the bundle's offline snapshot.
    assert!(v
        .base
        .join("primary-state/director/offline-update-snapshot.json")
        .exists());

    // The same bundle again: every ECU already runs its image; a second receipt says so.
    let (out, report) = v.offline(&stick, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(report["result"], "up-to-date", "{out}");
    let again = check_receipt(
        &v,
        &stick.join(format!("receipts/{VIN}-2.json")),
        "workshop",
        &targets_file,
    );
    assert_eq!(
        again["signed"]["offline_bundle"]["ecus"][FULL]["result"],
        "up-to-date"
    );

    // Version 3 of both images, in a new bundle delivered as a .tar (its snapshot v2 still
    // lists the first bundle).
    std::fs::write(v.base.join("demo3.tar"), app_bytes(0x5a)).unwrap();
    std::fs::write(v.base.join("fw3.bin"), b"tcu firmware 3").unwrap();
    let app = ["--hardware-id", "ivi", "--software-name", "demo"];
    add_target(
        &v.base,
        "demo3.tar",
        APP3,
        &[&app[..], &["--version", "3", "--release-counter", "3"]].concat(),
    );
    add_target(
        &v.base,
        "fw3.bin",
        FW3,
        &["--hardware-id", "tcu", "--version", "3"],
    );
    ferry_ok(&v.base, &["repo", "publish", "img"]);
    let mut spec = v.spec(
        "update3",
        vec![
            image(APP3, "ivi", app_bytes(0x5a)),
            image(FW3, "tcu", b"tcu firmware 3".to_vec()),
        ],
    );
    spec.snapshot_version = 2;
    spec.also_listed = vec![("workshop", 1)];
    let dir = v.bundle("update3", &spec);
    let tar = v.base.join("sticks/update3.tar");
    tar_of(&dir, &tar);
    std::fs::remove_dir_all(&dir).unwrap();
    let (out, report) = v.offline(&tar, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(report["result"], "updated", "{out}");
    let installed = v.installed();
    assert_eq!(installed[PRIMARY], APP3, "{installed:?}");
    assert_eq!(installed[FULL], FW3, "{installed:?}");
    assert_eq!(installed[PARTIAL], FW3, "{installed:?}");
    // A .tar is not rewritten: its receipts go beside it.
    let path = v
        .base
        .join(format!("sticks/update3.tar.receipts/{VIN}-1.json"));
    assert_eq!(report["receipt"], path.to_str().unwrap(), "{out}");
    let receipt: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(receipt["signed"]["offline_bundle"]["name"], "update3");
    assert!(v
        .base
        .join("primary-state/offline-receipts/3.json")
        .exists());

    // The first bundle is now older than what runs: its images' release counters are lower
    // (the app) and it names other images, so installing it again is refused.
    let stick = v.bundle("workshop-again", &v.spec("workshop", v.v2()));
    let (out, report) = v.offline(&stick, &[]);
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(report["result"], "refused", "{out}");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("releaseCounter check failed"),
        "{out}"
    );
    assert_eq!(v.installed()[PRIMARY], APP3);
}

#[test]
fn each_bad_bundle_is_refused_naming_its_check_with_nothing_installed() {
    let v = Vehicle::new();
    // Each bundle carries a newer offline snapshot than the one before: one whose metadata
    // all verified (a check on the image itself failed later) is kept by the vehicle, and a
    // stick's snapshot no newer than the kept one is not used (pure2.md step 3.1).
    let spec = |n: u64, images: Vec<Image>| {
        let mut spec = v.spec("workshop", images);
        spec.snapshot_version = n;
        spec
    };

    // An image altered on the stick (same length, other bytes).
    let stick = v.bundle("altered", &spec(1, v.v2()));
    let mut bytes = app_bytes(0);
    bytes[1000] ^= 1;
    std::fs::write(stick.join(".well-known/images").join(APP), bytes).unwrap();
    v.assert_refused(&stick, &[], "hash check failed");

    // The offline targets file swapped for an older signed one (the snapshot lists v2).
    let mut older = spec(2, v.v2());
    older.listed_version = 2;
    let stick = v.bundle("older-targets", &older);
    v.assert_refused(&stick, &[], "version check failed");

    // Expired at the vehicle's time (an injected clock: verified no earlier than 31 days on).
    let stick = v.bundle("fresh", &spec(3, v.v2()));
    let later = (Utc::now() + Duration::days(31)).to_rfc3339();
    v.assert_refused(&stick, &["--not-before", &later], "expiry check failed");

    // Signed with the Director's online targets key instead of the offline-update key.
    let mut online = spec(4, v.v2());
    online.targets_key = &v.online;
    let stick = v.bundle("online-key", &online);
    let report = v.assert_refused(&stick, &[], "signature threshold check failed");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("offline-update-targets"),
        "{report}"
    );

    // Two images for one hardwareId.
    let mut images = v.v2();
    images.push(image(
        "tcu/fw-other.bin",
        "tcu",
        b"other tcu firmware".to_vec(),
    ));
    let stick = v.bundle("twice", &spec(5, images));
    v.assert_refused(&stick, &[], "hardwareId \"tcu\" is named by two images");

    // An image the Image repository does not list.
    let mut images = v.v2();
    images[0] = image("apps/unlisted-9.tar", "ivi", b"never published".to_vec());
    let stick = v.bundle("unlisted", &spec(6, images));
    v.assert_refused(&stick, &[], "is not listed by the Image repository");

    // A link on the stick is never followed (even to the very bytes signed).
    let stick = v.bundle("linked", &spec(7, v.v2()));
    let app = stick.join(".well-known/images").join(APP);
    std::fs::remove_file(&app).unwrap();
    std::fs::write(v.base.join("outside.tar"), app_bytes(0)).unwrap();
    std::os::unix::fs::symlink(v.base.join("outside.tar"), &app).unwrap();
    v.assert_refused(&stick, &[], "symbolic link");

    // Replayed after a newer offline snapshot reached the vehicle (online, say): v5 no longer
    // lists the bundle (revoked), then one that lists a newer version of it (superseded).
    let good = v.bundle("replayed", &spec(8, v.v2()));
    let kept = v
        .base
        .join("primary-state/director/offline-update-snapshot.json");
    std::fs::write(&kept, v.offline_snapshot(50, &[("other", 1)], 30)).unwrap();
    v.assert_refused(
        &good,
        &[],
        "is not listed by the offline-update snapshot v50",
    );
    std::fs::write(&kept, v.offline_snapshot(51, &[("workshop", 2)], 30)).unwrap();
    v.assert_refused(&good, &[], "version check failed");
    // The bundle's older snapshot did not replace the one the vehicle kept.
    let kept: Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
    assert_eq!(kept["signed"]["version"], 51);
}

/// `ferry-primary run`, killed on drop.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Poll until `done`; panic with the log if it never holds (a hang guard only).
    fn wait_for(&mut self, what: &str, mut done: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ferry-primary run exited ({status}):\n{}", self.log());
            }
            if done(&self.log()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no sign of {what} after {TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[test]
fn run_ignores_a_stick_left_in_at_start_and_installs_it_once_reinserted() {
    let v = Vehicle::new();
    let media = v.base.join("media");
    std::fs::create_dir_all(&media).unwrap();
    v.write_primary_config("[offline]\nsource = \"media\"\nscan_interval = \"100ms\"\n");
    let stick = v.bundle("workshop", &v.spec("workshop", v.v2()));
    let inserted = media.join("workshop");
    std::fs::rename(&stick, &inserted).unwrap();

    let log = v.base.join("primary-run.log");
    let child = Command::new(binary("ferry-primary", "ferry-primary"))
        .current_dir(&v.base)
        .args(["--config", "primary.toml", "run"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut primary = Running { child, log };
    primary.wait_for("the stick left in being ignored", |log| {
        log.contains("present at start: ignored")
    });
    // Several polls later (each cycle fails: no backend), still nothing installed.
    primary.wait_for("three cycles", |log| {
        log.matches("cycle failed").count() >= 3
    });
    assert!(
        !primary.log().contains("offline bundle inserted"),
        "{}",
        primary.log()
    );
    v.assert_nothing_installed();

    // Removed, then inserted again: installed, once.
    let away = v.base.join("sticks/away");
    std::fs::rename(&inserted, &away).unwrap();
    primary.wait_for("the removal", |log| log.contains("offline bundle removed"));
    std::fs::rename(&away, &inserted).unwrap();
    primary.wait_for("the install", |log| log.contains("offline install done"));
    let installed = v.installed();
    assert_eq!(installed[PRIMARY], APP, "{installed:?}");
    assert_eq!(installed[FULL], FW, "{installed:?}");
    assert_eq!(installed[PARTIAL], FW, "{installed:?}");
    assert!(inserted.join(format!("receipts/{VIN}-1.json")).exists());
    // Left in: never installed again.
    primary.wait_for("three more cycles", |log| {
        log.matches("cycle failed").count() >= 6
    });
    let text = primary.log();
    assert_eq!(text.matches("offline bundle inserted").count(), 1, "{text}");
    assert!(!inserted.join(format!("receipts/{VIN}-2.json")).exists());
    // The Secondaries did not see an unauthenticated request refused on the way.
    for serial in [FULL, PARTIAL] {
        let i = usize::from(serial == PARTIAL);
        let (status, body) = http(v.secondaries[i].addr, "GET", "/status", None, b"");
        assert_eq!(status, 200);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["attacks_detected"], "", "{serial}: {body}");
    }
}

/// A receipt kept by an offline install rides along with the next online cycle's vehicle
/// manifest (the Director on the other end takes the manifest with it) and is forgotten once
/// the Director accepted that manifest.
#[test]
fn a_kept_receipt_rides_along_with_the_next_online_manifest_and_is_then_forgotten() {
    let world = primary_common::World::start(primary_common::Options::default());
    let dir = world.base.join("primary-state/offline-receipts");
    std::fs::create_dir_all(&dir).unwrap();
    let receipt = serde_json::json!({"signatures": [], "signed": {"vin": VIN,
        "primary_ecu_serial": PRIMARY, "ecu_version_manifests": {},
        "offline_bundle": {"name": "workshop"}}});
    std::fs::write(dir.join("1.json"), receipt.to_string()).unwrap();
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["manifest_sent"], true, "{out}");
    assert!(out.stderr.contains("offline receipt delivered"), "{out}");
    assert!(!dir.join("1.json").exists());
}
