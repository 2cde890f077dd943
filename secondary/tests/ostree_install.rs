//! The `ostree` domain on a real OSTree sysroot made by the test with Debian's `ostree`
//! (`admin init-fs`, `os-init`, `commit`, `admin deploy`; static deltas made with `static-delta
//! generate --inline`): v1 → v2 deploys the signed commit, boots it and provides its claims; a
//! v3 whose health check fails after the reboot is undeployed and v2 boots again; a delta that
//! yields another commit than the signed metadata names deploys nothing; bytes other than the
//! signed ones are refused before the delta is applied. Pull targets (no file; the signed
//! sha256 is the commit) are pulled from a real HTTP server on 127.0.0.1 serving the
//! archive-mode build repository: the signed commit deploys; a server serving other bytes for
//! it, or lacking it, deploys nothing; a configured `[ostree] remote` is pulled through.
//! Skips, saying why, without `ostree`.
#![allow(clippy::unwrap_used)]

mod common;
// The sysroot fixture the end-to-end test uses too (ferry-tests depends on this crate, so the
// file is shared by path rather than as a dependency).
#[allow(dead_code)]
#[path = "../../tests/src/ostree.rs"]
mod ostree_fixture;

use common::*;
use ferry_core::manifest::InstallResult;
use ferry_secondary::config::{BootBackend, OstreeConfig};
use ferry_secondary::install::boot::parse_lines;
use ferry_secondary::{Ecu, Installed, VerificationMode};
use ostree_fixture::{ostree, ostree_available, Os, Unfreeze, STATEROOT};
#[path = "../../tests/src/static_http.rs"]
mod static_http;
use ferry_core::metadata::TargetFile;
use serde_json::{json, Value};
use static_http::StaticServer;
fn ostree_custom(version: &str, counter: u64, commit: &str, from: &str) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "ostree",
            "name": "ferryos", "version": version,
            "ostree": { "commit": commit, "delivery": "static-delta", "from": from } })
}

fn with_ostree(v: &mut Vehicle, os: &Os, health: bool) {
    v.config.ostree = Some(OstreeConfig {
        sysroot: os.sysroot.clone(),
        os: STATEROOT.into(),
        ostree: "ostree".into(),
        remote: None,
        cmdline: "/proc/cmdline".into(),
        boot: BootBackend::File,
        boot_env: Some(v.dir.path().join("bootenv")),
        bootlimit: 3,
        // Healthy when the deployment has /usr/lib/healthy.
        health_check: health.then(|| {
            vec![
                "sh".into(),
                "-c".into(),
                "test -f \"$FERRY_OSTREE_DEPLOYMENT/usr/lib/healthy\"".into(),
            ]
        }),
        reboot_command: None,
        timeout_secs: None,
        fw_printenv: "fw_printenv".into(),
        fw_setenv: "fw_setenv".into(),
        grub_editenv: "grub-editenv".into(),
    });
}

fn install(
    v: &mut Vehicle,
    ecu: &mut Ecu,
    name: &str,
    content: &[u8],
    custom: Value,
) -> ferry_secondary::Result<Installed> {
    v.offer(name, content, custom);
    ecu.receive_metadata(&v.bundle(), now())?;
    ecu.receive_image(&mut &content[..])?;
    ecu.install(now())
}

fn boot_env(v: &Vehicle) -> std::collections::BTreeMap<String, String> {
    parse_lines(&std::fs::read_to_string(v.dir.path().join("bootenv")).unwrap())
}

#[test]
fn v2_deploys_and_boots_the_signed_commit_and_a_v3_failing_its_health_check_is_undeployed() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, true);
    let mut ecu = v.ecu();

    let c2 = os.commit("2", true);
    let delta = os.delta(&c1, &c2);
    let done = install(
        &mut v,
        &mut ecu,
        "os/ferryos-2.delta",
        &delta,
        ostree_custom("2", 2, &c2, &c1),
    )
    .unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert_eq!(os.commits(), [c2.clone(), c1.clone()]);
    let deployments = os.deployments();
    assert!(
        deployments[0].pinned,
        "the new known good deployment is pinned: {deployments:?}"
    );
    assert!(
        !deployments[1].pinned,
        "the pin moved off the old one: {deployments:?}"
    );
    let env = boot_env(&v);
    assert_eq!(env["ferry_ostree_booted"], c2, "{env:?}");
    assert_eq!(env["upgrade_available"], "0", "{env:?}");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.provides["rootfs-image.ostree.commit"], c2);
    assert_eq!(
        status.installed_domains["ostree"].target,
        "os/ferryos-2.delta"
    );
    let steps: Vec<String> = ecu
        .journal_entries()
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        steps,
        [
            "download",
            "install",
            "reboot",
            "verify-reboot",
            "commit",
            "cleanup"
        ]
    );

    // v3 lacks the file its health check needs: deployed, booted, failed, undeployed.
    let c3 = os.commit("3", false);
    let delta = os.delta(&c2, &c3);
    let err = install(
        &mut v,
        &mut ecu,
        "os/ferryos-3.delta",
        &delta,
        ostree_custom("3", 3, &c3, &c2),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("failed at verify-reboot: ostree health check failed"),
        "{err}"
    );
    assert!(err.contains("restored the previous copy"), "{err}");
    assert_eq!(os.commits()[0], c2, "v2 is the default deployment again");
    assert!(!os.commits().contains(&c3), "{:?}", os.commits());
    assert_eq!(boot_env(&v)["ferry_ostree_booted"], c2);
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.provides["rootfs-image.ostree.commit"], c2);
    let last = status.last_install.unwrap();
    assert_eq!(last.result, InstallResult::RolledBack);
    assert!(
        last.detail.contains("ostree health check failed"),
        "{}",
        last.detail
    );
}

