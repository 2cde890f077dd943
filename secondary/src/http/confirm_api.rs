//! `[confirm_api]`: the application's confirmation over HTTP, for an application that cannot
//! run `ferry-secondary confirm` (in a container, say). One route, on its own loopback
//! listener (never the Primary's port):
//!
//! `POST /confirm/DOMAIN/NAME[?version=V]` with `Authorization: Bearer TOKEN` (the token in
//! `token_file`) runs exactly what `ferry-secondary confirm DOMAIN NAME [--version V]` runs
//! ([`crate::ecu::confirm_install`]): 200 with the confirmed install as JSON; 401 without the
//! token; 409 naming the check when nothing of that domain, name or version waits.

use crate::config::Config;
use crate::ecu::confirm_install;
use crate::error::{Error, Result};
use crate::install::confirm::ConfirmApiSettings;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use ferry_core::Clock;
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Clone)]
struct ApiState {
    config: Arc<Config>,
    /// The token's digest: requests are compared digest to digest, so the comparison's time
    /// says nothing about the token's bytes.
    token: [u8; 32],
    clock: Arc<dyn Clock>,
}

#[derive(serde::Deserialize)]
struct VersionQuery {
    version: Option<String>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token in `settings.token_file`: read if the file exists (refused unless only its owner
/// may read it), else created with 32 random bytes (hex) and mode 0600.
pub fn load_token(settings: &ConfirmApiSettings) -> Result<String> {
    let path = &settings.token_file;
    if !path.exists() {
        use rand_core::RngCore;
        let mut bytes = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        ferry_keys::fs::write_secret(path, format!("{token}\n").as_bytes())
            .map_err(|e| Error::io(path, e))?;
        tracing::info!(path = %path.display(), "created the confirm API's token file");
        return Ok(token);
    }
    ferry_keys::check_owner_only(path).map_err(|e| Error::OsCheck {
        check: "confirm API token file",
        found: e.to_string(),
        expected: format!("{} readable by its owner only (0600)", path.display()),
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::OsCheck {
            check: "confirm API token file",
            found: format!("{} is empty", path.display()),
            expected: "a token (delete the file: the daemon writes a fresh one)".into(),
        });
    }
    Ok(token.to_owned())
}

/// The confirmation route, checking requests against `token`.
pub fn router(config: Arc<Config>, token: &str, clock: Arc<dyn Clock>) -> Router {
    let state = ApiState {
        config,
        token: digest(token),
        clock,
    };
    Router::new()
        .route("/confirm/{domain}/{name}", post(confirm))
        .with_state(state)
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn confirm(
    State(state): State<ApiState>,
    Path((domain, name)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> Response {
    if presented(&headers).map(digest) != Some(state.token) {
        tracing::warn!(%domain, %name, "confirmation without the confirm API's token refused");
        return (
            StatusCode::UNAUTHORIZED,
            "confirm token check failed: expected `Authorization: Bearer TOKEN` with the token in [confirm_api] token_file\n",
        )
            .into_response();
    }
    let now = state.clock.now();
    let config = state.config.clone();
    let done = tokio::task::spawn_blocking(move || {
        confirm_install(&config, &domain, &name, query.version.as_deref(), now)
    })
    .await;
    match done {
        Ok(Ok(confirmed)) => {
            tracing::info!(domain = %confirmed.domain, name = %confirmed.name, target = %confirmed.target, "confirmed over the confirm API");
            Json(confirmed).into_response()
        }
        Ok(Err(e @ Error::OsCheck { .. })) => {
            (StatusCode::CONFLICT, format!("{e}\n")).into_response()
        }
        Ok(Err(e)) => super::ApiError::from(e).into_response(),
        Err(e) => super::errors::join_failed(e).into_response(),
    }
}
