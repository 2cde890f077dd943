//! How a Director [`Error`] becomes an HTTP response: a status from who is at fault
//! ([`Error::fault`]) and the check that failed, and a plain-text body naming that check.
//! Storage and signing failures are ours: they are logged in full and answered with a generic
//! 500 so no internals (paths, SQL, key problems) reach the caller.

use crate::error::{Error, Fault};
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// An HTTP refusal: a status and a plain-text message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A failure on our side: `detail` goes to the log, never to the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "director request failed on the server side");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the Director could not complete the request; the detail is in its log",
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match (&e, e.fault()) {
            // Logged in full (the detail names the server); the caller is told which check
            // failed and to come back.
            (Error::DatabaseUnavailable { .. }, _) => {
                tracing::error!(error = %e, "director database unavailable");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database check failed: the Director's database is unavailable; expected it back shortly: retry later",
                );
            }
            (_, Fault::Storage) | (Error::Signing(_), _) | (Error::SchemaTooNew { .. }, _) => {
                return ApiError::internal(&e)
            }
            (Error::NonceReused { .. }, _) => StatusCode::CONFLICT,
            (_, Fault::Device) => StatusCode::BAD_REQUEST,
            (
                Error::UnknownVehicle { .. }
                | Error::UnknownEcu { .. }
                | Error::UnknownAssignment { .. }
                | Error::UnknownAdminToken { .. }
                | Error::NoSuchBundle { .. }
                | Error::UnknownRelay { .. },
                _,
            ) => StatusCode::NOT_FOUND,
            (
                Error::VehicleExists { .. }
                | Error::SerialTaken { .. }
                | Error::AssignmentExists { .. }
                | Error::VehicleRemoved { .. }
                | Error::OfflineVersion { .. }
                | Error::ReceiptRecorded { .. }
                | Error::RelayExists { .. },
                _,
            ) => StatusCode::CONFLICT,
            (Error::HardwareMismatch { .. } | Error::Depends { .. }, _) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            (_, Fault::Operator) => StatusCode::BAD_REQUEST,
        };
        if status.is_client_error() {
            tracing::info!(status = status.as_u16(), error = %e, "director request refused");
        }
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.message.clone(),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if matches!(
            self.status,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT
        ) {
            // The body was not read to its end: this connection cannot carry another request,
            // and saying so keeps a client from reusing it (and failing mid-request).
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        if matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            response.extensions_mut().insert(Refused(self.message));
        }
        response
    }
}

/// The check an authentication refusal named, for [`log_refusal`].
#[derive(Debug, Clone)]
struct Refused(String);

/// Log every 401 and 403 at warn with the caller's address, the route and the check that
/// failed. The refusal message names the check and never the credential.
pub(super) async fn log_refusal(request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| p.to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(Refused(check)) = response.extensions().get::<Refused>() {
        let peer = peer.as_deref().unwrap_or("unknown");
        tracing::warn!(
            %peer,
            %method,
            %path,
            status = response.status().as_u16(),
            %check,
            "request refused: authentication"
        );
    }
    response
}
