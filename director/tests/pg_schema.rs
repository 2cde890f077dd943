//! The PostgreSQL store's schema: the shared migration list applied at open (by several
//! Directors starting at once, exactly once), a database newer than this build refused, and
//! an unreachable server refused at start with the check named.
#![allow(clippy::unwrap_used)]

use ferry_director::store::postgres::cluster::test_database;
use ferry_director::{Error, PgSettings, PgStore, SqliteStore, Store};
use std::time::Duration;

#[test]
fn directors_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(url) = test_database("pg_schema") else {
        return;
    };
    let stores: Vec<PgStore> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| PgStore::open(&PgSettings::new(url.clone())).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let latest = SqliteStore::latest_schema_version();
    for store in &stores {
        assert_eq!(store.schema_version().unwrap(), latest);
        store.integrity_check().unwrap();
        assert!(store
            .backend()
            .starts_with("postgresql postgresql://postgres@127.0.0.1:"));
    }
    drop(stores);

    // A Director newer than this build migrated the database: this one refuses to start.
    let out = std::process::Command::new("psql")
        .arg(&url)
        .args([
            "-q",
            "-c",
            &format!("UPDATE ferry_schema SET version = {}", latest + 1),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let e = PgStore::open(&PgSettings::new(url)).unwrap_err();
    assert!(
        matches!(e, Error::SchemaTooNew { found, .. } if found == latest + 1),
        "{e}"
    );
}

#[test]
fn an_unreachable_server_is_refused_at_start_naming_the_check() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = PgSettings::new(format!("postgres://ferry:secret@127.0.0.1:{port}/ferry"));
    settings.connect_timeout = Duration::from_secs(2);
    let e = PgStore::open(&settings).unwrap_err();
    assert!(matches!(e, Error::DatabaseUnavailable { .. }), "{e}");
    let text = e.to_string();
    assert!(
        text.starts_with("database check failed: connect to postgresql://ferry@127.0.0.1:"),
        "{text}"
    );
    assert!(
        !text.contains("secret"),
        "the password is never shown: {text}"
    );
}
