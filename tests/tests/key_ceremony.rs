//! Key ceremonies end to end (#18): three key holders in three directories (one key in
//! SoftHSM2, two passphrase-encrypted files) rotate the Image repository's root and the
//! Director's root to their keys with threshold 2, through `ferry proposal`, while a vehicle
//! that trusted the old roots keeps updating. A merge short of a threshold names the missing
//! signers; a proposal edited after signing is refused by its digest.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::process::{run_bounded, Output};
use primary_common::attack::{assign_v2, install_v1, publish_v2, APP_V2, FW_V2};
use primary_common::{ferry, ferry_ok, Options, World, PRIMARY};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One key holder: a directory of its own (its air-gapped host), a key source and its
/// public key as `ferry key pub` printed it.
struct Holder {
    dir: PathBuf,
    key: String,
    passphrase: Option<PathBuf>,
    softhsm_conf: Option<PathBuf>,
    public: PathBuf,
}

impl Holder {
    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(ferry());
        cmd.current_dir(&self.dir).args(args);
        if let Some(conf) = &self.softhsm_conf {
            cmd.env("SOFTHSM2_CONF", conf);
        }
        run_bounded(&mut cmd, primary_common::TIMEOUT)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.code,
            0,
            "holder {}: ferry {args:?}\n{out}",
            self.dir.display()
        );
        out
    }

    /// Carry `proposal` over on a stick, sign it here, carry the signature back as `back`.
    fn sign(&self, proposal: &Path, back: &Path) {
        let local = self.dir.join("proposal.json");
        let _ = std::fs::remove_file(&local);
        std::fs::copy(proposal, &local).unwrap();
        let sig = self.dir.join("holder.sig");
        let _ = std::fs::remove_file(&sig);
        let mut args = vec![
            "proposal",
            "sign",
            "proposal.json",
            "--key",
            self.key.as_str(),
        ];
        let pass = self
            .passphrase
            .as_ref()
            .map(|p| p.to_str().unwrap().to_owned());
        if let Some(p) = &pass {
            args.extend(["--passphrase-file", p.as_str()]);
        }
        args.extend(["--out", "holder.sig"]);
        let out = self.ok(&args);
        assert!(
            out.stdout.contains("must be signed by"),
            "the summary comes first: {out}"
        );
        std::fs::copy(&sig, back).unwrap();
    }

    fn keyid(&self) -> String {
        let mut args = vec!["key", "pub", self.key.as_str(), "--json"];
        let pass = self
            .passphrase
            .as_ref()
            .map(|p| p.to_str().unwrap().to_owned());
        if let Some(p) = &pass {
            args.extend(["--passphrase-file", p.as_str()]);
        }
        let v: Value = serde_json::from_str(&self.ok(&args).stdout).unwrap();
        v["keyid"].as_str().unwrap().to_owned()
    }
}

fn file_holder(base: &Path, name: &str) -> Holder {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pass"), format!("{name} passphrase\n")).unwrap();
    let mut holder = Holder {
        dir: dir.clone(),
        key: "root.key".into(),
        passphrase: Some(dir.join("pass")),
        softhsm_conf: None,
        public: dir.join("root.pub"),
    };
    holder.ok(&[
        "key",
        "gen",
        "--type",
        "ed25519",
        "--out",
        "root.key",
        "--passphrase-file",
        "pass",
    ]);
    let out = holder.ok(&["key", "pub", "root.key", "--passphrase-file", "pass"]);
    std::fs::write(&holder.public, &out.stdout).unwrap();
    holder.passphrase = Some(dir.join("pass"));
    holder
}

