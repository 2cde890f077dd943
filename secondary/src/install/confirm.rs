//! `confirm = "app"`: the application lifecycle of Mbed Linux OS (verify, stop the old, start
//! the new, the application confirms, delete the old image). The container and app domains
//! commit a verified install only once the application confirms it, through `ferry-secondary
//! confirm DOMAIN NAME` (which journals `confirmed` in `state.db`; the daemon polls it), within
//! `confirm_timeout_secs` of the new version starting; otherwise the daemon rolls it back.
//! An application that cannot run the binary (a container, say) confirms with a local HTTP
//! call instead: `[confirm_api]` ([`ConfirmApiSettings`], served by
//! [`crate::http::confirm_api`]), the same check and the same journal entry.

use serde::Deserialize;
use std::time::Duration;

/// The default confirmation window: five minutes.
pub const DEFAULT_TIMEOUT_SECS: u64 = 300;

/// What commits a verified install.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfirmMode {
    /// The health check (if any) passing: commit at once.
    #[default]
    Health,
    /// The application confirming, within the window.
    App,
}

/// `[app]` in secondary.toml: the app domain's confirmation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSettings {
    /// `"app"`: commit only once the application confirms (default `"health"`).
    #[serde(default)]
    pub confirm: ConfirmMode,
    /// Seconds the application has to confirm; default 300.
    #[serde(default)]
    pub confirm_timeout_secs: Option<u64>,
    /// Replaced versions of each app kept after a commit (under `.<name>.kept/` in
    /// `apps_dir`); default 1, as the container domain.
    #[serde(default)]
    pub keep_previous: Option<usize>,
}

/// `[confirm_api]` in secondary.toml: where applications confirm over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmApiSettings {
    /// A loopback address (`127.0.0.1:9302`, `[::1]:9302`): the call is the application's on
    /// this host, never the network's.
    pub listen: std::net::SocketAddr,
    /// The bearer token a call must present: a file only its owner may read (0600; give it
    /// to the application's user with chown). Created with a fresh random token if absent.
    pub token_file: std::path::PathBuf,
}

impl ConfirmApiSettings {
    /// Why the settings are unusable, if they are.
    pub fn problem(&self) -> Option<&'static str> {
        (!self.listen.ip().is_loopback())
            .then_some("[confirm_api] listen must be a loopback address (127.0.0.1 or ::1)")
    }
}

/// The confirmation window of `mode`: none unless `App`.
pub fn window(mode: ConfirmMode, secs: Option<u64>) -> Option<Duration> {
    (mode == ConfirmMode::App).then(|| Duration::from_secs(secs.unwrap_or(DEFAULT_TIMEOUT_SECS)))
}

/// The name `ferry-secondary confirm` gives an install: the target's `custom.name`, else its
/// file name up to the first dot (the container and app installers' own rule).
pub fn job_name(target: &str, custom_name: Option<&str>) -> String {
    match custom_name {
        Some(name) => name.to_owned(),
        None => {
            let file = target.rsplit('/').next().unwrap_or(target);
            file.split('.').next().unwrap_or(file).to_owned()
        }
    }
}
