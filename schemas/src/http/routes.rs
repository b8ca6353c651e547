//! Route table and handlers. Each handler parses its inputs, calls one
//! registry method and shapes Confluent's answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ApiError, MAX_BODY_BYTES, reply};
use crate::error::RegistryError;
use crate::model::{CompatibilityLevel, Mode, Schema, SchemaReference, SchemaType, SubjectVersion};
use crate::registry::{Registry, SchemaRequest, VersionSpec};

type Reg = State<Arc<Registry>>;
type Params = Query<HashMap<String, String>>;
type Body = Result<Bytes, BytesRejection>;
type Answer = Result<Response, ApiError>;

pub(super) fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/subjects", get(list_subjects))
        .route("/subjects/{subject}", post(lookup).delete(delete_subject))
        .route(
            "/subjects/{subject}/versions",
            get(list_versions).post(register),
        )
        .route(
            "/subjects/{subject}/versions/{version}",
            get(get_version).delete(delete_version),
        )
        .route(
            "/subjects/{subject}/versions/{version}/schema",
            get(get_version_schema),
        )
        .route(
            "/subjects/{subject}/versions/{version}/referencedby",
            get(referenced_by),
        )
        .route("/schemas/types", get(schema_types))
        .route("/schemas/ids/{id}", get(get_schema))
        .route("/schemas/ids/{id}/schema", get(get_schema_text))
        .route("/schemas/ids/{id}/versions", get(get_schema_versions))
        .route("/schemas/ids/{id}/subjects", get(get_schema_subjects))
        .route(
            "/config",
            get(get_global_config)
                .put(put_global_config)
                .delete(delete_global_config),
        )
        .route(
            "/config/{subject}",
            get(get_subject_config)
                .put(put_subject_config)
                .delete(delete_subject_config),
        )
        .route(
            "/compatibility/subjects/{subject}/versions",
            post(check_all),
        )
        .route(
            "/compatibility/subjects/{subject}/versions/{version}",
            post(check_version),
        )
        .route(
            "/mode",
            get(get_global_mode)
                .put(put_global_mode)
                .delete(delete_global_mode),
        )
        .route(
            "/mode/{subject}",
            get(get_subject_mode)
                .put(put_subject_mode)
                .delete(delete_subject_mode),
        )
        .route("/contexts", get(contexts))
        .route("/associations", get(no_associations))
        .route("/associations/{*rest}", get(no_associations))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(registry)
}

fn ok(value: Value) -> Answer {
    Ok(reply(StatusCode::OK, &value))
}

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn parse_body<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                413,
                format!("request body larger than {MAX_BODY_BYTES} bytes"),
            )
        } else {
            ApiError::new(
                rejection.status(),
                u32::from(rejection.status().as_u16()),
                rejection.body_text(),
            )
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            400,
            format!("invalid request body: {e}"),
        )
    })
}

#[derive(Deserialize)]
struct SchemaBody {
    #[serde(default)]
    schema: Option<String>,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<SchemaReference>>,
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    version: Option<i64>,
}

fn schema_request(body: Body) -> Result<SchemaRequest, ApiError> {
    let body: SchemaBody = parse_body(body)?;
    let schema_type = match body.schema_type.as_deref() {
        None => SchemaType::Avro,
        Some(name) => SchemaType::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                42201,
                format!("Invalid schema type {name}"),
            )
        })?,
    };
    let schema = body
        .schema
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ApiError::from(RegistryError::InvalidSchema {
                schema_type,
                message: "empty schema".to_owned(),
            })
        })?;
    let id = match body.id {
        None | Some(-1) | Some(0) => None,
        Some(id) => Some(
            u32::try_from(id)
                .ok()
                .filter(|&id| id <= i32::MAX as u32)
                .ok_or_else(|| {
                    ApiError::from(RegistryError::InvalidRequest {
                        message: format!("invalid schema id {id}"),
                    })
                })?,
        ),
    };
    let version = match body.version {
        None | Some(-1) | Some(0) => None,
        Some(v) => Some(i32::try_from(v).ok().filter(|&v| v >= 1).ok_or_else(|| {
            ApiError::from(RegistryError::InvalidVersion {
                version: v.to_string(),
            })
        })?),
    };
    Ok(SchemaRequest {
        schema,
        schema_type,
        references: body.references.unwrap_or_default(),
        id,
        version,
    })
}

fn schema_fields(map: &mut serde_json::Map<String, Value>, schema: &Schema, text: String) {
    if !schema.schema_type.is_avro() {
        map.insert("schemaType".into(), json!(schema.schema_type.as_str()));
    }
    if !schema.references.is_empty() {
        map.insert("references".into(), json!(schema.references));
    }
    map.insert("schema".into(), Value::String(text));
}

