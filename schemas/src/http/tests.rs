//! The REST API driven through the router, as clients call it.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::log::MemoryLog;

struct Api {
    router: Router,
}

struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn code(&self) -> u64 {
        self.json()["error_code"].as_u64().unwrap_or(0)
    }
}

impl Api {
    fn new() -> Api {
        Api {
            router: router(Arc::new(Registry::new(Arc::new(MemoryLog::new())))),
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let request = request
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            content_type,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None, "").await
    }

    async fn send(&self, method: Method, uri: &str, body: Value) -> Answer {
        self.call(
            method,
            uri,
            Some(body.to_string().into_bytes()),
            CONTENT_TYPE,
        )
        .await
    }
}

const USER_V1: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"}]}"#;
const USER_V2_OK: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":"string","default":""}]}"#;
const USER_V2_BAD: &str = r#"{"type":"record","name":"User","fields":[{"name":"id","type":"long"},{"name":"email","type":"string"}]}"#;

#[tokio::test]
async fn register_read_back_and_content_types() {
    let api = Api::new();
    let root = api.get("/").await;
    assert_eq!((root.status, root.text.as_str()), (StatusCode::OK, "{}"));
    assert_eq!(root.content_type, CONTENT_TYPE);

    // Each accepted request content type.
    for (i, content_type) in [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/octet-stream",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"schema": USER_V1}).to_string().into_bytes();
        let answer = api
            .call(
                Method::POST,
                &format!("/subjects/ct-{i}/versions?normalize=False"),
                Some(body),
                content_type,
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{content_type}: {}",
            answer.text
        );
        assert_eq!(answer.json(), json!({"id": 1}));
    }

    let v = api.get("/subjects/ct-0/versions/latest").await;
    assert_eq!(
        v.json(),
        json!({"subject":"ct-0","version":1,"id":1,"schema": serde_json::from_str::<Value>(USER_V1).map(|s| crate::format::canonical_json(&s)).unwrap()})
    );
    assert_eq!(api.get("/subjects/ct-0/versions/-1").await.json()["id"], 1);
    assert_eq!(
        api.get("/subjects/ct-0/versions/1/schema").await.text,
        v.json()["schema"].as_str().unwrap()
    );
    assert_eq!(api.get("/subjects/ct-0/versions").await.json(), json!([1]));
    assert_eq!(
        api.get("/subjects").await.json(),
        json!(["ct-0", "ct-1", "ct-2", "ct-3"])
    );
    assert_eq!(
        api.get("/subjects?subjectPrefix=ct-1").await.json(),
        json!(["ct-1"])
    );
    let by_id = api.get("/schemas/ids/1?subject=ct-0").await;
    assert_eq!(by_id.json()["schema"], v.json()["schema"]);
    assert!(by_id.json().get("schemaType").is_none(), "AVRO is implied");
    assert_eq!(
        api.get("/schemas/ids/1/versions").await.json()[0],
        json!({"subject":"ct-0","version":1})
    );
    assert_eq!(
        api.get("/schemas/ids/1/subjects")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        api.get("/schemas/types").await.json(),
        json!(["JSON", "PROTOBUF", "AVRO"])
    );

    // Lookup.
    let found = api
        .send(Method::POST, "/subjects/ct-0", json!({"schema": USER_V1}))
        .await;
    assert_eq!(
        (found.json()["id"].clone(), found.json()["version"].clone()),
        (json!(1), json!(1))
    );
    let missing = api
        .send(Method::POST, "/subjects/ct-0", json!({"schema": "\"int\""}))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, 40403)
    );
}

