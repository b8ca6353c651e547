//! ApiVersions (key 18): the APIs and versions this broker serves.

use protocol::api_versions_request::ApiVersionsRequest;
use protocol::api_versions_response::{ApiVersion, ApiVersionsResponse};
use protocol::{ApiKey, RequestHeader};

use super::{Call, Outcome};
use crate::error_code;

fn supported() -> Vec<ApiVersion> {
    ApiKey::ALL
        .iter()
        .map(|api| {
            let (min, max) = api.versions();
            ApiVersion {
                api_key: *api as i16,
                min_version: min,
                max_version: max,
            }
        })
        .collect()
}

pub fn handle(_call: &Call<'_>, _req: ApiVersionsRequest) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: error_code::NONE,
        api_keys: supported(),
        ..Default::default()
    }
}

/// The answer to an ApiVersions request at a version above ours: a v0 body
/// with UNSUPPORTED_VERSION and our ranges, so the client retries lower.
pub fn unsupported(header: &RequestHeader) -> Outcome {
    let body = ApiVersionsResponse {
        error_code: error_code::UNSUPPORTED_VERSION,
        api_keys: supported(),
        ..Default::default()
    };
    match protocol::header::encode_response_chunks(header.correlation_id, 0, &body) {
        Ok(chunks) => Outcome::Respond(chunks),
        Err(e) => Outcome::Close(format!("cannot encode ApiVersions response: {e}")),
    }
}