/// A holder whose key is generated inside a SoftHSM2 token and never leaves it.
fn hsm_holder(base: &Path, name: &str) -> Option<Holder> {
    let module = [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists());
    let Some(module) = module else {
        eprintln!("SKIP part: SoftHSM2 is not installed (apt-get install softhsm2); the HSM holder uses a key file");
        return None;
    };
    let dir = base.join(name);
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            dir.join("tokens").display()
        ),
    )
    .unwrap();
    let init = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "ferry",
            "--pin",
            "4321",
            "--so-pin",
            "87654321",
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    std::fs::write(dir.join("pin.txt"), "4321").unwrap();
    let uri = format!(
        "pkcs11:token=ferry;object=root-{name}?module-path={module}&pin-source=file:{}",
        dir.join("pin.txt").display()
    );
    let holder = Holder {
        dir: dir.clone(),
        key: uri.clone(),
        passphrase: None,
        softhsm_conf: Some(conf),
        public: dir.join("root.pub"),
    };
    holder.ok(&["key", "gen", "--pkcs11", &uri, "--type", "ecdsa-p256"]);
    let out = holder.ok(&["key", "pub", &uri]);
    std::fs::write(&holder.public, &out.stdout).unwrap();
    Some(holder)
}

fn holders(base: &Path) -> Vec<Holder> {
    let first = hsm_holder(base, "holder-1").unwrap_or_else(|| file_holder(base, "holder-1"));
    vec![
        first,
        file_holder(base, "holder-2"),
        file_holder(base, "holder-3"),
    ]
}

/// The proposal options that replace `old` root key ids by the holders' keys, threshold 2.
fn rotation_args(old: &[String], holders: &[Holder]) -> Vec<String> {
    let mut args = Vec::new();
    for id in old {
        args.push("--remove-key".to_owned());
        args.push(format!("root={id}"));
    }
    for h in holders {
        args.push("--add-key".to_owned());
        args.push(format!("root={}", h.public.display()));
    }
    args.extend(["--threshold".to_owned(), "root=2".to_owned()]);
    args
}

/// What every ceremony must refuse, checked on `proposal` with the signatures in hand:
/// short of the new threshold (names who is missing), and an edited proposal.
fn refusals(b: &Path, proposal: &Path, enough: &[&Path], missing: &[String]) {
    let p = proposal.to_str().unwrap();
    let mut short = vec!["proposal", "merge", p];
    let partial: Vec<&str> = enough
        .iter()
        .map(|s| s.to_str().unwrap())
        .filter(|s| !s.contains("new-2"))
        .collect();
    short.extend(partial.iter().copied());
    short.extend(["--out", "short.json"]);
    let out = primary_common::run(b, &ferry(), &short);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("1 of 2 signature(s)"), "{out}");
    for id in missing {
        assert!(
            out.stderr.contains(id.as_str()),
            "missing signer {id} not named: {out}"
        );
    }
    assert!(!b.join("short.json").exists());

    // The threshold is lowered in the file after the holders signed.
    let text = std::fs::read_to_string(proposal).unwrap();
    let edited = text.replacen("\\\"threshold\\\":2", "\\\"threshold\\\":1", 1);
    assert_ne!(
        edited, text,
        "the proposal holds the new root's canonical text"
    );
    std::fs::write(b.join("edited.json"), edited).unwrap();
    let mut args = vec!["proposal", "merge", "edited.json"];
    args.extend(enough.iter().map(|s| s.to_str().unwrap()));
    args.extend(["--out", "edited.root.json"]);
    let out = primary_common::run(b, &ferry(), &args);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("proposal digest check failed"), "{out}");
    assert!(!b.join("edited.root.json").exists());
}

