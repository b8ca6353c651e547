//! Golden request frames captured from real clients (kcat / librdkafka 2.0.2,
//! confluent-kafka / librdkafka 2.16, kafka-python 3.0, aiokafka 0.14) with
//! `tests/capture.py`: every frame must decode completely and re-encode to
//! exactly the bytes the client sent.

use std::path::Path;

use bytes::Bytes;
use protocol::wire::Reader;
use protocol::{ApiKey, Request, RequestHeader};

fn encode_request(header: &RequestHeader, request: &Request) -> Vec<u8> {
    use protocol::Message as _;
    let mut out = Vec::new();
    header.encode(&mut out).unwrap();
    let v = header.api_version;
    match request {
        Request::Produce(r) => r.encode(&mut out, v),
        Request::Fetch(r) => r.encode(&mut out, v),
        Request::ListOffsets(r) => r.encode(&mut out, v),
        Request::Metadata(r) => r.encode(&mut out, v),
        Request::OffsetCommit(r) => r.encode(&mut out, v),
        Request::OffsetFetch(r) => r.encode(&mut out, v),
        Request::FindCoordinator(r) => r.encode(&mut out, v),
        Request::JoinGroup(r) => r.encode(&mut out, v),
        Request::Heartbeat(r) => r.encode(&mut out, v),
        Request::LeaveGroup(r) => r.encode(&mut out, v),
        Request::SyncGroup(r) => r.encode(&mut out, v),
        Request::DescribeGroups(r) => r.encode(&mut out, v),
        Request::ListGroups(r) => r.encode(&mut out, v),
        Request::ApiVersions(r) => r.encode(&mut out, v),
        Request::CreateTopics(r) => r.encode(&mut out, v),
        Request::DeleteTopics(r) => r.encode(&mut out, v),
        Request::DeleteRecords(r) => r.encode(&mut out, v),
        Request::InitProducerId(r) => r.encode(&mut out, v),
        Request::OffsetForLeaderEpoch(r) => r.encode(&mut out, v),
        Request::DescribeConfigs(r) => r.encode(&mut out, v),
        Request::AlterConfigs(r) => r.encode(&mut out, v),
        Request::CreatePartitions(r) => r.encode(&mut out, v),
        Request::DeleteGroups(r) => r.encode(&mut out, v),
        Request::IncrementalAlterConfigs(r) => r.encode(&mut out, v),
        Request::DescribeCluster(r) => r.encode(&mut out, v),
        other => panic!("no encoder wired for {other:?}"),
    }
    .unwrap();
    out
}

fn hex(text: &str) -> Vec<u8> {
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn real_client_requests_decode_and_re_encode_byte_for_byte() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "hex") {
            continue;
        }
        let bytes = hex(&std::fs::read_to_string(&path).unwrap());
        let mut r = Reader::new(Bytes::from(bytes.clone()));
        let header = RequestHeader::decode(&mut r)
            .unwrap_or_else(|e| panic!("{}: header: {e}", path.display()));
        let api = ApiKey::from_i16(header.api_key).unwrap();
        let request = Request::decode(api, header.api_version, &mut r)
            .unwrap_or_else(|e| panic!("{}: body: {e}", path.display()));
        assert_eq!(r.remaining(), 0, "{}: trailing bytes", path.display());
        let again = encode_request(&header, &request);
        assert_eq!(again, bytes, "{}: re-encoding differs", path.display());
        checked += 1;
    }
    assert!(
        checked >= 40,
        "only {checked} golden frames found in {}",
        dir.display()
    );
}

mod arbitrary_bytes {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any bytes, any API and version: decoding never panics, and what
        /// decodes re-encodes to a frame that decodes to the same request.
        #[test]
        fn decode_is_total_and_round_trips(
            api_index in 0usize..ApiKey::ALL.len(),
            version_pick in 0i16..64,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let api = ApiKey::ALL[api_index];
            let (min, max) = api.versions();
            let version = min + version_pick % (max - min + 1);
            let header = RequestHeader {
                api_key: api as i16,
                api_version: version,
                correlation_id: 7,
                client_id: Some("p".into()),
            };
            let Ok(request) = Request::decode(api, version, &mut Reader::new(Bytes::from(body))) else {
                return Ok(());
            };
            let frame = encode_request(&header, &request);
            let mut r = Reader::new(Bytes::from(frame));
            let header_again = RequestHeader::decode(&mut r).unwrap();
            prop_assert_eq!(header_again, header);
            let again = Request::decode(api, version, &mut r).unwrap();
            prop_assert_eq!(again, request);
        }
    }
}
