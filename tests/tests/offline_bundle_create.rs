//! PURE-2 offline-update bundles made by a real Director and Image repository (#19): `ferry
//! admin bundle create` writes the PURE-2 layout (to a directory and to a .tar) that core's
//! vehicle-side procedure accepts for the vehicle's ECUs; a revoked bundle stops verifying
//! once the vehicle holds the newer offline snapshot from the device API; the Director refuses
//! an image for a hardwareId the Image repository did not sign it for.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_core::refresh::{Limits, MetadataFile, MetadataSource, Workflow};
use ferry_core::uptane::offline::{verify_offline_director, OFFLINE_SNAPSHOT};
use ferry_core::uptane::{match_assignment, EcuIdentity};
use primary_common::attack::{
    create_v2_bundle, device_token, install_v1, publish_v2, APP_V2, FW_V2,
};
use primary_common::{http, Options, World, FULL, PARTIAL, PRIMARY, VIN};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
enum E {
    Core(ferry_core::Error),
    NotFound,
}
impl From<ferry_core::Error> for E {
    fn from(e: ferry_core::Error) -> E {
        E::Core(e)
    }
}

/// One repository's metadata directory on the stick, and what the vehicle kept.
struct Stick {
    dir: PathBuf,
    kept: BTreeMap<String, Vec<u8>>,
}

impl MetadataSource for Stick {
    type Error = E;
    fn fetch(&mut self, file: MetadataFile<'_>, _max: u64) -> Result<Vec<u8>, E> {
        let name = if file.role == "root" {
            file.file_name()
        } else {
            ferry_core::layout::metadata_file_name(file.role, None)
        };
        std::fs::read(self.dir.join(name)).map_err(|_| E::NotFound)
    }
    fn is_not_found(e: &E) -> bool {
        matches!(e, E::NotFound)
    }
    fn load(&mut self, role: &str) -> Result<Option<Vec<u8>>, E> {
        Ok(self.kept.get(role).cloned())
    }
    fn persist(&mut self, role: &str, bytes: &[u8]) -> Result<(), E> {
        self.kept.insert(role.into(), bytes.to_vec());
        Ok(())
    }
    fn remove(&mut self, role: &str) -> Result<(), E> {
        self.kept.remove(role);
        Ok(())
    }
}

const ECUS: [EcuIdentity<'static>; 2] = [
    EcuIdentity {
        serial: "ivi-1",
        hardware_id: "ivi",
    },
    EcuIdentity {
        serial: "tcu-full",
        hardware_id: "tcu",
    },
];

/// What a vehicle trusting the World's first roots makes of bundle `name` at `dir`, holding
/// `kept` as its offline snapshot: each ECU's image and its bytes' digest, checked against the
/// Image repository's metadata on the stick.
fn vehicle_verifies(
    base: &Path,
    dir: &Path,
    name: &str,
    kept: Option<Vec<u8>>,
) -> Result<Vec<(String, String)>, E> {
    let now = chrono::Utc::now();
    let limits = Limits::default();
    let mut director = Stick {
        dir: dir.join(".well-known/metadata/director"),
        kept: kept
            .map(|k| [(OFFLINE_SNAPSHOT.to_string(), k)].into())
            .unwrap_or_default(),
    };
    let root = std::fs::read(base.join("d/roots/1.root.json")).unwrap();
    let offline = verify_offline_director(&mut director, &root, name, &ECUS, &limits, now)?;
    let mut image = Stick {
        dir: dir.join(".well-known/metadata/image-repo"),
        kept: BTreeMap::new(),
    };
    let image_root = std::fs::read(base.join("img/metadata/1.root.json")).unwrap();
    let mut set = Workflow::new(&mut image, &limits).refresh_offline(&image_root, now)?;
    let mut out = Vec::new();
    for a in &offline.assignments {
        let found = Workflow::new(&mut image, &limits).find_target(&mut set, &a.target_name)?;
        let matched = match_assignment(a, found.as_ref(), &a.hardware_id, &BTreeMap::new())?;
        let bytes = std::fs::read(dir.join(".well-known/images").join(&a.target_name)).unwrap();
        assert_eq!(
            ferry_tests::sha256_hex(&bytes),
            matched.target.hashes["sha256"],
            "{}",
            a.target_name
        );
        out.push((a.ecu_serial.clone(), a.target_name.clone()));
    }
    Ok(out)
}

fn admin(world: &World, args: &[&str]) -> ferry_tests::process::Output {
    world.admin(true, args)
}

