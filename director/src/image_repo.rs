//! The Director's view of the Image repository: assignments copy a target's length, hashes and
//! custom metadata from the Image repository's *verified* signed metadata, never from the
//! admin's request (Uptane: the Director only names images the Image repository published).
//!
//! [`ImageRepoClient`] runs ferry-core's TUF client workflow ([`Workflow`]) against the
//! repository's `metadata/` over HTTP, from a root the operator pinned, and resolves delegations
//! per target on demand (hashed bins cost one bin per lookup). What it trusts stays in memory:
//! the latest root, the kept bytes of each role, and the trusted set itself, reused as long as
//! the repository's timestamp is unchanged and nothing in it has expired. A restart starts
//! again from the pinned root and walks any rotations since.
//!
//! Lookups block on the network: call them from `spawn_blocking`. They are serialised by one
//! mutex held across their requests (the kept state must move as one), so a stalled
//! repository delays other lookups by up to the request timeout per request.

use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use ferry_core::metadata::{Role, TargetFile};
use ferry_core::refresh::{Limits, MetadataFile, MetadataSource, Workflow};
use ferry_core::{Clock, TargetName, TimestampUpdate, TrustedSet};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Where assignments get their targets.
pub trait TargetSource: Send + Sync + std::fmt::Debug {
    /// `name` as the Image repository signed it: length, hashes and custom metadata.
    fn target(&self, name: &str) -> Result<TargetFile>;

    /// Several targets, in the order named (a source may share one refresh between them).
    fn targets(&self, names: &[&str]) -> Result<Vec<TargetFile>> {
        names.iter().map(|name| self.target(name)).collect()
    }
}

/// The [`TargetSource`] of a Director with no Image repository configured: every lookup is
/// refused, naming the missing configuration, so assignments fail closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconfigured;

impl TargetSource for Unconfigured {
    fn target(&self, name: &str) -> Result<TargetFile> {
        Err(Error::ImageRepoConfig {
            reason: format!("no Image repository is configured, so target {name} cannot be looked up; expected an [image_repo] section with its url and pinned root"),
        })
    }
}

/// How to reach and trust the Image repository.
#[derive(Debug, Clone)]
pub struct ImageRepoSettings {
    /// Base URL of the repository, serving `metadata/` and `targets/` under it (as
    /// `ferry repo serve` does): `http://HOST:PORT`. Only `metadata/` is read.
    pub url: String,
    /// The repository's root.json as the operator was given it: the trust anchor.
    pub pinned_root: Vec<u8>,
    /// Size caps per role (the lengths signed in timestamp and snapshot apply where given).
    pub limits: Limits,
    /// Longest a single request may take, from connecting to the last byte.
    pub request_timeout: Duration,
}

impl ImageRepoSettings {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The repository at `url`, trusted from the root.json at `root_path`; default limits and
    /// timeout.
    pub fn new(url: impl Into<String>, root_path: &Path) -> Result<Self> {
        let pinned_root = std::fs::read(root_path).map_err(|e| Error::ImageRepoConfig {
            reason: format!(
                "cannot read the pinned root {}: {e}; expected the Image repository's root.json",
                root_path.display()
            ),
        })?;
        Ok(Self::with_root(url, pinned_root))
    }

    /// The repository at `url`, trusted from `pinned_root`'s bytes; default limits and timeout.
    pub fn with_root(url: impl Into<String>, pinned_root: Vec<u8>) -> Self {
        ImageRepoSettings {
            url: url.into(),
            pinned_root,
            limits: Limits::default(),
            request_timeout: Self::DEFAULT_TIMEOUT,
        }
    }
}

/// A [`TargetSource`] reading a TUF Image repository over HTTP.
#[derive(Debug)]
pub struct ImageRepoClient {
    metadata_url: String,
    limits: Limits,
    timeout: Duration,
    /// Expiry is judged against this clock's time at each lookup.
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Built on first use: reqwest's blocking client may not be built on an async worker.
    http: Option<reqwest::blocking::Client>,
    /// Bytes of each role as last accepted ("root" is the latest trusted root).
    kept: HashMap<String, Vec<u8>>,
    /// The trusted set of the last lookup, with the delegations it loaded.
    trusted: Option<TrustedSet>,
}

