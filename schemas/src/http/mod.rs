//! The Confluent Schema Registry REST API as an axum [`Router`]
//! ([`router`]). The broker serves it on `--registry-addr`.
//!
//! Request bodies are read as JSON whatever their content type (clients send
//! `application/vnd.schemaregistry.v1+json`, `application/vnd.schemaregistry+json`,
//! `application/json` or `application/octet-stream`), up to
//! [`MAX_BODY_BYTES`]; larger bodies get 413. Answers are
//! `application/vnd.schemaregistry.v1+json`; errors are
//! `{"error_code": N, "message": "..."}` (see `error`).

mod error;
mod routes;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub use error::{ApiError, status_and_code};

use crate::registry::Registry;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The content type of every answer.
pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The REST API over `registry`.
///
/// Routes: `GET /`, `GET /subjects`, `GET|POST /subjects/{s}/versions`,
/// `GET|DELETE /subjects/{s}/versions/{v}` (+ `/schema`, `/referencedby`),
/// `POST|DELETE /subjects/{s}`, `GET /schemas/ids/{id}` (+ `/schema`,
/// `/versions`, `/subjects`), `GET /schemas/types`, `GET|PUT|DELETE
/// /config[/{s}]`, `POST /compatibility/subjects/{s}/versions[/{v}]`,
/// `GET|PUT|DELETE /mode[/{s}]`, `GET /contexts`, `GET /associations/...`
/// (always 404: Floe keeps no associations).
pub fn router(registry: Arc<Registry>) -> Router {
    routes::router(registry)
}

/// A JSON answer with the registry content type.
pub(crate) fn reply(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests;