#[tokio::test]
async fn confluent_error_codes() {
    let api = Api::new();
    api.send(
        Method::POST,
        "/subjects/s/versions",
        json!({"schema": USER_V1}),
    )
    .await;
    let cases = [
        ("/subjects/nope/versions", StatusCode::NOT_FOUND, 40401),
        ("/subjects/nope/versions/1", StatusCode::NOT_FOUND, 40401),
        ("/subjects/s/versions/9", StatusCode::NOT_FOUND, 40402),
        (
            "/subjects/s/versions/zero",
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
        ),
        (
            "/subjects/s/versions/0",
            StatusCode::UNPROCESSABLE_ENTITY,
            42202,
        ),
        ("/schemas/ids/77", StatusCode::NOT_FOUND, 40403),
        ("/schemas/ids/abc", StatusCode::NOT_FOUND, 40403),
        ("/config/s", StatusCode::NOT_FOUND, 40408),
        ("/mode/s", StatusCode::NOT_FOUND, 40409),
        (
            "/associations/resources/-/t?resourceType=topic&associationType=value",
            StatusCode::NOT_FOUND,
            40401,
        ),
        ("/no/such/route", StatusCode::NOT_FOUND, 404),
    ];
    for (uri, status, code) in cases {
        let answer = api.get(uri).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{uri}: {}",
            answer.text
        );
        assert_eq!(answer.content_type, CONTENT_TYPE, "{uri}");
        assert!(answer.json()["message"].is_string());
    }
    let invalid = api
        .send(
            Method::POST,
            "/subjects/s/versions",
            json!({"schema": r#"{"type":"record"}"#}),
        )
        .await;
    assert_eq!(
        (invalid.status, invalid.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, 42201)
    );
    let invalid = api
        .send(
            Method::POST,
            "/subjects/p/versions",
            json!({"schema": "message {", "schemaType": "PROTOBUF"}),
        )
        .await;
    assert_eq!(invalid.code(), 42201, "{}", invalid.text);
    let garbage = api
        .call(
            Method::POST,
            "/subjects/s/versions",
            Some(b"{".to_vec()),
            CONTENT_TYPE,
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    let unknown_type = api
        .send(
            Method::POST,
            "/subjects/s/versions",
            json!({"schema": "x", "schemaType": "XML"}),
        )
        .await;
    assert_eq!(unknown_type.code(), 42201);
    let wrong_method = api.call(Method::PATCH, "/subjects", None, "").await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn incompatible_registration_is_409_naming_the_field() {
    let api = Api::new();
    api.send(
        Method::POST,
        "/subjects/u/versions",
        json!({"schema": USER_V1}),
    )
    .await;
    let refused = api
        .send(
            Method::POST,
            "/subjects/u/versions",
            json!({"schema": USER_V2_BAD}),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, 409)
    );
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Schema being registered is incompatible with an earlier schema for subject \"u\", details: ["), "{message}");
    assert!(message.contains("email"), "{message}");

    let check = api
        .send(
            Method::POST,
            "/compatibility/subjects/u/versions/latest?verbose=true",
            json!({"schema": USER_V2_BAD}),
        )
        .await;
    assert_eq!(check.json()["is_compatible"], false);
    assert!(
        check.json()["messages"][0]
            .as_str()
            .unwrap()
            .contains("READER_FIELD_MISSING_DEFAULT_VALUE")
    );
    let check = api
        .send(
            Method::POST,
            "/compatibility/subjects/u/versions/latest",
            json!({"schema": USER_V2_OK}),
        )
        .await;
    assert_eq!(check.json(), json!({"is_compatible": true}));
    let none = api
        .send(
            Method::POST,
            "/compatibility/subjects/new-subject/versions",
            json!({"schema": USER_V2_OK}),
        )
        .await;
    assert_eq!(none.json()["is_compatible"], true);
    let ok = api
        .send(
            Method::POST,
            "/subjects/u/versions",
            json!({"schema": USER_V2_OK}),
        )
        .await;
    assert_eq!(ok.json(), json!({"id": 2}));
}

