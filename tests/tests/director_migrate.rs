//! `ferry director migrate` (issue #23): a Director that ran on SQLite (a vehicle registered,
//! updated once) is stopped, its database copied into a real PostgreSQL with the command,
//! its config pointed at PostgreSQL, and it is started again: the vehicle keeps updating
//! against it (v2 assigned and installed), and `ferry director status` names the backend.
#![allow(clippy::unwrap_used)]

mod primary_common;

use primary_common::attack::{assign_v2, install_v1, publish_v2, running, APP_V2, FW_V2};
use primary_common::{ferry_ok, Options, World, PRIMARY};
use serde_json::Value;

#[test]
fn a_sqlite_director_moved_to_postgresql_keeps_updating_its_vehicle() {
    let Some(url) = primary_common::postgres_database("migrate") else {
        return;
    };
    let mut world = World::start(Options::default());
    install_v1(&world);
    let before = world.director_status();

    world.director.kill9();
    let out = ferry_ok(
        &world.base,
        &[
            "director",
            "migrate",
            "--from",
            "d/data/director.db",
            "--to",
            url,
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let count = |table: &str| {
        let t = report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .unwrap_or_else(|| panic!("{table} in {report}"));
        assert_eq!(t["sqlite"], t["postgres"], "{report}");
        t["postgres"].as_u64().unwrap()
    };
    assert_eq!(count("vehicles"), 1, "{report}");
    assert_eq!(count("ecus"), 3, "{report}");
    assert_eq!(count("assignments"), 3, "{report}");
    assert_eq!(count("vehicle_metadata"), 3, "{report}");
    assert_eq!(count("director_roots"), 1, "{report}");
    assert_eq!(count("admin_tokens"), 2, "{report}");
    assert!(count("manifests") >= 1, "{report}");
    // A second copy into the same database is refused: it holds data now.
    let again = primary_common::run(
        &world.base,
        &primary_common::ferry(),
        &[
            "director",
            "migrate",
            "--from",
            "d/data/director.db",
            "--to",
            url,
        ],
    );
    assert_ne!(again.code, 0, "{again}");
    assert!(again.stderr.contains("already holds data"), "{again}");

    // Pointed at PostgreSQL (the SQLite file moved away: nothing may still read it).
    let config = world.base.join("d/director.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[database]\nurl = \"{url}\"\n"));
    std::fs::write(&config, text).unwrap();
    std::fs::rename(
        world.base.join("d/data/director.db"),
        world.base.join("d/data/director.db.moved"),
    )
    .unwrap();
    world.restart_director();
    let status = ferry_ok(
        &world.base,
        &[
            "director",
            "status",
            "--config",
            "d/director.toml",
            "--json",
        ],
    );
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    assert!(
        status["database"]
            .as_str()
            .unwrap()
            .starts_with("postgresql "),
        "{status}"
    );
    let after = world.director_status();
    assert_eq!(before["assignments"], after["assignments"], "{after}");

    publish_v2(&world);
    assign_v2(&world);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    for (serial, installed, _) in running(&world).ecus {
        let expected = if serial == PRIMARY { APP_V2 } else { FW_V2 };
        assert_eq!(installed["target"], expected, "{serial}");
    }
}