#[test]
fn a_delta_yielding_another_commit_than_signed_or_other_bytes_deploy_nothing() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, false);
    let mut ecu = v.ecu();

    // Signed as "commit c2", but the delta (correctly signed as a file) yields c3.
    let c2 = os.commit("2", true);
    let c3 = os.commit("3", true);
    let delta = os.delta(&c1, &c3);
    let err = install(
        &mut v,
        &mut ecu,
        "os/ferryos-2.delta",
        &delta,
        ostree_custom("2", 2, &c2, &c1),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("ostree commit check failed"), "{err}");
    assert!(err.contains(&format!("holds no commit {c2}")), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");
    assert_eq!(
        ecu.status()
            .unwrap()
            .provides
            .get("rootfs-image.ostree.commit"),
        None
    );

    // The right delta, but the bytes that arrive differ from the signed ones: refused as
    // they arrive, before ostree sees them.
    let good = os.delta(&c1, &c2);
    v.offer(
        "os/ferryos-2b.delta",
        &good,
        ostree_custom("2", 2, &c2, &c1),
    );
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let mut tampered = good.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = ecu
        .receive_image(&mut &tampered[..])
        .unwrap_err()
        .to_string();
    assert!(err.contains("hash"), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");
    let refs = ostree(&[&format!("--repo={}", os.repo().display()), "refs"]);
    assert!(!refs.contains("ferry/trial"), "{refs}");
}

fn pull_custom(version: &str, counter: u64, commit: &str, url: &str) -> Value {
    json!({ "hardwareIds": [HW], "releaseCounter": counter, "domain": "ostree",
            "name": "ferryos", "version": version,
            "ostree": { "commit": commit, "delivery": "pull", "url": url } })
}

/// Offer pull target `name`: no file, length 0, the signed sha256 `sha256` (the commit, when
/// the Image repository is honest).
fn offer_pull(v: &mut Vehicle, name: &str, sha256: &str, custom: Value) {
    let target = |custom: Value| TargetFile {
        custom: Some(custom),
        hashes: [("sha256".to_string(), sha256.to_string())].into(),
        length: 0,
        extra: Default::default(),
    };
    v.image.targets.targets.clear();
    v.image.targets.targets.insert(name.into(), target(custom));
    v.director.targets.targets.clear();
    v.director.targets.targets.insert(
        name.into(),
        target(json!({ "ecuIdentifiers": { SERIAL: { "hardwareId": HW } } })),
    );
    v.publish();
}

fn install_pull(
    v: &mut Vehicle,
    ecu: &mut Ecu,
    name: &str,
    commit: &str,
    url: &str,
) -> ferry_secondary::Result<Installed> {
    offer_pull(v, name, commit, pull_custom("2", 2, commit, url));
    ecu.receive_metadata(&v.bundle(), now())?;
    ecu.receive_image(&mut &b""[..])?;
    ecu.install(now())
}

/// The path of `commit`'s commit object in the archive-mode repository `repo`.
fn commit_object(repo: &std::path::Path, commit: &str) -> std::path::PathBuf {
    repo.join("objects")
        .join(&commit[..2])
        .join(format!("{}.commit", &commit[2..]))
}

#[test]
fn a_pull_target_pulls_the_signed_commit_over_http_and_deploys_it() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, true);
    let mut ecu = v.ecu();
    let c2 = os.commit("2", true);
    let server = StaticServer::start(&os.build);

    // A pull target has no file: a byte of image is refused as endless data.
    offer_pull(
        &mut v,
        "os/ferryos-2",
        &c2,
        pull_custom("2", 2, &c2, &server.url),
    );
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let err = ecu.receive_image(&mut &b"x"[..]).unwrap_err().to_string();
    assert!(err.contains("os/ferryos-2"), "{err}");
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    let done = install_pull(&mut v, &mut ecu, "os/ferryos-2", &c2, &server.url).unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert_eq!(os.commits(), [c2.clone(), c1.clone()]);
    let wanted = format!(
        "GET /{}",
        commit_object(std::path::Path::new(""), &c2).display()
    );
    assert!(
        server.requests().iter().any(|r| r.starts_with(&wanted)),
        "the commit was pulled from the server: {:?}",
        server.requests()
    );
    let remotes = ostree(&[
        &format!("--repo={}", os.repo().display()),
        "remote",
        "show-url",
        "ferry",
    ]);
    assert_eq!(
        remotes, server.url,
        "Ferry's own remote points at the signed URL"
    );
    let status = ecu.status().unwrap();
    assert_eq!(status.provides["rootfs-image.version"], "2");
    assert_eq!(status.provides["rootfs-image.ostree.commit"], c2);
    assert_eq!(status.installed_domains["ostree"].target, "os/ferryos-2");
    assert_eq!(boot_env(&v)["ferry_ostree_booted"], c2);
}

