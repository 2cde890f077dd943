//! What the `ferry repo` CLI must refuse, and what a refusal must leave behind: nothing.
//!
//! Each refusal is checked three ways: a non-zero exit, an error naming the check that failed
//! (the error enum's "... check failed" wording, so an operator knows what to fix), and an
//! unchanged repository (no staged edit, no file written where it should not be). The last test
//! is the client-side reason for the version checks: python-tuf refuses a rolled-back timestamp.
#![allow(clippy::unwrap_used)]

mod repo_common;

use repo_common::{assert_same_tree, tree, Repo};
use serde_json::Value;

/// DIR without targets/ (where stored files may legitimately appear).
fn outside_targets(repo: &Repo) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree(&repo.dir, &["targets"])
}

fn edit_staged(repo: &Repo, role: &str, f: impl FnOnce(&mut Value)) {
    let path = repo.staged_path(role);
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f(&mut doc);
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

/// A repository delegating `tier1/*` to a supplier key, with one signed supplier target
/// published. Returns the repository and the supplier's private key path.
fn with_supplier() -> (Repo, String) {
    let repo = Repo::init(&[]);
    let key = repo.key_gen("tier1.pem");
    let public = repo.public_pem(&key);
    let key = key.to_str().unwrap().to_owned();
    repo.cmd(
        "delegate",
        &[
            "tier1",
            "--key",
            public.to_str().unwrap(),
            "--paths",
            "tier1/*",
        ],
    );
    repo.add_target("tier1/ok.bin", b"supplier image", &["--role", "tier1"]);
    repo.cmd("sign-role", &["tier1", "--key", &key]);
    repo.publish();
    assert!(repo.staged().is_empty());
    (repo, key)
}

#[test]
fn add_target_refuses_names_that_escape_the_targets_directory() {
    let repo = Repo::init(&[]);
    let src = repo.source("image.bin", b"escape attempt");
    let src = src.to_str().unwrap();
    for name in ["../x", "/abs", "a/../../b", "a/./b", "a//b"] {
        let before = outside_targets(&repo);
        let around = tree(repo.tmp.path(), &["repo"]);
        let out = repo.refused(
            "add-target",
            &[src, "--name", name, "--hardware-id", "ivi-a53"],
            "target path check failed",
        );
        assert!(out.stderr.contains(name), "error names the path:\n{out}");
        assert_same_tree(&before, &outside_targets(&repo), name);
        assert_same_tree(&around, &tree(repo.tmp.path(), &["repo"]), name);
        assert!(
            repo.staged().is_empty(),
            "{name}: staged {:?}",
            repo.staged()
        );
        // `/abs` would land at /HASH.abs if it were joined onto targets/.
        let at_root = std::fs::read_dir("/")
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".abs"));
        assert!(!at_root, "{name}: a file appeared in /");
    }
    let list = repo.cmd("list", &["--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&list.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn supplier_role_cannot_take_a_target_outside_its_paths() {
    let (repo, key) = with_supplier();
    let metadata = tree(&repo.dir.join("metadata"), &[]);

    // Through the CLI: refused before anything is staged.
    let before = outside_targets(&repo);
    let src = repo.source("os-x", b"not the supplier's to ship");
    let out = repo.refused(
        "add-target",
        &[
            src.to_str().unwrap(),
            "--name",
            "os/x",
            "--role",
            "tier1",
            "--hardware-id",
            "ivi-a53",
        ],
        "delegation check failed",
    );
    assert!(
        out.stderr.contains("os/x") && out.stderr.contains("tier1/*"),
        "{out}"
    );
    assert_same_tree(
        &before,
        &outside_targets(&repo),
        "add-target --role tier1 os/x",
    );
    assert!(repo.staged().is_empty(), "staged {:?}", repo.staged());

    // By hand: a staged tier1 that lists os/evil.img must be refused by the supplier's
    // sign-role and by the OEM's publish.
    repo.add_target(
        "tier1/ok-2.bin",
        b"second supplier image",
        &["--role", "tier1"],
    );
    assert_eq!(repo.staged(), ["tier1.json"]);
    edit_staged(&repo, "tier1", |doc| {
        let good = doc["signed"]["targets"]["tier1/ok-2.bin"].clone();
        doc["signed"]["targets"]["os/evil.img"] = good;
    });
    let staged = std::fs::read(repo.staged_path("tier1")).unwrap();
    let out = repo.refused(
        "sign-role",
        &["tier1", "--key", &key],
        "delegation check failed",
    );
    assert!(out.stderr.contains("os/evil.img"), "{out}");
    assert!(
        std::fs::read(repo.staged_path("tier1")).unwrap() == staged,
        "a refused sign-role rewrote the staged role"
    );
    let out = repo.refused("publish", &[], "delegation check failed");
    assert!(out.stderr.contains("os/evil.img"), "{out}");
    assert_same_tree(
        &metadata,
        &tree(&repo.dir.join("metadata"), &[]),
        "metadata/",
    );
}

#[test]
fn publish_refuses_a_version_that_does_not_go_up() {
    let repo = Repo::init(&[]);
    repo.add_target("apps/a.bin", b"a", &[]);
    repo.publish();
    let published = repo.version_of("2.targets.json");
    assert_eq!(published, 2);
    repo.add_target("apps/b.bin", b"b", &[]);
    let metadata = tree(&repo.dir.join("metadata"), &[]);
    for version in [published, published - 1] {
        edit_staged(&repo, "targets", |doc| {
            doc["signed"]["version"] = version.into();
        });
        let out = repo.refused("publish", &[], "version check failed");
        assert!(out.stderr.contains("targets"), "{out}");
        assert_same_tree(
            &metadata,
            &tree(&repo.dir.join("metadata"), &[]),
            &format!("metadata/ after a refused publish of targets v{version}"),
        );
    }
}

/// A publish that fails on one role must not have written another: metadata/ is the served
/// directory, N.ROLE.json files there are immutable to caches and mirrors (`ferry repo serve`
/// marks them so), and the snapshot names a targets version without its hash. A stray
/// 2.targets.json that a later publish rewrites with other content under the same version gives
/// a mirror that copied the stray file a validly signed targets v2 that clients accept.
#[test]
fn a_refused_publish_writes_nothing_to_metadata() {
    let repo = Repo::init(&[]);
    let key = repo.key_gen("tier1.pem");
    let public = repo.public_pem(&key);
    repo.cmd(
        "delegate",
        &[
            "tier1",
            "--key",
            public.to_str().unwrap(),
            "--paths",
            "tier1/*",
        ],
    );
    repo.add_target("tier1/ok.bin", b"supplier image", &["--role", "tier1"]);
    // Both targets (the new delegation) and tier1 are staged; tier1 is not signed yet.
    assert_eq!(repo.staged(), ["targets.json", "tier1.json"]);
    let metadata = tree(&repo.dir.join("metadata"), &[]);
    repo.refused("publish", &[], "signature check failed");
    let after_refusal = tree(&repo.dir.join("metadata"), &[]);

    // The operator carries on: the supplier signs, the OEM adds a target, publish succeeds.
    repo.cmd("sign-role", &["tier1", "--key", key.to_str().unwrap()]);
    repo.add_target("apps/late.bin", b"added after the refusal", &[]);
    let report = repo.publish();
    assert!(
        report["roles"].to_string().contains(r#"["targets",2]"#),
        "{report}"
    );
    let published = repo.metadata("2.targets.json");
    let stray = after_refusal.get("2.targets.json");
    assert!(
        stray.is_none(),
        "the refused publish wrote metadata/2.targets.json{}",
        if stray.is_some_and(|s| *s != published) {
            "; the next publish then signed different content as the same targets v2"
        } else {
            ""
        }
    );
    assert_same_tree(
        &metadata,
        &after_refusal,
        "metadata/ after a publish refused for an unsigned tier1",
    );
}

#[test]
fn ngclient_refuses_a_rolled_back_timestamp() {
    let repo = Repo::init(&[]);
    repo.add_target("apps/a.bin", b"release 1", &[]);
    repo.publish();
    let old_timestamp = repo.metadata("timestamp.json");
    repo.add_target("apps/b.bin", b"release 2", &[]);
    repo.publish();
    let current = repo.version_of("timestamp.json");

    let server = repo.serve();
    let device = repo.client("device");
    let up = device.update(&server, &["apps/b.bin"]);
    assert_eq!(up.version("timestamp"), current);

    // An attacker (or a stale mirror) serves the older, validly signed timestamp.
    std::fs::write(repo.dir.join("metadata/timestamp.json"), &old_timestamp).unwrap();
    let (status, body) = server.get("metadata/timestamp.json");
    assert_eq!((status, body == old_timestamp), (200, true));
    let refused = device
        .run(&server, &["apps/a.bin"])
        .expect_err("ngclient accepted a rolled-back timestamp");
    assert_eq!(refused.error, "BadVersionNumberError", "{}", refused.out);
    assert!(refused.message.contains("timestamp"), "{}", refused.out);
    let kept: Value =
        serde_json::from_slice(&std::fs::read(device.metadata_dir.join("timestamp.json")).unwrap())
            .unwrap();
    assert_eq!(
        kept["signed"]["version"], current,
        "the device kept its newer timestamp"
    );
    // Only the version the device already trusts protects it: a device that never saw the
    // newer timestamp cannot tell (TUF's freeze attack is bounded by expiry, not versions).
    let fresh = repo.client("fresh").update(&server, &["apps/a.bin"]);
    assert_eq!(fresh.version("timestamp"), current - 1);
}

/// `--from-mender` takes the target's metadata from the artifact's headers, and stages
/// nothing from an artifact that fails its manifest or is no artifact; `--meta-data` wants a
/// JSON object.
#[test]
fn add_target_from_mender_reads_the_headers_and_refuses_a_broken_artifact() {
    let repo = Repo::init(&[]);
    let good = ferry_tests::parsers::mender_seed(b"the payload");
    let src = repo.source("a-1.mender", &good);
    repo.cmd(
        "add-target",
        &[
            src.to_str().unwrap(),
            "--name",
            "apps/a-1.mender",
            "--from-mender",
        ],
    );
    let list: Value = serde_json::from_str(&repo.cmd("list", &["--json"]).stdout).unwrap();
    let custom = &list[0]["custom"];
    assert_eq!(custom["hardwareIds"], serde_json::json!(["hw"]), "{custom}");
    assert_eq!(custom["domain"], "single-file", "{custom}");
    assert_eq!(custom["provides"]["artifact_name"], "a-1", "{custom}");
    assert_eq!(
        custom["provides"]["rootfs-image.single-file.version"],
        "a-1"
    );
    assert_eq!(
        custom["metaData"],
        serde_json::json!({"k": "v"}),
        "{custom}"
    );
    assert_eq!(custom["mender"]["files"][0]["name"], "file", "{custom}");

    let mut broken = good.clone();
    let at = broken
        .windows(11)
        .position(|w| w == b"the payload")
        .unwrap();
    broken[at] ^= 1;
    let src = repo.source("a-2.mender", &broken);
    let out = repo.refused(
        "add-target",
        &[
            src.to_str().unwrap(),
            "--name",
            "apps/a-2.mender",
            "--from-mender",
        ],
        "Mender artifact check failed: manifest checksum: data/0000/file",
    );
    assert!(out.stderr.contains("a-2.mender"), "{out}");
    let src = repo.source("plain.bin", b"not an artifact");
    repo.refused(
        "add-target",
        &[src.to_str().unwrap(), "--from-mender"],
        "Mender artifact check failed",
    );
    let meta = repo.source("meta.json", b"[1, 2]");
    repo.refused(
        "add-target",
        &[
            src.to_str().unwrap(),
            "--hardware-id",
            "hw",
            "--meta-data",
            meta.to_str().unwrap(),
        ],
        "expected a JSON object",
    );
    let list: Value = serde_json::from_str(&repo.cmd("list", &["--json"]).stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}