#[test]
fn both_roots_rotate_to_three_holders_and_the_vehicle_follows() {
    let mut world = World::start(Options::default());
    let b = world.base.clone();
    let v1 = install_v1(&world);
    assert_eq!(v1.ecus.len(), 3);
    let holders = holders(&b);

    // --- The Image repository: root v1 (one key on the repository host) -> v2 (the holders).
    let out = ferry_ok(&b, &["key", "pub", "img/keys/root.pem", "--json"]);
    let old: Value = serde_json::from_str(&out.stdout).unwrap();
    let old_id = old["keyid"].as_str().unwrap().to_owned();
    let mut args = vec![
        "repo".to_owned(),
        "root".into(),
        "propose".into(),
        "img".into(),
    ];
    args.extend(rotation_args(std::slice::from_ref(&old_id), &holders));
    args.extend(["--out".into(), "img-root-2.json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ferry_ok(&b, &args);
    assert!(out.stdout.contains("root: threshold 1 -> 2"), "{out}");
    let proposal = b.join("img-root-2.json");
    // The old root key (on the repository host) and two of the three holders.
    ferry_ok(
        &b,
        &[
            "proposal",
            "sign",
            "img-root-2.json",
            "--key",
            "img/keys/root.pem",
            "--out",
            "old.sig",
        ],
    );
    let new1 = b.join("img-new-1.sig");
    let new2 = b.join("img-new-2.sig");
    holders[0].sign(&proposal, &new1);
    holders[2].sign(&proposal, &new2);
    let enough = [b.join("old.sig"), new1.clone(), new2.clone()];
    let enough: Vec<&Path> = enough.iter().map(PathBuf::as_path).collect();
    refusals(
        &b,
        &proposal,
        &enough,
        &[holders[1].keyid(), holders[2].keyid()],
    );
    let out = ferry_ok(
        &b,
        &[
            "proposal",
            "status",
            "img-root-2.json",
            "old.sig",
            "img-new-1.sig",
            "img-new-2.sig",
        ],
    );
    assert!(out.stdout.contains("complete"), "{out}");
    ferry_ok(
        &b,
        &[
            "proposal",
            "merge",
            "img-root-2.json",
            "old.sig",
            "img-new-1.sig",
            "img-new-2.sig",
            "--out",
            "img-2.root.json",
        ],
    );
    let out = ferry_ok(&b, &["repo", "root", "import", "img", "img-2.root.json"]);
    assert!(out.stdout.contains("published root v2"), "{out}");
    assert!(b.join("img/metadata/2.root.json").exists());

    // --- The Director: root v1 (root.key) -> v2 (the holders), through the same flow.
    let out = ferry_ok(&b, &["key", "pub", "root.key", "--json"]);
    let old: Value = serde_json::from_str(&out.stdout).unwrap();
    let old_id = old["keyid"].as_str().unwrap().to_owned();
    let mut args = vec![
        "director".to_owned(),
        "root".into(),
        "propose".into(),
        "--config".into(),
        "d/director.toml".into(),
    ];
    args.extend(rotation_args(&[old_id], &holders));
    args.extend(["--out".into(), "d-root-2.json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ferry_ok(&b, &args);
    assert!(out.stdout.contains("Director root: v1 -> v2"), "{out}");
    let proposal = b.join("d-root-2.json");
    ferry_ok(
        &b,
        &[
            "proposal",
            "sign",
            "d-root-2.json",
            "--key",
            "root.key",
            "--out",
            "d-old.sig",
        ],
    );
    let d1 = b.join("d-new-1.sig");
    let d2 = b.join("d-new-2.sig");
    holders[1].sign(&proposal, &d1);
    holders[0].sign(&proposal, &d2);
    // The Image repository's signatures do not count here (another proposal).
    let out = primary_common::run(
        &b,
        &ferry(),
        &[
            "proposal",
            "merge",
            "d-root-2.json",
            "d-old.sig",
            "img-new-1.sig",
            "img-new-2.sig",
            "--out",
            "x.json",
        ],
    );
    assert!(out.stderr.contains("proposal digest check failed"), "{out}");
    let enough = [b.join("d-old.sig"), d1.clone(), d2.clone()];
    let enough: Vec<&Path> = enough.iter().map(PathBuf::as_path).collect();
    refusals(
        &b,
        &proposal,
        &enough,
        &[holders[0].keyid(), holders[2].keyid()],
    );
    ferry_ok(
        &b,
        &[
            "proposal",
            "merge",
            "d-root-2.json",
            "d-old.sig",
            "d-new-1.sig",
            "d-new-2.sig",
            "--out",
            "d-2.root.json",
        ],
    );
    ferry_ok(
        &b,
        &[
            "director",
            "root",
            "import",
            "--config",
            "d/director.toml",
            "d-2.root.json",
        ],
    );
    world.restart_director();

    // --- The vehicle trusted both v1 roots; it walks to both v2 and installs v2 images.
    publish_v2(&world);
    assign_v2(&world);
    let out = world.check();
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
}
