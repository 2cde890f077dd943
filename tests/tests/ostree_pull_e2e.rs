//! The `ostree` domain's pull delivery end to end: a real Director, Image repository,
//! `ferry-primary` and a `ferry-secondary` (full verification) whose OS is a real OSTree
//! sysroot made with Debian's `ostree`, and a real HTTP server on 127.0.0.1 serving the
//! vendor's archive-mode build repository. v1 (the factory deployment) → v2, published with
//! `ferry repo add-target --ostree-commit REPO:REF --ostree-pull URL` (no file; the signed
//! sha256 is the commit), is pulled by the ECU, deployed, booted and reported with
//! `rootfs-image.ostree.commit`; the Primary downloads nothing for it from the Image
//! repository; an offline bundle of it is refused by name. A v3 whose commit the server
//! serves other bytes for deploys nothing. Skips, saying why, without `ostree`.
#![allow(clippy::unwrap_used)]

mod primary_common;

use ferry_tests::ostree::{ostree_available, Os, Unfreeze};
use ferry_tests::static_http::StaticServer;
use primary_common::*;

/// Add pull target `name` of the build repository's branch head for the full Secondary's
/// hardware, pulled from `url`, and publish.
fn publish_pull(world: &World, os: &Os, url: &str, version: &str, name: &str) {
    let branch = format!("{}:ferryos/stable", os.build.display());
    ferry_ok(
        &world.base,
        &[
            "repo",
            "add-target",
            "img",
            "--name",
            name,
            "--hardware-id",
            "tcu",
            "--version",
            version,
            "--release-counter",
            version,
            "--ostree-commit",
            &branch,
            "--ostree-pull",
            url,
        ],
    );
    ferry_ok(&world.base, &["repo", "publish", "img"]);
}

#[test]
fn ostree_pull_targets_are_pulled_by_the_ecu_and_another_commit_served_is_refused() {
    if !ostree_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _unfreeze = Unfreeze(dir.path().to_owned());
    let os = Os::new(dir.path());
    let c1 = os.commits()[0].clone();
    let section = format!(
        "[ostree]\nsysroot = \"{}\"\nos = \"ferryos\"\n",
        os.sysroot.display()
    );
    let world = World::start(Options {
        full_extra_toml: Some(Box::leak(section.into_boxed_str())),
        log_requests: true,
        ..Options::default()
    });
    let server = StaticServer::start(&os.build);

    // v2: no file in the Image repository; the ECU pulls the commit, deploys and reports it.
    let c2 = os.commit("2", true);
    publish_pull(&world, &os, &server.url, "2", "os/ferryos-2");
    let listed = ferry_ok(&world.base, &["repo", "list", "img", "--json"]).stdout;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let row = listed
        .as_array()
        .into_iter()
        .flatten()
        .chain(listed["targets"].as_array().into_iter().flatten())
        .find(|t| t["name"] == "os/ferryos-2")
        .cloned()
        .unwrap_or_else(|| panic!("os/ferryos-2 listed: {listed}"));
    assert_eq!(row["length"], 0, "{row}");
    assert_eq!(row["sha256"], c2.as_str(), "{row}");
    world.assign(&[(FULL, "os/ferryos-2")]);
    let out = world.check();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(os.commits(), vec![c2.clone(), c1.clone()]);
    assert_eq!(
        world.repo_requests("targets/os/"),
        0,
        "the Primary downloaded a pull target's file"
    );
    assert!(
        server.requests().iter().any(|r| r.contains(".commit")),
        "the ECU pulled from the OSTree server: {:?}",
        server.requests()
    );
    let full = world.reported(FULL);
    assert_eq!(
        full["installed_image"]["filepath"], "os/ferryos-2",
        "{full}"
    );
    assert_eq!(full["provides"]["rootfs-image.version"], "2", "{full}");
    assert_eq!(
        full["provides"]["rootfs-image.ostree.commit"],
        c2.as_str(),
        "{full}"
    );

    // An offline bundle cannot carry a commit that is pulled over the network.
    let out = world.admin(
        true,
        &[
            "bundle",
            "create",
            "workshop",
            "--target",
            "tcu=os/ferryos-2",
            "--image-repo",
            &format!("http://{}", world.repo.addr),
            "--image-root",
            "img/metadata/1.root.json",
            "--out",
            "workshop",
        ],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("target os/ferryos-2 is an OSTree pull target"),
        "{out}"
    );

    // v3: the server's object for the signed commit holds another commit's bytes. ostree
    // refuses the object as it arrives; nothing is deployed and the Director hears.
    let c3 = os.commit("3", true);
    publish_pull(&world, &os, &server.url, "3", "os/ferryos-3");
    let c4 = os.commit("4", true);
    let object = |c: &str| {
        os.build
            .join("objects")
            .join(&c[..2])
            .join(format!("{}.commit", &c[2..]))
    };
    std::fs::copy(object(&c4), object(&c3)).unwrap();
    world.assign(&[(FULL, "os/ferryos-3")]);
    let out = world.check();
    assert_ne!(out.code, 0, "{out}");
    assert_eq!(os.commits(), vec![c2.clone(), c1], "nothing deployed");
    let full = world.reported(FULL);
    assert_eq!(full["last_install"]["target"], "os/ferryos-3", "{full}");
    assert_eq!(full["last_install"]["result"], "failure", "{full}");
    assert!(
        full["last_install"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Corrupted commit object")),
        "{full}"
    );
    assert_eq!(
        full["provides"]["rootfs-image.ostree.commit"],
        c2.as_str(),
        "{full}"
    );
}
