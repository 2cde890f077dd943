#![allow(clippy::unwrap_used)]
//! The Director's Image repository client against a real repository served on 127.0.0.1:
//! what it keeps between lookups, when it refreshes, and its bounds.

mod common;

use common::image_repo::{image, image_repo, OS};
use ferry_core::{Clock, SystemClock};
use ferry_director::image_repo::{ImageRepoClient, ImageRepoSettings, TargetSource, Unconfigured};
use std::sync::Arc;

#[test]
fn a_new_timestamp_brings_new_targets_and_an_unchanged_one_reuses_the_trusted_set() {
    let repo = image_repo(&[image(OS, &["ivi"], "os", "2", &[], &[])]);
    let client = repo.client();
    assert_eq!(client.target(OS).unwrap(), repo.published[OS]);
    let err = client.target("apps/new.tar").unwrap_err();
    assert!(
        err.to_string()
            .contains("target apps/new.tar is not in the Image repository's signed metadata"),
        "{err}"
    );

    // Publishing moves the timestamp: the next lookup refreshes and finds the new target.
    let repo_dir = repo.dir.path().join("repo");
    let mut editor = ferry_image_repo::Repository::open(&repo_dir, SystemClock.now()).unwrap();
    let file = repo.dir.path().join("new.tar");
    std::fs::write(&file, b"new app").unwrap();
    let (_, new) = editor
        .add_target(
            &file,
            &image("apps/new.tar", &["ivi"], "app", "1", &[], &[]),
            &mut |_| {},
        )
        .unwrap();
    editor.publish().unwrap();
    assert_eq!(client.target("apps/new.tar").unwrap(), new);

    // With the timestamp unchanged the verified set is reused, bins included: bytes changed
    // behind an unchanged timestamp are not even read again.
    repo.tamper_targets(|doc| doc["signed"]["targets"] = serde_json::json!({}));
    assert_eq!(client.target(OS).unwrap(), repo.published[OS]);
    // A fresh client reads them, and refuses them.
    let fresh = repo.client();
    let err = fresh.target(OS).unwrap_err();
    assert!(
        err.to_string().contains("signature threshold check failed"),
        "{err}"
    );
}

#[test]
fn metadata_above_the_size_caps_is_refused() {
    let repo = image_repo(&[image(OS, &["ivi"], "os", "2", &[], &[])]);
    let mut settings = ImageRepoSettings::with_root(&repo.url, repo.root.clone());
    settings.limits.timestamp_max = 64;
    let err = ImageRepoClient::new(settings, Arc::new(SystemClock))
        .unwrap()
        .target(OS)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("image repository check failed"), "{text}");
    assert!(text.contains("timestamp.json"), "{text}");
    assert!(text.contains("larger than the 64 bytes allowed"), "{text}");
}

#[test]
fn an_unreachable_repository_and_a_missing_one_name_the_check() {
    let repo = image_repo(&[]);
    let url = repo.url.clone();
    let root = repo.root.clone();
    drop(repo);
    let err = ImageRepoClient::new(
        ImageRepoSettings::with_root(&url, root),
        Arc::new(SystemClock),
    )
    .unwrap()
    .target(OS)
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("image repository check failed: fetching"),
        "{err}"
    );

    let err = Unconfigured.target(OS).unwrap_err();
    assert!(
        err.to_string()
            .contains("no Image repository is configured"),
        "{err}"
    );
    let err =
        ImageRepoSettings::new(&url, std::path::Path::new("/nonexistent/root.json")).unwrap_err();
    assert!(
        err.to_string().contains("cannot read the pinned root"),
        "{err}"
    );
}
