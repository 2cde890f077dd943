//! The attack catalogue's common steps: every ECU first runs a good "v1" (the World's images,
//! installed by a normal cycle), then the attacker mounts an attack on "v2", and afterwards
//! every ECU must still run v1 with the same provides: nothing installed, nothing lost.

use super::{app_bytes, World, APP, FULL, FW, PARTIAL, PRIMARY, VIN};
use serde_json::Value;
use std::path::PathBuf;

/// v2 of the primary's app (releaseCounter 3) and of the Secondaries' firmware.
pub const APP_V2: &str = "apps/demo-3.tar";
pub const FW_V2: &str = "tcu/fw-3.bin";
/// The custom metadata the Image repository signs for the good v2 app.
pub const APP_V2_ARGS: &[&str] = &[
    "--hardware-id",
    "ivi",
    "--software-name",
    "demo",
    "--version",
    "3",
    "--release-counter",
    "3",
];

/// The good v2 app: 1 MiB, other bytes than v1's.
pub fn app_v2_bytes() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 241) as u8 ^ 0x5a).collect()
}

/// What every ECU runs, as the ECU (primary status) and the Director (last accepted manifest)
/// say: installed target, its hashes and the provides, per ECU.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub ecus: Vec<(String, Value, Value)>,
    pub reported: Vec<(String, Value, Value)>,
}

pub fn running(world: &World) -> Running {
    let status = world.primary_status();
    let ecus = status["ecus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = &e["status"];
            let serial = e["serial"].as_str().unwrap_or_default().to_owned();
            (serial, s["installed"].clone(), s["provides"].clone())
        })
        .collect();
    let reported = [PRIMARY, FULL, PARTIAL]
        .iter()
        .map(|serial| {
            let r = world.reported(serial);
            (
                serial.to_string(),
                r["installed_image"].clone(),
                r["provides"].clone(),
            )
        })
        .collect();
    Running { ecus, reported }
}

/// Install v1 everywhere through a normal cycle, and return what every ECU then runs.
pub fn install_v1(world: &World) -> Running {
    world.assign_all();
    let out = world.check();
    assert_eq!(out.code, 0, "installing v1: {out}");
    let v1 = running(world);
    for (serial, installed, _) in &v1.ecus {
        let expected = if serial == PRIMARY { APP } else { FW };
        assert_eq!(installed["target"], expected, "{serial} runs v1: {v1:?}");
    }
    v1
}

/// Publish the good v2 of the app and the firmware in the Image repository (not assigned).
pub fn publish_v2(world: &World) {
    std::fs::write(world.base.join("demo-3.tar"), app_v2_bytes()).unwrap();
    std::fs::write(world.base.join("fw-3.bin"), b"tcu firmware 3").unwrap();
    super::add_target(&world.base, "demo-3.tar", APP_V2, APP_V2_ARGS);
    world.republish(
        "fw-3.bin",
        FW_V2,
        &["--hardware-id", "tcu", "--version", "3"],
    );
}

