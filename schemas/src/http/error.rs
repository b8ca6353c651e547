//! The one place where registry errors become Confluent error bodies:
//! `{"error_code": N, "message": "..."}` with the matching HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::reply;
use crate::error::RegistryError;

/// An error answer of the REST API.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Confluent's `error_code`.
    pub code: u32,
    /// The `message`.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// Confluent's HTTP status and `error_code` for `error`.
pub fn status_and_code(error: &RegistryError) -> (StatusCode, u32) {
    use RegistryError::*;
    match error {
        SubjectNotFound { .. } => (StatusCode::NOT_FOUND, 40401),
        VersionNotFound { .. } => (StatusCode::NOT_FOUND, 40402),
        SchemaNotFound { .. } => (StatusCode::NOT_FOUND, 40403),
        SubjectSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40404),
        SubjectNotSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40405),
        VersionSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40406),
        VersionNotSoftDeleted { .. } => (StatusCode::NOT_FOUND, 40407),
        SubjectConfigNotFound { .. } => (StatusCode::NOT_FOUND, 40408),
        SubjectModeNotFound { .. } => (StatusCode::NOT_FOUND, 40409),
        InvalidSchema { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42201),
        InvalidVersion { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42202),
        InvalidCompatibilityLevel { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42203),
        InvalidMode { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42204),
        OperationNotPermitted { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42205),
        ReferenceExists { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 42206),
        Incompatible { .. } => (StatusCode::CONFLICT, 409),
        InvalidRequest { .. } => (StatusCode::UNPROCESSABLE_ENTITY, 422),
        Store { .. } | Inconsistent { .. } => (StatusCode::INTERNAL_SERVER_ERROR, 50001),
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> ApiError {
        let (status, code) = status_and_code(&error);
        if status.is_server_error() {
            tracing::error!(error = %error, source = ?std::error::Error::source(&error), "schema registry request failed");
        }
        ApiError::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        reply(
            self.status,
            &serde_json::json!({"error_code": self.code, "message": self.message}),
        )
    }
}