impl ImageRepoClient {
    /// Checks the pinned root (signed by its own threshold) without touching the network.
    /// Expiries are judged by `clock`.
    pub fn new(config: ImageRepoSettings, clock: Arc<dyn Clock>) -> Result<Self> {
        TrustedSet::new(&config.pinned_root, clock.now()).map_err(|e| Error::ImageRepoConfig {
            reason: format!("the pinned root does not verify: {e}; expected the Image repository's root.json, signed by its root keys"),
        })?;
        let base = config.url.trim_end_matches('/');
        let state = State {
            kept: [("root".to_owned(), config.pinned_root)].into(),
            ..State::default()
        };
        Ok(ImageRepoClient {
            metadata_url: format!("{base}/metadata/"),
            limits: config.limits,
            timeout: config.request_timeout,
            clock,
            state: Mutex::new(state),
        })
    }

    fn lookup(&self, names: &[&str]) -> Result<Vec<TargetFile>> {
        for name in names {
            TargetName::new(*name).map_err(|e| Error::InvalidAssignment {
                reason: format!("{e}; expected an Image repository target path"),
            })?;
        }
        // A panic mid-lookup leaves at worst kept bytes that are verified again before use.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *state;
        let http = match &state.http {
            Some(http) => http.clone(),
            None => {
                let http = reqwest::blocking::Client::builder()
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .user_agent(concat!("ferry-director/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| Error::ImageRepoConfig {
                        reason: format!("cannot build the HTTP client: {e}"),
                    })?;
                state.http = Some(http.clone());
                http
            }
        };
        let mut source = Http {
            http: &http,
            metadata_url: &self.metadata_url,
            kept: &mut state.kept,
        };
        let now = self.clock.now();
        let previous = state.trusted.take();
        let mut set = refreshed(&mut source, &self.limits, previous, now)?;
        let mut found = find_all(&mut source, &self.limits, &mut set, names);
        if set.now() != now && expires_before(&set, source.kept, now) {
            // The reused set loaded a delegation under its own, older clock and something in
            // it has expired since: judge everything again with the current time.
            let root = root_of(source.kept)?;
            set = Workflow::new(&mut source, &self.limits)
                .refresh(&root, now)
                .map_err(SourceError::into_error)?;
            found = find_all(&mut source, &self.limits, &mut set, names);
        }
        state.trusted = Some(set);
        found
    }
}

impl TargetSource for ImageRepoClient {
    fn target(&self, name: &str) -> Result<TargetFile> {
        let mut found = self.lookup(&[name])?;
        found.pop().ok_or_else(|| Error::TargetNotPublished {
            target: name.to_owned(),
        })
    }

    fn targets(&self, names: &[&str]) -> Result<Vec<TargetFile>> {
        self.lookup(names)
    }
}

/// A trusted set as of `now`: `previous` when the repository's timestamp has not moved, the
/// root has not rotated and nothing in it has expired; otherwise a fresh refresh.
fn refreshed(
    source: &mut Http<'_>,
    limits: &Limits,
    previous: Option<TrustedSet>,
    now: DateTime<Utc>,
) -> Result<TrustedSet> {
    let root = root_of(source.kept)?;
    let (mut set, update) = Workflow::new(source, limits)
        .refresh_timestamp(&root, now)
        .map_err(SourceError::into_error)?;
    if let Some(previous) = previous {
        if update == TimestampUpdate::Unchanged
            && previous.root().version == set.root().version
            && !expires_before(&previous, source.kept, now)
        {
            return Ok(previous);
        }
    }
    Workflow::new(source, limits)
        .refresh_snapshot_and_targets(&mut set)
        .map_err(SourceError::into_error)?;
    Ok(set)
}

