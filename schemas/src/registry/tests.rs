//! Registry behaviour: ids, versions, compatibility, deletes, references,
//! modes, replay from the log, concurrency.

use std::sync::Arc;

use super::*;
use crate::log::MemoryLog;

fn avro(text: &str) -> SchemaRequest {
    SchemaRequest {
        schema: text.to_owned(),
        ..Default::default()
    }
}

fn user(extra_fields: &str) -> SchemaRequest {
    avro(&format!(
        r#"{{"type":"record","name":"User","fields":[{{"name":"id","type":"long"}}{extra_fields}]}}"#
    ))
}

fn fresh() -> (Arc<MemoryLog>, Registry) {
    let log = Arc::new(MemoryLog::new());
    let registry = Registry::new(log.clone());
    (log, registry)
}

fn replayed(log: &MemoryLog) -> Registry {
    let registry = Registry::new(Arc::new(MemoryLog::new()));
    let report = registry.replay(log.records());
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    registry
}

fn same_state(a: &Registry, b: &Registry) {
    assert_eq!(*a.read(), *b.read());
}

#[tokio::test]
async fn same_schema_gets_one_id_across_subjects_and_layouts() {
    let (_, r) = fresh();
    let first = r.register("a-value", user(""), false).await.unwrap();
    assert_eq!(first, Registered { id: 1, version: 1 });
    // Whitespace and key order do not matter.
    let again = avro(
        r#"{ "name": "User", "type": "record", "fields": [ {"type": "long", "name": "id"} ] }"#,
    );
    assert_eq!(r.register("a-value", again, false).await.unwrap(), first);
    // Another subject: same id, its own version 1.
    assert_eq!(
        r.register("b-value", user(""), false).await.unwrap(),
        Registered { id: 1, version: 1 }
    );
    let second = r
        .register(
            "a-value",
            user(r#",{"name":"n","type":"string","default":""}"#),
            false,
        )
        .await
        .unwrap();
    assert_eq!(second, Registered { id: 2, version: 2 });
    assert_eq!(
        r.versions_for_id(1, false).unwrap(),
        [("a-value".to_owned(), 1), ("b-value".to_owned(), 1)]
    );
    // Lookup finds the version holding a schema.
    assert_eq!(
        r.lookup("a-value", &user(""), false, false)
            .unwrap()
            .version,
        1
    );
    assert!(matches!(
        r.lookup("a-value", &avro(r#""int""#), false, false),
        Err(RegistryError::SchemaNotFound { .. })
    ));
    assert!(matches!(
        r.lookup("zzz", &user(""), false, false),
        Err(RegistryError::SubjectNotFound { .. })
    ));
}

#[tokio::test]
async fn incompatible_changes_are_refused_with_what_breaks() {
    let (_, r) = fresh();
    r.register("s", user(""), false).await.unwrap();
    let err = r
        .register("s", user(r#",{"name":"email","type":"string"}"#), false)
        .await
        .unwrap_err();
    let RegistryError::Incompatible { messages, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        messages[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE") && messages[0].contains("email"),
        "{messages:?}"
    );
    assert!(err.to_string().starts_with(
        "Schema being registered is incompatible with an earlier schema for subject \"s\""
    ));
    // With a default it is BACKWARD compatible.
    r.register(
        "s",
        user(r#",{"name":"email","type":"string","default":""}"#),
        false,
    )
    .await
    .unwrap();
    // FORWARD: the old schema must read the new one's data; dropping a field
    // without default in the old reader breaks.
    r.set_compatibility(Some("s"), CompatibilityLevel::Forward)
        .await
        .unwrap();
    let err = r.register("s", avro(r#"{"type":"record","name":"User","fields":[{"name":"email","type":"string","default":""}]}"#), false).await;
    assert!(
        matches!(err, Err(RegistryError::Incompatible { .. })),
        "{err:?}"
    );
    // NONE accepts anything.
    r.set_compatibility(Some("s"), CompatibilityLevel::None)
        .await
        .unwrap();
    r.register("s", avro(r#""string""#), false).await.unwrap();
    // A schema of another type is incompatible under BACKWARD.
    r.delete_compatibility(Some("s")).await.unwrap();
    let proto = SchemaRequest {
        schema: "syntax = \"proto3\"; message M { string a = 1; }".into(),
        schema_type: SchemaType::Protobuf,
        ..Default::default()
    };
    assert!(matches!(
        r.register("s", proto, false).await,
        Err(RegistryError::Incompatible { .. })
    ));
}

#[tokio::test]
async fn transitive_levels_check_every_live_version() {
    let (_, r) = fresh();
    // v1 {id}, v2 {id, a=default}, v3 {a=default}: v3 reads v2 data, but
    // not v1 data? It does (a has a default). Make v3 drop the default:
    // v3 {id, a} reads v2 data (has a) but not v1 data (no a).
    r.register("t", user(""), false).await.unwrap();
    r.register(
        "t",
        user(r#",{"name":"a","type":"int","default":0}"#),
        false,
    )
    .await
    .unwrap();
    let v3 = user(r#",{"name":"a","type":"int"}"#);
    assert!(
        r.check_compatibility("t", None, &v3, false)
            .unwrap()
            .is_empty()
    );
    r.set_compatibility(Some("t"), CompatibilityLevel::BackwardTransitive)
        .await
        .unwrap();
    let messages = r.check_compatibility("t", None, &v3, false).unwrap();
    assert!(
        messages.iter().any(|m| m.contains("oldSchemaVersion: 1")),
        "{messages:?}"
    );
    // Against one named version only.
    assert!(
        r.check_compatibility("t", Some(VersionSpec::Number(2)), &v3, false)
            .unwrap()
            .is_empty()
    );
    assert!(
        !r.check_compatibility("t", Some(VersionSpec::Number(1)), &v3, false)
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn deletes_follow_confluent_rules_and_ids_are_never_reused() {
    let (log, r) = fresh();
    r.register("s", user(""), false).await.unwrap();
    r.register(
        "s",
        user(r#",{"name":"a","type":"int","default":0}"#),
        false,
    )
    .await
    .unwrap();
    assert!(matches!(
        r.delete_subject("s", true).await,
        Err(RegistryError::SubjectNotSoftDeleted { .. })
    ));
    assert!(matches!(
        r.delete_version("s", VersionSpec::Number(1), true).await,
        Err(RegistryError::VersionNotSoftDeleted { .. })
    ));
    assert_eq!(
        r.delete_version("s", VersionSpec::Number(1), false)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        r.delete_version("s", VersionSpec::Number(1), false).await,
        Err(RegistryError::VersionNotFound { .. })
    ));
    assert_eq!(r.versions("s", false).unwrap(), [2]);
    assert_eq!(r.versions("s", true).unwrap(), [1, 2]);
    // A soft-deleted version's schema is still served by id.
    assert!(r.schema_by_id(1).is_ok());
    assert_eq!(r.delete_subject("s", false).await.unwrap(), [2]);
    assert!(matches!(
        r.delete_subject("s", false).await,
        Err(RegistryError::SubjectSoftDeleted { .. })
    ));
    assert!(r.subjects(false, None).is_empty());
    assert_eq!(r.subjects(true, None), ["s"]);
    assert_eq!(r.delete_subject("s", true).await.unwrap(), [1, 2]);
    assert!(matches!(
        r.delete_subject("s", true).await,
        Err(RegistryError::SubjectNotFound { .. })
    ));
    assert!(matches!(
        r.schema_by_id(1),
        Err(RegistryError::SchemaNotFound { .. })
    ));
    // Registering again gets a new id, also after a restart from a
    // compacted log (only the last record of each key kept).
    assert_eq!(
        r.register("s", user(""), false).await.unwrap(),
        Registered { id: 3, version: 1 }
    );
    let mut compacted: Vec<LogRecord> = Vec::new();
    for record in log.records() {
        compacted.retain(|kept| kept.key != record.key);
        compacted.push(record);
    }
    compacted.retain(|record| record.value.is_some());
    let restarted = Registry::new(Arc::new(MemoryLog::new()));
    restarted.replay(compacted);
    restarted.delete_subject("s", false).await.unwrap();
    restarted.delete_subject("s", true).await.unwrap();
    let next = restarted
        .register(
            "s",
            user(r#",{"name":"z","type":"int","default":0}"#),
            false,
        )
        .await
        .unwrap();
    assert_eq!(next.id, 4);
}

#[tokio::test]
async fn replaying_the_log_rebuilds_the_same_state() {
    let (log, r) = fresh();
    r.register("a", user(""), false).await.unwrap();
    r.register(
        "a",
        user(r#",{"name":"x","type":"int","default":1}"#),
        false,
    )
    .await
    .unwrap();
    r.register("b", avro(r#""string""#), false).await.unwrap();
    r.set_compatibility(None, CompatibilityLevel::Full)
        .await
        .unwrap();
    r.set_compatibility(Some("b"), CompatibilityLevel::None)
        .await
        .unwrap();
    r.set_mode(Some("b"), Mode::Readonly, false).await.unwrap();
    r.delete_version("a", VersionSpec::Number(1), false)
        .await
        .unwrap();
    r.delete_version("a", VersionSpec::Number(1), true)
        .await
        .unwrap();
    let restarted = replayed(&log);
    same_state(&r, &restarted);
    assert_eq!(
        restarted
            .version("a", VersionSpec::Latest, false)
            .unwrap()
            .id,
        2
    );
    assert_eq!(restarted.compatibility(Some("b")), CompatibilityLevel::None);
    assert_eq!(restarted.compatibility(Some("a")), CompatibilityLevel::Full);
    // The restarted registry goes on with fresh ids.
    assert_eq!(
        restarted
            .register("c", avro(r#""int""#), false)
            .await
            .unwrap()
            .id,
        4
    );
    // Replaying twice is harmless.
    restarted.replay(log.records());
    assert_eq!(
        restarted
            .version("c", VersionSpec::Latest, false)
            .unwrap()
            .id,
        4
    );
}

#[tokio::test]
async fn broken_records_are_reported_with_their_offset_and_skipped() {
    let (log, r) = fresh();
    r.register("a", user(""), false).await.unwrap();
    let mut records = log.records();
    records.insert(
        1,
        LogRecord {
            offset: 1,
            key: b"{not json".to_vec(),
            value: None,
        },
    );
    // An id reused for a different schema.
    let (key, value) = Record::Schema {
        subject: "b".into(),
        version: 1,
        value: Some(SchemaValue {
            subject: "b".into(),
            version: 1,
            id: 1,
            schema_type: SchemaType::Avro,
            references: vec![],
            schema: "\"int\"".into(),
            deleted: false,
        }),
    }
    .encode();
    records.push(LogRecord {
        offset: 2,
        key,
        value,
    });
    let restarted = Registry::new(Arc::new(MemoryLog::new()));
    let report = restarted.replay(records);
    assert_eq!(report.applied, 1);
    let offsets: Vec<i64> = report.skipped.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, [1, 2]);
    assert!(report.skipped[0].to_string().contains("offset 1"));
    assert!(matches!(
        report.skipped[1].reason,
        crate::error::ApplyReason::IdConflict { id: 1 }
    ));
    assert_eq!(restarted.subjects(true, None), ["a"]);
}

#[tokio::test]
async fn a_failed_append_changes_nothing() {
    let (log, r) = fresh();
    r.register("a", user(""), false).await.unwrap();
    let before = r.read().clone();
    log.set_failing(true);
    let err = r.register("b", avro(r#""int""#), false).await.unwrap_err();
    assert!(matches!(err, RegistryError::Store { .. }));
    assert!(matches!(
        r.delete_subject("a", false).await,
        Err(RegistryError::Store { .. })
    ));
    assert_eq!(*r.read(), before);
    log.set_failing(false);
    assert_eq!(
        r.register("b", avro(r#""int""#), false).await.unwrap().id,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_get_one_id_per_schema() {
    let (log, r) = fresh();
    let r = Arc::new(r);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let same = r
                .register(&format!("same-{}", i % 4), user(""), false)
                .await
                .unwrap();
            let own = r
                .register(
                    &format!("own-{i}"),
                    avro(&format!(r#"{{"type":"fixed","name":"F{i}","size":4}}"#)),
                    false,
                )
                .await
                .unwrap();
            (same.id, own.id)
        }));
    }
    let mut own_ids = Vec::new();
    for task in tasks {
        let (same, own) = task.await.unwrap();
        assert_eq!(
            same,
            r.version("same-0", VersionSpec::Latest, false).unwrap().id
        );
        own_ids.push(own);
    }
    own_ids.sort_unstable();
    own_ids.dedup();
    assert_eq!(own_ids.len(), 32);
    for s in 0..4 {
        assert_eq!(r.versions(&format!("same-{s}"), true).unwrap(), [1]);
    }
    same_state(&r, &replayed(&log));
}

#[tokio::test]
async fn references_resolve_and_protect_what_they_use() {
    let (_, r) = fresh();
    let address = avro(
        r#"{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}"#,
    );
    r.register("address", address, false).await.unwrap();
    let mut person = avro(
        r#"{"type":"record","name":"Person","namespace":"ex","fields":[{"name":"home","type":"ex.Address"}]}"#,
    );
    assert!(matches!(
        r.register("person", person.clone(), false).await,
        Err(RegistryError::InvalidSchema { .. })
    ));
    person.references = vec![SchemaReference {
        name: "ex.Address".into(),
        subject: "address".into(),
        version: -1,
    }];
    let id = r.register("person", person, false).await.unwrap().id;
    let stored = r.schema_by_id(id).unwrap();
    assert_eq!(
        stored.references[0].version, 1,
        "-1 is stored as the version it named"
    );
    assert_eq!(
        r.referenced_by("address", VersionSpec::Latest).unwrap(),
        [id]
    );
    assert!(matches!(
        r.delete_version("address", VersionSpec::Number(1), false)
            .await,
        Err(RegistryError::ReferenceExists { .. })
    ));
    assert!(matches!(
        r.delete_subject("address", false).await,
        Err(RegistryError::ReferenceExists { .. })
    ));
    // The compiled schema decodes a datum through the reference.
    r.validate_payload(id, &[2, b'x']).unwrap();
    assert!(r.validate_payload(id, &[9]).is_err());
    assert!(r.validate_payload(999, &[]).is_err());
}

#[tokio::test]
async fn protobuf_text_and_serialized_forms_share_one_id() {
    let (_, r) = fresh();
    let text = "syntax = \"proto3\";\npackage ex;\nimport \"google/protobuf/timestamp.proto\";\nmessage Event { string name = 1; google.protobuf.Timestamp at = 2; }";
    let proto = |schema: String| SchemaRequest {
        schema,
        schema_type: SchemaType::Protobuf,
        ..Default::default()
    };
    let id = r.register("e", proto(text.into()), false).await.unwrap().id;
    let stored = r.schema_by_id(id).unwrap();
    let serialized = r.render(id, &stored, Some("serialized")).unwrap();
    assert_ne!(serialized, stored.text);
    assert_eq!(
        r.register("e2", proto(serialized), false).await.unwrap().id,
        id
    );
    // Breaking change: field 2 becomes a string.
    let broken =
        "syntax = \"proto3\"; package ex; message Event { string name = 1; string at = 2; }";
    assert!(matches!(
        r.register("e", proto(broken.into()), false).await,
        Err(RegistryError::Incompatible { .. })
    ));
    let err = r
        .register("e", proto("syntax = \"proto3\"; message {".into()), false)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::InvalidSchema {
                schema_type: SchemaType::Protobuf,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn json_schemas_register_and_validate() {
    let (_, r) = fresh();
    let request = SchemaRequest {
        schema: r#"{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}"#.into(),
        schema_type: SchemaType::Json,
        ..Default::default()
    };
    let id = r.register("j", request, false).await.unwrap().id;
    r.validate_payload(id, br#"{"n":1}"#).unwrap();
    assert!(r.validate_payload(id, br#"{"n":1,"x":2}"#).is_err());
}

#[tokio::test]
async fn modes_guard_writes_and_import_keeps_given_ids() {
    let (_, r) = fresh();
    r.set_mode(Some("ro"), Mode::Readonly, false).await.unwrap();
    assert!(matches!(
        r.register("ro", user(""), false).await,
        Err(RegistryError::OperationNotPermitted { .. })
    ));
    r.register("x", user(""), false).await.unwrap();
    assert!(matches!(
        r.set_mode(None, Mode::Import, false).await,
        Err(RegistryError::OperationNotPermitted { .. })
    ));
    r.set_mode(None, Mode::Import, true).await.unwrap();
    let mut imported = avro(r#""bytes""#);
    imported.id = Some(100);
    imported.version = Some(7);
    assert_eq!(
        r.register("imp", imported, false).await.unwrap(),
        Registered {
            id: 100,
            version: 7
        }
    );
    let mut clash = avro(r#""double""#);
    clash.id = Some(100);
    assert!(matches!(
        r.register("imp2", clash, false).await,
        Err(RegistryError::OperationNotPermitted { .. })
    ));
    r.delete_mode(None).await.unwrap();
    // New ids continue above the imported one.
    assert_eq!(
        r.register("y", avro(r#""float""#), false).await.unwrap().id,
        101
    );
    let mut with_id = avro(r#""boolean""#);
    with_id.id = Some(500);
    assert!(matches!(
        r.register("z", with_id, false).await,
        Err(RegistryError::OperationNotPermitted { .. })
    ));
}

#[test]
fn version_specs() {
    assert_eq!(VersionSpec::parse("latest").unwrap(), VersionSpec::Latest);
    assert_eq!(VersionSpec::parse("-1").unwrap(), VersionSpec::Latest);
    assert_eq!(VersionSpec::parse("3").unwrap(), VersionSpec::Number(3));
    for bad in ["0", "-2", "x", "99999999999"] {
        assert!(
            matches!(
                VersionSpec::parse(bad),
                Err(RegistryError::InvalidVersion { .. })
            ),
            "{bad}"
        );
    }
}
