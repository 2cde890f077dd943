//! Signed metadata as an attacker holding some of a repository's keys writes it: the Image
//! repository's files rewritten where its server serves them (a compromised mirror), and the
//! Director's per-vehicle metadata re-signed with its online keys, for a proxy to serve.

use super::attack::{image_metadata, latest_version};
use super::{World, VIN};
use ferry_keys::PrivateKey;
use ferry_tests::forge;
use serde_json::Value;
use std::path::Path;

/// The Image repository's key for `role` (the repo CLI keeps online keys in `img/keys`).
pub fn image_key(world: &World, role: &str) -> PrivateKey {
    forge::key(&world.base.join(format!("img/keys/{role}.pem")))
}

/// Replace a served file (a new file, not a write through a hard link to another one).
pub fn write_served(path: &Path, bytes: &[u8]) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap();
}

/// Sign `timestamp` with the Image repository's timestamp key and serve it.
pub fn serve_image_timestamp(world: &World, mut timestamp: Value) {
    forge::sign(&mut timestamp, &[&image_key(world, "timestamp")]);
    write_served(
        &image_metadata(world).join("timestamp.json"),
        &forge::to_bytes(&timestamp),
    );
}

/// New top-level targets made by `edit` from the latest, signed by `targets_keys` only, and
/// a snapshot and timestamp over them signed with the repository's online keys, all served.
pub fn image_targets(world: &World, edit: impl FnOnce(&mut Value), targets_keys: &[&PrivateKey]) {
    let dir = image_metadata(world);
    let latest = latest_version(world, "targets");
    let mut targets = forge::read(&dir.join(format!("{latest}.targets.json")));
    edit(&mut targets["signed"]);
    let targets_version = forge::bump(&mut targets);
    forge::sign(&mut targets, targets_keys);
    let targets_bytes = forge::to_bytes(&targets);
    write_served(
        &dir.join(format!("{targets_version}.targets.json")),
        &targets_bytes,
    );

    let latest = latest_version(world, "snapshot");
    let mut snapshot = forge::read(&dir.join(format!("{latest}.snapshot.json")));
    forge::set_meta(
        &mut snapshot["signed"]["meta"]["targets.json"],
        &targets_bytes,
        targets_version,
    );
    let snapshot_version = forge::bump(&mut snapshot);
    forge::sign(&mut snapshot, &[&image_key(world, "snapshot")]);
    let snapshot_bytes = forge::to_bytes(&snapshot);
    write_served(
        &dir.join(format!("{snapshot_version}.snapshot.json")),
        &snapshot_bytes,
    );

    let mut timestamp = forge::read(&dir.join("timestamp.json"));
    forge::set_meta(
        &mut timestamp["signed"]["meta"]["snapshot.json"],
        &snapshot_bytes,
        snapshot_version,
    );
    forge::bump(&mut timestamp);
    serve_image_timestamp(world, timestamp);
}

/// The Director's current `role` metadata for the vehicle, fetched as the vehicle does.
pub fn director_metadata(world: &World, role: &str) -> Value {
    let token = super::attack::device_token(world);
    let path = format!("/api/v1/vehicles/{VIN}/metadata/{role}.json");
    let r =
        ferry_tests::http::request(world.director.addr, "GET", &path, Some(&token), b"").unwrap();
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

/// Director targets, snapshot and timestamp as an attacker holding the Director's online keys
/// (`d/keys`) signs them: targets made by `edit` from the current ones. Returns the three
/// documents' bytes by file name, for a proxy to serve in place of the Director's.
pub fn director_chain(world: &World, edit: impl FnOnce(&mut Value)) -> Vec<(String, Vec<u8>)> {
    let key = |role: &str| forge::key(&world.base.join(format!("d/keys/{role}.pem")));
    let mut targets = director_metadata(world, "targets");
    edit(&mut targets["signed"]);
    let targets_version = forge::bump(&mut targets);
    forge::sign(&mut targets, &[&key("targets")]);
    let targets_bytes = forge::to_bytes(&targets);

    let mut snapshot = director_metadata(world, "snapshot");
    forge::set_meta(
        &mut snapshot["signed"]["meta"]["targets.json"],
        &targets_bytes,
        targets_version,
    );
    let snapshot_version = forge::bump(&mut snapshot);
    forge::sign(&mut snapshot, &[&key("snapshot")]);
    let snapshot_bytes = forge::to_bytes(&snapshot);

    let mut timestamp = director_metadata(world, "timestamp");
    forge::set_meta(
        &mut timestamp["signed"]["meta"]["snapshot.json"],
        &snapshot_bytes,
        snapshot_version,
    );
    forge::bump(&mut timestamp);
    forge::sign(&mut timestamp, &[&key("timestamp")]);
    // Director roots use consistent snapshots: the client asks for the versions the metadata
    // above names; the latest names are served too.
    vec![
        (
            format!("{targets_version}.targets.json"),
            targets_bytes.clone(),
        ),
        ("targets.json".into(), targets_bytes),
        (
            format!("{snapshot_version}.snapshot.json"),
            snapshot_bytes.clone(),
        ),
        ("snapshot.json".into(), snapshot_bytes),
        ("timestamp.json".into(), forge::to_bytes(&timestamp)),
    ]
}