/// `ferry admin bundle create NAME` of v2 for every ECU (the app for ivi, the firmware for
/// tcu), with `extra` arguments, written to `out` (a directory, or a file ending .tar);
/// asserts it succeeded and returns what it printed.
pub fn create_v2_bundle(
    world: &World,
    name: &str,
    out: &str,
    extra: &[&str],
) -> ferry_tests::process::Output {
    let repo = format!("http://{}", world.repo.addr);
    let (app, fw) = (format!("ivi={APP_V2}"), format!("tcu={FW_V2}"));
    let mut args = vec![
        "bundle",
        "create",
        name,
        "--target",
        &app,
        "--target",
        &fw,
        "--image-repo",
        &repo,
        "--image-root",
        "img/metadata/1.root.json",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let done = world.admin(true, &args);
    assert_eq!(done.code, 0, "bundle create {name}: {done}");
    done
}

/// The Director assigns v2 to every ECU.
pub fn assign_v2(world: &World) {
    world.assign(&[(PRIMARY, APP_V2), (FULL, FW_V2), (PARTIAL, FW_V2)]);
}

/// Every ECU still runs exactly `v1`, as the ECUs and the Director say, and the primary's app
/// on disk is v1's bytes with no trace of v2.
pub fn assert_still_v1(world: &World, v1: &Running) {
    assert_eq!(&running(world), v1, "an ECU no longer runs v1");
    let apps = world.base.join(format!("{PRIMARY}-apps/demo"));
    assert_eq!(std::fs::read(apps.join("demo-2.tar")).unwrap(), app_bytes());
    assert!(!apps.join("demo-3.tar").exists(), "v2 reached the apps dir");
    for a in world.director_status()["assignments"].as_array().unwrap() {
        if a["target_name"] != APP && a["target_name"] != FW {
            assert_ne!(a["status"], "installed", "{a}");
        }
    }
}

/// The attack is refused by `check`: `ferry-primary check` fails naming it, every ECU still
/// runs `v1`, and the manifest the Director accepted in that cycle names it too (the primary's
/// `attacks_detected`, or its last install's detail).
pub fn assert_attack_refused(world: &World, check: &str, v1: &Running) {
    let out = world.check();
    assert_ne!(out.code, 0, "the attack was not refused: {out}");
    assert!(out.stderr.contains(check), "expected {check:?}: {out}");
    assert_still_v1(world, v1);
    assert_reported(world, PRIMARY, check);
}

/// The last manifest the Director accepted has ECU `serial` naming `check`.
pub fn assert_reported(world: &World, serial: &str, check: &str) {
    let reported = world.reported(serial);
    let named = reported["attacks_detected"]
        .as_str()
        .is_some_and(|a| a.contains(check))
        || reported["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains(check));
    assert!(
        named,
        "the manifest of {serial} does not name {check:?}: {reported}"
    );
}

/// The Image repository's metadata directory, which its server serves as is.
pub fn image_metadata(world: &World) -> PathBuf {
    world.base.join("img/metadata")
}

/// The highest `N` of the stored `N.ROLE.json` files (consistent snapshots).
pub fn latest_version(world: &World, role: &str) -> u64 {
    std::fs::read_dir(image_metadata(world))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let (n, rest) = name.split_once('.')?;
            (rest == format!("{role}.json")).then(|| n.parse().ok())?
        })
        .max()
        .unwrap_or_else(|| panic!("no {role} in the Image repository"))
}

/// The vehicle's device token (the Director's credential for this vehicle).
pub fn device_token(world: &World) -> String {
    std::fs::read_to_string(world.base.join("device.token")).unwrap()
}

/// The newest manifest the Director stored for the vehicle (accepted or refused), as an
/// operator lists it.
pub fn newest_manifest(world: &World) -> Value {
    let token = std::fs::read_to_string(&world.read_token).unwrap();
    let path = format!("/api/v1/admin/vehicles/{VIN}/manifests?limit=100");
    let r =
        ferry_tests::http::request(world.director.addr, "GET", &path, Some(&token), b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let list: Vec<Value> = serde_json::from_slice(&r.body).unwrap();
    list.into_iter()
        .max_by_key(|m| m["id"].as_i64())
        .expect("no manifest stored")
}

/// Where an attacker sits on the Primary's links (`None`: the link is direct), and the
/// `[download]` section (`None`: the World's lenient one).
#[derive(Debug, Default, Clone, Copy)]
pub struct Via<'a> {
    pub image_repo: Option<std::net::SocketAddr>,
    pub director: Option<std::net::SocketAddr>,
    pub full_secondary: Option<std::net::SocketAddr>,
    pub download: Option<&'a str>,
}

/// Rewrite primary.toml so the Primary goes through `via`.
pub fn route_primary(world: &World, via: Via<'_>) {
    let url = |proxy: Option<std::net::SocketAddr>, direct: std::net::SocketAddr| {
        format!("http://{}", proxy.unwrap_or(direct))
    };
    let image_url = url(via.image_repo, world.repo.addr);
    let director_url = via
        .director
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|| world.director_url.clone());
    let full = url(via.full_secondary, world.secondaries[0].addr);
    let partial = url(None, world.secondaries[1].addr);
    world.write_primary_config_with(super::PrimaryLinks {
        image_url: &image_url,
        director_url: &director_url,
        secondary_urls: [&full, &partial],
        download: via
            .download
            .unwrap_or("min_bytes_per_sec = 1\nspeed_grace = \"60s\"\n"),
    });
}
