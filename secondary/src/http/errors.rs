//! Refusals as HTTP answers: a status for who is at fault, the check that failed as plain text.

use crate::error::{Error, Fault};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refused or failed request.
#[derive(Debug)]
pub enum ApiError {
    /// The ECU refused or failed: the error names the check.
    Ecu(Error),
    /// The server itself failed (a task panicked, a lock was poisoned).
    Internal(&'static str),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Ecu(e)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        let ApiError::Ecu(e) = self else {
            return StatusCode::INTERNAL_SERVER_ERROR;
        };
        match (e, e.fault()) {
            (Error::EndlessData { .. }, _) | (_, Fault::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            (_, Fault::Attack) => StatusCode::UNPROCESSABLE_ENTITY,
            (_, Fault::Refused) => StatusCode::CONFLICT,
            (_, Fault::Local) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Ecu(e) => write!(f, "{e}"),
            ApiError::Internal(what) => write!(f, "internal error: {what}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, format!("{self}\n")).into_response()
    }
}

/// A blocking task that panicked or was cancelled: never the client's fault.
pub(super) fn join_failed(e: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %e, "blocking task failed");
    ApiError::Internal("the request's task did not complete")
}

/// The ECU lock was poisoned by a panic in another request.
pub(super) fn poisoned() -> ApiError {
    ApiError::Internal("ECU state lock poisoned by an earlier failure; restart the daemon")
}
