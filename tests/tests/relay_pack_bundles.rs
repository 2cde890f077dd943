//! Offline-update bundles carried into a site in a relay's pack (issue #20): `ferry admin
//! bundle create` writes a bundle, `ferry admin relay pack --bundle DIR` carries it (checked
//! against its own bundle.json), `ferry relay import` places it in the relay's
//! `cache_dir/bundles/NAME/`, and with the backend stopped the vehicle (real `ferry-primary`
//! and two `ferry-secondary` daemons) installs it from there, leaving its receipt beside it.
//! A bundle file changed in the pack is refused at import, naming the check.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::attack::{create_v2_bundle, install_v1, publish_v2, APP_V2, FW_V2};
use primary_common::{run, Options, World, PRIMARY};
use serde_json::Value;

#[test]
fn a_bundle_in_a_pack_is_placed_by_the_relay_and_installs_with_the_backend_down() {
    let mut world = World::start(Options {
        offline_roles: true,
        ..Options::default()
    });
    let b = world.base.clone();
    install_v1(&world);
    publish_v2(&world);
    create_v2_bundle(&world, "workshop", "workshop-bundle", &[]);
    let repo = format!("http://{}", world.repo.addr);
    let out = world.admin(true, &["relay", "add", "yard-7", "--out", "relay.token"]);
    assert_eq!(out.code, 0, "{out}");
    let out = world.admin(
        true,
        &[
            "relay",
            "pack",
            "--relay",
            "yard-7",
            "--vin",
            primary_common::VIN,
            "--image-repo",
            &repo,
            "--bundle",
            "workshop-bundle",
            "--out",
            "pack",
            "--json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let packed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        packed["bundles"],
        serde_json::json!(["workshop"]),
        "{packed}"
    );

    // The relay's site has no uplink at all.
    std::fs::write(
        b.join("relay.toml"),
        "listen = \"127.0.0.1:0\"\ncache_dir = \"relay-cache\"\n[upstream]\n\
         director = \"http://127.0.0.1:9\"\nimage_repo = \"http://127.0.0.1:9\"\n\
         token_file = \"relay.token\"\n",
    )
    .unwrap();
    let import = || {
        run(
            &b,
            &primary_common::ferry(),
            &[
                "relay",
                "import",
                "--config",
                "relay.toml",
                "pack",
                "--json",
            ],
        )
    };
    let out = import();
    assert_eq!(out.code, 0, "{out}");
    let imported: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        imported["imported"]["bundles"],
        serde_json::json!(["workshop"]),
        "{imported}"
    );
    let placed = b.join("relay-cache/bundles/workshop");
    assert!(placed.join("bundle.json").is_file());

    world.director.kill9();
    world.repo.kill9();
    let out = run(
        &b,
        &ferry_tests::bins::binary("ferry-primary", "ferry-primary"),
        &[
            "--config",
            "primary.toml",
            "offline",
            "--bundle",
            placed.to_str().unwrap(),
            "--json",
        ],
    );
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
    let receipts: Vec<_> = std::fs::read_dir(placed.join("receipts"))
        .unwrap()
        .collect();
    assert_eq!(
        receipts.len(),
        1,
        "the vehicle's receipt, beside the bundle"
    );

    // One byte of the bundle's image changed on the way: refused, naming the check.
    let image = first_file(&b.join("pack/bundles/workshop/.well-known/images"));
    let mut bytes = std::fs::read(&image).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&image, bytes).unwrap();
    let out = import();
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("hash check failed"), "{out}");
}

/// The first file found under `dir`, depth first.
fn first_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                return path;
            }
        }
    }
    panic!("no file under {}", dir.display())
}
