//! The route handlers. Each takes the time from the state's clock once, at the edge, and runs
//! the ECU's (blocking) work on tokio's blocking pool with the ECU locked; an image streams in
//! without the lock held, so status and report answer during a long upload.

use super::errors::{join_failed, poisoned, ApiError};
use super::{AppState, HandlerState};
use crate::ecu::{Ecu, Installed, Sender};
use crate::error::{Error, Result};
use crate::image;
use crate::wire::{ImageReceived, MetadataAccepted};
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use ferry_core::Clock;
use futures_util::TryStreamExt;
use serde::Deserialize;
use std::net::SocketAddr;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// The longest nonce accepted: the Primary's nonces are short random strings.
const MAX_NONCE: usize = 256;

async fn with_ecu<T, F>(state: &AppState, f: F) -> std::result::Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Ecu, DateTime<Utc>) -> Result<T> + Send + 'static,
{
    let ecu = state.ecu.clone();
    let now = state.clock.now();
    let task = tokio::task::spawn_blocking(move || {
        let mut guard = ecu.lock().map_err(|_| poisoned())?;
        f(&mut guard, now).map_err(ApiError::from)
    });
    match task.await {
        Ok(result) => result,
        Err(e) => Err(join_failed(e)),
    }
}

fn respond<T: serde::Serialize>(result: std::result::Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn info(State(state): State<AppState>) -> Response {
    respond(with_ecu(&state, |ecu, _| Ok(ecu.info())).await)
}

pub async fn status(State(state): State<AppState>) -> Response {
    respond(with_ecu(&state, |ecu, _| ecu.status()).await)
}

pub async fn metadata(
    State(routes): State<HandlerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    let state = routes.app;
    let body =
        match ferry_http::read_body(body, routes.max_metadata_bytes, "a metadata bundle").await {
            Ok(body) => body,
            Err(refusal) => return refusal.into_response(),
        };
    respond(
        with_ecu(&state, move |ecu, now| {
            let peer = peer.to_string();
            let pending = ecu.receive_metadata_from(
                Sender::Network {
                    peer: &peer,
                    at: now,
                },
                &body,
                now,
            )?;
            Ok(match pending {
                Some(a) => MetadataAccepted {
                    target: Some(a.target_name().to_owned()),
                    length: Some(a.target().length),
                    hashes: Some(a.target().hashes.clone()),
                },
                None => MetadataAccepted::default(),
            })
        })
        .await,
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

pub async fn image(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let peer = peer.to_string();
    let ticket = match with_ecu(&state, |ecu, _| ecu.image_ticket()).await {
        Ok(ticket) => ticket,
        Err(e) => return e.into_response(),
    };
    let limit = ticket.assignment.target().length;
    if content_length(&headers).is_some_and(|len| len > limit) {
        // Announced longer than signed: refused before one byte is read.
        let refusal = Err(Error::EndlessData {
            target: ticket.assignment.target_name().to_owned(),
            limit,
        });
        let t = ticket.clone();
        return respond(
            with_ecu(&state, move |ecu, now| {
                ecu.accept_image(
                    Sender::Network {
                        peer: &peer,
                        at: now,
                    },
                    &t,
                    refusal,
                )
            })
            .await,
        );
    }
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let t = ticket.clone();
    let received = tokio::task::spawn_blocking(move || {
        let mut sync = SyncIoBridge::new(reader);
        image::receive(&mut sync, &t.staging_dir, &t.assignment)
    })
    .await;
    let received = match received {
        Ok(received) => received,
        Err(e) => return join_failed(e).into_response(),
    };
    let name = ticket.assignment.target_name().to_owned();
    respond(
        with_ecu(&state, move |ecu, now| {
            ecu.accept_image(
                Sender::Network {
                    peer: &peer,
                    at: now,
                },
                &ticket,
                received,
            )
        })
        .await
        .map(|()| ImageReceived {
            target: name,
            ready: true,
        }),
    )
}

/// 200 with the installed image, or 202 `{"target", "rebootPending": true}` when a real
/// reboot finishes the install (`{"target", "confirmPending": true}` when the application's
/// confirmation does): the outcome is in `/status` once nothing is in flight.
pub async fn install(State(state): State<AppState>) -> Response {
    match with_ecu(&state, |ecu, now| ecu.install(now)).await {
        Ok(installed @ (Installed::RebootPending { .. } | Installed::ConfirmPending { .. })) => {
            (StatusCode::ACCEPTED, Json(installed)).into_response()
        }
        other => respond(other),
    }
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    nonce: Option<String>,
}

pub async fn report(State(state): State<AppState>, Query(q): Query<ReportQuery>) -> Response {
    let nonce = match q.nonce {
        Some(n) if !n.is_empty() && n.len() <= MAX_NONCE => n,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("nonce check failed: ?nonce= must be 1 to {MAX_NONCE} characters\n"),
            )
                .into_response()
        }
    };
    respond(with_ecu(&state, move |ecu, now| ecu.report(&nonce, now)).await)
}