#[tokio::test]
async fn config_and_mode() {
    let api = Api::new();
    assert_eq!(
        api.get("/config").await.json(),
        json!({"compatibilityLevel": "BACKWARD"})
    );
    assert_eq!(
        api.send(
            Method::PUT,
            "/config",
            json!({"compatibility": "FULL_TRANSITIVE"})
        )
        .await
        .json(),
        json!({"compatibility": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        api.get("/config/s?defaultToGlobal=true").await.json(),
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    api.send(Method::PUT, "/config/s", json!({"compatibility": "none"}))
        .await;
    assert_eq!(
        api.get("/config/s").await.json(),
        json!({"compatibilityLevel": "NONE"})
    );
    let bad = api
        .send(
            Method::PUT,
            "/config/s",
            json!({"compatibility": "SIDEWAYS"}),
        )
        .await;
    assert_eq!(bad.code(), 42203);
    assert_eq!(
        api.call(Method::DELETE, "/config/s", None, "").await.json(),
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        api.call(Method::DELETE, "/config", None, "").await.json(),
        json!({"compatibilityLevel": "FULL_TRANSITIVE"})
    );
    assert_eq!(
        api.get("/config").await.json(),
        json!({"compatibilityLevel": "BACKWARD"})
    );

    assert_eq!(api.get("/mode").await.json(), json!({"mode": "READWRITE"}));
    api.send(Method::PUT, "/mode/s", json!({"mode": "READONLY"}))
        .await;
    let refused = api
        .send(
            Method::POST,
            "/subjects/s/versions",
            json!({"schema": USER_V1}),
        )
        .await;
    assert_eq!(refused.code(), 42205);
    assert_eq!(
        api.send(Method::PUT, "/mode", json!({"mode": "BOGUS"}))
            .await
            .code(),
        42204
    );
    assert_eq!(
        api.call(Method::DELETE, "/mode/s", None, "").await.json(),
        json!({"mode": "READONLY"})
    );
    assert_eq!(
        api.send(
            Method::POST,
            "/subjects/s/versions",
            json!({"schema": USER_V1})
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn deletes_over_http() {
    let api = Api::new();
    api.send(
        Method::POST,
        "/subjects/d/versions",
        json!({"schema": USER_V1}),
    )
    .await;
    api.send(
        Method::POST,
        "/subjects/d/versions",
        json!({"schema": USER_V2_OK}),
    )
    .await;
    let permanent_first = api
        .call(
            Method::DELETE,
            "/subjects/d/versions/1?permanent=true",
            None,
            "",
        )
        .await;
    assert_eq!(permanent_first.code(), 40407);
    assert_eq!(
        api.call(Method::DELETE, "/subjects/d/versions/1", None, "")
            .await
            .json(),
        json!(1)
    );
    assert_eq!(
        api.call(Method::DELETE, "/subjects/d/versions/latest", None, "")
            .await
            .json(),
        json!(2)
    );
    assert_eq!(api.get("/subjects/d/versions").await.code(), 40401);
    assert_eq!(
        api.get("/subjects/d/versions?deleted=true").await.json(),
        json!([1, 2])
    );
    assert_eq!(
        api.get("/subjects/d/versions/1?deleted=true").await.json()["deleted"],
        true
    );
    assert_eq!(
        api.call(Method::DELETE, "/subjects/d", None, "")
            .await
            .code(),
        40404
    );
    assert_eq!(
        api.call(Method::DELETE, "/subjects/d?permanent=true", None, "")
            .await
            .json(),
        json!([1, 2])
    );
    assert_eq!(api.get("/subjects?deleted=true").await.json(), json!([]));
    assert_eq!(api.get("/schemas/ids/1").await.code(), 40403);
    api.send(
        Method::POST,
        "/subjects/e/versions",
        json!({"schema": USER_V1}),
    )
    .await;
    assert_eq!(
        api.call(Method::DELETE, "/subjects/e?permanent=true", None, "")
            .await
            .code(),
        40405
    );
}

#[tokio::test]
async fn subjects_are_url_decoded() {
    let api = Api::new();
    let answer = api
        .send(
            Method::POST,
            "/subjects/ns%3Aorders.v1%2Fvalue/versions",
            json!({"schema": "\"string\""}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(
        api.get("/subjects").await.json(),
        json!(["ns:orders.v1/value"])
    );
    assert_eq!(
        api.get("/subjects/ns:orders.v1%2Fvalue/versions/1")
            .await
            .json()["subject"],
        "ns:orders.v1/value"
    );
}

#[tokio::test]
async fn protobuf_serialized_format_and_references() {
    let api = Api::new();
    let common = "syntax = \"proto3\";\npackage common;\nmessage Money { int64 units = 1; }\n";
    api.send(
        Method::POST,
        "/subjects/money/versions",
        json!({"schema": common, "schemaType": "PROTOBUF"}),
    )
    .await;
    let order = "syntax = \"proto3\";\nimport \"common/money.proto\";\nimport \"google/protobuf/timestamp.proto\";\nmessage Order { common.Money total = 1; google.protobuf.Timestamp at = 2; }\n";
    let registered = api
        .send(
            Method::POST,
            "/subjects/order/versions",
            json!({"schema": order, "schemaType": "PROTOBUF", "references": [{"name": "common/money.proto", "subject": "money", "version": 1}]}),
        )
        .await;
    assert_eq!(registered.json(), json!({"id": 2}), "{}", registered.text);
    let text = api.get("/schemas/ids/2").await.json();
    assert_eq!(text["schemaType"], "PROTOBUF");
    assert_eq!(text["references"][0]["subject"], "money");
    let serialized = api.get("/schemas/ids/2?format=serialized").await.json();
    let schema = serialized["schema"].as_str().unwrap();
    assert_ne!(schema, text["schema"].as_str().unwrap());
    // Registering the serialized form under another subject: same id.
    let again = api
        .send(
            Method::POST,
            "/subjects/order-copy/versions",
            json!({"schema": schema, "schemaType": "PROTOBUF", "references": [{"name": "common/money.proto", "subject": "money", "version": 1}]}),
        )
        .await;
    assert_eq!(again.json(), json!({"id": 2}));
    assert_eq!(
        api.get("/subjects/money/versions/1/referencedby")
            .await
            .json(),
        json!([2])
    );
    let v = api
        .get("/subjects/order/versions/1?format=serialized")
        .await
        .json();
    assert_eq!(v["schema"], schema);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let api = Api::new();
    let huge = format!(r#"{{"schema":"{}"}}"#, "a".repeat(MAX_BODY_BYTES + 10));
    let answer = api
        .call(
            Method::POST,
            "/subjects/big/versions",
            Some(huge.into_bytes()),
            CONTENT_TYPE,
        )
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, 413)
    );
}