#[test]
fn a_pull_served_another_commit_than_signed_or_none_deploys_nothing() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, true);
    let mut ecu = v.ecu();
    let c2 = os.commit("2", true);
    let c3 = os.commit("3", true);
    let ecu_lacks = |commit: &str| {
        let shown = std::process::Command::new("ostree")
            .arg(format!("--repo={}", os.repo().display()))
            .args(["show", commit])
            .output()
            .unwrap();
        !shown.status.success()
    };

    // The server's object for the signed commit c2 holds c3's commit: ostree checks every
    // object's checksum as it arrives, so the pull fails and nothing is deployed.
    let served = v.dir.path().join("served");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&os.build)
        .arg(&served)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::copy(commit_object(&os.build, &c3), commit_object(&served, &c2)).unwrap();
    let server = StaticServer::start(&served);
    let err = install_pull(&mut v, &mut ecu, "os/ferryos-2", &c2, &server.url)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ostree pull failed"), "{err}");
    assert!(err.contains("Corrupted commit object"), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");
    assert!(ecu_lacks(&c2), "the other commit reached the ECU as {c2}");
    let refs = ostree(&[&format!("--repo={}", os.repo().display()), "refs"]);
    assert!(!refs.contains("ferry/trial"), "{refs}");
    let status = ecu.status().unwrap();
    assert_eq!(status.provides.get("rootfs-image.ostree.commit"), None);
    assert_eq!(
        status.last_install.unwrap().result,
        InstallResult::Failure,
        "the refusal is reported"
    );

    // A server that lacks the signed commit.
    std::fs::remove_file(commit_object(&served, &c2)).unwrap();
    let err = install_pull(&mut v, &mut ecu, "os/ferryos-2", &c2, &server.url)
        .unwrap_err()
        .to_string();
    assert!(err.contains("ostree pull failed"), "{err}");
    assert_eq!(os.commits(), vec![c1.clone()], "nothing deployed");

    // Metadata whose signed sha256 is not the commit it names: refused by core's rule as
    // the (empty) image arrives, before any pull.
    let before = server.requests().len();
    offer_pull(
        &mut v,
        "os/ferryos-2c",
        &c3,
        pull_custom("2", 2, &c2, &server.url),
    );
    ecu.receive_metadata(&v.bundle(), now()).unwrap();
    let err = ecu.receive_image(&mut &b""[..]).unwrap_err().to_string();
    assert!(
        err.contains("ostree pull target check failed: target os/ferryos-2c"),
        "{err}"
    );
    assert!(
        err.contains(&format!("expected the custom.ostree.commit {c2}")),
        "{err}"
    );
    assert_eq!(server.requests().len(), before, "nothing pulled");
    assert_eq!(os.commits(), vec![c1], "nothing deployed");
}

#[test]
fn a_configured_remote_is_pulled_through_from_the_signed_url() {
    if !ostree_available() {
        return;
    }
    let mut v = Vehicle::new(VerificationMode::Full);
    let _unfreeze = Unfreeze(v.dir.path().to_owned());
    let os = Os::new(v.dir.path());
    let c1 = os.commits()[0].clone();
    with_ostree(&mut v, &os, true);
    // The operator's remote (as `ostree remote add` made it on the device), pointing
    // elsewhere: the pull goes through it, but from the signed URL.
    ostree(&[
        &format!("--repo={}", os.repo().display()),
        "remote",
        "add",
        "--no-gpg-verify",
        "vendor",
        "http://127.0.0.1:9/unused",
    ]);
    if let Some(config) = v.config.ostree.as_mut() {
        config.remote = Some("vendor".into());
    }
    let mut ecu = v.ecu();
    let c2 = os.commit("2", true);
    let server = StaticServer::start(&os.build);
    let done = install_pull(&mut v, &mut ecu, "os/ferryos-2", &c2, &server.url).unwrap();
    assert!(matches!(done, Installed::Done(_)), "{done:?}");
    assert_eq!(os.commits(), [c2, c1]);
    let remotes = ostree(&[&format!("--repo={}", os.repo().display()), "remote", "list"]);
    assert_eq!(remotes, "vendor", "no remote of Ferry's own was added");
}
