//! A published Image repository served over HTTP on 127.0.0.1 by ferry-image-repo's own
//! static server, for tests that must read real signed metadata; and the catalogue the API
//! tests assign from.
#![allow(dead_code, clippy::unwrap_used)]

use super::server::runtime;
use ferry_core::metadata::TargetFile;
use ferry_core::{Clock, SystemClock};
use ferry_director::image_repo::{ImageRepoClient, ImageRepoSettings, TargetSource};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const OS: &str = "os/rootfs-2.img";
pub const NAV: &str = "apps/nav-3.tar";
pub const ML: &str = "apps/ml.tar";
pub const TCU: &str = "tcu/fw-7.bin";

/// A published Image repository and the server serving it.
pub struct ImageRepo {
    pub dir: tempfile::TempDir,
    /// The base URL serving `metadata/` and `targets/`.
    pub url: String,
    /// `metadata/1.root.json`: what the operator pins in the Director.
    pub root: Vec<u8>,
    /// Each target as the editor signed it.
    pub published: BTreeMap<String, TargetFile>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for ImageRepo {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

/// Target options with Uptane custom fields: `hardware_ids`, `domain`, software name and
/// version, provides and depends.
pub fn image(
    name: &str,
    hardware_ids: &[&str],
    domain: &str,
    version: &str,
    provides: &[(&str, &str)],
    depends: &[(&str, &str)],
) -> ferry_image_repo::TargetOptions {
    use ferry_core::metadata::uptane::{DependsValue, Domain};
    ferry_image_repo::TargetOptions {
        name: Some(name.into()),
        hardware_ids: hardware_ids.iter().map(|h| (*h).to_owned()).collect(),
        domain: Some(Domain::parse(domain)),
        software_name: None,
        version: Some(version.into()),
        provides: provides
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        depends: depends
            .iter()
            .map(|(k, v)| ((*k).to_owned(), DependsValue::One((*v).to_owned())))
            .collect(),
        clears: None,
        release_counter: 3,
        role: None,
        // Both hashes, so the copy into the Director's targets is checked for each.
        sha512: true,
        extra: Default::default(),
    }
}

/// Publish `images` (each file's content is its name repeated) in a new repository whose
/// top-level targets delegate to 4 hashed bins, so every lookup resolves a delegation, and
/// serve it.
pub fn image_repo(images: &[ferry_image_repo::TargetOptions]) -> ImageRepo {
    let dir = tempfile::tempdir().unwrap();
    let repo_dir = dir.path().join("repo");
    let now = SystemClock.now();
    let (mut repo, _) =
        ferry_image_repo::init(&repo_dir, now, &ferry_image_repo::InitOptions::default()).unwrap();
    repo.make_bins(4, None).unwrap();
    let mut published = BTreeMap::new();
    for options in images {
        let name = options.name.clone().unwrap();
        let file = dir.path().join(name.replace('/', "_"));
        std::fs::write(&file, name.repeat(10)).unwrap();
        let (name, target) = repo.add_target(&file, options, &mut |_| {}).unwrap();
        published.insert(name, target);
    }
    repo.publish().unwrap();
    let root = std::fs::read(repo_dir.join("metadata/1.root.json")).unwrap();
    let runtime = runtime(1);
    let listener = runtime
        .block_on(ferry_image_repo::serve::bind(
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(ferry_image_repo::serve::serve(
        repo_dir,
        listener,
        Default::default(),
        std::future::pending(),
    ));
    ImageRepo {
        dir,
        url,
        root,
        published,
        runtime: Some(runtime),
    }
}

/// The Image repository most API tests assign from: an OS providing python 3.12, an app that
/// depends on it, an app whose depends nothing provides, and TCU firmware.
pub fn catalogue() -> ImageRepo {
    image_repo(&[
        image(
            OS,
            &["ivi"],
            "os",
            "2",
            &[("rootfs-image.python.version", "3.12")],
            &[],
        ),
        image(
            NAV,
            &["ivi"],
            "app",
            "3",
            &[],
            &[("rootfs-image.python.version", "3.12")],
        ),
        image(
            ML,
            &["ivi"],
            "app",
            "1",
            &[],
            &[("rootfs-image.cuda.version", "11.8")],
        ),
        image(TCU, &["tcu"], "os", "7", &[], &[]),
    ])
}

impl ImageRepo {
    /// A Director client of this repository pinning its own root.
    pub fn client(&self) -> ImageRepoClient {
        ImageRepoClient::new(
            ImageRepoSettings::with_root(&self.url, self.root.clone()),
            Arc::new(SystemClock),
        )
        .unwrap()
    }

    /// The same client, as the Director's target source.
    pub fn source(&self) -> Arc<dyn TargetSource> {
        Arc::new(self.client())
    }

    /// Rewrite every published targets role file (top-level and bins) with `edit` applied to
    /// its JSON, leaving signatures, snapshot and timestamp as they were: what an attacker
    /// with write access to the file server (but no keys) can do.
    pub fn tamper_targets(&self, edit: impl Fn(&mut serde_json::Value)) {
        let metadata = self.dir.path().join("repo/metadata");
        for entry in std::fs::read_dir(&metadata).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.ends_with(".targets.json") || name.contains(".bins-")) {
                continue;
            }
            let mut doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut doc);
            std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        }
    }
}