fn version_json(
    registry: &Registry,
    version: &SubjectVersion,
    format: Option<&str>,
) -> Result<Value, ApiError> {
    let text = registry.render(version.id, &version.schema, format)?;
    let mut map = serde_json::Map::new();
    map.insert("subject".into(), json!(version.subject));
    map.insert("version".into(), json!(version.version));
    map.insert("id".into(), json!(version.id));
    schema_fields(&mut map, &version.schema, text);
    if version.deleted {
        map.insert("deleted".into(), json!(true));
    }
    Ok(Value::Object(map))
}

fn parse_id(id: &str) -> Result<u32, ApiError> {
    id.parse::<u32>().map_err(|_| {
        ApiError::from(RegistryError::SchemaNotFound {
            what: format!("'{id}'"),
        })
    })
}

async fn root() -> Answer {
    ok(json!({}))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, 404, "HTTP 404 Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        405,
        "HTTP 405 Method Not Allowed",
    )
}

async fn no_associations() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, 40401, "No associations found")
}

async fn contexts() -> Answer {
    ok(json!(["."]))
}

async fn schema_types() -> Answer {
    ok(json!(["JSON", "PROTOBUF", "AVRO"]))
}

async fn list_subjects(State(r): Reg, Query(q): Params) -> Answer {
    let prefix = q
        .get("subjectPrefix")
        .map(String::as_str)
        .filter(|p| !p.is_empty() && *p != ":*:");
    ok(json!(r.subjects(flag(&q, "deleted"), prefix)))
}

async fn list_versions(State(r): Reg, Path(subject): Path<String>, Query(q): Params) -> Answer {
    ok(json!(r.versions(&subject, flag(&q, "deleted"))?))
}

async fn register(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Body,
) -> Answer {
    let request = schema_request(body)?;
    let registered = r.register(&subject, request, flag(&q, "normalize")).await?;
    ok(json!({"id": registered.id}))
}

async fn lookup(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Body,
) -> Answer {
    let request = schema_request(body)?;
    let found = r.lookup(
        &subject,
        &request,
        flag(&q, "normalize"),
        flag(&q, "deleted"),
    )?;
    ok(version_json(
        &r,
        &found,
        q.get("format").map(String::as_str),
    )?)
}

