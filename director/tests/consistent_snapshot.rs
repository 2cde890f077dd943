//! Consistent snapshots of per-vehicle metadata: a vehicle fetches the snapshot and targets
//! versions that the metadata above names, so the Director re-signing between two of its
//! fetches cannot hand it a targets version its snapshot does not list.
#![allow(clippy::unwrap_used)]

mod common;

use common::http::{assign, assignments, named, Server};
use common::image_repo::OS;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn doc(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn version(bytes: &[u8]) -> u64 {
    doc(bytes)["signed"]["version"].as_u64().unwrap()
}

#[test]
fn versions_named_by_the_metadata_above_stay_fetchable_across_re_signings() {
    let server = Server::start();
    let car = server.register("VIN-CS");
    let other = server.register("VIN-OTHER");
    // The root tells clients to fetch N.snapshot.json and N.targets.json.
    assert_eq!(doc(&server.root)["signed"]["consistent_snapshot"], true);
    let get = |file: &str| server.metadata(&car.vin, file, &car.token);
    let ok = |file: &str| {
        let (status, body) = get(file);
        assert_eq!(status, StatusCode::OK, "{file}");
        body
    };
    let targets_before = ok("targets.json");
    let snapshot_before = ok("snapshot.json");
    let (t1, s1) = (version(&targets_before), version(&snapshot_before));

    // An assignment re-signs targets and snapshot.
    let (status, text) = assign(&server, &car.vin, json!([named(&car.p(), OS)]));
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let snapshot_now = ok("snapshot.json");
    let t2 = doc(&snapshot_now)["signed"]["meta"]["targets.json"]["version"]
        .as_u64()
        .unwrap();
    assert!(t2 > t1 && version(&snapshot_now) > s1);
    // The version the new snapshot names is served by its number, and serving it puts the
    // assignment it carries in flight, as targets.json does.
    assert_eq!(assignments(&server, &car.vin)[0]["status"], "pending");
    let targets_now = ok(&format!("{t2}.targets.json"));
    assert_eq!(targets_now, ok("targets.json"));
    assert_eq!(assignments(&server, &car.vin)[0]["status"], "in_flight");
    // A vehicle that read the old timestamp and snapshot a moment ago still gets exactly the
    // versions they name.
    assert_eq!(ok(&format!("{t1}.targets.json")), targets_before);
    assert_eq!(ok(&format!("{s1}.snapshot.json")), snapshot_before);
    // Never another vehicle's, by number either.
    let (code, body) = server.metadata(&car.vin, &format!("{t1}.targets.json"), &other.token);
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(!body.starts_with(b"{"), "served another vehicle's metadata");
    // A version not signed yet: 404.
    let (code, _) = get(&format!("{}.targets.json", t2 + 1));
    assert_eq!(code, StatusCode::NOT_FOUND);

    // Only the last superseded versions are kept: after a few more re-signings the first is
    // gone (a failed fetch, retried next cycle; never other bytes).
    for _ in 0..2 {
        let (status, text) = server.admin(
            Method::DELETE,
            &format!("/vehicles/{}/assignments", car.vin),
            Some(&server.write),
            None,
        );
        assert!(status.is_success(), "{text}");
        let (status, text) = assign(&server, &car.vin, json!([named(&car.p(), OS)]));
        assert_eq!(status, StatusCode::CREATED, "{text}");
    }
    let (code, _) = get(&format!("{t1}.targets.json"));
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, _) = get(&format!("{s1}.snapshot.json"));
    assert_eq!(code, StatusCode::NOT_FOUND);
    let latest = version(&ok("targets.json"));
    assert_eq!(ok(&format!("{latest}.targets.json")), ok("targets.json"));
    assert!(!ok(&format!("{}.targets.json", latest - 1)).is_empty());
}