#[test]
fn a_bundle_from_a_real_director_verifies_on_the_vehicle_until_it_is_revoked() {
    let world = World::start(Options {
        offline_roles: true,
        ..Options::default()
    });
    let b = world.base.clone();
    publish_v2(&world);
    let create = |out: &str| create_v2_bundle(&world, "workshop", out, &["--expires", "30d"]);
    let out = create("stick");
    assert!(out.stdout.contains("bundle workshop v1"), "{out}");
    let stick = b.join("stick");
    for file in [
        ".well-known/metadata/director/1.root.json",
        ".well-known/metadata/director/offline-update-snapshot.json",
        ".well-known/metadata/director/workshop.json",
        ".well-known/metadata/image-repo/1.root.json",
        ".well-known/metadata/image-repo/snapshot.json",
        ".well-known/metadata/image-repo/targets.json",
        "bundle.json",
    ] {
        assert!(stick.join(file).is_file(), "{file} missing");
    }
    assert!(!stick
        .join(".well-known/metadata/image-repo/timestamp.json")
        .exists());
    assert!(stick.join("receipts").is_dir());
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stick.join("bundle.json")).unwrap()).unwrap();
    let app = &index["files"][format!(".well-known/images/{APP_V2}")];
    assert_eq!(app["length"], 1 << 20, "{index}");

    let got = vehicle_verifies(&b, &stick, "workshop", None).unwrap();
    assert_eq!(
        got,
        [
            ("ivi-1".to_string(), APP_V2.to_string()),
            ("tcu-full".into(), FW_V2.into())
        ]
    );

    // The same bundle as one .tar (version 2 of its name).
    let out = create("workshop.tar");
    assert!(out.stdout.contains("bundle workshop v2"), "{out}");
    let unpacked = b.join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(b.join("workshop.tar")).unwrap());
    archive.unpack(&unpacked).unwrap();
    vehicle_verifies(&b, &unpacked, "workshop", None).unwrap();
    // The first stick's workshop v1 is superseded for a vehicle that saw snapshot v2 (which
    // pins v2's version and digest).
    let latest =
        std::fs::read(unpacked.join(".well-known/metadata/director/offline-update-snapshot.json"))
            .unwrap();
    let err = vehicle_verifies(&b, &stick, "workshop", Some(latest)).unwrap_err();
    assert!(
        matches!(
            err,
            E::Core(ferry_core::Error::Hash { .. } | ferry_core::Error::VersionMismatch { .. })
        ),
        "{err:?}"
    );

    // list, show, revoke; the device API then serves a snapshot without it.
    let out = admin(&world, &["bundle", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(list["bundles"][0]["version"], 2, "{list}");
    let out = admin(&world, &["bundle", "show", "workshop"]);
    assert!(out.stdout.contains(FW_V2), "{out}");
    let out = admin(&world, &["bundle", "revoke", "workshop"]);
    assert_eq!(out.code, 0, "{out}");
    let token = device_token(&world);
    let (status, snapshot) = http(
        world.director.addr,
        "GET",
        &format!("/api/v1/vehicles/{VIN}/metadata/offline-update-snapshot.json"),
        Some(token.trim()),
        b"",
    );
    assert_eq!(status, 200);
    let err = vehicle_verifies(&b, &unpacked, "workshop", Some(snapshot)).unwrap_err();
    assert!(
        matches!(err, E::Core(ferry_core::Error::NotInOfflineSnapshot { .. })),
        "{err:?}"
    );
    let out = admin(&world, &["bundle", "revoke", "workshop"]);
    assert_ne!(out.code, 0, "revoked twice: {out}");
}

#[test]
fn the_director_refuses_an_image_for_a_hardware_id_it_was_not_signed_for() {
    let world = World::start(Options {
        offline_roles: true,
        ..Options::default()
    });
    publish_v2(&world);
    let repo = format!("http://{}", world.repo.addr);
    let out = admin(
        &world,
        &[
            "bundle",
            "create",
            "wrong",
            "--target",
            &format!("tcu={APP_V2}"),
            "--image-repo",
            &repo,
            "--image-root",
            "img/metadata/1.root.json",
            "--out",
            "wrong",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("not \"tcu\""), "{out}");
    assert!(!world.base.join("wrong/.well-known").exists());
    // An image the Image repository does not have: refused before the Director signs anything.
    let out = admin(
        &world,
        &[
            "bundle",
            "create",
            "absent",
            "--target",
            "ivi=apps/absent.tar",
            "--image-repo",
            &repo,
            "--image-root",
            "img/metadata/1.root.json",
            "--out",
            "absent",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    let list = admin(&world, &["bundle", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list["bundles"], serde_json::json!([]), "{list}");
    assert!(!world.base.join("absent").exists());
    // Without offline roles in its root, the Director makes no bundle at all.
    let plain = World::start(Options::default());
    publish_v2(&plain);
    let out = plain.admin(
        true,
        &[
            "bundle",
            "create",
            "x",
            "--target",
            &format!("ivi={APP_V2}"),
            "--image-repo",
            &format!("http://{}", plain.repo.addr),
            "--image-root",
            "img/metadata/1.root.json",
            "--out",
            "x",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("no offline-update roles"), "{out}");
}

/// The whole trip (#19 "Done when"): a bundle made by the real Director and Image repository,
/// both servers stopped, installed by `ferry-primary offline` on the Primary and a full and a
/// partial Secondary, from a directory and (a newer bundle) from a .tar; every ECU's new image
/// is in the receipts; the restarted Director records them and `ferry admin status` shows them.
#[test]
fn a_bundle_installs_with_the_backend_down_and_its_receipts_reach_the_director() {
    let mut world = World::start(Options {
        offline_roles: true,
        ..Options::default()
    });
    let b = world.base.clone();
    install_v1(&world);
    publish_v2(&world);
    create_v2_bundle(&world, "workshop", "stick", &[]);
    create_v2_bundle(&world, "depot", "depot.tar", &[]);
    world.director.kill9();
    world.repo.kill9();

    let offline = |bundle: &str| {
        primary_common::run(
            &b,
            &ferry_tests::bins::binary("ferry-primary", "ferry-primary"),
            &[
                "--config",
                "primary.toml",
                "offline",
                "--bundle",
                bundle,
                "--json",
            ],
        )
    };
    // From the .tar: every ECU installs.
    let out = offline("depot.tar");
    assert_eq!(out.code, 0, "{out}");
    let status = world.primary_status();
    for ecu in status["ecus"].as_array().unwrap() {
        let expected = if ecu["serial"] == PRIMARY {
            APP_V2
        } else {
            FW_V2
        };
        assert_eq!(ecu["status"]["installed"]["target"], expected, "{ecu}");
    }
    let receipt = only_receipt(&b.join("depot.tar.receipts"));
    let outcome = &receipt["signed"]["offline_bundle"];
    assert_eq!(outcome["name"], "depot", "{receipt}");
    for (serial, target) in [(PRIMARY, APP_V2), (FULL, FW_V2), (PARTIAL, FW_V2)] {
        assert_eq!(outcome["ecus"][serial]["target"], target, "{outcome}");
        assert_eq!(outcome["ecus"][serial]["result"], "success", "{outcome}");
        let report = &receipt["signed"]["ecu_version_manifests"][serial]["signed"];
        assert_eq!(report["installed_image"]["filepath"], target, "{report}");
    }
    // From the directory: the same images, already installed everywhere.
    let out = offline("stick");
    assert_eq!(out.code, 0, "{out}");
    let receipt = only_receipt(&b.join("stick/receipts"));
    assert_eq!(receipt["signed"]["offline_bundle"]["name"], "workshop");
    assert_eq!(
        receipt["signed"]["offline_bundle"]["ecus"][FULL]["result"], "up-to-date",
        "{receipt}"
    );

    // The Director comes back; the technician brings the stick's receipts.
    world.restart_director();
    let out = admin(
        &world,
        &["receipts", "import", "stick", "depot.tar.receipts"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.matches("recorded for").count(), 2, "{out}");
    let out = admin(&world, &["receipts", "import", "stick"]);
    assert_ne!(out.code, 0, "a receipt counts once: {out}");
    assert!(out.stdout.contains("recorded already"), "{out}");
    let out = admin(&world, &["status", VIN]);
    assert!(
        out.stdout.contains("applied offline, reported late"),
        "{out}"
    );
    assert!(out.stdout.contains("workshop v1"), "{out}");
    assert!(out.stdout.contains("depot v1"), "{out}");
}

fn only_receipt(dir: &Path) -> serde_json::Value {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
}

/// PURE-2 "additional step", end to end: a vehicle that has been online since a bundle was
/// revoked holds the Director's newer offline-update snapshot, and refuses the bundle from the
/// stick, naming the check; nothing is installed.
#[test]
fn a_bundle_revoked_while_the_vehicle_was_online_is_refused_offline() {
    let mut world = World::start(Options {
        offline_roles: true,
        ..Options::default()
    });
    let b = world.base.clone();
    let v1 = install_v1(&world);
    publish_v2(&world);
    create_v2_bundle(&world, "workshop", "stick", &[]);
    let out = admin(&world, &["bundle", "revoke", "workshop"]);
    assert_eq!(out.code, 0, "{out}");
    // An online cycle: nothing assigned anew, but the offline-update snapshot is fetched.
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    world.director.kill9();
    world.repo.kill9();
    let out = primary_common::run(
        &b,
        &ferry_tests::bins::binary("ferry-primary", "ferry-primary"),
        &["--config", "primary.toml", "offline", "--bundle", "stick"],
    );
    assert_ne!(out.code, 0, "a revoked bundle installed: {out}");
    assert!(
        out.stderr.contains("offline-update snapshot check failed"),
        "{out}"
    );
    let status = world.primary_status();
    for ecu in status["ecus"].as_array().unwrap() {
        let serial = ecu["serial"].as_str().unwrap();
        let before = v1.ecus.iter().find(|(s, _, _)| s == serial).unwrap();
        assert_eq!(ecu["status"]["installed"], before.1, "{serial} changed");
    }
}
