//! Director-only compromise: an attacker with the Director's online keys assigns an image the
//! Image repository never signed. Refused by the image match check (every Director target must
//! be listed by the Image repository), before anything is downloaded.

use crate::primary_common::attack::*;
use crate::primary_common::forged::director_chain;
use crate::primary_common::mitm::{Act, Mitm};
use crate::primary_common::{Options, World, PRIMARY};
use serde_json::json;

#[test]
fn director_compromise_image_absent_from_image_repository_is_refused() {
    let world = World::start(Options::default());
    let v1 = install_v1(&world);
    let evil = b"evil app, never signed by the Image repository".to_vec();
    // The Director's targets now name nothing (v1 is installed): the attacker adds a target
    // for the primary's ECU, with its hardwareId, naming its own image.
    let chain = director_chain(&world, |signed| {
        let targets = signed["targets"].as_object_mut().unwrap();
        assert!(
            targets.is_empty(),
            "v1 installed, nothing assigned: {targets:?}"
        );
        targets.insert(
            "apps/evil.tar".into(),
            json!({
                "length": evil.len(),
                "hashes": {"sha256": ferry_tests::sha256_hex(&evil)},
                "custom": {"ecuIdentifiers": {PRIMARY: {"hardwareId": "ivi"}}},
            }),
        );
    });
    let director = Mitm::start(world.director.addr, move |line| {
        chain
            .iter()
            .find(|(file, _)| line.contains(&format!("/metadata/{file} ")))
            .map(|(_, bytes)| Act::Serve(bytes.clone()))
            .unwrap_or(Act::Forward)
    });
    route_primary(
        &world,
        Via {
            director: Some(director.addr),
            ..Via::default()
        },
    );
    assert_attack_refused(
        &world,
        "image match check failed: target apps/evil.tar is not listed by the Image repository",
        &v1,
    );
}
