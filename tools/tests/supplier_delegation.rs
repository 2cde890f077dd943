//! A supplier delegation made entirely with the `ferry` binary: the supplier makes its key
//! and sends the OEM the output of `ferry key pub`, redirected to a file; the OEM delegates
//! to that file, the supplier signs its role, the OEM publishes, and Ferry's own TUF client
//! fetches the supplier's target through the delegation (which checks the supplier's
//! signature against the key the OEM delegated to). Once with a key file, once with the
//! supplier's key on a SoftHSM2 token (skipped, with the reason printed, when SoftHSM2 is not
//! installed).
mod repo_common;

use repo_common::{ferry_bin, run_bounded, Repo, CLI_TIMEOUT};
use std::path::Path;
use std::process::{Command, Stdio};

/// `ferry ARGS > out`, with `env` set; panics unless it succeeds. Returns stderr.
fn ferry_to_file(args: &[&str], out: &Path, env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(ferry_bin());
    cmd.args(args)
        .stdout(Stdio::from(std::fs::File::create(out).expect("create")))
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let done = cmd.output().expect("run ferry");
    let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
    assert!(done.status.success(), "ferry {args:?} failed: {stderr}");
    stderr
}

fn ferry_ok(args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(ferry_bin());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_bounded(&mut cmd, CLI_TIMEOUT);
    assert_eq!(out.code, 0, "ferry {args:?} failed:\n{out}");
    out.stdout
}

/// The highest-versioned `N.NAME.json` published.
fn latest(repo: &Repo, name: &str) -> serde_json::Value {
    let suffix = format!(".{name}.json");
    let newest = std::fs::read_dir(repo.dir.join("metadata"))
        .expect("metadata dir")
        .filter_map(|e| {
            let file = e.ok()?.file_name().to_string_lossy().into_owned();
            let n: u64 = file.strip_suffix(&suffix)?.parse().ok()?;
            Some((n, file))
        })
        .max()
        .unwrap_or_else(|| panic!("no published {name}"))
        .1;
    repo.metadata_json(&newest)
}

/// The OEM's part and the check, given the supplier's public key file and how the supplier
/// signs (`sign_args` after `sign-role DIR tier1`).
fn delegate_sign_publish_fetch(
    repo: &Repo,
    supplier_pub: &Path,
    keyid: &str,
    sign_args: &[&str],
    env: &[(&str, &Path)],
) {
    // OEM: delegate tier1/* to the key in the file the supplier sent.
    repo.cmd(
        "delegate",
        &[
            "tier1",
            "--key",
            supplier_pub.to_str().expect("utf-8 path"),
            "--paths",
            "tier1/*",
            "--terminating",
        ],
    );
    let brakes = b"brakes firmware 1.0".repeat(1000);
    repo.add_target("tier1/brakes.bin", &brakes, &["--role", "tier1"]);

    // Supplier: signs its role.
    let dir = repo.dir.to_str().expect("utf-8 path");
    let mut args = vec!["repo", "sign-role", dir, "tier1"];
    args.extend_from_slice(sign_args);
    let signed = ferry_ok(&args, env);
    assert!(signed.contains(keyid), "{signed}");

    // OEM: publishes.
    let report = repo.publish();
    assert!(
        report["roles"].to_string().contains(r#"["tier1",1]"#),
        "{report}"
    );

    // The published delegation lists the supplier's key, and the role is signed by it.
    let targets = latest(repo, "targets");
    let delegations = &targets["signed"]["delegations"];
    assert!(
        delegations["keys"].get(keyid).is_some(),
        "supplier key {keyid} not in {delegations}"
    );
    assert_eq!(
        delegations["roles"][0]["keyids"],
        serde_json::json!([keyid]),
        "{delegations}"
    );
    let tier1 = latest(repo, "tier1");
    assert_eq!(tier1["signatures"][0]["keyid"], keyid, "{tier1}");

    // Ferry's TUF client verifies the chain down to the supplier's signature.
    let server = repo.serve();
    let client = repo.path("client");
    let md = client.join("metadata");
    let got = client.join("targets");
    std::fs::create_dir_all(&md).expect("client dir");
    let trusted = client.join("root.json");
    std::fs::write(&trusted, repo.metadata("1.root.json")).expect("trusted root");
    let md_s = md.to_str().expect("utf-8 path");
    ferry_ok(
        &[
            "tuf-client",
            "--metadata-dir",
            md_s,
            "init",
            trusted.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    ferry_ok(
        &[
            "tuf-client",
            "--metadata-dir",
            md_s,
            "--metadata-url",
            &server.metadata_url(),
            "--target-name",
            "tier1/brakes.bin",
            "--target-dir",
            got.to_str().expect("utf-8 path"),
            "--target-base-url",
            &server.targets_url(),
            "download",
        ],
        &[],
    );
    let fetched = std::fs::read_dir(&got)
        .expect("target dir")
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .collect::<Vec<_>>();
    assert_eq!(fetched, vec![brakes], "the supplier's target, verified");
}

#[test]
fn supplier_delegation_made_entirely_with_ferry() {
    let repo = Repo::init(&[]);
    // Supplier, on its own host: an encrypted key and its public half as a file.
    let pass = repo.path("supplier.pass");
    std::fs::write(&pass, "supplier passphrase\n").expect("write passphrase");
    let key = repo.path("supplier.key");
    let (key_s, pass_s) = (
        key.to_str().expect("utf-8 path"),
        pass.to_str().expect("utf-8 path"),
    );
    let gen = ferry_ok(
        &[
            "key",
            "gen",
            "--type",
            "ecdsa-p256",
            "--out",
            key_s,
            "--passphrase-file",
            pass_s,
            "--json",
        ],
        &[],
    );
    let gen: serde_json::Value = serde_json::from_str(gen.trim()).expect("gen --json");
    let keyid = gen["keyid"].as_str().expect("keyid");
    let supplier_pub = repo.path("supplier.pub.json");
    let stderr = ferry_to_file(
        &["key", "pub", key_s, "--passphrase-file", pass_s],
        &supplier_pub,
        &[],
    );
    assert!(stderr.contains(keyid), "{stderr}");

    delegate_sign_publish_fetch(
        &repo,
        &supplier_pub,
        keyid,
        &["--key", key_s, "--passphrase-file", pass_s],
        &[],
    );
}

#[test]
fn supplier_delegation_with_the_supplier_key_on_a_token() {
    let Some(hsm) = ferry_tests::softhsm::SoftHsm::new() else {
        return;
    };
    let conf = hsm.conf();
    let env = [("SOFTHSM2_CONF", conf.as_path())];
    let repo = Repo::init(&[]);
    let gen = ferry_ok(
        &[
            "key",
            "gen",
            "--type",
            "ed25519",
            "--pkcs11",
            &hsm.uri("tier1"),
            "--json",
        ],
        &env,
    );
    let gen: serde_json::Value = serde_json::from_str(gen.trim()).expect("gen --json");
    let keyid = gen["keyid"].as_str().expect("keyid");
    let supplier_pub = repo.path("supplier.pub.json");
    ferry_to_file(
        &["key", "pub", &hsm.uri_without_pin("tier1")],
        &supplier_pub,
        &env,
    );
    // The supplier signs on the token, the PIN in a file given as --passphrase-file.
    let uri = hsm.uri_without_pin("tier1");
    let pin = hsm.pin_file();
    delegate_sign_publish_fetch(
        &repo,
        &supplier_pub,
        keyid,
        &[
            "--key",
            &uri,
            "--passphrase-file",
            pin.to_str().expect("utf-8 path"),
        ],
        &env,
    );
}
