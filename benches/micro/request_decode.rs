//! `RequestHeader::decode` + `protocol::Request::decode` of whole request
//! frames, as the broker does for every request. Frames are encoded with the
//! protocol crate's own generated types and `header::encode_request`.

use std::hint::black_box;

use broker::log::{BatchBuilder, Compression};
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use protocol::metadata_request::{MetadataRequest, MetadataRequestTopic};
use protocol::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use protocol::wire::{Reader, Uuid};
use protocol::{ApiKey, Message, Request, RequestHeader};

fn frame<M: Message>(version: i16, body: &M) -> Bytes {
    let header = RequestHeader {
        api_key: M::API_KEY,
        api_version: version,
        correlation_id: 7,
        client_id: Some("bench".into()),
    };
    let frame = protocol::header::encode_request(&header, body).unwrap();
    // The broker decodes the frame body, after the size prefix.
    Bytes::from(frame).slice(4..)
}

fn batch(records: usize) -> Bytes {
    let mut b = BatchBuilder::new(Compression::None);
    let value = vec![b'v'; 1024];
    for i in 0..records {
        b.push(1_700_000_000_000 + i as i64, None, Some(&value), &[]);
    }
    Bytes::from(b.build().unwrap())
}

fn produce(partitions: i32, records: usize) -> ProduceRequest {
    let records = batch(records);
    ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench".into(),
            partition_data: (0..partitions)
                .map(|index| PartitionProduceData {
                    index,
                    records: Some(records.clone()),
                })
                .collect(),
        }],
        ..Default::default()
    }
}

fn fetch(topics: usize, partitions: i32) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 50 << 20,
        topics: (0..topics)
            .map(|t| FetchTopic {
                topic: format!("topic-{t}"),
                partitions: (0..partitions)
                    .map(|partition| FetchPartition {
                        partition,
                        fetch_offset: 1_000_000 + i64::from(partition),
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

fn metadata(topics: Option<usize>) -> MetadataRequest {
    MetadataRequest {
        topics: topics.map(|n| {
            (0..n)
                .map(|t| MetadataRequestTopic {
                    topic_id: Uuid([0; 16]),
                    name: Some(format!("topic-{t}")),
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

fn decode(body: &Bytes) -> Request {
    let mut r = Reader::new(body.clone());
    let header = RequestHeader::decode(&mut r).unwrap();
    let api = ApiKey::from_i16(header.api_key).unwrap();
    Request::decode(api, header.api_version, &mut r).unwrap()
}

fn request_decode(c: &mut Criterion) {
    let cases: Vec<(&str, String, Bytes)> = vec![
        ("produce_v9", "1x16KiB".into(), frame(9, &produce(1, 16))),
        ("produce_v9", "8x256KiB".into(), frame(9, &produce(8, 256))),
        ("produce_v3", "8x256KiB".into(), frame(3, &produce(8, 256))),
        ("fetch_v12", "1_partition".into(), frame(12, &fetch(1, 1))),
        (
            "fetch_v12",
            "10x10_partitions".into(),
            frame(12, &fetch(10, 10)),
        ),
        (
            "fetch_v4",
            "10x10_partitions".into(),
            frame(4, &fetch(10, 10)),
        ),
        (
            "metadata_v12",
            "all_topics".into(),
            frame(12, &metadata(None)),
        ),
        (
            "metadata_v12",
            "10_topics".into(),
            frame(12, &metadata(Some(10))),
        ),
        (
            "metadata_v1",
            "10_topics".into(),
            frame(1, &metadata(Some(10))),
        ),
    ];
    let mut group = c.benchmark_group("request_decode");
    for (api, case, body) in &cases {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new(*api, case), body, |b, body| {
            b.iter(|| decode(black_box(body)))
        });
    }
    group.finish();
}

criterion_group!(benches, request_decode);
criterion_main!(benches);
