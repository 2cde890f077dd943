//! The two repositories as the Primary reaches them: a TUF [`Updater`] each (the Director's
//! per-vehicle metadata with the vehicle's credentials; the Image repository's `metadata/`),
//! and the metadata bundle a Secondary verifies, made of the exact bytes the Primary verified.

use crate::config::{check_private_mode, Config};
use crate::error::{io_at, Error, Result};
use crate::fetch::HttpFetcher;
use crate::store::MetadataStore;
use crate::updater::{init_trusted_root, versioned_root, Updater};
use chrono::{DateTime, Utc};
use ferry_secondary::{Bundle, RepoBundle};
use std::path::Path;

/// The Director's metadata base for this vehicle.
pub fn director_metadata_url(config: &Config) -> String {
    format!(
        "{}/api/v1/vehicles/{}/metadata/",
        config.director.url.trim_end_matches('/'),
        config.vin
    )
}

/// The Director's manifest URL for this vehicle.
pub fn director_manifest_url(config: &Config) -> String {
    format!(
        "{}/api/v1/vehicles/{}/manifest",
        config.director.url.trim_end_matches('/'),
        config.vin
    )
}

pub fn image_targets_url(config: &Config) -> String {
    format!("{}/targets/", config.image_repo.url.trim_end_matches('/'))
}

/// An HTTP client that authenticates this vehicle to the Director: mutual TLS with the device
/// certificate, or the device token as a bearer on plain HTTP.
pub fn director_client(config: &Config) -> Result<reqwest::blocking::Client> {
    let policy = config.fetch_policy();
    let mut builder = HttpFetcher::client_builder(&policy);
    let d = &config.director;
    let read = |p: &Path| std::fs::read(p).map_err(io_at(p));
    if let (Some(cert), Some(key)) = (&d.cert, &d.key) {
        check_private_mode(key)?;
        let mut pem = read(cert)?;
        pem.extend(read(key)?);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| Error::Config(format!("[director] cert/key: {e}")))?;
        builder = builder.identity(identity);
        if let Some(ca) = &d.ca_cert {
            let ca = reqwest::Certificate::from_pem(&read(ca)?)
                .map_err(|e| Error::Config(format!("[director] ca_cert: {e}")))?;
            builder = builder.add_root_certificate(ca);
        }
    } else if let Some(file) = &d.token_file {
        check_private_mode(file)?;
        let token = String::from_utf8(read(file)?)
            .map_err(|_| Error::Config(format!("{}: not UTF-8", file.display())))?;
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| Error::Config(format!("{}: not a valid token", file.display())))?;
        value.set_sensitive(true);
        let headers =
            reqwest::header::HeaderMap::from_iter([(reqwest::header::AUTHORIZATION, value)]);
        builder = builder.default_headers(headers);
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("HTTP client for the Director: {e}")))
}

/// Start a store from the pinned root the first time; afterwards the store's root is newer.
pub(crate) fn ensure_root(store: &MetadataStore, pinned: &Path) -> Result<()> {
    if store.load("root")?.is_none() {
        let bytes = std::fs::read(pinned).map_err(io_at(pinned))?;
        init_trusted_root(store, &bytes)?;
    }
    Ok(())
}

pub fn director_updater(config: &Config, now: DateTime<Utc>) -> Result<Updater<HttpFetcher>> {
    let store = MetadataStore::new(config.director_store());
    ensure_root(&store, &config.director.root)?;
    let fetcher = HttpFetcher::with_client(director_client(config)?, config.fetch_policy());
    Ok(Updater::new(fetcher, store, &director_metadata_url(config), now).keeping_root_chain())
}

pub fn image_updater(config: &Config, now: DateTime<Utc>) -> Result<Updater<HttpFetcher>> {
    let store = MetadataStore::new(config.image_store());
    ensure_root(&store, &config.image_repo.root)?;
    let fetcher = HttpFetcher::new(config.fetch_policy())?;
    let url = format!("{}/metadata/", config.image_repo.url.trim_end_matches('/'));
    Ok(Updater::new(fetcher, store, &url, now).keeping_root_chain())
}

fn text(store: &MetadataStore, role: &str) -> Result<Option<String>> {
    match store.load(role)? {
        None => Ok(None),
        Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            ferry_core::Error::Malformed {
                role: role.to_owned(),
                reason: "metadata is not UTF-8".into(),
            }
            .into()
        }),
    }
}

/// One repository's part of a bundle, from what `updater` verified: every root newer than
/// version 1 it kept, timestamp, snapshot, top-level targets and each delegated role it used.
pub fn repo_bundle(updater: &Updater<HttpFetcher>) -> Result<RepoBundle> {
    let store = updater.store();
    let latest = updater
        .trusted()
        .ok_or(ferry_core::Error::Order("bundle before refresh"))?
        .root()
        .version;
    let mut root = Vec::new();
    for version in 2..=latest {
        if let Some(t) = text(store, &versioned_root(version))? {
            root.push(t);
        }
    }
    let targets = text(store, "targets")?.ok_or_else(|| ferry_core::Error::NotInSnapshot {
        role: "targets".into(),
    })?;
    let mut delegations = std::collections::BTreeMap::new();
    for role in updater.used_roles().iter().filter(|r| *r != "targets") {
        if let Some(t) = text(store, role)? {
            delegations.insert(role.clone(), t);
        }
    }
    Ok(RepoBundle {
        root,
        timestamp: text(store, "timestamp")?,
        snapshot: text(store, "snapshot")?,
        targets,
        delegations,
    })
}

/// The bundle every ECU of the cycle receives (a partial-verification ECU reads only the
/// Director's targets).
pub fn bundle(director: &Updater<HttpFetcher>, image: &Updater<HttpFetcher>) -> Result<Vec<u8>> {
    let bundle = Bundle {
        director: repo_bundle(director)?,
        image: Some(repo_bundle(image)?),
        offline: None,
    };
    serde_json::to_vec(&bundle).map_err(|e| {
        ferry_core::Error::Malformed {
            role: "metadata bundle".into(),
            reason: e.to_string(),
        }
        .into()
    })
}