async fn get_version(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Answer {
    let found = r.version(&subject, VersionSpec::parse(&version)?, flag(&q, "deleted"))?;
    ok(version_json(
        &r,
        &found,
        q.get("format").map(String::as_str),
    )?)
}

async fn get_version_schema(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Answer {
    let found = r.version(&subject, VersionSpec::parse(&version)?, flag(&q, "deleted"))?;
    let text = r.render(found.id, &found.schema, q.get("format").map(String::as_str))?;
    Ok(raw(text))
}

/// The raw schema text (Confluent answers `/schema` endpoints with the
/// schema itself, not a JSON string).
fn raw(text: String) -> Response {
    let mut response = reply(StatusCode::OK, &Value::Null);
    *response.body_mut() = axum::body::Body::from(text);
    response
}

async fn referenced_by(State(r): Reg, Path((subject, version)): Path<(String, String)>) -> Answer {
    ok(json!(
        r.referenced_by(&subject, VersionSpec::parse(&version)?)?
    ))
}

async fn delete_version(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
) -> Answer {
    let deleted = r
        .delete_version(
            &subject,
            VersionSpec::parse(&version)?,
            flag(&q, "permanent"),
        )
        .await?;
    ok(json!(deleted))
}

async fn delete_subject(State(r): Reg, Path(subject): Path<String>, Query(q): Params) -> Answer {
    ok(json!(
        r.delete_subject(&subject, flag(&q, "permanent")).await?
    ))
}

async fn get_schema(State(r): Reg, Path(id): Path<String>, Query(q): Params) -> Answer {
    let id = parse_id(&id)?;
    let schema = r.schema_by_id(id)?;
    let text = r.render(id, &schema, q.get("format").map(String::as_str))?;
    let mut map = serde_json::Map::new();
    schema_fields(&mut map, &schema, text);
    ok(Value::Object(map))
}

async fn get_schema_text(State(r): Reg, Path(id): Path<String>, Query(q): Params) -> Answer {
    let id = parse_id(&id)?;
    let schema = r.schema_by_id(id)?;
    Ok(raw(r.render(
        id,
        &schema,
        q.get("format").map(String::as_str),
    )?))
}

async fn get_schema_versions(State(r): Reg, Path(id): Path<String>, Query(q): Params) -> Answer {
    let versions = r.versions_for_id(parse_id(&id)?, flag(&q, "deleted"))?;
    let list: Vec<Value> = versions
        .into_iter()
        .map(|(subject, version)| json!({"subject": subject, "version": version}))
        .collect();
    ok(Value::Array(list))
}

async fn get_schema_subjects(State(r): Reg, Path(id): Path<String>, Query(q): Params) -> Answer {
    let mut subjects: Vec<String> = r
        .versions_for_id(parse_id(&id)?, flag(&q, "deleted"))?
        .into_iter()
        .map(|(subject, _)| subject)
        .collect();
    subjects.dedup();
    ok(json!(subjects))
}

#[derive(Deserialize)]
struct ConfigBody {
    #[serde(default)]
    compatibility: Option<String>,
    #[serde(rename = "compatibilityLevel", default)]
    compatibility_level: Option<String>,
}

fn level_from(body: Body) -> Result<CompatibilityLevel, ApiError> {
    let body: ConfigBody = parse_body(body)?;
    let text = body
        .compatibility
        .or(body.compatibility_level)
        .unwrap_or_default();
    text.parse()
        .map_err(|()| ApiError::from(RegistryError::InvalidCompatibilityLevel { level: text }))
}

async fn get_global_config(State(r): Reg) -> Answer {
    ok(json!({"compatibilityLevel": r.compatibility(None).as_str()}))
}

async fn put_global_config(State(r): Reg, body: Body) -> Answer {
    let level = level_from(body)?;
    r.set_compatibility(None, level).await?;
    ok(json!({"compatibility": level.as_str()}))
}

async fn delete_global_config(State(r): Reg) -> Answer {
    let previous = r.delete_compatibility(None).await?;
    ok(json!({"compatibilityLevel": previous.as_str()}))
}

async fn get_subject_config(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Params,
) -> Answer {
    let level = match r.subject_compatibility(&subject) {
        Some(level) => level,
        None if flag(&q, "defaultToGlobal") => r.compatibility(None),
        None => return Err(RegistryError::SubjectConfigNotFound { subject }.into()),
    };
    ok(json!({"compatibilityLevel": level.as_str()}))
}

async fn put_subject_config(State(r): Reg, Path(subject): Path<String>, body: Body) -> Answer {
    let level = level_from(body)?;
    r.set_compatibility(Some(&subject), level).await?;
    ok(json!({"compatibility": level.as_str()}))
}

async fn delete_subject_config(State(r): Reg, Path(subject): Path<String>) -> Answer {
    let previous = r.delete_compatibility(Some(&subject)).await?;
    ok(json!({"compatibilityLevel": previous.as_str()}))
}

fn compatibility_answer(messages: Vec<String>, verbose: bool) -> Answer {
    let mut answer = json!({"is_compatible": messages.is_empty()});
    if verbose {
        answer["messages"] = json!(messages);
    }
    ok(answer)
}

async fn check_all(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Body,
) -> Answer {
    let request = schema_request(body)?;
    let messages = r.check_compatibility(&subject, None, &request, flag(&q, "normalize"))?;
    compatibility_answer(messages, flag(&q, "verbose"))
}

async fn check_version(
    State(r): Reg,
    Path((subject, version)): Path<(String, String)>,
    Query(q): Params,
    body: Body,
) -> Answer {
    let version = VersionSpec::parse(&version)?;
    let request = schema_request(body)?;
    let messages =
        r.check_compatibility(&subject, Some(version), &request, flag(&q, "normalize"))?;
    compatibility_answer(messages, flag(&q, "verbose"))
}

#[derive(Deserialize)]
struct ModeBody {
    #[serde(default)]
    mode: Option<String>,
}

fn mode_from(body: Body) -> Result<Mode, ApiError> {
    let body: ModeBody = parse_body(body)?;
    let text = body.mode.unwrap_or_default();
    text.parse()
        .map_err(|()| ApiError::from(RegistryError::InvalidMode { mode: text }))
}

async fn get_global_mode(State(r): Reg) -> Answer {
    ok(json!({"mode": r.mode(None).as_str()}))
}

async fn put_global_mode(State(r): Reg, Query(q): Params, body: Body) -> Answer {
    let mode = mode_from(body)?;
    r.set_mode(None, mode, flag(&q, "force")).await?;
    ok(json!({"mode": mode.as_str()}))
}

async fn delete_global_mode(State(r): Reg) -> Answer {
    let previous = r.delete_mode(None).await?;
    ok(json!({"mode": previous.as_str()}))
}

async fn get_subject_mode(State(r): Reg, Path(subject): Path<String>, Query(q): Params) -> Answer {
    let mode = match r.subject_mode(&subject) {
        Some(mode) => mode,
        None if flag(&q, "defaultToGlobal") => r.mode(None),
        None => return Err(RegistryError::SubjectModeNotFound { subject }.into()),
    };
    ok(json!({"mode": mode.as_str()}))
}

async fn put_subject_mode(
    State(r): Reg,
    Path(subject): Path<String>,
    Query(q): Params,
    body: Body,
) -> Answer {
    let mode = mode_from(body)?;
    r.set_mode(Some(&subject), mode, flag(&q, "force")).await?;
    ok(json!({"mode": mode.as_str()}))
}

async fn delete_subject_mode(State(r): Reg, Path(subject): Path<String>) -> Answer {
    let previous = r.delete_mode(Some(&subject)).await?;
    ok(json!({"mode": previous.as_str()}))
}
