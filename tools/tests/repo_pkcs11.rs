//! Online keys of an Image repository kept on a PKCS#11 token: the repository's own key files
//! are imported into SoftHSM2 (keeping their key ids, so root needs no change), the files are
//! deleted, `ferry-repo.toml` names the keys by `pkcs11:` URI, and `ferry repo publish` signs
//! snapshot and timestamp on the token; Ferry's TUF client then verifies what was published.
//! Skipped, with the reason printed, when SoftHSM2 is not installed.
mod repo_common;

use repo_common::{ferry_bin, run_bounded, Repo, CLI_TIMEOUT};
use std::process::Command;

fn ferry_ok(hsm: &ferry_tests::softhsm::SoftHsm, args: &[&str]) -> String {
    let mut cmd = Command::new(ferry_bin());
    cmd.args(args).env("SOFTHSM2_CONF", hsm.conf());
    let out = run_bounded(&mut cmd, CLI_TIMEOUT);
    assert_eq!(out.code, 0, "ferry {args:?} failed:\n{out}");
    out.stdout
}

#[test]
fn snapshot_and_timestamp_sign_on_the_token_named_in_the_config() {
    let Some(hsm) = ferry_tests::softhsm::SoftHsm::new() else {
        return;
    };
    let repo = Repo::init(&[]);
    let config_path = repo.dir.join("ferry-repo.toml");
    let mut config = std::fs::read_to_string(&config_path).expect("read config");
    // The PIN file beside the config, named relative to the repository directory.
    std::fs::copy(hsm.pin_file(), repo.dir.join("hsm.pin")).expect("copy pin");
    let mut key_ids = Vec::new();
    for (i, role) in ["snapshot", "timestamp"].into_iter().enumerate() {
        let file = repo.dir.join("keys").join(format!("{role}.pem"));
        let file_s = file.to_str().expect("utf-8 path");
        let out = ferry_ok(&hsm, &["key", "pub", file_s, "--json"]);
        let shown: serde_json::Value = serde_json::from_str(out.trim()).expect("key pub --json");
        key_ids.push(shown["keyid"].as_str().expect("keyid").to_owned());
        hsm.import_pkcs8(&file, role, &format!("2{i}"));
        std::fs::remove_file(&file).expect("the key now lives only on the token");
        let uri = format!(
            "pkcs11:token=ferry;object={role}?module-path={}&pin-source=file:hsm.pin",
            ferry_tests::softhsm::MODULE
        );
        let old = format!("keys = [\"keys/{role}.pem\"]");
        assert!(config.contains(&old), "{config}");
        config = config.replace(&old, &format!("keys = [\"{uri}\"]"));
    }
    std::fs::write(&config_path, config).expect("write config");

    let data = b"an image".repeat(100);
    repo.add_target("apps/x.bin", &data, &[]);
    let dir = repo.dir.to_str().expect("utf-8 path");
    ferry_ok(&hsm, &["repo", "publish", dir]);

    let timestamp = repo.metadata_json("timestamp.json");
    assert_eq!(timestamp["signatures"][0]["keyid"], key_ids[1].as_str());
    let snapshot_version = timestamp["signed"]["meta"]["snapshot.json"]["version"]
        .as_u64()
        .expect("snapshot version");
    let snapshot = repo.metadata_json(&format!("{snapshot_version}.snapshot.json"));
    assert_eq!(snapshot["signatures"][0]["keyid"], key_ids[0].as_str());

    // Ferry's TUF client accepts what the token signed.
    let server = repo.serve();
    let client = repo.path("client");
    let md = client.join("metadata");
    std::fs::create_dir_all(&md).expect("client dir");
    let trusted = client.join("root.json");
    std::fs::write(&trusted, repo.metadata("1.root.json")).expect("trusted root");
    let md_s = md.to_str().expect("utf-8 path");
    ferry_ok(
        &hsm,
        &[
            "tuf-client",
            "--metadata-dir",
            md_s,
            "init",
            trusted.to_str().expect("utf-8 path"),
        ],
    );
    ferry_ok(
        &hsm,
        &[
            "tuf-client",
            "--metadata-dir",
            md_s,
            "--metadata-url",
            &server.metadata_url(),
            "refresh",
        ],
    );
}

/// One KEYSOURCE syntax everywhere a signing key is taken: `repo rotate --new-key` and
/// `director root init --root-key` take a key generated on the token by its `pkcs11:` URI.
#[test]
fn rotate_and_director_root_init_take_keys_on_the_token() {
    let Some(hsm) = ferry_tests::softhsm::SoftHsm::new() else {
        return;
    };
    let repo = Repo::init(&[]);
    let dir = repo.dir.to_str().expect("utf-8 path");
    let ts = hsm.uri("ts-2");
    let gen = ferry_ok(
        &hsm,
        &[
            "key",
            "gen",
            "--pkcs11",
            &ts,
            "--type",
            "ecdsa-p256",
            "--json",
        ],
    );
    let gen: serde_json::Value = serde_json::from_str(gen.trim()).expect("gen --json");
    ferry_ok(
        &hsm,
        &["repo", "rotate", dir, "timestamp", "--new-key", &ts],
    );
    let config = std::fs::read_to_string(repo.dir.join("ferry-repo.toml")).expect("config");
    assert!(
        config.contains("pkcs11:token=ferry;object=ts-2"),
        "{config}"
    );
    let timestamp = repo.metadata_json("timestamp.json");
    assert_eq!(timestamp["signatures"][0]["keyid"], gen["keyid"]);

    let root = hsm.uri("director-root");
    ferry_ok(
        &hsm,
        &["key", "gen", "--pkcs11", &root, "--type", "ed25519"],
    );
    let work = repo.path("director");
    let w = work.to_str().expect("utf-8 path");
    ferry_ok(&hsm, &["director", "init", w, "--listen", "127.0.0.1:0"]);
    let key = |role: &str| format!("{w}/keys/{role}.pem");
    let out = format!("{w}/roots/1.root.json");
    ferry_ok(
        &hsm,
        &[
            "director",
            "root",
            "init",
            "--root-key",
            &root,
            "--targets-key",
            &key("targets"),
            "--snapshot-key",
            &key("snapshot"),
            "--timestamp-key",
            &key("timestamp"),
            "--out",
            &out,
        ],
    );
    let bytes = std::fs::read(&out).expect("root written");
    ferry_core::TrustedSet::new(&bytes, chrono::Utc::now()).expect("self-signed on the token");
}
