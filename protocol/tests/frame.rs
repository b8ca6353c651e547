//! A response encoded as chunks (large record sets referenced, not copied)
//! is byte-for-byte the response encoded into one buffer.

use bytes::Bytes;
use protocol::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
use protocol::header::{encode_response, encode_response_chunks};
use protocol::wire::Frame;

fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
    PartitionData {
        partition_index: index,
        high_watermark: 1000 + i64::from(index),
        records,
        ..PartitionData::default()
    }
}

fn response() -> FetchResponse {
    let big = Bytes::from(
        (0..Frame::REFERENCE_MIN * 3)
            .map(|i| i as u8)
            .collect::<Vec<_>>(),
    );
    let small = Bytes::from_static(b"small record set");
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "t".into(),
            partitions: vec![
                partition(0, Some(big.clone())),
                partition(1, Some(small)),
                partition(2, None),
                partition(3, Some(big.slice(..Frame::REFERENCE_MIN))),
                partition(4, Some(Bytes::new())),
            ],
        }],
        ..FetchResponse::default()
    }
}

#[test]
fn chunks_concatenate_to_the_single_buffer_encoding() {
    let body = response();
    for version in [4, 11, 12] {
        let whole = encode_response(7, version, &body).unwrap();
        let chunks = encode_response_chunks(7, version, &body).unwrap();
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(joined, whole, "v{version}");
        // The two large record sets are referenced, not copied: they are
        // chunks of their own.
        let referenced = chunks
            .iter()
            .filter(|c| c.len() >= Frame::REFERENCE_MIN)
            .count();
        assert_eq!(referenced, 2, "v{version}");
    }
}