fn find_all(
    source: &mut Http<'_>,
    limits: &Limits,
    set: &mut TrustedSet,
    names: &[&str],
) -> Result<Vec<TargetFile>> {
    let mut workflow = Workflow::new(source, limits);
    names
        .iter()
        .map(|name| {
            workflow
                .find_target(set, name)
                .map_err(SourceError::into_error)?
                .map(|found| found.target)
                .ok_or_else(|| Error::TargetNotPublished {
                    target: (*name).to_owned(),
                })
        })
        .collect()
}

fn root_of(kept: &HashMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    kept.get("root")
        .cloned()
        .ok_or_else(|| Error::ImageRepoConfig {
            reason: "no trusted root is kept; expected the pinned root".into(),
        })
}

/// Whether any role of `set` (root, timestamp, snapshot, every targets role it loaded) has
/// expired at `now`. Every loaded targets role has kept bytes, so `kept` names them all.
fn expires_before(set: &TrustedSet, kept: &HashMap<String, Vec<u8>>, now: DateTime<Utc>) -> bool {
    set.root().is_expired(now)
        || set.timestamp().is_some_and(|t| t.is_expired(now))
        || set.snapshot().is_some_and(|s| s.is_expired(now))
        || kept
            .keys()
            .filter_map(|role| set.targets(role))
            .any(|t| t.is_expired(now))
}

/// The workflow's transport: HTTP GETs under `metadata/`, kept bytes in memory.
struct Http<'a> {
    http: &'a reqwest::blocking::Client,
    metadata_url: &'a str,
    kept: &'a mut HashMap<String, Vec<u8>>,
}

/// What the transport can fail with, before it becomes a Director [`Error`].
#[derive(Debug)]
enum SourceError {
    Metadata(ferry_core::Error),
    Status { url: String, status: u16 },
    Fetch { url: String, reason: String },
}

impl From<ferry_core::Error> for SourceError {
    fn from(e: ferry_core::Error) -> Self {
        SourceError::Metadata(e)
    }
}

impl SourceError {
    fn into_error(self) -> Error {
        match self {
            SourceError::Metadata(source) => Error::ImageRepoMetadata { source },
            SourceError::Status { url, status } => Error::ImageRepoFetch {
                url,
                reason: format!("HTTP status {status}"),
            },
            SourceError::Fetch { url, reason } => Error::ImageRepoFetch { url, reason },
        }
    }
}

impl MetadataSource for Http<'_> {
    type Error = SourceError;

    fn fetch(
        &mut self,
        file: MetadataFile<'_>,
        max_len: u64,
    ) -> std::result::Result<Vec<u8>, SourceError> {
        let url = format!("{}{}", self.metadata_url, file.file_name());
        let fail = |reason: String| SourceError::Fetch {
            url: url.clone(),
            reason,
        };
        let response = self
            .http
            .get(&url)
            .send()
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SourceError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let too_large = || fail(format!("larger than the {max_len} bytes allowed"));
        if response.content_length().is_some_and(|len| len > max_len) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        response
            .take(max_len.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| fail(e.to_string()))?;
        if body.len() as u64 > max_len {
            return Err(too_large());
        }
        Ok(body)
    }

    fn is_not_found(error: &SourceError) -> bool {
        matches!(
            error,
            SourceError::Status {
                status: 403 | 404,
                ..
            }
        )
    }

    fn load(&mut self, role: &str) -> std::result::Result<Option<Vec<u8>>, SourceError> {
        Ok(self.kept.get(role).cloned())
    }

    fn persist(&mut self, role: &str, bytes: &[u8]) -> std::result::Result<(), SourceError> {
        if role == "root" {
            tracing::info!("image repository root rotated");
        }
        self.kept.insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn remove(&mut self, role: &str) -> std::result::Result<(), SourceError> {
        self.kept.remove(role);
        Ok(())
    }
}
